/*
 * check_edges.c: regression tests for edge cases reported against the
 * public API, black box through <pumped.h> only.  One test per behaviour,
 * named after it:
 *
 *   - pf_scope_exec racing pf_scope_dispose (Semantics 13, "any thread may
 *     call it, concurrently with any other call");
 *   - aborting a pending execution never runs its handler, even while the
 *     abort is still running the signal listeners (Semantics 3);
 *   - pf_exec_off_status from a status callback: the removed subscriber is
 *     not called afterwards, also from a nested delivery (Semantics 2);
 *   - sizes near SIZE_MAX in flows and tags return PF_EINVAL (or
 *     PF_ENOMEM), never crash (Semantics 12);
 *   - pf_scope_dispose from a signal listener or a status callback returns
 *     PF_EINVAL, on the timer thread too (Semantics 12).
 *
 * Handlers, callbacks and listeners only record (atomics); the assertions
 * run on the test thread.  Waits are bounded (10 s, far above need) and no
 * assertion depends on timing: a sleep only widens a window that the
 * library must handle whatever its width.  Tests that hang on a broken
 * library are cut by their test case's timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/wait.h>

#include <pumped.h>

#include "slab.h"
#include "testlib.h"

/* Sanitizers report freed memory themselves, and map shadow memory for
 * what the program allocates (its resident size means little). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define EDGES_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define EDGES_UNDER_SANITIZER 1
#endif
#endif
#ifndef EDGES_UNDER_SANITIZER
#define EDGES_UNDER_SANITIZER 0
#endif

/*
 * The huge-size tests may make a correct library ask the allocator for
 * 2^63 bytes and return PF_ENOMEM (the arithmetic does not overflow, so
 * PF_EINVAL is not required there).  Sanitizer allocators report such a
 * request as an error by default; let them return NULL as malloc does.
 * The environment's ASAN_OPTIONS / TSAN_OPTIONS still apply on top.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGES_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define EDGES_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EDGES_ASAN)
#define EDGES_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(EDGES_TSAN)
#define EDGES_TSAN 1
#endif

#ifdef EDGES_ASAN
const char *__asan_default_options(void)
    __attribute__((visibility("default"), used));
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif
#ifdef EDGES_TSAN
const char *__tsan_default_options(void)
    __attribute__((visibility("default"), used));
const char *
__tsan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

/* ------------------------------------------------------------ helpers */

/* Bounds for waits that should end quickly: 10 s, far above need. */
#define BOUND_US 10000000L
#define STEP_US 100L

static void
pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* An atomic's value, in assertions (their messages quote the call). */
static int
ld(atomic_int *a)
{
	return atomic_load_explicit(a, memory_order_acquire);
}

static int64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits (at most bound_us) until *a >= want; true if it got there. */
static bool
await_at_least_for(atomic_int *a, int want, long bound_us)
{
	const int64_t deadline = mono_us() + bound_us;
	while (mono_us() < deadline) {
		if (atomic_load_explicit(a, memory_order_acquire) >= want)
			return true;
		pause_us(STEP_US);
	}
	return atomic_load_explicit(a, memory_order_acquire) >= want;
}

static bool
await_at_least(atomic_int *a, int want)
{
	return await_at_least_for(a, want, BOUND_US);
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
noop(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	return 0;
}

static const pf_flow noop_flow = { "noop", noop, 0, 0 };

/*
 * A blocker occupies the only worker of a one-thread scope until the test
 * says go (bounded), so that executions submitted meanwhile stay pending.
 * Input: its struct blocker (input_size 0: the pointer as is).
 */
struct blocker {
	atomic_int started;
	atomic_int go;
};

static int
blocker_run(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	struct blocker *b = (struct blocker *)input;
	atomic_store_explicit(&b->started, 1, memory_order_release);
	return await_at_least(&b->go, 1) ? 0 : PF_EUSER - 1;
}

static const pf_flow blocker_flow = { "blocker", blocker_run, 0, 0 };

/* Starts a blocker on s and waits until it runs. */
static pf_exec *
start_blocker(pf_scope *s, struct blocker *b)
{
	atomic_init(&b->started, 0);
	atomic_init(&b->go, 0);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &blocker_flow, b, NULL, &e), 0);
	ck_assert_msg(await_at_least(&b->started, 1), "blocker never ran");
	return e;
}

static void
finish_blocker(pf_exec *e, struct blocker *b)
{
	atomic_store_explicit(&b->go, 1, memory_order_release);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
}

/* ------------------------------- pf_scope_exec racing pf_scope_dispose */

/*
 * Outside threads loop pf_scope_exec + pf_exec_wait + pf_exec_release
 * while the test thread disposes the scope.  A call that overlaps dispose
 * must return 0 or PF_ESHUTDOWN, its execution must end completed or
 * cancelled, and the call must not touch the scope's memory once dispose
 * freed it; nothing may leak.  Many rounds, each with a new scope.
 *
 * Calling pf_scope_exec after pf_scope_dispose returned is the caller's
 * misuse, so the racers must never start a call then, while still racing
 * with every step of dispose.  The handshake: each racer holds its own
 * mutex from the moment it checks `stop` until its call is inside the
 * library (the pending callback, which runs on the creating thread before
 * pf_scope_exec returns) or has returned.  An extension's dispose callback
 * (run by dispose after every execution ended, before it returns; today
 * also before it tears the pool down) sets `stop` and takes each mutex
 * once: after that no racer starts a new call, but a call already inside
 * pf_scope_exec keeps racing with the rest of dispose.
 *
 * The window that matters is short (a submitter between creating its
 * execution and returning from pf_scope_exec), so the racers run at nice
 * 19: a worker or the disposer that becomes runnable preempts them
 * wherever they are and goes on without them.  (On a 2-CPU machine, with
 * an ASan build of the broken library, that took the test from reporting
 * almost never to reporting in most runs; SCHED_IDLE did as well, but
 * starves racers harder on a loaded machine.)  The test runs on two CPUs
 * at most, so that this holds on a machine with many.  Both are best
 * effort and change nothing a correct library may rely on.
 */
#ifndef RACERS
#define RACERS 8
#endif
#ifndef RACE_CPUS
#define RACE_CPUS 2
#endif
#ifndef RACE_NICE
#define RACE_NICE 19
#endif

struct race;

struct racer {
	pthread_t thread;
	pthread_mutex_t m;
	bool holding; /* the racer thread's own (and its pending callback's) */
	unsigned index;
	struct race *race;
};

struct race {
	/* Rounds: the test thread bumps `round` under `lock`. */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	long round;
	bool quit;
	pf_scope *scope;
	unsigned n; /* racers taking part in this round */
	atomic_int stop;
	atomic_int finished;   /* racers done with this round         */
	atomic_int execs_ok;
	atomic_int bad_exec;   /* pf_scope_exec neither 0 nor PF_ESHUTDOWN  */
	atomic_int bad_exec_rc;
	atomic_int bad_wait;   /* pf_exec_wait neither 0 nor PF_ECANCELED   */
	atomic_int bad_wait_rc;
	struct racer r[RACERS];
};

static void
racer_let_go(struct racer *r)
{
	if (r->holding) {
		r->holding = false;
		pthread_mutex_unlock(&r->m);
	}
}

static void
racer_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	/* Pending runs on the creating thread, inside pf_scope_exec: the
	 * call has entered the library.  Other statuses run elsewhere and
	 * must not touch the racer. */
	if (st == PF_PENDING)
		racer_let_go((struct racer *)data);
}

/* One round: until the scope refuses or the gate says stop. */
static void
racer_round(struct racer *r)
{
	struct race *race = r->race;
	for (;;) {
		pthread_mutex_lock(&r->m);
		r->holding = true;
		if (atomic_load_explicit(&race->stop, memory_order_acquire)) {
			racer_let_go(r);
			return;
		}
		pf_exec_options o = { 0 };
		o.on_status = racer_status;
		o.on_status_data = r;
		pf_exec *e = NULL;
		int rc = pf_scope_exec(race->scope, &noop_flow, NULL, &o, &e);
		racer_let_go(r);
		if (rc == PF_ESHUTDOWN)
			return;
		if (rc != 0) {
			atomic_store(&race->bad_exec_rc, rc);
			atomic_fetch_add(&race->bad_exec, 1);
			return;
		}
		atomic_fetch_add_explicit(&race->execs_ok, 1,
		    memory_order_release);
		int w = pf_exec_wait(e, NULL);
		if (w != 0 && w != PF_ECANCELED) {
			atomic_store(&race->bad_wait_rc, w);
			atomic_fetch_add(&race->bad_wait, 1);
		}
		pf_exec_release(e);
	}
}

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	struct race *race = r->race;
	/* Best effort: raising one's own nice value needs no privilege. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), RACE_NICE);
	long seen = 0;
	for (;;) {
		pthread_mutex_lock(&race->lock);
		while (race->round == seen && !race->quit)
			pthread_cond_wait(&race->cv, &race->lock);
		seen = race->round;
		bool quit = race->quit;
		bool active = r->index < race->n;
		pthread_mutex_unlock(&race->lock);
		if (quit)
			return NULL;
		if (active)
			racer_round(r);
		atomic_fetch_add_explicit(&race->finished, 1,
		    memory_order_release);
	}
}

static int
gate_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	(void)state;
	return pf_next_call(next);
}

static void
gate_dispose(pf_scope *s, void *state)
{
	(void)s;
	struct race *race = state;
	atomic_store_explicit(&race->stop, 1, memory_order_seq_cst);
	for (unsigned i = 0; i < RACERS; i++) {
		pthread_mutex_lock(&race->r[i].m);
		pthread_mutex_unlock(&race->r[i].m);
	}
}

/*
 * Keeps the calling thread, and the threads it creates from now on, on at
 * most RACE_CPUS of the CPUs it may use (best effort); *saved gets the
 * mask to restore.  True if it changed the mask.
 */
static bool
pin_to_few_cpus(cpu_set_t *saved)
{
	if (sched_getaffinity(0, sizeof(*saved), saved) != 0 ||
	    CPU_COUNT(saved) <= RACE_CPUS)
		return false;
	cpu_set_t few;
	CPU_ZERO(&few);
	int n = 0;
	for (int c = 0; c < CPU_SETSIZE && n < RACE_CPUS; c++) {
		if (CPU_ISSET(c, saved)) {
			CPU_SET(c, &few);
			n++;
		}
	}
	return sched_setaffinity(0, sizeof(few), &few) == 0;
}

START_TEST(scope_exec_racing_dispose_is_safe)
{
	const long rounds = pf_test_scale(3000);
	/* Bounded total time, whatever the machine and the sanitizer. */
	const int64_t budget_us = 4000000;
	/* The extension's state: outlives every call. */
	static struct race race;
	cpu_set_t saved;
	bool pinned = pin_to_few_cpus(&saved);
	memset(&race, 0, sizeof(race));
	pthread_mutex_init(&race.lock, NULL);
	pthread_cond_init(&race.cv, NULL);
	atomic_init(&race.stop, 0);
	atomic_init(&race.finished, 0);
	atomic_init(&race.execs_ok, 0);
	atomic_init(&race.bad_exec, 0);
	atomic_init(&race.bad_exec_rc, 0);
	atomic_init(&race.bad_wait, 0);
	atomic_init(&race.bad_wait_rc, 0);
	for (unsigned i = 0; i < RACERS; i++) {
		race.r[i].race = &race;
		race.r[i].index = i;
		pthread_mutex_init(&race.r[i].m, NULL);
		ck_assert_int_eq(pthread_create(&race.r[i].thread, NULL,
		    racer_main, &race.r[i]), 0);
	}
	pf_extension gate = { "gate", NULL, gate_wrap, gate_dispose, &race };
	const pf_extension *exts[] = { &gate };
	const int64_t t0 = mono_us();
	long done = 0;
	for (long round = 1; round <= rounds; round++) {
		if (round > 1 && mono_us() - t0 > budget_us)
			break;
		pf_scope_options so = { 2, exts, 1, NULL, 0 };
		pf_scope *s = NULL;
		ck_assert_int_eq(pf_scope_create(&s, &so), 0);
		atomic_store(&race.stop, 0);
		atomic_store(&race.finished, 0);
		atomic_store(&race.execs_ok, 0);
		pthread_mutex_lock(&race.lock);
		race.scope = s;
		race.n = RACERS / 2 + (unsigned)(round % (RACERS / 2 + 1));
		race.round = round;
		pthread_cond_broadcast(&race.cv);
		pthread_mutex_unlock(&race.lock);
		/* Let the racers get going, then dispose at a varying
		 * moment. */
		ck_assert(await_at_least(&race.execs_ok, 1));
		long jitter = (round * 37) % 300;
		if (jitter > 0)
			pause_us(jitter);
		ck_assert_int_eq(pf_scope_dispose(s), 0);
		ck_assert_msg(await_at_least(&race.finished, RACERS),
		    "round %ld: a racer never finished", round);
		ck_assert_msg(ld(&race.bad_exec) == 0,
		    "round %ld: pf_scope_exec returned %d", round,
		    ld(&race.bad_exec_rc));
		ck_assert_msg(ld(&race.bad_wait) == 0,
		    "round %ld: pf_exec_wait returned %d", round,
		    ld(&race.bad_wait_rc));
		done++;
	}
	pthread_mutex_lock(&race.lock);
	race.quit = true;
	pthread_cond_broadcast(&race.cv);
	pthread_mutex_unlock(&race.lock);
	for (unsigned i = 0; i < RACERS; i++) {
		ck_assert_int_eq(pthread_join(race.r[i].thread, NULL), 0);
		pthread_mutex_destroy(&race.r[i].m);
	}
	if (pinned)
		(void)sched_setaffinity(0, sizeof(saved), &saved);
	ck_assert_int_gt(done, 0);
}
END_TEST

/* ------------------------------- abort of a pending execution (Sem. 3) */

/*
 * "A pending execution that is aborted never runs its handler and becomes
 * cancelled at once."  The abort runs E's signal listeners first; one that
 * takes 100 ms leaves the worker time to pick E up meanwhile.  The worker
 * is busy until the listener starts, so E is pending when aborted and the
 * worker is free while the listener still runs.
 */
static atomic_int pend_handler_runs;
static atomic_int pend_listener_in;

static int
pend_counted(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_fetch_add(&pend_handler_runs, 1);
	return 0;
}

static const pf_flow pend_counted_flow = { "counted", pend_counted, 0, 0 };

/* Busy (about 30 ms at least) until E's listener started. */
static int
pend_busy(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	atomic_int *started = (atomic_int *)input;
	atomic_store(started, 1);
	pause_us(30000);
	return await_at_least(&pend_listener_in, 1) ? 0 : PF_EUSER - 1;
}

static const pf_flow pend_busy_flow = { "busy", pend_busy, 0, 0 };

static void
pend_slow_listener(pf_signal *sig, void *data)
{
	(void)sig;
	(void)data;
	atomic_store(&pend_listener_in, 1);
	pause_us(100000);
}

START_TEST(abort_pending_never_runs_handler)
{
	atomic_init(&pend_handler_runs, 0);
	atomic_init(&pend_listener_in, 0);
	pf_scope *s = new_scope(1);
	atomic_int busy_started;
	atomic_init(&busy_started, 0);
	pf_exec *b = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &pend_busy_flow, &busy_started, NULL,
	    &b), 0);
	ck_assert(await_at_least(&busy_started, 1));

	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &pend_counted_flow, NULL, NULL, &e),
	    0);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	pf_signal_listener l;
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(pf_exec_ctx(e)),
	    &l, pend_slow_listener, NULL), 0);
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(ld(&pend_listener_in), 1);

	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(b, NULL), 0);
	ck_assert_int_eq(ld(&pend_handler_runs), 0);
	pf_exec_release(e);
	pf_exec_release(b);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	/* Not even late. */
	ck_assert_int_eq(ld(&pend_handler_runs), 0);
}
END_TEST

/* ------------------------- pf_exec_off_status from a callback (Sem. 2) */

/*
 * S1 and S2 subscribe to E, in that order.  On the target transition S1
 * removes S2.  Once pf_exec_off_status returned 0, S2 must never be called
 * again: not for this transition, not for later ones.  (A program would
 * free S2's data right there.)
 */
struct off_probe {
	pf_status target;
	atomic_int removed;     /* S1 removed S2                      */
	atomic_int off_rc;
	atomic_int s1_calls;
	atomic_int s2_calls;
	atomic_int s2_after;    /* S2 calls after its removal         */
	atomic_int s2_after_st; /* the status of the last such call   */
};

static void off_s2(pf_exec *e, pf_status st, void *data);

static void
off_s1(pf_exec *e, pf_status st, void *data)
{
	struct off_probe *p = data;
	atomic_fetch_add(&p->s1_calls, 1);
	if (st == p->target && atomic_load(&p->removed) == 0) {
		atomic_store(&p->off_rc, pf_exec_off_status(e, off_s2, p));
		atomic_store(&p->removed, 1);
	}
}

static void
off_s2(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	struct off_probe *p = data;
	atomic_fetch_add(&p->s2_calls, 1);
	if (atomic_load(&p->removed) != 0) {
		atomic_store(&p->s2_after_st, (int)st);
		atomic_fetch_add(&p->s2_after, 1);
	}
}

/* _i == 0: S1 removes S2 on running; 1: on the terminal transition. */
START_TEST(off_status_from_callback_stops_later_subscriber)
{
	struct off_probe p;
	memset(&p, 0, sizeof(p));
	p.target = _i == 0 ? PF_RUNNING : PF_COMPLETED;
	atomic_init(&p.removed, 0);
	atomic_init(&p.off_rc, 1);
	atomic_init(&p.s1_calls, 0);
	atomic_init(&p.s2_calls, 0);
	atomic_init(&p.s2_after, 0);
	atomic_init(&p.s2_after_st, -1);

	pf_scope *s = new_scope(1);
	struct blocker bl;
	pf_exec *b = start_blocker(s, &bl);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	ck_assert_int_eq(pf_exec_on_status(e, off_s1, &p), 0);
	ck_assert_int_eq(pf_exec_on_status(e, off_s2, &p), 0);
	atomic_store(&bl.go, 1);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);

	ck_assert_int_eq(ld(&p.removed), 1);
	ck_assert_int_eq(ld(&p.off_rc), 0);
	ck_assert_msg(atomic_load(&p.s2_after) == 0,
	    "S2 called %d time(s) after pf_exec_off_status returned 0 "
	    "(last with %s)", atomic_load(&p.s2_after),
	    pf_status_name((pf_status)atomic_load(&p.s2_after_st)));
	/* S1 saw running and completed; S2 only what came before. */
	ck_assert_int_eq(ld(&p.s1_calls), 2);
	ck_assert_int_eq(ld(&p.s2_calls), _i == 0 ? 0 : 1);
	pf_exec_release(e);
	finish_blocker(b, &bl);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(ld(&p.s2_after), 0);
}
END_TEST

/*
 * Nested delivery.  S1, subscribed to e1, aborts the pending e2 when e1
 * completes; e2's cancelled transition is delivered on the same thread,
 * inside S1, to e2's subscriber S3, which removes S1 from e1.  S1 is in
 * flight on this very thread, below S3: waiting for it to return would
 * wait forever.  pf_exec_off_status must return 0 at once, and S1 must not
 * be called again.
 *
 * One worker: e1's handler runs on it, creates e2 and subscribes S3; e2
 * stays pending because the only worker is still busy finishing e1 when
 * S1 runs, and the test thread only waits on e1, which has started (so it
 * does not run anything itself).
 */
struct nest_probe {
	pf_scope *scope;
	pf_exec *e1;
	pf_exec *e2;            /* written by e1's handler            */
	atomic_int e1_started;
	atomic_int subscribed;  /* S1 is on e1 and e1 is published    */
	atomic_int e2_made;     /* e2 created, S3 on it (or failed)   */
	atomic_int e2_rc;
	atomic_int off_done;
	atomic_int off_rc;
	atomic_int s1_after;    /* S1 calls after its removal         */
};

static void
nest_s1(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	struct nest_probe *p = data;
	if (ld(&p->off_done) != 0)
		atomic_fetch_add(&p->s1_after, 1);
	/* e2_made (acquire) publishes p->e2. */
	if (st == PF_COMPLETED && ld(&p->e2_made) != 0 && p->e2 != NULL)
		pf_exec_abort(p->e2);
}

static void
nest_s3(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	struct nest_probe *p = data;
	if (st == PF_CANCELLED) {
		atomic_store(&p->off_rc,
		    pf_exec_off_status(p->e1, nest_s1, p));
		atomic_store(&p->off_done, 1);
	}
}

static int
nest_e1(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)output;
	struct nest_probe *p = (struct nest_probe *)input;
	atomic_store(&p->e1_started, 1);
	if (!await_at_least(&p->subscribed, 1))
		return PF_EUSER - 1;
	pf_exec *e2 = NULL;
	int rc = pf_scope_exec(p->scope, &noop_flow, NULL, NULL, &e2);
	if (rc == 0) {
		rc = pf_exec_on_status(e2, nest_s3, p);
		p->e2 = e2;
	}
	atomic_store(&p->e2_rc, rc);
	atomic_store(&p->e2_made, 1);
	return rc;
}

static const pf_flow nest_e1_flow = { "e1", nest_e1, 0, 0 };

START_TEST(off_status_in_nested_delivery_returns)
{
	static struct nest_probe p;
	memset(&p, 0, sizeof(p));
	atomic_init(&p.e1_started, 0);
	atomic_init(&p.subscribed, 0);
	atomic_init(&p.e2_made, 0);
	atomic_init(&p.e2_rc, 1);
	atomic_init(&p.off_done, 0);
	atomic_init(&p.off_rc, 1);
	atomic_init(&p.s1_after, 0);

	pf_scope *s = new_scope(1);
	p.scope = s;
	pf_exec *e1 = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &nest_e1_flow, &p, NULL, &e1), 0);
	ck_assert(await_at_least(&p.e1_started, 1));
	p.e1 = e1;
	ck_assert_int_eq(pf_exec_on_status(e1, nest_s1, &p), 0);
	atomic_store(&p.subscribed, 1);

	ck_assert_int_eq(pf_exec_wait(e1, NULL), 0);
	ck_assert_int_eq(ld(&p.e2_rc), 0);
	ck_assert_int_eq(ld(&p.off_done), 1);
	ck_assert_int_eq(ld(&p.off_rc), 0);
	ck_assert_int_eq(pf_exec_wait(p.e2, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(p.e2), PF_CANCELLED);
	ck_assert_int_eq(ld(&p.s1_after), 0);
	pf_exec_release(p.e2);
	pf_exec_release(e1);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------- sizes near SIZE_MAX (Sem. 12) */

static const size_t huge_sizes[] = { SIZE_MAX, SIZE_MAX - 8,
	SIZE_MAX / 2 + 1 };
#define N_HUGE (sizeof(huge_sizes) / sizeof(huge_sizes[0]))

static atomic_int huge_runs;

static int
huge_counted(pf_ctx *ctx, const void *input, void *output)
{
	(void)ctx;
	(void)input;
	(void)output;
	atomic_fetch_add(&huge_runs, 1);
	return 0;
}

static bool
refused(int rc)
{
	return rc == PF_EINVAL || rc == PF_ENOMEM;
}

#define ck_assert_refused(call, what, size)                                  \
	do {                                                                 \
		int rc_ = (call);                                            \
		ck_assert_msg(refused(rc_), "%s with size %zu returned %d",  \
		    (what), (size_t)(size), rc_);                            \
	} while (0)

/* Every way to start flow f (as a root, a child) must refuse it. */
static void
huge_flow_refused(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, size_t size)
{
	pf_exec *e = NULL;
	ck_assert_refused(pf_scope_exec(s, f, input, NULL, &e),
	    "pf_scope_exec", size);
	ck_assert_ptr_null(e);
	ck_assert_refused(pf_scope_exec(s, f, input, NULL, NULL),
	    "pf_scope_exec (fire and forget)", size);
	ck_assert_refused(pf_scope_run(s, f, input, NULL, NULL),
	    "pf_scope_run", size);
	ck_assert_refused(pf_ctx_exec(parent, f, input, NULL, &e),
	    "pf_ctx_exec", size);
	ck_assert_ptr_null(e);
	ck_assert_refused(pf_ctx_run(parent, f, input, NULL, NULL),
	    "pf_ctx_run", size);
}

/* A flow whose input_size is near SIZE_MAX (with a real, small input
 * buffer: the library must not read past it). */
START_TEST(huge_flow_input_size_refused)
{
	atomic_init(&huge_runs, 0);
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	unsigned char input[64] = { 1, 2, 3 };
	for (size_t i = 0; i < N_HUGE; i++) {
		pf_flow f = { "huge_in", huge_counted, huge_sizes[i], 0 };
		huge_flow_refused(s, c, &f, input, huge_sizes[i]);
		pf_flow g = { "huge_in_out", huge_counted, huge_sizes[i],
			sizeof(int) };
		huge_flow_refused(s, c, &g, input, huge_sizes[i]);
	}
	/* Still usable. */
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(ld(&huge_runs), 0);
}
END_TEST

/* A flow whose output_size is near SIZE_MAX, with and without input. */
START_TEST(huge_flow_output_size_refused)
{
	atomic_init(&huge_runs, 0);
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	unsigned char input[64] = { 1, 2, 3 };
	for (size_t i = 0; i < N_HUGE; i++) {
		pf_flow f = { "huge_out", huge_counted, 0, huge_sizes[i] };
		huge_flow_refused(s, c, &f, NULL, huge_sizes[i]);
		pf_flow g = { "in_huge_out", huge_counted, sizeof(input),
			huge_sizes[i] };
		huge_flow_refused(s, c, &g, input, huge_sizes[i]);
	}
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(ld(&huge_runs), 0);
}
END_TEST

/* pf_ctx_set with a tag whose size is near SIZE_MAX. */
START_TEST(huge_tag_set_refused)
{
	pf_scope *s = new_scope(1);
	pf_ctx *c = new_standalone(s);
	unsigned char value[64] = { 7 };
	for (size_t i = 0; i < N_HUGE; i++) {
		pf_tag t = { "huge", huge_sizes[i], NULL };
		ck_assert_refused(pf_ctx_set(c, &t, value), "pf_ctx_set",
		    huge_sizes[i]);
		/* Nothing was stored. */
		ck_assert(!pf_ctx_find(c, &t, NULL));
	}
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_exec_options.tags seeding a tag whose size is near SIZE_MAX. */
START_TEST(huge_tag_in_exec_options_refused)
{
	atomic_init(&huge_runs, 0);
	pf_scope *s = new_scope(2);
	pf_ctx *c = new_standalone(s);
	unsigned char value[64] = { 7 };
	const pf_flow f = { "counted", huge_counted, 0, 0 };
	for (size_t i = 0; i < N_HUGE; i++) {
		pf_tag t = { "huge", huge_sizes[i], NULL };
		pf_tag_value tv = { &t, value };
		pf_exec_options o = { 0 };
		o.tags = &tv;
		o.n_tags = 1;
		pf_exec *e = NULL;
		ck_assert_refused(pf_scope_exec(s, &f, NULL, &o, &e),
		    "pf_scope_exec", huge_sizes[i]);
		ck_assert_ptr_null(e);
		ck_assert_refused(pf_scope_run(s, &f, NULL, NULL, &o),
		    "pf_scope_run", huge_sizes[i]);
		ck_assert_refused(pf_ctx_exec(c, &f, NULL, &o, &e),
		    "pf_ctx_exec", huge_sizes[i]);
		ck_assert_ptr_null(e);
		ck_assert_refused(pf_ctx_run(c, &f, NULL, NULL, &o),
		    "pf_ctx_run", huge_sizes[i]);
	}
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(ld(&huge_runs), 0);
}
END_TEST

/* pf_ctx_options.tags (standalone contexts) with a huge tag. */
START_TEST(huge_tag_in_ctx_options_refused)
{
	pf_scope *s = new_scope(1);
	unsigned char value[64] = { 7 };
	for (size_t i = 0; i < N_HUGE; i++) {
		pf_tag t = { "huge", huge_sizes[i], NULL };
		pf_tag_value tv = { &t, value };
		pf_ctx_options o = { 0 };
		o.name = "huge";
		o.tags = &tv;
		o.n_tags = 1;
		pf_ctx *c = NULL;
		ck_assert_refused(pf_scope_create_execution(s, &o, &c),
		    "pf_scope_create_execution", huge_sizes[i]);
		ck_assert_ptr_null(c);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Scope tags (pf_scope_options.tags) with a huge tag. */
START_TEST(huge_tag_in_scope_options_refused)
{
	unsigned char value[64] = { 7 };
	for (size_t i = 0; i < N_HUGE; i++) {
		pf_tag t = { "huge", huge_sizes[i], NULL };
		pf_tag_value tv = { &t, value };
		pf_scope_options o = { 1, NULL, 0, &tv, 1 };
		pf_scope *s = NULL;
		ck_assert_refused(pf_scope_create(&s, &o), "pf_scope_create",
		    huge_sizes[i]);
		ck_assert_ptr_null(s);
	}
}
END_TEST

/* ------------------- dispose from listeners and callbacks (Sem. 12) */

/*
 * "pf_scope_dispose called ... from a status callback or signal listener
 * on any thread, the timer's included, returns PF_EINVAL."  The scope is
 * left as it was and disposes normally afterwards.
 */
static pf_scope *disp_scope;
static atomic_int disp_calls; /* dispose attempts made from inside      */
static atomic_int disp_rc;    /* the (last) code they returned          */

static void
disp_reset(pf_scope *s)
{
	disp_scope = s;
	atomic_init(&disp_calls, 0);
	atomic_init(&disp_rc, 1);
}

static void
disp_try(void)
{
	atomic_store(&disp_rc, pf_scope_dispose(disp_scope));
	atomic_fetch_add(&disp_calls, 1);
}

static void
disp_listener(pf_signal *sig, void *data)
{
	(void)sig;
	(void)data;
	disp_try();
}

/* A standalone context's timeout fires on the timer thread, which runs
 * its signal listeners. */
START_TEST(dispose_from_timer_signal_listener_einval)
{
	pf_scope *s = new_scope(2);
	disp_reset(s);
	pf_ctx_options o = { 0 };
	o.name = "timed";
	o.timeout_ms = 20;
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	static pf_signal_listener l; /* valid until c is released */
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(c), &l,
	    disp_listener, NULL), 0);
	ck_assert_msg(await_at_least(&disp_calls, 1),
	    "the timeout's listener never returned");
	ck_assert_int_eq(ld(&disp_rc), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), PF_ETIMEDOUT);
	/* The scope still works, then disposes normally. */
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(ld(&disp_calls), 1);
}
END_TEST

/* A listener run by pf_ctx_abort on the test thread (not a worker). */
START_TEST(dispose_from_signal_listener_on_aborting_thread_einval)
{
	pf_scope *s = new_scope(2);
	disp_reset(s);
	pf_ctx *c = new_standalone(s);
	pf_signal_listener l;
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(c), &l,
	    disp_listener, NULL), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	ck_assert_int_eq(ld(&disp_calls), 1);
	ck_assert_int_eq(ld(&disp_rc), PF_EINVAL);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static void
disp_on_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	if (st == *(const pf_status *)data)
		disp_try();
}

/* The pending callback runs on the creating (test) thread, inside
 * pf_scope_exec. */
START_TEST(dispose_from_pending_status_callback_einval)
{
	pf_scope *s = new_scope(2);
	disp_reset(s);
	static const pf_status when = PF_PENDING;
	pf_exec_options o = { 0 };
	o.on_status = disp_on_status;
	o.on_status_data = (void *)&when;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, &o, &e), 0);
	ck_assert_int_eq(ld(&disp_calls), 1);
	ck_assert_int_eq(ld(&disp_rc), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* An execution that times out while pending is cancelled on the timer
 * thread, which runs its cancelled callback. */
START_TEST(dispose_from_timer_status_callback_einval)
{
	pf_scope *s = new_scope(1);
	disp_reset(s);
	struct blocker bl;
	pf_exec *b = start_blocker(s, &bl);
	static const pf_status when = PF_CANCELLED;
	pf_exec_options o = { 0 };
	o.timeout_ms = 20;
	o.on_status = disp_on_status;
	o.on_status_data = (void *)&when;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, &o, &e), 0);
	/* Not waited on: the wait would run it.  3 s: far above the 20 ms
	 * timeout, below the test case's timeout. */
	ck_assert_msg(await_at_least_for(&disp_calls, 1, 3000000),
	    "the cancelled callback on the timer thread never returned");
	ck_assert_int_eq(ld(&disp_rc), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	pf_exec_release(e);
	finish_blocker(b, &bl);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(ld(&disp_calls), 1);
}
END_TEST

/* -------------------------------------------------------------- suite */

/*
 * Standalone contexts with timeouts, ended, aborted and released by other
 * threads while the scope is disposed (Semantics 13: handles stay valid
 * after dispose).  Their timer cancels must never reach a stopped wheel
 * (ASan: use-after-free in the timer; LSan: a leaked record).
 */
#define SA_THREADS 4

struct sa_arg {
	pf_ctx *c;
	int op;
	atomic_int *go;
	atomic_int *in_listener;
	pf_signal_listener l;
};

/* Makes an abort slow: dispose then runs while the aborting thread has
 * yet to cancel the context's timer. */
static void
sa_listener(pf_signal *sig, void *data)
{
	(void)sig;
	struct sa_arg *a = data;
	atomic_fetch_add_explicit(a->in_listener, 1, memory_order_release);
	struct timespec ts = { 0, 20 * 1000000L };
	nanosleep(&ts, NULL);
}

static void *
sa_main(void *arg)
{
	struct sa_arg *a = arg;
	while (atomic_load_explicit(a->go, memory_order_acquire) == 0)
		sched_yield();
	if (a->op == 0)
		(void)pf_ctx_end(a->c);
	else if (a->op == 1)
		(void)pf_ctx_abort(a->c);
	pf_ctx_release(a->c);
	return NULL;
}

START_TEST(standalone_timeouts_racing_dispose_are_safe)
{
	int rounds = (int)pf_test_scale(100);
	for (int round = 0; round < rounds; round++) {
		pf_scope *s = new_scope(1);
		atomic_int go, in_listener;
		atomic_init(&go, 0);
		atomic_init(&in_listener, 0);
		pthread_t t[SA_THREADS];
		struct sa_arg a[SA_THREADS];
		int aborters = 0;
		for (int i = 0; i < SA_THREADS; i++) {
			pf_ctx_options o = { 0 };
			o.timeout_ms = 10000;
			ck_assert_int_eq(pf_scope_create_execution(s, &o, &a[i].c),
			    0);
			a[i].op = (i + round) % 3;
			a[i].go = &go;
			a[i].in_listener = &in_listener;
			if (a[i].op == 1) {
				aborters++;
				ck_assert_int_eq(pf_signal_add_listener(
				    pf_ctx_signal(a[i].c), &a[i].l, sa_listener,
				    &a[i]), 0);
			}
			ck_assert_int_eq(pthread_create(&t[i], NULL, sa_main,
					     &a[i]), 0);
		}
		atomic_store_explicit(&go, 1, memory_order_release);
		/* Dispose while the aborts are inside their listeners. */
		for (int w = 0; w < 2000 &&
		     atomic_load_explicit(&in_listener, memory_order_acquire) <
			 aborters; w++) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
		ck_assert_int_eq(pf_scope_dispose(s), 0);
		for (int i = 0; i < SA_THREADS; i++)
			pthread_join(t[i], NULL);
	}
}
END_TEST

/*
 * pf_exec_off_status from a status callback, for a subscriber whose call is
 * running on another thread: waiting for it could wait forever (two such
 * removals, each waiting for the other's callback, deadlocked both
 * workers).  It returns PF_EAGAIN at once instead; the subscriber is not
 * called again.
 */
struct cross {
	pf_exec *x;
	atomic_int x_running, released, off_rc, sx_calls;
};

static struct cross g_cross;

static void
cross_sx(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)data;
	atomic_fetch_add(&g_cross.sx_calls, 1);
	if (st != PF_RUNNING)
		return;
	atomic_store(&g_cross.x_running, 1);
	/* Bounded: a library that waits for us hangs only 5 s. */
	for (int i = 0; i < 50000 && atomic_load(&g_cross.released) == 0; i++) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
}

static void
cross_sy(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)data;
	if (st != PF_RUNNING)
		return;
	for (int i = 0; i < 50000 && atomic_load(&g_cross.x_running) == 0; i++) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&g_cross.off_rc,
	    pf_exec_off_status(g_cross.x, cross_sx, NULL));
	atomic_store(&g_cross.released, 1);
}

START_TEST(off_status_from_callback_does_not_wait_for_other_thread)
{
	memset(&g_cross, 0, sizeof(g_cross));
	atomic_store(&g_cross.off_rc, 1);
	pf_scope *s = new_scope(2);
	/* Both workers busy while X and Y are made and subscribed to; once
	 * freed, each takes one of them (the other is stuck in cross_sx). */
	struct blocker b1, b2;
	pf_exec *e1 = start_blocker(s, &b1), *e2 = start_blocker(s, &b2);
	pf_exec *y = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, NULL, &g_cross.x),
	    0);
	ck_assert_int_eq(pf_exec_on_status(g_cross.x, cross_sx, NULL), 0);
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, NULL, &y), 0);
	ck_assert_int_eq(pf_exec_on_status(y, cross_sy, NULL), 0);
	finish_blocker(e1, &b1);
	finish_blocker(e2, &b2);
	/* With a timeout an outside wait never runs them itself. */
	(void)pf_exec_wait_for(g_cross.x, NULL, 20000);
	(void)pf_exec_wait_for(y, NULL, 20000);
	if (atomic_load(&g_cross.x_running) != 0) {
		/* Both ran on the two workers at once: the case at hand. */
		ck_assert_int_eq(atomic_load(&g_cross.off_rc), PF_EAGAIN);
		/* Not called again after the removal (running was its last). */
		ck_assert_int_eq(atomic_load(&g_cross.sx_calls), 1);
	}
	pf_exec_release(g_cross.x);
	pf_exec_release(y);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* A large output is not zeroed by a memset at submission (a 1 GiB output
 * grew the caller's memory by 1 GiB before anything ran). */
static int
big_out_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	((unsigned char *)out)[0] = 1;
	return 0;
}

START_TEST(large_output_costs_nothing_until_written)
{
	const pf_flow big = { "big-out", big_out_handler, 0, (size_t)1 << 30 };
	pf_scope *s = new_scope(1);
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	pf_exec *e = NULL;
	int rc = pf_scope_exec(s, &big, NULL, NULL, &e);
	ck_assert(rc == 0 || rc == PF_ENOMEM);
	if (rc == 0) {
		ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
		getrusage(RUSAGE_SELF, &r1);
		/* ru_maxrss is in KiB: far below the 1 GiB buffer. */
		if (!EDGES_UNDER_SANITIZER)
			ck_assert_int_lt(r1.ru_maxrss - r0.ru_maxrss,
			    256 * 1024);
		pf_exec_release(e);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_next_call from a thread other than the wrap's is refused: it would
 * run the operation outside the scope's threads. */
struct foreign_next {
	pf_next *next;
	int rc;
};

static void *
foreign_next_main(void *arg)
{
	struct foreign_next *f = arg;
	f->rc = pf_next_call(f->next);
	return NULL;
}

static atomic_int g_foreign_rc;

static int
foreign_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *st)
{
	(void)s;
	(void)op;
	(void)st;
	struct foreign_next f = { next, 1 };
	pthread_t t;
	if (pthread_create(&t, NULL, foreign_next_main, &f) == 0)
		pthread_join(t, NULL);
	atomic_store(&g_foreign_rc, f.rc);
	return pf_next_call(next);
}

START_TEST(next_call_from_another_thread_einval)
{
	atomic_store(&g_foreign_rc, 1);
	static const pf_extension ext = { "foreign", NULL, foreign_wrap, NULL,
		NULL };
	const pf_extension *exts[] = { &ext };
	pf_scope_options o = { 1, exts, 1, NULL, 0 };
	pf_scope *s = NULL;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	ck_assert_int_eq(pf_scope_run(s, &noop_flow, NULL, NULL, NULL), 0);
	ck_assert_int_eq(atomic_load(&g_foreign_rc), PF_EINVAL);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST


#if defined(PF_DEBUG) && !EDGES_UNDER_SANITIZER
/* Semantics 12: "debug builds catch a double release".  A finished
 * execution held by one handle only: the first release frees it, the
 * second must abort with a message rather than corrupt the heap. */
START_TEST(double_release_aborts_in_debug)
{
	pf_scope *s = new_scope(1);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &noop_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	pf_exec_release(e);
	pf_exec_release(e); /* aborts here */
}
END_TEST
#endif

/* pf_strerror(PF_EAGAIN) names both meanings: a wait or step with no
 * thread left, and pf_scope_create's failed thread creation, are not "not
 * finished yet". */
START_TEST(strerror_eagain_names_no_thread_available)
{
	const char *t = pf_strerror(PF_EAGAIN);
	ck_assert_ptr_nonnull(strstr(t, "not finished yet"));
	ck_assert_ptr_nonnull(strstr(t, "no thread"));
}
END_TEST

/*
 * A parallel group whose call nothing can run (one thread, no spare, the
 * worker's stack budget spent: PUMPED_STACK_KB=64, PUMPED_MAX_SPARE=0)
 * returns only after the call ended (Semantics 8: aborted and waited
 * for), never while it is pending: the calls refer to the group's frame
 * (ASan: stack-use-after-return when it ran later).
 */
static atomic_int g_par_unfinished, g_par_returned;
static int par_chain(pf_ctx *c, const void *in, void *out);
static const pf_flow par_chain_flow = { "par-chain", par_chain, sizeof(int),
	sizeof(int) };

static int
par_chain(pf_ctx *c, const void *in, void *out)
{
	volatile char buf[2048];
	buf[0] = 1;
	int n = *(const int *)in;
	if (n == 0) {
		*(int *)out = buf[0];
		return 0;
	}
	int m = n - 1, ro = 0;
	pf_call call = { &par_chain_flow, &m, &ro, NULL, 0, PF_PENDING, NULL };
	int rc = pf_ctx_parallel(c, &call, 1, NULL);
	atomic_fetch_add(&g_par_returned, 1);
	if (call.status == PF_PENDING || call.status == PF_RUNNING)
		atomic_fetch_add(&g_par_unfinished, 1);
	if (rc != 0)
		return rc;
	*(int *)out = ro + buf[0];
	return 0;
}

START_TEST(parallel_returns_only_after_its_calls_ended)
{
	setenv("PUMPED_STACK_KB", "64", 1);
	setenv("PUMPED_MAX_SPARE", "0", 1);
	atomic_store(&g_par_unfinished, 0);
	atomic_store(&g_par_returned, 0);
	pf_scope *s = new_scope(1);
	unsetenv("PUMPED_STACK_KB");
	unsetenv("PUMPED_MAX_SPARE");
	int n = 200, out = 0;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &par_chain_flow, &n, NULL, &e), 0);
	/* With a timeout an outside wait never runs it itself. */
	int rc = pf_exec_wait_for(e, &out, 30000);
	ck_assert_msg(rc == 0 || rc == PF_EAGAIN, "chain returned %d", rc);
	ck_assert_int_gt(atomic_load(&g_par_returned), 0);
	ck_assert_int_eq(atomic_load(&g_par_unfinished), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/*
 * No spurious PF_EAGAIN (PUMPED_MAX_SPARE=0): scope A's only worker waits
 * 300 ms on healthy scope B, an outside thread runs a 100 ms leaf of A in
 * A's free slot, and another outside thread waits on A's work.  Nothing
 * is starved for good: pf_scope_run and pf_exec_wait_for(5 s) must
 * succeed (they returned PF_EAGAIN at once).
 */
static pf_scope *g_ea, *g_eb;
static atomic_int g_ex_started;

static int
ea_leaf(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	*(int *)out = 7;
	return 0;
}
static const pf_flow ea_leaf_flow = { "leaf", ea_leaf, 0, sizeof(int) };

static int
ea_slow(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)out;
	struct timespec ts = { 0, *(const long *)in };
	nanosleep(&ts, NULL);
	return 0;
}
static const pf_flow ea_slow_flow = { "slow", ea_slow, sizeof(long), 0 };

static int
ea_x(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	atomic_store(&g_ex_started, 1);
	long ns = 300 * 1000000L;
	return pf_scope_run(g_eb, &ea_slow_flow, &ns, NULL, NULL);
}
static const pf_flow ea_x_flow = { "x", ea_x, 0, 0 };

static void *
ea_t1(void *arg)
{
	(void)arg;
	long ns = 100 * 1000000L;
	(void)pf_scope_run(g_ea, &ea_slow_flow, &ns, NULL, NULL);
	return NULL;
}

START_TEST(starved_for_a_while_is_not_eagain)
{
	setenv("PUMPED_MAX_SPARE", "0", 1);
	g_ea = new_scope(1);
	g_eb = new_scope(1);
	unsetenv("PUMPED_MAX_SPARE");
	atomic_store(&g_ex_started, 0);
	pf_exec *x = NULL;
	ck_assert_int_eq(pf_scope_exec(g_ea, &ea_x_flow, NULL, NULL, &x), 0);
	for (int i = 0; i < 10000 && atomic_load(&g_ex_started) == 0; i++) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, ea_t1, NULL), 0);
	struct timespec ts = { 0, 20 * 1000000L };
	nanosleep(&ts, NULL);
	int out = 0;
	ck_assert_int_eq(pf_scope_run(g_ea, &ea_leaf_flow, NULL, &out, NULL),
	    0);
	ck_assert_int_eq(out, 7);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(g_ea, &ea_leaf_flow, NULL, NULL, &e), 0);
	out = 0;
	ck_assert_int_eq(pf_exec_wait_for(e, &out, 5000), 0);
	ck_assert_int_eq(out, 7);
	pf_exec_release(e);
	pthread_join(t, NULL);
	ck_assert_int_eq(pf_exec_wait(x, NULL), 0);
	pf_exec_release(x);
	ck_assert_int_eq(pf_scope_dispose(g_ea), 0);
	ck_assert_int_eq(pf_scope_dispose(g_eb), 0);
}
END_TEST

/* ------------------------------------------- finished records let go */

/* Open file descriptors of this process. */
static int
open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

static int
fd_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	(void)out;
	int fd = pf_signal_fd(pf_ctx_signal(c));
	return fd >= 0 ? 0 : fd;
}

static const pf_flow fd_flow = { "fd", fd_handler, 0, 0 };

/*
 * One execution at a time, each asking for its signal fd: the fd is the
 * context's and closes with it, so at most a handful stay open.  Found by a
 * black-box tester: an outside thread's *_run left a queue entry behind
 * when it ran the execution itself, and the entry kept the finished record
 * (and its eventfd) until a worker popped it, hundreds of fds later
 * (PF_EAGAIN from pf_signal_fd under `ulimit -n 1024`).
 */
START_TEST(run_one_at_a_time_keeps_few_fds_open)
{
	pf_scope *s = new_scope(1);
	pf_ctx *sa = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &sa), 0);
	int base = open_fds();
	int most = base;
	for (int i = 0; i < 4000; i++) {
		int rc = _i == 0 ?
		    pf_scope_run(s, &fd_flow, NULL, NULL, NULL) :
		    pf_ctx_run(sa, &fd_flow, NULL, NULL, NULL);
		ck_assert_int_eq(rc, 0);
		if (i % 50 == 0) {
			int n = open_fds();
			if (n > most)
				most = n;
		}
	}
	/* None is left behind now (before the fix: 12 and 50 more in the
	 * debug build, hundreds in a release build). */
	ck_assert_int_le(most - base, 8);
	pf_ctx_release(sa);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Racers of run_at_once_racing_dispose_is_safe. */
struct run_racer {
	pthread_t thread;
	pf_scope *scope;
	pf_ctx *standalone;
	bool child;  /* pf_ctx_run on the standalone context, else pf_scope_run */
	int bad_rc;  /* a code no *_run may return here, or 0 */
	long runs;
};

static int
run_racer_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	return 0;
}

static const pf_flow run_racer_flow = { "run", run_racer_handler, 0, 0 };

static void *
run_racer_main(void *arg)
{
	struct run_racer *r = arg;
	for (;;) {
		int rc = r->child ?
		    pf_ctx_run(r->standalone, &run_racer_flow, NULL, NULL, NULL) :
		    pf_scope_run(r->scope, &run_racer_flow, NULL, NULL, NULL);
		if (rc == PF_ESHUTDOWN)
			break;
		/* Dispose cancels what it finds pending or running. */
		if (rc != 0 && rc != PF_ECANCELED) {
			r->bad_rc = rc;
			break;
		}
		r->runs++;
	}
	return NULL;
}

/*
 * pf_scope_run and pf_ctx_run on threads that are not workers run their
 * execution at once in a run slot of the scope: dispose, racing them, must
 * neither tear the pool down under a slot still held nor leave one of them
 * waiting (ASan and TSan builds check the first).
 */
START_TEST(run_at_once_racing_dispose_is_safe)
{
	const long rounds = pf_test_scale(200);
	for (long round = 0; round < rounds; round++) {
		pf_scope *s = new_scope(1 + (unsigned)(round % 2));
		pf_ctx *sa = NULL;
		ck_assert_int_eq(pf_scope_create_execution(s, NULL, &sa), 0);
		struct run_racer r[4];
		for (int i = 0; i < 4; i++) {
			r[i] = (struct run_racer){ .scope = s, .standalone = sa,
				.child = i % 2 == 1 };
			ck_assert_int_eq(pthread_create(&r[i].thread, NULL,
			    run_racer_main, &r[i]), 0);
		}
		pause_us((round * 37) % 500);
		ck_assert_int_eq(pf_scope_dispose(s), 0);
		for (int i = 0; i < 4; i++) {
			pthread_join(r[i].thread, NULL);
			ck_assert_msg(r[i].bad_rc == 0, "round %ld: %s returned %d",
			    round, r[i].child ? "pf_ctx_run" : "pf_scope_run",
			    r[i].bad_rc);
		}
		/* The racers' calls kept s alive through sa. */
		pf_ctx_release(sa);
	}
}
END_TEST

/* An outside thread that makes records, keeps none of them and exits. */
struct maker {
	pthread_t thread;
	pf_scope *scope;
	pf_exec *h[800]; /* more records than one slab chunk holds */
	int bad_rc;
};

static void *
maker_main(void *arg)
{
	struct maker *m = arg;
	for (int i = 0; i < 800 && m->bad_rc == 0; i++)
		m->bad_rc = pf_scope_exec(m->scope, &run_racer_flow, NULL, NULL,
		    &m->h[i]);
	return NULL;
}

/*
 * A thread that is not a worker gets its own record slab on its first
 * record; when it exits the slab is destroyed, and once the last of its
 * records is released (here by another thread, after the exit) its chunks
 * go to the depot.  ASan's leak check sees a slab left behind.
 */
START_TEST(exited_threads_slabs_are_freed)
{
	pf__slab_depot_set_retain_ms(3600000);
	size_t before = pf__slab_depot_trim();
	pf_scope *s = new_scope(2);
	struct maker m[4];
	for (int i = 0; i < 4; i++) {
		m[i] = (struct maker){ .scope = s };
		ck_assert_int_eq(pthread_create(&m[i].thread, NULL, maker_main,
		    &m[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(m[i].thread, NULL);
		ck_assert_int_eq(m[i].bad_rc, 0);
	}
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 800; j++) {
			ck_assert_int_eq(pf_exec_wait(m[i].h[j], NULL), 0);
			pf_exec_release(m[i].h[j]);
		}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	/* Two chunks per thread at least (800 records of 176 bytes), and
	 * the workers' slabs. */
	ck_assert_uint_ge(pf__slab_depot_trim(), before + 8);
	pf__slab_depot_set_retain_ms(0);
	ck_assert_uint_eq(pf__slab_depot_trim(), 0);
}
END_TEST

/*
 * An execution whose only cold option is a timeout keeps its timer after
 * its data: every layout of input (none, a pointer, bytes) and output
 * (none, small, a zeroed large one) with a timeout that does not fire
 * (the handler fills its whole output, so an overlap with the timer would
 * corrupt one or the other) and one that does (the handler waits for the
 * abort).
 */
struct layout {
	size_t in, out;
	bool ptr; /* input_size 0 with a pointer */
};

static const struct layout layouts[] = {
	{ 0, 0, false }, { 0, 0, true }, { 0, 8, true }, { 20, 8, false },
	{ 20, 0, false }, { 3, 13, false }, { 0, 100, false },
	{ 8, 64 * 1024, false }, /* the allocator's zeroed pages */
};

static int
fill_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	const size_t *sz = in; /* the first word of every input here */
	if (out != NULL)
		memset(out, 0xa5, sz != NULL ? sz[0] : 0);
	return 0;
}

static int
wait_abort_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	(void)out;
	while (!pf_signal_aborted(pf_ctx_signal(c)))
		sleep_ms(1);
	return pf_signal_reason(pf_ctx_signal(c));
}

START_TEST(timeout_only_layouts_keep_data_and_timer_apart)
{
	const struct layout *l = &layouts[_i];
	pf_scope *s = new_scope(2);
	size_t in[8] = { l->out }; /* the handler reads the output size */
	size_t insize = l->in == 0 ? 0 : l->in < sizeof(size_t) ?
	    sizeof(size_t) : l->in;
	pf_flow fill = { "fill", fill_handler, insize, l->out };
	const void *input = insize > 0 || l->ptr ? in : NULL;
	pf_exec_options o = { .timeout_ms = 10000 };
	for (int round = 0; round < 50; round++) {
		pf_exec *e = NULL;
		ck_assert_int_eq(pf_scope_exec(s, &fill, input, &o, &e), 0);
		unsigned char *got = l->out > 0 ? malloc(l->out) : NULL;
		ck_assert_int_eq(pf_exec_wait(e, got), 0);
		for (size_t i = 0; i < l->out && input != NULL; i++)
			ck_assert_uint_eq(got[i], 0xa5);
		free(got);
		ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
		pf_exec_release(e);
	}
	pf_flow waits = { "waits", wait_abort_handler, insize, l->out };
	o.timeout_ms = 20;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &waits, input, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Threads that keep chunks moving through the depot (retention 0: every
 * empty chunk goes back to the heap, every new one asks the depot). */
struct churner {
	pthread_t thread;
	pf_scope *scope;
	atomic_bool *stop;
};

static void *
churner_main(void *arg)
{
	struct churner *c = arg;
	/* A large thread-local: the static TLS of every thread, workers'
	 * included, now takes ~5 KiB of each stack mapping.  The worker's
	 * helping limit used to ignore it and overflowed the 64 KiB stacks
	 * of parallel_returns_only_after_its_calls_ended under ASan. */
	static _Thread_local pf_exec *h[600];
	while (!atomic_load(c->stop)) {
		for (int i = 0; i < 600; i++)
			if (pf_scope_exec(c->scope, &run_racer_flow, NULL, NULL,
				&h[i]) != 0)
				h[i] = NULL;
		for (int i = 0; i < 600; i++)
			if (h[i] != NULL) {
				(void)pf_exec_wait(h[i], NULL);
				pf_exec_release(h[i]);
			}
	}
	return NULL;
}

/* Holds the depot's lock for a while, as a depot call in progress. */
static void *
holder_main(void *arg)
{
	atomic_int *held = arg;
	pf__slab_depot_hold(true);
	atomic_store(held, 1);
	sleep_ms(100);
	pf__slab_depot_hold(false);
	return NULL;
}

/*
 * fork() while other threads take and give chunks: the child must not
 * inherit the depot's lock held by a thread it does not have (slab.c's
 * atfork handlers).  Round 0 forks while another thread surely holds the
 * lock (without the handlers that child hangs); the others fork at random
 * moments of two threads' churn.  Each child makes a scope and bursts of
 * records, so it takes chunks from the depot; a child stuck on the lock is
 * killed after 20 s and fails the test.  Not under the sanitizers: TSan
 * ends a child that starts threads after a multi-threaded fork
 * (die_after_fork); under ASan a child hung once in CI with the depot's
 * handlers in place (not reproduced in 4 local runs; the suspect is the
 * ASan runtime's own locks, which a child of a multi-threaded parent may
 * inherit held).
 */
START_TEST(fork_while_depot_busy_child_runs)
{
#if defined(EDGES_TSAN) || defined(EDGES_ASAN)
	return;
#endif
	/* qemu-user cannot fork a guest with threads running (the child
	 * exits 127 from qemu itself): .ci/run's ARM64 step sets this. */
	if (getenv("PF_TEST_UNDER_QEMU") != NULL)
		return;
	pf__slab_depot_set_retain_ms(0);
	pf_scope *s = new_scope(2);
	atomic_bool stop = false;
	struct churner c[2];
	for (int i = 0; i < 2; i++) {
		c[i] = (struct churner){ .scope = s, .stop = &stop };
		ck_assert_int_eq(pthread_create(&c[i].thread, NULL,
		    churner_main, &c[i]), 0);
	}
	for (int round = 0; round < 20; round++) {
		pthread_t holder;
		atomic_int held = 0;
		if (round == 0) {
			ck_assert_int_eq(pthread_create(&holder, NULL,
			    holder_main, &held), 0);
			while (!atomic_load(&held))
				sched_yield();
		} else {
			pause_us(500 + round * 97 % 700);
		}
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			pf_scope *cs = NULL;
			pf_scope_options o = { .threads = 1 };
			if (pf_scope_create(&cs, &o) != 0)
				_exit(2);
			/* Held, so that new chunks come from the depot. */
			static pf_exec *ch[3000];
			for (int i = 0; i < 3000; i++)
				if (pf_scope_exec(cs, &run_racer_flow, NULL, NULL,
					&ch[i]) != 0)
					_exit(3);
			for (int i = 0; i < 3000; i++) {
				(void)pf_exec_wait(ch[i], NULL);
				pf_exec_release(ch[i]);
			}
			_exit(pf_scope_dispose(cs) == 0 ? 0 : 4);
		}
		if (round == 0)
			pthread_join(holder, NULL);
		int status = 0;
		pid_t got = 0;
		for (int waited = 0; waited < 20000 && got == 0; waited += 10) {
			got = waitpid(pid, &status, WNOHANG);
			if (got == 0)
				sleep_ms(10);
		}
		if (got == 0) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			ck_abort_msg("round %d: the child hung", round);
		}
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "round %d: the child ended with status %d", round, status);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(c[i].thread, NULL);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	pf__slab_depot_set_retain_ms(10000);
}
END_TEST

/*
 * A worker that takes work while it waits (a helping wait) hands the
 * search on, as an idle worker does: two executions submitted back to back
 * from outside wake one worker (only the push that makes the queue
 * non-empty notifies).  When that worker is w0, idle inside a wait, and
 * it takes the first, the second must not stay queued behind it while w1
 * sleeps: here the first waits for the second, so a lost hand-off shows as
 * the first giving up after 5 s (it was found by libpumped-mpi, whose
 * communication thread submits requests back to back).
 */
static pf_exec *helped_gate;       /* settled at the end of each round */
static atomic_bool second_ran;

static int
helper_waits_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	return pf_exec_wait(helped_gate, NULL);
}
static const pf_flow helper_waits = { "helper-waits", helper_waits_handler,
	0, 0 };

static int
first_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	for (int i = 0; i < 5000 && !atomic_load(&second_ran); i++)
		sleep_ms(1);
	return atomic_load(&second_ran) ? 0 : PF_EUSER;
}
static const pf_flow first_flow = { "first", first_handler, 0, 0 };

static int
second_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	atomic_store(&second_ran, true);
	return 0;
}
static const pf_flow second_flow = { "second", second_handler, 0, 0 };

START_TEST(helping_waiter_hands_the_search_on)
{
	pf_scope *s;
	pf_scope_options so = { .threads = 2 };
	ck_assert_int_eq(pf_scope_create(&s, &so), 0);
	for (int round = 0; round < 10; round++) {
		atomic_store(&second_ran, false);
		ck_assert_int_eq(pf_scope_exec_deferred(s, &noop_flow,
				     NULL, &helped_gate),
		    0);
		pf_exec *w, *a, *b;
		/* w0 (the first idle worker an outside submission wakes)
		 * runs it and parks inside its wait; w1 parks idle. */
		ck_assert_int_eq(pf_scope_exec(s, &helper_waits, NULL, NULL,
				     &w),
		    0);
		sleep_ms(50);
		ck_assert_int_eq(pf_scope_exec(s, &first_flow, NULL, NULL,
				     &a),
		    0);
		ck_assert_int_eq(pf_scope_exec(s, &second_flow, NULL, NULL,
				     &b),
		    0);
		/* Waits with a deadline: this thread runs neither itself. */
		ck_assert_msg(pf_exec_wait_for(a, NULL, 20000) == 0,
		    "round %d: the second waited behind the first", round);
		ck_assert_int_eq(pf_exec_wait_for(b, NULL, 20000), 0);
		ck_assert_int_eq(pf_exec_settle(helped_gate, PF_COMPLETED, 0,
				     NULL, NULL),
		    0);
		ck_assert_int_eq(pf_exec_wait(w, NULL), 0);
		pf_exec_release(a);
		pf_exec_release(b);
		pf_exec_release(w);
		pf_exec_release(helped_gate);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static Suite *
edges_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "dispose_race", .test = scope_exec_racing_dispose_is_safe, .timeout = 60 },
		{ .tcase = "dispose_race", .test = standalone_timeouts_racing_dispose_are_safe, .timeout = 60 },
		{ .tcase = "abort_pending", .test = abort_pending_never_runs_handler, .timeout = 30 },
		/* These hang on a broken library: a short timeout fails them. */
		{ .tcase = "off_status", .test = off_status_from_callback_stops_later_subscriber, .timeout = 5, .loop = 2 },
		{ .tcase = "off_status", .test = off_status_in_nested_delivery_returns, .timeout = 5 },
		{ .tcase = "off_status", .test = off_status_from_callback_does_not_wait_for_other_thread, .timeout = 5 },
		{ .tcase = "huge_sizes", .test = huge_flow_input_size_refused, .timeout = 60 },
		{ .tcase = "huge_sizes", .test = strerror_eagain_names_no_thread_available, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = parallel_returns_only_after_its_calls_ended, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = starved_for_a_while_is_not_eagain, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = large_output_costs_nothing_until_written, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = next_call_from_another_thread_einval, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = huge_flow_output_size_refused, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = huge_tag_set_refused, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = huge_tag_in_exec_options_refused, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = huge_tag_in_ctx_options_refused, .timeout = 10 },
		{ .tcase = "huge_sizes", .test = huge_tag_in_scope_options_refused, .timeout = 10 },
		{ .tcase = "run_at_once", .test = run_at_once_racing_dispose_is_safe, .timeout = 120 },
		{ .tcase = "fds", .test = run_one_at_a_time_keeps_few_fds_open, .timeout = 60, .loop = 2 },
		{ .tcase = "slabs", .test = exited_threads_slabs_are_freed, .timeout = 30 },
		{ .tcase = "slabs", .test = fork_while_depot_busy_child_runs, .timeout = 120 },
		{ .tcase = "slabs", .test = timeout_only_layouts_keep_data_and_timer_apart, .timeout = 30, .loop = 8 },
		{ .tcase = "dispose_inside", .test = dispose_from_timer_signal_listener_einval, .timeout = 5 },
		{ .tcase = "dispose_inside", .test = dispose_from_signal_listener_on_aborting_thread_einval, .timeout = 5 },
		{ .tcase = "dispose_inside", .test = dispose_from_pending_status_callback_einval, .timeout = 5 },
		{ .tcase = "dispose_inside", .test = dispose_from_timer_status_callback_einval, .timeout = 5 },
		{ .tcase = "hand_off", .test = helping_waiter_hands_the_search_on, .timeout = 60 },
	};
	return pf_test_suite("edges", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	SRunner *sr = srunner_create(edges_suite());
#if defined(PF_DEBUG) && !EDGES_UNDER_SANITIZER
	/* Aborting is the expected outcome: only in a forked test (and not
	 * under a sanitizer, which reports the freed memory itself). */
	if (srunner_fork_status(sr) != CK_NOFORK) {
		Suite *d = suite_create("debug");
		TCase *tc = tcase_create("double_release");
		tcase_add_test_raise_signal(tc, double_release_aborts_in_debug,
		    SIGABRT);
		suite_add_tcase(d, tc);
		srunner_add_suite(sr, d);
	}
#endif
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
