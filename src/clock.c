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

#include "config.h"

#include "clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "annotate.h"
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

/* ------------------------------------------------------------------ raw */

/*
 * Calibration.  Base point (raw0, mono0) and the wall-minus-monotonic
 * offset are fixed once; only the slope (ns per tick, as the bits of a
 * double) is refined, always measured from the base point, so every
 * refinement uses a longer baseline than the one before.  Readers load the
 * slope relaxed: any published value is a valid approximation, and the
 * base fields are written before the once-flag publishes them.
 */
static struct {
	pthread_once_t once;
	bool tsc;
	int64_t raw0, mono0, wall_offset;
	_Atomic(uint64_t) slope_bits;
	_Atomic(int64_t) refined_at; /* mono ns of the last refinement */
	/* Set last by calibrate(), so the hot path can skip pthread_once
	 * (a call through the PLT) with one load. */
	atomic_bool ready;
} cal = { .once = PTHREAD_ONCE_INIT };

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>

static bool
invariant_tsc(void)
{
	unsigned a, b, c, d;
	/* CPUID 0x80000007 EDX bit 8: the TSC ticks at a constant rate in
	 * every P-, C- and T-state. */
	if ((unsigned)__get_cpuid_max(0x80000000u, NULL) < 0x80000007u)
		return false;
	__cpuid(0x80000007, a, b, c, d);
	return (d & (1u << 8)) != 0;
}

static int64_t
read_tsc(void)
{
	return (int64_t)(__rdtsc() & INT64_MAX);
}
#else
static bool
invariant_tsc(void)
{
	return false;
}

static int64_t
read_tsc(void)
{
	return 0;
}
#endif

static double
slope(void)
{
	uint64_t bits = atomic_load_explicit(&cal.slope_bits,
	    memory_order_relaxed);
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

static void
set_slope(double d)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(d));
	atomic_store_explicit(&cal.slope_bits, bits, memory_order_relaxed);
}

/*
 * A (TSC, CLOCK_MONOTONIC) pair read together: TSC first, so that mono may
 * only overstate the monotonic time of raw (by the gap between the reads),
 * never understate it; a deadline computed from the pair is never early.
 * A pair whose reads lie far apart (the thread was preempted between them)
 * is read again, a few times at most, to keep it exact.
 */
static void
read_pair(int64_t *raw, int64_t *mono)
{
	for (int tries = 0;; tries++) {
		int64_t before = read_tsc();
		int64_t m = pf__clock_mono_ns();
		int64_t after = read_tsc();
		*raw = before;
		*mono = m;
		/* 2^16 ticks: about 20 us at the TSC rates of today. */
		if (after - before < (1 << 16) || tries == 3)
			return;
	}
}

static void
calibrate(void)
{
	cal.wall_offset = pf__clock_wall_ns() - pf__clock_mono_ns();
	cal.tsc = invariant_tsc();
	if (!cal.tsc) {
		set_slope(1.0);
		return;
	}
	read_pair(&cal.raw0, &cal.mono0);
	int64_t raw1, mono1;
	do
		read_pair(&raw1, &mono1);
	while (mono1 - cal.mono0 < 1000000);
	if (raw1 <= cal.raw0) {
		/* A TSC that does not advance is unusable. */
		cal.tsc = false;
		set_slope(1.0);
		return;
	}
	set_slope((double)(mono1 - cal.mono0) / (double)(raw1 - cal.raw0));
	atomic_store_explicit(&cal.refined_at, mono1, memory_order_relaxed);
}

static void
calibrate_once(void)
{
	PF_ATOMIC_OBJ(&cal.slope_bits); /* refined while others read it */
	PF_ATOMIC_OBJ(&cal.refined_at);
	PF_ATOMIC_OBJ(&cal.ready);
	calibrate();
	/* Release: publishes the calibration to the acquire load below. */
	PF_HB_BEFORE(&cal.ready);
	atomic_store_explicit(&cal.ready, true, memory_order_release);
}

static inline void
ensure_calibrated(void)
{
	if (PF_LIKELY(PF_ACQUIRED(&cal.ready,
		atomic_load_explicit(&cal.ready, memory_order_acquire))))
		return;
	pthread_once(&cal.once, calibrate_once);
	PF_HB_AFTER(&cal.ready); /* pthread_once orders it too */
}

int64_t
pf__clock_raw(void)
{
	ensure_calibrated();
	if (PF_LIKELY(cal.tsc))
		return read_tsc() | 1; /* never 0 */
	return pf__clock_mono_ns() | 1;
}

int64_t
pf__clock_raw_to_mono(int64_t raw)
{
	if (raw == 0)
		return 0;
	ensure_calibrated();
	if (!cal.tsc)
		return raw;
	return cal.mono0 + (int64_t)((double)(raw - cal.raw0) * slope());
}

int64_t
pf__clock_raw_to_mono_near(int64_t raw)
{
	static _Thread_local struct {
		int64_t raw, mono;
	} anchor PF_TLS_MODEL;
	ensure_calibrated();
	if (!cal.tsc)
		return raw;
	double ns_per_tick = slope();
	int64_t dist = raw - anchor.raw;
	if (anchor.raw == 0 ||
	    (double)(dist < 0 ? -dist : dist) * ns_per_tick > 1000000.0) {
		/* TSC first (read_pair): reading the monotonic clock first
		 * understated the time by as much as a preemption between the
		 * reads: a 30 ms timeout fired after 28.2 ms that way, under
		 * TSan on a loaded machine. */
		read_pair(&anchor.raw, &anchor.mono);
		dist = raw - anchor.raw;
	}
	return anchor.mono + (int64_t)((double)dist * ns_per_tick);
}

int64_t
pf__clock_raw_to_wall(int64_t raw)
{
	if (raw == 0)
		return 0;
	return pf__clock_raw_to_mono(raw) + cal.wall_offset;
}

void
pf__clock_refine(void)
{
	ensure_calibrated();
	if (!cal.tsc)
		return;
	int64_t last = atomic_load_explicit(&cal.refined_at,
	    memory_order_relaxed);
	int64_t now = pf__clock_mono_ns();
	if (now - last < 1000000000)
		return;
	/* Only the thread that wins the CAS refines; relaxed, as the slope
	 * is an approximation whichever refinement lands last. */
	if (!atomic_compare_exchange_strong_explicit(&cal.refined_at, &last,
		now, memory_order_relaxed, memory_order_relaxed))
		return;
	int64_t raw;
	read_pair(&raw, &now);
	if (raw > cal.raw0)
		set_slope((double)(now - cal.mono0) / (double)(raw - cal.raw0));
}
