/*
 * frame.c: the per-thread chain of frames (frame.h).
 *
 * Only the owning thread reads or writes its chain, so nothing here is
 * atomic.  Chains are short (nesting is bounded by the stack budget and
 * by MAX_INLINE_RUNS in wait.c), and walked only on the paths that ask.
 */
#include "config.h"

#include "frame.h"

_Thread_local unsigned pf__in_callback PF_TLS_MODEL;
static _Thread_local pf__frame *tls_top PF_TLS_MODEL;

void
pf__frame_push(pf__frame *f, unsigned char kind, const void *obj)
{
	f->outer = tls_top;
	f->obj = obj;
	f->slot = NULL;
	f->kind = kind;
	f->waiter_runs = (f->outer != NULL ? f->outer->waiter_runs : 0) +
	    (kind == PF__FRAME_WAITER_RUN);
	if (kind == PF__FRAME_SUBSCRIBER || kind == PF__FRAME_LISTENER)
		pf__in_callback++;
	tls_top = f;
}

void
pf__frame_pop(pf__frame *f)
{
	pf__assert(tls_top == f);
	if (f->kind == PF__FRAME_SUBSCRIBER || f->kind == PF__FRAME_LISTENER)
		pf__in_callback--;
	tls_top = f->outer;
}

bool
pf__frame_here(unsigned char kind, const void *obj)
{
	for (const pf__frame *f = tls_top; f != NULL; f = f->outer)
		if (f->kind == kind && f->obj == obj)
			return true;
	return false;
}

bool
pf__frame_caller_here(const void *obj)
{
	for (const pf__frame *f = tls_top; f != NULL; f = f->outer)
		if ((f->kind == PF__FRAME_STEP ||
			f->kind == PF__FRAME_WAITER_RUN) && f->obj == obj)
			return true;
	return false;
}

unsigned
pf__frame_waiter_runs(void)
{
	return tls_top != NULL ? tls_top->waiter_runs : 0;
}

bool
pf__frame_holds_slot(const pf__pool *p)
{
	for (const pf__frame *f = tls_top; f != NULL; f = f->outer)
		if (f->slot != NULL && f->slot == p)
			return true;
	return false;
}

void
pf__frame_slots_give(void)
{
	for (const pf__frame *f = tls_top; f != NULL; f = f->outer)
		if (f->slot != NULL)
			pf__pool_slot_give(f->slot);
}

void
pf__frame_slots_resume(void)
{
	for (const pf__frame *f = tls_top; f != NULL; f = f->outer)
		if (f->slot != NULL)
			pf__pool_slot_resume(f->slot);
}

const void *
pf__frame_thread(void)
{
	return &tls_top;
}
