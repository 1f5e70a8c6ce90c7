/*
 * atomics.h: atomic loads and stores that carry their Valgrind annotation.
 *
 * An acquire load that observes a release store is a happens-before edge
 * that Helgrind and DRD cannot see by themselves (annotate.h).  These
 * helpers write the load or store and its annotation as one expression,
 * so the two cannot drift apart.  In normal builds they are exactly the
 * <stdatomic.h> call.  Every use still says, in a comment next to it, what
 * the access pairs with: the helper names the order, not the reason.
 */
#ifndef PF_ATOMICS_H
#define PF_ATOMICS_H

#include <stdatomic.h>

#include "annotate.h"

/* An acquire load of *p, then PF_HB_AFTER(p). */
#define pf__load_acquire(p) \
	PF_ACQUIRED((p), atomic_load_explicit((p), memory_order_acquire))

/* A seq_cst load of *p (at least acquire), then PF_HB_AFTER(p). */
#define pf__load_seq_cst(p) \
	PF_ACQUIRED((p), atomic_load_explicit((p), memory_order_seq_cst))

/* A relaxed load: no edge, so nothing to annotate. */
#define pf__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)

/* PF_HB_BEFORE(p), then a release store of v to *p. */
#define pf__store_release(p, v)                                           \
	do {                                                              \
		PF_HB_BEFORE(p);                                          \
		atomic_store_explicit((p), (v), memory_order_release);    \
	} while (0)

/* PF_HB_BEFORE(p), then a seq_cst store of v to *p. */
#define pf__store_seq_cst(p, v)                                           \
	do {                                                              \
		PF_HB_BEFORE(p);                                          \
		atomic_store_explicit((p), (v), memory_order_seq_cst);    \
	} while (0)

/* atomic_init, and Valgrind told that the object is accessed only
 * atomically (PF_ATOMIC_OBJ). */
#define pf__atomic_init(p, v)                                             \
	do {                                                              \
		atomic_init((p), (v));                                    \
		PF_ATOMIC_OBJ(p);                                         \
	} while (0)

#endif /* PF_ATOMICS_H */
