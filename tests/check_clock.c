/*
 * check_clock.c: the two clocks read sane values.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

START_TEST(mono_never_goes_back)
{
	int64_t prev = pf__clock_mono_ns();
	for (int i = 0; i < 100000; i++) {
		int64_t now = pf__clock_mono_ns();
		ck_assert_int_ge(now, prev);
		prev = now;
	}
}
END_TEST

START_TEST(mono_advances)
{
	int64_t a = pf__clock_mono_ns();
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
	int64_t b = pf__clock_mono_ns();
	ck_assert_int_ge(b - a, 2000000);
}
END_TEST

START_TEST(wall_matches_time)
{
	/* time() truncates, so the two can be up to a second apart. */
	int64_t before = (int64_t)time(NULL);
	int64_t wall_s = pf__clock_wall_ns() / 1000000000;
	int64_t after = (int64_t)time(NULL);
	ck_assert_int_ge(wall_s, before - 1);
	ck_assert_int_le(wall_s, after + 1);
}
END_TEST

static Suite *
clock_suite(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("monotonic");
	tcase_add_test(tc, mono_never_goes_back);
	tcase_add_test(tc, mono_advances);
	suite_add_tcase(s, tc);
	tc = tcase_create("wall");
	tcase_add_test(tc, wall_matches_time);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(clock_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
