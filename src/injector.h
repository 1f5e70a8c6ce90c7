/*
 * injector.h: the queue for tasks submitted by threads that are not workers.
 *
 * Multi-producer, multi-consumer, intrusive (links through pf__task.next),
 * FIFO.  Producers never block and never wait for consumers: a push is one
 * atomic exchange plus a store (D. Vyukov's intrusive MPSC node queue).
 * Consumers serialise on a try-lock: a consumer that finds the lock held
 * reports "busy" instead of waiting, because the holder is already draining.
 *
 * Concurrency contract: push, pop and empty_hint from any thread, all
 * concurrently.  init/destroy: no concurrent calls.
 */
#ifndef PF_INJECTOR_H
#define PF_INJECTOR_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common.h"
#include "task.h"

typedef struct pf__injector {
	/* Producers: exchange on tail. */
	PF_CACHE_ALIGNED _Atomic(pf__task *) tail;
	/*
	 * Consumers: the next task to return, or &stub; protected by the
	 * consumer lock.
	 */
	PF_CACHE_ALIGNED pf__task *head;
	/* Consumer try-lock: acquire exchange takes it, release store drops. */
	atomic_bool locked;
	/*
	 * Keeps the list non-empty; never run.  Its next is written by the
	 * producer that swaps tail off it and by the lock holder.
	 */
	pf__task stub;
} pf__injector;

void pf__injector_init(pf__injector *q);
void pf__injector_destroy(pf__injector *q);
/*
 * Any thread.  Never fails, never blocks.  Returns true when the queue was
 * empty just before t went in: exact, because the push's exchange and the
 * consumer's re-insertion of the stub (the only way it becomes empty) are
 * read-modify-writes of the same tail word.
 */
bool pf__injector_push(pf__injector *q, pf__task *t);
/*
 * Any thread.  The oldest task, or NULL.  When busy is not NULL, *busy is
 * always written: false with a task, false with NULL when the queue was
 * empty, and true with NULL when work may exist but could not be taken:
 * another consumer held the lock, or a producer is between the two steps of
 * its push (it swapped tail but has not linked its node yet).  Busy means
 * "retry, do not sleep"; only NULL with *busy false means empty.
 */
pf__task *pf__injector_pop(pf__injector *q, bool *busy);
/*
 * Any thread.  True when no task was queued at the moment of its one relaxed
 * load (exact then, stale after; a caller that must not miss work, such as
 * the parking protocol, puts a seq_cst fence before it).  Tasks that a
 * producer has swapped in but not linked count as queued.
 */
bool pf__injector_empty_hint(pf__injector *q);

#endif /* PF_INJECTOR_H */
