/*
 * pool.c: workers, stealing, parking, helping and spare workers.
 *
 * Parking protocol (no lost wake-up).  A worker that found nothing
 * announces itself, then looks again, then sleeps; a submitter publishes
 * its task, then looks for an announced sleeper.  Both sides need a
 * StoreLoad barrier between their store and their load:
 *
 *   sleeper (pf__pool_idle_park)        submitter (pf__pool_submit)
 *   idle := 1; sleepers += 1            push task (deque bottom / injector)
 *   fence(seq_cst)                      fence(seq_cst)
 *   look for work -> none               load sleepers
 *   park                                if > 0: claim an idle worker, unpark
 *
 * The two fences are totally ordered.  If the sleeper's fence comes first,
 * the submitter's load sees sleepers > 0 and wakes someone; if the
 * submitter's fence comes first, the sleeper's look sees the task.  The
 * parker keeps a token, so an unpark that lands before park is not lost.
 * A waker claims a sleeper by CAS on its idle flag (1 -> 0) and decrements
 * sleepers itself, so one submission wakes exactly one worker and two
 * submitters never count the same sleeper.
 *
 * Spare workers.  A waiter whose stack budget for nested helping is spent
 * blocks without running anything (pf__pool_block_begin).  If every
 * started worker is so blocked, nothing would run queued work, so the
 * pool starts one more worker, up to threads + max_spare.  Spares stay
 * until the pool is destroyed; an idle spare parks like any worker.
 *
 * Run slots (pool.h, slots.h).  A
 * worker without a slot parks like an idle one and must be woken when a
 * slot frees while work is queued; the parking protocol above extends to
 * it, the giver's side being:
 *
 *   parker (pf__pool_idle_park)          giver (pf__pool_slot_give)
 *   idle := 1; sleepers += 1             slots.free += 1 (seq_cst RMW)
 *   fence(seq_cst)                       fence(seq_cst)
 *   work visible and a slot free? -> no  load sleepers, work visible?
 *   park                                 if so: claim an idle worker, unpark
 *
 * Slots are counts only: they publish no data, so they need no ordering
 * beyond these fences.
 */
#include "config.h"

#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "annotate.h"
#include "atomics.h"
#include "clock.h"
#include "probe.h"
#include "pumped.h"

#define DEFAULT_STACK (8u << 20)
/*
 * How long a worker that ran out of work keeps searching before it parks.
 * A futex wake-up costs 5-30 us on the machines we measured; work that
 * arrives within the spin is picked up without one.  An idle pool parks
 * after this and then uses no CPU.
 */
#define SPIN_NS 200000

static _Thread_local pf__worker *tls_worker PF_TLS_MODEL;

pf__worker *
pf__worker_self(void)
{
	return tls_worker;
}

pf__worker *
pf__pool_current(const pf__pool *p)
{
	pf__worker *w = tls_worker;
	return w != NULL && w->pool == p ? w : NULL;
}

/* xorshift64*: a cheap per-worker random victim choice. */
static uint64_t
next_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static unsigned
live_workers(const pf__pool *p)
{
	/* Acquire: pairs with the release store in start_worker(), so the
	 * worker slots below the count are initialised. */
	return pf__load_acquire(&p->nworkers);
}

int
pf_worker_index(void)
{
	pf__worker *w = tls_worker;
	return w != NULL ? (int)w->index : -1;
}

pf__worker *
pf__pool_worker_at(const pf__pool *p, unsigned index)
{
	return index < live_workers(p) ? p->workers[index] : NULL;
}

/* The statistics (pf__pool_stats_read) are kept by tests' builds and by
 * pools whose scope keeps statistics; otherwise running a task costs one
 * predictable branch and no counter update. */
#ifdef PF_TESTING
#define COUNTING(p) ((void)(p), true)
#else
/* Relaxed: a counter missed while the flag spreads is harmless. */
#define COUNTING(p) PF_UNLIKELY(pf__load_relaxed(&(p)->counting))
#endif

static void
count(_Atomic(uint64_t) *c)
{
	/* Only the owner writes its counters; a load and a store avoid a
	 * locked instruction.  Relaxed: readers only want a recent value. */
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

static void
run_task(pf__worker *w, pf__task *t)
{
	if (COUNTING(w->pool))
		count(&w->n_run);
	w->pool->run(t);
}

static pf__task *
steal_from(pf__worker *w, pf__worker *v, bool *maybe)
{
	/* A steal attempt costs a full fence even on an empty deque; two
	 * plain loads skip the empty ones (a stale answer only delays the
	 * steal to the next round, or to the re-check before parking). */
	if (pf__deque_size_hint(&v->deque) <= 0)
		return NULL;
	void *item;
	int r = pf__deque_steal(&v->deque, &item);
	if (r == PF__STEAL_OK) {
		if (COUNTING(w->pool))
			count(&w->n_steal);
		if (PF_PROBE_ON(steal))
			PF_PROBE2(steal, w->index, v->index);
		return item;
	}
	if (r == PF__STEAL_RETRY)
		*maybe = true;
	return NULL;
}

/*
 * A search beyond w's own deque: the preferred victim, the injector, then
 * every other worker from a random start.  *maybe is set when a race hid
 * work that may still be there (a lost steal, a busy injector).
 */
static pf__task *
find_elsewhere(pf__worker *w, pf__worker *prefer, bool *maybe)
{
	pf__pool *p = w->pool;
	pf__task *t;
	if (prefer != NULL && prefer != w &&
	    (t = steal_from(w, prefer, maybe)) != NULL)
		return t;
	/* The empty check is one load of a line that only changes when
	 * outside threads submit; popping takes the consumers' lock with an
	 * RMW, which every idle search of every worker would otherwise pay. */
	if (!pf__injector_empty_hint(&p->injector)) {
		bool busy = false;
		t = pf__injector_pop(&p->injector, &busy);
		if (t != NULL)
			return t;
		if (busy)
			*maybe = true;
	}
	unsigned n = live_workers(p);
	if (n <= 1)
		return NULL;
	unsigned start = (unsigned)(next_rand(&w->rng) % n);
	for (unsigned i = 0; i < n; i++) {
		pf__worker *v = p->workers[(start + i) % n];
		if (v != w && (t = steal_from(w, v, maybe)) != NULL)
			return t;
	}
	return NULL;
}

/* One search: own deque first, then elsewhere (find_elsewhere). */
static pf__task *
find_task(pf__worker *w, pf__worker *prefer, bool *maybe)
{
	pf__task *t = pf__deque_take(&w->deque);
	return t != NULL ? t : find_elsewhere(w, prefer, maybe);
}

static bool
work_visible(pf__pool *p)
{
	if (!pf__injector_empty_hint(&p->injector))
		return true;
	unsigned n = live_workers(p);
	for (unsigned i = 0; i < n; i++)
		if (pf__deque_size_hint(&p->workers[i]->deque) > 0)
			return true;
	return false;
}

/* Ends an idle announcement unless a waker already claimed it; returns
 * true when a waker did (its wake-up was meant for queued work). */
static bool
unannounce(pf__worker *w)
{
	int one = 1;
	/* Relaxed: the flag only arbitrates who decrements sleepers. */
	if (atomic_compare_exchange_strong_explicit(&w->idle, &one, 0,
		memory_order_relaxed, memory_order_relaxed)) {
		atomic_fetch_sub_explicit(&w->pool->sleepers, 1,
		    memory_order_relaxed);
		return false;
	}
	return true;
}

static void
wake_one(pf__pool *p)
{
	unsigned n = live_workers(p);
	pf__worker *self = tls_worker;
	unsigned start = self != NULL ? self->index + 1 : 0;
	for (unsigned i = 0; i < n; i++) {
		pf__worker *v = p->workers[(start + i) % n];
		int one = 1;
		/* Relaxed: the CAS on idle only decides which waker claims
		 * this sleeper; the unpark's release/acquire publishes. */
		if (atomic_load_explicit(&v->idle, memory_order_relaxed) == 1 &&
		    atomic_compare_exchange_strong_explicit(&v->idle, &one, 0,
			memory_order_relaxed, memory_order_relaxed)) {
			atomic_fetch_sub_explicit(&p->sleepers, 1,
			    memory_order_relaxed);
			if (PF_PROBE_ON(unpark))
				PF_PROBE1(unpark, v->index);
			pf__parker_unpark(&v->parker);
			return;
		}
	}
}

bool
pf__pool_slot_take(pf__pool *p)
{
	return pf__slots_take(&p->slots);
}

void
pf__pool_slot_resume(pf__pool *p)
{
	pf__slots_resume(&p->slots);
}

void
pf__pool_slot_give(pf__pool *p)
{
	/* Only the giver that freed the first slot pays for a wake-up. */
	if (!pf__slots_give(&p->slots))
		return;
	/* StoreLoad, pairs with the fence in pf__pool_idle_park(): see the
	 * top of this file.  As in notify(), no wake-up while a worker is
	 * searching: it holds a slot and finds the work (perhaps only the
	 * stale entry of an execution an outside waiter ran in place), and
	 * wakes the next worker when more is visible. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&p->sleepers, memory_order_relaxed) > 0 &&
	    atomic_load_explicit(&p->spinners, memory_order_relaxed) == 0 &&
	    work_visible(p))
		wake_one(p);
}

/*
 * Called after publishing work: the submitter's half of the protocol.  No
 * wake-up while an idle worker is still searching: it will find the task,
 * or announce itself idle and re-check before it parks (its spinners
 * decrement comes before its announcement and fence, so if we read
 * spinners as 0 we also read its announcement).  A searcher that finds a
 * task wakes the next worker when more work is visible (worker_main), so
 * bursts still spread.
 */
static void
notify(pf__pool *p)
{
	/* StoreLoad: the push above must be visible before we read sleepers.
	 * Pairs with the fence in pf__pool_idle_park(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&p->sleepers, memory_order_relaxed) > 0 &&
	    atomic_load_explicit(&p->spinners, memory_order_relaxed) == 0)
		wake_one(p);
}

void
pf__pool_submit(pf__pool *p, pf__task *t)
{
	pf__worker *w = tls_worker;
	if (w != NULL && w->pool == p) {
		/*
		 * A push onto a deque that already held work needs no wake-up
		 * (and no fence): the push that made it non-empty notified,
		 * and whoever it woke keeps stealing while work is left.  If
		 * thieves emptied it meanwhile and our view of top is stale,
		 * the task is still never stranded: the owner parks or blocks
		 * only with an empty own deque (pf__pool_idle_park,
		 * pf__pool_block_begin), so at worst it runs here, later.
		 */
		int64_t before = pf__deque_size_hint(&w->deque);
		if (pf__deque_push(&w->deque, t) == 0) {
			if (before <= 0)
				notify(p);
			return;
		}
	}
	/* A failed push (the deque could not grow) falls back to the
	 * injector, which never allocates: submission never fails.  As for a
	 * deque, only the push that makes the injector non-empty wakes
	 * someone: whoever it woke keeps taking from it while it is not
	 * empty (a worker never parks while work is visible) and wakes the
	 * next worker when there is more (worker_main). */
	if (COUNTING(p))
		/* Relaxed: a statistic; shared by every submitting thread. */
		atomic_fetch_add_explicit(&p->n_inject, 1,
		    memory_order_relaxed);
	if (pf__injector_push(&p->injector, t))
		notify(p);
}

bool
pf__pool_help(pf__worker *w, pf__worker *prefer)
{
	pf__assert(w == tls_worker); /* owner only */
	pf__task *t = pf__deque_take(&w->deque);
	if (t == NULL) {
		bool maybe = false;
		if ((t = find_elsewhere(w, prefer, &maybe)) == NULL)
			return false;
		/*
		 * Taken from the injector or another worker's deque: as for a
		 * searcher in worker_main, the wake-up that brought us here
		 * may have been meant for the work queued behind it too (only
		 * the push that makes a queue non-empty notifies), and we are
		 * about to run a handler that may take long.  Hand the search
		 * on while more is visible, or it waits for us while other
		 * workers sleep.  Work taken from our own deque needs no
		 * hand-off: its pushes notified for it.  Nor does it help
		 * while no slot is free: the worker woken could not run (it
		 * would park again), and the giver of the next free slot
		 * wakes one when work is queued.
		 */
		if (pf__slots_free(&w->pool->slots))
			pf__pool_pass_on(w->pool);
	}
	run_task(w, t);
	return true;
}

bool
pf__worker_can_help(const pf__worker *w)
{
	return (char *)__builtin_frame_address(0) > w->stack_limit;
}

bool
pf__pool_idle_park(pf__worker *w, bool (*ready)(void *arg), void *arg,
    int64_t deadline_ns)
{
	pf__assert(w == tls_worker); /* owner only */
	pf__pool *p = w->pool;
	/* Relaxed stores: the fence below orders them before the re-check. */
	atomic_store_explicit(&w->idle, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_relaxed);
	/* StoreLoad, pairs with the fence in notify(): see the diagram at
	 * the top of this file. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Queued work keeps w awake only if w can run it: with its slot, or
	 * with one it can take. */
	if (!(work_visible(p) && (w->has_slot || pf__slots_free(&p->slots))) &&
	    !atomic_load_explicit(&p->stopping, memory_order_acquire) &&
	    !(ready != NULL && ready(arg))) {
		if (COUNTING(p))
			count(&w->n_park);
		if (PF_PROBE_ON(park))
			PF_PROBE1(park, w->index);
		if (deadline_ns < 0)
			pf__parker_park(&w->parker);
		else
			(void)pf__parker_park_until(&w->parker, deadline_ns);
	}
	/*
	 * A waker that claimed us meant its wake-up for queued work.  If we
	 * leave for our own reason instead (a helping waiter whose execution
	 * finished, a deadline), nobody would run that work while other
	 * workers sleep: pass the wake-up on.  (A waiter whose execution is
	 * not finished goes on to help, and worker_main looks for work; the
	 * waiter still owes the hand-off if its execution finishes before it
	 * takes any: the true result, see pf__pool_pass_on.)
	 */
	if (!unannounce(w))
		return false;
	if ((ready != NULL && ready(arg)) ||
	    (deadline_ns >= 0 && pf__clock_mono_ns() >= deadline_ns)) {
		pf__pool_pass_on(p);
		return false;
	}
	return true;
}

void
pf__pool_pass_on(pf__pool *p)
{
	if (work_visible(p))
		notify(p);
}

static int start_worker(pf__pool *p, unsigned index);

static void
spawn_spare(pf__pool *p)
{
	pthread_mutex_lock(&p->spawn_lock);
	/* Relaxed: nworkers is written only under spawn_lock, held here. */
	unsigned n = atomic_load_explicit(&p->nworkers, memory_order_relaxed);
	/* Re-check under the lock: another blocker may have spawned one. */
	if (n < p->max_workers &&
	    atomic_load_explicit(&p->blocked, memory_order_acquire) >= n &&
	    !atomic_load_explicit(&p->stopping, memory_order_acquire)) {
		if (start_worker(p, n) != 0)
			/* We stay as we are; waits on work nobody can run now
			 * fail (pf__pool_starved). */
			atomic_store_explicit(&p->spawn_failed, true,
			    memory_order_relaxed);
		else if (PF_PROBE_ON(spare_started))
			PF_PROBE1(spare_started, n);
	}
	pthread_mutex_unlock(&p->spawn_lock);
}

bool
pf__pool_starved(const pf__pool *p)
{
	unsigned n = live_workers(p);
	/* Acquire, as the other readers of blocked; spawn_failed is a
	 * sticky flag (relaxed). */
	return atomic_load_explicit(&p->blocked, memory_order_acquire) >= n &&
	    (n >= p->max_workers ||
		atomic_load_explicit(&p->spawn_failed, memory_order_relaxed));
}

void
pf__pool_block_begin(pf__worker *w)
{
	pf__assert(w == tls_worker); /* owner only */
	pf__pool *p = w->pool;
	/* Acq_rel, paired with spawn_spare's acquire re-read under the
	 * lock: a count, the spare decision needs no other data. */
	unsigned b = atomic_fetch_add_explicit(&p->blocked, 1,
			 memory_order_acq_rel) + 1;
	if (b >= live_workers(p))
		spawn_spare(p);
	/* Our slot goes to whoever runs the queued work meanwhile (ours
	 * above all, which must not wait for us): the give wakes an idle
	 * worker when work is queued. */
	if (w->has_slot) {
		w->has_slot = false;
		pf__pool_slot_give(p);
	}
	if (work_visible(p))
		notify(p);
}

void
pf__pool_block_end(pf__worker *w)
{
	pf__assert(w == tls_worker && !w->has_slot); /* owner only */
	/* Acq_rel, as the increment in pf__pool_block_begin(). */
	atomic_fetch_sub_explicit(&w->pool->blocked, 1, memory_order_acq_rel);
	pf__pool_slot_resume(w->pool);
	w->has_slot = true;
}

/* Owner only: hands w's slot over when a resumer waits for one. */
static bool
yield_slot(pf__worker *w)
{
	pf__assert(w == tls_worker && w->has_slot);
	/* Relaxed: a hint read at each task boundary; a resumer missed now
	 * is seen at the next one, or gets a slot some worker gives back.
	 * Resumers are announced only while no slot is free. */
	if (PF_LIKELY(!pf__slots_wanted(&w->pool->slots)))
		return false;
	w->has_slot = false;
	pf__pool_slot_give(w->pool);
	return true;
}

/* Stack bounds of threads that are not workers, found on first use. */
static _Thread_local char *tls_stack_limit PF_TLS_MODEL;
static _Thread_local bool tls_stack_known PF_TLS_MODEL;

/*
 * How far helping may nest on the calling thread's stack: down to a
 * quarter of it above its bottom (the rest is headroom for the handler
 * that runs last); NULL when the stack is unknown.  The bottom is the
 * mapping's (pthread_getattr_np), not a frame minus the stack size: the
 * thread's static TLS comes out of the same mapping above the frames, so
 * a program with large thread-locals overflowed a small worker stack
 * before a limit computed that way was reached.
 */
static char *
stack_limit(void)
{
	char *limit = NULL;
#ifdef HAVE_PTHREAD_GETATTR_NP
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *lo;
		size_t size;
		if (pthread_attr_getstack(&attr, &lo, &size) == 0 && size > 0)
			limit = (char *)lo + size / 4;
		pthread_attr_destroy(&attr);
	}
#endif
	/* NULL (unknown): callers count a budget from their own frame. */
	return limit;
}

bool
pf__thread_can_nest(void)
{
	pf__worker *w = tls_worker;
	if (w != NULL)
		return pf__worker_can_help(w);
	if (!tls_stack_known) {
		tls_stack_known = true;
		tls_stack_limit = stack_limit();
	}
	return tls_stack_limit == NULL ||
	    (char *)__builtin_frame_address(0) > tls_stack_limit;
}

static bool
stop_requested(void *arg)
{
	pf__pool *p = arg;
	/* Acquire: pairs with the seq_cst store in stop_and_join(). */
	return atomic_load_explicit(&p->stopping, memory_order_acquire);
}

static void *
worker_main(void *arg)
{
	pf__worker *w = arg;
	pf__pool *p = w->pool;
	tls_worker = w;
	/* Named for top -H, gdb and perf: "pumped-w3", "pumped-spare" (at
	 * most 15 characters; a failure only leaves the inherited name). */
	char name[24];
	if (w->index < p->threads)
		snprintf(name, sizeof(name), "pumped-w%u", w->index);
	else
		snprintf(name, sizeof(name), "pumped-spare");
	name[15] = '\0';
#ifdef HAVE_PTHREAD_SETNAME_NP
	(void)pthread_setname_np(pthread_self(), name);
#endif
	/* Helping may nest down to stack_limit(); were the stack unknown,
	 * the same budget counted from this frame. */
	w->stack_limit = stack_limit();
	if (w->stack_limit == NULL)
		w->stack_limit = (char *)__builtin_frame_address(0) -
		    p->stack_size + p->stack_size / 4;
	if (p->on_start != NULL)
		p->on_start(w, p->hook_arg);
	bool woken = false;
	for (;;) {
		bool maybe = false;
		pf__task *t = find_task(w, NULL, &maybe);
		bool counted = t == NULL;
		/* Searching needs no run slot: an idle worker gives its slot
		 * back before it spins, so that an outside waiter may run the
		 * work it waits for in it meanwhile (see pool.h). */
		if (counted && w->has_slot) {
			w->has_slot = false;
			pf__pool_slot_give(p);
		}
		/* At most one idle worker spins; the others park at once, so
		 * idle spinners never crowd out the threads doing the work
		 * (or the outside thread waiting for it) on a small machine.
		 * Relaxed RMWs: the decrement below is ordered before this
		 * worker's idle announcement by the seq_cst fence in
		 * pf__pool_idle_park(), which is all notify() relies on. */
		bool spin = counted &&
		    atomic_fetch_add_explicit(&p->spinners, 1,
			memory_order_relaxed) == 0;
		int64_t until = 0;
		for (unsigned i = 1; t == NULL && spin; i++) {
			pf__cpu_relax();
			/* Read the clock only every 16 rounds: it costs more
			 * than a round on some virtual machines.  Yield there
			 * too: a thread just woken on this CPU (a waiter the
			 * finished task released, say) must not wait for the
			 * spin to end. */
			if ((i & 15) == 0) {
				sched_yield();
				int64_t now = pf__clock_mono_ns();
				if (until == 0)
					until = now + SPIN_NS;
				else if (now >= until)
					break;
			}
			maybe = false;
			t = find_task(w, NULL, &maybe);
		}
		if (counted)
			atomic_fetch_sub_explicit(&p->spinners, 1,
			    memory_order_relaxed);
		if (t != NULL) {
			/* Tasks run only in a run slot.  None free: the task
			 * goes back on our deque (thieves and waiters still
			 * see it) and we wait like an idle worker, woken by a
			 * giver when a slot frees while work is queued. */
			if (!w->has_slot &&
			    !(w->has_slot = pf__pool_slot_take(p))) {
				if (pf__deque_push(&w->deque, t) != 0 &&
				    pf__injector_push(&p->injector, t))
					notify(p);
				(void)pf__pool_idle_park(w, stop_requested, p,
				    -1);
				woken = true;
				continue;
			}
			/* Just woken, or a searcher, with work in hand and a
			 * slot: pass the wake-up on while more is visible, so
			 * a burst that woke one worker spreads.  Only with a
			 * slot: one that parks again for want of a slot hands
			 * nothing on (the next slot's giver wakes a worker),
			 * or two slot-less workers would wake each other in a
			 * loop while outside threads hold every slot. */
			if (woken || counted)
				pf__pool_pass_on(p);
			woken = false;
			run_task(w, t);
			(void)yield_slot(w);
			continue;
		}
		if (maybe)
			continue;
		/* Acquire: pairs with the seq_cst store in stop_and_join(). */
		if (atomic_load_explicit(&p->stopping, memory_order_acquire) &&
		    !work_visible(p))
			break;
		/* Going idle: a good moment to refine the TSC calibration
		 * (rate-limited to once a second) off the hot path. */
		pf__clock_refine();
		(void)pf__pool_idle_park(w, stop_requested, p, -1);
		woken = true;
	}
	if (p->on_stop != NULL)
		p->on_stop(w, p->hook_arg);
	tls_worker = NULL;
	return NULL;
}

/* Creates worker `index` and its thread; the caller serialises calls. */
static int
start_worker(pf__pool *p, unsigned index)
{
	pf__worker *w = pf__aligned_alloc(PF_CACHELINE, sizeof(*w));
	if (w == NULL)
		return PF_ENOMEM;
	memset(w, 0, sizeof(*w));
	if (pf__deque_init(&w->deque, 256) != 0) {
		pf__free(w);
		return PF_ENOMEM;
	}
	pf__parker_init(&w->parker);
	atomic_init(&w->idle, 0);
	/* Atomics with plain stores (annotate.h): a hint and statistics. */
	PF_ATOMIC_OBJ(&w->idle);
	PF_ATOMIC_OBJ(&w->n_run);
	PF_ATOMIC_OBJ(&w->n_steal);
	PF_ATOMIC_OBJ(&w->n_park);
	w->pool = p;
	w->index = index;
	w->rng = 0x9E3779B97F4A7C15ULL * (index + 1);
	p->workers[index] = w;

	pthread_attr_t attr;
	int rc = PF_EAGAIN;
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, p->stack_size);
		/* Workers take no signals: they belong to the application's
		 * own threads. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		if (pthread_create(&w->thread, &attr, worker_main, w) == 0)
			rc = 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0) {
		p->workers[index] = NULL;
		pf__deque_destroy(&w->deque);
		pf__parker_fini(&w->parker);
		pf__free(w);
		return rc;
	}
	/* Release: publishes the slot and the worker to live_workers(). */
	PF_HB_BEFORE(&p->nworkers);
	atomic_store_explicit(&p->nworkers, index + 1, memory_order_release);
	return 0;
}

static void
stop_and_join(pf__pool *p)
{
	/* Seq_cst: a worker that re-checks after its parking fence sees it;
	 * the unparks below wake the ones already asleep. */
	atomic_store_explicit(&p->stopping, true, memory_order_seq_cst);
	/* Acquire: pairs with the release in start_worker(). */
	unsigned n = pf__load_acquire(&p->nworkers);
	for (unsigned i = 0; i < n; i++)
		pf__parker_unpark(&p->workers[i]->parker);
	/* Join every worker before freeing any: a worker not yet joined may
	 * still try to steal from the deque of one that already exited. */
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->workers[i]->thread, NULL);
	for (unsigned i = 0; i < n; i++) {
		pf__deque_destroy(&p->workers[i]->deque);
		pf__parker_fini(&p->workers[i]->parker);
		pf__free(p->workers[i]);
	}
	pf__injector_destroy(&p->injector);
	pthread_mutex_destroy(&p->spawn_lock);
	pf__free(p->workers);
	pf__free(p);
}

int
pf__pool_create(pf__pool **out, const pf__pool_config *cfg)
{
	if (out == NULL || cfg == NULL || cfg->threads == 0 || cfg->run == NULL)
		return PF_EINVAL;
	pf__pool *p = pf__aligned_alloc(PF_CACHELINE, sizeof(*p));
	if (p == NULL)
		return PF_ENOMEM;
	memset(p, 0, sizeof(*p));
	p->threads = cfg->threads;
	p->max_workers = cfg->threads + cfg->max_spare;
	p->stack_size = cfg->stack_size != 0 ? cfg->stack_size : DEFAULT_STACK;
	p->run = cfg->run;
	pf__atomic_init(&p->counting, cfg->counting);
	pf__atomic_init(&p->n_inject, 0);
	p->on_start = cfg->on_start;
	p->on_stop = cfg->on_stop;
	p->hook_arg = cfg->hook_arg;
	atomic_init(&p->nworkers, 0);
	PF_ATOMIC_OBJ(&p->nworkers);
	atomic_init(&p->sleepers, 0);
	atomic_init(&p->spinners, 0);
	atomic_init(&p->blocked, 0);
	atomic_init(&p->stopping, false);
	PF_ATOMIC_OBJ(&p->stopping);
	atomic_init(&p->spawn_failed, false);
	PF_ATOMIC_OBJ(&p->spawn_failed);
	pf__slots_init(&p->slots, (int)cfg->threads);
	p->workers = pf__calloc(p->max_workers, sizeof(*p->workers));
	if (p->workers == NULL) {
		pf__free(p);
		return PF_ENOMEM;
	}
	pf__injector_init(&p->injector);
	pthread_mutex_init(&p->spawn_lock, NULL);
	for (unsigned i = 0; i < p->threads; i++) {
		int rc = start_worker(p, i);
		if (rc != 0) {
			stop_and_join(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

void
pf__pool_destroy(pf__pool *p)
{
	if (p != NULL)
		stop_and_join(p);
}

void
pf__pool_set_counting(pf__pool *p)
{
	atomic_store_explicit(&p->counting, true, memory_order_relaxed);
}

void
pf__pool_stats_read(pf__pool *p, pf__pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	unsigned n = live_workers(p);
	out->workers = n;
	for (unsigned i = 0; i < n; i++) {
		pf__worker *w = p->workers[i];
		/* Relaxed: statistics, no ordering needed. */
		out->run += atomic_load_explicit(&w->n_run, memory_order_relaxed);
		out->steal += atomic_load_explicit(&w->n_steal,
		    memory_order_relaxed);
		out->park += atomic_load_explicit(&w->n_park,
		    memory_order_relaxed);
	}
	out->inject = atomic_load_explicit(&p->n_inject, memory_order_relaxed);
}
