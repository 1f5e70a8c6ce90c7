/*
 * deque.h: Chase-Lev work-stealing deque.
 *
 * Algorithm: D. Chase and Y. Lev, "Dynamic Circular Work-Stealing Deque",
 * SPAA 2005, with the C11 memory orders proven by N. M. Le, A. Pop,
 * A. Cohen and F. Zappa Nardelli, "Correct and Efficient Work-Stealing for
 * Weak Memory Models", PPoPP 2013.
 *
 * Concurrency contract:
 *   pf__deque_push, pf__deque_take: the owner thread only, never concurrently.
 *   pf__deque_steal, pf__deque_size_hint: any thread, concurrently with all.
 *   init/destroy: no concurrent calls at all.
 * Progress: push and take are wait-free except when push grows the buffer;
 * steal is lock-free (a lost CAS means another thread made progress).
 *
 * The buffer grows by doubling.  A retired buffer may still be read by a
 * thief that loaded the old pointer, so it is kept on a list and freed only
 * by pf__deque_destroy, when no thief can run; the retired buffers together
 * are smaller than the live one, so memory stays within 2x.
 */
#ifndef PF_DEQUE_H
#define PF_DEQUE_H

#include <stdatomic.h>
#include <stdint.h>

#include "common.h"

typedef struct pf__deque_buf pf__deque_buf;

typedef struct pf__deque {
	/* Read by thieves, written by the owner (push) and thieves (CAS). */
	PF_CACHE_ALIGNED _Atomic(int64_t) top;
	/* Written by the owner only; read by thieves. */
	PF_CACHE_ALIGNED _Atomic(int64_t) bottom;
	_Atomic(pf__deque_buf *) buf;
	/* Owner only: retired buffers, freed at destroy. */
	pf__deque_buf *retired;
} pf__deque;

enum { PF__STEAL_EMPTY = 0, PF__STEAL_OK = 1, PF__STEAL_RETRY = -1 };

/*
 * capacity: initial slots, rounded up to a power of two (>= 2).  0, or
 * PF_ENOMEM (also for a capacity too large to allocate).
 */
int pf__deque_init(pf__deque *d, size_t capacity);
void pf__deque_destroy(pf__deque *d);

/*
 * Owner only.  item must not be NULL (take answers NULL for "empty").  0, or
 * PF_ENOMEM when growing failed (the item is not pushed; the deque is intact).
 */
int pf__deque_push(pf__deque *d, void *item);
/* Owner only.  The most recently pushed item, or NULL when empty. */
void *pf__deque_take(pf__deque *d);
/*
 * Any thread.  PF__STEAL_OK with the oldest item in *out, PF__STEAL_EMPTY,
 * or PF__STEAL_RETRY when it lost a race (the deque may not be empty).
 * *out is written only with PF__STEAL_OK.
 */
int pf__deque_steal(pf__deque *d, void **out);
/* Any thread.  A racy estimate of the number of items (>= 0). */
int64_t pf__deque_size_hint(const pf__deque *d);

#endif /* PF_DEQUE_H */
