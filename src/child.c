/*
 * child.c: child executions (child.h), pf_ctx_exec and pf_ctx_run.
 */
#include "config.h"

#include "await.h"
#include "child.h"
#include "engine.h"
#include "exec.h"
#include "frame.h"
#include "journal.h"

int
pf__check_flow(const pf_flow *f, const void *input,
    const pf_exec_options *opts)
{
	if (f == NULL || f->handler == NULL ||
	    (f->input_size > 0 && input == NULL) ||
	    f->input_size > PF__MAX_DATA || f->output_size > PF__MAX_DATA ||
	    pf__in_user_callback())
		return PF_EINVAL;
	if (opts != NULL && opts->n_tags != 0 && opts->tags == NULL)
		return PF_EINVAL;
	return 0;
}

int
pf__check_parent(pf_ctx *parent)
{
	if (parent == NULL || parent->kind == PF__CTX_ROOT)
		return PF_EINVAL;
	int rc = pf__engine_open(parent->engine);
	if (rc != 0)
		return rc;
	return pf__ctx_abort_reason(parent);
}

int
pf__child_prepare(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf__group *g, pf__child *c)
{
	int rc = pf__check_flow(f, input, opts);
	if (rc == 0)
		rc = pf__check_parent(parent);
	if (rc != 0)
		return rc;
	c->hit = false;
	c->slot = NULL;
	if (opts != NULL && opts->key != NULL) {
		rc = pf__journal_claim(parent, f, opts->key, &c->e, &c->slot);
		if (rc < 0)
			return rc;
		if (rc == PF__JOURNAL_HIT) {
			c->hit = true;
			return 0;
		}
		/* PF__JOURNAL_CLOSED: run unjournaled (no slot). */
	}
	rc = pf__exec_prepare(parent->engine, parent, f, input, opts, g,
	    &c->e);
	if (rc != 0 && c->slot != NULL)
		pf__journal_settle(parent, c->slot, NULL);
	return rc;
}

void
pf__child_start(pf_ctx *parent, pf__child *c, const pf_exec_options *opts,
    pf_exec **out, bool queue)
{
	if (!c->hit) {
		/* Keeps the creation's reference in c->e. */
		pf__exec_start(c->e, opts, &c->e, queue);
		if (c->slot != NULL)
			pf__journal_settle(parent, c->slot, c->e);
	}
	if (out != NULL)
		*out = c->e;
	else
		pf_exec_release(c->e);
}

void
pf__child_abandon(pf_ctx *parent, pf__child *c)
{
	if (c->hit) {
		pf_exec_release(c->e);
		return;
	}
	pf__exec_discard(c->e);
	if (c->slot != NULL)
		pf__journal_settle(parent, c->slot, NULL);
}

static int
child_exec(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out, bool queue)
{
	pf__child c;
	int rc = pf__child_prepare(parent, f, input, opts, NULL, &c);
	if (rc == 0)
		pf__child_start(parent, &c, opts, out, queue);
	return rc;
}

int
pf_ctx_exec(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out)
{
	return child_exec(parent, f, input, opts, out, true);
}

int
pf__check_deferred(const pf_flow *f, const pf_exec_options *opts,
    pf_exec **out)
{
	if (f == NULL || out == NULL || f->output_size > PF__MAX_DATA ||
	    pf__in_user_callback())
		return PF_EINVAL;
	if (opts != NULL && (opts->key != NULL ||
		(opts->n_tags != 0 && opts->tags == NULL)))
		return PF_EINVAL;
	return 0;
}

int
pf_ctx_exec_deferred(pf_ctx *parent, const pf_flow *f,
    const pf_exec_options *opts, pf_exec **out)
{
	int rc = pf__check_deferred(f, opts, out);
	if (rc == 0)
		rc = pf__check_parent(parent);
	return rc != 0 ? rc :
	    pf__exec_defer(parent->engine, parent, f, opts, out);
}

int
pf_ctx_run(pf_ctx *parent, const pf_flow *f, const void *input, void *output,
    const pf_exec_options *opts)
{
	/*
	 * The caller would wait for the child, and a waiter runs a pending
	 * child itself anyway, so the child is not queued at all where the
	 * caller may run it: on a worker of the scope with stack to spare
	 * (this skips the push, the take and its fence, and the queue's
	 * reference), and on a thread that is no pool's worker when a run
	 * slot is free (pf__inline_begin; this also leaves no stale queue
	 * entry keeping the finished record alive).  Elsewhere it goes
	 * through the pool as usual.
	 */
	bool valid = parent != NULL && parent->kind != PF__CTX_ROOT;
	pf__engine *g = valid ? parent->engine : NULL;
	pf__worker *w = valid ? pf__pool_current(g->pool) : NULL;
	bool here = w != NULL && pf__worker_can_help(w);
	pf__frame frame;
	bool framed = false, entered = false;
	if (valid && w == NULL && pf__worker_self() == NULL &&
	    pf__engine_enter(g) == 0) {
		entered = true;
		framed = pf__inline_begin(g, &frame);
	}
	pf_exec *e;
	int rc = child_exec(parent, f, input, opts, &e, !(here || framed));
	if (rc == 0 && (here || framed))
		pf__exec_run_here(e, w);
	if (framed)
		pf__inline_end(&frame);
	/* Counted until here: the slot's pool outlives its give. */
	if (entered)
		pf__engine_finished(g);
	if (rc != 0)
		return rc;
	rc = pf__exec_wait_end(e, output);
	pf_exec_release(e);
	return rc;
}
