/*
 * check_clock.c: the two clocks read sane values; the raw (TSC) clock's
 * map to CLOCK_MONOTONIC is stable, monotonic and close.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "testlib.h"

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


/* A timestamp converts to the same value whenever it is read: refining
 * the map (here forced, ten times) never changes an existing value. */
START_TEST(raw_conversion_is_stable_across_refinements)
{
	enum { N = 10 };
	int64_t raw[N], mono[N];
	for (int i = 0; i < N; i++) {
		raw[i] = pf__clock_raw();
		mono[i] = pf__clock_raw_to_mono(raw[i]);
		sleep_ms(2);
		(void)pf__clock_refine_for_test();
		for (int j = 0; j <= i; j++)
			ck_assert_int_eq(pf__clock_raw_to_mono(raw[j]),
			    mono[j]);
	}
}
END_TEST

/* The map is monotonic, across segment boundaries too. */
START_TEST(raw_conversion_is_monotonic)
{
	int64_t prev_raw = pf__clock_raw();
	int64_t prev = pf__clock_raw_to_mono(prev_raw);
	for (int i = 0; i < 200000; i++) {
		if (i % 20000 == 0)
			(void)pf__clock_refine_for_test();
		int64_t raw = pf__clock_raw();
		if (raw < prev_raw)
			continue; /* another CPU's TSC, a few ticks behind */
		int64_t now = pf__clock_raw_to_mono(raw);
		ck_assert_int_ge(now, prev);
		prev = now;
		prev_raw = raw;
	}
}
END_TEST

/* And it stays close to CLOCK_MONOTONIC: within 5% of the time elapsed
 * since the first conversion (the first calibration takes 1 ms; a
 * preemption inside it can skew it that much), and after a refinement it
 * slews back. */
START_TEST(raw_conversion_tracks_monotonic)
{
	int64_t r0 = pf__clock_raw();
	int64_t m0 = pf__clock_mono_ns();
	for (int i = 0; i < 5; i++) {
		sleep_ms(20);
		(void)pf__clock_refine_for_test();
		int64_t r = pf__clock_raw();
		int64_t m = pf__clock_mono_ns();
		int64_t d_raw = pf__clock_raw_to_mono(r) -
		    pf__clock_raw_to_mono(r0);
		int64_t d_mono = m - m0;
		int64_t err = d_raw > d_mono ? d_raw - d_mono : d_mono - d_raw;
		ck_assert_msg(err <= d_mono / 20 + 1000000,
		    "raw clock off by %lld ns over %lld ns", (long long)err,
		    (long long)d_mono);
	}
}
END_TEST

static Suite *
clock_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "monotonic", .test = mono_never_goes_back },
		{ .tcase = "monotonic", .test = mono_advances },
		{ .tcase = "wall", .test = wall_matches_time },
		{ .tcase = "raw", .test = raw_conversion_is_stable_across_refinements, .timeout = 30 },
		{ .tcase = "raw", .test = raw_conversion_is_monotonic, .timeout = 30 },
		{ .tcase = "raw", .test = raw_conversion_tracks_monotonic, .timeout = 30 },
	};
	return pf_test_suite("clock", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(clock_suite());
}
