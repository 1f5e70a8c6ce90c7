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
pf_ctx_run(pf_ctx *parent, const pf_flow *f, const void *input, void *output,
    const pf_exec_options *opts)
{
	/*
	 * On a worker of the scope, with stack to spare, the child is not
	 * queued at all: the wait would claim it from the own deque anyway,
	 * so run it here at once and skip the push, the take (and its
	 * fence) and the queue's reference.  Elsewhere it goes through the
	 * pool as usual.
	 */
	pf__worker *w = parent != NULL && parent->kind != PF__CTX_ROOT ?
	    pf__pool_current(parent->engine->pool) : NULL;
	bool here = w != NULL && pf__worker_can_help(w);
	pf_exec *e;
	int rc = child_exec(parent, f, input, opts, &e, !here);
	if (rc != 0)
		return rc;
	if (here)
		pf__exec_run_here(e, w);
	rc = pf__exec_wait_end(e, output);
	pf_exec_release(e);
	return rc;
}
