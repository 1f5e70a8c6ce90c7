/*
 * slots.h: run slots, the counter that bounds how many threads run tasks.
 *
 * A pool has `threads` slots and a thread runs tasks only while it holds
 * one (pool.h says who takes and gives them).  `free` counts free slots;
 * a fresh taker decrements it by CAS only while it stays above `resumers`,
 * so free slots are left to threads taking one back in the middle of a
 * handler; a resumer takes one whenever any is free, and announces itself
 * in `resumers` when none is, so busy workers hand theirs over at their
 * next task boundary (pf__slots_wanted).
 *
 * Slots are counts only: they publish no data.  The one ordering they
 * take part in, a give against a worker parking without a slot, is the
 * pool's (pool.c, "Run slots"): pf__slots_give is a seq_cst RMW and says
 * when it freed the first slot, the pool fences and wakes.
 */
#ifndef PF_SLOTS_H
#define PF_SLOTS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common.h"

typedef struct pf__slots {
	/* Separate lines: busy and spinning workers read resumers all the
	 * time, while outside waiters write free on every inline run. */
	PF_CACHE_ALIGNED atomic_int free;
	PF_CACHE_ALIGNED atomic_int resumers;
} pf__slots;

void pf__slots_init(pf__slots *s, int n);
/* A fresh taker: a slot no resumer waits for, or false. */
bool pf__slots_take(pf__slots *s);
/* A resumer: waits (spinning, then yielding, then in short sleeps) until
 * it holds a slot. */
void pf__slots_resume(pf__slots *s);
/* Gives one back: true when no slot was free for fresh takers before it
 * (the giver then wakes a worker that parked for want of one). */
bool pf__slots_give(pf__slots *s);

/* Whether a fresh taker would get a slot now (a hint; the CAS decides).
 * Relaxed: callers that must not miss a slot fence before this. */
static inline bool
pf__slots_free(const pf__slots *s)
{
	return atomic_load_explicit(&((pf__slots *)s)->free,
		   memory_order_relaxed) >
	    atomic_load_explicit(&((pf__slots *)s)->resumers,
		memory_order_relaxed);
}

/* Whether a resumer waits for a slot (a hint read at each task boundary:
 * one missed now is seen at the next, or gets a slot some worker gives
 * back; resumers are announced only while no slot is free). */
static inline bool
pf__slots_wanted(const pf__slots *s)
{
	return atomic_load_explicit(&((pf__slots *)s)->resumers,
		   memory_order_relaxed) != 0;
}

#endif /* PF_SLOTS_H */
