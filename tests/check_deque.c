/*
 * check_deque.c: the Chase-Lev deque takes LIFO, steals FIFO, grows without
 * losing or reordering items, reports allocation failure, and hands every
 * item to exactly one thread when the owner and thieves race.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "annotate.h"
#include "deque.h"
#include "pumped.h"
#include "testlib.h"

/* Items are small integers dressed as pointers; 0 would read as "empty". */
static void *
item(uintptr_t i)
{
	return (void *)(i + 1);
}

static uintptr_t
item_index(void *p)
{
	return (uintptr_t)p - 1;
}

static void
disarm(void)
{
	pf__alloc_fail_at(0);
}

START_TEST(take_is_lifo)
{
	pf__deque d;
	ck_assert_int_eq(pf__deque_init(&d, 16), 0);
	for (uintptr_t i = 0; i < 10; i++)
		ck_assert_int_eq(pf__deque_push(&d, item(i)), 0);
	ck_assert_int_eq(pf__deque_size_hint(&d), 10);
	for (uintptr_t i = 10; i-- > 0;)
		ck_assert_ptr_eq(pf__deque_take(&d), item(i));
	ck_assert_ptr_null(pf__deque_take(&d));
	pf__deque_destroy(&d);
}
END_TEST

START_TEST(steal_is_fifo)
{
	pf__deque d;
	ck_assert_int_eq(pf__deque_init(&d, 16), 0);
	for (uintptr_t i = 0; i < 10; i++)
		ck_assert_int_eq(pf__deque_push(&d, item(i)), 0);
	for (uintptr_t i = 0; i < 10; i++) {
		void *x = NULL;
		ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
		ck_assert_ptr_eq(x, item(i));
	}
	void *x = NULL;
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_EMPTY);
	ck_assert_ptr_null(x);
	pf__deque_destroy(&d);
}
END_TEST

START_TEST(both_ends_meet)
{
	/* Steal from the top and take from the bottom until they meet. */
	pf__deque d;
	ck_assert_int_eq(pf__deque_init(&d, 4), 0);
	for (uintptr_t i = 0; i < 7; i++)
		ck_assert_int_eq(pf__deque_push(&d, item(i)), 0);
	void *x;
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
	ck_assert_ptr_eq(x, item(0));
	ck_assert_ptr_eq(pf__deque_take(&d), item(6));
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
	ck_assert_ptr_eq(x, item(1));
	ck_assert_ptr_eq(pf__deque_take(&d), item(5));
	ck_assert_ptr_eq(pf__deque_take(&d), item(4));
	ck_assert_ptr_eq(pf__deque_take(&d), item(3));
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
	ck_assert_ptr_eq(x, item(2));
	ck_assert_ptr_null(pf__deque_take(&d));
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_EMPTY);
	ck_assert_int_eq(pf__deque_size_hint(&d), 0);
	pf__deque_destroy(&d);
}
END_TEST

START_TEST(empty_returns_empty)
{
	pf__deque d;
	ck_assert_int_eq(pf__deque_init(&d, 0), 0);
	void *x = item(42);
	ck_assert_ptr_null(pf__deque_take(&d));
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_EMPTY);
	/* Out-parameters are written only on success. */
	ck_assert_ptr_eq(x, item(42));
	ck_assert_int_eq(pf__deque_size_hint(&d), 0);

	/* A take on an empty deque must leave it usable and still empty. */
	ck_assert_ptr_null(pf__deque_take(&d));
	ck_assert_int_eq(pf__deque_size_hint(&d), 0);
	ck_assert_int_eq(pf__deque_push(&d, item(1)), 0);
	ck_assert_ptr_eq(pf__deque_take(&d), item(1));
	ck_assert_ptr_null(pf__deque_take(&d));
	ck_assert_int_eq(pf__deque_push(&d, item(2)), 0);
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
	ck_assert_ptr_eq(x, item(2));
	ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_EMPTY);
	ck_assert_ptr_null(pf__deque_take(&d));
	pf__deque_destroy(&d);
}
END_TEST

START_TEST(growth_keeps_order)
{
	/*
	 * From capacity 2 through 15 doublings; a few steals first move top
	 * off zero so that the live range wraps around the buffer when it is
	 * copied.
	 */
	enum { N = 1 << 16 };
	pf__deque d;
	ck_assert_int_eq(pf__deque_init(&d, 2), 0);
	uintptr_t next_steal = 0;
	for (uintptr_t i = 0; i < N; i++) {
		ck_assert_int_eq(pf__deque_push(&d, item(i)), 0);
		if (i % 3 == 2) {
			void *x;
			ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
			ck_assert_ptr_eq(x, item(next_steal));
			next_steal++;
		}
	}
	ck_assert_int_eq(pf__deque_size_hint(&d), N - next_steal);
	/* Half from the bottom in LIFO order, the rest from the top in FIFO. */
	uintptr_t mid = next_steal + (N - next_steal) / 2;
	for (uintptr_t i = N; i-- > mid;)
		ck_assert_ptr_eq(pf__deque_take(&d), item(i));
	for (uintptr_t i = next_steal; i < mid; i++) {
		void *x;
		ck_assert_int_eq(pf__deque_steal(&d, &x), PF__STEAL_OK);
		ck_assert_ptr_eq(x, item(i));
	}
	ck_assert_ptr_null(pf__deque_take(&d));
	pf__deque_destroy(&d);
}
END_TEST

START_TEST(capacity_rounds_up)
{
	/* Any requested capacity works; exactly that many fit without growing.
	 */
	static const size_t caps[] = {0, 1, 2, 3, 5, 64, 100};
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		pf__deque d;
		ck_assert_int_eq(pf__deque_init(&d, caps[c]), 0);
		pf__alloc_fail_at(1);
		for (uintptr_t i = 0; i < caps[c]; i++)
			ck_assert_int_eq(pf__deque_push(&d, item(i)), 0);
		ck_assert_int_eq(pf__alloc_count(), 0);
		pf__alloc_fail_at(0);
		pf__deque_destroy(&d);
	}
}
END_TEST

START_TEST(init_reports_enomem)
{
	pf__deque d;
	pf__alloc_fail_at(1);
	ck_assert_int_eq(pf__deque_init(&d, 8), PF_ENOMEM);
	pf__alloc_fail_at(0);
	ck_assert_int_eq(pf__deque_init(&d, SIZE_MAX), PF_ENOMEM);
}
END_TEST

START_TEST(failed_growth_keeps_items)
{
	pf__deque d;
	ck_assert_int_eq(pf__deque_init(&d, 4), 0);
	for (uintptr_t i = 0; i < 4; i++)
		ck_assert_int_eq(pf__deque_push(&d, item(i)), 0);
	pf__alloc_fail_at(1);
	ck_assert_int_eq(pf__deque_push(&d, item(4)), PF_ENOMEM);
	pf__alloc_fail_at(0);
	ck_assert_int_eq(pf__deque_size_hint(&d), 4);
	/* The failed item was not pushed; a retry grows and succeeds. */
	ck_assert_int_eq(pf__deque_push(&d, item(5)), 0);
	ck_assert_ptr_eq(pf__deque_take(&d), item(5));
	for (uintptr_t i = 4; i-- > 0;)
		ck_assert_ptr_eq(pf__deque_take(&d), item(i));
	ck_assert_ptr_null(pf__deque_take(&d));
	pf__deque_destroy(&d);
}
END_TEST

/* Stress: one owner pushes and takes, three thieves steal. */

#define STRESS_ITEMS 1000000L
#define STRESS_THIEVES 3

struct stress {
	pf__deque d;
	long n;
	/* Per item: how many threads got it.  Must end at exactly 1. */
	atomic_uint *seen;
	/* Set by the owner (release) once it has drained the deque. */
	atomic_bool done;
};

struct thief {
	struct stress *s;
	long stolen;
	long retries;
	/* Steals that returned an item older than the previous steal's. */
	long out_of_order;
	/* Steals that returned something that is not an item. */
	long garbage;
};

static void
mark(struct stress *s, void *x, long *garbage)
{
	uintptr_t i = item_index(x);
	if (x == NULL || i >= (uintptr_t)s->n) {
		(*garbage)++;
		return;
	}
	atomic_fetch_add_explicit(&s->seen[i], 1, memory_order_relaxed);
}

static void *
thief_main(void *arg)
{
	struct thief *th = arg;
	struct stress *s = th->s;
	uintptr_t last = 0;
	bool any = false;
	for (;;) {
		/*
		 * Acquire the flag before the final steal, so that an EMPTY
		 * after done really means the owner has finished.
		 */
		bool done =
		    atomic_load_explicit(&s->done, memory_order_acquire);
		void *x;
		int r = pf__deque_steal(&s->d, &x);
		if (r == PF__STEAL_OK) {
			mark(s, x, &th->garbage);
			/*
			 * Live items sit in the deque in push order, so one
			 * thief's successful steals only ever move forward.
			 */
			if (any && item_index(x) <= last)
				th->out_of_order++;
			last = item_index(x);
			any = true;
			th->stolen++;
		} else if (r == PF__STEAL_RETRY) {
			th->retries++;
		} else if (done) {
			break;
		}
	}
	return NULL;
}

START_TEST(every_item_taken_once)
{
	struct stress s;
	s.n = pf_test_scale(STRESS_ITEMS);
	s.seen = calloc((size_t)s.n, sizeof(*s.seen));
	ck_assert_ptr_nonnull(s.seen);
	atomic_init(&s.done, false);
	PF_ATOMIC_OBJ(&s.done); /* a C11 atomic: see src/annotate.h */
	/* Capacity 2 so that the race also covers many growths. */
	ck_assert_int_eq(pf__deque_init(&s.d, 2), 0);

	struct thief th[STRESS_THIEVES] = {0};
	pthread_t tid[STRESS_THIEVES];
	for (int i = 0; i < STRESS_THIEVES; i++) {
		th[i].s = &s;
		ck_assert_int_eq(
		    pthread_create(&tid[i], NULL, thief_main, &th[i]), 0);
	}

	/*
	 * Bursts of pushes followed by a shorter run of takes, so the deque
	 * keeps hovering near empty (where take and steal race on the last
	 * item) while slowly growing.  A fixed xorshift seed keeps runs
	 * comparable.
	 */
	uint64_t rng = 0x9E3779B97F4A7C15u;
	long taken = 0, garbage = 0, push_failed = 0;
	long next = 0;
	while (next < s.n) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		long burst = 1 + (long)(rng % 64);
		for (long k = 0; k < burst && next < s.n; k++, next++)
			if (pf__deque_push(&s.d, item((uintptr_t)next)) != 0)
				push_failed++;
		long takes = (long)((rng >> 32) % (uint64_t)(burst + 1));
		for (long k = 0; k < takes; k++) {
			void *x = pf__deque_take(&s.d);
			if (x == NULL)
				break;
			mark(&s, x, &garbage);
			taken++;
		}
	}
	for (void *x; (x = pf__deque_take(&s.d)) != NULL; taken++)
		mark(&s, x, &garbage);
	/* Publishes "drained" to the thieves' acquire loads. */
	atomic_store_explicit(&s.done, true, memory_order_release);

	long stolen = 0;
	for (int i = 0; i < STRESS_THIEVES; i++) {
		ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
		stolen += th[i].stolen;
		ck_assert_int_eq(th[i].garbage, 0);
		ck_assert_int_eq(th[i].out_of_order, 0);
	}
	ck_assert_int_eq(push_failed, 0);
	ck_assert_int_eq(garbage, 0);
	ck_assert_int_eq(taken + stolen, s.n);
	long wrong = 0, first_wrong = -1;
	for (long i = 0; i < s.n; i++) {
		if (atomic_load_explicit(&s.seen[i], memory_order_relaxed) !=
		    1) {
			if (first_wrong < 0)
				first_wrong = i;
			wrong++;
		}
	}
	ck_assert_msg(wrong == 0,
	    "%ld items not taken exactly once (first %ld)", wrong, first_wrong);
	pf__deque_destroy(&s.d);
	free(s.seen);
}
END_TEST

static Suite *
deque_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "single_thread_order", .test = take_is_lifo },
		{ .tcase = "single_thread_order", .test = steal_is_fifo },
		{ .tcase = "single_thread_order", .test = both_ends_meet },
		{ .tcase = "single_thread_order", .test = empty_returns_empty },
		{ .tcase = "growth", .test = growth_keeps_order, .setup = disarm, .teardown = disarm },
		{ .tcase = "growth", .test = capacity_rounds_up, .setup = disarm, .teardown = disarm },
		{ .tcase = "growth", .test = init_reports_enomem, .setup = disarm, .teardown = disarm },
		{ .tcase = "growth", .test = failed_growth_keeps_items, .setup = disarm, .teardown = disarm },
		{ .tcase = "owner_and_thieves_race", .test = every_item_taken_once, .timeout = 120, .tags = "stress" },
	};
	return pf_test_suite("deque", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(deque_suite());
}
