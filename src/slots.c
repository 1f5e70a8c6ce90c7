/*
 * slots.c: run slots (slots.h).
 */
#include "config.h"

#include <sched.h>
#include <time.h>

#include "annotate.h"
#include "slots.h"

void
pf__slots_init(pf__slots *s, int n)
{
	atomic_init(&s->free, n);
	atomic_init(&s->resumers, 0);
	PF_ATOMIC_OBJ(&s->free);
	PF_ATOMIC_OBJ(&s->resumers);
}

bool
pf__slots_take(pf__slots *s)
{
	/* Relaxed: a count that publishes nothing. */
	int n = atomic_load_explicit(&s->free, memory_order_relaxed);
	while (n > atomic_load_explicit(&s->resumers, memory_order_relaxed))
		if (atomic_compare_exchange_weak_explicit(&s->free, &n, n - 1,
			memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

/* Takes any free slot, resumers' included: false when none is free. */
static bool
take_any(pf__slots *s)
{
	int n = atomic_load_explicit(&s->free, memory_order_relaxed);
	while (n > 0)
		if (atomic_compare_exchange_weak_explicit(&s->free, &n, n - 1,
			memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

void
pf__slots_resume(pf__slots *s)
{
	/* Usually a slot is free (the waiter gave its own back). */
	if (take_any(s))
		return;
	/* Announced only when none is: busy workers then hand theirs over at
	 * their next task boundary, and fresh takers stop taking. */
	atomic_fetch_add_explicit(&s->resumers, 1, memory_order_relaxed);
	for (unsigned i = 0; !take_any(s); i++) {
		/* Rare (every slot is busy while this thread was blocked):
		 * back off from spinning to yielding to short sleeps. */
		if (i < 64) {
			pf__cpu_relax();
		} else if (i < 128) {
			sched_yield();
		} else {
			struct timespec ts = { 0, i < 256 ? 20000 : 200000 };
			nanosleep(&ts, NULL);
		}
	}
	atomic_fetch_sub_explicit(&s->resumers, 1, memory_order_relaxed);
}

bool
pf__slots_give(pf__slots *s)
{
	/* Seq_cst: the giver's half of the StoreLoad pair in pool.c. */
	int old = atomic_fetch_add_explicit(&s->free, 1, memory_order_seq_cst);
	/* A slot was free already: a worker that parked with work queued
	 * did so while none was, and the giver that freed the first one
	 * woke it.  Only that giver pays for the wake-up. */
	return old <= atomic_load_explicit(&s->resumers, memory_order_relaxed);
}
