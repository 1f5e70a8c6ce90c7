/*
 * clock.h: wall and monotonic clocks in nanoseconds.
 *
 * Both read the vDSO (no system call on Linux x86-64/aarch64).  Any thread.
 */
#ifndef PF_CLOCK_H
#define PF_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t pf__clock_wall_ns(void);
/* Nanoseconds on CLOCK_MONOTONIC: for deadlines and durations. */
int64_t pf__clock_mono_ns(void);

/*
 * Raw timestamps, for the hot path.  On x86-64 with an invariant TSC a raw
 * timestamp is the time-stamp counter (one instruction, no vDSO call,
 * which costs ~100 ns on some virtual machines); elsewhere it is
 * CLOCK_MONOTONIC nanoseconds.  Raw values are never 0 and convert to
 * nanoseconds only when someone reads them.  The tick rate is calibrated
 * against CLOCK_MONOTONIC on first use (about 1 ms) and refined later
 * against an ever longer baseline, without changing how an existing value
 * converts (clock.c: a piecewise-linear map).  Any thread.
 */
int64_t pf__clock_raw(void);
/* raw -> CLOCK_MONOTONIC ns and -> ns since the Unix epoch.  0 -> 0. */
int64_t pf__clock_raw_to_mono(int64_t raw);
int64_t pf__clock_raw_to_wall(int64_t raw);
/*
 * raw -> CLOCK_MONOTONIC ns for a raw value close to now (within a few
 * ms), without reading CLOCK_MONOTONIC each time: each thread keeps an
 * anchor pair (raw, mono) read together and renewed once it is over 1 ms
 * old, and converts only the short distance from it.  Exact to the tick
 * rate over that distance, unlike pf__clock_raw_to_mono, whose error grows
 * with the distance from the calibration point.
 */
int64_t pf__clock_raw_to_mono_near(int64_t raw);
/* Nanoseconds from raw `from` to raw `to`, at the tick rate in force at
 * `to` (one lookup, no conversion of either end); 0 when from is 0 or to
 * is not later.  For durations that need no calibration-point accuracy:
 * statistics, probes.  A span that crosses refinements takes the last
 * rate for all of it (off by as much as the rates differ, up to the first
 * calibration's error): long spans, as a trace's times since its origin,
 * convert both ends with pf__clock_raw_to_mono instead. */
int64_t pf__clock_raw_span_ns(int64_t from, int64_t to);
/* A raw timestamp and CLOCK_MONOTONIC ns read together now: the tightest
 * of a few reads, raw in the middle of the TSC reads around the clock
 * read (within tens of ns of each other, unless preempted every time). */
void pf__clock_pair_now(int64_t *raw, int64_t *mono);
/*
 * raw -> CLOCK_MONOTONIC ns, interpolated linearly between the pairs
 * measured so far (the calibration's ends, one per refinement) and
 * (end_raw, end_mono), a pair read after raw (pf__clock_pair_now).  Exact
 * at each measured pair, so free of the map's slewing, whose error grows
 * to the first calibration's error times the time to the first
 * refinement (about 100 us at 1 s under load); but a value may read
 * differently once a later pair exists.  For times converted after the
 * fact, all against one end pair: traces.
 */
int64_t pf__clock_raw_to_mono_measured(int64_t raw, int64_t end_raw,
    int64_t end_mono);
/* Refines the map when a refinement is due (1 s after the first use, then
 * each time the process has run as long again).  Cheap to call often (a
 * clock read, one load and a compare when nothing is due).  A timestamp
 * converts to the same value before and after. */
void pf__clock_refine(void);
#ifdef PF_TESTING
/* Tests only: refines now, whatever the time; false when it could not
 * (no TSC, a refinement in progress, or the map is full). */
bool pf__clock_refine_for_test(void);
/* Tests only: appends a segment whose rate is the newest one's times
 * factor, as a refinement slewing after a bad calibration would; false
 * when it could not (as above). */
bool pf__clock_slew_for_test(double factor);
#endif

#endif /* PF_CLOCK_H */
