/*
 * deque.c: Chase-Lev work-stealing deque.
 *
 * Contract (the header says the same):
 *   - pf__deque_push and pf__deque_take run on the owner thread only, never
 *     concurrently with each other.
 *   - pf__deque_steal and pf__deque_size_hint run on any thread, concurrently
 *     with everything, including each other.
 *   - pf__deque_init and pf__deque_destroy run alone.
 * Progress: push and take are wait-free (push is not when it must grow, which
 * calls the allocator); steal is lock-free, since its CAS fails only because
 * another take or steal succeeded.
 *
 * Algorithm: D. Chase and Y. Lev, "Dynamic Circular Work-Stealing Deque",
 * SPAA 2005.  Memory orders: exactly those of Fig. 1 in N. M. Le, A. Pop,
 * A. Cohen and F. Zappa Nardelli, "Correct and Efficient Work-Stealing for
 * Weak Memory Models", PPoPP 2013, which proves them sufficient under C11.
 * Two departures, both for ThreadSanitizer, which models acquire and release
 * operations but not standalone fences, and neither costing anything:
 *   - The paper's consume load of the buffer pointer is an acquire load:
 *     compilers implement consume as acquire anyway.
 *   - push publishes with a release store of bottom where the paper has a
 *     release fence followed by a relaxed store.  TSan ignores the fence and
 *     then reports the thief's read of the task as a race with the owner's
 *     writes.  On x86-64 both compile to the same plain mov; on AArch64 the
 *     store is an stlr instead of a dmb plus str, which is cheaper.  The
 *     fence was only stronger in ordering the slot before bottom stores that
 *     come later in take; those stores are in the release sequence headed
 *     by push's store (C11 5.1.2.4: later stores to the same object by the
 *     same thread, and only the owner writes bottom), so a thief that reads
 *     them synchronises with the push all the same.  C++20 (P0982R1)
 *     dropped that same-thread rule; should C follow, the two stores of
 *     bottom in take must become release stores, which costs nothing on
 *     x86-64 either.
 *
 * Items live in the half-open index range [top, bottom).  The owner pushes
 * and takes at bottom; thieves steal at top.  Indices are signed 64-bit so
 * that take's transient bottom - 1 below top compares correctly and so that
 * they cannot wrap in the life of any process (2^63 pushes).
 *
 * The decisive race is take against steal on the last item:
 *
 *   owner: pf__deque_take()           thief: pf__deque_steal()
 *   -----------------------           -----------------------
 *   b = bottom - 1                    t = top            (acquire)
 *   bottom = b          (relaxed)     fence(seq_cst)
 *   fence(seq_cst)                    b' = bottom        (acquire)
 *   t = top             (relaxed)     if t < b': x = buf[t]
 *   if t == b: CAS top t -> t+1       CAS top t -> t+1   (seq_cst)
 *
 * The two seq_cst fences are ordered one way or the other.  If the owner's
 * comes first, the thief reads the decremented bottom and never looks at
 * slot b.  If the thief's comes first, the owner reads a top at least as new
 * as the thief's t, so when the thief aims at slot b the owner sees t == b
 * too, and both go through the CAS on top: exactly one wins, the owner that
 * loses returns NULL, the thief that loses returns PF__STEAL_RETRY.
 */
#include "config.h"

#include "deque.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "annotate.h"
#include "atomics.h"
#include "common.h"
#include "pumped.h"

struct pf__deque_buf {
	/* Capacity - 1 (a power of two minus one); immutable. */
	int64_t mask;
	/* Owner only: the next older buffer on the retired list. */
	pf__deque_buf *older;
	/*
	 * Atomic because a thief may read a slot while the owner overwrites it
	 * after the index wrapped around; the thief then loses its CAS on top
	 * and discards the value, but the read itself must not be a data race.
	 */
	_Atomic(void *) slots[];
};

/* Beyond this, doubling could overflow int64_t or the byte size. */
static const int64_t max_capacity = (int64_t)1 << 56;

static pf__deque_buf *
buf_new(int64_t capacity)
{
	pf__assert(capacity >= 2 && (capacity & (capacity - 1)) == 0);
	if ((uint64_t)capacity >
	    (SIZE_MAX - sizeof(pf__deque_buf)) / sizeof(_Atomic(void *)))
		return NULL;
	pf__deque_buf *a =
	    pf__malloc(sizeof(*a) + (size_t)capacity * sizeof(_Atomic(void *)));
	if (a == NULL)
		return NULL;
	a->mask = capacity - 1;
	a->older = NULL;
	PF_ATOMIC_RANGE(a->slots, (size_t)capacity * sizeof(a->slots[0]));
	return a;
}

int
pf__deque_init(pf__deque *d, size_t capacity)
{
	if (capacity > (size_t)max_capacity)
		return PF_ENOMEM;
	int64_t cap = 2;
	while (cap < (int64_t)capacity)
		cap <<= 1;
	pf__deque_buf *a = buf_new(cap);
	if (a == NULL)
		return PF_ENOMEM;
	/*
	 * Initialisation, not publication: the caller hands the deque to
	 * thieves later through something that synchronises (thread creation,
	 * a release store of the worker table).
	 */
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	PF_ATOMIC_OBJ(&d->bottom);
	atomic_init(&d->buf, a);
	PF_ATOMIC_OBJ(&d->buf);
	d->retired = NULL;
	return 0;
}

void
pf__deque_destroy(pf__deque *d)
{
	/* No thief runs any more (contract), so every buffer can go. */
	pf__free(atomic_load_explicit(&d->buf, memory_order_relaxed));
	pf__deque_buf *a = d->retired;
	while (a != NULL) {
		pf__deque_buf *older = a->older;
		pf__free(a);
		a = older;
	}
	d->retired = NULL;
}

/*
 * Owner only.  Doubles the buffer holding the live range [t, b).  The old
 * buffer stays readable on the retired list because a thief that loaded its
 * pointer may still read a slot from it; the values there are still right
 * for every index such a thief can win with its CAS on top.
 */
static pf__deque_buf *
grow(pf__deque *d, pf__deque_buf *old, int64_t t, int64_t b)
{
	int64_t cap = old->mask + 1;
	if (cap > max_capacity / 2)
		return NULL;
	pf__deque_buf *a = buf_new(cap * 2);
	if (a == NULL)
		return NULL;
	for (int64_t i = t; i < b; i++) {
		/*
		 * Relaxed both ways: the old slots were written by this thread,
		 * and the new buffer is not visible to anyone until the release
		 * store below.
		 */
		void *x = atomic_load_explicit(
		    &old->slots[i & old->mask], memory_order_relaxed);
		atomic_store_explicit(
		    &a->slots[i & a->mask], x, memory_order_relaxed);
	}
	/*
	 * Publishes the copied slots: pairs with the acquire load of buf in
	 * pf__deque_steal(), so a thief that sees the new buffer sees its
	 * contents.
	 */
	PF_HB_BEFORE(&d->buf);
	atomic_store_explicit(&d->buf, a, memory_order_release);
	old->older = d->retired;
	d->retired = old;
	return a;
}

int
pf__deque_push(pf__deque *d, void *item)
{
	pf__assert(item != NULL);
	/* Relaxed: only this thread writes bottom. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	/*
	 * Acquire: pairs with the seq_cst CAS on top in pf__deque_steal() (and
	 * pf__deque_take()), so a thief's read of the slot it stole happens
	 * before this push overwrites that slot after the index wraps.
	 */
	int64_t t = pf__load_acquire(&d->top);
	/* Relaxed: only this thread writes buf. */
	pf__deque_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
	if (PF_UNLIKELY(b - t > a->mask)) {
		a = grow(d, a, t, b);
		if (a == NULL)
			return PF_ENOMEM;
	}
	/* Relaxed: the slot is published by the release store of bottom. */
	atomic_store_explicit(
	    &a->slots[b & a->mask], item, memory_order_relaxed);
	/*
	 * Publishes the item (and everything the caller wrote into it before
	 * the push): pairs with the acquire load of bottom in
	 * pf__deque_steal(). A release store where the paper has a release
	 * fence and a relaxed store; see the top of the file for why that is
	 * the same.
	 */
	PF_HB_BEFORE(&d->bottom);
	atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	return 0;
}

void *
pf__deque_take(pf__deque *d)
{
	/* Relaxed: only this thread writes bottom and buf. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	pf__deque_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
	/*
	 * Relaxed store: its ordering against the load of top comes from the
	 * seq_cst fence that follows, which pairs with the seq_cst fence in
	 * pf__deque_steal() (see the diagram at the top of the file).
	 */
	atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
	/*
	 * The StoreLoad barrier of the take/steal race: after it, either a
	 * thief sees the reserved bottom, or this thread sees that thief's top.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	/*
	 * Relaxed: ordered by the fence above; the items in [t, b] were written
	 * by this thread, so nothing needs to be acquired from thieves.
	 */
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (t > b) {
		/* Empty: undo the reservation.  Relaxed: owner-only value. */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
		return NULL;
	}
	/* Relaxed: this thread wrote the slot. */
	void *x =
	    atomic_load_explicit(&a->slots[b & a->mask], memory_order_relaxed);
	if (t == b) {
		/*
		 * The last item: race the thieves for it through top.  Seq_cst
		 * so that it is ordered with the thieves' seq_cst fences and
		 * CASes; on failure a thief won and nothing is read.
		 */
		PF_HB_BEFORE(&d->top);
		if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
		        memory_order_seq_cst, memory_order_relaxed))
			x = NULL;
		/*
		 * Either way the deque is now empty at index b + 1.  Relaxed:
		 * nothing is published; a thief reading the old value just sees
		 * an empty deque.
		 */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
	}
	return x;
}

int
pf__deque_steal(pf__deque *d, void **out)
{
	/*
	 * Acquire: pairs with the seq_cst CAS of top by other thieves and the
	 * owner, so this thread reads slots no older than that index.
	 */
	int64_t t = pf__load_acquire(&d->top);
	/*
	 * Orders the load of top before the load of bottom against the owner's
	 * seq_cst fence in pf__deque_take() (diagram at the top of the file).
	 */
	atomic_thread_fence(memory_order_seq_cst);
	/*
	 * Acquire: pairs with the release store of bottom in pf__deque_push(), so the
	 * slots below bottom, and the buffer pointer they were written to, are
	 * visible.
	 */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
	if (t >= b)
		return PF__STEAL_EMPTY;
	PF_HB_AFTER(&d->bottom); /* the pushes' PF_HB_BEFORE */
	/*
	 * Acquire (the paper's consume): pairs with the release store in
	 * grow(), so the copied slots of a new buffer are visible.
	 */
	pf__deque_buf *a = pf__load_acquire(&d->buf);
	/*
	 * Relaxed: the item was published by the acquire load of bottom above;
	 * if the slot was overwritten since, the CAS below fails.
	 */
	void *x =
	    atomic_load_explicit(&a->slots[t & a->mask], memory_order_relaxed);
	/*
	 * Claims index t.  Seq_cst, ordered with the owner's fence and CAS in
	 * pf__deque_take(); failure means another thief or the owner took index
	 * t, so the deque may still hold items: the caller may retry.
	 */
	PF_HB_BEFORE(&d->top); /* our read of the slot, for the owner */
	if (!atomic_compare_exchange_strong_explicit(
	        &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
		return PF__STEAL_RETRY;
	*out = x;
	return PF__STEAL_OK;
}

int64_t
pf__deque_size_hint(const pf__deque *d)
{
	/*
	 * Relaxed: an estimate for heuristics (which victim to steal from).
	 * The parking protocol (pool.c) also reads it, but after a seq_cst
	 * fence that pairs with the submitter's fence after its push, which
	 * is what makes the answer reliable there, not the loads' order.
	 * The cast drops const only because the C11 generic load is not
	 * declared const on every compiler; nothing is written.
	 */
	pf__deque *m = (pf__deque *)d;
	int64_t b = atomic_load_explicit(&m->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&m->top, memory_order_relaxed);
	return b > t ? b - t : 0;
}
