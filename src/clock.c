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
#include "atomics.h"
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
 * Calibration: a piecewise-linear map from raw ticks to CLOCK_MONOTONIC.
 * Segment i maps raw >= seg[i].raw (up to the next segment's start) as
 * seg[i].mono + (raw - seg[i].raw) * seg[i].ns_per_tick.  The first comes
 * from a 1 ms measurement at first use; each refinement (after 1 s, then
 * each time the process has run as long again) appends one, and segments
 * never change once published, so a timestamp converts to the same value
 * whenever it is read.  A new segment starts where the map already is
 * (continuous and monotonic), slightly ahead of now (2^22 ticks, a couple
 * of ms) so that no timestamp taken before it is published falls in it,
 * and with a rate that reaches the measured time by the next refinement
 * (slewing, as NTP does, instead of stepping).  The base point (raw0,
 * mono0) and the wall-minus-monotonic offset are fixed once.
 */
#define MAX_SEGS 48
#define SEG_AHEAD (INT64_C(1) << 22)

typedef struct clock_seg {
	int64_t raw, mono;
	double ns_per_tick;
} clock_seg;

/* A (raw, mono) pair as measured (tight_pair): one at the calibration's
 * end and one per refinement.  The segments slew between them; the pairs
 * are the truth the slewing aims at (pf__clock_raw_to_mono_measured). */
typedef struct clock_pair {
	int64_t raw, mono;
} clock_pair;
#define MAX_PAIRS (MAX_SEGS + 1)

static struct {
	pthread_once_t once;
	bool tsc;
	int64_t raw0, mono0, wall_offset;
	clock_seg seg[MAX_SEGS];
	/* Published segments: release store by the refiner, acquire loads
	 * by converters; the segments below it are immutable. */
	atomic_uint nseg;
	/* Measured pairs, published as the segments are (the refiner
	 * appends, under the refining flag). */
	clock_pair pair[MAX_PAIRS];
	atomic_uint npair;
	/* Mono ns at which the next refinement is due (relaxed hint), and
	 * the refiner's flag (one at a time). */
	_Atomic(int64_t) refine_at;
	atomic_bool refining;
	/* Set last by calibrate(), so the hot path can skip pthread_once
	 * (a call through the PLT) with one load. */
	atomic_bool ready;
} cal = { .once = PTHREAD_ONCE_INIT };

#if defined(__x86_64__) && !defined(PF_PORTABLE)
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

/* The published segments; *n gets their count (at least 1). */
static const clock_seg *
segments(unsigned *n)
{
	*n = pf__load_acquire(&cal.nseg);
	return cal.seg;
}

/* The tick rate now: the newest segment's. */
static double
slope(void)
{
	unsigned n;
	const clock_seg *seg = segments(&n);
	return seg[n - 1].ns_per_tick;
}

static void
publish_pair(int64_t raw, int64_t mono)
{
	unsigned n = atomic_load_explicit(&cal.npair, memory_order_relaxed);
	if (n == MAX_PAIRS)
		return;
	cal.pair[n] = (clock_pair){ raw, mono };
	/* Release: the pair before the count that shows it. */
	PF_HB_BEFORE(&cal.npair);
	atomic_store_explicit(&cal.npair, n + 1, memory_order_release);
}

static void
publish_seg(unsigned i, int64_t raw, int64_t mono, double ns_per_tick)
{
	cal.seg[i] = (clock_seg){ raw, mono, ns_per_tick };
	/* Release: the segment's fields before the count that shows it. */
	PF_HB_BEFORE(&cal.nseg);
	atomic_store_explicit(&cal.nseg, i + 1, memory_order_release);
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

/*
 * A pair for interpolation (pf__clock_raw_to_mono_measured): the tightest
 * of a few reads, with raw the middle of the TSC reads around the clock
 * read, so its error is half their gap (tens of ns) rather than up to the
 * whole gap that read_pair allows (2^16 ticks, ~20 us: a black-box test
 * saw trace times move by 6 us between writes with loose pairs).
 */
static void
tight_pair(int64_t *raw, int64_t *mono)
{
	int64_t best = INT64_MAX;
	for (int tries = 0; tries < 8; tries++) {
		int64_t before = read_tsc();
		int64_t m = pf__clock_mono_ns();
		int64_t after = read_tsc();
		if (after - before < best) {
			best = after - before;
			*raw = before + (after - before) / 2;
			*mono = m;
		}
		if (best < 256) /* ~0.1 us: as tight as it gets */
			break;
	}
}

static void
calibrate(void)
{
	cal.wall_offset = pf__clock_wall_ns() - pf__clock_mono_ns();
	cal.tsc = invariant_tsc();
	if (!cal.tsc) {
		publish_seg(0, 0, 0, 1.0);
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
		publish_seg(0, 0, 0, 1.0);
		return;
	}
	publish_seg(0, cal.raw0, cal.mono0,
	    (double)(mono1 - cal.mono0) / (double)(raw1 - cal.raw0));
	/* The measured pairs: the calibration's end, tight (its start, a
	 * ms earlier, adds nothing the map's first segment does not). */
	int64_t praw, pmono;
	tight_pair(&praw, &pmono);
	publish_pair(praw, pmono);
	atomic_store_explicit(&cal.refine_at, mono1 + 1000000000,
	    memory_order_relaxed);
}

static void
calibrate_once(void)
{
	PF_ATOMIC_OBJ(&cal.nseg);
	PF_ATOMIC_OBJ(&cal.npair);
	PF_ATOMIC_OBJ(&cal.refine_at);
	PF_ATOMIC_OBJ(&cal.refining);
	PF_ATOMIC_OBJ(&cal.ready);
	calibrate();
	/* Release: publishes the calibration to the acquire load below. */
	PF_HB_BEFORE(&cal.ready);
	atomic_store_explicit(&cal.ready, true, memory_order_release);
}

static inline void
ensure_calibrated(void)
{
	if (PF_LIKELY(pf__load_acquire(&cal.ready)))
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
	unsigned n;
	const clock_seg *seg = segments(&n);
	/* Most reads are of recent timestamps: search from the newest. */
	unsigned i = n - 1;
	while (i > 0 && raw < seg[i].raw)
		i--;
	return seg[i].mono + (int64_t)((double)(raw - seg[i].raw) *
	    seg[i].ns_per_tick);
}

int64_t
pf__clock_raw_span_ns(int64_t from, int64_t to)
{
	if (from == 0 || to <= from)
		return 0;
	ensure_calibrated();
	if (!cal.tsc)
		return to - from;
	unsigned n;
	const clock_seg *seg = segments(&n);
	unsigned i = n - 1;
	while (i > 0 && to < seg[i].raw)
		i--;
	return (int64_t)((double)(to - from) * seg[i].ns_per_tick);
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
pf__clock_pair_now(int64_t *raw, int64_t *mono)
{
	ensure_calibrated();
	if (cal.tsc) {
		tight_pair(raw, mono);
	} else {
		*mono = pf__clock_mono_ns();
		*raw = *mono | 1;
	}
}

int64_t
pf__clock_raw_to_mono_measured(int64_t raw, int64_t end_raw,
    int64_t end_mono)
{
	ensure_calibrated();
	if (!cal.tsc)
		return raw;
	unsigned n = pf__load_acquire(&cal.npair);
	const clock_pair *p = cal.pair;
	/* The points: the pairs measured before the end pair, then it. */
	while (n > 0 && p[n - 1].raw >= end_raw)
		n--;
	const clock_pair end = { end_raw, end_mono };
	/* The last point at or before raw (the first when raw is before all),
	 * and the one after it (the last two when raw is past the end). */
	unsigned lo = 0, hi = n; /* binary search over p[0..n) */
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;
		if (p[mid].raw <= raw)
			lo = mid;
		else
			hi = mid;
	}
	clock_pair a, b;
	if (n == 0) {
		/* No measured pair before the end: the end and the rate. */
		return end_mono - (int64_t)((double)(end_raw - raw) * slope());
	} else if (raw >= end_raw && n >= 1) {
		a = p[n - 1];
		b = end;
	} else if (lo + 1 < n) {
		a = p[lo];
		b = p[lo + 1];
	} else {
		a = p[lo];
		b = end;
	}
	if (b.raw <= a.raw)
		return a.mono + (int64_t)((double)(raw - a.raw) * slope());
	return a.mono + (int64_t)((double)(raw - a.raw) *
	    ((double)(b.mono - a.mono) / (double)(b.raw - a.raw)));
}

/* Appends a segment (see the calibration comment); the caller is the one
 * refiner.  False when the map is full. */
static bool
refine_now(void)
{
	unsigned n;
	const clock_seg *seg = segments(&n);
	if (n == MAX_SEGS)
		return false;
	int64_t raw, mono;
	read_pair(&raw, &mono);
	if (raw <= cal.raw0)
		return false;
	/* The rate over the whole run so far. */
	double rate = (double)(mono - cal.mono0) / (double)(raw - cal.raw0);
	const clock_seg *last = &seg[n - 1];
	int64_t start = raw + SEG_AHEAD;
	/* Where the map is at start (continuity), and where it should be. */
	int64_t at = last->mono +
	    (int64_t)((double)(start - last->raw) * last->ns_per_tick);
	int64_t truth = mono + (int64_t)((double)SEG_AHEAD * rate);
	/* Close the gap by the next refinement, as long a run again. */
	double period = (double)(mono - cal.mono0);
	if (period < 1e9)
		period = 1e9;
	double s = rate + (double)(truth - at) / (period / rate);
	/* Slew, never step or stall: within 10% of the measured rate. */
	if (s > rate * 1.1)
		s = rate * 1.1;
	if (s < rate * 0.9)
		s = rate * 0.9;
	publish_seg(n, start, at, s);
	int64_t praw, pmono;
	tight_pair(&praw, &pmono);
	publish_pair(praw, pmono);
	atomic_store_explicit(&cal.refine_at, mono + (int64_t)period,
	    memory_order_relaxed);
	return true;
}

void
pf__clock_refine(void)
{
	ensure_calibrated();
	if (!cal.tsc)
		return;
	/* Relaxed: a hint; the flag below decides who refines. */
	if (pf__clock_mono_ns() < atomic_load_explicit(&cal.refine_at,
		memory_order_relaxed))
		return;
	if (atomic_exchange_explicit(&cal.refining, true,
		memory_order_acquire))
		return;
	/* Acquire/release on the flag: one refiner at a time, and each sees
	 * the segments the previous one appended.  Re-checked by the one
	 * refiner. */
	if (pf__clock_mono_ns() >= atomic_load_explicit(&cal.refine_at,
		memory_order_relaxed))
		(void)refine_now();
	atomic_store_explicit(&cal.refining, false, memory_order_release);
}

#ifdef PF_TESTING
bool
pf__clock_refine_for_test(void)
{
	ensure_calibrated();
	/* The refiner's flag, as in pf__clock_refine(). */
	if (!cal.tsc || atomic_exchange_explicit(&cal.refining, true,
		memory_order_acquire))
		return false;
	bool done = refine_now();
	atomic_store_explicit(&cal.refining, false, memory_order_release);
	return done;
}

bool
pf__clock_slew_for_test(double factor)
{
	ensure_calibrated();
	if (!cal.tsc || atomic_exchange_explicit(&cal.refining, true,
		memory_order_acquire))
		return false;
	unsigned n;
	const clock_seg *seg = segments(&n);
	bool done = n < MAX_SEGS;
	if (done) {
		const clock_seg *last = &seg[n - 1];
		int64_t start = pf__clock_raw() + SEG_AHEAD;
		publish_seg(n, start, last->mono + (int64_t)((double)(start -
		    last->raw) * last->ns_per_tick), last->ns_per_tick * factor);
	}
	atomic_store_explicit(&cal.refining, false, memory_order_release);
	return done;
}
#endif
