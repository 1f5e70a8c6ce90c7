/*
 * ext.h: a scope's extension chain.
 *
 * The list is an immutable array published through an atomic pointer
 * (release on publish, acquire on read), replaced whole by pf__ext_add
 * under the chain's mutex.  Replaced arrays are kept until the chain is
 * freed, so an operation that loaded an old array can finish with it.
 * With no extension the pointer is NULL and an operation costs one load
 * and a branch (pf__ext_none).
 */
#ifndef PF_EXT_H
#define PF_EXT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "atomics.h"
#include "pumped.h"

typedef struct pf__extlist pf__extlist;

typedef struct pf__exts {
	_Atomic(pf__extlist *) list;
	/* The public handle the extensions' callbacks receive (a pf_scope;
	 * opaque here: the chain never looks into it). */
	void *scope;
	pthread_mutex_t lock; /* serialises pf__ext_add */
} pf__exts;

void pf__ext_init(pf__exts *x, void *scope);
/* Runs ext's init, then appends it: 0, PF_ENOMEM or init's code (then
 * ext's dispose has run, if init succeeded). */
int pf__ext_add(pf__exts *x, const pf_extension *ext);
/* Calls every extension's dispose, in registration order. */
void pf__ext_dispose_all(pf__exts *x);
/* Frees the arrays (the chain is not used again). */
void pf__ext_fini(pf__exts *x);

/* Whether no extension is registered: then run the operation directly. */
static inline bool
pf__ext_none(pf__exts *x)
{
	/* Acquire: pairs with the release in pf__ext_add(). */
	return pf__load_acquire(&x->list) == NULL;
}

/* Runs run(arg) through every extension's wrap. */
int pf__ext_run(pf__exts *x, const pf_operation *op, int (*run)(void *),
    void *arg);

#endif /* PF_EXT_H */
