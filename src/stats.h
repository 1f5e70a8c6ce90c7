/*
 * stats.h: a scope's statistics (pf_scope_stats): counters per flow and
 * log-linear histograms of pending and run time, kept per thread and
 * summed when read.
 *
 * Each worker of the scope's pool owns one shard and writes it with plain
 * loads and stores (relaxed atomics, no locked instruction); threads that
 * are not its workers (outside callers running work inline, the timer
 * thread cancelling) share one more shard under a mutex.  A reader sums
 * every shard without stopping anyone: each counter it reads is exact as of
 * some recent moment, and all of them are exact once the scope is idle.
 *
 * Histograms: values below 32 ns have a bucket each; above, each power of
 * two is cut into 32 buckets, and a bucket reads as its midpoint, so a
 * percentile is within 1/64 (1.6%) of a recorded value.  Values from 2^44
 * ns (4.9 hours) on share the last bucket; the maximum is kept exactly.
 */
#ifndef PF_STATS_H
#define PF_STATS_H

#include <stdint.h>

#include "pool.h"
#include "pumped.h"

typedef struct pf__stats pf__stats;

enum {
	PF__STAT_CREATED,
	PF__STAT_STARTED,
	PF__STAT_COMPLETED,
	PF__STAT_FAILED,
	PF__STAT_CANCELLED,
	PF__STAT_TIMED_OUT,
	PF__STAT_COUNT
};

/* Statistics for a pool of max_workers workers; NULL when out of memory. */
pf__stats *pf__stats_new(unsigned max_workers);
/* After every thread that records has stopped. */
void pf__stats_free(pf__stats *st);

/* Counts an execution of f created (PF__STAT_CREATED), on the calling
 * thread (w: its worker in the scope's pool, or NULL). */
void pf__stats_created(pf__stats *st, pf__worker *w, const pf_flow *f);
/* Counts a start after pending_ns queued. */
void pf__stats_started(pf__stats *st, pf__worker *w, const pf_flow *f,
    int64_t pending_ns);
/* Counts a terminal status (PF_COMPLETED, PF_FAILED, PF_CANCELLED) with
 * its error code and its run time (-1: it never started). */
void pf__stats_finished(pf__stats *st, pf__worker *w, const pf_flow *f,
    pf_status status, int error, int64_t run_ns);

/* Fills out and up to max_flows entries of flows (public API). */
void pf__stats_read(pf__stats *st, pf_stats *out, pf_flow_stats *flows,
    size_t max_flows);

#ifdef PF_TESTING
/* Tests: the histogram's bucket of v and the value a bucket reads as. */
unsigned pf__hist_bucket(uint64_t v);
uint64_t pf__hist_value(unsigned bucket);
#endif

#endif /* PF_STATS_H */
