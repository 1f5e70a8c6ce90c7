/*
 * ctx.h: the context tree: records' lifetime, links, abort and timeouts.
 *
 * Kinds above this module (an execution's status machine, the scope) are
 * reached through the class each installs for its kind with
 * pf__ctx_set_class, never by calling up: the record's free, and the two
 * steps of cancelling a pending execution that an abort takes.
 */
#ifndef PF_CTX_H
#define PF_CTX_H

#include <stdbool.h>
#include <stdint.h>

#include "record.h"

typedef struct pf__ctx_class {
	/* Frees the record's memory, once its common parts (cold block,
	 * name) were freed.  NULL: pf__record_free. */
	void (*free)(pf_ctx *c);
	/* An abort of a pending execution in two steps: claim it (no handler
	 * can start after that; false if it started or finished), then,
	 * after the context's listeners ran, publish it cancelled.  NULL for
	 * kinds with nothing to cancel. */
	bool (*claim_cancel)(pf_ctx *c);
	void (*cancel_claimed)(pf_ctx *c, int reason);
} pf__ctx_class;

/* Installs the class of a kind; before any record of that kind exists,
 * and the same class each time (scope.c does it once per process). */
void pf__ctx_set_class(unsigned kind, const pf__ctx_class *cls);

/* Initialises every field of c (no memset needed), with one reference
 * (the creation's), retaining parent. */
void pf__ctx_init(pf_ctx *c, pf__engine *g, pf_ctx *parent, uint8_t kind,
    int64_t now);
/* A bare record (fn step or standalone) under parent, started now, not
 * linked yet: 0 or PF_ENOMEM. */
int pf__ctx_new(pf__engine *g, pf_ctx *parent, uint8_t kind,
    const char *name, const char *fallback, pf_ctx **out);
/* Drops a record that was never linked: its reference and its parent's. */
void pf__ctx_discard(pf_ctx *c);
/* Links c under its parent: 0, or the parent's abort reason (c is then
 * aborted with it). */
int pf__ctx_link(pf_ctx *c);
void pf__ctx_retain(pf_ctx *c);
bool pf__ctx_try_retain(pf_ctx *c);
void pf__ctx_release(pf_ctx *c);
int pf__ctx_set_name(pf_ctx *c, const char *name, const char *fallback);

/* Aborts c and its subtree with reason (first abort wins). */
void pf__ctx_abort(pf_ctx *c, int reason);
/* Calls visit on every record below c that is still alive, depth first
 * (parents before children; depth 1 for c's children), each retained
 * during its call; the caller keeps c alive.  visit must not block for
 * long: a worker linking a child under a node waits for the walk's brief
 * hold of that node's lock, never for visit. */
void pf__ctx_walk(pf_ctx *c, void (*visit)(pf_ctx *k, unsigned depth,
    void *arg), void *arg);
/* Sets completed_at once (not before the start). */
void pf__ctx_end_at(pf_ctx *c, int64_t now);
/* Arms c's timeout (its cold block made beforehand), counted from its
 * creation; cancelled by pf__ctx_cancel_timeout, or fired as an abort
 * with PF_ETIMEDOUT while c is unfinished. */
void pf__ctx_arm_timeout(pf_ctx *c, uint64_t timeout_ms);
void pf__ctx_cancel_timeout(pf_ctx *c);

#endif /* PF_CTX_H */
