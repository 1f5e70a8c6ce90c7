/*
 * spin.c: the contended path of the spin lock (spin.h).
 */
#include "config.h"

#include <sched.h>

#include "spin.h"

void
pf__spin_lock_slow(pf__spin *l)
{
	for (unsigned spins = 0;; spins++) {
		/* Relaxed: only a hint before retrying the acquire exchange. */
		while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
			if (spins++ < 128)
				pf__cpu_relax();
			else
				sched_yield();
		}
		if (!atomic_exchange_explicit(&l->held, true,
			memory_order_acquire)) {
			PF_HB_AFTER(l); /* as in pf__spin_lock() */
			return;
		}
	}
}
