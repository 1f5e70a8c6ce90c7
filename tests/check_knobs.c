/*
 * check_knobs.c: behaviour at the edges of API.md's Semantics, black box
 * through <pumped.h>: waiting on oneself (item 5), resource limits that
 * must end in PF_EAGAIN rather than a hang or a crash (item 5, the tuning
 * variables PUMPED_MAX_SPARE and PUMPED_STACK_KB), the thread count as a
 * bound on parallelism (item 5), failure messages reaching the caller
 * (items 1 and 8), journal keys reused for another flow (item 9), parallel
 * stats (item 8), calls forbidden inside status callbacks and signal
 * listeners (item 2), and PUMPED_RECORD_RETAIN_MS.
 *
 * A behaviour that could hang is checked with a bounded wait where the
 * test thread can wait with a deadline (pf_exec_wait_for), else by the
 * Check timeout of its test case: either way a hang fails the test.
 *
 * pf_call.message and pf_parallel_stats.cancelled are new fields: the
 * assertions on them compile only when <pumped.h> defines
 * PF_HAVE_CALL_MESSAGE.
 *
 * Tuning variables are read at each pf_scope_create, and every test case
 * has a fixture that unsets them first (check-valgrind runs with
 * CK_FORK=no, where a test's setenv would otherwise reach the next one).
 *
 * Handlers, callbacks and listeners only record (atomics, or plain fields
 * read after a wait that orders them); assertions run on the test thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pumped.h>

#include "annotate.h"
#include "slab.h"
#include "testlib.h"

/* ------------------------------------------------------------ helpers */

#define E_NEVER (PF_EUSER - 99)   /* a bounded wait ran out            */
#define E_LOOPED (PF_EUSER - 50)  /* a looper's own code once aborted  */
#define E_BRANCH (PF_EUSER - 5)
#define E_CHILD (PF_EUSER - 6)
#define E_STEP (PF_EUSER - 7)
#define E_GROUP (PF_EUSER - 8)

#define BRANCH_MSG "branch failed on purpose"
#define CHILD_MSG "child failed on purpose"
#define STEP_MSG "step failed on purpose"

/* Bounds for waits that should end quickly: far above need. */
#define BOUND_US 10000000L
#define STEP_US 100L
/* What the test thread waits for an execution that must end. */
#define WAIT_MS 15000u
/* Chains through resource limits: deep, and slow under valgrind. */
#define CHAIN_WAIT_MS 30000u

static void
pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* KNOBS_VERBOSE=1 prints which path each test took (stderr). */
static void PF_PRINTF(1, 2)
note(const char *fmt, ...)
{
	if (getenv("KNOBS_VERBOSE") == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits (bounded) until *a >= want; true if it got there. */
static bool
await_at_least(atomic_int *a, int want)
{
	for (long t = 0; t < BOUND_US; t += STEP_US) {
		if (atomic_load_explicit(a, memory_order_acquire) >= want)
			return true;
		pause_us(STEP_US);
	}
	return false;
}


/* Sets a tuning variable, or unsets it for NULL. */
static void
tune(const char *name, const char *value)
{
	if (value != NULL)
		ck_assert_int_eq(setenv(name, value, 1), 0);
	else
		ck_assert_int_eq(unsetenv(name), 0);
}

/* Fixture of every test case: the library's defaults. */
static void
default_tuning(void)
{
	tune("PUMPED_MAX_SPARE", NULL);
	tune("PUMPED_STACK_KB", NULL);
}

static bool
finished(pf_status st)
{
	return st == PF_COMPLETED || st == PF_FAILED || st == PF_CANCELLED;
}

/* Waits up to ms for e (the test thread only sleeps in wait_for, it never
 * runs e itself) and fails the test if e has not finished by then. */
static int
wait_done(pf_exec *e, void *output, unsigned ms, const char *what)
{
	int rc = pf_exec_wait_for(e, output, ms);
	ck_assert_msg(finished(pf_exec_status(e)),
	    "%s: not finished after %u ms (status %s, wait_for %d): it hangs",
	    what, ms, pf_status_name(pf_exec_status(e)), rc);
	return rc;
}

static int
noop(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	return 0;
}

static const pf_flow noop_flow = { "noop", noop, 0, 0 };

/* ------------------------------------------- waiting on oneself (5) */

/* The handler waits on its own execution, whose handle the submitter
 * publishes after pf_scope_exec returned. */
static _Atomic(pf_exec *) self_handle;
static atomic_int self_rc;     /* what pf_exec_wait returned to it     */
static atomic_int self_done;   /* it recorded self_rc                  */
static atomic_int self_inline; /* it ran on the test thread            */
static atomic_int gate_started;
static pthread_t test_thread;

static void
self_reset(void)
{
	PF_ATOMIC_OBJ(&self_handle);
	PF_ATOMIC_OBJ(&self_rc);
	PF_ATOMIC_OBJ(&self_done);
	PF_ATOMIC_OBJ(&self_inline);
	PF_ATOMIC_OBJ(&gate_started);
	atomic_store(&self_handle, NULL);
	atomic_store(&self_rc, 1);
	atomic_store(&self_done, 0);
	atomic_store(&self_inline, 0);
	atomic_store(&gate_started, 0);
	test_thread = pthread_self();
}

static int
self_wait(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	pf_exec *me = NULL;
	for (long t = 0; t < BOUND_US; t += STEP_US) {
		me = atomic_load_explicit(&self_handle, memory_order_acquire);
		if (me != NULL)
			break;
		pause_us(STEP_US);
	}
	if (me == NULL)
		return E_NEVER;
	atomic_store(&self_inline, pthread_equal(pthread_self(), test_thread));
	int rc = pf_exec_wait(me, NULL);
	atomic_store_explicit(&self_rc, rc, memory_order_release);
	atomic_store_explicit(&self_done, 1, memory_order_release);
	return 0;
}

static const pf_flow self_wait_flow = { "self_wait", self_wait, 0, 0 };

/* Opens when the self-waiter recorded its result, or after 1 s should
 * the library leave the self-waiter to the worker held by the gate (the
 * outcome to check is the same). */
static int
gate(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_store_explicit(&gate_started, 1, memory_order_release);
	for (long t = 0; t < 1000000L; t += STEP_US) {
		if (atomic_load_explicit(&self_done, memory_order_acquire))
			break;
		pause_us(STEP_US);
	}
	return 0;
}

static const pf_flow gate_flow = { "gate", gate, 0, 0 };

/* Holds its worker in a wait on another scope's execution (input): a
 * wait that cannot help, so the worker does not count as running. */
static int
wait_gate(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	return pf_scope_run((pf_scope *)input, &gate_flow, NULL, NULL, NULL);
}

static const pf_flow wait_gate_flow = { "wait_gate", wait_gate, 0, 0 };

/* "Waiting on one's own execution returns PF_EINVAL": a handler on a
 * worker waiting on its own handle. */
START_TEST(handler_waiting_on_own_execution_einval)
{
	self_reset();
	pf_scope *s = new_scope(2);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &self_wait_flow, NULL, NULL, &e), 0);
	atomic_store_explicit(&self_handle, e, memory_order_release);
	ck_assert_int_eq(wait_done(e, NULL, WAIT_MS,
	    "a handler waiting on its own execution"), 0);
	ck_assert_int_eq(atomic_load(&self_done), 1);
	ck_assert_int_eq(atomic_load(&self_rc), PF_EINVAL);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* The same when the handler runs inline on an outside thread's
 * pf_exec_wait: the only worker is held in a wait on another scope (not
 * counted as running: the thread bound allows an outside thread to run
 * work) and no spare may start, so the test thread, waiting on an
 * execution nobody started, runs it itself.  Without the check that wait
 * sleeps forever (the Check timeout ends it).  Should the library not run
 * it inline, the gate opens after 1 s and the worker runs it. */
START_TEST(inline_handler_waiting_on_own_execution_einval)
{
	self_reset();
	tune("PUMPED_MAX_SPARE", "0");
	pf_scope *s = new_scope(1);
	pf_scope *other = new_scope(1);
	pf_exec *b = NULL, *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &wait_gate_flow, other, NULL, &b), 0);
	ck_assert(await_at_least(&gate_started, 1));
	ck_assert_int_eq(pf_scope_exec(s, &self_wait_flow, NULL, NULL, &e), 0);
	atomic_store_explicit(&self_handle, e, memory_order_release);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&self_done), 1);
	ck_assert_int_eq(atomic_load(&self_rc), PF_EINVAL);
	note("self-wait: the handler ran %s",
	    atomic_load(&self_inline) ? "inline on the test thread" :
	    "on the worker");
	/* 0, or PF_EAGAIN if that wait could neither help nor get a spare. */
	int brc = wait_done(b, NULL, WAIT_MS, "wait_gate");
	ck_assert_msg(brc == 0 || brc == PF_EAGAIN, "wait_gate: %d", brc);
	pf_exec_release(b);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(pf_scope_dispose(other), 0);
}
END_TEST

/* ---------------------------------------------- resource limits (5) */

/* A chain of nested child waits: each level runs the next with
 * pf_ctx_run and returns what it got. */
static atomic_long chain_started, chain_finished;

static void
chain_reset(void)
{
	PF_ATOMIC_OBJ(&chain_started);
	PF_ATOMIC_OBJ(&chain_finished);
	atomic_store(&chain_started, 0);
	atomic_store(&chain_finished, 0);
}

static const pf_flow chain_flow;

/* Each level also takes 1 KiB of stack of its own: the library's frames
 * alone (about 300 bytes a level in a -O0 build, fewer optimised) would
 * let 20000 levels fit a default worker's helping budget, and 40000 the
 * 257 small stacks, so the chain would not reach the limit it is about. */
#define CHAIN_PAD 1024

static int
chain(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	volatile char pad[CHAIN_PAD];
	pad[0] = 1;
	pad[CHAIN_PAD - 1] = 1;
	atomic_fetch_add_explicit(&chain_started, 1, memory_order_relaxed);
	int depth = *(const int *)input;
	int rc = 0;
	if (depth > 0) {
		int next = depth - 1 + pad[0] - pad[CHAIN_PAD - 1];
		rc = pf_ctx_run(ctx, &chain_flow, &next, NULL, NULL);
	}
	atomic_fetch_add_explicit(&chain_finished, 1, memory_order_release);
	return rc;
}

static const pf_flow chain_flow = { "chain", chain, sizeof(int), 0 };

/* Runs a chain and hands its code over as output (so that the test's
 * bounded wait tells "finished" from "ran out of time"). */
static int
chain_top(pf_ctx *ctx, const void *input, void *output)
{
	*(int *)output = pf_ctx_run(ctx, &chain_flow, input, NULL, NULL);
	return 0;
}

static const pf_flow chain_top_flow = { "chain_top", chain_top, sizeof(int),
	sizeof(int) };

static void
run_chain(unsigned threads, int depth, const char *what)
{
	chain_reset();
	pf_scope *s = new_scope(threads);
	pf_exec *e = NULL;
	int rc = 1;
	ck_assert_int_eq(pf_scope_exec(s, &chain_top_flow, &depth, NULL, &e),
	    0);
	ck_assert_int_eq(wait_done(e, &rc, CHAIN_WAIT_MS, what), 0);
	ck_assert_msg(rc == 0 || rc == PF_EAGAIN,
	    "%s: the chain returned %d (%s), want 0 or PF_EAGAIN", what, rc,
	    pf_strerror(rc));
	pf_exec_release(e);
	/* Whatever was left pending is cancelled; all that started ends. */
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	long started = atomic_load(&chain_started);
	long ended = atomic_load(&chain_finished);
	note("%s: %d (%s), %ld levels started", what, rc, pf_strerror(rc),
	    started);
	ck_assert_msg(started == ended,
	    "%s: %ld handlers started, %ld returned", what, started, ended);
}

/* "A wait that can neither help (its stack budget spent) nor get a spare
 * thread returns PF_EAGAIN instead of blocking forever": no spares, one
 * worker, 20000 nested child waits. */
START_TEST(nested_waits_without_spares_end)
{
	tune("PUMPED_MAX_SPARE", "0");
	run_chain(1, 20000, "20000 nested waits, PUMPED_MAX_SPARE=0");
}
END_TEST

/* The same with the smallest stacks and the default spares: 40000 levels
 * need more spares than there are. */
START_TEST(nested_waits_small_stacks_end)
{
	tune("PUMPED_STACK_KB", "64");
	run_chain(1, 40000, "40000 nested waits, PUMPED_STACK_KB=64");
}
END_TEST

/* Two one-thread scopes waiting on each other through pf_scope_run, with
 * no spares: A's worker waits on B's execution, which waits on a new
 * execution of A. */
static pf_scope *cross_a, *cross_b;
static atomic_int cross_b_started, cross_b_finished, cross_leaf_runs;

static int
cross_leaf(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_fetch_add(&cross_leaf_runs, 1);
	return 0;
}

static const pf_flow cross_leaf_flow = { "cross_leaf", cross_leaf, 0, 0 };

static int
cross_b_handler(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_fetch_add(&cross_b_started, 1);
	int rc = pf_scope_run(cross_a, &cross_leaf_flow, NULL, NULL, NULL);
	atomic_fetch_add(&cross_b_finished, 1);
	return rc;
}

static const pf_flow cross_b_flow = { "cross_b", cross_b_handler, 0, 0 };

static int
cross_a_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	*(int *)output = pf_scope_run(cross_b, &cross_b_flow, NULL, NULL, NULL);
	return 0;
}

static const pf_flow cross_a_root_flow = { "cross_a_root", cross_a_root, 0,
	sizeof(int) };

START_TEST(cross_scope_wait_cycle_ends)
{
	tune("PUMPED_MAX_SPARE", "0");
	PF_ATOMIC_OBJ(&cross_b_started);
	PF_ATOMIC_OBJ(&cross_b_finished);
	PF_ATOMIC_OBJ(&cross_leaf_runs);
	atomic_store(&cross_b_started, 0);
	atomic_store(&cross_b_finished, 0);
	atomic_store(&cross_leaf_runs, 0);
	cross_a = new_scope(1);
	cross_b = new_scope(1);
	pf_exec *e = NULL;
	int rc = 1;
	ck_assert_int_eq(pf_scope_exec(cross_a, &cross_a_root_flow, NULL, NULL,
	    &e), 0);
	ck_assert_int_eq(wait_done(e, &rc, WAIT_MS,
	    "scope A waiting on B waiting on A, PUMPED_MAX_SPARE=0"), 0);
	ck_assert_msg(rc == 0 || rc == PF_EAGAIN || rc == PF_EINVAL,
	    "the cycle returned %d (%s), want 0, PF_EAGAIN or PF_EINVAL", rc,
	    pf_strerror(rc));
	note("cross-scope cycle: %d (%s)", rc, pf_strerror(rc));
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(cross_a), 0);
	ck_assert_int_eq(pf_scope_dispose(cross_b), 0);
	ck_assert_int_eq(atomic_load(&cross_b_started),
	    atomic_load(&cross_b_finished));
}
END_TEST

/* "fn steps nest on the caller's stack within the same budget (PF_EAGAIN
 * past it)": 100000 nested steps on a worker.  Without the budget they
 * overflow the worker's stack (SIGSEGV). */
static int
nest_fn(pf_ctx *child, void *arg)
{
	intptr_t depth = (intptr_t)arg;
	if (depth == 0)
		return 0;
	int rc = pf_ctx_exec_fn(child, "nest", nest_fn, (void *)(depth - 1));
	return rc;
}

static int
nest_top(pf_ctx *ctx, const void *input, void *output)
{
	(void)input;
	*(int *)output = pf_ctx_exec_fn(ctx, "nest", nest_fn,
	    (void *)(intptr_t)100000);
	return 0;
}

static const pf_flow nest_top_flow = { "nest_top", nest_top, 0, sizeof(int) };

START_TEST(nested_fn_steps_return_eagain)
{
	pf_scope *s = new_scope(1);
	pf_exec *e = NULL;
	int rc = 1;
	ck_assert_int_eq(pf_scope_exec(s, &nest_top_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(wait_done(e, &rc, CHAIN_WAIT_MS,
	    "100000 nested fn steps"), 0);
	ck_assert_msg(rc == 0 || rc == PF_EAGAIN,
	    "100000 nested fn steps returned %d (%s), want 0 or PF_EAGAIN",
	    rc, pf_strerror(rc));
	note("100000 nested fn steps: %d (%s)", rc, pf_strerror(rc));
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------ the thread count bounds parallelism */

/* Leaves never wait: one running is one thread running a handler, so
 * the most leaves at one instant is a lower bound of the threads running
 * handlers of the scope, which must not exceed pf_scope_threads. */
static atomic_int leaves_running, leaves_max, roots_failed;

static int
leaf(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	int now = atomic_fetch_add(&leaves_running, 1) + 1;
	int max = atomic_load(&leaves_max);
	while (now > max && !atomic_compare_exchange_weak(&leaves_max, &max,
	    now))
		;
	int64_t spin = 500000 * (1 + *(const int *)input % 4); /* 0.5-2 ms */
	int64_t t0 = now_ns();
	while (now_ns() - t0 < spin)
		;
	atomic_fetch_sub(&leaves_running, 1);
	return 0;
}

static const pf_flow leaf_flow = { "leaf", leaf, sizeof(int), 0 };

#define MAX_LEAVES 32

static int
fan_out(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	int n = *(const int *)input;
	pf_exec *h[MAX_LEAVES];
	int started = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		rc = pf_ctx_exec(ctx, &leaf_flow, &i, NULL, &h[i]);
		if (rc != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		int w = pf_exec_wait(h[i], NULL);
		if (rc == 0)
			rc = w;
		pf_exec_release(h[i]);
	}
	return rc;
}

static const pf_flow fan_out_flow = { "fan_out", fan_out, sizeof(int), 0 };

struct outside {
	pthread_t tid;
	pf_scope *s;
	int k;
	long rounds;
};

static void *
outside_thread(void *arg)
{
	struct outside *o = arg;
	for (long r = 0; r < o->rounds; r++) {
		int n = 16 + (int)((r * 7 + o->k * 5) % 17); /* 16 to 32 */
		if (pf_scope_run(o->s, &fan_out_flow, &n, NULL, NULL) != 0)
			atomic_fetch_add(&roots_failed, 1);
	}
	return NULL;
}

/* "At no instant do more than pf_scope_threads(s) threads run handlers
 * of the scope, counting outside threads that run work while they wait":
 * N threads (1, 2), K outside threads (1, 2, 3) each running roots that
 * fan out to CPU-bound leaves and wait on them. */
START_TEST(thread_count_bounds_parallelism)
{
	unsigned n_threads = 1 + (unsigned)_i / 3;
	int k_outside = 1 + _i % 3;
	PF_ATOMIC_OBJ(&leaves_running);
	PF_ATOMIC_OBJ(&leaves_max);
	PF_ATOMIC_OBJ(&roots_failed);
	atomic_store(&leaves_running, 0);
	atomic_store(&leaves_max, 0);
	atomic_store(&roots_failed, 0);
	pf_scope *s = new_scope(n_threads);
	ck_assert_uint_eq(pf_scope_threads(s), n_threads);
	long rounds = pf_test_scale(6);
	if (rounds < 1)
		rounds = 1;
	struct outside o[3];
	for (int k = 0; k < k_outside; k++) {
		o[k] = (struct outside){ .s = s, .k = k, .rounds = rounds };
		ck_assert_int_eq(pthread_create(&o[k].tid, NULL, outside_thread,
		    &o[k]), 0);
	}
	for (int k = 0; k < k_outside; k++)
		ck_assert_int_eq(pthread_join(o[k].tid, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	note("%u threads, %d outside waiters: at most %d handlers at once",
	    n_threads, k_outside, atomic_load(&leaves_max));
	ck_assert_int_eq(atomic_load(&roots_failed), 0);
	ck_assert_msg(atomic_load(&leaves_max) <= (int)n_threads,
	    "%d threads, %d outside waiters: %d handlers ran at once",
	    n_threads, k_outside, atomic_load(&leaves_max));
	ck_assert_int_ge(atomic_load(&leaves_max), 1);
}
END_TEST

/* ---------------------------------- failure messages reach the caller (1) */

struct msg_group {
	pf_call calls[3];
	pf_parallel_stats st;
	atomic_int ok_done;
};

static int
branch_ok(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	struct msg_group *g = (struct msg_group *)input;
	*(int *)output = 7;
	atomic_fetch_add_explicit(&g->ok_done, 1, memory_order_release);
	return 0;
}

static const pf_flow branch_ok_flow = { "branch_ok", branch_ok, 0,
	sizeof(int) };

/* Fails once both other calls completed: their messages must be NULL. */
static int
branch_fail(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct msg_group *g = (struct msg_group *)input;
	if (!await_at_least(&g->ok_done, 2))
		return E_NEVER;
	return pf_ctx_fail(ctx, E_BRANCH, BRANCH_MSG);
}

static const pf_flow branch_fail_flow = { "branch_fail", branch_fail, 0, 0 };

/* Returns the group's code as is, without pf_ctx_fail. */
static int
group_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct msg_group *g = (struct msg_group *)input;
	return pf_ctx_parallel(ctx, g->calls, 3, &g->st);
}

static const pf_flow group_root_flow = { "group_root", group_root, 0, 0 };

/* Runs root (input as is) on a 3-thread scope, waits, and checks that the
 * root failed with code and that its context's message is msg. */
static void
expect_root_message(const pf_flow *root, void *input, int code,
    const char *msg, pf_exec **keep, pf_scope **scope)
{
	pf_scope *s = new_scope(3);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, root, input, NULL, &e), 0);
	ck_assert_int_eq(wait_done(e, NULL, WAIT_MS, root->name), code);
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	const char *got = NULL;
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), &got), code);
	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, msg) == 0,
	    "%s: the caller sees \"%s\", want \"%s\"", root->name, got, msg);
	*keep = e;
	*scope = s;
}

/* Item 1: "a handler that returns a nonzero code without pf_ctx_fail
 * takes the message of the ... group call that failed with that code",
 * and item 8's pf_call.message. */
START_TEST(parallel_failure_message_reaches_caller)
{
	struct msg_group g;
	memset(&g, 0, sizeof(g));
	PF_ATOMIC_OBJ(&g.ok_done);
	atomic_init(&g.ok_done, 0);
	int out0 = 0, out2 = 0;
	g.calls[0] = (pf_call){ .flow = &branch_ok_flow, .input = &g,
		.output = &out0 };
	g.calls[1] = (pf_call){ .flow = &branch_fail_flow, .input = &g };
	g.calls[2] = (pf_call){ .flow = &branch_ok_flow, .input = &g,
		.output = &out2 };
#ifdef PF_HAVE_CALL_MESSAGE
	for (int i = 0; i < 3; i++)
		g.calls[i].message = "garbage";
#endif
	pf_exec *e;
	pf_scope *s;
	expect_root_message(&group_root_flow, &g, E_BRANCH, BRANCH_MSG, &e, &s);
	ck_assert_int_eq(g.calls[1].result, E_BRANCH);
	ck_assert_int_eq(g.calls[1].status, PF_FAILED);
	ck_assert_int_eq(g.calls[0].status, PF_COMPLETED);
	ck_assert_int_eq(g.calls[2].status, PF_COMPLETED);
	ck_assert_int_eq(out0, 7);
	ck_assert_int_eq(out2, 7);
#ifdef PF_HAVE_CALL_MESSAGE
	/* Valid while the calling context (the root's) lives: e holds it. */
	ck_assert_ptr_nonnull(g.calls[1].message);
	ck_assert_str_eq(g.calls[1].message, BRANCH_MSG);
	ck_assert_ptr_null(g.calls[0].message);
	ck_assert_ptr_null(g.calls[2].message);
#endif
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static int
child_fail(pf_ctx *ctx, const void *input, void *output)
{
	(void)input;
	(void)output;
	return pf_ctx_fail(ctx, E_CHILD, CHILD_MSG);
}

static const pf_flow child_fail_flow = { "child_fail", child_fail, 0, 0 };

static int
child_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)input;
	(void)output;
	return pf_ctx_run(ctx, &child_fail_flow, NULL, NULL, NULL);
}

static const pf_flow child_root_flow = { "child_root", child_root, 0, 0 };

START_TEST(child_failure_message_reaches_parent)
{
	pf_exec *e;
	pf_scope *s;
	expect_root_message(&child_root_flow, NULL, E_CHILD, CHILD_MSG, &e, &s);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static int
step_fail(pf_ctx *child, void *arg)
{
	(void)arg;
	return pf_ctx_fail(child, E_STEP, STEP_MSG);
}

static int
step_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)input;
	(void)output;
	return pf_ctx_exec_fn(ctx, "failing step", step_fail, NULL);
}

static const pf_flow step_root_flow = { "step_root", step_root, 0, 0 };

START_TEST(fn_step_failure_message_reaches_parent)
{
	pf_exec *e;
	pf_scope *s;
	expect_root_message(&step_root_flow, NULL, E_STEP, STEP_MSG, &e, &s);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ----------------------------------------------------------- journal (9) */

struct jkey {
	bool use_exec;         /* second call through pf_ctx_exec          */
	atomic_int int_runs, big_runs, big_callbacks;
	int first_rc, second_rc, third_rc;
	int first_out, third_out;
	unsigned char big[256];
	pf_exec *second_handle; /* pf_ctx_exec's out: must stay NULL     */
};

static int
jint(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	struct jkey *j = (struct jkey *)input;
	atomic_fetch_add(&j->int_runs, 1);
	*(int *)output = 42;
	return 0;
}

static const pf_flow jint_flow = { "jint", jint, 0, sizeof(int) };

static int
jbig(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	struct jkey *j = (struct jkey *)input;
	atomic_fetch_add(&j->big_runs, 1);
	memset(output, 0x5a, 256);
	return 0;
}

static const pf_flow jbig_flow = { "jbig", jbig, 0, 256 };

static void
jbig_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)st;
	atomic_fetch_add(&((struct jkey *)data)->big_callbacks, 1);
}

static int
jkey_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct jkey *j = (struct jkey *)input;
	pf_exec_options o1 = { .key = "k" };
	j->first_rc = pf_ctx_run(ctx, &jint_flow, j, &j->first_out, &o1);
	/* The same key, by content, for a flow of another output size. */
	char key[2] = { 'k', '\0' };
	pf_exec_options o2 = { .key = key, .on_status = jbig_status,
		.on_status_data = j };
	if (j->use_exec) {
		j->second_rc = pf_ctx_exec(ctx, &jbig_flow, j, &o2,
		    &j->second_handle);
		if (j->second_rc == 0 && j->second_handle != NULL) {
			pf_exec_wait(j->second_handle, NULL);
			pf_exec_release(j->second_handle);
		}
	} else {
		j->second_rc = pf_ctx_run(ctx, &jbig_flow, j, j->big, &o2);
	}
	/* The entry of the first flow is still there. */
	j->third_rc = pf_ctx_run(ctx, &jint_flow, j, &j->third_out, &o1);
	return 0;
}

static const pf_flow jkey_root_flow = { "jkey_root", jkey_root, 0, 0 };

static void
journal_other_flow(bool use_exec)
{
	struct jkey *j = calloc(1, sizeof(*j));
	ck_assert_ptr_nonnull(j);
	j->use_exec = use_exec;
	atomic_init(&j->int_runs, 0);
	atomic_init(&j->big_runs, 0);
	atomic_init(&j->big_callbacks, 0);
	memset(j->big, 0xab, sizeof(j->big));
	pf_scope *s = new_scope(2);
	ck_assert_int_eq(pf_scope_run(s, &jkey_root_flow, j, NULL, NULL), 0);
	/* Anything wrongly started has ended after dispose. */
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(j->first_rc, 0);
	ck_assert_int_eq(j->first_out, 42);
	ck_assert_msg(j->second_rc == PF_EINVAL,
	    "key \"k\" reused for another flow: %s returned %d, want "
	    "PF_EINVAL", use_exec ? "pf_ctx_exec" : "pf_ctx_run",
	    j->second_rc);
	ck_assert_ptr_null(j->second_handle);
	ck_assert_int_eq(atomic_load(&j->big_runs), 0);
	ck_assert_int_eq(atomic_load(&j->big_callbacks), 0);
	for (size_t i = 0; i < sizeof(j->big); i++)
		ck_assert_msg(j->big[i] == 0xab, "output byte %zu written", i);
	ck_assert_int_eq(j->third_rc, 0);
	ck_assert_int_eq(j->third_out, 42);
	ck_assert_int_eq(atomic_load(&j->int_runs), 1);
	free(j);
}

/* Item 9: "a call whose key matches an entry of another flow returns
 * PF_EINVAL and creates nothing". */
START_TEST(journal_key_of_other_flow_run_einval)
{
	journal_other_flow(false);
}
END_TEST

START_TEST(journal_key_of_other_flow_exec_einval)
{
	journal_other_flow(true);
}
END_TEST

/* --------------------------------------------------- parallel stats (8) */

#ifdef PF_HAVE_CALL_MESSAGE
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

struct cancel_group {
	pf_call calls[4];
	pf_parallel_stats st;
	int rc;
	atomic_int ok_done;
};

static int
cg_ok(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	struct cancel_group *g = (struct cancel_group *)input;
	atomic_fetch_add_explicit(&g->ok_done, 1, memory_order_release);
	return 0;
}

static const pf_flow cg_ok_flow = { "cg_ok", cg_ok, 0, 0 };

static int
cg_fail(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct cancel_group *g = (struct cancel_group *)input;
	if (!await_at_least(&g->ok_done, 1))
		return E_NEVER;
	return pf_ctx_fail(ctx, E_GROUP, "group call failed");
}

static const pf_flow cg_fail_flow = { "cg_fail", cg_fail, 0, 0 };

/* Ends cancelled whatever happens first: aborted while pending, or
 * returning an error once aborted. */
static int
cg_loop(pf_ctx *ctx, const void *input, void *output)
{
	(void)input;
	(void)output;
	return await_abort(ctx) ? E_LOOPED : E_NEVER;
}

static const pf_flow cg_loop_flow = { "cg_loop", cg_loop, 0, 0 };

static int
cg_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct cancel_group *g = (struct cancel_group *)input;
	g->rc = pf_ctx_parallel(ctx, g->calls, 4, &g->st);
	return 0;
}

static const pf_flow cg_root_flow = { "cg_root", cg_root, 0, 0 };

/* Item 8: "the failing call itself ends failed, the others it aborted
 * end cancelled"; stats.cancelled counts those (part of failed). */
START_TEST(parallel_stats_count_cancelled)
{
	struct cancel_group g;
	memset(&g, 0, sizeof(g));
	PF_ATOMIC_OBJ(&g.ok_done);
	atomic_init(&g.ok_done, 0);
	g.calls[0] = (pf_call){ .flow = &cg_ok_flow, .input = &g };
	g.calls[1] = (pf_call){ .flow = &cg_fail_flow, .input = &g };
	g.calls[2] = (pf_call){ .flow = &cg_loop_flow, .input = &g };
	g.calls[3] = (pf_call){ .flow = &cg_loop_flow, .input = &g };
	memset(&g.st, 0xa5, sizeof(g.st));
	/* One thread per call besides the root's: no call waits for a
	 * thread held by another. */
	pf_scope *s = new_scope(6);
	ck_assert_int_eq(pf_scope_run(s, &cg_root_flow, &g, NULL, NULL), 0);
	ck_assert_int_eq(g.rc, E_GROUP);
	ck_assert_int_eq(g.calls[0].status, PF_COMPLETED);
	ck_assert_int_eq(g.calls[1].status, PF_FAILED);
	ck_assert_int_eq(g.calls[2].status, PF_CANCELLED);
	ck_assert_int_eq(g.calls[3].status, PF_CANCELLED);
	ck_assert_uint_eq(g.st.total, 4);
	ck_assert_uint_eq(g.st.succeeded, 1);
	ck_assert_uint_eq(g.st.failed, g.st.total - g.st.succeeded);
	ck_assert_uint_eq(g.st.cancelled, 2);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST
#endif

static void
expect_zero_stats(const pf_parallel_stats *st, const char *what)
{
	ck_assert_msg(st->total == 0 && st->succeeded == 0 && st->failed == 0,
	    "%s: stats left as {%zu, %zu, %zu}", what, st->total,
	    st->succeeded, st->failed);
#ifdef PF_HAVE_CALL_MESSAGE
	ck_assert_msg(st->cancelled == 0, "%s: stats.cancelled left as %zu",
	    what, st->cancelled);
#endif
}

struct empty_group {
	int rc, settled_rc;
	pf_parallel_stats st, settled_st;
};

static int
empty_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct empty_group *g = (struct empty_group *)input;
	g->rc = pf_ctx_parallel(ctx, NULL, 0, &g->st);
	g->settled_rc = pf_ctx_parallel_settled(ctx, NULL, 0, &g->settled_st);
	return 0;
}

static const pf_flow empty_root_flow = { "empty_root", empty_root, 0, 0 };

/* Item 8: "n == 0 returns 0"; stats count what really happened
 * (nothing): they are written, not left as they were. */
START_TEST(parallel_empty_zeroes_stats)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_parallel_stats st;
	memset(&st, 0xa5, sizeof(st));
	ck_assert_int_eq(pf_ctx_parallel(c, NULL, 0, &st), 0);
	expect_zero_stats(&st, "parallel, standalone context");
	memset(&st, 0xa5, sizeof(st));
	ck_assert_int_eq(pf_ctx_parallel_settled(c, NULL, 0, &st), 0);
	expect_zero_stats(&st, "parallel_settled, standalone context");
	pf_ctx_release(c);

	struct empty_group g;
	memset(&g, 0xa5, sizeof(g));
	ck_assert_int_eq(pf_scope_run(s, &empty_root_flow, &g, NULL, NULL), 0);
	ck_assert_int_eq(g.rc, 0);
	ck_assert_int_eq(g.settled_rc, 0);
	expect_zero_stats(&g.st, "parallel, in a handler");
	expect_zero_stats(&g.settled_st, "parallel_settled, in a handler");
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------- forbidden calls inside callbacks (2) */

/*
 * "Inside a status callback or a signal listener a program may read
 * anything and abort anything, but must not wait, start work or
 * dispose": a blocking wait on an unfinished execution and starting work
 * return PF_EINVAL there; non-blocking polls stay allowed.
 */
struct forbid {
	pf_scope *s;
	pf_ctx *other;     /* a live standalone context, not aborted */
	pf_exec *blocker;  /* unfinished while the probe runs         */
	pf_exec *done;     /* finished, output 42                     */
	pf_status when;    /* the status callback acts on this one    */
	pf_signal_listener l;
	atomic_int fired, probed;
	int try_rc, poll_rc, done_try_rc, done_poll_rc, done_out;
	int wait_rc, scope_exec_rc, ctx_exec_rc;
};

static atomic_int blocker_started, blocker_release;

static int
blocker(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_store_explicit(&blocker_started, 1, memory_order_release);
	/* Released by the test; 5 s at most (a wait wrongly allowed in a
	 * callback sleeps until it ends). */
	for (long t = 0; t < 5000000L; t += STEP_US) {
		if (atomic_load_explicit(&blocker_release,
		    memory_order_acquire))
			break;
		pause_us(STEP_US);
	}
	return 0;
}

static const pf_flow blocker_flow = { "blocker", blocker, 0, 0 };

static int
answer(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	*(int *)output = 42;
	return 0;
}

static const pf_flow answer_flow = { "answer", answer, 0, sizeof(int) };

/* The calls, once per test, from inside a callback or listener. */
static void
probe(struct forbid *p)
{
	if (atomic_exchange(&p->fired, 1) != 0)
		return;
	/* Allowed: polls that never block. */
	p->try_rc = pf_exec_try(p->blocker, NULL);
	p->poll_rc = pf_exec_wait_for(p->blocker, NULL, 0);
	p->done_try_rc = pf_exec_try(p->done, &p->done_out);
	p->done_poll_rc = pf_exec_wait_for(p->done, NULL, 0);
	/* Forbidden: a blocking wait, starting work. */
	p->wait_rc = pf_exec_wait(p->blocker, NULL);
	pf_exec *h = NULL;
	p->scope_exec_rc = pf_scope_exec(p->s, &noop_flow, NULL, NULL, &h);
	if (p->scope_exec_rc == 0)
		pf_exec_release(h);
	h = NULL;
	p->ctx_exec_rc = pf_ctx_exec(p->other, &noop_flow, NULL, NULL, &h);
	if (p->ctx_exec_rc == 0)
		pf_exec_release(h);
	atomic_store_explicit(&p->probed, 1, memory_order_release);
}

static void
probe_on_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	struct forbid *p = data;
	if (st == p->when)
		probe(p);
}

static void
probe_on_abort(pf_signal *sig, void *data)
{
	(void)sig;
	probe(data);
}

static void
forbid_setup(struct forbid *p)
{
	memset(p, 0, sizeof(*p));
	PF_ATOMIC_OBJ(&p->fired);
	PF_ATOMIC_OBJ(&p->probed);
	PF_ATOMIC_OBJ(&blocker_started);
	PF_ATOMIC_OBJ(&blocker_release);
	atomic_init(&p->fired, 0);
	atomic_init(&p->probed, 0);
	atomic_store(&blocker_started, 0);
	atomic_store(&blocker_release, 0);
	p->try_rc = p->poll_rc = p->done_try_rc = p->done_poll_rc = 1;
	p->wait_rc = p->scope_exec_rc = p->ctx_exec_rc = 1;
	/* The blocker holds one worker; the rest runs on the other. */
	p->s = new_scope(2);
	ck_assert_int_eq(pf_scope_create_execution(p->s, NULL, &p->other), 0);
	ck_assert_int_eq(pf_scope_exec(p->s, &answer_flow, NULL, NULL,
	    &p->done), 0);
	ck_assert_int_eq(wait_done(p->done, NULL, WAIT_MS, "answer"), 0);
	ck_assert_int_eq(pf_scope_exec(p->s, &blocker_flow, NULL, NULL,
	    &p->blocker), 0);
	ck_assert(await_at_least(&blocker_started, 1));
}

static void
forbid_check(struct forbid *p, const char *where)
{
	ck_assert_msg(await_at_least(&p->probed, 1), "%s: never ran", where);
	atomic_store_explicit(&blocker_release, 1, memory_order_release);
	ck_assert_int_eq(wait_done(p->blocker, NULL, WAIT_MS, "blocker"), 0);
	ck_assert_int_eq(pf_scope_dispose(p->s), 0);

	ck_assert_msg(p->try_rc == PF_EAGAIN && p->poll_rc == PF_EAGAIN,
	    "%s: polls of an unfinished execution: try %d, wait_for(0) %d",
	    where, p->try_rc, p->poll_rc);
	ck_assert_msg(p->done_try_rc == 0 && p->done_out == 42 &&
	    p->done_poll_rc == 0,
	    "%s: polls of a finished execution: try %d (out %d), "
	    "wait_for(0) %d", where, p->done_try_rc, p->done_out,
	    p->done_poll_rc);
	ck_assert_msg(p->wait_rc == PF_EINVAL &&
	    p->scope_exec_rc == PF_EINVAL && p->ctx_exec_rc == PF_EINVAL,
	    "%s: pf_exec_wait %d, pf_scope_exec %d, pf_ctx_exec %d, "
	    "want PF_EINVAL (%d) for each", where, p->wait_rc,
	    p->scope_exec_rc, p->ctx_exec_rc, PF_EINVAL);
	pf_exec_release(p->blocker);
	pf_exec_release(p->done);
	pf_ctx_release(p->other);
}

/* From the status callback for pending (on the test thread, inside
 * pf_scope_exec), running and completed (on the worker). */
START_TEST(status_callback_cannot_wait_or_start_work)
{
	static const pf_status when[] = { PF_PENDING, PF_RUNNING,
		PF_COMPLETED };
	struct forbid *p = malloc(sizeof(*p));
	ck_assert_ptr_nonnull(p);
	forbid_setup(p);
	p->when = when[_i];
	pf_exec_options o = { .on_status = probe_on_status,
		.on_status_data = p };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(p->s, &noop_flow, NULL, &o, &e), 0);
	ck_assert_int_eq(wait_done(e, NULL, WAIT_MS, "noop"), 0);
	char where[64];
	snprintf(where, sizeof(where), "status callback (%s)",
	    pf_status_name(when[_i]));
	forbid_check(p, where);
	pf_exec_release(e);
	free(p);
}
END_TEST

static int
self_abort(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct forbid *p = (struct forbid *)input;
	pf_signal *sig = pf_ctx_signal(ctx);
	if (pf_signal_add_listener(sig, &p->l, probe_on_abort, p) != 0)
		return E_NEVER;
	pf_ctx_abort(ctx);
	pf_signal_remove_listener(sig, &p->l);
	return 0;
}

static const pf_flow self_abort_flow = { "self_abort", self_abort, 0, 0 };

/* From a signal listener run by an abort on the test thread, on a worker
 * (a handler aborting its own context) and on the timer thread. */
START_TEST(signal_listener_cannot_wait_or_start_work)
{
	static const char *const how[] = { "aborted by the test thread",
		"aborted by a handler", "aborted by a timeout" };
	struct forbid *p = malloc(sizeof(*p));
	ck_assert_ptr_nonnull(p);
	forbid_setup(p);
	pf_ctx *victim = NULL;
	pf_exec *e = NULL;
	switch (_i) {
	case 0:
		ck_assert_int_eq(pf_scope_create_execution(p->s, NULL, &victim),
		    0);
		ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(victim),
		    &p->l, probe_on_abort, p), 0);
		ck_assert_int_eq(pf_ctx_abort(victim), 0);
		break;
	case 1:
		ck_assert_int_eq(pf_scope_exec(p->s, &self_abort_flow, p, NULL,
		    &e), 0);
		wait_done(e, NULL, WAIT_MS, "self_abort");
		break;
	default: {
		pf_ctx_options co = { .timeout_ms = 20 };
		ck_assert_int_eq(pf_scope_create_execution(p->s, &co, &victim),
		    0);
		ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(victim),
		    &p->l, probe_on_abort, p), 0);
		break;
	}
	}
	char where[64];
	snprintf(where, sizeof(where), "signal listener (%s)", how[_i]);
	ck_assert_msg(await_at_least(&p->probed, 1), "%s: never ran", where);
	if (victim != NULL) {
		pf_signal *sig = pf_ctx_signal(victim);
		ck_assert_int_eq(pf_signal_remove_listener(sig, &p->l), 0);
		pf_ctx_release(victim);
	}
	pf_exec_release(e);
	forbid_check(p, where);
	free(p);
}
END_TEST

/* ------------------------------------------------- record retention */

static int
nothing(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	return 0;
}

static const pf_flow nothing_flow = { "nothing", nothing, 0, 0 };

/*
 * PUMPED_RECORD_RETAIN_MS is read once per process, on the first chunk
 * that enters or leaves the depot; each test here runs in a process of its
 * own.  0: the chunks of a burst go back to the heap as they empty;
 * unset: the default (10 s) keeps them for the next burst.
 */
START_TEST(record_retain_ms_from_environment)
{
	const char *fork_mode = getenv("CK_FORK");
	if (fork_mode != NULL && strcmp(fork_mode, "no") == 0)
		return; /* an earlier test in this process read it */
	tune("PUMPED_RECORD_RETAIN_MS", _i == 0 ? "0" : NULL);
	pf_scope *s = new_scope(1);
	enum { N = 6000 }; /* 17 chunks of 176-byte records */
	static pf_exec *h[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pf_scope_exec(s, &nothing_flow, NULL, NULL,
		    &h[i]), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pf_exec_wait(h[i], NULL), 0);
		pf_exec_release(h[i]);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	size_t kept = pf__slab_depot_trim();
	if (_i == 0)
		ck_assert_uint_eq(kept, 0);
	else
		/* Most: the main thread keeps its current chunk and a spare,
		 * and chunks whose last records the workers freed wait on
		 * its remote list until it allocates again. */
		ck_assert_uint_ge(kept, 4);
	tune("PUMPED_RECORD_RETAIN_MS", NULL);
}
END_TEST

/* ----------------------------------------------------------------- suite */

static TCase *
knob_case(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, timeout);
	tcase_add_checked_fixture(tc, default_tuning, NULL);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *
knobs_suite(void)
{
	Suite *s = suite_create("knobs");
	TCase *tc = knob_case(s, "self_wait", 60);
	tcase_add_test(tc, handler_waiting_on_own_execution_einval);
	tcase_add_test(tc, inline_handler_waiting_on_own_execution_einval);

	tc = knob_case(s, "limits", 120);
	tcase_add_test(tc, nested_waits_without_spares_end);
	tcase_add_test(tc, nested_waits_small_stacks_end);
	tcase_add_test(tc, cross_scope_wait_cycle_ends);
	tcase_add_test(tc, nested_fn_steps_return_eagain);

	tc = knob_case(s, "parallelism", 60);
	tcase_add_loop_test(tc, thread_count_bounds_parallelism, 0, 6);

	tc = knob_case(s, "messages", 60);
	tcase_add_test(tc, parallel_failure_message_reaches_caller);
	tcase_add_test(tc, child_failure_message_reaches_parent);
	tcase_add_test(tc, fn_step_failure_message_reaches_parent);

	tc = knob_case(s, "journal", 60);
	tcase_add_test(tc, journal_key_of_other_flow_run_einval);
	tcase_add_test(tc, journal_key_of_other_flow_exec_einval);

	tc = knob_case(s, "stats", 60);
#ifdef PF_HAVE_CALL_MESSAGE
	tcase_add_test(tc, parallel_stats_count_cancelled);
#endif
	tcase_add_test(tc, parallel_empty_zeroes_stats);

	tc = knob_case(s, "record_retain", 60);
	tcase_add_loop_test(tc, record_retain_ms_from_environment, 0, 2);

	tc = knob_case(s, "callbacks", 60);
	tcase_add_loop_test(tc, status_callback_cannot_wait_or_start_work, 0,
	    3);
	tcase_add_loop_test(tc, signal_listener_cannot_wait_or_start_work, 0,
	    3);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(knobs_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
