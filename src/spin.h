/*
 * spin.h: a byte-sized test-and-test-and-set lock.
 *
 * For the short critical sections of a context record (list links, a tag
 * copy, a status delivery pick).  Nothing that can block or call user code
 * runs under it.  Uncontended, lock and unlock are one exchange and one
 * store, inline; a contended lock spins with pause, then yields.
 */
#ifndef PF_SPIN_H
#define PF_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "annotate.h"
#include "common.h"

typedef struct pf__spin {
	atomic_bool held;
} pf__spin;

static inline void
pf__spin_init(pf__spin *l)
{
	atomic_init(&l->held, false);
	PF_ATOMIC_OBJ(&l->held);
}

/* The contended path of pf__spin_lock (spin.c). */
void pf__spin_lock_slow(pf__spin *l);

static inline void
pf__spin_lock(pf__spin *l)
{
	/* Acquire: pairs with the release in pf__spin_unlock(). */
	if (PF_LIKELY(!atomic_exchange_explicit(&l->held, true,
		memory_order_acquire))) {
		PF_HB_AFTER(l); /* the previous holder's PF_HB_BEFORE */
		return;
	}
	pf__spin_lock_slow(l);
}

/* Whether some thread holds l: for debug assertions of "under the lock"
 * (it cannot tell which thread). */
static inline bool
pf__spin_held(const pf__spin *l)
{
	return atomic_load_explicit(&((pf__spin *)l)->held,
	    memory_order_relaxed);
}

static inline void
pf__spin_unlock(pf__spin *l)
{
	pf__assert(pf__spin_held(l));
	PF_HB_BEFORE(l); /* for the next holder's PF_HB_AFTER */
	atomic_store_explicit(&l->held, false, memory_order_release);
}

#endif /* PF_SPIN_H */
