/*
 * check_stress_api.c: the public API under concurrent load.
 *
 * pf_test_scale(100000) executions per run, as random trees: four outside
 * threads submit roots and wait for most of them (at once, in batches, or
 * never); handlers create 0-3 children each (waited, fire-and-forget, or
 * handed to the aborter), some handlers fail with their own code, some
 * executions have a 1-5 ms timeout, and an aborter thread calls
 * pf_exec_abort on held handles at random moments.
 *
 * Every execution owns a slot, found by its input; what happens to it is
 * decided by a hash of the slot number, so the checker can recompute the
 * plan.  Its on_status callback counts each transition and checks their
 * order; the handler counts its runs; whoever waits records the result.
 * All of that runs on workers, outside threads, the aborter or the timer
 * thread and only writes atomics; the test thread asserts after joining
 * its threads and disposing the scope (which joins the workers).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annotate.h"
#include "pumped.h"
#include "testlib.h"

/* PF_FLOW defines typed static inline wrappers; clang warns about the
 * ones a test does not call. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-function"
#endif

#define MAX_DEPTH 3
#define OUTSIDE_THREADS 4
#define RING_SIZE 256

/* ----------------------------------------------------------- the plan */

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finaliser. */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Roughly 1 in 12 executions fails with its own code. */
static int
planned_code(int id)
{
	uint64_t h = mix((uint64_t)id);
	return h % 12 == 0 ? PF_EUSER - 1 - (int)((h >> 8) % 100) : 0;
}

/* Roughly 1 in 16 executions has a 1-5 ms timeout. */
static uint64_t
planned_timeout(int id)
{
	uint64_t h = mix((uint64_t)id);
	return (h >> 12) % 16 == 0 ? 1 + (h >> 16) % 5 : 0;
}

/* How a child is used by its parent, or a root by its submitter. */
enum use { USE_WAIT, USE_BATCH, USE_ABORTER, USE_FORGET, USE_ABORT_NOW };

static enum use
planned_use(int id)
{
	unsigned r = (unsigned)((mix((uint64_t)id) >> 24) % 100);
	if (r < 50)
		return USE_WAIT;
	if (r < 72)
		return USE_BATCH;
	if (r < 87)
		return USE_ABORTER;
	if (r < 95)
		return USE_FORGET;
	return USE_ABORT_NOW;
}

/* ---------------------------------------------------------------- slots */

typedef struct slot {
	_Atomic int created; /* 1 once its exec call returned 0 */
	_Atomic int refused; /* the code of a refused exec call, or 0 */
	_Atomic int n[5];    /* transitions delivered, per status */
	_Atomic int seq;     /* transitions delivered so far */
	_Atomic int order_bad;
	_Atomic int ran;          /* handler starts */
	_Atomic int cb_error;     /* pf_ctx_error() in the terminal cb */
	_Atomic int cb_status;    /* pf_exec_status() in the terminal cb */
	_Atomic int waited;       /* 1 when someone waited for it */
	_Atomic int wait_rc;
	_Atomic int wait_out;
	_Atomic int wait_status;  /* pf_exec_status() right after the wait */
} slot;

typedef struct run {
	pf_scope *scope;
	slot *slots;
	long n;
	_Atomic long next;       /* next slot to hand out */
	_Atomic long live;       /* exec calls made (or being made) and not
	                            refused */
	_Atomic long terminals;  /* terminal callbacks that returned */
	_Atomic int stop;
	/* Handles waiting for the aborter, each a reference of its own. */
	pthread_mutex_t ring_mu;
	pf_exec *ring[RING_SIZE];
	int ring_n;
} run;

static run R; /* one run at a time; each test forks */

typedef struct stress_in {
	int id;
	int depth;
} stress_in;

static long
take_slot(void)
{
	long id = atomic_fetch_add_explicit(&R.next, 1, memory_order_relaxed);
	return id < R.n ? id : -1;
}

static void
on_status(pf_exec *e, pf_status st, void *data)
{
	slot *s = data;
	/* Acq_rel: a transition's callback follows the previous one's, on
	 * another thread maybe; the status CAS orders them already, this
	 * keeps the counter itself exact. */
	int prev = atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
	bool ok = pf_test_transition_ok(prev, st);
	if (!ok)
		atomic_fetch_add_explicit(&s->order_bad, 1,
		    memory_order_relaxed);
	if ((unsigned)st < 5)
		atomic_fetch_add_explicit(&s->n[st], 1, memory_order_relaxed);
	if (st >= PF_COMPLETED) {
		atomic_store_explicit(&s->cb_error,
		    pf_ctx_error(pf_exec_ctx(e), NULL), memory_order_relaxed);
		atomic_store_explicit(&s->cb_status, (int)pf_exec_status(e),
		    memory_order_relaxed);
		/* Release: the slot's writes above happen before the
		 * test thread's acquire load of terminals. */
		atomic_fetch_add_explicit(&R.terminals, 1,
		    memory_order_release);
	}
}

static void
record_wait(long id, pf_exec *e)
{
	slot *s = &R.slots[id];
	int out = -1;
	int rc = pf_exec_wait(e, &out);
	atomic_store_explicit(&s->wait_rc, rc, memory_order_relaxed);
	atomic_store_explicit(&s->wait_out, out, memory_order_relaxed);
	atomic_store_explicit(&s->wait_status, (int)pf_exec_status(e),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&s->waited, 1, memory_order_relaxed);
}

/* Hands a new reference on e to the aborter (drops it when full). */
static void
ring_push(pf_exec *e)
{
	pf_exec_retain(e);
	pthread_mutex_lock(&R.ring_mu);
	if (R.ring_n < RING_SIZE) {
		R.ring[R.ring_n++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&R.ring_mu);
	pf_exec_release(e);
}

static void
tiny_pause(uint64_t h)
{
	struct timespec ts = { 0, (long)(h % 200) * 1000 };
	nanosleep(&ts, NULL);
}

static int stress_handler(pf_ctx *c, const stress_in *in, int *out);
PF_FLOW(stress_flow, stress_in, int, stress_handler)

/*
 * Starts execution id under parent (NULL: a root on R.scope).  Returns the
 * handle (a reference) or NULL when the call was refused or the use is
 * fire-and-forget.
 */
static pf_exec *
start(pf_ctx *parent, long id, int depth)
{
	slot *s = &R.slots[id];
	stress_in in = { (int)id, depth };
	pf_exec_options o = { .timeout_ms = planned_timeout((int)id),
		.on_status = on_status, .on_status_data = s };
	bool forget = planned_use((int)id) == USE_FORGET;
	pf_exec *e = NULL;
	/* Counted before the call so that the test thread never sees all
	 * terminals in while a call is still being made. */
	atomic_fetch_add_explicit(&R.live, 1, memory_order_relaxed);
	int rc = parent != NULL ?
	    pf_ctx_exec(parent, &stress_flow, &in, &o, forget ? NULL : &e) :
	    pf_scope_exec(R.scope, &stress_flow, &in, &o, forget ? NULL : &e);
	if (rc != 0) {
		atomic_store_explicit(&s->refused, rc, memory_order_relaxed);
		atomic_fetch_sub_explicit(&R.live, 1, memory_order_relaxed);
		return NULL;
	}
	atomic_store_explicit(&s->created, 1, memory_order_relaxed);
	switch (planned_use((int)id)) {
	case USE_ABORTER:
		ring_push(e);
		break;
	case USE_ABORT_NOW:
		pf_exec_abort(e);
		break;
	default:
		break;
	}
	return e;
}

static int
stress_handler(pf_ctx *c, const stress_in *in, int *out)
{
	slot *s = &R.slots[in->id];
	atomic_fetch_add_explicit(&s->ran, 1, memory_order_relaxed);
	uint64_t h = mix((uint64_t)in->id ^ 0x5bd1e995u);
	if (in->depth < MAX_DEPTH) {
		int kids = (int)(h % 4);
		pf_exec *held[3];
		long ids[3];
		int n = 0;
		for (int k = 0; k < kids; k++) {
			long id = take_slot();
			if (id < 0)
				break;
			pf_exec *e = start(c, id, in->depth + 1);
			if (e == NULL)
				continue;
			if (planned_use((int)id) == USE_WAIT) {
				record_wait(id, e);
				pf_exec_release(e);
			} else {
				held[n] = e;
				ids[n++] = id;
			}
		}
		for (int k = 0; k < n; k++) {
			/* Batched and aborter children are waited late; the
			 * rest of the aborter's are left to run on. */
			if (planned_use((int)ids[k]) != USE_ABORTER ||
			    (h >> 40) % 2 == 0)
				record_wait(ids[k], held[k]);
			pf_exec_release(held[k]);
		}
	}
	/* Some handlers take a while, cooperatively: room for timeouts and
	 * aborts to land on running handlers. */
	if ((h >> 8) % 32 == 0) {
		for (int i = 0; i < 10 && !pf_ctx_aborted(c); i++)
			tiny_pause(h >> 16);
	}
	/* Some notice an abort and give up; the others finish anyway. */
	if ((h >> 20) % 3 == 0) {
		int rc = pf_ctx_throw_if_aborted(c);
		if (rc != 0)
			return rc;
	}
	int code = planned_code(in->id);
	if (code != 0)
		return code;
	*out = in->id * 2;
	return 0;
}

static void *
submitter(void *arg)
{
	(void)arg;
	pf_exec *batch[8];
	long ids[8];
	int n = 0;
	for (;;) {
		long id = take_slot();
		if (id < 0)
			break;
		pf_exec *e = start(NULL, id, 0);
		if (e == NULL)
			continue;
		if (planned_use((int)id) == USE_WAIT) {
			record_wait(id, e);
			pf_exec_release(e);
			continue;
		}
		batch[n] = e;
		ids[n++] = id;
		if (n == 8) {
			for (int k = 0; k < n; k++) {
				record_wait(ids[k], batch[k]);
				pf_exec_release(batch[k]);
			}
			n = 0;
		}
	}
	for (int k = 0; k < n; k++) {
		record_wait(ids[k], batch[k]);
		pf_exec_release(batch[k]);
	}
	return NULL;
}

static void *
aborter(void *arg)
{
	(void)arg;
	uint64_t x = 88172645463325252ull;
	while (!atomic_load_explicit(&R.stop, memory_order_acquire)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pf_exec *e = NULL;
		pthread_mutex_lock(&R.ring_mu);
		if (R.ring_n > 0) {
			int i = (int)(x % (uint64_t)R.ring_n);
			e = R.ring[i];
			R.ring[i] = R.ring[--R.ring_n];
		}
		pthread_mutex_unlock(&R.ring_mu);
		if (e == NULL) {
			tiny_pause(50);
			continue;
		}
		/* A random moment: now, or after a short pause. */
		if ((x >> 32) % 2)
			tiny_pause(x >> 33);
		pf_exec_abort(e);
		pf_exec_release(e);
	}
	return NULL;
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
is_abort_code(int rc)
{
	return rc == PF_ECANCELED || rc == PF_ETIMEDOUT;
}

/* Checks one slot; returns a description of the first problem or NULL. */
static const char *
check_slot(long id)
{
	slot *s = &R.slots[id];
	int created = atomic_load(&s->created);
	int refused = atomic_load(&s->refused);
	if (!created)
		return is_abort_code(refused) ? NULL : "neither created nor "
		    "refused with an abort code";
	if (refused != 0)
		return "created and refused";
	if (atomic_load(&s->order_bad) != 0)
		return "transitions out of order";
	if (atomic_load(&s->n[PF_PENDING]) != 1)
		return "pending not seen exactly once";
	int running = atomic_load(&s->n[PF_RUNNING]);
	if (running > 1)
		return "running seen twice";
	int terms = atomic_load(&s->n[PF_COMPLETED]) +
	    atomic_load(&s->n[PF_FAILED]) + atomic_load(&s->n[PF_CANCELLED]);
	if (terms != 1)
		return "not exactly one terminal status";
	if (atomic_load(&s->seq) != 2 + running)
		return "extra transitions";
	pf_status t = atomic_load(&s->n[PF_COMPLETED]) ? PF_COMPLETED :
	    atomic_load(&s->n[PF_FAILED])               ? PF_FAILED :
							  PF_CANCELLED;
	if (atomic_load(&s->cb_status) != (int)t)
		return "pf_exec_status in the terminal callback differs";
	int ran = atomic_load(&s->ran);
	if (ran != running)
		return running ? "running delivered but the handler did not "
				 "run" :
				 "handler ran without a running transition "
				 "(cancelled while pending yet ran)";
	int err = atomic_load(&s->cb_error);
	int code = planned_code((int)id);
	switch (t) {
	case PF_COMPLETED:
		if (err != 0)
			return "completed with an error";
		break;
	case PF_FAILED:
		if (code == 0 || err != code)
			return "failed with another code than the handler's";
		break;
	default:
		if (!is_abort_code(err))
			return "cancelled with a code other than "
			       "ECANCELED/ETIMEDOUT";
		break;
	}
	if (atomic_load(&s->waited) > 1)
		return "waited twice";
	if (atomic_load(&s->waited) == 1) {
		int rc = atomic_load(&s->wait_rc);
		if (rc != err)
			return "wait returned another code than the error";
		if (t == PF_COMPLETED && atomic_load(&s->wait_out) != id * 2)
			return "completed with a wrong output";
		if (atomic_load(&s->wait_status) != (int)t)
			return "status after wait is not the terminal one";
	}
	return NULL;
}

static void
stress_run(unsigned threads)
{
	memset(&R, 0, sizeof(R));
	PF_ATOMIC_OBJ(&R.stop); /* a C11 atomic: see src/annotate.h */
	pthread_mutex_init(&R.ring_mu, NULL);
	R.n = pf_test_scale(100000);
	R.slots = calloc((size_t)R.n, sizeof(slot));
	ck_assert_ptr_nonnull(R.slots);
	pf_scope_options so = { .threads = threads };
	ck_assert_int_eq(pf_scope_create(&R.scope, &so), 0);

	int64_t t0 = now_ms();
	pthread_t sub[OUTSIDE_THREADS], ab;
	ck_assert_int_eq(pthread_create(&ab, NULL, aborter, NULL), 0);
	for (int i = 0; i < OUTSIDE_THREADS; i++)
		ck_assert_int_eq(pthread_create(&sub[i], NULL, submitter,
				     NULL), 0);
	for (int i = 0; i < OUTSIDE_THREADS; i++)
		pthread_join(sub[i], NULL);
	/* Fire-and-forget executions may still run: wait until every exec
	 * call made has delivered its terminal status.  live only counts
	 * calls made from running handlers or the (joined) submitters, so
	 * once both counts agree nobody can start more. */
	int64_t deadline = now_ms() + 60000;
	while (atomic_load_explicit(&R.terminals, memory_order_acquire) !=
		atomic_load_explicit(&R.live, memory_order_relaxed) &&
	    now_ms() < deadline) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	long live = atomic_load(&R.live), terms = atomic_load(&R.terminals);
	atomic_store_explicit(&R.stop, 1, memory_order_release);
	pthread_join(ab, NULL);
	for (int i = 0; i < R.ring_n; i++)
		pf_exec_release(R.ring[i]);
	R.ring_n = 0;
	ck_assert_int_eq(pf_scope_dispose(R.scope), 0);
	int64_t took = now_ms() - t0;
	ck_assert_int_eq(terms, live);

	long bad = 0, created = 0, cancelled = 0, failed = 0, pending_cancel = 0,
	     timed_out = 0;
	for (long id = 0; id < R.n; id++) {
		const char *why = check_slot(id);
		if (why != NULL && bad++ < 10)
			fprintf(stderr, "stress(%u threads): slot %ld: %s\n",
			    threads, id, why);
		created += atomic_load(&R.slots[id].created);
		cancelled += atomic_load(&R.slots[id].n[PF_CANCELLED]);
		failed += atomic_load(&R.slots[id].n[PF_FAILED]);
		pending_cancel += atomic_load(&R.slots[id].n[PF_CANCELLED]) &&
		    !atomic_load(&R.slots[id].n[PF_RUNNING]);
		timed_out += atomic_load(&R.slots[id].n[PF_CANCELLED]) &&
		    atomic_load(&R.slots[id].cb_error) == PF_ETIMEDOUT;
	}
	fprintf(stderr,
	    "stress(%u threads): %ld slots, %ld executions, %ld failed, "
	    "%ld cancelled (%ld while pending, %ld timed out), %lld ms\n",
	    threads, R.n, created, failed, cancelled, pending_cancel,
	    timed_out, (long long)took);
	ck_assert_int_eq(live, created);
	ck_assert_int_eq(bad, 0);
	/* Every kind of ending happened. */
	ck_assert_int_gt(created, R.n / 2);
	ck_assert_int_gt(failed, 0);
	ck_assert_int_gt(cancelled, 0);
	free(R.slots);
	pthread_mutex_destroy(&R.ring_mu);
}

START_TEST(stress_random_trees_2_threads)
{
	stress_run(2);
}
END_TEST

START_TEST(stress_random_trees_4_threads)
{
	stress_run(4);
}
END_TEST

static Suite *
stress_api_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "random_trees", .test = stress_random_trees_2_threads, .timeout = 300, .tags = "stress" },
		{ .tcase = "random_trees", .test = stress_random_trees_4_threads, .timeout = 300, .tags = "stress" },
	};
	return pf_test_suite("stress_api", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(stress_api_suite());
}
