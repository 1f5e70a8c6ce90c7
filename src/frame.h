/*
 * frame.h: what this thread is running now, as a chain of frames.
 *
 * Each frame lives on the stack of the call it describes and is linked
 * into a per-thread chain, innermost first.  The chain answers the
 * questions the API's edges ask (docs/API-NOTES.md, "Edges"):
 *
 *   HANDLER     a flow handler running here: waiting on its own execution
 *               would wait for itself (PF_EINVAL).
 *   STEP        an fn step running here; WAITER_RUN an execution a waiter
 *               runs itself (wait.c).  Both are work this thread does for
 *               a scope as a caller rather than as one of its workers:
 *               pf_scope_dispose refuses from inside them, and a
 *               WAITER_RUN frame may hold one of the scope's run slots.
 *   SUBSCRIBER  a status callback (sub.c) or LISTENER a signal listener
 *               (signal.c) running here: removing it from inside its own
 *               call must not wait for itself.
 *
 * The callback depth (pf__in_callback) counts every status callback and
 * signal listener running on this thread, framed or not: the calls that
 * would block the transition that runs them are refused there.
 */
#ifndef PF_FRAME_H
#define PF_FRAME_H

#include <stdbool.h>

#include "common.h"
#include "pool.h"

enum pf__frame_kind {
	PF__FRAME_HANDLER,
	PF__FRAME_STEP,
	PF__FRAME_WAITER_RUN,
	PF__FRAME_SUBSCRIBER,
	PF__FRAME_LISTENER,
};

typedef struct pf__frame {
	struct pf__frame *outer;
	const void *obj;       /* the execution, engine, subscriber, listener */
	pf__pool *slot;        /* WAITER_RUN: the pool whose run slot this
	                          frame holds, or NULL */
	unsigned waiter_runs;  /* WAITER_RUN frames here and outside */
	unsigned char kind;    /* enum pf__frame_kind */
} pf__frame;

/* Whether a frame of this kind for obj is on this thread's chain. */
bool pf__frame_here(unsigned char kind, const void *obj);
/* Whether a STEP or WAITER_RUN frame for obj is on the chain. */
bool pf__frame_caller_here(const void *obj);
/* WAITER_RUN frames on the chain. */
unsigned pf__frame_waiter_runs(void);
/* Whether a frame of this thread holds a run slot of pool p. */
bool pf__frame_holds_slot(const pf__pool *p);
/* Gives back every run slot this thread's frames hold (before it sleeps
 * in a wait), and takes them back as a resumer. */
void pf__frame_slots_give(void);
void pf__frame_slots_resume(void);
/* An address unique to this thread while it lives. */
const void *pf__frame_thread(void);

/* Status callbacks and signal listeners running on this thread now. */
extern _Thread_local unsigned pf__in_callback PF_TLS_MODEL;
/* This thread's innermost frame (frame.c's; inline for the hot path: a
 * HANDLER frame per execution run). */
extern _Thread_local pf__frame *pf__frame_top PF_TLS_MODEL;

static inline bool
pf__in_user_callback(void)
{
	return pf__in_callback != 0;
}

/* Pushes f (on the caller's stack) for obj; pop it before returning. */
static inline void
pf__frame_push(pf__frame *f, unsigned char kind, const void *obj)
{
	pf__frame *outer = pf__frame_top;
	f->outer = outer;
	f->obj = obj;
	f->slot = NULL;
	f->kind = kind;
	f->waiter_runs = (outer != NULL ? outer->waiter_runs : 0) +
	    (kind == PF__FRAME_WAITER_RUN);
	if (kind == PF__FRAME_SUBSCRIBER || kind == PF__FRAME_LISTENER)
		pf__in_callback++;
	pf__frame_top = f;
}

static inline void
pf__frame_pop(pf__frame *f)
{
	pf__assert(pf__frame_top == f);
	if (f->kind == PF__FRAME_SUBSCRIBER || f->kind == PF__FRAME_LISTENER)
		pf__in_callback--;
	pf__frame_top = f->outer;
}

#endif /* PF_FRAME_H */
