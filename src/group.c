/*
 * group.c: the failure word of a parallel group (group.h).
 */
#include "config.h"

#include "ctx.h"
#include "group.h"

void
pf__group_init(pf__group *g, bool settled, _Atomic(pf_exec *) *execs,
    size_t n)
{
	g->settled = settled;
	pf__atomic_init(&g->failed, 0);
	g->n = n;
	g->execs = execs;
	for (size_t i = 0; i < n; i++)
		pf__atomic_init(&execs[i], NULL);
}

/* Aborts e unless it finished (its descendants are left as they are). */
static void
abort_call(pf_exec *e)
{
	if (pf__status_of(pf__exec_word(e)) < PF_COMPLETED)
		pf__ctx_abort(&e->ctx, PF_ECANCELED);
}

void
pf__group_publish(pf__group *g, size_t i, pf_exec *e)
{
	/* Seq_cst, with pf__group_failed(): the diagram in group.h. */
	pf__store_seq_cst(&g->execs[i], e);
	if (!g->settled &&
	    atomic_load_explicit(&g->failed, memory_order_seq_cst) != 0)
		abort_call(e);
}

void
pf__group_failed(pf__group *g, pf_exec *e)
{
	int zero = 0;
	/* Seq_cst, with pf__group_publish(): the diagram in group.h. */
	PF_HB_BEFORE(&g->failed);
	if (!atomic_compare_exchange_strong_explicit(&g->failed, &zero,
		e->result, memory_order_seq_cst, memory_order_seq_cst))
		return;
	for (size_t i = 0; i < g->n; i++) {
		pf_exec *o = pf__load_seq_cst(&g->execs[i]);
		if (o != NULL && o != e)
			abort_call(o);
	}
}

int
pf__group_failure(pf__group *g)
{
	/* Every call is DONE here (waited), and a failing call sets the
	 * word before its DONE: acquire is more than enough. */
	return pf__load_acquire(&g->failed);
}
