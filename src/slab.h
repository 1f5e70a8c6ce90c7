/*
 * slab.h: per-thread slabs for fixed-size records, over the system heap.
 *
 * Each thread that makes records owns one pf__slab per record size.  A
 * slab carves 64 KiB chunks (aligned to their size, so a record's chunk
 * header is found by masking its address) into equal objects.  The owner allocates and frees
 * from a private free list with no atomic operation; any other thread frees
 * by pushing onto the owning slab's remote-free stack (a lock-free Treiber
 * stack that the owner empties with one atomic exchange, so there is no ABA
 * problem).  There is no global lock and no shared counter; the atomic
 * counters that track a detached slab's chunks are touched only after
 * pf__slab_destroy.
 *
 * Lifetime: pf__slab_destroy detaches the slab from its owner; chunks that
 * still hold live objects stay until their last object is freed (from any
 * thread), which frees the chunk.  So records may outlive the worker that
 * allocated them (a user keeps an execution handle after the pool is gone).
 *
 * Chunks that empty go to a process-wide depot (one mutex, taken once per
 * chunk, never per object) and new chunks come from it before the heap, so
 * a burst of records reuses the pages of the last one; a chunk idle in the
 * depot for PUMPED_RECORD_RETAIN_MS (default 10000) goes back to the heap
 * (slab.c, "Depot").
 *
 * Concurrency contract:
 *   pf__slab_create: the calling thread becomes the owner.
 *   pf__slab_alloc, pf__slab_destroy, pf__slab_chunks: the owner only.
 *   pf__slab_free: any thread, concurrently with everything, including with
 *   the owner's destroy.
 */
#ifndef PF_SLAB_H
#define PF_SLAB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pf__slab pf__slab;

/*
 * obj_size: bytes per object (rounded up to 16; at most 4 KiB).
 * 0, PF_EINVAL or PF_ENOMEM.  Objects are 16-byte aligned.
 */
int pf__slab_create(pf__slab **out, size_t obj_size);
/* Owner only.  NULL when out of memory. */
void *pf__slab_alloc(pf__slab *s);
/*
 * Any thread.  mine: the calling thread's own slab of the same size, or NULL
 * when the caller owns none (an outside thread); used only to detect the
 * owner's fast path.  p == NULL does nothing.
 */
void pf__slab_free(pf__slab *mine, void *p);
/* Any thread: the slab that p (a live object) came from. */
pf__slab *pf__slab_of(const void *p);
/*
 * Owner only.  After it, s is gone; live objects may still be freed, from
 * any thread, with mine == NULL or the caller's own (other) slab, and the
 * last such free releases the memory.
 */
void pf__slab_destroy(pf__slab *s);
/*
 * Owner only.  The 64 KiB chunks s holds, the spare included; for tests and
 * statistics.
 */
size_t pf__slab_chunks(const pf__slab *s);
/*
 * Any thread.  Gives the depot's chunks idle past the retention time back
 * to the heap; returns the number of chunks it still keeps.
 */
size_t pf__slab_depot_trim(void);
#ifdef PF_TESTING
/* The retention time in ms from now on (0: none), instead of the
 * environment's. */
void pf__slab_depot_set_retain_ms(long ms);
/* Takes (true) or drops (false) the depot's lock, as a depot call in
 * progress would hold it. */
void pf__slab_depot_hold(bool hold);
#endif

#endif /* PF_SLAB_H */
