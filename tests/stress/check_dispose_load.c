/*
 * check_dispose_load.c: pf_scope_dispose from an outside thread while a
 * full pool runs handlers that never finish on their own and a long queue
 * of executions waits behind them.
 *
 * The test thread submits LOAD executions (10^5 under PF_STRESS_FULL=1,
 * pf_test_scale(30000) otherwise) of five kinds: loopers (spin until
 * pf_ctx_aborted), waiters (start a looper child and pf_exec_wait for it),
 * fd blockers (poll the signal fd with no timeout), spawners (keep starting
 * fire-and-forget children until refused) and quick ones; some under
 * standalone contexts.  It keeps a handle on one in three, forgets the
 * rest, then lets a disposer thread call pf_scope_dispose.
 *
 * After dispose returns: no handler is still running, every handler that
 * started saw the abort or finished, every execution delivered exactly one
 * terminal status (pending ones `cancelled` with PF_ECANCELED, without
 * running), the extension's dispose ran once after the last handler, and
 * every held handle answers at once (pf_exec_wait_for(e, 0) is not
 * PF_EAGAIN), waits and releases.  ASan and LSan builds check that nothing
 * is used after free and nothing leaks.  Repeated with 1, 2 and 4 workers.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pumped.h"
#include "../testlib.h"

#define LOAD_FULL 100000L
#define LOAD_CHECK 30000L
#define REPEATS 3
#define N_CTX 4

enum kind { K_LOOP, K_WAIT, K_FD, K_SPAWN, K_QUICK, K_CHILD };

typedef struct slot {
	_Atomic int n[5];
	_Atomic int seq;
	_Atomic int order_bad;
	_Atomic int ran;
	_Atomic int err;
} slot;

typedef struct load {
	pf_scope *scope;
	slot *slots;
	long n;
	_Atomic long next_child; /* children take slots from the end */
	_Atomic long in_handler; /* handlers running now */
	_Atomic long started;    /* handlers started */
	_Atomic long observed;   /* blocking handlers that saw the abort */
	_Atomic long blocking;   /* blocking handlers started */
	_Atomic long terminals;
	_Atomic long refused_shutdown;
	_Atomic long refused_abort;
	_Atomic long refused_other;
	_Atomic long wait_bad;
	_Atomic long ext_disposed;
	_Atomic long handlers_at_ext_dispose;
	_Atomic int go;
} load;

static load L;

typedef struct load_in {
	long id;
	int kind;
} load_in;

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool
is_abort_code(int rc)
{
	return rc == PF_ECANCELED || rc == PF_ETIMEDOUT;
}

static void
on_status(pf_exec *e, pf_status st, void *data)
{
	slot *s = data;
	int prev = atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
	bool ok = st == PF_PENDING ? prev == 0 :
	    st == PF_RUNNING	   ? prev == 1 :
	    st == PF_CANCELLED	   ? prev == 1 || prev == 2 :
				     prev == 2;
	if (!ok)
		atomic_fetch_add_explicit(&s->order_bad, 1,
		    memory_order_relaxed);
	if ((unsigned)st < 5)
		atomic_fetch_add_explicit(&s->n[st], 1, memory_order_relaxed);
	if (st >= PF_COMPLETED) {
		atomic_store_explicit(&s->err,
		    pf_ctx_error(pf_exec_ctx(e), NULL), memory_order_relaxed);
		/* Release: pairs with the test thread's acquire load. */
		atomic_fetch_add_explicit(&L.terminals, 1,
		    memory_order_release);
	}
}

static int load_handler(pf_ctx *c, const void *in, void *out);
static const pf_flow load_flow = { "load", load_handler, sizeof(load_in),
	sizeof(long) };

static void
count_refusal(int rc)
{
	if (rc == PF_ESHUTDOWN)
		atomic_fetch_add(&L.refused_shutdown, 1);
	else if (is_abort_code(rc))
		atomic_fetch_add(&L.refused_abort, 1);
	else
		atomic_fetch_add(&L.refused_other, 1);
}

/* A child slot from the end of the table, or -1. */
static long
child_slot(void)
{
	long id = atomic_fetch_sub_explicit(&L.next_child, 1,
	    memory_order_relaxed);
	return id >= L.n / 2 ? id : -1;
}

static pf_exec_options
opts_for(long id)
{
	pf_exec_options o = { .on_status = on_status,
		.on_status_data = &L.slots[id] };
	return o;
}

static int
load_handler(pf_ctx *c, const void *vin, void *out)
{
	const load_in *in = vin;
	atomic_fetch_add(&L.in_handler, 1);
	atomic_fetch_add(&L.started, 1);
	atomic_fetch_add_explicit(&L.slots[in->id].ran, 1,
	    memory_order_relaxed);
	int rc = 0;
	switch (in->kind) {
	case K_LOOP:
	case K_CHILD:
		atomic_fetch_add(&L.blocking, 1);
		while (!pf_ctx_aborted(c))
			sched_yield();
		atomic_fetch_add(&L.observed, 1);
		rc = pf_ctx_throw_if_aborted(c);
		break;
	case K_WAIT: {
		atomic_fetch_add(&L.blocking, 1);
		long id = child_slot();
		if (id >= 0) {
			load_in ci = { id, K_CHILD };
			pf_exec_options o = opts_for(id);
			pf_exec *e = NULL;
			int r = pf_ctx_exec(c, &load_flow, &ci, &o, &e);
			if (r == 0) {
				r = pf_exec_wait(e, NULL);
				if (!is_abort_code(r))
					atomic_fetch_add(&L.wait_bad, 1);
				pf_exec_release(e);
			} else {
				count_refusal(r);
			}
		}
		while (!pf_ctx_aborted(c))
			sched_yield();
		atomic_fetch_add(&L.observed, 1);
		rc = pf_ctx_throw_if_aborted(c);
		break;
	}
	case K_FD: {
		atomic_fetch_add(&L.blocking, 1);
		int fd = pf_signal_fd(pf_ctx_signal(c));
		if (fd >= 0) {
			struct pollfd p = { fd, POLLIN, 0 };
			while (poll(&p, 1, -1) != 1)
				;
		} else {
			while (!pf_ctx_aborted(c))
				sched_yield();
		}
		atomic_fetch_add(&L.observed, 1);
		rc = pf_ctx_throw_if_aborted(c);
		if (!pf_ctx_aborted(c))
			atomic_fetch_add(&L.wait_bad, 1);
		break;
	}
	case K_SPAWN:
		atomic_fetch_add(&L.blocking, 1);
		/* New work until refused: PF_ESHUTDOWN or the abort. */
		for (;;) {
			long id = child_slot();
			if (id < 0) {
				while (!pf_ctx_aborted(c))
					sched_yield();
				rc = pf_ctx_throw_if_aborted(c);
				break;
			}
			load_in ci = { id, K_QUICK };
			pf_exec_options o = opts_for(id);
			int r = pf_ctx_exec(c, &load_flow, &ci, &o, NULL);
			if (r != 0) {
				/* PF_ESHUTDOWN comes first, the abort right
				 * after it: wait for the abort. */
				count_refusal(r);
				while (!pf_ctx_aborted(c))
					sched_yield();
				rc = pf_ctx_throw_if_aborted(c);
				break;
			}
			sched_yield();
		}
		atomic_fetch_add(&L.observed, 1);
		break;
	default:
		*(long *)out = in->id;
		break;
	}
	atomic_fetch_sub(&L.in_handler, 1);
	return rc;
}

static void
ext_dispose(pf_scope *s, void *state)
{
	(void)s;
	(void)state;
	atomic_fetch_add(&L.ext_disposed, 1);
	atomic_store(&L.handlers_at_ext_dispose, atomic_load(&L.in_handler));
}

static const pf_extension watcher = { "watcher", NULL, NULL, ext_dispose,
	NULL };

static void *
disposer(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&L.go, memory_order_acquire))
		sched_yield();
	/* Returned through the thread's result. */
	return (void *)(intptr_t)pf_scope_dispose(L.scope);
}

static void
dispose_under_load(unsigned threads, int round)
{
	memset(&L, 0, sizeof(L));
	const char *full = getenv("PF_STRESS_FULL");
	long load_n = full != NULL && strcmp(full, "1") == 0 ?
	    LOAD_FULL :
	    pf_test_scale(LOAD_CHECK);
	/* Roots use the first half of the slots, children the second. */
	L.n = 2 * load_n;
	L.next_child = L.n - 1;
	L.slots = calloc((size_t)L.n, sizeof(slot));
	ck_assert_ptr_nonnull(L.slots);
	const pf_extension *exts[] = { &watcher };
	pf_scope_options so = { .threads = threads, .extensions = exts,
		.n_extensions = 1 };
	ck_assert_int_eq(pf_scope_create(&L.scope, &so), 0);

	pf_ctx *ctxs[N_CTX];
	for (int i = 0; i < N_CTX; i++)
		ck_assert_int_eq(pf_scope_create_execution(L.scope, NULL,
				     &ctxs[i]), 0);
	pthread_t dt;
	ck_assert_int_eq(pthread_create(&dt, NULL, disposer, NULL), 0);

	size_t cap = (size_t)load_n / 3 + 2, n_held = 0;
	pf_exec **held = calloc(cap, sizeof(*held));
	long *held_id = calloc(cap, sizeof(*held_id));
	ck_assert_ptr_nonnull(held);
	ck_assert_ptr_nonnull(held_id);
	long created = 0;
	for (long id = 0; id < load_n; id++) {
		uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull >> 40;
		/* The first executions fill the pool with blockers of each
		 * kind; waiters help, so they block a worker more than once. */
		static const int first[] = { K_WAIT, K_SPAWN, K_FD, K_LOOP };
		int kind = id < 4 * (long)threads ? first[id % 4] :
		    h % 10 == 0			  ? K_LOOP :
		    h % 10 == 1			  ? K_WAIT :
		    h % 10 == 2			  ? K_FD :
		    h % 50 == 3			  ? K_SPAWN :
						    K_QUICK;
		load_in in = { id, kind };
		pf_exec_options o = opts_for(id);
		bool keep = id % 3 == 0 && n_held < cap;
		pf_exec *e = NULL;
		int rc = h % 7 == 0 ?
		    pf_ctx_exec(ctxs[h % N_CTX], &load_flow, &in, &o,
			keep ? &e : NULL) :
		    pf_scope_exec(L.scope, &load_flow, &in, &o,
			keep ? &e : NULL);
		ck_assert_int_eq(rc, 0);
		created++;
		if (keep) {
			held_id[n_held] = id;
			held[n_held++] = e;
		}
	}
	/* Wait until the pool is busy with blockers, then dispose. */
	int64_t t0 = now_us();
	while (atomic_load(&L.blocking) < (long)threads &&
	    now_us() - t0 < 5000000)
		sched_yield();
	int64_t t_dispose = now_us();
	atomic_store_explicit(&L.go, 1, memory_order_release);
	void *res = NULL;
	pthread_join(dt, &res);
	int64_t took = now_us() - t_dispose;
	ck_assert_int_eq((int)(intptr_t)res, 0);

	/* Every handler returned before dispose did; the blocking ones saw
	 * the abort. */
	ck_assert_int_eq(atomic_load(&L.in_handler), 0);
	ck_assert_int_eq(atomic_load(&L.observed), atomic_load(&L.blocking));
	ck_assert_int_eq(atomic_load(&L.ext_disposed), 1);
	ck_assert_int_eq(atomic_load(&L.handlers_at_ext_dispose), 0);
	ck_assert_int_eq(atomic_load(&L.wait_bad), 0);
	ck_assert_int_eq(atomic_load(&L.refused_other), 0);

	/* Held handles answer at once, wait and release. */
	int64_t t1 = now_us();
	long again = 0;
	for (size_t i = 0; i < n_held; i++) {
		pf_exec *e = held[i];
		pf_status st = pf_exec_status(e);
		ck_assert_int_ge(st, PF_COMPLETED);
		long out = -1;
		int rc = pf_exec_wait_for(e, &out, 0);
		again += rc == PF_EAGAIN;
		ck_assert_int_eq(pf_exec_wait(e, &out), rc);
		ck_assert_int_eq(rc, pf_ctx_error(pf_exec_ctx(e), NULL));
		if (st == PF_COMPLETED)
			ck_assert_int_eq(out, held_id[i]);
		else
			ck_assert(is_abort_code(rc));
		ck_assert_int_ne(pf_ctx_completed_at(pf_exec_ctx(e)), 0);
		pf_exec_release(e);
	}
	int64_t wait_us = now_us() - t1;
	ck_assert_int_eq(again, 0);
	for (int i = 0; i < N_CTX; i++) {
		ck_assert(pf_ctx_aborted(ctxs[i]));
		ck_assert_int_eq(pf_ctx_throw_if_aborted(ctxs[i]),
		    PF_ECANCELED);
		pf_ctx_release(ctxs[i]);
	}

	/* Every execution ended once; those cancelled while pending never
	 * ran and carry PF_ECANCELED. */
	long children = L.n - 1 - atomic_load(&L.next_child);
	if (children > L.n / 2)
		children = L.n / 2;
	long bad = 0, cancelled = 0, pending_cancel = 0, completed = 0,
	     made = 0;
	for (long id = 0; id < L.n; id++) {
		slot *s = &L.slots[id];
		int pend = atomic_load(&s->n[PF_PENDING]);
		if (pend == 0) {
			if (id < load_n || atomic_load(&s->seq) != 0)
				bad++;
			continue;
		}
		made++;
		int run = atomic_load(&s->n[PF_RUNNING]);
		int terms = atomic_load(&s->n[PF_COMPLETED]) +
		    atomic_load(&s->n[PF_FAILED]) +
		    atomic_load(&s->n[PF_CANCELLED]);
		bool ok = pend == 1 && terms == 1 && run <= 1 &&
		    atomic_load(&s->order_bad) == 0 &&
		    atomic_load(&s->ran) == run &&
		    atomic_load(&s->n[PF_FAILED]) == 0;
		if (atomic_load(&s->n[PF_CANCELLED])) {
			cancelled++;
			ok = ok && atomic_load(&s->err) == PF_ECANCELED;
			pending_cancel += run == 0;
		}
		completed += atomic_load(&s->n[PF_COMPLETED]);
		if (!ok && bad++ < 10)
			fprintf(stderr, "dispose(%u): slot %ld: pending %d "
					"running %d terminals %d ran %d err %d\n",
			    threads, id, pend, run, terms,
			    atomic_load(&s->ran), atomic_load(&s->err));
	}
	ck_assert_int_eq(atomic_load(&L.terminals), made);
	fprintf(stderr,
	    "dispose(%u threads, round %d): %ld executions (%ld children), "
	    "%ld handlers ran, %ld completed, %ld cancelled (%ld while "
	    "pending); refused: %ld shutdown, %ld aborted; dispose %lld us, "
	    "%zu held handles waited and released in %lld us\n",
	    threads, round, made, made - created, atomic_load(&L.started),
	    completed, cancelled, pending_cancel,
	    atomic_load(&L.refused_shutdown), atomic_load(&L.refused_abort),
	    (long long)took, n_held, (long long)wait_us);
	(void)children;
	ck_assert_int_eq(bad, 0);
	ck_assert_int_gt(pending_cancel, 0);
	free(held);
	free(held_id);
	free(L.slots);
}

static void
repeat(unsigned threads)
{
	for (int r = 0; r < REPEATS; r++)
		dispose_under_load(threads, r);
}

START_TEST(dispose_load_1_thread)
{
	repeat(1);
}
END_TEST

START_TEST(dispose_load_2_threads)
{
	repeat(2);
}
END_TEST

START_TEST(dispose_load_4_threads)
{
	repeat(4);
}
END_TEST

static Suite *
dispose_load_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "dispose_under_load", .test = dispose_load_1_thread, .timeout = 300, .tags = "stress" },
		{ .tcase = "dispose_under_load", .test = dispose_load_2_threads, .timeout = 300, .tags = "stress" },
		{ .tcase = "dispose_under_load", .test = dispose_load_4_threads, .timeout = 300, .tags = "stress" },
	};
	return pf_test_suite("dispose_load", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(dispose_load_suite());
}
