/*
 * sub.c: the subscribers of pf_exec_on_status (sub.h).
 *
 * Each subscriber is picked (and marked busy) under the context's lock and
 * called without it, one at a time, so a subscriber removed before its
 * turn is never called, and one removed during its call is waited for
 * (or, removed from inside that call, freed by the delivery when it
 * returns).
 */
#include "config.h"

#include <sched.h>

#include "alloc.h"
#include "sub.h"

/* All fields are protected by the context's lock.  busy counts calls of
 * fn running now (it runs without the lock); a subscriber removed
 * meanwhile is freed by the last of them, unless off_status waits for it
 * (awaited) and frees it itself. */
struct pf__sub {
	pf__sub *next;
	pf_status_fn fn;
	void *data;
	uint32_t seen; /* last status delivered or read at subscription */
	uint32_t busy;
	bool removed;
	bool awaited;
};

void
pf__subs_deliver(pf_exec *e, uint32_t st)
{
	/* The list may change during a call: the search restarts from the
	 * head, and `seen` says who was told. */
	for (;;) {
		pf__spin_lock(&e->ctx.lock);
		/* SUBS is set only after the cold block was made. */
		pf__sub *s = pf__cold_of(&e->ctx)->subs;
		while (s != NULL && s->seen >= st)
			s = s->next;
		if (s == NULL) {
			pf__spin_unlock(&e->ctx.lock);
			return;
		}
		s->seen = st;
		s->busy++;
		pf__spin_unlock(&e->ctx.lock);
		/* Without the lock: a callback may abort, subscribe, ... */
		pf__frame frame;
		pf__frame_push(&frame, PF__FRAME_SUBSCRIBER, s);
		s->fn(e, (pf_status)st, s->data);
		pf__frame_pop(&frame);
		pf__spin_lock(&e->ctx.lock);
		bool gone = --s->busy == 0 && s->removed && !s->awaited;
		pf__spin_unlock(&e->ctx.lock);
		if (gone)
			pf__free(s);
	}
}

void
pf__subs_free(pf__cold *k)
{
	for (pf__sub *s = k->subs, *n; s != NULL; s = n) {
		n = s->next;
		pf__free(s);
	}
	k->subs = NULL;
}

int
pf_exec_on_status(pf_exec *e, pf_status_fn fn, void *data)
{
	if (e == NULL || fn == NULL)
		return PF_EINVAL;
	pf__cold *k = pf__ctx_cold(&e->ctx);
	if (k == NULL)
		return PF_ENOMEM;
	pf__sub *s = pf__malloc(sizeof(*s));
	if (s == NULL)
		return PF_ENOMEM;
	s->fn = fn;
	s->data = data;
	pf__spin_lock(&e->ctx.lock);
	/* The RMW both announces us and reads the status: a finisher whose
	 * CAS comes later sees SUBS and delivers to us. */
	PF_HB_BEFORE(&e->state);
	uint32_t old = atomic_fetch_or_explicit(&e->state, PF__F_SUBS,
	    memory_order_acq_rel);
	PF_HB_AFTER(&e->state);
	uint32_t st = pf__status_of(old);
	if (st >= PF_COMPLETED) {
		pf__spin_unlock(&e->ctx.lock);
		pf__free(s);
		pf__in_callback++;
		fn(e, (pf_status)st, data);
		pf__in_callback--;
		return 0;
	}
	s->seen = st;
	s->busy = 0;
	s->removed = false;
	s->awaited = false;
	s->next = NULL;
	/* Appended, so subscribers are told in the order they came. */
	pf__sub **link = &k->subs;
	while (*link != NULL)
		link = &(*link)->next;
	*link = s;
	pf__spin_unlock(&e->ctx.lock);
	return 0;
}

int
pf_exec_off_status(pf_exec *e, pf_status_fn fn, void *data)
{
	if (e == NULL || fn == NULL)
		return PF_EINVAL;
	pf__cold *k = pf__cold_of(&e->ctx);
	if (k == NULL)
		return PF_ENOENT; /* never subscribed */
	pf__spin_lock(&e->ctx.lock);
	for (pf__sub **link = &k->subs; *link != NULL;
	     link = &(*link)->next) {
		pf__sub *s = *link;
		if (s->fn != fn || s->data != data)
			continue;
		*link = s->next;
		s->removed = true;
		/* Once this returns the callback is not running and will not
		 * run: wait for a call in flight on another thread, then free
		 * s here.  A call in flight on this thread is our caller (or
		 * encloses it): the delivery frees s when it returns. */
		if (s->busy != 0 && pf__frame_here(PF__FRAME_SUBSCRIBER, s)) {
			pf__spin_unlock(&e->ctx.lock);
			return 0;
		}
		/* From inside a callback, waiting for one running on another
		 * thread could wait forever (that one may be waiting for ours
		 * in turn): it is removed and will not be called again, but
		 * its current call may still be running.  That delivery frees
		 * it. */
		if (s->busy != 0 && pf__in_callback != 0) {
			pf__spin_unlock(&e->ctx.lock);
			return PF_EAGAIN;
		}
		s->awaited = true;
		while (s->busy != 0) {
			pf__spin_unlock(&e->ctx.lock);
			sched_yield();
			pf__spin_lock(&e->ctx.lock);
		}
		pf__spin_unlock(&e->ctx.lock);
		pf__free(s);
		return 0;
	}
	pf__spin_unlock(&e->ctx.lock);
	return PF_ENOENT;
}
