/*
 * wheel.h: a hierarchical timing wheel, the data structure of the timer
 * thread (timer.c).
 *
 * Single-threaded: its owner (the timer thread, under its mutex) is the
 * only one to call these.  Nodes are intrusive; a node is in the wheel
 * from pf__wheel_insert until pf__wheel_remove, or until an advance past
 * its deadline hands it out.  The placement rule and the cascade are
 * described at the top of wheel.c.
 */
#ifndef PF_WHEEL_H
#define PF_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "list.h"

/* Level k holds deadlines less than 64^(k+1) ms ahead: 4 levels, ~4.6 h. */
#define PF__TIMER_LEVELS 4
#define PF__TIMER_SLOT_BITS 6
#define PF__TIMER_SLOTS (1u << PF__TIMER_SLOT_BITS)

/* List indices: the slots, then the overflow and expired lists. */
#define PF__WHEEL_SLOTS (PF__TIMER_LEVELS * PF__TIMER_SLOTS)
#define PF__WHEEL_OVERFLOW PF__WHEEL_SLOTS
#define PF__WHEEL_EXPIRED (PF__WHEEL_SLOTS + 1)
#define PF__WHEEL_LISTS (PF__WHEEL_SLOTS + 2)
/* where of a node in no list of the wheel. */
#define PF__WHEEL_NOWHERE 0xffffu

/* Deadlines are below 2^48 ms (8,900 years of CLOCK_MONOTONIC), so the
 * deadline and the list index share one word and the node is 24 bytes. */
#define PF__WHEEL_MAX_MS ((UINT64_C(1) << 48) - 1)

typedef struct pf__wheel_node {
	pf__ring link;
	uint64_t deadline_ms : 48; /* set by the owner before the insert */
	uint64_t where : 16;       /* the list that holds it, or NOWHERE */
} pf__wheel_node;

typedef struct pf__wheel {
	/* The wheel's time in ms: every deadline <= now was handed out. */
	uint64_t now;
	/* Bit s of occ[L]: slot s of level L is not empty. */
	uint64_t occ[PF__TIMER_LEVELS];
	pf__ring lists[PF__WHEEL_LISTS]; /* sentinels */
} pf__wheel;

void pf__wheel_init(pf__wheel *w, uint64_t now_ms);
void pf__wheel_node_init(pf__wheel_node *n);
/* Files n (its deadline set) relative to the wheel's time; a deadline
 * already past goes to the expired list, handed out by the next advance. */
void pf__wheel_insert(pf__wheel *w, pf__wheel_node *n);
/* Takes n out of the wheel, if it is in it. */
void pf__wheel_remove(pf__wheel *w, pf__wheel_node *n);
/* Moves the wheel's time forward to to_ms and appends every node whose
 * deadline is <= to_ms to due, in deadline order (past deadlines first,
 * in insertion order); they are out of the wheel. */
void pf__wheel_advance(pf__wheel *w, uint64_t to_ms, pf__ring *due);
/* The ms the owner must wake at (the wheel's time when something is
 * expired already; else a lower bound of the earliest deadline), or
 * UINT64_MAX when the wheel is empty. */
uint64_t pf__wheel_next_wake(const pf__wheel *w);
/* Appends every node of the wheel to out; the wheel is left empty. */
void pf__wheel_clear(pf__wheel *w, pf__ring *out);
/* The level that holds n (PF__TIMER_LEVELS: overflow; 0: expired), or -1
 * when n is not in the wheel.  For tests. */
int pf__wheel_level(const pf__wheel_node *n);

static inline bool
pf__wheel_holds(const pf__wheel_node *n)
{
	return n->where != PF__WHEEL_NOWHERE;
}

#endif /* PF_WHEEL_H */
