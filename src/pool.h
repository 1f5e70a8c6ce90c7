/*
 * pool.h: the work-stealing worker pool.
 *
 * N workers, each with a Chase-Lev deque (deque.h) it pushes to and takes
 * from; threads that are not workers submit through one injector queue
 * (injector.h).  A worker looks in its own deque, then the injector, then
 * steals from the others starting at a random victim; after a short spin
 * it announces itself idle and parks (park.h).  Submitters wake one idle
 * worker per task, and only when one is idle.
 *
 * Waiting inside a task is "helping": the waiter runs other tasks
 * (pf__pool_help) instead of sleeping, and sleeps (pf__pool_idle_park)
 * only when it finds nothing, still woken by new work.  Helping nests on
 * the waiter's stack; when the stack budget is spent (pf__worker_can_help
 * is false) the waiter blocks without helping between pf__pool_block_begin
 * and _end, and when every worker is so blocked the pool starts a spare
 * worker (at most max_spare) so queued work still runs.
 *
 * Run slots bound parallelism (pumped.h, pf_scope_options.threads): the pool has `threads`
 * slots, and a thread runs tasks only while it holds one.  A worker takes
 * one when it finds work after being idle and gives it back when it
 * parks, blocks in a wait that cannot help, or idles in a helping wait;
 * a thread that is not a worker (an outside waiter that runs the awaited
 * execution itself) takes one around that run.  Spare workers and outside
 * threads therefore never add parallelism: they only use slots that
 * blocked threads gave up.  A thread that gave up its slot in the middle
 * of a handler takes one back as a resumer (pf__pool_slot_resume): fresh
 * takers leave free slots to resumers, and busy workers hand theirs over
 * at the next task boundary, so a resumer never waits on new work.
 *
 * Concurrency contract: every function may be called from any thread
 * unless its comment names the owner; pf__pool_create and pf__pool_destroy
 * are not concurrent with anything on the same pool.
 */
#ifndef PF_POOL_H
#define PF_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "deque.h"
#include "injector.h"
#include "park.h"
#include "slots.h"
#include "task.h"

typedef struct pf__pool pf__pool;
typedef struct pf__worker pf__worker;

typedef struct pf__pool_config {
	unsigned threads;    /* >= 1 */
	unsigned max_spare;  /* spare workers allowed beyond threads */
	size_t stack_size;   /* bytes per worker stack; 0: default (8 MiB) */
	pf__task_fn run;     /* runs every task of the pool; required */
	/* Called on each worker thread when it starts and before it exits
	 * (may be NULL); the tracking layer keeps its per-worker slabs here. */
	void (*on_start)(pf__worker *w, void *arg);
	void (*on_stop)(pf__worker *w, void *arg);
	void *hook_arg;
	/* Count runs, steals, parks and injector pushes (pf__pool_stats_read)
	 * in every build, not only in tests'. */
	bool counting;
} pf__pool_config;

struct pf__worker {
	/* Shared with thieves and wakers. */
	pf__deque deque;
	pf__parker parker;
	/* 1 while announced idle; cleared by the worker or by the waker that
	 * claims it (CAS), so each idle period is woken at most once. */
	PF_CACHE_ALIGNED atomic_int idle;

	/* Owner only. */
	PF_CACHE_ALIGNED pf__pool *pool;
	unsigned index;
	uint64_t rng;
	char *stack_limit; /* helping stops below this address */
	bool has_slot;     /* holds one of the pool's run slots */
	pthread_t thread;
	/* Statistics, written by the owner (relaxed), summed on read; kept
	 * in PF_TESTING builds only (0 elsewhere). */
	_Atomic(uint64_t) n_run, n_steal, n_park;
};

struct pf__pool {
	unsigned threads;     /* base workers; immutable */
	unsigned max_workers; /* threads + max_spare; immutable */
	/* Workers started so far (base + spares).  Written under spawn_lock;
	 * readers use acquire to see the worker the count covers. */
	atomic_uint nworkers;
	pf__worker **workers; /* max_workers slots, filled in order */
	pf__injector injector;
	/* Number of workers announced idle; a submitter pays for a wake-up
	 * only when it is non-zero. */
	PF_CACHE_ALIGNED atomic_int sleepers;
	/* Idle workers searching before they park (at most one spins). */
	atomic_int spinners;
	/* Workers blocked in a wait that cannot help. */
	PF_CACHE_ALIGNED atomic_uint blocked;
	atomic_bool stopping;
	/* A spare could not be started (thread creation failed). */
	atomic_bool spawn_failed;
	pf__slots slots;      /* run slots (slots.h) */
	pthread_mutex_t spawn_lock;
	size_t stack_size;
	pf__task_fn run;      /* immutable */
	void (*on_start)(pf__worker *w, void *arg);
	void (*on_stop)(pf__worker *w, void *arg);
	void *hook_arg;
	atomic_bool counting; /* set once (pf__pool_set_counting) */
	/* Submissions through the injector, when counting. */
	PF_CACHE_ALIGNED _Atomic(uint64_t) n_inject;
};

/* 0, PF_EINVAL, PF_ENOMEM or PF_EAGAIN (no thread could be created; the
 * pool is then not created). */
int pf__pool_create(pf__pool **out, const pf__pool_config *cfg);
/*
 * Stops the workers once no task is queued and joins them; tasks still
 * queued are run first.  The caller guarantees nothing submits any more.
 */
void pf__pool_destroy(pf__pool *p);

/* The calling thread's worker if it belongs to p, else NULL. */
pf__worker *pf__pool_current(const pf__pool *p);
/* The calling thread's worker of any pool, or NULL. */
pf__worker *pf__worker_self(void);

/*
 * Queues t: on the caller's own deque when it is a worker of p, else on
 * the injector; then wakes one idle worker if any.  Never fails, never
 * blocks, never runs t on the calling thread.
 */
void pf__pool_submit(pf__pool *p, pf__task *t);

/*
 * Owner only: finds one task (own deque, then prefer's deque when not
 * NULL, then the injector, then the others) and runs it.  False when it
 * found none.
 */
bool pf__pool_help(pf__worker *w, pf__worker *prefer);
/* Any thread: the worker of p with this index, or NULL when there is none
 * (yet). */
pf__worker *pf__pool_worker_at(const pf__pool *p, unsigned index);

/* Owner only: whether the stack still has room to run tasks nested. */
bool pf__worker_can_help(const pf__worker *w);

/*
 * Owner only: announce idle, re-check for queued work and ready(arg),
 * park unless either holds.  Returns after a wake-up (new work, or an
 * unpark of w->parker by whoever makes ready true), at deadline_ns
 * (CLOCK_MONOTONIC; negative: none), or at once.  True when a submitter
 * claimed w for queued work and w, not leaving for its own reason yet,
 * still owes it: a waiter that then leaves its wait without taking work
 * calls pf__pool_pass_on.
 */
bool pf__pool_idle_park(pf__worker *w, bool (*ready)(void *arg), void *arg,
    int64_t deadline_ns);

/* Wakes a sleeping worker if work is visible: the hand-off of a wake-up
 * its receiver will not use (seq_cst fence inside). */
void pf__pool_pass_on(pf__pool *p);

/*
 * Owner only: bracket a wait during which w runs nothing.  w gives up its
 * run slot for the wait (and takes one back, as a resumer, at the end).
 * When every started worker is inside such a bracket a spare worker is
 * started (up to max_spare), so queued work never waits for a blocked pool.
 */
void pf__pool_block_begin(pf__worker *w);
void pf__pool_block_end(pf__worker *w);

/*
 * Whether nothing can run p's queued work any more: every started worker
 * is blocked in a wait that cannot help and no spare can be started.  A
 * wait on a pending execution of p then fails instead of sleeping forever.
 */
bool pf__pool_starved(const pf__pool *p);

/*
 * Run slots, for threads that are not workers of p (and for w's own slot
 * around a helping wait's idle park).  slot_take takes a free slot left
 * by no resumer: false when none.  slot_resume takes one back in the middle
 * of a handler, waiting (and asking busy workers for one) until it can.
 * slot_give returns one and wakes an idle worker if work is queued.
 */
bool pf__pool_slot_take(pf__pool *p);
void pf__pool_slot_resume(pf__pool *p);
void pf__pool_slot_give(pf__pool *p);

/*
 * Whether the calling thread's stack has room to nest more work: a
 * worker's helping budget (pf__worker_can_help), or for any other thread
 * three quarters of its stack as pthread_getattr_np reports it (no limit
 * when it cannot tell).
 */
bool pf__thread_can_nest(void);

/* Counted in PF_TESTING builds and in pools made with counting on;
 * otherwise 0 (workers excepted).  Any thread; each counter is read
 * without stopping anyone, so it may be a moment behind. */
typedef struct pf__pool_stats {
	uint64_t run, steal, park, inject;
	unsigned workers; /* started, spares included */
} pf__pool_stats;
void pf__pool_stats_read(pf__pool *p, pf__pool_stats *out);
/* Starts counting in every build (pf__pool_config.counting). */
void pf__pool_set_counting(pf__pool *p);

#endif /* PF_POOL_H */
