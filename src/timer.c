/*
 * timer.c: the timer thread and its hierarchical timing wheel.
 *
 * Contract (the header says the same):
 *   - pf__timer_arm and pf__timer_cancel run on any thread, concurrently
 *     with each other and with the timer thread.  Both take the wheel mutex
 *     for O(1) work; neither allocates.  Blocking (mutex), not lock-free.
 *   - Callbacks run on the timer thread, one at a time, with no lock held,
 *     so a callback may arm and cancel timers, its own node included.
 *   - pf__timers_start and pf__timers_stop run alone.
 *
 * Algorithm: G. Varghese and T. Lauck, "Hashed and Hierarchical Timing
 * Wheels", SOSP 1987 (scheme 7), with the slot placement of W. Ahern's
 * timeout.c: a deadline d is filed by the highest bit in which it differs
 * from the wheel's time "now".  With 6-bit digits, level L = that bit / 6
 * and slot = digit L of d.  So d and now agree on every digit above L and
 * d's digit L is strictly greater than now's: every occupied slot of a
 * level lies ahead of now, and the occupied slot with the lowest index (one
 * ctz on the level's bitmap) is that level's earliest.  A level-L slot
 * starts at (now's digits above L, slot, zeros); moreover level L's slots
 * all start after everything in level L-1, so the earliest event of the
 * whole wheel is the earliest slot of the lowest non-empty level.
 *
 * Advancing to a time T repeats: take the earliest event e <= T, set now =
 * e, empty that one slot, and re-file each node in it relative to the new
 * now: d == e expires, otherwise it lands in a lower level (d and e now
 * agree on digit L too).  This is the cascade; a node moves down at most
 * PF__TIMER_LEVELS times, and a long sleep costs one step per occupied
 * slot, not one per elapsed millisecond.  Expired nodes come out in
 * deadline order.  Deadlines beyond the top level (they differ from now
 * above digit 3) wait on the overflow list, re-filed each time now crosses
 * a multiple of 64^4 ms.
 *
 * Firing, and the race between cancel and fire:
 *
 *   timer thread                       owner
 *   lock; move due nodes to a local    lock; state == armed?
 *     batch, state = firing; unlock      yes: unlink, state = idle -> true
 *   for each n in batch:                 no (firing): -> false, fn runs
 *     next = n's successor; fn(n)      unlock
 *
 * Both decisions are made under the mutex, so exactly one side wins.  The
 * thread reads a node's link before calling fn and never touches the node
 * after, since fn may free it or re-arm it.
 *
 * Wake-ups: the thread publishes, under the mutex, the millisecond it
 * sleeps until (sleep_until).  An arm signals the condition variable only
 * when its deadline is earlier, then sets sleep_until to "awake" so that a
 * burst of arms costs one wake-up at most.
 */
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
#include "pumped.h"

enum { NODE_IDLE = 0, NODE_ARMED, NODE_FIRING };

/* List indices: the wheel's slots, then the overflow and expired lists. */
#define NSLOTS (PF__TIMER_LEVELS * PF__TIMER_SLOTS)
#define LIST_OVERFLOW NSLOTS
#define LIST_EXPIRED (NSLOTS + 1)
#define NLISTS (NSLOTS + 2)

/* sleep_until when the thread is awake: no deadline is earlier. */
#define AWAKE INT64_MIN
/* sleep_until when the thread sleeps with no timer armed. */
#define FOREVER INT64_MAX

#define NS_PER_MS INT64_C(1000000)

struct pf__timers {
	pthread_mutex_t mu;
	/* Waited on by the timer thread only; signalled by arm and stop. */
	pthread_cond_t cv;
	/* Written by start, read by stop. */
	pthread_t thread;
	bool has_thread;
	/* Protected by mu.  Set by stop; the thread exits when it sees it. */
	bool stopping;
	/*
	 * Protected by mu.  Written by the timer thread before it sleeps
	 * (the ms it will wake at, or FOREVER) and when it wakes (AWAKE);
	 * set to AWAKE by an arm that signalled.
	 */
	int64_t sleep_until;
	/* Protected by mu.  Signals sent by arm, for the tests. */
	long wakeups;
	/*
	 * Protected by mu; written by the timer thread only (advance).  The
	 * wheel's time in ms: every deadline <= now has been taken out.
	 */
	uint64_t now;
	/* Protected by mu.  Bit s of occ[L]: slot s of level L is not empty. */
	uint64_t occ[PF__TIMER_LEVELS];
	/* Protected by mu.  Sentinel heads of the slot lists and the rest. */
	pf__timer_link lists[NLISTS];
};

/* Circular lists with a sentinel. */

static void
list_init(pf__timer_link *h)
{
	h->next = h->prev = h;
}

static bool
list_empty(const pf__timer_link *h)
{
	return h->next == h;
}

static void
list_push_tail(pf__timer_link *h, pf__timer_link *l)
{
	l->prev = h->prev;
	l->next = h;
	h->prev->next = l;
	h->prev = l;
}

static void
list_unlink(pf__timer_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = l->prev = l;
}

/* Appends all of src to the tail of dst, leaving src empty. */
static void
list_splice_tail(pf__timer_link *dst, pf__timer_link *src)
{
	if (list_empty(src))
		return;
	src->next->prev = dst->prev;
	dst->prev->next = src->next;
	src->prev->next = dst;
	dst->prev = src->prev;
	list_init(src);
}

static pf__timer_node *
node_of(pf__timer_link *l)
{
	return PF_CONTAINER_OF(l, pf__timer_node, link);
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

/* The wheel, all under mu. */

static unsigned
level_shift(unsigned level)
{
	return level * PF__TIMER_SLOT_BITS;
}

/* Files an armed node relative to t->now (see the placement rule above). */
static void
wheel_insert(pf__timers *t, pf__timer_node *n)
{
	uint64_t d = (uint64_t)n->deadline_ms;
	unsigned where;
	if (d <= t->now) {
		where = LIST_EXPIRED;
	} else {
		unsigned level = (63u - (unsigned)__builtin_clzll(d ^ t->now)) /
		                 PF__TIMER_SLOT_BITS;
		if (level >= PF__TIMER_LEVELS) {
			where = LIST_OVERFLOW;
		} else {
			unsigned slot = (unsigned)(d >> level_shift(level)) &
			                (PF__TIMER_SLOTS - 1);
			t->occ[level] |= UINT64_C(1) << slot;
			where = level * PF__TIMER_SLOTS + slot;
		}
	}
	n->where = (uint16_t)where;
	list_push_tail(&t->lists[where], &n->link);
}

static void
wheel_remove(pf__timers *t, pf__timer_node *n)
{
	list_unlink(&n->link);
	unsigned where = n->where;
	if (where < NSLOTS && list_empty(&t->lists[where])) {
		t->occ[where / PF__TIMER_SLOTS] &=
		    ~(UINT64_C(1) << (where % PF__TIMER_SLOTS));
	}
}

/*
 * The earliest time (ms) at which the wheel has work: the start of the
 * earliest occupied slot (the lowest non-empty level holds it), else the
 * next crossing of a top-level boundary when the overflow list is not
 * empty, else UINT64_MAX.  *list gets the list that event empties.  The
 * expired list is not considered here.
 */
static uint64_t
wheel_next_event(const pf__timers *t, unsigned *list)
{
	for (unsigned level = 0; level < PF__TIMER_LEVELS; level++) {
		uint64_t occ = t->occ[level];
		if (occ == 0)
			continue;
		unsigned slot = (unsigned)__builtin_ctzll(occ);
		unsigned above = level_shift(level + 1);
		*list = level * PF__TIMER_SLOTS + slot;
		return ((t->now >> above) << above) |
		       ((uint64_t)slot << level_shift(level));
	}
	if (!list_empty(&t->lists[LIST_OVERFLOW])) {
		unsigned top = level_shift(PF__TIMER_LEVELS);
		*list = LIST_OVERFLOW;
		return ((t->now >> top) + 1) << top;
	}
	return UINT64_MAX;
}

/* The ms the thread must wake at, or UINT64_MAX when nothing is armed. */
static uint64_t
wheel_next_wake(const pf__timers *t)
{
	if (!list_empty(&t->lists[LIST_EXPIRED]))
		return t->now;
	unsigned list;
	return wheel_next_event(t, &list);
}

static void
mark_due(pf__timer_link *due, pf__timer_node *n)
{
	n->state = NODE_FIRING;
	list_push_tail(due, &n->link);
}

/*
 * Moves the wheel's time forward to to_ms and appends every node whose
 * deadline is <= to_ms to due, in deadline order, marked firing.
 */
static void
wheel_advance(pf__timers *t, uint64_t to_ms, pf__timer_link *due)
{
	pf__timer_link todo;
	list_init(&todo);
	/* Armed in the past: earlier than anything still in the wheel. */
	list_splice_tail(&todo, &t->lists[LIST_EXPIRED]);
	while (!list_empty(&todo)) {
		pf__timer_node *n = node_of(todo.next);
		list_unlink(&n->link);
		mark_due(due, n);
	}

	for (;;) {
		unsigned list;
		uint64_t event = wheel_next_event(t, &list);
		if (event > to_ms)
			break;
		pf__assert(event >= t->now);
		t->now = event;
		list_splice_tail(&todo, &t->lists[list]);
		if (list < NSLOTS) {
			t->occ[list / PF__TIMER_SLOTS] &=
			    ~(UINT64_C(1) << (list % PF__TIMER_SLOTS));
		}
		while (!list_empty(&todo)) {
			pf__timer_node *n = node_of(todo.next);
			list_unlink(&n->link);
			if ((uint64_t)n->deadline_ms <= event) {
				mark_due(due, n);
			} else {
				wheel_insert(t, n);
				/* A cascade moves a node strictly down. */
				pf__assert(
				    n->where < list || list == LIST_OVERFLOW);
			}
		}
	}
	/*
	 * No slot starts in (now, to_ms], so every node stays where it is
	 * filed relative to to_ms as well.
	 */
	if (to_ms > t->now)
		t->now = to_ms;
}

/*
 * Runs the callbacks of a batch taken by wheel_advance, with no lock held.
 * Returns how many ran.
 */
static long
fire_batch(pf__timer_link *batch)
{
	long fired = 0;
	while (!list_empty(batch)) {
		pf__timer_node *n = node_of(batch->next);
		/*
		 * Unlink before the call: after fn(n) starts the node belongs
		 * to fn (it may re-arm or free it), and neither this loop nor
		 * the batch may refer to it again.  The links are ours to
		 * write without the mutex: a firing node is in no wheel list
		 * and nobody else writes it until fn(n) starts.
		 */
		list_unlink(&n->link);
		pf__timer_fn fn = n->fn;
		fn(n);
		fired++;
	}
	return fired;
}

static struct timespec
ms_to_timespec(uint64_t ms)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	return ts;
}

static void *
timer_main(void *arg)
{
	pf__timers *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!t->stopping) {
		pf__timer_link batch;
		list_init(&batch);
		wheel_advance(t, ns_to_ms_floor(pf__clock_mono_ns()), &batch);
		if (!list_empty(&batch)) {
			pthread_mutex_unlock(&t->mu);
			fire_batch(&batch);
			pthread_mutex_lock(&t->mu);
			/* Callbacks took time: look at the clock again. */
			continue;
		}
		uint64_t wake = wheel_next_wake(t);
		if (wake == UINT64_MAX) {
			t->sleep_until = FOREVER;
			pthread_cond_wait(&t->cv, &t->mu);
		} else {
			/* Deadlines are far below INT64_MAX ms. */
			t->sleep_until = (int64_t)wake;
			struct timespec ts = ms_to_timespec(wake);
			pthread_cond_timedwait(&t->cv, &t->mu, &ts);
		}
		t->sleep_until = AWAKE;
	}
	pthread_mutex_unlock(&t->mu);
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
	pthread_condattr_t attr;
	rc = pthread_condattr_init(&attr);
	if (rc == 0) {
		/* Deadlines are CLOCK_MONOTONIC; so must the waits be. */
		rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		if (rc == 0)
			rc = pthread_cond_init(&t->cv, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (rc != 0) {
		pthread_mutex_destroy(&t->mu);
		pf__free(t);
		return rc == EAGAIN ? PF_EAGAIN : PF_ENOMEM;
	}
	t->has_thread = false;
	t->stopping = false;
	t->sleep_until = AWAKE;
	t->wakeups = 0;
	t->now = ns_to_ms_floor(now_ns);
	for (unsigned i = 0; i < PF__TIMER_LEVELS; i++)
		t->occ[i] = 0;
	for (unsigned i = 0; i < NLISTS; i++)
		list_init(&t->lists[i]);
	*out = t;
	return 0;
}

static void
timers_destroy(pf__timers *t)
{
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
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
		pthread_mutex_lock(&t->mu);
		t->stopping = true;
		pthread_cond_signal(&t->cv);
		pthread_mutex_unlock(&t->mu);
		/* After the join no callback runs and none will. */
		pthread_join(t->thread, NULL);
	}
	/* Drop what is still armed, leaving the nodes idle for their owners. */
	for (unsigned i = 0; i < NLISTS; i++) {
		pf__timer_link *h = &t->lists[i];
		while (!list_empty(h)) {
			pf__timer_node *n = node_of(h->next);
			list_unlink(&n->link);
			n->state = NODE_IDLE;
		}
	}
	timers_destroy(t);
}

void
pf__timer_node_init(pf__timer_node *n)
{
	n->link.next = n->link.prev = &n->link;
	n->deadline_ms = 0;
	n->fn = NULL;
	n->where = 0;
	n->state = NODE_IDLE;
}

void
pf__timer_arm(
    pf__timers *t, pf__timer_node *n, int64_t deadline_ns, pf__timer_fn fn)
{
	pf__assert(fn != NULL);
	uint64_t ms = ns_to_ms_ceil(deadline_ns);
	pthread_mutex_lock(&t->mu);
	pf__assert(n->state != NODE_ARMED);
	n->deadline_ms = (int64_t)ms;
	n->fn = fn;
	n->state = NODE_ARMED;
	wheel_insert(t, n);
	/*
	 * The thread recomputes its wake-up under the mutex before it
	 * sleeps, so it needs a signal only when it already sleeps past this
	 * deadline.  Once signalled it is as good as awake: later arms need
	 * not signal until it publishes a new sleep_until.
	 */
	bool wake = (int64_t)ms < t->sleep_until;
	if (wake) {
		t->sleep_until = AWAKE;
		t->wakeups++;
	}
	/*
	 * Signalling after the unlock saves the woken thread from blocking
	 * on the mutex at once; t stays valid since stop does not run
	 * concurrently with arm.  Helgrind calls a signal with the mutex free
	 * "dubious" (it is not: the predicate changed under the mutex), so
	 * --enable-valgrind builds signal before the unlock (annotate.h).
	 */
	if (wake && PF_VALGRIND_BUILD)
		pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (wake && !PF_VALGRIND_BUILD)
		pthread_cond_signal(&t->cv);
}

bool
pf__timer_cancel(pf__timers *t, pf__timer_node *n)
{
	pthread_mutex_lock(&t->mu);
	/* Firing means the timer thread took the node: fn runs, we lost. */
	bool armed = n->state == NODE_ARMED;
	if (armed) {
		wheel_remove(t, n);
		n->state = NODE_IDLE;
	}
	pthread_mutex_unlock(&t->mu);
	return armed;
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
	pf__timer_link batch;
	list_init(&batch);
	pthread_mutex_lock(&t->mu);
	wheel_advance(t, ns_to_ms_floor(now_ns), &batch);
	pthread_mutex_unlock(&t->mu);
	return fire_batch(&batch);
}

int64_t
pf__timers_next_for_test(pf__timers *t)
{
	pthread_mutex_lock(&t->mu);
	uint64_t ms = wheel_next_wake(t);
	pthread_mutex_unlock(&t->mu);
	return ms == UINT64_MAX ? INT64_MAX : (int64_t)ms * NS_PER_MS;
}

int
pf__timer_level_for_test(pf__timers *t, pf__timer_node *n)
{
	pthread_mutex_lock(&t->mu);
	int level = -1;
	if (n->state == NODE_ARMED) {
		if (n->where < NSLOTS)
			level = n->where / PF__TIMER_SLOTS;
		else if (n->where == LIST_OVERFLOW)
			level = PF__TIMER_LEVELS;
		else
			level = 0; /* expired, due at the next advance */
	}
	pthread_mutex_unlock(&t->mu);
	return level;
}

long
pf__timers_wakeups_for_test(pf__timers *t)
{
	pthread_mutex_lock(&t->mu);
	long w = t->wakeups;
	pthread_mutex_unlock(&t->mu);
	return w;
}
#endif
