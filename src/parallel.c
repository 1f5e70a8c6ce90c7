/*
 * parallel.c: pf_ctx_parallel and pf_ctx_parallel_settled.
 *
 * Every call is prepared before any starts (an allocation failure then
 * returns PF_ENOMEM with nothing started), then all start, then the
 * caller waits for each to its end: the calls refer to this frame (the
 * group, group.h).  Keyed calls are prepared in key order: see
 * plan_order().
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "await.h"
#include "child.h"
#include "engine.h"
#include "exec.h"
#include "frame.h"
#include "group.h"
#include "message.h"

/* Preparation order of a group's calls: see plan_order(). */
struct call_order {
	const char *key; /* NULL: no journal key */
	size_t idx;
};

struct par {
	pf_ctx *ctx;
	pf_call *calls;
	size_t n;
	bool settled;
	pf__group group;
	pf__child *children;       /* n slots */
	struct call_order *order;  /* n slots */
	size_t *alias;             /* n slots: first call with the same key,
	                              or n */
	pf_parallel_stats stats;
};

static int
order_cmp(const void *a, const void *b)
{
	const struct call_order *x = a, *y = b;
	if (x->key != NULL && y->key != NULL) {
		int c = strcmp(x->key, y->key);
		if (c != 0)
			return c;
	} else if (x->key != y->key) {
		return x->key == NULL ? -1 : 1;
	}
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Keyed calls are prepared in key order.  Preparing one leaves a journal
 * placeholder that a concurrent caller with the same key waits on; two
 * groups preparing crossing keys in their own orders would each wait on
 * the other's placeholder forever.  In one global order, a group only
 * waits for keys after all the keys it holds, so no cycle can form.
 * Sorting also puts a group's calls with equal keys side by side: all but
 * the first share the first's execution.
 */
static int
plan_order(struct par *p)
{
	for (size_t i = 0; i < p->n; i++) {
		const pf_exec_options *o = p->calls[i].opts;
		p->order[i].key = o != NULL ? o->key : NULL;
		p->order[i].idx = i;
	}
	qsort(p->order, p->n, sizeof(*p->order), order_cmp);
	for (size_t k = 0; k < p->n; k++) {
		struct call_order *o = &p->order[k];
		bool dup = k > 0 && o->key != NULL && p->order[k - 1].key != NULL &&
		    strcmp(o->key, p->order[k - 1].key) == 0;
		p->alias[o->idx] = dup ? (p->alias[p->order[k - 1].idx] < p->n ?
		    p->alias[p->order[k - 1].idx] : p->order[k - 1].idx) : p->n;
		/* One key, two flows: as for two separate calls (pumped.h,
		 * key). */
		if (dup && p->calls[o->idx].flow !=
		    p->calls[p->order[k - 1].idx].flow)
			return PF_EINVAL;
	}
	return 0;
}

/*
 * A call's message (pf_call.message): NULL when it completed, else its
 * error's text, copied into the calling context when it is the call's own
 * (pf_ctx_fail's or inherited), so it lives as long as that context.
 */
static const char *
call_message(pf_ctx *caller, pf_exec *e, int rc)
{
	if (rc == 0)
		return NULL;
	const char *own = pf__ctx_own_message(&e->ctx);
	const char *kept = own != NULL ? pf__ctx_keep_text(caller, own) : NULL;
	return kept != NULL ? kept : pf_strerror(rc);
}

/* Nothing ran: every call reports why. */
static int
fail_all(struct par *p, int rc)
{
	for (size_t j = 0; j < p->n; j++) {
		p->calls[j].result = rc;
		p->calls[j].status = PF_CANCELLED;
		p->calls[j].message = pf_strerror(rc);
	}
	return rc;
}

/* Prepares every call in plan order: 0, or a code with none left. */
static int
prepare_all(struct par *p)
{
	for (size_t k = 0; k < p->n; k++) {
		size_t i = p->order[k].idx;
		pf_call *c = &p->calls[i];
		int rc = p->alias[i] < p->n ? 0 :
		    pf__child_prepare(p->ctx, c->flow, c->input, c->opts,
			&p->group, &p->children[i]);
		if (rc != 0) {
			for (size_t q = k; q-- > 0;) {
				size_t j = p->order[q].idx;
				if (p->alias[j] == p->n)
					pf__child_abandon(p->ctx,
					    &p->children[j]);
			}
			return rc;
		}
	}
	return 0;
}

static int
run_parallel(void *arg)
{
	struct par *p = arg;
	pf__group *g = &p->group;
	int rc = plan_order(p);
	if (rc == 0)
		rc = prepare_all(p);
	if (rc != 0)
		return fail_all(p, rc);
	/* On a worker with stack to spare, the last call is not queued: the
	 * reverse wait below would claim it first anyway, so it runs here
	 * (as pf_ctx_run does) once every call has started. */
	pf__worker *w = pf__pool_current(p->ctx->engine->pool);
	bool here = w != NULL && pf__worker_can_help(w) && p->n > 0 &&
	    p->alias[p->n - 1] >= p->n;
	/* Started in call order; a call sharing an earlier call's key takes
	 * that (already started) execution. */
	for (size_t i = 0; i < p->n; i++) {
		pf_exec *e;
		if (p->alias[i] < p->n)
			e = pf_exec_retain(pf__load_relaxed(
			    &g->execs[p->alias[i]]));
		else
			pf__child_start(p->ctx, &p->children[i],
			    p->calls[i].opts, &e, !(here && i == p->n - 1));
		pf__group_publish(g, i, e);
	}
	/* The slots are written only by this thread; the relaxed loads of
	 * them here and below read our own stores. */
	if (here)
		pf__exec_run_here(pf__load_relaxed(&g->execs[p->n - 1]), w);
	/* Wait in reverse: the last started is the likeliest still queued on
	 * our own deque, so a worker runs it inline. */
	bool starved = false;
	for (size_t i = p->n; i-- > 0;) {
		pf_exec *e = pf__load_relaxed(&g->execs[i]);
		pf_call *c = &p->calls[i];
		/* Waited to the end, whatever happens.  One that nothing
		 * could run was aborted: PF_EAGAIN. */
		c->result = pf__exec_wait_end(e, c->output);
		starved |= c->result == PF_EAGAIN &&
		    pf_exec_status(e) == PF_CANCELLED;
		c->status = pf_exec_status(e);
		c->message = call_message(p->ctx, e, c->result);
	}
	for (size_t i = 0; i < p->n; i++)
		pf_exec_release(pf__load_relaxed(&g->execs[i]));
	p->stats.total = p->n;
	for (size_t i = 0; i < p->n; i++) {
		if (p->calls[i].status == PF_COMPLETED)
			p->stats.succeeded++;
		else if (p->calls[i].status == PF_CANCELLED)
			p->stats.cancelled++;
	}
	p->stats.failed = p->stats.total - p->stats.succeeded;
	if (p->settled)
		return 0;
	if (starved)
		return PF_EAGAIN;
	int first = pf__group_failure(g);
	if (first != 0)
		return first;
	for (size_t i = 0; i < p->n; i++)
		if (p->calls[i].result != 0)
			return p->calls[i].result;
	return 0;
}

static int
parallel(pf_ctx *c, pf_call *calls, size_t n, pf_parallel_stats *stats,
    bool settled)
{
	/* Defined whatever happens: all zero until calls ran. */
	if (stats != NULL)
		*stats = (pf_parallel_stats){ 0, 0, 0, 0 };
	if (c == NULL || (n != 0 && calls == NULL) || pf__in_user_callback())
		return PF_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int rc = pf__check_flow(calls[i].flow, calls[i].input,
		    calls[i].opts);
		if (rc != 0)
			return rc;
	}
	int rc = pf__check_parent(c);
	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	struct par p = { .ctx = c, .calls = calls, .n = n, .settled = settled };
	/* One block for the four per-call arrays (on the stack when small). */
	size_t per_call = sizeof(*p.group.execs) + sizeof(*p.children) +
	    sizeof(*p.order) + sizeof(*p.alias);
	if (n > SIZE_MAX / per_call)
		return PF_EINVAL;
	/* Counted as unfinished while it runs, so that dispose does not
	 * dispose the extensions under a group's wrap on an outside thread. */
	pf__engine *g = c->engine;
	rc = pf__engine_enter(g);
	if (rc != 0)
		return rc;
	alignas(16) unsigned char small[8 * (sizeof(void *) +
	    sizeof(pf__child) + sizeof(struct call_order) + sizeof(size_t))];
	unsigned char *block = n <= 8 ? small : pf__malloc(n * per_call);
	if (block == NULL) {
		pf__engine_finished(g);
		return PF_ENOMEM;
	}
	/* Largest alignment first: children, order, then the word arrays. */
	p.children = (pf__child *)(void *)block;
	p.order = (struct call_order *)(void *)(block + n * sizeof(*p.children));
	_Atomic(pf_exec *) *execs = (_Atomic(pf_exec *) *)(void *)(
	    (unsigned char *)p.order + n * sizeof(*p.order));
	p.alias = (size_t *)(void *)((unsigned char *)execs +
	    n * sizeof(*execs));
	pf__group_init(&p.group, settled, execs, n);
	pf_operation op = {
		.kind = PF_OP_EXECUTION,
		.target = PF_TARGET_PARALLEL,
		.context = c,
		.name = "parallel",
		.input = calls,
		.count = n,
		.settled = settled,
	};
	rc = pf__ext_run(&g->exts, &op, run_parallel, &p);
	if (block != small)
		pf__free(block);
	pf__engine_finished(g);
	/* Still zero when nothing started (an allocation failed). */
	if (stats != NULL)
		*stats = p.stats;
	return rc;
}

int
pf_ctx_parallel(pf_ctx *c, pf_call *calls, size_t n, pf_parallel_stats *stats)
{
	return parallel(c, calls, n, stats, false);
}

int
pf_ctx_parallel_settled(pf_ctx *c, pf_call *calls, size_t n,
    pf_parallel_stats *stats)
{
	return parallel(c, calls, n, stats, true);
}
