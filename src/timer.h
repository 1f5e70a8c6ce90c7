/*
 * timer.h: one timer thread driving a hierarchical timing wheel.
 *
 * Wheel: G. Varghese and T. Lauck, "Hashed and Hierarchical Timing Wheels",
 * SOSP 1987.  Slots of 1 ms; PF__TIMER_LEVELS levels of 64 slots, so level
 * k covers 64^(k+1) ms; deadlines beyond the top level wait on an overflow
 * list and are re-filed as time passes.  Nodes are intrusive (embedded in
 * the caller's record): arm and cancel are O(1) and never allocate.  The
 * thread sleeps until the earliest deadline (or indefinitely when no timer
 * is armed) and fires each timer at most once, no earlier than its
 * deadline, normally within ~1-2 ms after it.
 *
 * Concurrency contract: arm and cancel from any thread, concurrently with
 * each other and with the timer thread, lock-free: an arm pushes the node
 * on a stack of staged arms, a cancel flips the node's state (and pushes it
 * on a stack of cancellations when it was already in the wheel).  Only the
 * timer thread (or a test helper, under the wheel mutex) takes the stacks
 * apart and touches the wheel, so no submitting or finishing thread ever
 * writes the wheel's shared lines.  Callbacks run on the timer thread, one
 * at a time, with no lock held, and must not block.
 *
 * Lifetime of a node (the owner keeps it alive while the timer may use it):
 *   - armed (from pf__timer_arm until fn starts): the timer owns it; the
 *     owner must not free or re-arm it.
 *   - fn(n, fired) runs exactly once per arm, on the timer thread: fired
 *     true when the deadline passed first, false when a cancel came first
 *     (within about a millisecond of the cancel).  The timer thread never
 *     touches n after fn(n, ...) started, so fn may free or re-arm it; any
 *     other thread may do so only after it learns from fn that fn started.
 *   - pf__timers_stop drops nodes never cancelled without calling fn, and
 *     calls fn(n, false) for cancelled ones.
 */
#ifndef PF_TIMER_H
#define PF_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "wheel.h"

typedef struct pf__timer_node pf__timer_node;
typedef void (*pf__timer_fn)(pf__timer_node *n, bool fired);

struct pf__timer_node {
	/*
	 * Private to timer.c.  wn belongs to the holder of the wheel mutex
	 * (its deadline is written by arm before the push that publishes
	 * it); state is atomic (owner and timer thread); fn and stack_next
	 * are written by arm/cancel before the push that publishes them.
	 */
	pf__wheel_node wn;
	pf__timer_fn fn;
	struct pf__timer_node *stack_next; /* in the arms or cancels stack */
	_Atomic(uint8_t) state; /* idle, staged, wheel, cancelled, firing */
};

typedef struct pf__timers pf__timers;

/*
 * Starts the timer thread (all signals blocked in it).  0 with *out set, or
 * PF_ENOMEM / PF_EAGAIN (thread creation), *out untouched, nothing left.
 */
int pf__timers_start(pf__timers **out);
/*
 * Stops and joins the thread and frees the wheel.  Timers still armed are
 * dropped without firing (their nodes are left idle).  No concurrent calls.
 */
void pf__timers_stop(pf__timers *t);

/* Zeroes a node; call once before its first arm. */
void pf__timer_node_init(pf__timer_node *n);
/*
 * Arms n to call fn(n, true) on the timer thread at deadline_ns
 * (CLOCK_MONOTONIC nanoseconds, see pf__clock_mono_ns); a past deadline
 * fires promptly.  n must not be armed (see the lifetime rules above).
 * Wakes the timer thread only when the new deadline is earlier than the
 * one it sleeps until.
 */
void pf__timer_arm(
    pf__timers *t, pf__timer_node *n, int64_t deadline_ns, pf__timer_fn fn);
/*
 * Cancels n: unless fn(n, true) was already taken by the timer thread (it
 * may be running or have run), fn(n, false) runs on the timer thread
 * shortly.  Cancelling a node that is not armed, or twice, does nothing.
 */
void pf__timer_cancel(pf__timers *t, pf__timer_node *n);

#ifdef PF_TESTING
/*
 * Tests only: a wheel with no thread, driven by a fake clock.  Create with
 * pf__timers_start_manual (its clock reads now_ns), free with
 * pf__timers_stop.  pf__timers_advance_for_test moves the clock forward to
 * now_ns and fires every due timer on the calling thread, in deadline
 * order (those armed with an already past deadline first, in arm order);
 * it returns how many fired (cancelled nodes get fn(n, false) here too,
 * not counted).
 */
int pf__timers_start_manual(pf__timers **out, int64_t now_ns);
long pf__timers_advance_for_test(pf__timers *t, int64_t now_ns);
/*
 * The time (ns) at which the thread would wake next: the earliest deadline
 * in level 0, or the start of the earliest occupied slot of a higher level
 * (a lower bound, where that slot cascades); INT64_MAX when nothing is
 * armed.  Works on started and manual wheels.
 */
int64_t pf__timers_next_for_test(pf__timers *t);
/* The level that holds n (PF__TIMER_LEVELS: overflow), or -1: not armed. */
int pf__timer_level_for_test(pf__timers *t, pf__timer_node *n);
/* How many times the timer thread was woken by an arm or a cancel. */
long pf__timers_wakeups_for_test(pf__timers *t);
#endif

/* Whether the calling thread is a timer thread (any scope's). */
bool pf__timer_thread_here(void);

#endif /* PF_TIMER_H */
