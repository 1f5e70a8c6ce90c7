/*
 * wheel.c: the hierarchical timing wheel (wheel.h).
 *
 * Algorithm: G. Varghese and T. Lauck, "Hashed and Hierarchical Timing
 * Wheels", SOSP 1987 (scheme 7), with the slot placement of W. Ahern's
 * timeout.c: a deadline d is filed by the highest bit in which it differs
 * from the wheel's time "now".  With 6-bit digits, level L = that bit / 6
 * and slot = digit L of d.  So d and now agree on every digit above L and
 * d's digit L is strictly greater than now's: every occupied slot of a
 * level lies ahead of now, and the occupied slot with the lowest index (one
 * ctz on the level's bitmap) is that level's earliest.  A level-L slot
 * starts at (now's digits above L, slot, zeros); moreover level L's slots
 * all start after everything in level L-1, so the earliest event of the
 * whole wheel is the earliest slot of the lowest non-empty level.
 *
 * Advancing to a time T repeats: take the earliest event e <= T, set now =
 * e, empty that one slot, and re-file each node in it relative to the new
 * now: d == e expires, otherwise it lands in a lower level (d and e now
 * agree on digit L too).  This is the cascade; a node moves down at most
 * PF__TIMER_LEVELS times, and a long sleep costs one step per occupied
 * slot, not one per elapsed millisecond.  Expired nodes come out in
 * deadline order.  Deadlines beyond the top level (they differ from now
 * above digit 3) wait on the overflow list, re-filed each time now crosses
 * a multiple of 64^4 ms.
 */
#include "config.h"

#include "common.h"
#include "wheel.h"

static pf__wheel_node *
node_of(pf__ring *l)
{
	return PF_CONTAINER_OF(l, pf__wheel_node, link);
}

void
pf__wheel_init(pf__wheel *w, uint64_t now_ms)
{
	w->now = now_ms;
	for (unsigned i = 0; i < PF__TIMER_LEVELS; i++)
		w->occ[i] = 0;
	for (unsigned i = 0; i < PF__WHEEL_LISTS; i++)
		pf__ring_init(&w->lists[i]);
}

void
pf__wheel_node_init(pf__wheel_node *n)
{
	pf__ring_init(&n->link);
	n->deadline_ms = 0;
	n->where = PF__WHEEL_NOWHERE;
}

static unsigned
level_shift(unsigned level)
{
	return level * PF__TIMER_SLOT_BITS;
}

/* Files an armed node relative to w->now (see the placement rule at the top of this file). */
void
pf__wheel_insert(pf__wheel *w, pf__wheel_node *n)
{
	uint64_t d = n->deadline_ms;
	unsigned where;
	if (d <= w->now) {
		where = PF__WHEEL_EXPIRED;
	} else {
		unsigned level = (63u - (unsigned)__builtin_clzll(d ^ w->now)) /
		                 PF__TIMER_SLOT_BITS;
		if (level >= PF__TIMER_LEVELS) {
			where = PF__WHEEL_OVERFLOW;
		} else {
			unsigned slot = (unsigned)(d >> level_shift(level)) &
			                (PF__TIMER_SLOTS - 1);
			w->occ[level] |= UINT64_C(1) << slot;
			where = level * PF__TIMER_SLOTS + slot;
		}
	}
	n->where = (uint16_t)where;
	pf__ring_append(&w->lists[where], &n->link);
}

void
pf__wheel_remove(pf__wheel *w, pf__wheel_node *n)
{
	if (!pf__wheel_holds(n))
		return;
	pf__ring_del(&n->link);
	unsigned where = n->where;
	n->where = PF__WHEEL_NOWHERE;
	if (where < PF__WHEEL_SLOTS && pf__ring_empty(&w->lists[where])) {
		w->occ[where / PF__TIMER_SLOTS] &=
		    ~(UINT64_C(1) << (where % PF__TIMER_SLOTS));
	}
}

/*
 * The earliest time (ms) at which the wheel has work: the start of the
 * earliest occupied slot (the lowest non-empty level holds it), else the
 * next crossing of a top-level boundary when the overflow list is not
 * empty, else UINT64_MAX.  *list gets the list that event empties.  The
 * expired list is not considered here.
 */
static uint64_t
next_event(const pf__wheel *w, unsigned *list)
{
	for (unsigned level = 0; level < PF__TIMER_LEVELS; level++) {
		uint64_t occ = w->occ[level];
		if (occ == 0)
			continue;
		unsigned slot = (unsigned)__builtin_ctzll(occ);
		unsigned above = level_shift(level + 1);
		*list = level * PF__TIMER_SLOTS + slot;
		return ((w->now >> above) << above) |
		       ((uint64_t)slot << level_shift(level));
	}
	if (!pf__ring_empty(&w->lists[PF__WHEEL_OVERFLOW])) {
		unsigned top = level_shift(PF__TIMER_LEVELS);
		*list = PF__WHEEL_OVERFLOW;
		return ((w->now >> top) + 1) << top;
	}
	return UINT64_MAX;
}

uint64_t
pf__wheel_next_wake(const pf__wheel *w)
{
	if (!pf__ring_empty(&w->lists[PF__WHEEL_EXPIRED]))
		return w->now;
	unsigned list;
	return next_event(w, &list);
}


static void
hand_out(pf__ring *due, pf__wheel_node *n)
{
	n->where = PF__WHEEL_NOWHERE;
	pf__ring_append(due, &n->link);
}

/*
 * The advance (wheel.h).  A node handed out is out of every list of the
 * wheel (where is NOWHERE) and linked on due.
 */
void
pf__wheel_advance(pf__wheel *w, uint64_t to_ms, pf__ring *due)
{
	pf__ring todo;
	pf__ring_init(&todo);
	/* Armed in the past: earlier than anything still in the wheel. */
	if (!pf__ring_empty(&w->lists[PF__WHEEL_EXPIRED]))
		pf__ring_splice(&todo, &w->lists[PF__WHEEL_EXPIRED]);
	while (!pf__ring_empty(&todo)) {
		pf__wheel_node *n = node_of(todo.next);
		pf__ring_del(&n->link);
		hand_out(due, n);
	}

	for (;;) {
		unsigned list;
		uint64_t event = next_event(w, &list);
		if (event > to_ms)
			break;
		pf__assert(event >= w->now);
		w->now = event;
		if (!pf__ring_empty(&w->lists[list]))
			pf__ring_splice(&todo, &w->lists[list]);
		if (list < PF__WHEEL_SLOTS) {
			w->occ[list / PF__TIMER_SLOTS] &=
			    ~(UINT64_C(1) << (list % PF__TIMER_SLOTS));
		}
		while (!pf__ring_empty(&todo)) {
			pf__wheel_node *n = node_of(todo.next);
			pf__ring_del(&n->link);
			if (n->deadline_ms <= event) {
				hand_out(due, n);
			} else {
				pf__wheel_insert(w, n);
				/* A cascade moves a node strictly down. */
				pf__assert(
				    n->where < list || list == PF__WHEEL_OVERFLOW);
			}
		}
	}
	/*
	 * No slot starts in (now, to_ms], so every node stays where it is
	 * filed relative to to_ms as well.
	 */
	if (to_ms > w->now)
		w->now = to_ms;
}

void
pf__wheel_clear(pf__wheel *w, pf__ring *out)
{
	for (unsigned i = 0; i < PF__WHEEL_LISTS; i++) {
		pf__ring *h = &w->lists[i];
		while (!pf__ring_empty(h)) {
			pf__wheel_node *n = node_of(h->next);
			pf__ring_del(&n->link);
			n->where = PF__WHEEL_NOWHERE;
			pf__ring_append(out, &n->link);
		}
	}
	for (unsigned i = 0; i < PF__TIMER_LEVELS; i++)
		w->occ[i] = 0;
}

int
pf__wheel_level(const pf__wheel_node *n)
{
	if (n->where == PF__WHEEL_NOWHERE)
		return -1;
	if (n->where < PF__WHEEL_SLOTS)
		return n->where / PF__TIMER_SLOTS;
	if (n->where == PF__WHEEL_OVERFLOW)
		return PF__TIMER_LEVELS;
	return 0; /* expired, handed out at the next advance */
}
