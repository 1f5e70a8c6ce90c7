/*
 * stress.h: sizes stress tests so CI can shrink them.
 *
 * CI=true divides every stress size by ten: shared CI runners are slow and
 * sanitizer builds slower still, while a local run keeps the full size.
 */
#ifndef PF_TEST_STRESS_H
#define PF_TEST_STRESS_H

#include <stdlib.h>
#include <string.h>

static inline long
pf_test_scale(long full)
{
	const char *ci = getenv("CI");
	return ci != NULL && strcmp(ci, "true") == 0 ? full / 10 : full;
}

#endif /* PF_TEST_STRESS_H */
