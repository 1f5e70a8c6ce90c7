/*
 * engine.c: a scope's runtime and its count of unfinished work (engine.h).
 *
 * Entering against dispose:
 *
 *   creator (pf__engine_enter)         dispose (pf__engine_close)
 *   stripe += 1                        state := CLOSING (seq_cst)
 *   StoreLoad                          StoreLoad
 *   load state                         sum the stripes
 *
 * Either the creator sees CLOSING and backs out, or dispose's sum counts
 * the work it is creating: dispose never tears the pool down under a
 * creation in progress.  Why a sum of stripes read one by one is exact
 * when it reads 0: all work counted was entered before the state store
 * (later entries back out), so its increment is visible to all of
 * dispose's loads; a decrement seen implies its increment was seen too.
 * So the sum is at least the amount of work whose finish dispose has not
 * seen, and 0 means none is left.
 *
 * The StoreLoad barriers.  A worker's stripe is written only by that
 * worker, so with membarrier(2) available it is a plain load and store,
 * and the creator's barrier is a compiler barrier: dispose pays instead
 * with pf__barrier_heavy() (barrier.h).  Otherwise (outside threads share
 * a stripe; old kernels; TSan) the stripe is a seq_cst RMW and the loads
 * are seq_cst.  Finishers' decrements become visible without a barrier,
 * so dispose re-sums on a short timed wait as well as on broadcasts.
 */
#include "config.h"

#include <time.h>

#include "alloc.h"
#include "atomics.h"
#include "barrier.h"
#include "clock.h"
#include "engine.h"
#include "env.h"
#include "record.h"

/* Spare workers allowed beyond the base count (PUMPED_MAX_SPARE). */
#define DEFAULT_MAX_SPARE 256

/* The program's thread hooks (pf_set_thread_hooks), copied by each engine
 * when it starts. */
static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void (*start)(int index, void *data);
	void (*stop)(int index, void *data);
	void *data;
} hooks;

void
pf_set_thread_hooks(void (*on_start)(int index, void *data),
    void (*on_stop)(int index, void *data), void *data)
{
	pthread_mutex_lock(&hooks_lock);
	hooks.start = on_start;
	hooks.stop = on_stop;
	hooks.data = data;
	pthread_mutex_unlock(&hooks_lock);
}

/* A worker's first and last steps: its record slab, then the program's
 * hook; at the end the hook first, while the slab still serves it. */
static void
worker_start(pf__worker *w, void *arg)
{
	pf__engine *g = arg;
	pf__record_worker_start(w, NULL);
	if (g->thread_start != NULL)
		g->thread_start((int)w->index, g->thread_data);
}

static void
worker_stop(pf__worker *w, void *arg)
{
	pf__engine *g = arg;
	if (g->thread_stop != NULL)
		g->thread_stop((int)w->index, g->thread_data);
	pf__record_worker_stop(w, NULL);
}

void
pf__engine_init(pf__engine *g, void *handle)
{
	g->pool = NULL;
	g->timers = NULL;
	g->threads = 0;
	pf__atomic_init(&g->state, PF__ENGINE_OPEN);
	g->unfinished = NULL;
	g->n_stripes = 0;
	g->asym = false;
	pf__atomic_init(&g->stats, NULL);
	pf__atomic_init(&g->trace, NULL);
	pf__ext_init(&g->exts, handle);
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->idle, &ca);
	pthread_condattr_destroy(&ca);
}

int
pf__engine_start(pf__engine *g, unsigned threads, pf__task_fn run,
    bool stats)
{
	g->threads = threads;
	pthread_mutex_lock(&hooks_lock);
	g->thread_start = hooks.start;
	g->thread_stop = hooks.stop;
	g->thread_data = hooks.data;
	pthread_mutex_unlock(&hooks_lock);
	int rc = pf__timers_start(&g->timers);
	if (rc != 0)
		goto fail;
	pf__pool_config cfg = {
		.threads = threads,
		.max_spare = (unsigned)pf__env_uint("PUMPED_MAX_SPARE", 0,
		    PF__MAX_THREADS, DEFAULT_MAX_SPARE),
		.stack_size = (size_t)pf__env_uint("PUMPED_STACK_KB", 64,
				  1u << 20, 8192) * 1024,
		.run = run,
		.on_start = worker_start,
		.on_stop = worker_stop,
		.hook_arg = g,
		.counting = stats,
	};
	rc = pf__pool_create(&g->pool, &cfg);
	if (rc != 0)
		goto stop_timers;
	g->asym = pf__barrier_init();
	g->n_stripes = g->pool->max_workers + 1;
	g->unfinished = pf__aligned_alloc(PF_CACHELINE,
	    g->n_stripes * sizeof(*g->unfinished));
	if (g->unfinished == NULL) {
		rc = PF_ENOMEM;
		goto destroy_pool;
	}
	for (unsigned i = 0; i < g->n_stripes; i++)
		pf__atomic_init(&g->unfinished[i].n, 0);
	if (stats && (rc = pf__engine_stats_enable(g)) != 0)
		goto free_stripes;
	return 0;

free_stripes:
	pf__free(g->unfinished);
	g->unfinished = NULL;
destroy_pool:
	pf__pool_destroy(g->pool);
	g->pool = NULL;
stop_timers:
	pf__timers_stop(g->timers);
	g->timers = NULL;
fail:
	return rc;
}

void
pf__engine_fini(pf__engine *g)
{
	pf__ext_fini(&g->exts);
	pf__free(g->unfinished); /* kept until now: late callers still count */
	/* Every recording thread has stopped. */
	pf__stats_free(pf__load_relaxed(&g->stats));
	pf__trace_free(pf__load_relaxed(&g->trace));
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->idle);
}

int
pf__engine_trace_start(pf__engine *g, const char *path)
{
	if (pf__engine_trace(g) != NULL)
		return PF_EINVAL;
	int rc;
	pf__trace *t = pf__trace_new(path, g->threads, g->pool->max_workers,
	    pf__clock_raw(), &rc);
	if (t == NULL)
		return rc;
	pf__trace *none = NULL;
	/* Release: as for the statistics below. */
	if (!atomic_compare_exchange_strong_explicit(&g->trace, &none, t,
		memory_order_acq_rel, memory_order_acquire)) {
		pf__trace_free(t);
		return PF_EINVAL;
	}
	return 0;
}

int
pf__engine_trace_write(pf__engine *g)
{
	pf__trace *t = pf__engine_trace(g);
	if (t == NULL)
		return PF_EINVAL;
	pf__trace_process p;
	pthread_mutex_lock(&g->lock);
	bool set = g->trace_proc_set;
	if (set)
		p = g->trace_proc;
	pthread_mutex_unlock(&g->lock);
	return pf__trace_write(t, set ? &p : NULL);
}

int
pf__engine_stats_enable(pf__engine *g)
{
	if (pf__engine_stats(g) != NULL)
		return 0;
	pf__stats *st = pf__stats_new(g->pool->max_workers);
	if (st == NULL)
		return PF_ENOMEM;
	pf__stats *none = NULL;
	/* Release: the recorders' acquire loads (pf__engine_stats) find it
	 * initialised.  A racing enable that lost frees its own. */
	if (!atomic_compare_exchange_strong_explicit(&g->stats, &none, st,
		memory_order_acq_rel, memory_order_acquire)) {
		pf__stats_free(st);
		return 0;
	}
	pf__pool_set_counting(g->pool);
	return 0;
}

static void
stripe_add(pf__engine *g, long d)
{
	pf__worker *w = pf__pool_current(g->pool);
	if (w != NULL && g->asym) {
		pf__stripe *st = &g->unfinished[w->index];
		/* A load and a store: only this worker writes its stripe.
		 * Release (a plain store on x86): what the worker wrote
		 * before finishing happens before dispose's later work (the
		 * extensions' dispose callbacks), which read the sum with
		 * acquire. */
		pf__store_release(&st->n, pf__load_relaxed(&st->n) + d);
		pf__barrier_light();
		return;
	}
	pf__stripe *st = &g->unfinished[w != NULL ? w->index :
	    g->n_stripes - 1];
	PF_HB_BEFORE(&st->n); /* for unfinished_sum() */
	atomic_fetch_add_explicit(&st->n, d, memory_order_seq_cst);
}

int
pf__engine_enter(pf__engine *g)
{
	stripe_add(g, 1);
	/* Seq_cst: after the stripe's increment (the StoreLoad argument at
	 * the top of this file). */
	if (atomic_load_explicit(&g->state, memory_order_seq_cst) ==
	    PF__ENGINE_OPEN)
		return 0;
	pf__engine_finished(g);
	return PF_ESHUTDOWN;
}

void
pf__engine_hold(pf__engine *g)
{
	stripe_add(g, 1);
}

void
pf__engine_finished(pf__engine *g)
{
	stripe_add(g, -1);
	/* Seq_cst: a finisher that sees the engine still open needs no
	 * broadcast (dispose re-sums on a 1 ms timed wait anyway). */
	if (atomic_load_explicit(&g->state, memory_order_seq_cst) !=
	    PF__ENGINE_OPEN) {
		pthread_mutex_lock(&g->lock);
		pthread_cond_broadcast(&g->idle);
		pthread_mutex_unlock(&g->lock);
	}
}

static long
unfinished_sum(pf__engine *g)
{
	long sum = 0;
	/* Seq_cst (acquire at least): after dispose's state store, and
	 * pairing with the workers' release stores and the seq_cst RMWs of
	 * stripe_add(). */
	for (unsigned i = 0; i < g->n_stripes; i++)
		sum += pf__load_seq_cst(&g->unfinished[i].n);
	return sum;
}

int
pf__engine_close(pf__engine *g)
{
	int open = PF__ENGINE_OPEN;
	if (!atomic_compare_exchange_strong_explicit(&g->state, &open,
		PF__ENGINE_CLOSING, memory_order_seq_cst, memory_order_seq_cst))
		return PF_ESHUTDOWN;
	/* The heavy half of the StoreLoad pair at the top of this file. */
	if (g->asym)
		pf__barrier_heavy();
	return 0;
}

void
pf__engine_wait_idle(pf__engine *g)
{
	pthread_mutex_lock(&g->lock);
	while (unfinished_sum(g) != 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g->idle, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
}

void
pf__engine_stop(pf__engine *g)
{
	/* Runs what is still queued (only stale entries of executions that
	 * already finished) and joins the workers. */
	pf__pool_destroy(g->pool);
	pf__timers_stop(g->timers);
	/* Release: pairs with pf__engine_open()'s acquire; a late caller
	 * that reads CLOSED backs out without touching the stopped pool. */
	pf__store_release(&g->state, PF__ENGINE_CLOSED);
}
