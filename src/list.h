/*
 * list.h: intrusive doubly linked lists.
 *
 * Two shapes, each a handful of inline functions; a record embeds the
 * node and finds itself back with PF_CONTAINER_OF.  Not thread-safe: the
 * owner of a list says which lock protects it.
 *
 *   pf__hlist  a head of one pointer (NULL when empty) and nodes that
 *              point back at the link that points at them, so a node
 *              unlinks itself without knowing the head (as Linux's
 *              hlist).  For lists whose heads are many and small:
 *              children of a context, waiters of an execution, chunks of
 *              a slab.
 *   pf__ring   a circular list around a sentinel: O(1) append at the tail
 *              and splice of one list onto another.  For the timer wheel.
 */
#ifndef PF_LIST_H
#define PF_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* --------------------------------------------------------------- hlist */

typedef struct pf__hnode {
	struct pf__hnode *next;
	struct pf__hnode **pprev; /* the link that points at this node */
} pf__hnode;

typedef struct pf__hlist {
	pf__hnode *first;
} pf__hlist;

static inline void
pf__hlist_init(pf__hlist *h)
{
	h->first = NULL;
}

static inline bool
pf__hlist_empty(const pf__hlist *h)
{
	return h->first == NULL;
}

/* Links n at the head of h. */
static inline void
pf__hlist_push(pf__hlist *h, pf__hnode *n)
{
	n->next = h->first;
	if (h->first != NULL)
		h->first->pprev = &n->next;
	h->first = n;
	n->pprev = &h->first;
}

/* Unlinks n from whichever list holds it. */
static inline void
pf__hlist_del(pf__hnode *n)
{
	*n->pprev = n->next;
	if (n->next != NULL)
		n->next->pprev = n->pprev;
	n->next = NULL;
	n->pprev = NULL;
}

/* Unlinks and returns the first node, or NULL. */
static inline pf__hnode *
pf__hlist_pop(pf__hlist *h)
{
	pf__hnode *n = h->first;
	if (n != NULL)
		pf__hlist_del(n);
	return n;
}

/* ---------------------------------------------------------------- ring */

typedef struct pf__ring {
	struct pf__ring *next, *prev;
} pf__ring;

/* An empty ring (sentinel), or a node that is in no ring. */
static inline void
pf__ring_init(pf__ring *r)
{
	r->next = r->prev = r;
}

static inline bool
pf__ring_empty(const pf__ring *r)
{
	return r->next == r;
}

/* Appends n before the sentinel h (at the tail). */
static inline void
pf__ring_append(pf__ring *h, pf__ring *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Unlinks n; it becomes a ring of its own (pf__ring_empty is true). */
static inline void
pf__ring_del(pf__ring *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	pf__ring_init(n);
}

/* Moves every node of src (not empty) to the tail of dst; src is left
 * empty. */
static inline void
pf__ring_splice(pf__ring *dst, pf__ring *src)
{
	src->next->prev = dst->prev;
	dst->prev->next = src->next;
	src->prev->next = dst;
	dst->prev = src->prev;
	pf__ring_init(src);
}

#endif /* PF_LIST_H */
