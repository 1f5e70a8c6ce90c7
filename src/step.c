/*
 * step.c: fn steps (pf_ctx_exec_fn): a function run at once on the
 * caller's stack, as a tracked child context of its own.
 */
#include "config.h"

#include "child.h"
#include "clock.h"
#include "ctx.h"
#include "engine.h"
#include "frame.h"
#include "journal.h"
#include "message.h"

struct fn_call {
	pf_fn fn;
	pf_ctx *child;
	void *arg;
};

static int
call_fn(void *arg)
{
	struct fn_call *c = arg;
	return c->fn(c->child, c->arg);
}

int
pf_ctx_exec_fn(pf_ctx *parent, const char *name, pf_fn fn, void *arg)
{
	if (fn == NULL || pf__in_user_callback())
		return PF_EINVAL;
	int rc = pf__check_parent(parent);
	if (rc != 0)
		return rc;
	/* Steps nest on the caller's stack: refused once its budget for
	 * nesting is spent, as helping is (pumped.h, pf_ctx_exec_fn). */
	if (!pf__thread_can_nest())
		return PF_EAGAIN;
	/* Counted as unfinished while it runs, so that dispose does not
	 * dispose the extensions under its wrap on an outside thread. */
	pf__engine *g = parent->engine;
	rc = pf__engine_enter(g);
	if (rc != 0)
		return rc;
	pf_ctx *child;
	rc = pf__ctx_new(g, parent, PF__CTX_FN, name, "fn", &child);
	if (rc != 0) {
		pf__engine_finished(g);
		return rc;
	}
	pf__ctx_link(child);
	struct fn_call call = { fn, child, arg };
	pf_operation op = {
		.kind = PF_OP_EXECUTION,
		.target = PF_TARGET_FN,
		.context = child,
		.name = pf__ctx_name(child),
	};
	pf__frame f;
	pf__frame_push(&f, PF__FRAME_STEP, g);
	rc = pf__ext_run(&g->exts, &op, call_fn, &call);
	pf__frame_pop(&f);
	if (rc != 0) {
		pf__ctx_record_error(child, rc);
		pf__ctx_pass_message(child);
	}
	pf__ctx_end_at(child, pf__clock_raw());
	pf__ctx_end_life(child);
	pf__ctx_release(child);
	pf__engine_finished(g);
	return rc;
}
