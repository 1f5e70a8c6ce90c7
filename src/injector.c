/*
 * injector.c: the MPMC queue for tasks submitted from outside the pool.
 *
 * Contract (the header says the same):
 *   - pf__injector_push, pf__injector_pop and pf__injector_empty_hint run on
 *     any thread, all concurrently.
 *   - pf__injector_init and pf__injector_destroy run alone.
 * Progress: push is wait-free (one exchange, one store).  Pop never waits
 * and never spins, but it is not lock-free: when another thread stands in
 * its way it returns NULL with *busy set.  A producer preempted between its
 * two steps holds back every task pushed after it, and a consumer preempted
 * inside the lock holds back every other consumer, until they run again.
 *
 * Algorithm: D. Vyukov's intrusive MPSC node queue
 * (www.1024cores.net, "Intrusive MPSC node-based queue"), with a stub node so
 * that the list is never empty, made multi-consumer by a try-lock: consumers
 * serialise on `locked`, and one that finds it held does not wait, because
 * the holder is already draining the queue.  The one change to Vyukov's pop
 * is that the stub is re-inserted with a CAS from the last node rather than
 * an exchange, so that tail == &stub holds exactly when no task is queued;
 * that makes pf__injector_empty_hint exact at the moment it reads tail.
 *
 * "Busy" (pop returns NULL and sets *busy) means: work may exist but this
 * call could not take it; do not go to sleep on the strength of this NULL,
 * retry.  It is reported in two cases:
 *   1. another consumer holds the lock (it may be taking the last task, or
 *      it may be about to return busy itself and retry);
 *   2. a producer has swapped tail but not yet linked its node, so the task
 *      is in the queue but unreachable for a moment:
 *
 *      producer: pf__injector_push(n)    consumer: pf__injector_pop()
 *      ------------------------------    ----------------------------
 *      n->next = NULL
 *      prev = xchg(tail, n)              h = head; h->next == NULL
 *                                        tail != h: someone is linking
 *                                        -> NULL, *busy = true
 *      prev->next = n   (release)
 *                                        (retry) h->next == n -> take h
 *
 * A NULL with *busy false means the queue was empty when pop read tail; the
 * worker parking protocol (announce sleep, StoreLoad barrier, re-check)
 * may rely on that, while it must treat busy as "work pending".
 */
#include "config.h"

#include "injector.h"

#include <stdbool.h>
#include <stddef.h>

#include "annotate.h"
#include "atomics.h"
#include "common.h"

void
pf__injector_init(pf__injector *q)
{
	/*
	 * Initialisation, not publication: the queue reaches other threads
	 * through thread creation or another synchronising store.
	 */
	atomic_init(&q->stub.next, NULL);
	PF_ATOMIC_OBJ(&q->stub.next);
	atomic_init(&q->tail, &q->stub);
	q->head = &q->stub;
	atomic_init(&q->locked, false);
	PF_ATOMIC_OBJ(&q->locked);
}

void
pf__injector_destroy(pf__injector *q)
{
	/*
	 * The queue owns no memory: tasks belong to whoever embedded them, so a
	 * task still queued here is simply forgotten; the pool drains the queue
	 * before it gets here.
	 */
	(void)q;
}

bool
pf__injector_push(pf__injector *q, pf__task *t)
{
	/*
	 * Relaxed: the node is not shared yet; the exchange below publishes
	 * this store to the producer that links after us.
	 */
	PF_ATOMIC_OBJ(&t->next);
	atomic_store_explicit(&t->next, NULL, memory_order_relaxed);
	/*
	 * Acq_rel.  Release: publishes t->next == NULL to the next producer,
	 * whose own exchange reads t and then stores t->next, so its store
	 * follows ours.  Acquire: the mirror image for prev, whose NULL next
	 * (or the consumer's reset of stub.next, published by its CAS in pop)
	 * must come before the store below.
	 */
	PF_HB_BEFORE(&q->tail);
	pf__task *prev =
	    atomic_exchange_explicit(&q->tail, t, memory_order_acq_rel);
	PF_HB_AFTER(&q->tail);
	/*
	 * Release: publishes the task (and everything the submitter wrote into
	 * the record around it) to the consumer; pairs with the acquire loads
	 * of ->next in pf__injector_pop().
	 */
	PF_HB_BEFORE(&prev->next);
	atomic_store_explicit(&prev->next, t, memory_order_release);
	return prev == &q->stub;
}

/* Caller holds the consumer lock.  The three-way result of one attempt. */
static pf__task *
pop_locked(pf__injector *q, bool *busy)
{
	pf__task *h = q->head;
	/* Acquire: pairs with the release store of prev->next in push. */
	pf__task *next = pf__load_acquire(&h->next);
	if (h == &q->stub) {
		if (next == NULL) {
			/*
			 * Relaxed: the pointer is only compared, never
			 * dereferenced.  tail == &stub: nothing queued (the
			 * parking protocol orders this load with its own
			 * fence).  Otherwise a producer swapped tail off the
			 * stub and has not linked yet: case 2 of busy.
			 */
			*busy = atomic_load_explicit(
			            &q->tail, memory_order_relaxed) != &q->stub;
			return NULL;
		}
		/* Skip the stub; it is re-inserted when the queue drains. */
		h = next;
		q->head = h;
		/* Acquire: as above. */
		next = pf__load_acquire(&h->next);
	}
	if (next != NULL) {
		q->head = next;
		return h;
	}
	/*
	 * h is the last linked node.  Put the stub behind it so that h can
	 * leave while the list stays non-empty.  The stub is not in the list
	 * (head passed it, which required reading its link), so no producer
	 * can still write stub.next: relaxed, published by the CAS below.
	 */
	atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
	pf__task *expect = h;
	PF_HB_BEFORE(&q->tail);
	/*
	 * Release on success: publishes stub.next == NULL to the producer
	 * whose exchange next reads &stub from tail (its acquire).  Relaxed on
	 * failure: we only learn that a producer swapped tail past h, and the
	 * acquire load of h->next below observes its link if there is one.
	 */
	if (atomic_compare_exchange_strong_explicit(&q->tail, &expect, &q->stub,
	        memory_order_release, memory_order_relaxed)) {
		/* h is out; the list is just the stub again. */
		q->head = &q->stub;
		return h;
	}
	/* Acquire: pairs with the release store of prev->next in push. */
	next = pf__load_acquire(&h->next);
	if (next != NULL) {
		q->head = next;
		return h;
	}
	/* A producer is between its exchange and its link: case 2 of busy. */
	*busy = true;
	return NULL;
}

pf__task *
pf__injector_pop(pf__injector *q, bool *busy)
{
	bool dummy;
	if (busy == NULL)
		busy = &dummy;
	*busy = false;
	/*
	 * Test before test-and-set: while another consumer drains, waiting
	 * consumers only read the line.  Relaxed: the result is only a hint;
	 * the exchange below is what takes the lock.
	 */
	if (atomic_load_explicit(&q->locked, memory_order_relaxed) ||
	    /*
	     * Acquire: pairs with the release store that unlocks below, so
	     * this consumer sees the previous holder's writes to head.
	     */
	    atomic_exchange_explicit(&q->locked, true, memory_order_acquire)) {
		*busy = true;
		return NULL;
	}
	PF_HB_AFTER(&q->locked); /* the previous holder's PF_HB_BEFORE */
	pf__task *t = pop_locked(q, busy);
	/* Release: publishes head to the next holder (pairs with the above). */
	PF_HB_BEFORE(&q->locked);
	atomic_store_explicit(&q->locked, false, memory_order_release);
	return t;
}

bool
pf__injector_empty_hint(pf__injector *q)
{
	/*
	 * tail == &stub exactly when no task is queued (see the top of the
	 * file), so one load answers.  Relaxed: the pointer is only compared,
	 * and a caller that must not miss work (the parking protocol) puts its
	 * own seq_cst fence before this load; acquire would add nothing because
	 * nothing is read through the result.
	 */
	return atomic_load_explicit(&q->tail, memory_order_relaxed) == &q->stub;
}
