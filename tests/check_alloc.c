/*
 * check_alloc.c: the wrappers allocate, and fault injection fails exactly
 * the armed allocation.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "testlib.h"

/* Each test starts disarmed, whatever the previous one left behind. */
static void
disarm(void)
{
	pf__alloc_fail_at(0);
}

START_TEST(wrappers_allocate)
{
	char *p = pf__malloc(16);
	ck_assert_ptr_nonnull(p);
	memcpy(p, "0123456789abcde", 16);
	ck_assert_str_eq(p, "0123456789abcde");
	pf__free(p);

	int *z = pf__calloc(100, sizeof(int));
	ck_assert_ptr_nonnull(z);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(z[i], 0);
	pf__free(z);

	for (size_t align = sizeof(void *); align <= 4096; align *= 2) {
		void *a = pf__aligned_alloc(align, 3);
		ck_assert_ptr_nonnull(a);
		ck_assert_uint_eq((uintptr_t)a % align, 0);
		pf__free(a);
	}

	char *s = pf__strdup("pumped");
	ck_assert_str_eq(s, "pumped");
	pf__free(s);
	pf__free(NULL);
}
END_TEST

START_TEST(fail_at_one_fails_next)
{
	pf__alloc_fail_at(1);
	ck_assert_ptr_null(pf__malloc(8));
	/* Only the armed allocation fails. */
	void *p = pf__malloc(8);
	ck_assert_ptr_nonnull(p);
	pf__free(p);
}
END_TEST

START_TEST(fail_at_n_fails_nth)
{
	pf__alloc_fail_at(3);
	void *a = pf__calloc(1, 8);
	char *b = pf__strdup("x");
	void *c = pf__aligned_alloc(64, 64);
	void *d = pf__malloc(8);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(d);
	pf__free(a);
	pf__free(b);
	pf__free(d);
}
END_TEST

START_TEST(count_counts_attempts)
{
	pf__alloc_fail_at(0);
	ck_assert_int_eq(pf__alloc_count(), 0);
	void *a = pf__malloc(1);
	void *b = pf__calloc(1, 1);
	pf__free(a);
	pf__free(b);
	ck_assert_int_eq(pf__alloc_count(), 2);
	/* Failed attempts count too; arming resets the count. */
	pf__alloc_fail_at(1);
	ck_assert_ptr_null(pf__malloc(1));
	ck_assert_int_eq(pf__alloc_count(), 1);
}
END_TEST

START_TEST(fail_at_zero_disables)
{
	pf__alloc_fail_at(1);
	pf__alloc_fail_at(0);
	for (int i = 0; i < 1000; i++) {
		void *p = pf__malloc(8);
		ck_assert_ptr_nonnull(p);
		pf__free(p);
	}
}
END_TEST

#define THREADS 4
#define PER_THREAD 1000

static void *
alloc_worker(void *arg)
{
	long *nulls = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		void *p = pf__malloc(8);
		if (p == NULL)
			(*nulls)++;
		pf__free(p);
	}
	return NULL;
}

START_TEST(threads_fail_exactly_once)
{
	pthread_t th[THREADS];
	long nulls[THREADS] = {0};

	pf__alloc_fail_at(THREADS * PER_THREAD / 2);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, alloc_worker, &nulls[i]), 0);
	long total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		total += nulls[i];
	}
	ck_assert_int_eq(total, 1);
	ck_assert_int_eq(pf__alloc_count(), THREADS * PER_THREAD);
}
END_TEST

static Suite *
alloc_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "wrappers", .test = wrappers_allocate, .setup = disarm, .teardown = disarm },
		{ .tcase = "fault_injection", .test = fail_at_one_fails_next, .setup = disarm, .teardown = disarm },
		{ .tcase = "fault_injection", .test = fail_at_n_fails_nth, .setup = disarm, .teardown = disarm },
		{ .tcase = "fault_injection", .test = count_counts_attempts, .setup = disarm, .teardown = disarm },
		{ .tcase = "fault_injection", .test = fail_at_zero_disables, .setup = disarm, .teardown = disarm },
		{ .tcase = "fault_injection", .test = threads_fail_exactly_once, .setup = disarm, .teardown = disarm },
	};
	return pf_test_suite("alloc", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(alloc_suite());
}
