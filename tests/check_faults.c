/*
 * check_faults.c: injected allocation failure along every allocating path
 * of the public API (issue 5, "Injected allocation failure").
 *
 * Method, for each path: count its allocations (pf__alloc_fail_at(0), the
 * call, pf__alloc_count()), then for N = 1..count build a fresh fixture,
 * make the N-th allocation from the call fail and check that
 *   - the call returns PF_ENOMEM and writes no out-parameter, or, where
 *     the library legitimately absorbs the failure (documented at each
 *     path below), returns 0 and works;
 *   - nothing half-started runs: no handler, no fn step, no status
 *     callback of the failed call (counted right after the call, and
 *     again after dispose so that a stray queued task would be seen too;
 *     a sweep reports the rounds that broke this at its end, so that its
 *     other rounds still run their leak checks);
 *   - the same call made again without injection succeeds (a failed
 *     journal claim left no placeholder behind, for instance), and a plain
 *     execution on the scope succeeds;
 *   - nothing leaks: under ASan each round ends with an LSan check.
 *
 * The allocation counter is process-wide, so every fixture is made
 * quiescent before the injection is armed: one worker, started and idle
 * (a warm-up run proves its per-worker slab exists), an idle timer
 * thread.  Calls that must be made from a worker (child executions of a
 * handler) arm the injection inside the handler, right before the call,
 * and disarm it right after, on the same thread; the test thread only
 * sleeps in pf_exec_wait_for meanwhile, which does not allocate (and,
 * having a deadline, never runs the handler itself).
 *
 * Handlers, fn steps and callbacks only record (atomics, or fields of the
 * fixture read after a wait that orders them); every assertion runs on
 * the test thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <pumped.h>

#include "alloc.h"
#include "record.h"
#include "slab.h"
#include "testlib.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULTS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FAULTS_ASAN)
#define FAULTS_ASAN 1
#endif
#ifdef FAULTS_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#define E_USER1 (PF_EUSER - 1)
#define NCALLS 10 /* > 8: parallel's group array comes from the heap */

/* ------------------------------------------------------------ helpers */

static void
pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Every round ends with a leak check under ASan: a leak is then pinned to
 * the path and the N that caused it. */
static void
no_leaks(const char *what, long n)
{
#ifdef FAULTS_ASAN
	ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
	    "%s, allocation %ld failed: leak", what, n);
#else
	(void)what;
	(void)n;
#endif
}

/* What handlers, fn steps and callbacks saw; reset for each round. */
static atomic_int runs;         /* child handlers and fn steps run */
static atomic_int statuses[5];  /* status callbacks, by status      */
static atomic_int ext_inits, ext_disposes, ext_wraps;
static atomic_bool gate_open, gate_entered;

static void
reset_counters(void)
{
	atomic_store(&runs, 0);
	for (int i = 0; i < 5; i++)
		atomic_store(&statuses[i], 0);
	atomic_store(&ext_inits, 0);
	atomic_store(&ext_disposes, 0);
	atomic_store(&ext_wraps, 0);
	atomic_store(&gate_open, false);
	atomic_store(&gate_entered, false);
}

static void
count_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)data;
	if ((unsigned)st < 5)
		atomic_fetch_add(&statuses[st], 1);
}

/* The flow whose executions the paths create: counted. */
static int
child_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	atomic_fetch_add(&runs, 1);
	*(int *)out = *(const int *)in + 1;
	return 0;
}

static const pf_flow child_flow = { "child", child_handler, sizeof(int),
	sizeof(int) };

/* A flow for the "scope still usable" checks: not counted. */
static int
plain_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	*(int *)out = *(const int *)in * 2;
	return 0;
}

static const pf_flow plain_flow = { "plain", plain_handler, sizeof(int),
	sizeof(int) };

/* Holds the only worker until the gate opens. */
static int
gate_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	atomic_store(&gate_entered, true);
	for (long t = 0; t < 10000000L && !atomic_load(&gate_open); t += 100)
		pause_us(100);
	return 0;
}

static const pf_flow gate_flow = { "gate", gate_handler, 0, 0 };

static int
fn_step(pf_ctx *child, void *arg)
{
	(void)child;
	(void)arg;
	atomic_fetch_add(&runs, 1);
	return 0;
}

PF_TAG(tag_a, int, "faults.a");
PF_TAG(tag_b, long, "faults.b");
PF_TAG(tag_new, int, "faults.new"); /* set by the tag path only */

static const int a_value = 7;
static const long b_value = 9;
static const pf_tag_value two_tags[2] = { { &tag_a, &a_value },
	{ &tag_b, &b_value } };

/* Every option that allocates: name, tags; plus a timeout (armed after
 * the allocations: a failure must leave no timer behind). */
static const pf_exec_options child_opts = {
	.name = "child-exec",
	.timeout_ms = 60000,
	.on_status = count_status,
	.tags = two_tags,
	.n_tags = 2,
};

static const pf_exec_options keyed_opts = {
	.name = "child-exec",
	.timeout_ms = 60000,
	.on_status = count_status,
	.tags = two_tags,
	.n_tags = 2,
	.key = "journal-key",
};

static const pf_ctx_options standalone_opts = {
	.name = "standalone",
	.timeout_ms = 60000,
	.tags = two_tags,
	.n_tags = 2,
};

static int
ext_init(pf_scope *s, void *state)
{
	(void)s;
	(void)state;
	atomic_fetch_add(&ext_inits, 1);
	return 0;
}

static int
ext_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	(void)state;
	atomic_fetch_add(&ext_wraps, 1);
	return pf_next_call(next);
}

static void
ext_dispose(pf_scope *s, void *state)
{
	(void)s;
	(void)state;
	atomic_fetch_add(&ext_disposes, 1);
}

static const pf_extension counting_ext = { "counting", ext_init, ext_wrap,
	ext_dispose, NULL };
static const pf_extension counting_ext2 = { "counting2", ext_init, ext_wrap,
	ext_dispose, NULL };

/* An address no out-parameter can legitimately receive. */
static char sentinel_byte;
#define SENTINEL ((void *)&sentinel_byte)

/* ------------------------------------------------------------ fixture */

enum from {
	FROM_TEST,       /* the test thread, no context               */
	FROM_HANDLER,    /* inside a handler, on the only worker       */
	FROM_STANDALONE, /* the test thread, on a standalone context   */
};

struct fx;

struct path {
	const char *what;
	enum from from;
	/* The call under test, made with the injection armed. */
	int (*call)(struct fx *f, pf_ctx *where);
	/* Run on the same thread right after, disarmed: checks the outcome
	 * (through flag()), waits for and releases what the call made. */
	void (*finish)(struct fx *f, pf_ctx *where, int rc);
	void (*setup)(struct fx *f);    /* optional, test thread */
	void (*teardown)(struct fx *f); /* optional, before dispose */
	void (*check_end)(struct fx *f); /* optional, after dispose */
	int runs;       /* handler or fn runs per successful call        */
	int st_ok[5];   /* status callbacks per successful call          */
	bool keyed;     /* journaled: a repeat runs nothing              */
	bool parallel;  /* a failed group may have created calls: each is
	                   pending first, then ends (cancelled, if it never
	                   ran) */
	int absorbable; /* rounds that may return 0 with the failure hit */
};

struct fx {
	const struct path *p;
	pf_scope *s;
	pf_ctx *ctx;  /* FROM_STANDALONE */
	long n;       /* the allocation made to fail; 0: none          */
	int phase;    /* 0: the call under test, 1: the same call again */
	int rc, rc_again;
	long drawn;   /* allocations the call under test attempted      */
	int runs_first, st_first[5];
	int half_started; /* PF_ENOMEM, yet this many runs and callbacks */
	const char *bad; /* first thing found wrong off the test thread */
	int in, out;
	pf_exec *e;
	pf_ctx *made;
	pf_exec *target, *gate;
	int ins[NCALLS], outs[NCALLS];
	pf_call calls[NCALLS];
	pf_parallel_stats stats;
};

static void
flag(struct fx *f, const char *why)
{
	if (f->bad == NULL)
		f->bad = why;
}

/* The call under test with the N-th allocation failing, then the same
 * call again without injection.  Runs on the thread the path names. */
static void
attempt(struct fx *f, pf_ctx *where)
{
	const struct path *p = f->p;
	f->phase = 0;
	pf__alloc_fail_at(f->n);
	int rc = p->call(f, where);
	f->drawn = pf__alloc_count();
	pf__alloc_fail_at(0);
	f->rc = rc;
	if (p->finish != NULL)
		p->finish(f, where, rc);
	f->runs_first = atomic_load(&runs);
	for (int i = 0; i < 5; i++)
		f->st_first[i] = atomic_load(&statuses[i]);
	f->phase = 1;
	rc = p->call(f, where);
	f->rc_again = rc;
	if (p->finish != NULL)
		p->finish(f, where, rc);
}

static int
outer_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	attempt((struct fx *)in, c);
	return 0;
}

static const pf_flow outer_flow = { "outer", outer_handler, 0, 0 };

/*
 * pf_scope_run on the worker: a wait with a deadline never runs the
 * execution on the waiting thread (pf_scope_run's wait may, and then the
 * handler's allocations would come from the heap instead of the worker's
 * slab, changing the path's allocation count from one round to the next).
 */
static int
run_on_worker(pf_scope *s, const pf_flow *flow, void *in, void *out)
{
	pf_exec *e;
	int rc = pf_scope_exec(s, flow, in, NULL, &e);
	if (rc != 0)
		return rc;
	rc = pf_exec_wait_for(e, out, 60000);
	pf_exec_release(e);
	return rc;
}

static void
fx_open(struct fx *f, const struct path *p, long n)
{
	memset(f, 0, sizeof(*f));
	f->p = p;
	f->n = n;
	f->in = 41;
	reset_counters();
	pf_scope_options o = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&f->s, &o), 0);
	/* Proves the worker started: its slab exists, so its start-up
	 * allocation cannot take the injected failure. */
	int in = 1, out = 0;
	ck_assert_int_eq(run_on_worker(f->s, &plain_flow, &in, &out), 0);
	ck_assert_int_eq(out, 2);
	if (p->from == FROM_STANDALONE)
		ck_assert_int_eq(pf_scope_create_execution(f->s, NULL, &f->ctx),
		    0);
	if (p->setup != NULL)
		p->setup(f);
}

/* One round: fixture, attempt, checks, dispose, leak check. */
static void
round_at(const struct path *p, struct fx *f, long n)
{
	fx_open(f, p, n);
	switch (p->from) {
	case FROM_TEST:
		attempt(f, NULL);
		break;
	case FROM_STANDALONE:
		attempt(f, f->ctx);
		break;
	case FROM_HANDLER:
		ck_assert_int_eq(run_on_worker(f->s, &outer_flow, f, NULL),
		    0);
		break;
	}
	ck_assert_msg(f->rc == 0 || f->rc == PF_ENOMEM,
	    "%s, allocation %ld failed: returned %d", p->what, n, f->rc);
	f->half_started = 0;
	if (f->rc == PF_ENOMEM) {
		/* Handlers and callbacks past pending of a call that returned
		 * PF_ENOMEM: collected over the sweep and reported at its end,
		 * so that the other checks (leaks above all) still cover every
		 * round. */
		f->half_started = f->runs_first + f->st_first[PF_RUNNING] +
		    f->st_first[PF_COMPLETED] + f->st_first[PF_FAILED];
		/* A failed call created nothing that a callback could see,
		 * except the calls a parallel group had started before the
		 * failure: those end (cancelled while pending, or otherwise)
		 * and each was pending first. */
		if (!p->parallel)
			f->half_started += f->st_first[PF_PENDING] +
			    f->st_first[PF_CANCELLED];
		else
			ck_assert_int_eq(f->st_first[PF_PENDING],
			    f->st_first[PF_CANCELLED] +
				f->st_first[PF_COMPLETED] +
				f->st_first[PF_FAILED]);
	}
	ck_assert_msg(f->bad == NULL, "%s, allocation %ld failed (rc %d): %s",
	    p->what, n, f->rc, f->bad);
	ck_assert_msg(f->rc_again == 0,
	    "%s, allocation %ld failed: the call made again returned %d",
	    p->what, n, f->rc_again);

	/* The scope stays usable. */
	int in = 5, out = 0;
	ck_assert_int_eq(pf_scope_run(f->s, &plain_flow, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 10);

	if (p->teardown != NULL)
		p->teardown(f);
	pf_ctx_release(f->ctx);
	ck_assert_int_eq(pf_scope_dispose(f->s), 0);

	/* Final counts, after dispose: a task the failed call left queued
	 * would have run by now. */
	int ok = f->rc == 0 ? 2 : 1;
	if (p->keyed)
		ok = 1; /* the repeat finds the journal entry, or runs anew */
	/* What the failed call did, counted in the first snapshot, plus
	 * what the successful calls did: nothing else may have run since. */
	bool failed = f->rc == PF_ENOMEM;
	int want_runs = p->runs * ok + (failed ? f->runs_first : 0);
	ck_assert_msg(atomic_load(&runs) == want_runs,
	    "%s, allocation %ld failed (rc %d): %d runs, want %d", p->what, n,
	    f->rc, atomic_load(&runs), want_runs);
	for (int st = 0; st < 5; st++) {
		int want = p->st_ok[st] * ok + (failed ? f->st_first[st] : 0);
		ck_assert_msg(atomic_load(&statuses[st]) == want,
		    "%s, allocation %ld failed (rc %d): %d %s callbacks, want %d",
		    p->what, n, f->rc, atomic_load(&statuses[st]),
		    pf_status_name((pf_status)st), want);
	}
	if (p->check_end != NULL)
		p->check_end(f);
	no_leaks(p->what, n);
}

static void
sweep(const struct path *p)
{
	/* Static: a failed assertion leaves the test without unwinding, and
	 * a heap fixture would then show up in later leak checks. */
	static struct fx fixture;
	struct fx *f = &fixture;
	round_at(p, f, 0);
	long count = f->drawn;
	ck_assert_msg(count > 0, "%s: no allocation to fail", p->what);
	ck_assert_int_eq(f->rc, 0);
	int absorbed = 0, half_rounds = 0;
	long first_half = 0;
	int first_runs = 0, first_st[5] = { 0 };
	for (long n = 1; n <= count; n++) {
		round_at(p, f, n);
		if (f->half_started != 0 && half_rounds++ == 0) {
			first_half = n;
			first_runs = f->runs_first;
			memcpy(first_st, f->st_first, sizeof(first_st));
		}
		ck_assert_msg(f->drawn >= n,
		    "%s: the path made %ld allocations, then only %ld", p->what,
		    count, f->drawn);
		if (f->rc == 0)
			absorbed++;
	}
	if (getenv("FAULTS_VERBOSE") != NULL)
		fprintf(stderr, "%s: %ld allocations, %d absorbed\n", p->what,
		    count, absorbed);
	ck_assert_msg(half_rounds == 0,
	    "%s: %d of %ld rounds returned PF_ENOMEM after starting work; "
	    "first: allocation %ld failed, yet %d handler(s) ran and "
	    "callbacks saw pending %d, running %d, completed %d, failed %d, "
	    "cancelled %d", p->what, half_rounds, count, first_half, first_runs,
	    first_st[PF_PENDING], first_st[PF_RUNNING], first_st[PF_COMPLETED],
	    first_st[PF_FAILED], first_st[PF_CANCELLED]);
	ck_assert_msg(absorbed <= p->absorbable,
	    "%s: %d of %ld failures absorbed, at most %d expected", p->what,
	    absorbed, count, p->absorbable);
}

/* ------------------------------------------------------ calls under test */

static int
call_scope_exec(struct fx *f, pf_ctx *where)
{
	(void)where;
	f->e = SENTINEL;
	return pf_scope_exec(f->s, &child_flow, &f->in, &child_opts, &f->e);
}

static int
call_ctx_exec(struct fx *f, pf_ctx *where)
{
	f->e = SENTINEL;
	return pf_ctx_exec(where, &child_flow, &f->in,
	    f->p->keyed ? &keyed_opts : &child_opts, &f->e);
}

/* Shared by the exec paths: the handle was written only on success, and
 * the execution carries its options. */
static void
finish_exec(struct fx *f, pf_ctx *where, int rc)
{
	(void)where;
	if (rc != 0) {
		if (f->e != SENTINEL)
			flag(f, "failed exec wrote its out-parameter");
		return;
	}
	if (f->e == SENTINEL || f->e == NULL) {
		flag(f, "exec returned 0 without a handle");
		return;
	}
	int out = 0;
	if (pf_exec_wait(f->e, &out) != 0 || out != f->in + 1)
		flag(f, "exec did not complete with its result");
	pf_ctx *c = pf_exec_ctx(f->e);
	int a = 0;
	long b = 0;
	if (pf_ctx_get(c, &tag_a, &a) != 0 || a != a_value ||
	    pf_ctx_get(c, &tag_b, &b) != 0 || b != b_value)
		flag(f, "exec context lacks its tags");
	if (pf_ctx_name(c) == NULL || strcmp(pf_ctx_name(c), "child-exec") != 0)
		flag(f, "exec context lacks its name");
	pf_exec_release(f->e);
	f->e = NULL;
}

static int
call_ctx_run(struct fx *f, pf_ctx *where)
{
	f->out = -1;
	return pf_ctx_run(where, &child_flow, &f->in, &f->out,
	    f->p->keyed ? &keyed_opts : &child_opts);
}

static void
finish_run(struct fx *f, pf_ctx *where, int rc)
{
	(void)where;
	if (rc != 0 && f->out != -1)
		flag(f, "failed run wrote its output");
	if (rc == 0 && f->out != f->in + 1)
		flag(f, "run returned 0 without its result");
}

static int
call_exec_fn(struct fx *f, pf_ctx *where)
{
	return pf_ctx_exec_fn(where, "step", fn_step, f);
}

static void
prepare_calls(struct fx *f)
{
	for (int i = 0; i < NCALLS; i++) {
		f->ins[i] = i;
		f->outs[i] = -1;
		f->calls[i] = (pf_call){ &child_flow, &f->ins[i], &f->outs[i],
			&child_opts, 12345, PF_RUNNING, "garbage" };
	}
	f->stats = (pf_parallel_stats){ 99, 99, 99, 99 };
}

static int
call_parallel(struct fx *f, pf_ctx *where)
{
	prepare_calls(f);
	return pf_ctx_parallel(where, f->calls, NCALLS, &f->stats);
}

static int
call_parallel_settled(struct fx *f, pf_ctx *where)
{
	prepare_calls(f);
	return pf_ctx_parallel_settled(where, f->calls, NCALLS, &f->stats);
}

static void
finish_parallel(struct fx *f, pf_ctx *where, int rc)
{
	(void)where;
	if (rc == 0) {
		if (f->stats.total != NCALLS || f->stats.succeeded != NCALLS ||
		    f->stats.failed != 0)
			flag(f, "parallel succeeded with wrong stats");
		for (int i = 0; i < NCALLS; i++)
			if (f->outs[i] != i + 1 || f->calls[i].result != 0 ||
			    f->calls[i].status != PF_COMPLETED)
				flag(f, "parallel succeeded without results");
		return;
	}
	/* Stats are zero when nothing started; when some calls were
	 * started and then aborted they are filled in and add up.  Only a
	 * call that completed has its output written. */
	if (f->stats.total != 0 &&
	    (f->stats.total != NCALLS ||
		f->stats.succeeded + f->stats.failed != NCALLS))
		flag(f, "failed parallel reports inconsistent stats");
	for (int i = 0; i < NCALLS; i++)
		if (f->outs[i] != -1 && f->calls[i].status != PF_COMPLETED)
			flag(f, "failed parallel wrote the output of a call "
			    "that did not complete");
}

static int
call_set(struct fx *f, pf_ctx *where)
{
	int v = 1000 + f->phase;
	return pf_ctx_set(where, &tag_new, &v);
}

static void
finish_set(struct fx *f, pf_ctx *where, int rc)
{
	int v = 0;
	if (rc != 0 && pf_ctx_find(where, &tag_new, NULL))
		flag(f, "failed set left the tag behind");
	if (rc == 0 && (pf_ctx_get(where, &tag_new, &v) != 0 ||
			   v != 1000 + f->phase))
		flag(f, "set returned 0 without the value");
}

static int
call_create_execution(struct fx *f, pf_ctx *where)
{
	(void)where;
	f->made = SENTINEL;
	return pf_scope_create_execution(f->s, &standalone_opts, &f->made);
}

static void
finish_create_execution(struct fx *f, pf_ctx *where, int rc)
{
	(void)where;
	if (rc != 0) {
		if (f->made != SENTINEL)
			flag(f, "failed create_execution wrote its out");
		return;
	}
	int a = 0;
	if (pf_ctx_get(f->made, &tag_a, &a) != 0 || a != a_value)
		flag(f, "standalone context lacks its tags");
	if (strcmp(pf_ctx_name(f->made), "standalone") != 0)
		flag(f, "standalone context lacks its name");
	if (pf_ctx_exec_fn(f->made, NULL, fn_step, NULL) != 0)
		flag(f, "standalone context refuses an fn step");
	pf_ctx_release(f->made);
	f->made = NULL;
}

static int
call_fail(struct fx *f, pf_ctx *where)
{
	/* pf_ctx_fail returns its code whatever happens to the message;
	 * the round wants 0 for "worked". */
	return pf_ctx_fail(where, E_USER1, "value %d", 7 + f->phase) == E_USER1 ?
	    0 : PF_EINVAL;
}

static void
finish_fail(struct fx *f, pf_ctx *where, int rc)
{
	(void)rc;
	const char *msg = NULL;
	if (pf_ctx_error(where, &msg) != E_USER1 || msg == NULL) {
		flag(f, "failed context lost its error");
		return;
	}
	char want[32];
	snprintf(want, sizeof(want), "value %d", 7 + f->phase);
	bool hit = f->phase == 0 && f->n > 0 && f->drawn >= f->n;
	/* Absorbed: when the message cannot be kept, the code's own text
	 * stands in for it. */
	if (strcmp(msg, want) != 0 &&
	    !(hit && strcmp(msg, pf_strerror(E_USER1)) == 0))
		flag(f, "failed context has a wrong message");
}

static int
call_on_status(struct fx *f, pf_ctx *where)
{
	(void)where;
	return pf_exec_on_status(f->target, count_status, f);
}

/* A finished target: a subscription calls back at once with completed. */
static void
setup_finished_target(struct fx *f)
{
	int in = 3;
	ck_assert_int_eq(pf_scope_exec(f->s, &plain_flow, &in, NULL,
			     &f->target), 0);
	ck_assert_int_eq(pf_exec_wait(f->target, NULL), 0);
}

/* A pending target: the only worker is held by a gate, so the target
 * waits in the queue; subscriptions see running and completed once the
 * gate opens at teardown. */
static void
setup_pending_target(struct fx *f)
{
	ck_assert_int_eq(pf_scope_exec(f->s, &gate_flow, NULL, NULL, &f->gate),
	    0);
	for (long t = 0; t < 10000000L && !atomic_load(&gate_entered);
	     t += 100)
		pause_us(100);
	ck_assert(atomic_load(&gate_entered));
	int in = 3;
	ck_assert_int_eq(pf_scope_exec(f->s, &plain_flow, &in, NULL,
			     &f->target), 0);
	ck_assert_int_eq(pf_exec_status(f->target), PF_PENDING);
}

static void
teardown_target(struct fx *f)
{
	atomic_store(&gate_open, true);
	if (f->gate != NULL) {
		ck_assert_int_eq(pf_exec_wait(f->gate, NULL), 0);
		pf_exec_release(f->gate);
	}
	ck_assert_int_eq(pf_exec_wait(f->target, NULL), 0);
	pf_exec_release(f->target);
}

/*
 * The pending target needs the test thread free while the worker is held,
 * so its "usable" check in round_at (a plain run) would wait behind the
 * gate: open the gate before it, in finish of the repeat.
 */
static void
finish_on_status_pending(struct fx *f, pf_ctx *where, int rc)
{
	(void)where;
	(void)rc;
	if (f->phase == 1)
		atomic_store(&gate_open, true);
}

static int
call_scope_use(struct fx *f, pf_ctx *where)
{
	(void)where;
	return pf_scope_use(f->s, &counting_ext);
}

static void
finish_scope_use(struct fx *f, pf_ctx *where, int rc)
{
	(void)where;
	if (f->phase != 0)
		return;
	int inits = atomic_load(&ext_inits);
	if (inits != 1)
		flag(f, "scope_use did not call init once");
	if (rc != 0 && atomic_load(&ext_disposes) != 1)
		flag(f, "failed scope_use did not dispose the extension");
	/* A refused extension wraps nothing. */
	int in = 1, out = 0;
	int before = atomic_load(&ext_wraps);
	if (pf_scope_run(f->s, &plain_flow, &in, &out, NULL) != 0)
		flag(f, "scope unusable after scope_use");
	int wraps = atomic_load(&ext_wraps) - before;
	if (wraps != (rc == 0 ? 1 : 0))
		flag(f, "extension wraps do not match scope_use's result");
}

static void
check_end_scope_use(struct fx *f)
{
	/* Each init, whether its registration failed or the scope kept it
	 * until dispose, met its dispose. */
	(void)f;
	ck_assert_int_eq(atomic_load(&ext_inits), 2);
	ck_assert_int_eq(atomic_load(&ext_disposes), 2);
}

/* --------------------------------------------------------------- paths */

/*
 * Absorbed failures, each counted in `absorbable`:
 *   - Handler paths that allocate a record on the worker: the worker's
 *     first record comes from a new slab chunk; when that chunk cannot be
 *     allocated, pf__record_alloc falls back to the heap and the call
 *     succeeds (src/ctx.c pf__record_alloc).  Each round starts with a
 *     fresh scope, so exactly one allocation of the path is that chunk.
 *     A context's cold block (tags, journal, message, ...: src/track.h)
 *     is such a record too when a worker makes it.
 *   - pf_ctx_fail: when the message cannot be kept, the error is still
 *     recorded with pf_strerror(code) as its message and the code is
 *     returned (there is no way to report PF_ENOMEM from it); that holds
 *     for the cold block that keeps the message as for the message.
 */

static const struct path scope_exec_path = {
	.what = "pf_scope_exec with name, tags, timeout",
	.from = FROM_TEST,
	.call = call_scope_exec,
	.finish = finish_exec,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
};

static const struct path child_exec_handler = {
	.what = "pf_ctx_exec from a handler",
	.from = FROM_HANDLER,
	.call = call_ctx_exec,
	.finish = finish_exec,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
	.absorbable = 1,
};

static const struct path child_exec_handler_keyed = {
	.what = "pf_ctx_exec with a key from a handler",
	.from = FROM_HANDLER,
	.call = call_ctx_exec,
	.finish = finish_exec,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
	.keyed = true,
	.absorbable = 1,
};

static const struct path child_exec_standalone = {
	.what = "pf_ctx_exec from a standalone context",
	.from = FROM_STANDALONE,
	.call = call_ctx_exec,
	.finish = finish_exec,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
};

static const struct path child_exec_standalone_keyed = {
	.what = "pf_ctx_exec with a key from a standalone context",
	.from = FROM_STANDALONE,
	.call = call_ctx_exec,
	.finish = finish_exec,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
	.keyed = true,
};

static const struct path child_run_handler = {
	.what = "pf_ctx_run from a handler",
	.from = FROM_HANDLER,
	.call = call_ctx_run,
	.finish = finish_run,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
	.absorbable = 1,
};

static const struct path child_run_handler_keyed = {
	.what = "pf_ctx_run with a key from a handler",
	.from = FROM_HANDLER,
	.call = call_ctx_run,
	.finish = finish_run,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
	.keyed = true,
	.absorbable = 1,
};

static const struct path child_run_standalone = {
	.what = "pf_ctx_run from a standalone context",
	.from = FROM_STANDALONE,
	.call = call_ctx_run,
	.finish = finish_run,
	.runs = 1,
	.st_ok = { 1, 1, 1, 0, 0 },
};

static const struct path fn_step_handler = {
	.what = "pf_ctx_exec_fn from a handler",
	.from = FROM_HANDLER,
	.call = call_exec_fn,
	.runs = 1,
	.absorbable = 1,
};

static const struct path fn_step_standalone = {
	.what = "pf_ctx_exec_fn from a standalone context",
	.from = FROM_STANDALONE,
	.call = call_exec_fn,
	.runs = 1,
};

static const struct path parallel_handler = {
	.what = "pf_ctx_parallel of 10 from a handler",
	.from = FROM_HANDLER,
	.call = call_parallel,
	.finish = finish_parallel,
	.runs = NCALLS,
	.st_ok = { NCALLS, NCALLS, NCALLS, 0, 0 },
	.parallel = true,
	.absorbable = 1,
};

static const struct path parallel_settled_handler = {
	.what = "pf_ctx_parallel_settled of 10 from a handler",
	.from = FROM_HANDLER,
	.call = call_parallel_settled,
	.finish = finish_parallel,
	.runs = NCALLS,
	.st_ok = { NCALLS, NCALLS, NCALLS, 0, 0 },
	.parallel = true,
	.absorbable = 1,
};

/* From the test thread the only worker is free: calls started before the
 * failing allocation may be picked up at once. */
static const struct path parallel_standalone = {
	.what = "pf_ctx_parallel of 10 from a standalone context",
	.from = FROM_STANDALONE,
	.call = call_parallel,
	.finish = finish_parallel,
	.runs = NCALLS,
	.st_ok = { NCALLS, NCALLS, NCALLS, 0, 0 },
	.parallel = true,
};

static const struct path parallel_settled_standalone = {
	.what = "pf_ctx_parallel_settled of 10 from a standalone context",
	.from = FROM_STANDALONE,
	.call = call_parallel_settled,
	.finish = finish_parallel,
	.runs = NCALLS,
	.st_ok = { NCALLS, NCALLS, NCALLS, 0, 0 },
	.parallel = true,
};

static const struct path set_handler = {
	.what = "pf_ctx_set of a new tag from a handler",
	.from = FROM_HANDLER,
	.call = call_set,
	.finish = finish_set,
	.absorbable = 1, /* the cold block's slab chunk */
};

static const struct path set_standalone = {
	.what = "pf_ctx_set of a new tag on a standalone context",
	.from = FROM_STANDALONE,
	.call = call_set,
	.finish = finish_set,
};

static const struct path create_execution_path = {
	.what = "pf_scope_create_execution with name, tags, timeout",
	.from = FROM_TEST,
	.call = call_create_execution,
	.finish = finish_create_execution,
	.runs = 1, /* the fn step that proves the context works */
};

static const struct path fail_message_path = {
	.what = "pf_ctx_fail with a message",
	.from = FROM_STANDALONE,
	.call = call_fail,
	.finish = finish_fail,
	.absorbable = 2, /* the cold block, then the message */
};

static const struct path on_status_finished = {
	.what = "pf_exec_on_status on a finished execution",
	.from = FROM_TEST,
	.call = call_on_status,
	.setup = setup_finished_target,
	.teardown = teardown_target,
	.st_ok = { 0, 0, 1, 0, 0 },
};

static const struct path on_status_pending = {
	.what = "pf_exec_on_status on a pending execution",
	.from = FROM_TEST,
	.call = call_on_status,
	.finish = finish_on_status_pending,
	.setup = setup_pending_target,
	.teardown = teardown_target,
	.st_ok = { 0, 1, 1, 0, 0 },
};

static const struct path scope_use_path = {
	.what = "pf_scope_use",
	.from = FROM_TEST,
	.call = call_scope_use,
	.finish = finish_scope_use,
	.check_end = check_end_scope_use,
};

/* --------------------------------------------------------------- tests */

START_TEST(scope_exec_enomem_starts_nothing)
{
	sweep(&scope_exec_path);
}
END_TEST

START_TEST(child_exec_from_handler_enomem_starts_nothing)
{
	sweep(&child_exec_handler);
}
END_TEST

START_TEST(keyed_child_exec_from_handler_enomem_leaves_no_entry)
{
	sweep(&child_exec_handler_keyed);
}
END_TEST

START_TEST(child_exec_from_standalone_enomem_starts_nothing)
{
	sweep(&child_exec_standalone);
}
END_TEST

START_TEST(keyed_child_exec_from_standalone_enomem_leaves_no_entry)
{
	sweep(&child_exec_standalone_keyed);
}
END_TEST

START_TEST(child_run_from_handler_enomem_starts_nothing)
{
	sweep(&child_run_handler);
}
END_TEST

START_TEST(keyed_child_run_from_handler_enomem_leaves_no_entry)
{
	sweep(&child_run_handler_keyed);
}
END_TEST

START_TEST(child_run_from_standalone_enomem_starts_nothing)
{
	sweep(&child_run_standalone);
}
END_TEST

START_TEST(fn_step_from_handler_enomem_runs_nothing)
{
	sweep(&fn_step_handler);
}
END_TEST

START_TEST(fn_step_from_standalone_enomem_runs_nothing)
{
	sweep(&fn_step_standalone);
}
END_TEST

START_TEST(parallel_from_handler_enomem_runs_no_call)
{
	sweep(&parallel_handler);
}
END_TEST

START_TEST(parallel_settled_from_handler_enomem_runs_no_call)
{
	sweep(&parallel_settled_handler);
}
END_TEST

START_TEST(parallel_from_standalone_enomem_runs_no_call)
{
	sweep(&parallel_standalone);
}
END_TEST

START_TEST(parallel_settled_from_standalone_enomem_runs_no_call)
{
	sweep(&parallel_settled_standalone);
}
END_TEST

START_TEST(tag_set_from_handler_enomem_leaves_no_tag)
{
	sweep(&set_handler);
}
END_TEST

START_TEST(tag_set_on_standalone_enomem_leaves_no_tag)
{
	sweep(&set_standalone);
}
END_TEST

START_TEST(create_execution_enomem_creates_nothing)
{
	sweep(&create_execution_path);
}
END_TEST

START_TEST(fail_message_enomem_keeps_code)
{
	sweep(&fail_message_path);
}
END_TEST

START_TEST(on_status_finished_enomem_calls_nothing)
{
	sweep(&on_status_finished);
}
END_TEST

START_TEST(on_status_pending_enomem_calls_nothing)
{
	sweep(&on_status_pending);
}
END_TEST

START_TEST(scope_use_enomem_disposes_extension)
{
	sweep(&scope_use_path);
}
END_TEST

/*
 * pf_scope_create with tags and two extensions.  The scope's own
 * allocations are made by the calling thread, but the worker allocates its
 * slab when it starts, concurrently with the last allocations of the call;
 * if the injected failure lands there, the worker allocates records from
 * the heap and the call returns 0 with a working scope (absorbed, any
 * number of rounds).
 */
static int
read_tags_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	int a = 0;
	long b = 0;
	if (pf_ctx_get(c, &tag_a, &a) != 0 || pf_ctx_get(c, &tag_b, &b) != 0)
		return E_USER1;
	*(long *)out = a + b;
	return 0;
}

static const pf_flow read_tags_flow = { "read-tags", read_tags_handler, 0,
	sizeof(long) };

START_TEST(scope_create_enomem_initialises_nothing_left)
{
	const pf_extension *exts[2] = { &counting_ext, &counting_ext2 };
	pf_scope_options o = { .threads = 1, .extensions = exts,
		.n_extensions = 2, .tags = two_tags, .n_tags = 2 };
	long count = -1;
	int enomem = 0;
	for (long n = 0; n <= count || count < 0; n++) {
		reset_counters();
		pf_scope *s = SENTINEL;
		pf__alloc_fail_at(n);
		int rc = pf_scope_create(&s, &o);
		long drawn = pf__alloc_count();
		pf__alloc_fail_at(0);
		if (n == 0) {
			ck_assert_int_eq(rc, 0);
			count = drawn;
		}
		ck_assert_msg(rc == 0 || rc == PF_ENOMEM,
		    "allocation %ld failed: returned %d", n, rc);
		if (rc == PF_ENOMEM) {
			enomem++;
			ck_assert_msg(s == SENTINEL,
			    "allocation %ld failed: out written", n);
			ck_assert_msg(atomic_load(&ext_inits) ==
				atomic_load(&ext_disposes),
			    "allocation %ld failed: %d inits, %d disposes", n,
			    atomic_load(&ext_inits),
			    atomic_load(&ext_disposes));
		} else {
			ck_assert_int_eq(atomic_load(&ext_inits), 2);
			long sum = 0;
			ck_assert_int_eq(pf_scope_run(s, &read_tags_flow, NULL,
					     &sum, NULL), 0);
			ck_assert_int_eq(sum, a_value + b_value);
			ck_assert_int_eq(atomic_load(&ext_wraps), 2);
			ck_assert_int_eq(pf_scope_dispose(s), 0);
			ck_assert_int_eq(atomic_load(&ext_disposes), 2);
		}
		no_leaks("pf_scope_create", n);
		(void)drawn;
	}
	if (getenv("FAULTS_VERBOSE") != NULL)
		fprintf(stderr, "pf_scope_create: %ld allocations, %d PF_ENOMEM\n",
		    count, enomem);
	ck_assert_msg(enomem >= 1, "no PF_ENOMEM out of %ld allocations",
	    count);
	/* The creation is still possible after all that. */
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/*
 * pf_signal_fd allocates at most the context's cold block (which keeps the
 * fd) through the library; its other resource is an eventfd, which a lowered RLIMIT_NOFILE makes fail (EMFILE).  The call
 * must then return a negative code and leave the signal able to make its
 * fd later.
 */
START_TEST(signal_fd_failure_leaves_signal_usable)
{
	pf_scope *s;
	pf_scope_options o = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	/* Once an execution ran, the worker has made its slab: nothing else
	 * allocates on another thread while this test counts. */
	int one = 1, out = 0;
	pf_exec *warm;
	ck_assert_int_eq(pf_scope_exec(s, &plain_flow, &one, NULL, &warm), 0);
	/* With a timeout an outside wait never runs it itself: the worker
	 * does. */
	ck_assert_int_eq(pf_exec_wait_for(warm, &out, 60000), 0);
	pf_exec_release(warm);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_signal *sig = pf_ctx_signal(c);

	pf__alloc_fail_at(0);
	struct rlimit old;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(lowest, 0);
	close(lowest);
	struct rlimit low = { (rlim_t)lowest, old.rlim_max };
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	int rc = pf_signal_fd(sig);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* The context's cold block, which keeps the fd, and nothing else. */
	ck_assert_int_le(pf__alloc_count(), 1);
	ck_assert_msg(rc == PF_EAGAIN || rc == PF_ENOMEM,
	    "eventfd failure returned %d", rc);

	int fd = pf_signal_fd(sig);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pf_signal_fd(sig), fd);
	struct pollfd p = { fd, POLLIN, 0 };
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	ck_assert_int_eq(poll(&p, 1, 1000), 1);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	no_leaks("pf_signal_fd", 0);
}
END_TEST

/* Allocations are counted (and failed) process-wide: let s's worker
 * finish starting (its slabs) before a counted window; under qemu it
 * starts late enough to land in one.  A wait with a deadline leaves the
 * run to the worker. */
static void
worker_started(pf_scope *s)
{
	int x = 1, y = 0;
	pf_exec *warm;
	ck_assert_int_eq(pf_scope_exec(s, &plain_flow, &x, NULL, &warm), 0);
	ck_assert_int_eq(pf_exec_wait_for(warm, &y, 60000), 0);
	pf_exec_release(warm);
}

/* The cold block that keeps the fd cannot be allocated: PF_ENOMEM, no fd
 * made, and the next call works (and fires on abort). */
START_TEST(signal_fd_enomem_leaves_signal_usable)
{
	pf_scope *s;
	pf_scope_options o = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	worker_started(s);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_signal *sig = pf_ctx_signal(c);
	pf__alloc_fail_at(1);
	ck_assert_int_eq(pf_signal_fd(sig), PF_ENOMEM);
	pf__alloc_fail_at(0);
	int fd = pf_signal_fd(sig);
	ck_assert_int_ge(fd, 0);
	struct pollfd p = { fd, POLLIN, 0 };
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	ck_assert_int_eq(poll(&p, 1, 1000), 1);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static atomic_int listener_calls;

static void
on_abort(pf_signal *s, void *data)
{
	(void)s;
	(void)data;
	atomic_fetch_add(&listener_calls, 1);
}

/* The caller owns the listener's storage: adding one allocates nothing,
 * so no injected failure can make it fail. */
START_TEST(listener_add_allocates_nothing)
{
	pf_scope *s;
	pf_scope_options o = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	worker_started(s);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_signal *sig = pf_ctx_signal(c);
	atomic_store(&listener_calls, 0);

	pf_signal_listener l1, l2, l3;
	pf__alloc_fail_at(0);
	ck_assert_int_eq(pf_signal_add_listener(sig, &l1, on_abort, NULL), 0);
	ck_assert_int_eq(pf__alloc_count(), 0);
	/* Even with the very next allocation armed to fail. */
	pf__alloc_fail_at(1);
	ck_assert_int_eq(pf_signal_add_listener(sig, &l2, on_abort, NULL), 0);
	ck_assert_int_eq(pf_signal_remove_listener(sig, &l2), 0);
	ck_assert_int_eq(pf_signal_add_listener(sig, &l2, on_abort, NULL), 0);
	long drawn = pf__alloc_count();
	pf__alloc_fail_at(0);
	ck_assert_int_eq(drawn, 0);

	ck_assert_int_eq(pf_ctx_abort(c), 0);
	ck_assert_int_eq(atomic_load(&listener_calls), 2);
	/* On an aborted signal the listener runs at once: still no malloc. */
	pf__alloc_fail_at(1);
	ck_assert_int_eq(pf_signal_add_listener(sig, &l3, on_abort, NULL), 0);
	drawn = pf__alloc_count();
	pf__alloc_fail_at(0);
	ck_assert_int_eq(drawn, 0);
	ck_assert_int_eq(atomic_load(&listener_calls), 3);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	no_leaks("pf_signal_add_listener", 0);
}
END_TEST

static Suite *
faults_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "scope_enomem", .test = scope_create_enomem_initialises_nothing_left, .timeout = 120 },
		{ .tcase = "scope_enomem", .test = scope_use_enomem_disposes_extension, .timeout = 120 },
		{ .tcase = "scope_enomem", .test = create_execution_enomem_creates_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = scope_exec_enomem_starts_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = child_exec_from_handler_enomem_starts_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = child_exec_from_standalone_enomem_starts_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = child_run_from_handler_enomem_starts_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = child_run_from_standalone_enomem_starts_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = fn_step_from_handler_enomem_runs_nothing, .timeout = 120 },
		{ .tcase = "exec_enomem", .test = fn_step_from_standalone_enomem_runs_nothing, .timeout = 120 },
		{ .tcase = "journal_enomem", .test = keyed_child_exec_from_handler_enomem_leaves_no_entry, .timeout = 120 },
		{ .tcase = "journal_enomem", .test = keyed_child_exec_from_standalone_enomem_leaves_no_entry, .timeout = 120 },
		{ .tcase = "journal_enomem", .test = keyed_child_run_from_handler_enomem_leaves_no_entry, .timeout = 120 },
		{ .tcase = "parallel_enomem", .test = parallel_from_handler_enomem_runs_no_call, .timeout = 120 },
		{ .tcase = "parallel_enomem", .test = parallel_settled_from_handler_enomem_runs_no_call, .timeout = 120 },
		{ .tcase = "parallel_enomem", .test = parallel_from_standalone_enomem_runs_no_call, .timeout = 120 },
		{ .tcase = "parallel_enomem", .test = parallel_settled_from_standalone_enomem_runs_no_call, .timeout = 120 },
		{ .tcase = "tags_errors_callbacks_enomem", .test = tag_set_from_handler_enomem_leaves_no_tag, .timeout = 120 },
		{ .tcase = "tags_errors_callbacks_enomem", .test = tag_set_on_standalone_enomem_leaves_no_tag, .timeout = 120 },
		{ .tcase = "tags_errors_callbacks_enomem", .test = fail_message_enomem_keeps_code, .timeout = 120 },
		{ .tcase = "tags_errors_callbacks_enomem", .test = on_status_finished_enomem_calls_nothing, .timeout = 120 },
		{ .tcase = "tags_errors_callbacks_enomem", .test = on_status_pending_enomem_calls_nothing, .timeout = 120 },
		{ .tcase = "signal_resources", .test = signal_fd_failure_leaves_signal_usable, .timeout = 30 },
		{ .tcase = "signal_resources", .test = signal_fd_enomem_leaves_signal_usable, .timeout = 30 },
		{ .tcase = "signal_resources", .test = listener_add_allocates_nothing, .timeout = 30 },
	};
	return pf_test_suite("faults", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	/* Every allocation on a path is counted and failed in turn, so the
	 * count must not depend on what earlier rounds left behind: the
	 * main thread's records come from the heap, and workers' slabs give
	 * their chunks back to the heap at once rather than keep them for
	 * the next round (record.c, slab.c). */
	pf__record_heap_only(true);
	pf__slab_depot_set_retain_ms(0);
	return pf_test_run(faults_suite());
}
