/*
 * check_injector.c: the injector is FIFO, reports "busy" exactly when work
 * may exist but cannot be taken yet, and hands every task to exactly one
 * consumer, in each producer's order, when producers and consumers race.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "injector.h"
#include "testlib.h"
#include "task.h"

struct item {
	pf__task task;
	int producer;
	long seq;
};

static struct item *
item_of(pf__task *t)
{
	return PF_CONTAINER_OF(t, struct item, task);
}

START_TEST(pop_is_fifo)
{
	enum { N = 100 };
	static struct item items[N];
	pf__injector q;
	pf__injector_init(&q);
	for (int i = 0; i < N; i++) {
		items[i].seq = i;
		pf__injector_push(&q, &items[i].task);
	}
	for (int i = 0; i < N; i++) {
		bool busy = true;
		pf__task *t = pf__injector_pop(&q, &busy);
		ck_assert_ptr_eq(t, &items[i].task);
		ck_assert(!busy);
	}
	bool busy = true;
	ck_assert_ptr_null(pf__injector_pop(&q, &busy));
	ck_assert(!busy);
	pf__injector_destroy(&q);
}
END_TEST

START_TEST(drain_and_refill)
{
	/*
	 * Each drain re-inserts the stub behind the last task; alternate
	 * single and double pushes so that both the "last task" and the "skip
	 * the stub" paths run many times.
	 */
	static struct item items[3];
	pf__injector q;
	pf__injector_init(&q);
	for (int round = 0; round < 1000; round++) {
		int n = 1 + round % 3;
		for (int i = 0; i < n; i++)
			pf__injector_push(&q, &items[i].task);
		ck_assert(!pf__injector_empty_hint(&q));
		for (int i = 0; i < n; i++)
			ck_assert_ptr_eq(
			    pf__injector_pop(&q, NULL), &items[i].task);
		ck_assert(pf__injector_empty_hint(&q));
		ck_assert_ptr_null(pf__injector_pop(&q, NULL));
	}
	pf__injector_destroy(&q);
}
END_TEST

START_TEST(empty_hint_tracks_contents)
{
	static struct item a, b;
	pf__injector q;
	pf__injector_init(&q);
	ck_assert(pf__injector_empty_hint(&q));
	pf__injector_push(&q, &a.task);
	ck_assert(!pf__injector_empty_hint(&q));
	pf__injector_push(&q, &b.task);
	ck_assert_ptr_eq(pf__injector_pop(&q, NULL), &a.task);
	ck_assert(!pf__injector_empty_hint(&q));
	ck_assert_ptr_eq(pf__injector_pop(&q, NULL), &b.task);
	ck_assert(pf__injector_empty_hint(&q));
	pf__injector_destroy(&q);
}
END_TEST

START_TEST(busy_when_lock_held)
{
	/* White box: hold the consumer lock as a concurrent consumer would. */
	static struct item a;
	pf__injector q;
	pf__injector_init(&q);
	pf__injector_push(&q, &a.task);
	atomic_store_explicit(&q.locked, true, memory_order_relaxed);
	bool busy = false;
	ck_assert_ptr_null(pf__injector_pop(&q, &busy));
	ck_assert(busy);
	atomic_store_explicit(&q.locked, false, memory_order_relaxed);
	ck_assert_ptr_eq(pf__injector_pop(&q, &busy), &a.task);
	ck_assert(!busy);
	pf__injector_destroy(&q);
}
END_TEST

/*
 * White box: do the first half of a push (the exchange on tail) and stop
 * before linking, as a producer preempted between its two steps would.
 */
static pf__task *
half_push(pf__injector *q, pf__task *t)
{
	atomic_store_explicit(&t->next, NULL, memory_order_relaxed);
	return atomic_exchange_explicit(&q->tail, t, memory_order_acq_rel);
}

static void
finish_push(pf__task *prev, pf__task *t)
{
	atomic_store_explicit(&prev->next, t, memory_order_release);
}

START_TEST(busy_while_producer_links_into_empty)
{
	static struct item a;
	pf__injector q;
	pf__injector_init(&q);
	pf__task *prev = half_push(&q, &a.task);
	ck_assert(!pf__injector_empty_hint(&q));
	bool busy = false;
	ck_assert_ptr_null(pf__injector_pop(&q, &busy));
	ck_assert(busy);
	finish_push(prev, &a.task);
	ck_assert_ptr_eq(pf__injector_pop(&q, &busy), &a.task);
	ck_assert(!busy);
	ck_assert_ptr_null(pf__injector_pop(&q, &busy));
	ck_assert(!busy);
	pf__injector_destroy(&q);
}
END_TEST

START_TEST(busy_while_producer_links_behind_last)
{
	/* The unlinked task is behind a task the consumer can see. */
	static struct item a, b, c;
	pf__injector q;
	pf__injector_init(&q);
	pf__injector_push(&q, &a.task);
	pf__injector_push(&q, &b.task);
	pf__task *prev = half_push(&q, &c.task);
	bool busy = true;
	ck_assert_ptr_eq(pf__injector_pop(&q, &busy), &a.task);
	ck_assert(!busy);
	/* b is last linked but not last in tail order: it must stay put. */
	ck_assert_ptr_null(pf__injector_pop(&q, &busy));
	ck_assert(busy);
	ck_assert(!pf__injector_empty_hint(&q));
	finish_push(prev, &c.task);
	ck_assert_ptr_eq(pf__injector_pop(&q, &busy), &b.task);
	ck_assert_ptr_eq(pf__injector_pop(&q, &busy), &c.task);
	ck_assert(!busy);
	ck_assert(pf__injector_empty_hint(&q));
	ck_assert_ptr_null(pf__injector_pop(&q, &busy));
	ck_assert(!busy);
	pf__injector_destroy(&q);
}
END_TEST

/* Stress: four producers, three consumers. */

#define STRESS_TASKS 250000L /* per producer */
#define STRESS_PRODUCERS 4
#define STRESS_CONSUMERS 3

struct stress {
	pf__injector q;
	long per_producer;
	struct item *items; /* [producer * per_producer + seq] */
	atomic_uint *seen;  /* same index: how many consumers got it */
	atomic_long popped; /* total, so consumers know when to stop */
};

struct producer {
	struct stress *s;
	int id;
};

struct consumer {
	struct stress *s;
	long popped;
	long busy;
	long empty;
	/* A task older than one this consumer already got from its producer. */
	long out_of_order;
	long garbage;
};

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	struct stress *s = p->s;
	for (long i = 0; i < s->per_producer; i++) {
		struct item *it = &s->items[p->id * s->per_producer + i];
		/* Plain writes, published by the push. */
		it->producer = p->id;
		it->seq = i;
		pf__injector_push(&s->q, &it->task);
	}
	return NULL;
}

static void *
consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct stress *s = c->s;
	long total = STRESS_PRODUCERS * s->per_producer;
	long last[STRESS_PRODUCERS];
	for (int i = 0; i < STRESS_PRODUCERS; i++)
		last[i] = -1;
	/* Relaxed: a count only; the tasks are published by the queue. */
	while (atomic_load_explicit(&s->popped, memory_order_relaxed) < total) {
		bool busy;
		pf__task *t = pf__injector_pop(&s->q, &busy);
		if (t == NULL) {
			/* Busy: retry without giving up the CPU for long. */
			if (busy)
				c->busy++;
			else
				c->empty++;
			sched_yield();
			continue;
		}
		struct item *it = item_of(t);
		long idx = it - s->items;
		if (idx < 0 || idx >= total || it->producer < 0 ||
		    it->producer >= STRESS_PRODUCERS ||
		    it->producer * s->per_producer + it->seq != idx) {
			c->garbage++;
		} else {
			if (it->seq <= last[it->producer])
				c->out_of_order++;
			last[it->producer] = it->seq;
			atomic_fetch_add_explicit(
			    &s->seen[idx], 1, memory_order_relaxed);
		}
		c->popped++;
		atomic_fetch_add_explicit(&s->popped, 1, memory_order_relaxed);
	}
	return NULL;
}

START_TEST(every_task_popped_once_in_producer_order)
{
	struct stress s;
	s.per_producer = pf_test_scale(STRESS_TASKS);
	long total = STRESS_PRODUCERS * s.per_producer;
	s.items = calloc((size_t)total, sizeof(*s.items));
	s.seen = calloc((size_t)total, sizeof(*s.seen));
	ck_assert_ptr_nonnull(s.items);
	ck_assert_ptr_nonnull(s.seen);
	for (long i = 0; i < total; i++)
		s.items[i].producer = -1;
	atomic_init(&s.popped, 0);
	pf__injector_init(&s.q);

	struct consumer cs[STRESS_CONSUMERS] = {0};
	struct producer ps[STRESS_PRODUCERS];
	pthread_t ctid[STRESS_CONSUMERS], ptid[STRESS_PRODUCERS];
	for (int i = 0; i < STRESS_CONSUMERS; i++) {
		cs[i].s = &s;
		ck_assert_int_eq(
		    pthread_create(&ctid[i], NULL, consumer_main, &cs[i]), 0);
	}
	for (int i = 0; i < STRESS_PRODUCERS; i++) {
		ps[i].s = &s;
		ps[i].id = i;
		ck_assert_int_eq(
		    pthread_create(&ptid[i], NULL, producer_main, &ps[i]), 0);
	}
	for (int i = 0; i < STRESS_PRODUCERS; i++)
		ck_assert_int_eq(pthread_join(ptid[i], NULL), 0);
	long popped = 0;
	for (int i = 0; i < STRESS_CONSUMERS; i++) {
		ck_assert_int_eq(pthread_join(ctid[i], NULL), 0);
		ck_assert_int_eq(cs[i].garbage, 0);
		ck_assert_int_eq(cs[i].out_of_order, 0);
		popped += cs[i].popped;
	}
	ck_assert_int_eq(popped, total);
	long wrong = 0;
	for (long i = 0; i < total; i++)
		if (atomic_load_explicit(&s.seen[i], memory_order_relaxed) != 1)
			wrong++;
	ck_assert_msg(wrong == 0, "%ld tasks not popped exactly once", wrong);
	bool busy = true;
	ck_assert_ptr_null(pf__injector_pop(&s.q, &busy));
	ck_assert(!busy);
	ck_assert(pf__injector_empty_hint(&s.q));
	pf__injector_destroy(&s.q);
	free(s.seen);
	free(s.items);
}
END_TEST

static Suite *
injector_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "fifo_single_thread", .test = pop_is_fifo },
		{ .tcase = "fifo_single_thread", .test = drain_and_refill },
		{ .tcase = "fifo_single_thread", .test = empty_hint_tracks_contents },
		{ .tcase = "busy_means_retry", .test = busy_when_lock_held },
		{ .tcase = "busy_means_retry", .test = busy_while_producer_links_into_empty },
		{ .tcase = "busy_means_retry", .test = busy_while_producer_links_behind_last },
		{ .tcase = "producers_and_consumers_race", .test = every_task_popped_once_in_producer_order, .timeout = 120, .tags = "stress" },
	};
	return pf_test_suite("injector", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(injector_suite());
}
