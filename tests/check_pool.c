/*
 * check_pool.c: the worker pool: submission, parking, helping, spares.
 *
 * Results are recorded by the tasks into atomics and asserted on the test
 * thread after the work is joined.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "annotate.h"
#include "clock.h"
#include "park.h"
#include "pool.h"
#include "pumped.h"
#include "testlib.h"

/*
 * A runtime-level future: a task plus one word that holds the waiting
 * thread's parker, or JOB_DONE once the task ran.  Completion exchanges
 * JOB_DONE in and unparks whoever it displaced, touching nothing of the
 * job afterwards: the job lives on its joiner's stack, which may be gone
 * the moment the joiner sees JOB_DONE.
 */
#define JOB_DONE ((pf__parker *)1)

typedef struct job {
	pf__task task;
	pf__pool *pool;
	_Atomic(pf__parker *) waiter;
	int depth;
	atomic_long *counter;
	void (*body)(struct job *j);
} job;

static void
job_complete(job *j)
{
	/* Acq_rel: publishes the task's effects to the joiner that reads
	 * JOB_DONE, and reads the parker the joiner stored. */
	PF_HB_BEFORE(&j->waiter); /* src/annotate.h */
	pf__parker *p = atomic_exchange_explicit(&j->waiter, JOB_DONE,
	    memory_order_acq_rel);
	if (p != NULL && p != JOB_DONE)
		pf__parker_unpark(p);
}

static void
job_run(pf__task *t)
{
	job *j = (job *)t;
	if (j->body != NULL)
		j->body(j);
	if (j->counter != NULL)
		atomic_fetch_add(j->counter, 1);
	job_complete(j);
}

static void
job_init(job *j, pf__pool *p, void (*body)(job *))
{
	atomic_init(&j->task.next, NULL);
	j->pool = p;
	atomic_init(&j->waiter, NULL);
	PF_ATOMIC_OBJ(&j->waiter);
	j->body = body;
	j->counter = NULL;
	j->depth = 0;
}

static bool
job_done(void *arg)
{
	return PF_ACQUIRED(&((job *)arg)->waiter,
		   atomic_load_explicit(&((job *)arg)->waiter,
		   memory_order_acquire)) == JOB_DONE;
}

/* Registers me as j's waiter; false when j already ran. */
static bool
job_register(job *j, pf__parker *me)
{
	pf__parker *old = atomic_exchange_explicit(&j->waiter, me,
	    memory_order_acq_rel);
	if (old == JOB_DONE) {
		PF_HB_AFTER(&j->waiter);
		atomic_store_explicit(&j->waiter, JOB_DONE, memory_order_release);
		return false;
	}
	return true;
}

/* Waits for j: a worker helps, an outside thread parks. */
static void
job_join(job *j)
{
	pf__worker *w = pf__pool_current(j->pool);
	pf__parker *me = w != NULL ? &w->parker : pf__parker_self();
	if (!job_register(j, me))
		return;
	while (!job_done(j)) {
		/* Help only while the stack has room, as the library's own
		 * helping wait does; past that, block like an outside thread
		 * (the pool compensates with a spare worker). */
		bool can_help = w != NULL && pf__worker_can_help(w);
		if (can_help && pf__pool_help(w, NULL))
			continue;
		if (can_help) {
			pf__pool_idle_park(w, job_done, j, -1);
			continue;
		}
		if (w != NULL)
			pf__pool_block_begin(w);
		while (!job_done(j))
			pf__parker_park(me);
		if (w != NULL)
			pf__pool_block_end(w);
	}
}

static pf__pool *
make_pool(unsigned threads, unsigned spare)
{
	pf__pool_config cfg = { .threads = threads, .max_spare = spare,
		.run = job_run };
	pf__pool *p = NULL;
	ck_assert_int_eq(pf__pool_create(&p, &cfg), 0);
	return p;
}

START_TEST(test_create_rejects_bad_config)
{
	pf__pool *p = NULL;
	pf__pool_config cfg = { .threads = 0, .run = job_run };
	ck_assert_int_eq(pf__pool_create(&p, &cfg), PF_EINVAL);
	/* Every pool needs its run function. */
	cfg = (pf__pool_config){ .threads = 1 };
	ck_assert_int_eq(pf__pool_create(&p, &cfg), PF_EINVAL);
	ck_assert_int_eq(pf__pool_create(NULL, &cfg), PF_EINVAL);
	ck_assert_int_eq(pf__pool_create(&p, NULL), PF_EINVAL);
	ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_outside_submit_runs_everything)
{
	pf__pool *p = make_pool(2, 0);
	enum { N = 10000 };
	job *jobs = calloc(N, sizeof(*jobs));
	atomic_long count = 0;
	for (int i = 0; i < N; i++) {
		job_init(&jobs[i], p, NULL);
		jobs[i].counter = &count;
		pf__pool_submit(p, &jobs[i].task);
	}
	for (int i = 0; i < N; i++)
		job_join(&jobs[i]);
	ck_assert_int_eq(atomic_load(&count), N);
	pf__pool_destroy(p);
	free(jobs);
}
END_TEST

/*
 * No lost wake-up: each cycle submits one task from outside and sleeps
 * until it ran, so the workers go idle and park between cycles.  A lost
 * wake-up hangs the test (Check's timeout fails it).
 */
static void
park_cycles(unsigned threads)
{
	pf__pool *p = make_pool(threads, 0);
	long n = pf_test_scale(1000000);
	job j;
	for (long i = 0; i < n; i++) {
		job_init(&j, p, NULL);
		pf__pool_submit(p, &j.task);
		job_join(&j);
	}
	pf__pool_stats st;
	pf__pool_stats_read(p, &st);
	ck_assert_uint_ge(st.run, (uint64_t)n);
	pf__pool_destroy(p);
}

START_TEST(test_park_wake_cycles_1_worker)
{
	park_cycles(1);
}
END_TEST

START_TEST(test_park_wake_cycles_2_workers)
{
	park_cycles(2);
}
END_TEST

/* Each level spawns the next and joins it from inside a task. */
static void
nest_body(job *j)
{
	if (j->depth == 0)
		return;
	job child;
	job_init(&child, j->pool, nest_body);
	child.depth = j->depth - 1;
	child.counter = j->counter;
	pf__pool_submit(j->pool, &child.task);
	job_join(&child);
}

static void
nested_wait(unsigned threads)
{
	pf__pool *p = make_pool(threads, 0);
	atomic_long count = 0;
	for (int round = 0; round < 50; round++) {
		job root;
		job_init(&root, p, nest_body);
		root.depth = 30;
		root.counter = &count;
		pf__pool_submit(p, &root.task);
		job_join(&root);
	}
	ck_assert_int_eq(atomic_load(&count), 50 * 31);
	pf__pool_destroy(p);
}

START_TEST(test_helping_wait_nested_30_1_worker)
{
	nested_wait(1);
}
END_TEST

START_TEST(test_helping_wait_nested_30_2_workers)
{
	nested_wait(2);
}
END_TEST

START_TEST(test_helping_wait_nested_30_4_workers)
{
	nested_wait(4);
}
END_TEST

/*
 * Spare threads.  Every worker runs a task that blocks, without helping,
 * until a task queued after them has run: only a spare can run it.
 */
typedef struct blocker {
	job j;
	job *release; /* the job whose completion unblocks us */
} blocker;

static void
block_body(job *j)
{
	blocker *b = (blocker *)j;
	pf__worker *w = pf__pool_current(j->pool);
	pf__parker *me = &w->parker;
	(void)job_register(b->release, me);
	pf__pool_block_begin(w);
	while (!job_done(b->release))
		pf__parker_park(me);
	pf__pool_block_end(w);
}

static void
spare_compensates(unsigned threads)
{
	pf__pool *p = make_pool(threads, 4);
	job last;
	job_init(&last, p, NULL);
	blocker *bs = calloc(threads, sizeof(*bs));
	for (unsigned i = 0; i < threads; i++) {
		job_init(&bs[i].j, p, block_body);
		bs[i].release = &last;
	}
	/* One waiter slot on `last` is enough for the test: every blocker
	 * re-checks done after each wake, and job_complete wakes the last
	 * registered; the others are woken by polling below. */
	for (unsigned i = 0; i < threads; i++)
		pf__pool_submit(p, &bs[i].j.task);
	/* Give every worker time to take a blocker and block. */
	int64_t until = pf__clock_mono_ns() + 50 * 1000000LL;
	while (pf__clock_mono_ns() < until)
		sched_yield();
	pf__pool_submit(p, &last.task);
	while (!job_done(&last))
		sched_yield();
	/* Wake every blocker (only one parker was registered on last). */
	for (int spin = 0; spin < 1000; spin++) {
		bool all = true;
		for (unsigned i = 0; i < threads; i++)
			all = all && job_done(&bs[i].j);
		if (all)
			break;
		unsigned n = atomic_load(&p->nworkers);
		for (unsigned k = 0; k < n; k++)
			pf__parker_unpark(&p->workers[k]->parker);
		usleep(1000);
	}
	for (unsigned i = 0; i < threads; i++)
		ck_assert(job_done(&bs[i].j));
	pf__pool_stats st;
	pf__pool_stats_read(p, &st);
	ck_assert_uint_gt(st.workers, threads);
	ck_assert_uint_le(st.workers, threads + 4);
	pf__pool_destroy(p);
	free(bs);
}

START_TEST(test_spare_runs_work_when_1_worker_blocked)
{
	spare_compensates(1);
}
END_TEST

START_TEST(test_spare_runs_work_when_2_workers_blocked)
{
	spare_compensates(2);
}
END_TEST

START_TEST(test_no_spare_beyond_cap)
{
	/* max_spare 0: a blocked single worker gets no help, and the pool
	 * must not start a thread anyway; unblock it from outside. */
	pf__pool *p = make_pool(1, 0);
	job last;
	job_init(&last, p, NULL);
	blocker b;
	job_init(&b.j, p, block_body);
	b.release = &last;
	pf__pool_submit(p, &b.j.task);
	usleep(20000);
	pf__pool_stats st;
	pf__pool_stats_read(p, &st);
	ck_assert_uint_eq(st.workers, 1);
	/* Complete `last` by hand (it never ran) to release the blocker. */
	job_complete(&last);
	job_join(&b.j);
	pf__pool_destroy(p);
}
END_TEST

/* An idle pool parks its workers: they stop running searches. */
START_TEST(test_idle_pool_parks)
{
	pf__pool *p = make_pool(2, 0);
	job j;
	job_init(&j, p, NULL);
	pf__pool_submit(p, &j.task);
	job_join(&j);
	usleep(50000);
	pf__pool_stats a, b;
	pf__pool_stats_read(p, &a);
	usleep(100000);
	pf__pool_stats_read(p, &b);
	/* Parked workers do not wake on their own. */
	ck_assert_uint_eq(a.park, b.park);
	ck_assert_int_eq(atomic_load(&p->sleepers), 2);
	pf__pool_destroy(p);
}
END_TEST

static Suite *
pool_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "submission", .test = test_create_rejects_bad_config },
		{ .tcase = "submission", .test = test_outside_submit_runs_everything },
		{ .tcase = "submission", .test = test_idle_pool_parks },
		{ .tcase = "parking_no_lost_wakeup", .test = test_park_wake_cycles_1_worker, .timeout = 900, .tags = "stress" },
		{ .tcase = "parking_no_lost_wakeup", .test = test_park_wake_cycles_2_workers, .timeout = 900, .tags = "stress" },
		/* Generous: on an overloaded machine each cycle waits for the
		 * scheduler; a lost wake-up hangs for good and still fails. */
		{ .tcase = "helping_wait", .test = test_helping_wait_nested_30_1_worker, .timeout = 60 },
		{ .tcase = "helping_wait", .test = test_helping_wait_nested_30_2_workers, .timeout = 60 },
		{ .tcase = "helping_wait", .test = test_helping_wait_nested_30_4_workers, .timeout = 60 },
		{ .tcase = "spare_workers", .test = test_spare_runs_work_when_1_worker_blocked, .timeout = 60 },
		{ .tcase = "spare_workers", .test = test_spare_runs_work_when_2_workers_blocked, .timeout = 60 },
		{ .tcase = "spare_workers", .test = test_no_spare_beyond_cap, .timeout = 60 },
	};
	return pf_test_suite("pool", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(pool_suite());
}
