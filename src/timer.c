/*
 * timer.c: the timer thread, and arm and cancel from any thread.
 *
 * Contract (the header says the same):
 *   - pf__timer_arm and pf__timer_cancel run on any thread, concurrently
 *     with each other and with the timer thread, lock-free, and never
 *     allocate.  They do not touch the wheel: an arm pushes the node on a
 *     stack of staged arms, a cancel flips the node's state and, if the node
 *     is already in the wheel, pushes it on a stack of cancellations.  The
 *     timer thread takes both stacks apart (one exchange each) and is the
 *     only one to write the wheel, under a mutex that only the test helpers
 *     also take.  So the threads that submit and finish work never share
 *     the wheel's cache lines, nor wait for each other there.
 *   - Callbacks run on the timer thread, one at a time, with no lock held,
 *     so a callback may arm and cancel timers, its own node included.
 *     fn(n, true) when the deadline came first, fn(n, false) when a cancel
 *     did: exactly one of them per arm.
 *   - pf__timers_start and pf__timers_stop run alone.
 *
 * The wheel itself (placement, cascade) is wheel.c; this file is the
 * thread that owns it and the lock-free way in.
 *
 * Node states, and who moves them:
 *
 *   IDLE --arm--> STAGED --thread drains arms--> WHEEL --due--> FIRING -> IDLE
 *                   |                              |
 *                 cancel                         cancel (+ push on cancels)
 *                   v                              v
 *               CANCELLED --thread drains arms-> CANCELLED --thread drains
 *                  (dropped: fn(n, false))           cancels, unlinks, drops
 *
 * Every move out of STAGED or WHEEL is a CAS, so a cancel and the thread
 * (draining an arm, or finding the node due) never both win.  A node the
 * thread finds due but cancelled is unlinked and left for the cancels
 * stack, which its canceller pushes it on (perhaps a moment later).  The
 * thread reads a node's fields before it calls fn and never touches the
 * node after, since fn may free or re-arm it.
 *
 * Wake-ups: the thread publishes the millisecond it sleeps until
 * (sleep_until, seq_cst), then looks at both stacks once more (seq_cst);
 * a pusher pushes (seq_cst), then reads sleep_until: one of the two sees
 * the other.  An arm wakes the thread only when its deadline is earlier; a
 * cancel that finds the cancels stack empty wakes it unless it is awake or
 * ticking.  While arms or cancels flow, the thread ticks every millisecond
 * and publishes AWAKE, so a burst costs no wake-up at all.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "timer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "alloc.h"
#include "annotate.h"
#include "clock.h"
#include "common.h"
#include "park.h"
#include "wheel.h"
#include "pumped.h"

enum {
	NODE_IDLE = 0,
	NODE_STAGED,    /* on the arms stack                               */
	NODE_WHEEL,     /* in the wheel                                    */
	NODE_CANCELLED, /* cancelled; the thread drops it (fn(n, false))   */
	NODE_FIRING,    /* due; fn(n, true) runs or is about to            */
};

/* sleep_until when the thread is awake, or ticking (back within a
 * millisecond): nobody needs to wake it. */
#define AWAKE INT64_MIN
/* sleep_until when the thread sleeps with no timer armed. */
#define FOREVER INT64_MAX

#define NS_PER_MS INT64_C(1000000)

struct pf__timers {
	/* The wheel's owner: the timer thread, and the test helpers. */
	pthread_mutex_t mu;
	/* The timer thread sleeps on it; arm, cancel and stop unpark it. */
	pf__parker parker;
	/* Written by start, read by stop. */
	pthread_t thread;
	bool has_thread;
	/* Set by stop; the thread exits when it sees it. */
	atomic_bool stopping;
	/*
	 * The ms the thread sleeps until (FOREVER: no timer), or AWAKE.
	 * Written by the thread before and after it sleeps; set to AWAKE by
	 * whoever wakes it (by CAS, so one waker per sleep).
	 */
	_Atomic(int64_t) sleep_until;
	/* Wake-ups sent by arm and cancel, for the tests. */
	atomic_long wakeups;
	/* Staged arms and cancellations: Treiber stacks, pushed by anyone,
	 * emptied in one exchange by the wheel's owner. */
	PF_CACHE_ALIGNED _Atomic(pf__timer_node *) arms;
	PF_CACHE_ALIGNED _Atomic(pf__timer_node *) cancels;
	/* The wheel, protected by mu. */
	PF_CACHE_ALIGNED pf__wheel wheel;
};

static pf__timer_node *
node_of(pf__ring *l)
{
	return PF_CONTAINER_OF(l, pf__timer_node, wn.link);
}

/* Time conversions. */

/* Rounded up, so that a timer never fires before its deadline. */
static uint64_t
ns_to_ms_ceil(int64_t ns)
{
	if (ns <= 0)
		return 0;
	return (uint64_t)(ns / NS_PER_MS) + (ns % NS_PER_MS != 0);
}

/* Rounded down: the current millisecond has begun but not ended. */
static uint64_t
ns_to_ms_floor(int64_t ns)
{
	return ns <= 0 ? 0 : (uint64_t)(ns / NS_PER_MS);
}

/*
 * Marks the nodes an advance handed out firing, each by CAS against its
 * cancel; one its canceller won is left out of every list (the canceller
 * pushes it on the cancels stack, where the drain drops it).
 */
static void
claim_due(pf__ring *due)
{
	for (pf__ring *l = due->next, *next; l != due; l = next) {
		next = l->next;
		pf__timer_node *n = node_of(l);
		uint8_t wheel = NODE_WHEEL;
		/* Acq_rel: pairs with the cancel's CAS (one of us wins). */
		PF_HB_BEFORE(&n->state);
		bool won = atomic_compare_exchange_strong_explicit(&n->state,
		    &wheel, NODE_FIRING, memory_order_acq_rel,
		    memory_order_acquire);
		PF_HB_AFTER(&n->state);
		if (!won)
			pf__ring_del(&n->wn.link);
	}
}

/*
 * Takes both stacks apart (under mu): staged arms go into the wheel (in arm
 * order), cancelled ones to *drops; cancelled wheel nodes are unlinked and
 * go to *drops too.  Returns how many nodes it took.
 */
static long
drain(pf__timers *t, pf__timer_node **drops)
{
	long taken = 0;
	/* Acquire: pairs with the pushes' release, so each node's fields
	 * (deadline, fn) are visible. */
	pf__timer_node *a = PF_ACQUIRED(&t->arms,
	    atomic_exchange_explicit(&t->arms, NULL, memory_order_acquire));
	/* The stack is LIFO: reverse it, so that equal deadlines fire in
	 * arm order. */
	pf__timer_node *fifo = NULL;
	while (a != NULL) {
		pf__timer_node *next = a->stack_next;
		a->stack_next = fifo;
		fifo = a;
		a = next;
	}
	while (fifo != NULL) {
		pf__timer_node *n = fifo;
		fifo = n->stack_next;
		taken++;
		uint8_t staged = NODE_STAGED;
		/* Acq_rel: pairs with the cancel's CAS (one of us wins, and
		 * either way the loser's later writes to n come after). */
		PF_HB_BEFORE(&n->state);
		bool won = atomic_compare_exchange_strong_explicit(&n->state,
		    &staged, NODE_WHEEL, memory_order_acq_rel,
		    memory_order_acquire);
		PF_HB_AFTER(&n->state);
		if (won) {
			pf__wheel_insert(&t->wheel, &n->wn);
		} else {
			/* Cancelled while staged: never in the wheel. */
			n->stack_next = *drops;
			*drops = n;
		}
	}
	/* Acquire: pairs with the cancellers' pushes, as for the arms. */
	pf__timer_node *c = PF_ACQUIRED(&t->cancels,
	    atomic_exchange_explicit(&t->cancels, NULL, memory_order_acquire));
	while (c != NULL) {
		pf__timer_node *n = c;
		c = n->stack_next;
		taken++;
		/* Unless a due advance took it out already (claim_due). */
		pf__wheel_remove(&t->wheel, &n->wn);
		n->stack_next = *drops;
		*drops = n;
	}
	return taken;
}

/* Calls fn(n, false) for each dropped node, with no lock held. */
static void
run_drops(pf__timer_node *n)
{
	while (n != NULL) {
		/* Read before the call: fn may free or re-arm n. */
		pf__timer_node *next = n->stack_next;
		pf__timer_fn fn = n->fn;
		/* Release: the owner's next arm or free comes after. */
		atomic_store_explicit(&n->state, NODE_IDLE,
		    memory_order_release);
		fn(n, false);
		n = next;
	}
}

/*
 * Runs the callbacks of a batch claimed by claim_due, with no lock held.
 * Returns how many ran.
 */
static long
fire_batch(pf__ring *batch)
{
	long fired = 0;
	while (!pf__ring_empty(batch)) {
		pf__timer_node *n = node_of(batch->next);
		/*
		 * Unlink before the call: after fn(n) starts the node belongs
		 * to fn (it may re-arm or free it), and neither this loop nor
		 * the batch may refer to it again.  The links are ours to
		 * write without the mutex: a firing node is in no wheel list
		 * and nobody else writes it until fn(n) starts.
		 */
		pf__ring_del(&n->wn.link);
		pf__timer_fn fn = n->fn;
		/* Release: the owner's next arm or free comes after. */
		atomic_store_explicit(&n->state, NODE_IDLE,
		    memory_order_release);
		fn(n, true);
		fired++;
	}
	return fired;
}

/* One round of the wheel's owner: drain the stacks, advance to now_ms,
 * then (unlocked) drop and fire.  *next: the ms the wheel wakes at next
 * (UINT64_MAX: nothing armed).  Returns how many nodes it took or fired;
 * *fired: how many fired. */
static long
round_at(pf__timers *t, uint64_t now_ms, uint64_t *next, long *fired)
{
	pf__timer_node *drops = NULL;
	pf__ring batch;
	pf__ring_init(&batch);
	pthread_mutex_lock(&t->mu);
	long taken = drain(t, &drops);
	pf__wheel_advance(&t->wheel, now_ms, &batch);
	claim_due(&batch);
	if (next != NULL)
		*next = pf__wheel_next_wake(&t->wheel);
	pthread_mutex_unlock(&t->mu);
	run_drops(drops);
	long f = fire_batch(&batch);
	if (fired != NULL)
		*fired = f;
	return taken + f;
}

static bool
stacks_empty(pf__timers *t)
{
	/* Seq_cst: after the store of sleep_until (see the top of the
	 * file). */
	return atomic_load_explicit(&t->arms, memory_order_seq_cst) == NULL &&
	    atomic_load_explicit(&t->cancels, memory_order_seq_cst) == NULL;
}

/* Set on each timer thread (pf__timer_thread_here). */
static _Thread_local bool tls_timer_thread PF_TLS_MODEL;

bool
pf__timer_thread_here(void)
{
	return tls_timer_thread;
}

static void *
timer_main(void *arg)
{
	pf__timers *t = arg;
	tls_timer_thread = true;
#ifdef HAVE_PTHREAD_SETNAME_NP
	(void)pthread_setname_np(pthread_self(), "pumped-timer");
#endif
	/* Acquire: pairs with the seq_cst store in pf__timers_stop(). */
	while (!atomic_load_explicit(&t->stopping, memory_order_acquire)) {
		uint64_t next;
		long fired;
		int64_t now_ms = (int64_t)ns_to_ms_floor(pf__clock_mono_ns());
		long done = round_at(t, (uint64_t)now_ms, &next, &fired);
		if (fired > 0)
			continue; /* callbacks took time: look at the clock */
		/*
		 * Traffic (arms or cancels came in): tick in a millisecond,
		 * published as AWAKE so that no pusher pays for a wake-up;
		 * else sleep until the wheel's next event.  Deadlines are far
		 * below INT64_MAX ms.
		 */
		int64_t until = next == UINT64_MAX ? FOREVER : (int64_t)next;
		bool tick = done > 0;
		if (tick && until > now_ms + 1)
			until = now_ms + 1;
		/* Seq_cst: the store-load handshake with the pushers (top of
		 * the file); stop's flag is re-read for the same reason, and
		 * its unpark leaves a token anyway. */
		atomic_store_explicit(&t->sleep_until, tick ? AWAKE : until,
		    memory_order_seq_cst);
		if (stacks_empty(t) &&
		    !atomic_load_explicit(&t->stopping, memory_order_seq_cst)) {
			if (until == FOREVER)
				pf__parker_park(&t->parker);
			else
				(void)pf__parker_park_until(&t->parker,
				    until * NS_PER_MS);
		}
		atomic_store_explicit(&t->sleep_until, AWAKE,
		    memory_order_seq_cst);
	}
	return NULL;
}

/* Everything but the thread; on failure nothing is left. */
static int
timers_create(pf__timers **out, int64_t now_ns)
{
	pf__timers *t = pf__malloc(sizeof(*t));
	if (t == NULL)
		return PF_ENOMEM;
	int rc = pthread_mutex_init(&t->mu, NULL);
	if (rc != 0) {
		pf__free(t);
		return rc == EAGAIN ? PF_EAGAIN : PF_ENOMEM;
	}
	pf__parker_init(&t->parker);
	t->has_thread = false;
	atomic_init(&t->stopping, false);
	PF_ATOMIC_OBJ(&t->stopping);
	atomic_init(&t->sleep_until, AWAKE);
	PF_ATOMIC_OBJ(&t->sleep_until);
	atomic_init(&t->wakeups, 0);
	PF_ATOMIC_OBJ(&t->wakeups);
	atomic_init(&t->arms, NULL);
	PF_ATOMIC_OBJ(&t->arms);
	atomic_init(&t->cancels, NULL);
	PF_ATOMIC_OBJ(&t->cancels);
	pf__wheel_init(&t->wheel, ns_to_ms_floor(now_ns));
	*out = t;
	return 0;
}

static void
timers_destroy(pf__timers *t)
{
	pthread_mutex_destroy(&t->mu);
	pf__parker_fini(&t->parker);
	pf__free(t);
}

int
pf__timers_start(pf__timers **out)
{
	pf__timers *t;
	int rc = timers_create(&t, pf__clock_mono_ns());
	if (rc != 0)
		return rc;
	/*
	 * The thread inherits the creator's signal mask: block everything
	 * so that it never takes a signal meant for the application.
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->thread, NULL, timer_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		timers_destroy(t);
		return PF_EAGAIN;
	}
	t->has_thread = true;
	*out = t;
	return 0;
}

void
pf__timers_stop(pf__timers *t)
{
	if (t->has_thread) {
		/* Seq_cst, as the thread's re-check before it parks. */
		atomic_store_explicit(&t->stopping, true, memory_order_seq_cst);
		pf__parker_unpark(&t->parker);
		/* After the join no callback runs and none will. */
		pthread_join(t->thread, NULL);
	}
	/* Cancellations still pending get their fn(n, false) (their owners
	 * wait for it); what is still armed is dropped, its node idle. */
	pf__timer_node *drops = NULL;
	pthread_mutex_lock(&t->mu);
	drain(t, &drops);
	pf__ring armed;
	pf__ring_init(&armed);
	pf__wheel_clear(&t->wheel, &armed);
	while (!pf__ring_empty(&armed)) {
		pf__timer_node *n = node_of(armed.next);
		pf__ring_del(&n->wn.link);
		/* Release: the owner re-arms or frees it after. */
		atomic_store_explicit(&n->state, NODE_IDLE,
		    memory_order_release);
	}
	pthread_mutex_unlock(&t->mu);
	timers_destroy(t);
	run_drops(drops);
}

void
pf__timer_node_init(pf__timer_node *n)
{
	pf__wheel_node_init(&n->wn);
	n->fn = NULL;
	n->stack_next = NULL;
	atomic_init(&n->state, NODE_IDLE);
	PF_ATOMIC_OBJ(&n->state);
}

/* Wakes the thread if it sleeps until after ms (INT64_MIN + 1: if it
 * sleeps at all, not ticking). */
static void
wake_if_later(pf__timers *t, int64_t ms)
{
	/* Seq_cst: after the push (see the top of the file). */
	int64_t su = atomic_load_explicit(&t->sleep_until, memory_order_seq_cst);
	while (su != AWAKE && ms < su) {
		if (atomic_compare_exchange_weak_explicit(&t->sleep_until, &su,
			AWAKE, memory_order_seq_cst, memory_order_seq_cst)) {
			/* Relaxed: a statistic for the tests. */
			atomic_fetch_add_explicit(&t->wakeups, 1,
			    memory_order_relaxed);
			pf__parker_unpark(&t->parker);
			return;
		}
	}
}

/* Pushes n on a stack; true when the stack was empty. */
static bool
push(_Atomic(pf__timer_node *) *stack, pf__timer_node *n)
{
	/* Relaxed: only a first guess for the CAS. */
	pf__timer_node *head = atomic_load_explicit(stack,
	    memory_order_relaxed);
	for (;;) {
		n->stack_next = head;
		/* Seq_cst: publishes n's fields (release, paired with the
		 * drain's acquire exchange) and comes before the read of
		 * sleep_until. */
		PF_HB_BEFORE(stack);
		if (atomic_compare_exchange_weak_explicit(stack, &head, n,
			memory_order_seq_cst, memory_order_relaxed))
			break;
	}
	return head == NULL;
}

void
pf__timer_arm(
    pf__timers *t, pf__timer_node *n, int64_t deadline_ns, pf__timer_fn fn)
{
	pf__assert(fn != NULL);
	pf__assert(atomic_load_explicit(&n->state, memory_order_relaxed) ==
	    NODE_IDLE);
	uint64_t ms = ns_to_ms_ceil(deadline_ns);
	if (ms > PF__WHEEL_MAX_MS)
		ms = PF__WHEEL_MAX_MS; /* never, in practice */
	n->wn.deadline_ms = ms;
	n->fn = fn;
	/* Relaxed: published by the push. */
	atomic_store_explicit(&n->state, NODE_STAGED, memory_order_relaxed);
	push(&t->arms, n);
	/* Deadlines are far below INT64_MAX ms. */
	wake_if_later(t, (int64_t)ms);
}

void
pf__timer_cancel(pf__timers *t, pf__timer_node *n)
{
	uint8_t st = atomic_load_explicit(&n->state, memory_order_relaxed);
	for (;;) {
		if (st != NODE_STAGED && st != NODE_WHEEL)
			return; /* idle, cancelled before, or firing: nothing */
		/* Acq_rel: pairs with the thread's CAS out of the same
		 * state (one of us wins; the thread's writes to n, such as
		 * stack_next, come before ours). */
		PF_HB_BEFORE(&n->state);
		if (atomic_compare_exchange_weak_explicit(&n->state, &st,
			NODE_CANCELLED, memory_order_acq_rel,
			memory_order_relaxed))
			break;
	}
	PF_HB_AFTER(&n->state);
	/* Staged: the drain of the arms stack finds it cancelled.  In the
	 * wheel: tell the thread, so that it unlinks and drops it soon. */
	if (st == NODE_WHEEL && push(&t->cancels, n))
		wake_if_later(t, INT64_MIN + 1);
}

#ifdef PF_TESTING
int
pf__timers_start_manual(pf__timers **out, int64_t now_ns)
{
	return timers_create(out, now_ns);
}

long
pf__timers_advance_for_test(pf__timers *t, int64_t now_ns)
{
	pf__assert(!t->has_thread);
	long fired = 0;
	(void)round_at(t, ns_to_ms_floor(now_ns), NULL, &fired);
	return fired;
}

/* The test helpers below see staged arms and cancellations as the thread
 * would after its next drain: they drain first. */
static void
drain_for_test(pf__timers *t)
{
	pf__timer_node *drops = NULL;
	pthread_mutex_lock(&t->mu);
	drain(t, &drops);
	pthread_mutex_unlock(&t->mu);
	run_drops(drops);
}

int64_t
pf__timers_next_for_test(pf__timers *t)
{
	drain_for_test(t);
	pthread_mutex_lock(&t->mu);
	uint64_t ms = pf__wheel_next_wake(&t->wheel);
	pthread_mutex_unlock(&t->mu);
	return ms == UINT64_MAX ? INT64_MAX : (int64_t)ms * NS_PER_MS;
}

int
pf__timer_level_for_test(pf__timers *t, pf__timer_node *n)
{
	drain_for_test(t);
	pthread_mutex_lock(&t->mu);
	int level = -1;
	if (atomic_load_explicit(&n->state, memory_order_relaxed) ==
	    NODE_WHEEL)
		level = pf__wheel_level(&n->wn);
	pthread_mutex_unlock(&t->mu);
	return level;
}

long
pf__timers_wakeups_for_test(pf__timers *t)
{
	return atomic_load_explicit(&t->wakeups, memory_order_relaxed);
}
#endif
