/*
 * check_api.c: the public API, black box (API.md Semantics items 8-13):
 * parallel groups, the journal, extensions, ids, bad input, lifetime and
 * PUMPED_NUM_THREADS, and the typed PF_FLOW macro.
 *
 * Handlers, extensions and callbacks run on worker threads: they only
 * record (atomics, or plain fields read after a wait that orders them);
 * every assertion runs on the test thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pumped.h>

#include "annotate.h"
#include "testlib.h"

/* ------------------------------------------------------------ helpers */

#define E_FAIL1 (PF_EUSER - 1)
#define E_FAIL2 (PF_EUSER - 2)
#define E_FAIL3 (PF_EUSER - 3)
#define E_LOOPED (PF_EUSER - 50)  /* a looper's own code once aborted  */
#define E_NEVER (PF_EUSER - 99)   /* a bounded wait ran out            */
#define E_INIT (PF_EUSER - 9)

/* Bounds for waits that should end quickly: 10 s, far above need. */
#define BOUND_US 10000000L
#define STEP_US 100L

static void
pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Waits (bounded) until *a >= want; true if it got there. */
static bool
await_at_least(atomic_int *a, int want)
{
	/* The flags it waits on are C11 atomics (src/annotate.h). */
	PF_ATOMIC_OBJ(a);
	for (long t = 0; t < BOUND_US; t += STEP_US) {
		if (atomic_load_explicit(a, memory_order_acquire) >= want)
			return true;
		pause_us(STEP_US);
	}
	return false;
}

/* Loops (bounded) until ctx is aborted; true if it was. */
static bool
await_abort(pf_ctx *ctx)
{
	for (long t = 0; t < BOUND_US; t += STEP_US) {
		if (pf_ctx_aborted(ctx))
			return true;
		pause_us(STEP_US);
	}
	return false;
}


static pf_scope *
new_scope_ext(unsigned threads, const pf_extension *const *x, size_t n)
{
	pf_scope_options o = { threads, x, n, NULL, 0 };
	pf_scope *s = NULL;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static pf_ctx *
new_standalone(pf_scope *s)
{
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

static int
square(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	int v = *(const int *)input;
	*(int *)output = v * v;
	return 0;
}

static const pf_flow square_flow = { "square", square, sizeof(int),
	sizeof(int) };

static int
noop(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	return 0;
}

static const pf_flow noop_flow = { "noop", noop, 0, 0 };

/* ------------------------------------------------------ parallel (8) */

/* Shared by the calls of one group (input_size 0: the pointer as is). */
struct group_probe {
	atomic_int ok_done;        /* quick calls that returned        */
	atomic_int loopers_started;
	atomic_int loopers_aborted;
	atomic_int loopers_ended;
	atomic_int fails_done;
	atomic_int slow_saw_abort;
};

static int
g_ok(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	struct group_probe *p = (struct group_probe *)input;
	*(int *)output = 5;
	atomic_fetch_add_explicit(&p->ok_done, 1, memory_order_release);
	return 0;
}

static int
g_loop(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct group_probe *p = (struct group_probe *)input;
	atomic_fetch_add_explicit(&p->loopers_started, 1,
	    memory_order_release);
	bool aborted = await_abort(ctx);
	if (aborted)
		atomic_fetch_add_explicit(&p->loopers_aborted, 1,
		    memory_order_relaxed);
	atomic_fetch_add_explicit(&p->loopers_ended, 1, memory_order_release);
	return aborted ? E_LOOPED : E_NEVER;
}

/* Fails once both loopers run and the quick call finished, so the group's
 * abort reaches calls that are really running. */
static int
g_fail_late(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct group_probe *p = (struct group_probe *)input;
	if (!await_at_least(&p->loopers_started, 2) ||
	    !await_at_least(&p->ok_done, 1))
		return E_NEVER;
	return pf_ctx_fail(ctx, E_FAIL1, "late failure");
}

static int
g_fail_now(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	struct group_probe *p = (struct group_probe *)input;
	/* One RMW decides: two calls running at once (on two workers, or
	 * one on the waiting thread) must get different codes. */
	PF_HB_BEFORE(&p->fails_done);
	int code = atomic_fetch_add_explicit(&p->fails_done, 1,
	    memory_order_acq_rel) == 0 ? E_FAIL2 : E_FAIL3;
	return code;
}

/* Settled: finishes after both failures and records whether it was
 * aborted by them (it must not be). */
static int
g_slow(pf_ctx *ctx, const void *input, void *output)
{
	struct group_probe *p = (struct group_probe *)input;
	if (!await_at_least(&p->fails_done, 2))
		return E_NEVER;
	pause_us(20000);
	atomic_store_explicit(&p->slow_saw_abort, pf_ctx_aborted(ctx),
	    memory_order_relaxed);
	*(int *)output = 9;
	return 0;
}

static const pf_flow g_ok_flow = { "g_ok", g_ok, 0, sizeof(int) };
static const pf_flow g_loop_flow = { "g_loop", g_loop, 0, 0 };
static const pf_flow g_fail_late_flow = { "g_fail_late", g_fail_late, 0, 0 };
static const pf_flow g_fail_now_flow = { "g_fail_now", g_fail_now, 0, 0 };
static const pf_flow g_slow_flow = { "g_slow", g_slow, 0, sizeof(int) };

/* "parallel runs all calls ..., returns 0 when all succeed"; "Results land
 * in each call's output"; stats count what happened. */
START_TEST(parallel_all_succeed)
{
	pf_scope *s = new_scope(4);
	pf_ctx *c = new_standalone(s);
	enum { N = 8 };
	int in[N], out[N];
	pf_call calls[N];
	for (int i = 0; i < N; i++) {
		in[i] = i + 1;
		out[i] = -1;
		calls[i] = (pf_call){ &square_flow, &in[i], &out[i], NULL, 77,
			PF_PENDING, NULL };
	}
	pf_parallel_stats st = { 99, 99, 99, 99 };
	ck_assert_int_eq(pf_ctx_parallel(c, calls, N, &st), 0);
	ck_assert_uint_eq(st.total, N);
	ck_assert_uint_eq(st.succeeded, N);
	ck_assert_uint_eq(st.failed, 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(out[i], (i + 1) * (i + 1));
		ck_assert_int_eq(calls[i].result, 0);
		ck_assert_int_eq(calls[i].status, PF_COMPLETED);
	}
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "or the first failure's code after aborting the other calls and waiting
 * for them; ... the failing call itself ends failed, the others it aborted
 * end cancelled (or completed if they finished first)"; "failed = total -
 * succeeded: cancelled calls count as failed". */
START_TEST(parallel_fail_fast_aborts_running_calls)
{
	pf_scope *s = new_scope(4);
	pf_ctx *c = new_standalone(s);
	struct group_probe p = { 0 };
	int ok_out = -1;
	pf_call calls[] = {
		{ &g_ok_flow, &p, &ok_out, NULL, 77, PF_PENDING, NULL },
		{ &g_loop_flow, &p, NULL, NULL, 77, PF_PENDING, NULL },
		{ &g_loop_flow, &p, NULL, NULL, 77, PF_PENDING, NULL },
		{ &g_fail_late_flow, &p, NULL, NULL, 77, PF_PENDING, NULL },
	};
	pf_parallel_stats st = { 99, 99, 99, 99 };
	int rc = pf_ctx_parallel(c, calls, 4, &st);
	/* Waited for the others: both loopers have returned. */
	ck_assert_int_eq(atomic_load(&p.loopers_ended), 2);
	ck_assert_int_eq(rc, E_FAIL1);
	ck_assert_int_eq(atomic_load(&p.loopers_aborted), 2);
	ck_assert_uint_eq(st.total, 4);
	ck_assert_uint_eq(st.succeeded, 1);
	ck_assert_uint_eq(st.failed, 3);
	ck_assert_int_eq(calls[0].status, PF_COMPLETED);
	ck_assert_int_eq(calls[0].result, 0);
	ck_assert_int_eq(ok_out, 5);
	for (int i = 1; i <= 2; i++) {
		ck_assert_int_eq(calls[i].status, PF_CANCELLED);
		/* Item 1: returned an error while aborted: the error is the
		 * abort reason. */
		ck_assert_int_eq(calls[i].result, PF_ECANCELED);
	}
	ck_assert_int_eq(calls[3].status, PF_FAILED);
	ck_assert_int_eq(calls[3].result, E_FAIL1);
	/* The calling context itself is not aborted by its group. */
	ck_assert(!pf_ctx_aborted(c));
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "parallel_settled waits for all and never fails because of a call; each
 * pf_call holds its own result and status." */
START_TEST(parallel_settled_fills_each_call)
{
	pf_scope *s = new_scope(4);
	pf_ctx *c = new_standalone(s);
	struct group_probe p = { 0 };
	int ok_out = -1, slow_out = -1;
	pf_call calls[] = {
		{ &g_ok_flow, &p, &ok_out, NULL, 77, PF_PENDING, NULL },
		{ &g_fail_now_flow, &p, NULL, NULL, 77, PF_PENDING, NULL },
		{ &g_slow_flow, &p, &slow_out, NULL, 77, PF_PENDING, NULL },
		{ &g_fail_now_flow, &p, NULL, NULL, 77, PF_PENDING, NULL },
	};
	pf_parallel_stats st = { 99, 99, 99, 99 };
	ck_assert_int_eq(pf_ctx_parallel_settled(c, calls, 4, &st), 0);
	ck_assert_uint_eq(st.total, 4);
	ck_assert_uint_eq(st.succeeded, 2);
	ck_assert_uint_eq(st.failed, 2);
	ck_assert_int_eq(calls[0].status, PF_COMPLETED);
	ck_assert_int_eq(calls[0].result, 0);
	ck_assert_int_eq(ok_out, 5);
	ck_assert_int_eq(calls[2].status, PF_COMPLETED);
	ck_assert_int_eq(calls[2].result, 0);
	ck_assert_int_eq(slow_out, 9);
	ck_assert_int_eq(atomic_load(&p.slow_saw_abort), 0);
	ck_assert_int_eq(calls[1].status, PF_FAILED);
	ck_assert_int_eq(calls[3].status, PF_FAILED);
	/* Each holds its own code: one got E_FAIL2, the other E_FAIL3. */
	ck_assert(calls[1].result == E_FAIL2 || calls[1].result == E_FAIL3);
	ck_assert(calls[3].result == E_FAIL2 || calls[3].result == E_FAIL3);
	ck_assert_int_ne(calls[1].result, calls[3].result);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "n == 0 returns 0; stats may be NULL." */
START_TEST(parallel_empty_and_null_stats)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	pf_call none[1];
	pf_parallel_stats st = { 99, 99, 99, 99 };
	ck_assert_int_eq(pf_ctx_parallel(c, none, 0, &st), 0);
	ck_assert_uint_eq(st.total, 0);
	ck_assert_uint_eq(st.succeeded, 0);
	ck_assert_uint_eq(st.failed, 0);
	st = (pf_parallel_stats){ 99, 99, 99, 99 };
	ck_assert_int_eq(pf_ctx_parallel_settled(c, none, 0, &st), 0);
	ck_assert_uint_eq(st.total, 0);
	ck_assert_int_eq(pf_ctx_parallel(c, none, 0, NULL), 0);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, none, 0, NULL), 0);

	int in = 3, out = 0;
	pf_call one[] = { { &square_flow, &in, &out, NULL, 0, PF_PENDING, NULL } };
	ck_assert_int_eq(pf_ctx_parallel(c, one, 1, NULL), 0);
	ck_assert_int_eq(out, 9);
	out = 0;
	ck_assert_int_eq(pf_ctx_parallel_settled(c, one, 1, NULL), 0);
	ck_assert_int_eq(out, 9);

	struct group_probe p = { 0 };
	pf_call bad[] = {
		{ &g_fail_now_flow, &p, NULL, NULL, 0, PF_PENDING, NULL },
	};
	ck_assert_int_eq(pf_ctx_parallel(c, bad, 1, NULL), E_FAIL2);
	ck_assert_int_eq(bad[0].status, PF_FAILED);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, bad, 1, NULL), 0);
	ck_assert_int_eq(bad[0].result, E_FAIL3);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

struct family {
	pf_ctx *root;
	pf_ctx *parent_of[3];
	uint32_t depth[3];
	bool par[3];
	int rc;
	bool settled;
	pf_parallel_stats st;
};

struct family_slot {
	struct family *f;
	int index;
};

static int
family_child(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	const struct family_slot *sl = input;
	sl->f->parent_of[sl->index] = pf_ctx_parent(ctx);
	sl->f->depth[sl->index] = UINT32_MAX;
	pf_ctx_get(ctx, &pf_flow_depth_tag, &sl->f->depth[sl->index]);
	pf_ctx_get(ctx, &pf_flow_is_parallel_tag, &sl->f->par[sl->index]);
	return 0;
}

static const pf_flow family_child_flow = { "family_child", family_child, 0,
	0 };

static int
family_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct family *f = (struct family *)input;
	f->root = ctx;
	struct family_slot sl[3] = { { f, 0 }, { f, 1 }, { f, 2 } };
	pf_call calls[3];
	for (int i = 0; i < 3; i++)
		calls[i] = (pf_call){ &family_child_flow, &sl[i], NULL, NULL, 0,
			PF_PENDING, NULL };
	f->rc = f->settled ? pf_ctx_parallel_settled(ctx, calls, 3, &f->st) :
	    pf_ctx_parallel(ctx, calls, 3, &f->st);
	return 0;
}

static const pf_flow family_root_flow = { "family_root", family_root, 0, 0 };

/* "Calls are direct children of the calling context (depth + 1) and see
 * pf_flow_is_parallel_tag == true"; also from a handler on a one-thread
 * pool (the waiting worker runs the calls). */
START_TEST(parallel_calls_are_direct_children)
{
	for (unsigned threads = 1; threads <= 2; threads++) {
		pf_scope *s = new_scope(threads);
		struct family f;
		memset(&f, 0, sizeof(f));
		f.settled = _i != 0;
		ck_assert_int_eq(pf_scope_run(s, &family_root_flow, &f, NULL,
		    NULL), 0);
		ck_assert_int_eq(f.rc, 0);
		ck_assert_uint_eq(f.st.succeeded, 3);
		for (int i = 0; i < 3; i++) {
			ck_assert_ptr_nonnull(f.root);
			ck_assert_ptr_eq(f.parent_of[i], f.root);
			ck_assert_uint_eq(f.depth[i], 1);
			ck_assert_msg(f.par[i], "%s call %d: "
			    "pf_flow_is_parallel_tag is false",
			    f.settled ? "parallel_settled" : "parallel", i);
		}
		ck_assert_int_eq(pf_scope_dispose(s), 0);
	}
}
END_TEST

/* ------------------------------------------------------- journal (9) */

struct jprobe {
	atomic_int runs;
	atomic_int started;
	atomic_int gate;  /* > 0 lets a gated run finish */
	bool gated, loop;
	int code;
};

static int
jflow_handler(pf_ctx *ctx, const void *input, void *output)
{
	struct jprobe *p = (struct jprobe *)input;
	int n = atomic_fetch_add_explicit(&p->runs, 1, memory_order_relaxed) +
	    1;
	atomic_fetch_add_explicit(&p->started, 1, memory_order_release);
	if (p->gated && !await_at_least(&p->gate, 1))
		return E_NEVER;
	if (p->loop)
		return await_abort(ctx) ? E_LOOPED : E_NEVER;
	*(int *)output = 100 + n;
	return p->code;
}

static const pf_flow jflow = { "jflow", jflow_handler, 0, sizeof(int) };

static void
count_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)st;
	atomic_fetch_add_explicit((atomic_int *)data, 1, memory_order_relaxed);
}

/* "runs at most once per parent context and key"; "pf_ctx_run returns its
 * recorded result or error". */
START_TEST(journal_runs_once_per_key)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	struct jprobe p = { 0 };
	pf_exec_options o = { 0 };
	o.key = "k";
	int out1 = -1, out2 = -1;
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &p, &out1, &o), 0);
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &p, &out2, &o), 0);
	ck_assert_int_eq(atomic_load(&p.runs), 1);
	ck_assert_int_eq(out1, 101);
	ck_assert_int_eq(out2, 101);

	/* A recorded error is returned again, without running. */
	struct jprobe q = { 0 };
	q.code = E_FAIL1;
	o.key = "failing";
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &q, NULL, &o), E_FAIL1);
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &q, NULL, &o), E_FAIL1);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &q, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), E_FAIL1);
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	pf_exec_release(e);
	ck_assert_int_eq(atomic_load(&q.runs), 1);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_ctx_exec hands back the first execution (retained)" (same id),
 * "creates nothing and runs nothing (no new id, no callbacks ...)". */
START_TEST(journal_exec_returns_first_execution)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	struct jprobe p = { 0 };
	atomic_int first_cb = 0, second_cb = 0;
	pf_exec_options o1 = { 0 }, o2 = { 0 };
	o1.key = "same";
	o1.on_status = count_status;
	o1.on_status_data = &first_cb;
	o2.key = "same";
	o2.on_status = count_status;
	o2.on_status_data = &second_cb;
	pf_exec *e1 = NULL, *e2 = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &p, &o1, &e1), 0);
	ck_assert_int_eq(pf_exec_wait(e1, NULL), 0);
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &p, &o2, &e2), 0);
	ck_assert_ptr_nonnull(e2);
	ck_assert_ptr_eq(e2, e1);
	ck_assert_str_eq(pf_exec_id(e2), pf_exec_id(e1));
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(e2, &out), 0);
	ck_assert_int_eq(out, 101);
	ck_assert_int_eq(atomic_load(&p.runs), 1);
	ck_assert_int_eq(atomic_load(&first_cb), 3); /* pending, running, completed */
	ck_assert_int_eq(atomic_load(&second_cb), 0);
	/* Retained: releasing one handle leaves the other usable. */
	pf_exec_release(e1);
	ck_assert_int_eq(pf_exec_status(e2), PF_COMPLETED);
	ck_assert_int_eq(strlen(pf_exec_id(e2)), 36);
	pf_exec_release(e2);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "A second caller while the first is still running gets the same
 * execution and waits on it." */
START_TEST(journal_second_caller_while_running)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	struct jprobe p = { 0 };
	p.gated = true;
	pf_exec_options o = { 0 };
	o.key = "gated";
	pf_exec *e1 = NULL, *e2 = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &p, &o, &e1), 0);
	ck_assert(await_at_least(&p.started, 1));
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &p, &o, &e2), 0);
	ck_assert_str_eq(pf_exec_id(e2), pf_exec_id(e1));
	ck_assert_int_eq(pf_exec_status(e2), PF_RUNNING);
	ck_assert_int_eq(pf_exec_try(e2, NULL), PF_EAGAIN);
	atomic_store_explicit(&p.gate, 1, memory_order_release);
	int out1 = -1, out2 = -1;
	ck_assert_int_eq(pf_exec_wait(e2, &out2), 0);
	ck_assert_int_eq(pf_exec_wait(e1, &out1), 0);
	ck_assert_int_eq(out1, 101);
	ck_assert_int_eq(out2, 101);
	ck_assert_int_eq(atomic_load(&p.runs), 1);
	pf_exec_release(e1);
	pf_exec_release(e2);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "keys compared by content" */
START_TEST(journal_keys_compared_by_content)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	struct jprobe p = { 0 };
	char k1[16], k2[16];
	strcpy(k1, "by-content");
	strcpy(k2, "by-content");
	ck_assert_ptr_ne(k1, k2);
	pf_exec_options o = { 0 };
	o.key = k1;
	int out = -1;
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &p, &out, &o), 0);
	o.key = k2;
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &p, &out, &o), 0);
	ck_assert_int_eq(atomic_load(&p.runs), 1);
	/* The key is copied: changing the first buffer changes nothing. */
	strcpy(k1, "changed");
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &p, &out, &o), 0);
	ck_assert_int_eq(atomic_load(&p.runs), 1);
	/* A different key runs anew. */
	o.key = "another";
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &p, &out, &o), 0);
	ck_assert_int_eq(atomic_load(&p.runs), 2);
	ck_assert_int_eq(out, 102);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "An entry whose execution ended cancelled is dropped, so the next call
 * runs anew." */
START_TEST(journal_cancelled_entry_dropped)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	struct jprobe a = { 0 }, b = { 0 };
	a.loop = true;
	pf_exec_options o = { 0 };
	o.key = "retry";
	pf_exec *e1 = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &a, &o, &e1), 0);
	ck_assert(await_at_least(&a.started, 1));
	char id1[37];
	snprintf(id1, sizeof(id1), "%s", pf_exec_id(e1));
	ck_assert_int_eq(pf_exec_abort(e1), 0);
	ck_assert_int_eq(pf_exec_wait(e1, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e1), PF_CANCELLED);
	pf_exec_release(e1);

	pf_exec *e2 = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &jflow, &b, &o, &e2), 0);
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(e2, &out), 0);
	ck_assert_str_ne(pf_exec_id(e2), id1);
	ck_assert_int_eq(atomic_load(&b.runs), 1);
	ck_assert_int_eq(out, 101);
	pf_exec_release(e2);
	/* The new entry is journaled as usual. */
	ck_assert_int_eq(pf_ctx_run(c, &jflow, &b, NULL, &o), 0);
	ck_assert_int_eq(atomic_load(&b.runs), 1);
	ck_assert_int_eq(atomic_load(&a.runs), 1);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "per parent context": different parents have separate journals. */
START_TEST(journal_separate_per_parent)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c1 = new_standalone(s);
	pf_ctx *c2 = new_standalone(s);
	struct jprobe p = { 0 };
	pf_exec_options o = { 0 };
	o.key = "k";
	int out1 = -1, out2 = -1;
	ck_assert_int_eq(pf_ctx_run(c1, &jflow, &p, &out1, &o), 0);
	ck_assert_int_eq(pf_ctx_run(c2, &jflow, &p, &out2, &o), 0);
	ck_assert_int_eq(atomic_load(&p.runs), 2);
	ck_assert_int_ne(out1, out2);
	ck_assert_int_eq(pf_ctx_run(c1, &jflow, &p, &out1, &o), 0);
	ck_assert_int_eq(pf_ctx_run(c2, &jflow, &p, &out2, &o), 0);
	ck_assert_int_eq(atomic_load(&p.runs), 2);
	pf_ctx_release(c1);
	pf_ctx_release(c2);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ---------------------------------------------------- extensions (10) */

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static char trace[2048];

static void
trace_reset(void)
{
	pthread_mutex_lock(&trace_lock);
	trace[0] = '\0';
	pthread_mutex_unlock(&trace_lock);
}

static void
trace_add(const char *a, const char *b)
{
	pthread_mutex_lock(&trace_lock);
	size_t len = strlen(trace);
	snprintf(trace + len, sizeof(trace) - len, "%s%s%s",
	    len != 0 ? " " : "", a, b);
	pthread_mutex_unlock(&trace_lock);
}

static void
trace_get(char *dst, size_t n)
{
	pthread_mutex_lock(&trace_lock);
	snprintf(dst, n, "%s", trace);
	pthread_mutex_unlock(&trace_lock);
}

static int
tracing_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	trace_add((const char *)state, "-before");
	int rc = pf_next_call(next);
	trace_add((const char *)state, "-after");
	return rc;
}

static const pf_extension ext_a = { "a", NULL, tracing_wrap, NULL, "a" };
static const pf_extension ext_b = { "b", NULL, tracing_wrap, NULL, "b" };

static int
traced(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	trace_add("handler", "");
	return 0;
}

static const pf_flow traced_flow = { "traced", traced, 0, 0 };

static int
traced_step(pf_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	trace_add("step", "");
	return 0;
}

static int
traced_nest(pf_ctx *ctx, const void *input, void *output)
{
	(void)input;
	(void)output;
	trace_add("handler-start", "");
	int rc = pf_ctx_exec_fn(ctx, "step", traced_step, NULL);
	trace_add("handler-end", "");
	return rc;
}

static const pf_flow traced_nest_flow = { "traced_nest", traced_nest, 0, 0 };

/* "The first registered extension is the outermost." */
START_TEST(ext_first_registered_outermost)
{
	trace_reset();
	const pf_extension *const x[] = { &ext_a, &ext_b };
	pf_scope *s = new_scope_ext(2, x, 2);
	ck_assert_int_eq(pf_scope_run(s, &traced_flow, NULL, NULL, NULL), 0);
	char got[2048];
	trace_get(got, sizeof(got));
	ck_assert_str_eq(got, "a-before b-before handler b-after a-after");
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_scope_use: "appended: innermost". */
START_TEST(ext_use_appends_innermost)
{
	trace_reset();
	const pf_extension *const x[] = { &ext_a };
	pf_scope *s = new_scope_ext(2, x, 1);
	ck_assert_int_eq(pf_scope_use(s, &ext_b), 0);
	ck_assert_int_eq(pf_scope_run(s, &traced_flow, NULL, NULL, NULL), 0);
	char got[2048];
	trace_get(got, sizeof(got));
	ck_assert_str_eq(got, "a-before b-before handler b-after a-after");
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "work that runs inside a handler, such as fn steps, ... nests inside the
 * parent's pf_next_call". */
START_TEST(ext_fn_step_nests_inside_handler)
{
	trace_reset();
	const pf_extension *const x[] = { &ext_a };
	pf_scope *s = new_scope_ext(2, x, 1);
	ck_assert_int_eq(pf_scope_run(s, &traced_nest_flow, NULL, NULL, NULL),
	    0);
	char got[2048];
	trace_get(got, sizeof(got));
	ck_assert_str_eq(got, "a-before handler-start a-before step a-after "
	    "handler-end a-after");
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* One operation as an extension saw it. */
struct op_rec {
	pf_target target;
	char name[32];
	char key[16];
	bool has_key;
	pf_ctx *ctx, *parent;
	const pf_flow *flow;
	const void *input;
	size_t count;
	bool settled;
	bool meta_name_found, par;
	char meta_name[32];
	uint32_t depth;
	pthread_t thread;
};

#define MAX_RECS 64

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct op_rec recs[MAX_RECS];
static int n_recs;

static void
recs_reset(void)
{
	pthread_mutex_lock(&rec_lock);
	n_recs = 0;
	memset(recs, 0, sizeof(recs));
	pthread_mutex_unlock(&rec_lock);
}

static int
recording_wrap(pf_scope *s, pf_next *next, const pf_operation *op,
    void *state)
{
	(void)s;
	(void)state;
	struct op_rec r;
	memset(&r, 0, sizeof(r));
	r.target = op->target;
	snprintf(r.name, sizeof(r.name), "%s", op->name ? op->name : "(null)");
	r.has_key = op->key != NULL;
	snprintf(r.key, sizeof(r.key), "%s", op->key ? op->key : "");
	r.ctx = op->context;
	r.parent = pf_ctx_parent(op->context);
	r.flow = op->flow;
	r.input = op->input;
	r.count = op->count;
	r.settled = op->settled;
	const char *mn = NULL;
	r.meta_name_found = pf_ctx_find(op->context, &pf_flow_name_tag, &mn);
	snprintf(r.meta_name, sizeof(r.meta_name), "%s", mn ? mn : "");
	r.depth = UINT32_MAX;
	pf_ctx_find(op->context, &pf_flow_depth_tag, &r.depth);
	pf_ctx_find(op->context, &pf_flow_is_parallel_tag, &r.par);
	r.thread = pthread_self();
	pthread_mutex_lock(&rec_lock);
	if (n_recs < MAX_RECS)
		recs[n_recs++] = r;
	pthread_mutex_unlock(&rec_lock);
	return pf_next_call(next);
}

static const pf_extension ext_rec = { "rec", NULL, recording_wrap, NULL,
	NULL };

/* Copies of the records with this name, in order; returns how many. */
static int
recs_named(const char *name, struct op_rec *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&rec_lock);
	for (int i = 0; i < n_recs; i++)
		if (strcmp(recs[i].name, name) == 0 && n < max)
			out[n++] = recs[i];
	pthread_mutex_unlock(&rec_lock);
	return n;
}

struct op_probe {
	pf_ctx *root, *child, *step;
	pthread_t root_thread, step_thread;
	int child_in;
	int rc_child, rc_step, rc_par, rc_settled;
};

static int
op_child(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct op_probe *p = *(struct op_probe *const *)input;
	p->child = ctx;
	return 0;
}

static const pf_flow op_child_flow = { "op_child", op_child,
	sizeof(struct op_probe *), 0 };
static const pf_flow op_par_flow = { "op_par", noop, 0, 0 };

static int
op_step(pf_ctx *ctx, void *arg)
{
	struct op_probe *p = arg;
	p->step = ctx;
	p->step_thread = pthread_self();
	return 0;
}

static int
op_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct op_probe *p = (struct op_probe *)input;
	p->root = ctx;
	p->root_thread = pthread_self();
	pf_exec_options o = { 0 };
	o.key = "kk";
	p->rc_child = pf_ctx_run(ctx, &op_child_flow, &p, NULL, &o);
	p->rc_step = pf_ctx_exec_fn(ctx, "op_step", op_step, p);
	pf_call calls[2] = {
		{ &op_par_flow, NULL, NULL, NULL, 0, PF_PENDING, NULL },
		{ &op_par_flow, NULL, NULL, NULL, 0, PF_PENDING, NULL },
	};
	p->rc_par = pf_ctx_parallel(ctx, calls, 2, NULL);
	p->rc_settled = pf_ctx_parallel_settled(ctx, calls, 1, NULL);
	return 0;
}

static const pf_flow op_root_flow = { "op_root", op_root, 0, 0 };

/* "root flows, child flows, fn steps and parallel groups are operations";
 * "op->context is the new child context for flows and fn steps (its flow
 * metadata tags already set), the calling context for parallel"; "run on
 * the thread that runs it". */
START_TEST(ext_operations_targets_and_contexts)
{
	recs_reset();
	const pf_extension *const x[] = { &ext_rec };
	pf_scope *s = new_scope_ext(2, x, 1);
	struct op_probe p;
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(pf_scope_run(s, &op_root_flow, &p, NULL, NULL), 0);
	ck_assert_int_eq(p.rc_child, 0);
	ck_assert_int_eq(p.rc_step, 0);
	ck_assert_int_eq(p.rc_par, 0);
	ck_assert_int_eq(p.rc_settled, 0);

	struct op_rec r[4];
	ck_assert_int_eq(recs_named("op_root", r, 4), 1);
	ck_assert_int_eq(r[0].target, PF_TARGET_FLOW);
	ck_assert_ptr_eq(r[0].flow, &op_root_flow);
	ck_assert_ptr_eq(r[0].ctx, p.root);
	ck_assert_ptr_null(r[0].parent);
	ck_assert(r[0].meta_name_found);
	ck_assert_str_eq(r[0].meta_name, "op_root");
	ck_assert_uint_eq(r[0].depth, 0);
	ck_assert(!r[0].has_key);
	ck_assert(pthread_equal(r[0].thread, p.root_thread));

	ck_assert_int_eq(recs_named("op_child", r, 4), 1);
	ck_assert_int_eq(r[0].target, PF_TARGET_FLOW);
	ck_assert_ptr_eq(r[0].flow, &op_child_flow);
	ck_assert_ptr_eq(r[0].ctx, p.child);
	ck_assert_ptr_eq(r[0].parent, p.root);
	ck_assert(r[0].meta_name_found);
	ck_assert_str_eq(r[0].meta_name, "op_child");
	ck_assert_uint_eq(r[0].depth, 1);
	ck_assert(r[0].has_key);
	ck_assert_str_eq(r[0].key, "kk");

	ck_assert_int_eq(recs_named("op_step", r, 4), 1);
	ck_assert_int_eq(r[0].target, PF_TARGET_FN);
	ck_assert_ptr_null(r[0].flow);
	ck_assert_ptr_eq(r[0].ctx, p.step);
	ck_assert_ptr_eq(r[0].parent, p.root);
	ck_assert(pthread_equal(r[0].thread, p.step_thread));
	/* An fn step sees its nearest flow ancestor's metadata. */
	ck_assert_str_eq(r[0].meta_name, "op_root");

	ck_assert_int_eq(recs_named("parallel", r, 4), 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(r[i].target, PF_TARGET_PARALLEL);
		ck_assert_ptr_eq(r[i].ctx, p.root);
		ck_assert_ptr_null(r[i].flow);
	}
	ck_assert_uint_eq(r[0].count, 2);
	ck_assert(!r[0].settled);
	ck_assert_uint_eq(r[1].count, 1);
	ck_assert(r[1].settled);

	ck_assert_int_eq(recs_named("op_par", r, 4), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(r[i].target, PF_TARGET_FLOW);
		ck_assert_ptr_eq(r[i].parent, p.root);
		ck_assert_uint_eq(r[i].depth, 1);
	}
	/* The two calls of pf_ctx_parallel (the settled group's call is
	 * checked in parallel_calls_are_direct_children). */
	ck_assert(r[0].par);
	ck_assert(r[1].par);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static atomic_int skip_runs;

static int
skip_counted(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_fetch_add_explicit(&skip_runs, 1, memory_order_relaxed);
	return 0;
}

static const pf_flow skip_ok_flow = { "skip_ok", skip_counted, 0, 0 };
static const pf_flow skip_fail_flow = { "skip_fail", skip_counted, 0, 0 };
static const pf_flow skip_none_flow = { "skip_none", skip_counted, 0, 0 };

static int
skipping_wrap(pf_scope *s, pf_next *next, const pf_operation *op,
    void *state)
{
	(void)s;
	(void)state;
	if (strcmp(op->name, "skip_ok") == 0)
		return 0;
	if (strcmp(op->name, "skip_fail") == 0)
		return E_FAIL2;
	return pf_next_call(next);
}

static const pf_extension ext_skip = { "skip", NULL, skipping_wrap, NULL,
	NULL };

/* "An extension may skip pf_next_call (its return value becomes the
 * handler's result: 0 completes, anything else fails)". */
START_TEST(ext_skip_next_sets_result)
{
	atomic_store(&skip_runs, 0);
	const pf_extension *const x[] = { &ext_skip };
	pf_scope *s = new_scope_ext(2, x, 1);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &skip_ok_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_exec(s, &skip_fail_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), E_FAIL2);
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), E_FAIL2);
	pf_exec_release(e);
	ck_assert_int_eq(atomic_load(&skip_runs), 0);
	ck_assert_int_eq(pf_scope_run(s, &skip_none_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&skip_runs), 1);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static atomic_int twice_first, twice_second;

static int
twice_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	(void)state;
	int first = pf_next_call(next);
	atomic_store_explicit(&twice_first, first, memory_order_relaxed);
	atomic_store_explicit(&twice_second, pf_next_call(next),
	    memory_order_relaxed);
	return first;
}

static const pf_extension ext_twice = { "twice", NULL, twice_wrap, NULL,
	NULL };

/* "or call it once"; pf_next_call: "at most once per wrap (PF_EINVAL after
 * that)". */
START_TEST(ext_next_call_twice_einval)
{
	atomic_store(&skip_runs, 0);
	atomic_store(&twice_first, 1);
	atomic_store(&twice_second, 1);
	const pf_extension *const x[] = { &ext_twice };
	pf_scope *s = new_scope_ext(2, x, 1);
	ck_assert_int_eq(pf_scope_run(s, &skip_none_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&twice_first), 0);
	ck_assert_int_eq(atomic_load(&twice_second), PF_EINVAL);
	ck_assert_int_eq(atomic_load(&skip_runs), 1);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

struct use_probe {
	atomic_int started, gate;
	int rc_child;
};

static int
use_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct use_probe *p = (struct use_probe *)input;
	atomic_store_explicit(&p->started, 1, memory_order_release);
	if (!await_at_least(&p->gate, 1))
		return E_NEVER;
	p->rc_child = pf_ctx_run(ctx, &op_par_flow, NULL, NULL, NULL);
	return 0;
}

static const pf_flow use_root_flow = { "use_root", use_root, 0, 0 };

/* "pf_scope_use may be called while work runs; it applies to operations
 * that start after it returns." */
START_TEST(ext_use_while_running_applies_later)
{
	recs_reset();
	pf_scope *s = new_scope(2);
	struct use_probe p = { 0 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &use_root_flow, &p, NULL, &e), 0);
	ck_assert(await_at_least(&p.started, 1));
	ck_assert_int_eq(pf_scope_use(s, &ext_rec), 0);
	atomic_store_explicit(&p.gate, 1, memory_order_release);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(p.rc_child, 0);
	struct op_rec r[4];
	ck_assert_int_eq(recs_named("use_root", r, 4), 0);
	ck_assert_int_eq(recs_named("op_par", r, 4), 1);
	ck_assert_int_eq(r[0].target, PF_TARGET_FLOW);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(recs_named("noop", r, 4), 1);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

struct blocker_probe {
	atomic_int started, gate, victim_runs;
};

static int
blocker(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct blocker_probe *p = (struct blocker_probe *)input;
	PF_ATOMIC_OBJ(&p->gate); /* a C11 atomic: see src/annotate.h */
	atomic_store_explicit(&p->started, 1, memory_order_release);
	for (long t = 0; t < BOUND_US; t += STEP_US) {
		if (atomic_load_explicit(&p->gate, memory_order_acquire) ||
		    pf_ctx_aborted(ctx))
			return pf_ctx_throw_if_aborted(ctx);
		pause_us(STEP_US);
	}
	return E_NEVER;
}

static int
victim(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	struct blocker_probe *p = (struct blocker_probe *)input;
	atomic_fetch_add_explicit(&p->victim_runs, 1, memory_order_relaxed);
	return 0;
}

static const pf_flow blocker_flow = { "blocker", blocker, 0, 0 };
static const pf_flow victim_flow = { "victim", victim, 0, 0 };

/* "Executions cancelled before they start never reach the chain." */
START_TEST(ext_cancelled_before_start_skips_chain)
{
	recs_reset();
	const pf_extension *const x[] = { &ext_rec };
	pf_scope *s = new_scope_ext(1, x, 1);
	struct blocker_probe p = { 0 };
	pf_exec *b = NULL, *v = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &blocker_flow, &p, NULL, &b), 0);
	ck_assert(await_at_least(&p.started, 1));
	ck_assert_int_eq(pf_scope_exec(s, &victim_flow, &p, NULL, &v), 0);
	ck_assert_int_eq(pf_exec_status(v), PF_PENDING);
	ck_assert_int_eq(pf_exec_abort(v), 0);
	ck_assert_int_eq(pf_exec_status(v), PF_CANCELLED);
	atomic_store_explicit(&p.gate, 1, memory_order_release);
	ck_assert_int_eq(pf_exec_wait(b, NULL), 0);
	ck_assert_int_eq(pf_exec_wait(v, NULL), PF_ECANCELED);
	/* Run something after it so the queue has surely drained. */
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	struct op_rec r[4];
	ck_assert_int_eq(recs_named("victim", r, 4), 0);
	ck_assert_int_eq(recs_named("blocker", r, 4), 1);
	ck_assert_int_eq(atomic_load(&p.victim_runs), 0);
	pf_exec_release(b);
	pf_exec_release(v);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(recs_named("victim", r, 4), 0);
}
END_TEST

struct life {
	atomic_int inits, disposes, wraps;
	pf_scope *init_scope, *dispose_scope;
	int init_rc;
};

static int
life_init(pf_scope *s, void *state)
{
	struct life *l = state;
	l->init_scope = s;
	atomic_fetch_add_explicit(&l->inits, 1, memory_order_relaxed);
	return l->init_rc;
}

static void
life_dispose(pf_scope *s, void *state)
{
	struct life *l = state;
	l->dispose_scope = s;
	atomic_fetch_add_explicit(&l->disposes, 1, memory_order_relaxed);
}

static int
life_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	struct life *l = state;
	atomic_fetch_add_explicit(&l->wraps, 1, memory_order_relaxed);
	return pf_next_call(next);
}

/* init: "Called once by pf_scope_create / pf_scope_use"; dispose: "Called
 * once by pf_scope_dispose after every execution ended." */
START_TEST(ext_init_at_registration_dispose_at_scope_dispose)
{
	static struct life l1, l2;
	memset(&l1, 0, sizeof(l1));
	memset(&l2, 0, sizeof(l2));
	const pf_extension e1 = { "l1", life_init, life_wrap, life_dispose,
		&l1 };
	const pf_extension e2 = { "l2", life_init, life_wrap, life_dispose,
		&l2 };
	const pf_extension *const x[] = { &e1 };
	pf_scope *s = new_scope_ext(2, x, 1);
	ck_assert_int_eq(atomic_load(&l1.inits), 1);
	ck_assert_ptr_eq(l1.init_scope, s);
	ck_assert_int_eq(atomic_load(&l1.disposes), 0);
	ck_assert_int_eq(pf_scope_use(s, &e2), 0);
	ck_assert_int_eq(atomic_load(&l2.inits), 1);
	ck_assert_ptr_eq(l2.init_scope, s);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&l1.wraps), 1);
	ck_assert_int_eq(atomic_load(&l2.wraps), 1);
	ck_assert_int_eq(atomic_load(&l1.disposes), 0);
	ck_assert_int_eq(atomic_load(&l2.disposes), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(atomic_load(&l1.inits), 1);
	ck_assert_int_eq(atomic_load(&l1.disposes), 1);
	ck_assert_int_eq(atomic_load(&l2.disposes), 1);
	ck_assert_ptr_eq(l1.dispose_scope, s);
}
END_TEST

/* "nonzero refuses it"; "if one fails, the ones already initialised are
 * disposed and its code is returned". */
START_TEST(ext_init_failure_refuses)
{
	static struct life good, bad;
	memset(&good, 0, sizeof(good));
	memset(&bad, 0, sizeof(bad));
	bad.init_rc = E_INIT;
	const pf_extension eg = { "good", life_init, life_wrap, life_dispose,
		&good };
	const pf_extension eb = { "bad", life_init, life_wrap, life_dispose,
		&bad };
	const pf_extension *const x[] = { &eg, &eb };
	pf_scope_options o = { 2, x, 2, NULL, 0 };
	pf_scope *sentinel = (pf_scope *)&o, *s = sentinel;
	ck_assert_int_eq(pf_scope_create(&s, &o), E_INIT);
	ck_assert_ptr_eq(s, sentinel);
	ck_assert_int_eq(atomic_load(&good.inits), 1);
	ck_assert_int_eq(atomic_load(&good.disposes), 1);
	ck_assert_int_eq(atomic_load(&bad.inits), 1);
	ck_assert_int_eq(atomic_load(&bad.disposes), 0);

	/* pf_scope_use: init's code, and the extension is not used. */
	memset(&bad, 0, sizeof(bad));
	bad.init_rc = E_INIT;
	s = new_scope(2);
	ck_assert_int_eq(pf_scope_use(s, &eb), E_INIT);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&bad.wraps), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(atomic_load(&bad.disposes), 0);
}
END_TEST

/* ----------------------------------------------------------- ids (11) */

static void
check_uuid_text(const char *id)
{
	ck_assert_ptr_nonnull(id);
	ck_assert_uint_eq(strlen(id), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_int_eq(id[i], '-');
		else
			ck_assert_msg(isxdigit((unsigned char)id[i]),
			    "non-hex at %d in %s", i, id);
	}
	ck_assert_int_eq(id[14], '7'); /* version 7 */
	ck_assert_msg(strchr("89abAB", id[19]) != NULL,
	    "variant bits wrong in %s", id); /* 10xx */
}

static int
id_step(pf_ctx *ctx, void *arg)
{
	snprintf(arg, 37, "%s", pf_ctx_id(ctx));
	return 0;
}

/* "Ids are RFC 9562 UUIDs (version 7 recommended)"; pf_exec_id is "the
 * same as its context's id". */
START_TEST(id_format_and_exec_equals_ctx)
{
	pf_scope *s = new_scope(2);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, NULL, &e), 0);
	check_uuid_text(pf_exec_id(e));
	ck_assert_str_eq(pf_exec_id(e), pf_ctx_id(pf_exec_ctx(e)));
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_str_eq(pf_exec_id(e), pf_ctx_id(pf_exec_ctx(e)));
	pf_exec_release(e);

	pf_ctx *c = new_standalone(s);
	check_uuid_text(pf_ctx_id(c));
	char step_id[37] = "";
	ck_assert_int_eq(pf_ctx_exec_fn(c, "id", id_step, step_id), 0);
	check_uuid_text(step_id);
	ck_assert_str_ne(step_id, pf_ctx_id(c));
	ck_assert_int_eq(pf_ctx_exec(c, &noop_flow, NULL, NULL, &e), 0);
	check_uuid_text(pf_exec_id(e));
	ck_assert_str_eq(pf_exec_id(e), pf_ctx_id(pf_exec_ctx(e)));
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

struct id_batch {
	pf_scope *s;
	char (*ids)[37];
	long n;
	int errors;
};

static void *
id_submitter(void *arg)
{
	struct id_batch *b = arg;
	for (long i = 0; i < b->n; i++) {
		pf_exec *e = NULL;
		if (pf_scope_exec(b->s, &noop_flow, NULL, NULL, &e) != 0) {
			b->errors++;
			b->ids[i][0] = '\0';
			continue;
		}
		snprintf(b->ids[i], 37, "%s", pf_exec_id(e));
		pf_exec_release(e);
	}
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* "unique across threads" (10^4 executions, two submitting threads). */
START_TEST(ids_unique)
{
	pf_scope *s = new_scope(2);
	long n = pf_test_scale(10000);
	char (*ids)[37] = calloc((size_t)n, sizeof(*ids));
	ck_assert_ptr_nonnull(ids);
	struct id_batch b[2] = { { s, ids, n / 2, 0 },
		{ s, ids + n / 2, n - n / 2, 0 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, id_submitter,
		    &b[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(b[0].errors + b[1].errors, 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	qsort(ids, (size_t)n, sizeof(*ids), cmp_id);
	for (long i = 0; i < n; i++) {
		ck_assert_uint_eq(strlen(ids[i]), 36);
		if (i > 0)
			ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0,
			    "duplicate id %s", ids[i]);
	}
	check_uuid_text(ids[0]);
	check_uuid_text(ids[n - 1]);
	free(ids);
}
END_TEST

/* ------------------------------------------------------ bad input (12) */

static const pf_flow null_handler_flow = { "null_handler", NULL, 0, 0 };

static atomic_int int_runs;

static int
int_counted(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_fetch_add_explicit(&int_runs, 1, memory_order_relaxed);
	return 0;
}

static const pf_flow int_flow = { "int_in", int_counted, sizeof(int), 0 };

static void
status_nop(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)st;
	(void)data;
}

static void
listener_nop(pf_signal *s, void *data)
{
	(void)s;
	(void)data;
}

/* "NULL pointers ... return the documented code": the scope calls. */
START_TEST(null_args_scope)
{
	pf_scope_options o = { 2, NULL, 0, NULL, 0 };
	ck_assert_int_eq(pf_scope_create(NULL, &o), PF_EINVAL);
	ck_assert_int_eq(pf_scope_create(NULL, NULL), PF_EINVAL);
	pf_scope *sentinel = (pf_scope *)&o, *s = sentinel;
	o.n_extensions = 1; /* extensions NULL */
	ck_assert_int_eq(pf_scope_create(&s, &o), PF_EINVAL);
	o.n_extensions = 0;
	o.n_tags = 1; /* tags NULL */
	ck_assert_int_eq(pf_scope_create(&s, &o), PF_EINVAL);
	const pf_extension *const null_ext[] = { NULL };
	pf_scope_options o2 = { 2, null_ext, 1, NULL, 0 };
	ck_assert_int_eq(pf_scope_create(&s, &o2), PF_EINVAL);
	pf_tag_value null_tag[] = { { NULL, &o } };
	pf_scope_options o3 = { 2, NULL, 0, null_tag, 1 };
	ck_assert_int_eq(pf_scope_create(&s, &o3), PF_EINVAL);
	pf_scope_options o4 = { 1025, NULL, 0, NULL, 0 }; /* "at most 1024" */
	ck_assert_int_eq(pf_scope_create(&s, &o4), PF_EINVAL);
	ck_assert_ptr_eq(s, sentinel);

	ck_assert_int_eq(pf_scope_dispose(NULL), PF_EINVAL);
	ck_assert_uint_eq(pf_scope_threads(NULL), 0);
	ck_assert_int_eq(pf_scope_use(NULL, &ext_rec), PF_EINVAL);
	ck_assert_int_eq(pf_next_call(NULL), PF_EINVAL);

	s = new_scope(2);
	ck_assert_int_eq(pf_scope_use(s, NULL), PF_EINVAL);
	pf_exec *e = (pf_exec *)sentinel, *const e0 = e;
	ck_assert_int_eq(pf_scope_exec(NULL, &noop_flow, NULL, NULL, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_exec(s, NULL, NULL, NULL, &e), PF_EINVAL);
	ck_assert_int_eq(pf_scope_exec(s, &null_handler_flow, NULL, NULL, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_run(NULL, &noop_flow, NULL, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_run(s, NULL, NULL, NULL, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_scope_run(s, &null_handler_flow, NULL, NULL, NULL),
	    PF_EINVAL);
	pf_exec_options bt = { 0 };
	bt.n_tags = 1; /* tags NULL */
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, &bt, &e),
	    PF_EINVAL);
	ck_assert_ptr_eq(e, e0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_scope_exec: "PF_EINVAL (... opts->key set on a root)"; API.md: key is
 * a "journal key (child executions only)". */
START_TEST(root_key_einval)
{
	atomic_store(&int_runs, 0);
	pf_scope *s = new_scope(2);
	pf_exec_options ko = { 0 };
	ko.key = "root-key";
	int in = 1;
	pf_exec *e = NULL;
	int rc = pf_scope_exec(s, &int_flow, &in, &ko, &e);
	if (e != NULL) {
		pf_exec_wait(e, NULL);
		pf_exec_release(e);
	}
	int rc_run = pf_scope_run(s, &int_flow, &in, NULL, &ko);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(rc, PF_EINVAL);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(rc_run, PF_EINVAL);
	ck_assert_int_eq(atomic_load(&int_runs), 0);
}
END_TEST

/* The execution handle calls with NULL. */
START_TEST(null_args_exec)
{
	ck_assert_ptr_null(pf_exec_id(NULL));
	ck_assert_ptr_null(pf_exec_flow_name(NULL));
	ck_assert_int_eq(pf_exec_status(NULL), PF_PENDING);
	ck_assert_ptr_null(pf_exec_ctx(NULL));
	ck_assert_int_eq(pf_exec_abort(NULL), PF_EINVAL);
	ck_assert_int_eq(pf_exec_throw_if_aborted(NULL), PF_EINVAL);
	int out;
	ck_assert_int_eq(pf_exec_wait(NULL, &out), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait_for(NULL, &out, 0), PF_EINVAL);
	ck_assert_int_eq(pf_exec_try(NULL, &out), PF_EINVAL);
	ck_assert_int_eq(pf_exec_on_status(NULL, status_nop, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_exec_off_status(NULL, status_nop, NULL),
	    PF_EINVAL);
	ck_assert_ptr_null(pf_exec_retain(NULL));
	pf_exec_release(NULL);

	pf_scope *s = new_scope(2);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_on_status(e, NULL, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_exec_off_status(e, NULL, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* The context calls with NULL. */
START_TEST(null_args_ctx)
{
	pf_scope *s = new_scope(2);
	pf_ctx *sentinel = (pf_ctx *)&s, *c = sentinel;
	ck_assert_int_eq(pf_scope_create_execution(NULL, NULL, &c), PF_EINVAL);
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, NULL), PF_EINVAL);
	pf_ctx_options co = { 0 };
	co.n_tags = 1; /* tags NULL */
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &c), PF_EINVAL);
	ck_assert_ptr_eq(c, sentinel);

	ck_assert_ptr_null(pf_ctx_retain(NULL));
	pf_ctx_release(NULL);
	ck_assert_ptr_null(pf_ctx_id(NULL));
	ck_assert_ptr_null(pf_ctx_name(NULL));
	ck_assert_ptr_null(pf_ctx_parent(NULL));
	ck_assert_ptr_null(pf_ctx_scope(NULL));
	ck_assert_int_eq(pf_ctx_created_at(NULL), 0);
	ck_assert_int_eq(pf_ctx_started_at(NULL), 0);
	ck_assert_int_eq(pf_ctx_completed_at(NULL), 0);
	const char *msg = NULL;
	ck_assert_int_eq(pf_ctx_error(NULL, &msg), PF_EINVAL);
	ck_assert_ptr_null(pf_ctx_metadata(NULL));
	ck_assert_int_eq(pf_ctx_end(NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_abort(NULL), PF_EINVAL);
	ck_assert(!pf_ctx_aborted(NULL));
	ck_assert_int_eq(pf_ctx_throw_if_aborted(NULL), PF_EINVAL);
	/* pf_ctx_fail is documented to return its code: either that or
	 * PF_EINVAL is acceptable for a NULL context, as long as it does not
	 * crash. */
	int frc = pf_ctx_fail(NULL, E_FAIL1, "x");
	ck_assert(frc == PF_EINVAL || frc == E_FAIL1);
	ck_assert_int_eq(pf_ctx_exec_fn(NULL, "f", id_step, NULL), PF_EINVAL);

	pf_exec *e = (pf_exec *)sentinel, *const e0 = e;
	int in = 2;
	ck_assert_int_eq(pf_ctx_exec(NULL, &noop_flow, NULL, NULL, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_ctx_run(NULL, &noop_flow, NULL, NULL, NULL),
	    PF_EINVAL);
	pf_call calls[1] = { { &int_flow, &in, NULL, NULL, 0, PF_PENDING, NULL } };
	ck_assert_int_eq(pf_ctx_parallel(NULL, calls, 1, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_parallel_settled(NULL, calls, 1, NULL),
	    PF_EINVAL);

	c = new_standalone(s);
	ck_assert_int_eq(pf_ctx_exec_fn(c, "f", NULL, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_exec(c, NULL, NULL, NULL, &e), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_exec(c, &null_handler_flow, NULL, NULL, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_ctx_run(c, NULL, NULL, NULL, NULL), PF_EINVAL);
	ck_assert_ptr_eq(e, e0);
	ck_assert_int_eq(pf_ctx_parallel(c, NULL, 2, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, NULL, 2, NULL), PF_EINVAL);

	/* One bad call refuses the whole group: nothing started. */
	atomic_store(&int_runs, 0);
	pf_call mixed[] = {
		{ &int_flow, &in, NULL, NULL, 0, PF_PENDING, NULL },
		{ NULL, &in, NULL, NULL, 0, PF_PENDING, NULL },
	};
	ck_assert_int_eq(pf_ctx_parallel(c, mixed, 2, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, mixed, 2, NULL),
	    PF_EINVAL);
	mixed[1] = (pf_call){ &int_flow, NULL, NULL, NULL, 0, PF_PENDING, NULL };
	ck_assert_int_eq(pf_ctx_parallel(c, mixed, 2, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, mixed, 2, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(atomic_load(&int_runs), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* The tag and signal calls with NULL. */
START_TEST(null_args_tags_and_signal)
{
	static const pf_tag t = { "t", sizeof(int), NULL };
	static const pf_tag zero = { "zero", 0, NULL };
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	int v = 1;
	ck_assert_int_eq(pf_ctx_set(NULL, &t, &v), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_set(c, NULL, &v), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_set(c, &t, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_set(c, &zero, &v), PF_EINVAL); /* size > 0 */
	ck_assert_int_eq(pf_ctx_get(NULL, &t, &v), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_get(c, NULL, &v), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_get(c, &t, NULL), PF_EINVAL);
	ck_assert(!pf_ctx_find(NULL, &t, &v));
	ck_assert(!pf_ctx_find(c, NULL, &v));

	ck_assert_ptr_null(pf_ctx_signal(NULL));
	ck_assert(!pf_signal_aborted(NULL));
	ck_assert_int_eq(pf_signal_reason(NULL), PF_EINVAL);
	ck_assert_int_eq(pf_signal_fd(NULL), PF_EINVAL);
	pf_signal_listener l;
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(pf_signal_add_listener(NULL, &l, listener_nop, NULL),
	    PF_EINVAL);
	pf_signal *sig = pf_ctx_signal(c);
	ck_assert_ptr_nonnull(sig);
	ck_assert_int_eq(pf_signal_add_listener(sig, NULL, listener_nop, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_signal_remove_listener(NULL, &l), PF_EINVAL);
	ck_assert_int_eq(pf_signal_remove_listener(sig, NULL), PF_EINVAL);
	/* "PF_EINVAL (NULL, or l already added)" */
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, listener_nop, NULL),
	    0);
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, listener_nop, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_signal_remove_listener(sig, &l), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "input must be non-NULL when the flow's input_size > 0" */
START_TEST(null_input_for_sized_flow)
{
	atomic_store(&int_runs, 0);
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &int_flow, NULL, NULL, &e),
	    PF_EINVAL);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(pf_scope_exec(s, &int_flow, NULL, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_run(s, &int_flow, NULL, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_ctx_exec(c, &int_flow, NULL, NULL, &e), PF_EINVAL);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(pf_ctx_run(c, &int_flow, NULL, NULL, NULL),
	    PF_EINVAL);
	int in = 4;
	ck_assert_int_eq(pf_scope_run(s, &int_flow, &in, NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&int_runs), 1);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

struct shut_probe {
	pf_scope *s;
	pf_ctx *standalone;
	atomic_int started;
	bool saw_abort;
	int rc_exec, rc_run, rc_create, rc_use, rc_ctx_exec, rc_ctx_run;
	pf_exec *leaked_exec;
	pf_ctx *leaked_ctx;
};

/* Waits for dispose to abort it, then tries to start new work. */
static int
shut_handler(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct shut_probe *p = (struct shut_probe *)input;
	atomic_store_explicit(&p->started, 1, memory_order_release);
	p->saw_abort = await_abort(ctx);
	p->rc_exec = pf_scope_exec(p->s, &noop_flow, NULL, NULL,
	    &p->leaked_exec);
	p->rc_run = pf_scope_run(p->s, &noop_flow, NULL, NULL, NULL);
	p->rc_create = pf_scope_create_execution(p->s, NULL, &p->leaked_ctx);
	p->rc_use = pf_scope_use(p->s, &ext_rec);
	p->rc_ctx_exec = pf_ctx_exec(p->standalone, &noop_flow, NULL, NULL,
	    NULL);
	p->rc_ctx_run = pf_ctx_run(p->standalone, &noop_flow, NULL, NULL, NULL);
	return pf_ctx_throw_if_aborted(ctx);
}

static const pf_flow shut_flow = { "shut", shut_handler, 0, 0 };

/* "new work on a disposing scope" returns PF_ESHUTDOWN (item 12, 13). */
START_TEST(new_work_on_disposing_scope_eshutdown)
{
	pf_scope *s = new_scope(2);
	struct shut_probe p;
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.standalone = new_standalone(s);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &shut_flow, &p, NULL, &e), 0);
	ck_assert(await_at_least(&p.started, 1));
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert(p.saw_abort);
	ck_assert_int_eq(p.rc_exec, PF_ESHUTDOWN);
	ck_assert_int_eq(p.rc_run, PF_ESHUTDOWN);
	ck_assert_int_eq(p.rc_create, PF_ESHUTDOWN);
	ck_assert_int_eq(p.rc_use, PF_ESHUTDOWN);
	ck_assert_int_eq(p.rc_ctx_exec, PF_ESHUTDOWN);
	ck_assert_int_eq(p.rc_ctx_run, PF_ESHUTDOWN);
	ck_assert_ptr_null(p.leaked_exec);
	ck_assert_ptr_null(p.leaked_ctx);

	/* After dispose, the standalone context created before it is still
	 * a valid handle, and starting work under it is refused. */
	pf_exec *e2 = NULL;
	ck_assert_int_eq(pf_ctx_exec(p.standalone, &noop_flow, NULL, NULL,
	    &e2), PF_ESHUTDOWN);
	ck_assert_ptr_null(e2);
	ck_assert_int_eq(pf_ctx_run(p.standalone, &noop_flow, NULL, NULL,
	    NULL), PF_ESHUTDOWN);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	pf_exec_release(e);
	pf_exec_release(p.leaked_exec);
	pf_ctx_release(p.leaked_ctx);
	pf_ctx_release(p.standalone);
}
END_TEST

struct self_dispose {
	pf_scope *s;
	int rc_handler, rc_step;
};

static int
self_dispose_step(pf_ctx *ctx, void *arg)
{
	(void)ctx;
	struct self_dispose *p = arg;
	p->rc_step = pf_scope_dispose(p->s);
	return 0;
}

static int
self_dispose_handler(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct self_dispose *p = (struct self_dispose *)input;
	p->rc_handler = pf_scope_dispose(p->s);
	return pf_ctx_exec_fn(ctx, "self_dispose", self_dispose_step, p);
}

static const pf_flow self_dispose_flow = { "self_dispose",
	self_dispose_handler, 0, 0 };

/* "pf_scope_dispose called from inside one of the scope's own executions
 * returns PF_EINVAL". */
START_TEST(dispose_inside_handler_einval)
{
	pf_scope *s = new_scope(2);
	struct self_dispose p = { s, 1, 1 };
	ck_assert_int_eq(pf_scope_run(s, &self_dispose_flow, &p, NULL, NULL),
	    0);
	ck_assert_int_eq(p.rc_handler, PF_EINVAL);
	ck_assert_int_eq(p.rc_step, PF_EINVAL);
	/* The scope still works, then disposes normally. */
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_strerror names every library code"; pf_status_name: "pending",
 * "running", ...; "unknown" outside the enum. */
START_TEST(strerror_and_status_names)
{
	const int codes[] = { PF_EINVAL, PF_ENOMEM, PF_ECANCELED,
		PF_ETIMEDOUT, PF_ENOENT, PF_EAGAIN, PF_ESHUTDOWN };
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++) {
		const char *m = pf_strerror(codes[i]);
		ck_assert_ptr_nonnull(m);
		ck_assert_str_ne(m, "unknown error");
		ck_assert_str_ne(m, "user error");
		ck_assert_str_ne(m, "success");
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(m, pf_strerror(codes[j]));
	}
	ck_assert_str_eq(pf_strerror(0), "success");
	ck_assert_str_eq(pf_strerror(PF_EUSER), "user error");
	ck_assert_str_eq(pf_strerror(PF_EUSER - 12345), "user error");
	ck_assert_str_eq(pf_strerror(-5), "unknown error");
	ck_assert_str_eq(pf_strerror(7), "unknown error");

	ck_assert_str_eq(pf_status_name(PF_PENDING), "pending");
	ck_assert_str_eq(pf_status_name(PF_RUNNING), "running");
	ck_assert_str_eq(pf_status_name(PF_COMPLETED), "completed");
	ck_assert_str_eq(pf_status_name(PF_FAILED), "failed");
	ck_assert_str_eq(pf_status_name(PF_CANCELLED), "cancelled");
	ck_assert_str_eq(pf_status_name((pf_status)99), "unknown");
	ck_assert_str_eq(pf_status_name((pf_status)-1), "unknown");
}
END_TEST

/* ------------------------------------------------------- lifetime (13) */

struct run_probe {
	atomic_int started, ended, saw_abort;
	atomic_int reason;
};

static int
until_aborted(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct run_probe *p = (struct run_probe *)input;
	atomic_fetch_add_explicit(&p->started, 1, memory_order_release);
	bool aborted = await_abort(ctx);
	if (aborted)
		atomic_fetch_add_explicit(&p->saw_abort, 1,
		    memory_order_relaxed);
	atomic_store_explicit(&p->reason, pf_ctx_throw_if_aborted(ctx),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&p->ended, 1, memory_order_release);
	return aborted ? pf_ctx_throw_if_aborted(ctx) : E_NEVER;
}

static const pf_flow until_aborted_flow = { "until_aborted", until_aborted,
	0, 0 };

/* "pf_scope_dispose aborts (PF_ECANCELED) every execution and standalone
 * context of the scope and returns when every execution has ended; it does
 * not wait for standalone contexts to be released.  Handles the caller
 * still holds ... stay valid after it: they can be queried, waited on (they
 * are finished) and released." */
START_TEST(dispose_aborts_running_and_standalone)
{
	pf_scope *s = new_scope(2);
	struct run_probe p = { 0 }, ff = { 0 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &until_aborted_flow, &p, NULL, &e),
	    0);
	/* A fire-and-forget one, too. */
	ck_assert_int_eq(pf_scope_exec(s, &until_aborted_flow, &ff, NULL,
	    NULL), 0);
	pf_ctx *c = new_standalone(s);
	pf_exec *child = NULL;
	struct run_probe cp = { 0 };
	ck_assert_int_eq(pf_ctx_exec(c, &until_aborted_flow, &cp, NULL,
	    &child), 0);
	ck_assert(await_at_least(&p.started, 1));
	ck_assert(await_at_least(&ff.started, 1));
	char id[37];
	snprintf(id, sizeof(id), "%s", pf_exec_id(e));

	ck_assert_int_eq(pf_scope_dispose(s), 0);
	/* Returned when every execution had ended. */
	ck_assert_int_eq(atomic_load(&p.ended), 1);
	ck_assert_int_eq(atomic_load(&ff.ended), 1);
	ck_assert_int_eq(atomic_load(&p.saw_abort), 1);
	ck_assert_int_eq(atomic_load(&ff.saw_abort), 1);
	ck_assert_int_eq(atomic_load(&p.reason), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_status(child), PF_CANCELLED);
	/* Still valid: query, wait (at once), try, release. */
	ck_assert_str_eq(pf_exec_id(e), id);
	ck_assert_str_eq(pf_exec_flow_name(e), "until_aborted");
	ck_assert_ptr_nonnull(pf_exec_ctx(e));
	ck_assert(pf_ctx_aborted(pf_exec_ctx(e)));
	ck_assert_int_ne(pf_ctx_completed_at(pf_exec_ctx(e)), 0);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_wait_for(e, NULL, 0), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_try(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_wait(child, NULL), PF_ECANCELED);
	/* The standalone context is aborted but not released by dispose. */
	ck_assert(pf_ctx_aborted(c));
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), PF_ECANCELED);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(c)), PF_ECANCELED);
	ck_assert_uint_eq(strlen(pf_ctx_id(c)), 36);
	pf_exec_release(child);
	pf_exec_release(e);
	pf_ctx_release(c);
}
END_TEST

/* "cancel pending executions": a pending execution never runs. */
START_TEST(dispose_cancels_pending)
{
	pf_scope *s = new_scope(1);
	struct blocker_probe p = { 0 };
	pf_exec *b = NULL, *v = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &blocker_flow, &p, NULL, &b), 0);
	ck_assert(await_at_least(&p.started, 1));
	ck_assert_int_eq(pf_scope_exec(s, &victim_flow, &p, NULL, &v), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(pf_exec_status(b), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(b, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(v), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(v, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_ctx_started_at(pf_exec_ctx(v)), 0);
	ck_assert_int_eq(atomic_load(&p.victim_runs), 0);
	pf_exec_release(b);
	pf_exec_release(v);
}
END_TEST

static unsigned
threads_with_env(const char *value, bool null_opts)
{
	if (value != NULL)
		ck_assert_int_eq(setenv("PUMPED_NUM_THREADS", value, 1), 0);
	else
		ck_assert_int_eq(unsetenv("PUMPED_NUM_THREADS"), 0);
	pf_scope_options o = { 0, NULL, 0, NULL, 0 };
	pf_scope *s = NULL;
	ck_assert_int_eq(pf_scope_create(&s, null_opts ? NULL : &o), 0);
	unsigned n = pf_scope_threads(s);
	/* The pool works with that many threads. */
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	return n;
}

/* "PUMPED_NUM_THREADS is read at each pf_scope_create"; "(positive
 * integer; 0 or invalid = default)". */
START_TEST(num_threads_env_read_at_each_create)
{
	unsigned dflt = threads_with_env(NULL, false);
	ck_assert_uint_ge(dflt, 1);
	ck_assert_uint_eq(threads_with_env(NULL, true), dflt);
	ck_assert_uint_eq(threads_with_env("3", false), 3);
	ck_assert_uint_eq(threads_with_env("5", false), 5);
	ck_assert_uint_eq(threads_with_env("2", true), 2);
	ck_assert_uint_eq(threads_with_env("1", false), 1);
	const char *invalid[] = { "0", "-1", "abc", "" };
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		unsigned n = threads_with_env(invalid[i], false);
		ck_assert_msg(n >= 1 && n == dflt,
		    "PUMPED_NUM_THREADS=\"%s\" gave %u threads (default %u)",
		    invalid[i], n, dflt);
	}
	/* An explicit count in the options wins over the variable. */
	ck_assert_int_eq(setenv("PUMPED_NUM_THREADS", "3", 1), 0);
	pf_scope *s = new_scope(2);
	ck_assert_uint_eq(pf_scope_threads(s), 2);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	unsetenv("PUMPED_NUM_THREADS");
}
END_TEST

/* ------------------------------------------------------ PF_FLOW macro */

static int
twice(pf_ctx *ctx, const int *in, int *out)
{
	(void)ctx;
	*out = 2 * *in;
	return *in < 0 ? E_FAIL1 : 0;
}

PF_FLOW(twice_flow, int, int, twice);

/* "PF_FLOW(ident, in_type, out_type, handler) defines const pf_flow ident
 * ... and typed wrappers ident_run, ident_exec, ident_scope_run". */
START_TEST(typed_flow_macro)
{
	ck_assert_str_eq(twice_flow.name, "twice_flow");
	ck_assert_uint_eq(twice_flow.input_size, sizeof(int));
	ck_assert_uint_eq(twice_flow.output_size, sizeof(int));
	pf_scope *s = new_scope(2);
	int in = 21, out = 0;
	ck_assert_int_eq(twice_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 42);
	pf_ctx *c = new_standalone(s);
	in = 5;
	ck_assert_int_eq(twice_flow_run(c, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 10);
	pf_exec *e = NULL;
	in = 7;
	ck_assert_int_eq(twice_flow_exec(c, &in, NULL, &e), 0);
	in = 100; /* the input was copied at exec time */
	ck_assert_str_eq(pf_exec_flow_name(e), "twice_flow");
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 14);
	pf_exec_release(e);
	in = -1;
	out = 1234;
	ck_assert_int_eq(twice_flow_run(c, &in, &out, NULL), E_FAIL1);
	ck_assert_int_eq(out, 1234); /* output written only on completion */
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------------------------- suite */

/* PF_FLOW with void input and output: sizes 0, no input needed. */
static int
void_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	return 0;
}
PF_FLOW(void_flow, void, void, void_handler)

START_TEST(typed_flow_void_input_and_output)
{
	ck_assert_uint_eq(void_flow.input_size, 0);
	ck_assert_uint_eq(void_flow.output_size, 0);
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, NULL), 0);
	ck_assert_int_eq(void_flow_scope_run(s, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Item 12: dispose from inside one of the scope's own executions is
 * PF_EINVAL, also from an fn step run on an outside thread (a standalone
 * context's step runs on the caller's thread, not on a worker). */
static pf_scope *fn_dispose_scope;

static int
fn_dispose(pf_ctx *c, void *arg)
{
	(void)c;
	*(int *)arg = pf_scope_dispose(fn_dispose_scope);
	return 0;
}

START_TEST(dispose_from_outside_fn_step_is_einval)
{
	ck_assert_int_eq(pf_scope_create(&fn_dispose_scope, NULL), 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(fn_dispose_scope, NULL, &c),
	    0);
	int inside = 0;
	ck_assert_int_eq(pf_ctx_exec_fn(c, "dispose", fn_dispose, &inside), 0);
	ck_assert_int_eq(inside, PF_EINVAL);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(fn_dispose_scope), 0);
}
END_TEST

static Suite *
api_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "parallel", .test = parallel_all_succeed, .timeout = 30 },
		{ .tcase = "parallel", .test = parallel_fail_fast_aborts_running_calls, .timeout = 30 },
		{ .tcase = "parallel", .test = parallel_empty_and_null_stats, .timeout = 30 },
		{ .tcase = "parallel", .test = parallel_calls_are_direct_children, .timeout = 30, .loop = 2 },
		{ .tcase = "parallel_settled", .test = parallel_settled_fills_each_call, .timeout = 30 },
		{ .tcase = "journal", .test = journal_runs_once_per_key, .timeout = 30 },
		{ .tcase = "journal", .test = journal_exec_returns_first_execution, .timeout = 30 },
		{ .tcase = "journal", .test = journal_second_caller_while_running, .timeout = 30 },
		{ .tcase = "journal", .test = journal_keys_compared_by_content, .timeout = 30 },
		{ .tcase = "journal", .test = journal_cancelled_entry_dropped, .timeout = 30 },
		{ .tcase = "journal", .test = journal_separate_per_parent, .timeout = 30 },
		{ .tcase = "extension_order", .test = ext_first_registered_outermost },
		{ .tcase = "extension_order", .test = ext_use_appends_innermost },
		{ .tcase = "extension_order", .test = ext_fn_step_nests_inside_handler },
		{ .tcase = "extension_operations", .test = ext_operations_targets_and_contexts, .timeout = 30 },
		{ .tcase = "extension_operations", .test = ext_skip_next_sets_result, .timeout = 30 },
		{ .tcase = "extension_operations", .test = ext_next_call_twice_einval, .timeout = 30 },
		{ .tcase = "extension_operations", .test = ext_use_while_running_applies_later, .timeout = 30 },
		{ .tcase = "extension_operations", .test = ext_cancelled_before_start_skips_chain, .timeout = 30 },
		{ .tcase = "extension_lifetime", .test = ext_init_at_registration_dispose_at_scope_dispose },
		{ .tcase = "extension_lifetime", .test = ext_init_failure_refuses },
		{ .tcase = "ids", .test = id_format_and_exec_equals_ctx, .timeout = 60 },
		{ .tcase = "ids", .test = ids_unique, .timeout = 60 },
		{ .tcase = "bad_input", .test = null_args_scope, .timeout = 30 },
		{ .tcase = "bad_input", .test = root_key_einval, .timeout = 30 },
		{ .tcase = "bad_input", .test = null_args_exec, .timeout = 30 },
		{ .tcase = "bad_input", .test = null_args_ctx, .timeout = 30 },
		{ .tcase = "bad_input", .test = null_args_tags_and_signal, .timeout = 30 },
		{ .tcase = "bad_input", .test = null_input_for_sized_flow, .timeout = 30 },
		{ .tcase = "bad_input", .test = new_work_on_disposing_scope_eshutdown, .timeout = 30 },
		{ .tcase = "bad_input", .test = dispose_inside_handler_einval, .timeout = 30 },
		{ .tcase = "bad_input", .test = strerror_and_status_names, .timeout = 30 },
		{ .tcase = "lifetime", .test = dispose_aborts_running_and_standalone, .timeout = 30 },
		{ .tcase = "lifetime", .test = dispose_cancels_pending, .timeout = 30 },
		{ .tcase = "lifetime", .test = num_threads_env_read_at_each_create, .timeout = 30 },
		{ .tcase = "lifetime", .test = dispose_from_outside_fn_step_is_einval, .timeout = 30 },
		{ .tcase = "typed_flow", .test = typed_flow_macro },
		{ .tcase = "typed_flow", .test = typed_flow_void_input_and_output },
	};
	return pf_test_suite("api", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(api_suite());
}
