/*
 * clock.h: wall and monotonic clocks in nanoseconds.
 *
 * Both read the vDSO (no system call on Linux x86-64/aarch64).  Any thread.
 */
#ifndef PF_CLOCK_H
#define PF_CLOCK_H

#include <stdint.h>

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t pf__clock_wall_ns(void);
/* Nanoseconds on CLOCK_MONOTONIC: for deadlines and durations. */
int64_t pf__clock_mono_ns(void);

#endif /* PF_CLOCK_H */
