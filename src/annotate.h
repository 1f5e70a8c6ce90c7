/*
 * annotate.h: happens-before annotations for Valgrind's race detectors.
 *
 * Helgrind and DRD model pthread mutexes, condition variables, thread
 * creation and join, but not C11 atomics: to them an atomic load is a
 * plain read and an atomic store a plain write (RMWs count as reads), so
 * every acquire/release pair looks like a race, both on the atomic object
 * and on the data it publishes.  ThreadSanitizer models atomics and needs
 * none of this.  With --enable-valgrind (PF_VALGRIND) the macros below
 * tell Valgrind what the memory orders already say; otherwise they expand
 * to nothing, so a normal build compiles to exactly the same code.
 *
 * Each annotation is one line next to the atomic it describes (see
 * docs/ARCHITECTURE.md, "Memory orders, in one place"):
 *
 *   PF_HB_BEFORE(obj)  just before a release (or stronger) store or RMW on
 *                      obj that publishes what this thread wrote;
 *   PF_HB_AFTER(obj)   just after the acquire load, RMW or fence that
 *                      observed such a store on the same obj.  Every
 *                      PF_HB_BEFORE(obj) happens before every later
 *                      PF_HB_AFTER(obj) (Helgrind's "weak send" joins them,
 *                      like a release sequence);
 *   PF_ACQUIRED(obj, x) is x, an expression with an acquire load of obj,
 *                      followed by PF_HB_AFTER(obj): for loads inside
 *                      expressions, without restructuring them;
 *   PF_ATOMIC_OBJ(obj) where an atomic object is initialised: it is
 *                      accessed only through <stdatomic.h>, and accesses
 *                      to an atomic object never race (C11 5.1.2.4), so
 *                      Valgrind stops checking its own bytes.  The data it
 *                      publishes is still checked, through the edges above;
 *   PF_BENIGN_RACE(p, size, why)  for a non-atomic range whose racy reads
 *                      are documented hints whose staleness is harmless;
 *   PF_VALGRIND_BUILD  1 in --enable-valgrind builds, else 0: for the one
 *                      place (timer.c) where code differs to keep Helgrind
 *                      from a style warning ("dubious" condvar signal).
 *
 * DRD implements the same Helgrind client requests (checked with
 * valgrind 3.19), so both tools see the annotations.
 */
#ifndef PF_ANNOTATE_H
#define PF_ANNOTATE_H

#ifdef PF_VALGRIND
#include <valgrind/helgrind.h>

#define PF_VALGRIND_BUILD 1
#define PF_HB_BEFORE(obj) ANNOTATE_HAPPENS_BEFORE((void *)(obj))
#define PF_HB_AFTER(obj) ANNOTATE_HAPPENS_AFTER((void *)(obj))
/* A GNU statement expression; only --enable-valgrind builds see it. */
#define PF_ACQUIRED(obj, x)                                                \
	__extension__({                                                    \
		__typeof__(x) pf_acquired_ = (x);                          \
		ANNOTATE_HAPPENS_AFTER((void *)(obj));                     \
		pf_acquired_;                                              \
	})
#define PF_ATOMIC_OBJ(obj) \
	VALGRIND_HG_DISABLE_CHECKING((void *)(obj), sizeof(*(obj)))
#define PF_ATOMIC_RANGE(p, size) \
	VALGRIND_HG_DISABLE_CHECKING((void *)(p), (size))
#define PF_BENIGN_RACE(p, size, why) \
	ANNOTATE_BENIGN_RACE_SIZED((void *)(p), (size), why)
#else
#define PF_VALGRIND_BUILD 0
#define PF_HB_BEFORE(obj) ((void)0)
#define PF_HB_AFTER(obj) ((void)0)
#define PF_ACQUIRED(obj, x) (x)
#define PF_ATOMIC_OBJ(obj) ((void)0)
#define PF_ATOMIC_RANGE(p, size) ((void)0)
#define PF_BENIGN_RACE(p, size, why) ((void)0)
#endif

#endif /* PF_ANNOTATE_H */
