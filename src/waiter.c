/*
 * waiter.c: registration and wake-up of waiters (waiter.h).
 */
#include "config.h"

#include "waiter.h"

bool
pf__waiter_register(pf_exec *e, pf__waiter *w)
{
	pf__spin_lock(&e->ctx.lock);
	/* Acq_rel RMW on the status word: either settle()'s DONE RMW sees
	 * WAITERS and wakes us, or we see DONE (and its result). */
	uint32_t old = atomic_fetch_or_explicit(&e->state, PF__F_WAITERS,
	    memory_order_acq_rel);
	PF_HB_AFTER(&e->state);
	if (old & PF__F_DONE) {
		pf__spin_unlock(&e->ctx.lock);
		return false;
	}
	pf__hlist_push(&e->waiters, &w->node);
	pf__spin_unlock(&e->ctx.lock);
	return true;
}

void
pf__waiter_unregister(pf_exec *e, pf__waiter *w)
{
	pf__spin_lock(&e->ctx.lock);
	/* Relaxed: under the lock that the signaling store is made under. */
	if (!pf__load_relaxed(&w->signaled))
		pf__hlist_del(&w->node);
	pf__spin_unlock(&e->ctx.lock);
}

void
pf__waiters_wake(pf_exec *e)
{
	pf__spin_lock(&e->ctx.lock);
	for (pf__hnode *n; (n = pf__hlist_pop(&e->waiters)) != NULL;) {
		pf__waiter *w = PF_CONTAINER_OF(n, pf__waiter, node);
		pf__parker *p = w->parker;
		/* Release: pairs with the waiter's acquire load of signaled.
		 * The node may be gone once this is seen, hence p above. */
		pf__store_release(&w->signaled, true);
		pf__parker_unpark(p);
	}
	pf__spin_unlock(&e->ctx.lock);
}
