/*
 * engine.h: what a scope runs on: its pool, its timer wheel, its extension
 * chain, and the count of unfinished work that dispose waits for.
 *
 * Every record points at its scope's engine (pf_ctx.engine).  The scope
 * (scope.c) embeds it, starts it, closes it, and frees it with its last
 * record.  Protocol of the count against dispose: engine.c, at
 * pf__engine_enter.
 */
#ifndef PF_ENGINE_H
#define PF_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "atomics.h"
#include "common.h"
#include "ext.h"
#include "pool.h"
#include "pumped.h"
#include "stats.h"
#include "trace.h"
#include "timer.h"

typedef struct pf__stripe {
	PF_CACHE_ALIGNED atomic_long n;
} pf__stripe;

typedef struct pf__engine {
	pf__pool *pool;
	pf__timers *timers;
	unsigned threads;
	/* Open, closing (dispose began), closed (dispose returned). */
	atomic_int state;
	/* Work created and not yet finished, striped per worker (the last
	 * stripe is for threads that are not workers): a creation adds on its
	 * thread's stripe, a finish subtracts on its own, and only the sum
	 * means anything. */
	pf__stripe *unfinished;
	unsigned n_stripes;
	/* Whether worker stripes use plain stores fenced by membarrier from
	 * dispose (barrier.h); immutable once started. */
	bool asym;
	pf__exts exts;
	/* The program's thread hooks (pf_set_thread_hooks) as they were when
	 * the engine started; immutable. */
	void (*thread_start)(int index, void *data);
	void (*thread_stop)(int index, void *data);
	void *thread_data;
	/* Statistics (stats.h), or NULL while the scope keeps none; set
	 * once (pf__engine_stats_enable), freed by pf__engine_fini. */
	_Atomic(pf__stats *) stats;
	/* The timeline trace (trace.h), or NULL; set once
	 * (pf__engine_trace_start), freed by pf__engine_fini. */
	_Atomic(pf__trace *) trace;
	/* Who the trace says wrote it (pf_scope_trace_set_process), under
	 * lock; unset: this process as it is. */
	pf__trace_process trace_proc;
	bool trace_proc_set;
	pthread_mutex_t lock;  /* dispose's wait; trace_proc */
	pthread_cond_t idle;
} pf__engine;

/* Makes g usable for records (open, no threads yet); cannot fail.
 * handle: the public handle the extensions receive (ext.h). */
void pf__engine_init(pf__engine *g, void *handle);
/* Starts the timer wheel and the pool of `threads` workers (each with a
 * record slab) that runs every task with run (the execution layer's,
 * passed down by the scope), keeping statistics if stats: 0, PF_ENOMEM or
 * PF_EAGAIN, with nothing left started. */
int pf__engine_start(pf__engine *g, unsigned threads, pf__task_fn run,
    bool stats);
/* Frees what init and start made; the pool and wheel are stopped. */
void pf__engine_fini(pf__engine *g);

enum { PF__ENGINE_OPEN, PF__ENGINE_CLOSING, PF__ENGINE_CLOSED };

/* 0 while open, else PF_ESHUTDOWN. */
static inline int
pf__engine_open(const pf__engine *g)
{
	/* Acquire: pairs with the state changes in engine.c. */
	return pf__load_acquire(&((pf__engine *)g)->state) ==
		PF__ENGINE_OPEN ? 0 : PF_ESHUTDOWN;
}
/* Counts one more unfinished piece of work unless the engine is closing:
 * 0 or PF_ESHUTDOWN.  Balanced by pf__engine_finished. */
int pf__engine_enter(pf__engine *g);
/* Counts one more unfinished piece of work, never refused: only while the
 * caller's own count (work not yet visible) keeps dispose waiting.
 * Balanced by pf__engine_finished. */
void pf__engine_hold(pf__engine *g);
void pf__engine_finished(pf__engine *g);

/* Starts recording a trace to path: 0, PF_EINVAL (already recording, or
 * path cannot be written), PF_ENOMEM. */
int pf__engine_trace_start(pf__engine *g, const char *path);
/* Writes the trace (pf__trace_write) as the process set for it: 0, or
 * PF_EINVAL when off or unwritable. */
int pf__engine_trace_write(pf__engine *g);
/* The trace, or NULL while off (acquire, as pf__engine_stats). */
static inline pf__trace *
pf__engine_trace(pf__engine *g)
{
	return pf__load_acquire(&g->trace);
}

/* Starts keeping statistics (idempotent): 0 or PF_ENOMEM. */
int pf__engine_stats_enable(pf__engine *g);
/* The statistics, or NULL while off.  Acquire: a thread that sees them
 * sees them initialised; one that does not yet counts nothing. */
static inline pf__stats *
pf__engine_stats(pf__engine *g)
{
	return pf__load_acquire(&g->stats);
}

/* Dispose's steps: close (PF_ESHUTDOWN if it was not open), wait until
 * the count is 0, then stop the pool and the wheel. */
int pf__engine_close(pf__engine *g);
void pf__engine_wait_idle(pf__engine *g);
void pf__engine_stop(pf__engine *g);

#endif /* PF_ENGINE_H */
