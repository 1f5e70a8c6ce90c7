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
_Thread_local pf__frame *pf__frame_top PF_TLS_MODEL;

bool
pf__frame_here(unsigned char kind, const void *obj)
{
	for (const pf__frame *f = pf__frame_top; f != NULL; f = f->outer)
		if (f->obj == obj && f->kind == kind)
			return true;
	return false;
}

bool
pf__frame_caller_here(const void *obj)
{
	for (const pf__frame *f = pf__frame_top; f != NULL; f = f->outer)
		if ((f->kind == PF__FRAME_STEP ||
			f->kind == PF__FRAME_WAITER_RUN) && f->obj == obj)
			return true;
	return false;
}

unsigned
pf__frame_waiter_runs(void)
{
	return pf__frame_top != NULL ? pf__frame_top->waiter_runs : 0;
}

bool
pf__frame_holds_slot(const pf__pool *p)
{
	for (const pf__frame *f = pf__frame_top; f != NULL; f = f->outer)
		if (f->slot != NULL && f->slot == p)
			return true;
	return false;
}

void
pf__frame_slots_give(void)
{
	for (const pf__frame *f = pf__frame_top; f != NULL; f = f->outer)
		if (f->slot != NULL)
			pf__pool_slot_give(f->slot);
}

void
pf__frame_slots_resume(void)
{
	for (const pf__frame *f = pf__frame_top; f != NULL; f = f->outer)
		if (f->slot != NULL)
			pf__pool_slot_resume(f->slot);
}

const void *
pf__frame_thread(void)
{
	return &pf__frame_top;
}
