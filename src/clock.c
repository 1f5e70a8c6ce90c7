/*
 * clock.c: wall and monotonic clocks in nanoseconds.
 *
 * clock_gettime() on CLOCK_REALTIME and CLOCK_MONOTONIC is served by the vDSO
 * on Linux, so neither call enters the kernel.  The coarse clocks would be
 * cheaper still but tick only every few milliseconds, too coarse for timers
 * and for the millisecond field of UUIDv7.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "clock.h"

#include <time.h>

#include "common.h"

static int64_t
read_ns(clockid_t id)
{
	struct timespec ts;

	/*
	 * Both clocks exist on every Linux the library supports, so failure is
	 * a broken environment, not an input error.
	 */
	int rc = clock_gettime(id, &ts);
	pf__assert(rc == 0);
	(void)rc;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
pf__clock_wall_ns(void)
{
	return read_ns(CLOCK_REALTIME);
}

int64_t
pf__clock_mono_ns(void)
{
	return read_ns(CLOCK_MONOTONIC);
}
