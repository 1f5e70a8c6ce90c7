/*
 * testlib.h: what the test programs share, written once.
 *
 * - pf_test_scale: stress sizes, which CI=true divides by ten (shared CI
 *   runners are slow and sanitizer builds slower still, while a local run
 *   keeps the full size);
 * - sleep_ms;
 * - with pumped.h: pf_test_transition_ok; with pumped.h and Check's
 *   check.h as well: new_scope, a scope of n threads (0: the default) or
 *   the test fails.
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
