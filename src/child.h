/*
 * child.h: child executions: the checks every start makes, the journal
 * lookup of keyed calls, and creation in two phases for parallel groups.
 */
#ifndef PF_CHILD_H
#define PF_CHILD_H

#include <stdbool.h>

#include "record.h"

/* The checks of every call that starts a flow execution: 0 or PF_EINVAL.
 * Starting work from a status callback or signal listener is refused
 * (pumped.h, "Callbacks"). */
int pf__check_flow(const pf_flow *f, const void *input,
    const pf_exec_options *opts);
/* The checks every child operation makes on its parent: 0, PF_EINVAL,
 * PF_ESHUTDOWN, or the parent's abort reason. */
int pf__check_parent(pf_ctx *parent);
/* The checks of creating a deferred execution: 0 or PF_EINVAL. */
int pf__check_deferred(const pf_flow *f, const pf_exec_options *opts,
    pf_exec **out);

/*
 * A child execution in two phases (exec.h), so that parallel can prepare
 * every call before it starts any.  A prepared child is either a journal
 * hit (an execution recorded under its key, retained) or a new record not
 * yet started, with its journal placeholder when keyed.
 */
typedef struct pf__child {
	pf_exec *e;
	bool hit;
	pf__journal_entry *slot;
} pf__child;

int pf__child_prepare(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf__group *g, pf__child *c);
/* Starts a prepared child (queue: as pf__exec_start) and hands out its
 * execution in *out (NULL: released). */
void pf__child_start(pf_ctx *parent, pf__child *c,
    const pf_exec_options *opts, pf_exec **out, bool queue);
/* Drops a prepared child that will not start. */
void pf__child_abandon(pf_ctx *parent, pf__child *c);

#endif /* PF_CHILD_H */
