/*
 * stress.h: sizes stress tests so CI can shrink them.
 *
 * CI=true divides every stress size by ten: shared CI runners are slow and
 * sanitizer builds slower still, while a local run keeps the full size.
 */
#ifndef PF_TEST_STRESS_H
#define PF_TEST_STRESS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline long
pf_test_scale(long full)
{
	const char *ci = getenv("CI");
	return ci != NULL && strcmp(ci, "true") == 0 ? full / 10 : full;
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
#endif

#endif /* PF_TEST_STRESS_H */
