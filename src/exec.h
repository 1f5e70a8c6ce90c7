/*
 * exec.h: flow executions: creation and the status machine.
 *
 * The status word and its transitions are described at the top of exec.c;
 * waiting for an execution is await.c's.
 */
#ifndef PF_EXEC_H
#define PF_EXEC_H

#include <stdbool.h>

#include "ctx.h"
#include "record.h"

/* The class of flow contexts (ctx.h), installed by the scope. */
extern const pf__ctx_class pf__exec_class;

/*
 * Creation in two phases, so that a group of executions can be built
 * completely (every allocation done) before any of them starts:
 * pf__exec_prepare allocates and fills a record that nobody can see yet
 * (0, PF_ENOMEM, PF_ESHUTDOWN); pf__exec_start (which cannot fail) delivers
 * pending, arms the timeout, links and submits it (unless queue is false:
 * then the caller runs it at once with pf__exec_run_here); pf__exec_discard
 * drops a prepared record that will not start, running nothing and calling
 * no callback.  pf__exec_create does both phases.
 */
int pf__exec_prepare(pf__engine *g, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *group,
    pf_exec **out);
void pf__exec_start(pf_exec *e, const pf_exec_options *opts, pf_exec **out,
    bool queue);
void pf__exec_discard(pf_exec *e);
int pf__exec_create(pf__engine *g, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *group,
    pf_exec **out);
/* Claims a pending execution and runs it on this thread (worker w, or
 * NULL): true; false, doing nothing, if it started or finished.  With
 * pf__exec_start's queue false, the caller must call it (nobody else
 * would run it).  The one place an execution is claimed and run. */
bool pf__exec_run_here(pf_exec *e, pf__worker *w);
/* The pool's run function (pf__pool_config.run): runs the execution whose
 * queued task t is, if still pending, and drops the queue's reference. */
void pf__exec_task_run(pf__task *t);

/*
 * Deferred executions (pumped.h, pf_ctx_exec_deferred): created, linked
 * and set running at once with no task; the flag PF__F_DEFERRED marks
 * them until the one pf__exec_settle_deferred that ends them (0; PF_EINVAL
 * when settled before, or cancelled before it could run).  Arguments are
 * checked by the callers.
 */
int pf__exec_defer(pf__engine *g, pf_ctx *parent, const pf_flow *f,
    const pf_exec_options *opts, pf_exec **out);
int pf__exec_settle_deferred(pf_exec *e, pf_status st, int code,
    const void *output, const char *message);
/* Cancels e if it is still pending, so that it never runs: true; false,
 * doing nothing, once it started or ended. */
bool pf__exec_withdraw(pf_exec *e);

/* Whether e's terminal callbacks returned, so its result is final
 * (acquire: pairs with the RMW that sets DONE in exec.c's settle). */
static inline bool
pf__exec_done(const pf_exec *e)
{
	return (pf__exec_word(e) & PF__F_DONE) != 0;
}

#endif /* PF_EXEC_H */
