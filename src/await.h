/*
 * await.h: waiting for an execution's end.
 *
 * A worker of the execution's scope helps (runs the execution itself if
 * it has not started, else other work) and sleeps only when there is
 * none; any other thread runs it itself if it may, else polls a little
 * and sleeps.  A wait that nothing can ever end fails with PF_EAGAIN
 * (pumped.h, pf_exec_wait).  The protocols are at the top of await.c.
 */
#ifndef PF_AWAIT_H
#define PF_AWAIT_H

#include <stdint.h>

#include "frame.h"
#include "record.h"

/* Waits until e is DONE or the monotonic deadline (ns; -1: none; 0: poll)
 * passes, then copies the output: e's result, PF_EAGAIN when it did not
 * end, PF_EINVAL when e's handler is running below on this stack. */
int pf__exec_wait(pf_exec *e, void *output, int64_t deadline_ns);
/* Waits for e's end, whatever happens: when the wait fails with PF_EAGAIN
 * (nothing can run e), aborts e, waits until it ended and returns
 * PF_EAGAIN.  For callers whose frame e refers to (parallel groups) or
 * that hand out no handle (the *_run calls). */
int pf__exec_wait_end(pf_exec *e, void *output);

/*
 * A thread that is not a worker of g's pool runs an execution itself:
 * between pf__inline_begin (true) and pf__inline_end it holds one of the
 * pool's run slots (or an outer inline run on this thread does) in a
 * WAITER_RUN frame f.  False, with nothing taken, when no slot is free or
 * this thread's nesting is spent.  The caller keeps g's pool alive
 * meanwhile (an unfinished count).
 */
bool pf__inline_begin(pf__engine *g, pf__frame *f);
void pf__inline_end(pf__frame *f);

#endif /* PF_AWAIT_H */
