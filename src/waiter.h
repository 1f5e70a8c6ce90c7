/*
 * waiter.h: threads waiting for an execution's end.
 *
 * Registration against completion:
 *
 *   waiter (under ctx.lock)           finisher (exec.c, settle)
 *   old = fetch_or(WAITERS)           old = CAS/fetch_or setting DONE
 *   if old has DONE: return           if old has WAITERS:
 *   link node                           pf__waiters_wake: under ctx.lock,
 *                                       signal and unpark each
 *
 * Both are RMWs on one word, so one sees the other's bit.  The finisher
 * unparks under ctx.lock and a woken waiter takes that lock once before
 * it returns (pf__waiter_unregister), so the waiter's stack node and its
 * parker are never touched after the waiter is gone.
 */
#ifndef PF_WAITER_H
#define PF_WAITER_H

#include <stdbool.h>

#include "atomics.h"
#include "park.h"
#include "record.h"

typedef struct pf__waiter {
	pf__hnode node;        /* in pf_exec.waiters, under ctx.lock */
	pf__parker *parker;
	atomic_bool signaled;
} pf__waiter;

static inline void
pf__waiter_init(pf__waiter *w, pf__parker *p)
{
	w->parker = p;
	pf__atomic_init(&w->signaled, false);
}

/* Registers w on e: true; false when e is DONE already (w not linked). */
bool pf__waiter_register(pf_exec *e, pf__waiter *w);
/* Unlinks w if it was not signaled; either way, once this returns the
 * finisher no longer touches w. */
void pf__waiter_unregister(pf_exec *e, pf__waiter *w);
/* Signals and unparks every registered waiter (the finisher, after DONE). */
void pf__waiters_wake(pf_exec *e);

static inline bool
pf__waiter_signaled(const pf__waiter *w)
{
	/* Acquire: pairs with the release store in pf__waiters_wake(). */
	return pf__load_acquire(&((pf__waiter *)w)->signaled);
}

#endif /* PF_WAITER_H */
