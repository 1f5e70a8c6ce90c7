/*
 * testlib.h: what the test programs share, written once.
 *
 * - pf_test_scale: stress sizes, which CI=true divides by ten (shared CI
 *   runners are slow and sanitizer builds slower still, while a local run
 *   keeps the full size);
 * - sleep_ms;
 * - with Check's check.h: pf_test, pf_test_suite and pf_test_run (a
 *   suite declared as one table, and the main of every test program);
 * - with pumped.h: pf_test_transition_ok; with pumped.h and check.h as
 *   well: new_scope, a scope of n threads (0: the default) or the test
 *   fails.
 */
#ifndef PF_TEST_TESTLIB_H
#define PF_TEST_TESTLIB_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline long
pf_test_scale(long full)
{
	const char *ci = getenv("CI");
	return ci != NULL && strcmp(ci, "true") == 0 ? full / 10 : full;
}

/* Sleeps ms milliseconds, resuming after signals. */
static inline void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

#ifdef CHECK_H
/*
 * A suite as one table, in the suite function (an automatic array: Check's
 * test names are not constant expressions).  Each row adds one test to the
 * Check test case `tcase`; consecutive rows with the same tcase form one
 * test case, whose timeout (s; 0: Check's default), tags and checked
 * fixture are its first row's.  loop > 0 adds a loop test over [0, loop).
 */
typedef struct pf_test {
	const char *tcase;
	const TTest *test;
	double timeout;
	int loop;
	const char *tags;
	SFun setup, teardown;
} pf_test;

static inline Suite *
pf_test_suite(const char *name, const pf_test *t, size_t n)
{
	Suite *s = suite_create(name);
	TCase *tc = NULL;
	for (size_t i = 0; i < n; i++) {
		if (tc == NULL || strcmp(t[i].tcase, t[i - 1].tcase) != 0) {
			tc = tcase_create(t[i].tcase);
			if (t[i].timeout > 0)
				tcase_set_timeout(tc, t[i].timeout);
			if (t[i].tags != NULL)
				tcase_set_tags(tc, t[i].tags);
			if (t[i].setup != NULL || t[i].teardown != NULL)
				tcase_add_checked_fixture(tc, t[i].setup,
				    t[i].teardown);
			suite_add_tcase(s, tc);
		}
		if (t[i].loop > 0)
			tcase_add_loop_test(tc, t[i].test, 0, t[i].loop);
		else
			tcase_add_test(tc, t[i].test);
	}
	return s;
}

/* Runs suite s: the exit status of a test program. */
static inline int
pf_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
#endif

/*
 * Whether status st may be the (prev+1)-th transition a status callback
 * sees (prev counts the ones before): pending first, then running, then
 * one terminal status; cancelled may also come straight after pending.
 */
#ifdef PUMPED_H
static inline bool
pf_test_transition_ok(int prev, pf_status st)
{
	switch (st) {
	case PF_PENDING:
		return prev == 0;
	case PF_RUNNING:
		return prev == 1;
	case PF_CANCELLED:
		return prev == 1 || prev == 2;
	case PF_COMPLETED:
	case PF_FAILED:
		return prev == 2;
	}
	return false;
}

#ifdef CHECK_H
static inline pf_scope *
new_scope(unsigned threads)
{
	pf_scope_options o = { .threads = threads };
	pf_scope *s = NULL;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}
#endif
#endif /* PUMPED_H */

#endif /* PF_TEST_TESTLIB_H */
