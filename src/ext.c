/*
 * ext.c: a scope's extension chain (ext.h) and pf_next_call.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "ext.h"
#include "frame.h"

struct pf__extlist {
	size_t n;
	pf__extlist *older; /* retired lists, freed by pf__ext_fini */
	const pf_extension *v[];
};

struct pf_next {
	const void *thread; /* the thread that may call it (pf_next_call) */
	void *scope;          /* as pf__exts.scope */
	const pf__extlist *list;
	size_t index;
	const pf_operation *op;
	int (*run)(void *arg);
	void *arg;
	bool called;
};

void
pf__ext_init(pf__exts *x, void *scope)
{
	pf__atomic_init(&x->list, NULL);
	x->scope = scope;
	pthread_mutex_init(&x->lock, NULL);
}

int
pf_next_call(pf_next *next)
{
	/* Once, and on the wrap's own thread: from another thread the
	 * operation would run outside the scope's run slots. */
	if (next == NULL || next->called || next->thread != pf__frame_thread())
		return PF_EINVAL;
	next->called = true;
	while (next->index < next->list->n) {
		const pf_extension *x = next->list->v[next->index];
		if (x->wrap != NULL) {
			pf_next inner = *next;
			inner.index++;
			inner.called = false;
			return x->wrap(next->scope, &inner, next->op, x->state);
		}
		/* An extension without wrap is transparent. */
		next->index++;
	}
	return next->run(next->arg);
}

int
pf__ext_run(pf__exts *x, const pf_operation *op, int (*run)(void *),
    void *arg)
{
	/* Acquire: pairs with the release store in pf__ext_add(), so the
	 * array's contents are visible. */
	const pf__extlist *l = pf__load_acquire(&x->list);
	if (l == NULL || l->n == 0)
		return run(arg);
	pf_next next = { pf__frame_thread(), x->scope, l, 0, op, run, arg,
		false };
	return pf_next_call(&next);
}

int
pf__ext_add(pf__exts *x, const pf_extension *ext)
{
	if (ext->init != NULL) {
		int rc = ext->init(x->scope, ext->state);
		if (rc != 0)
			return rc;
	}
	pthread_mutex_lock(&x->lock);
	/* Relaxed: only writers, serialised by this mutex, store it. */
	pf__extlist *old = pf__load_relaxed(&x->list);
	size_t n = old != NULL ? old->n : 0;
	pf__extlist *l = pf__malloc(sizeof(*l) + (n + 1) * sizeof(l->v[0]));
	if (l == NULL) {
		pthread_mutex_unlock(&x->lock);
		if (ext->dispose != NULL)
			ext->dispose(x->scope, ext->state);
		return PF_ENOMEM;
	}
	if (n != 0)
		memcpy(l->v, old->v, n * sizeof(l->v[0]));
	l->v[n] = ext;
	l->n = n + 1;
	l->older = old;
	/* Release: publishes the filled array to pf__ext_run's acquire. */
	pf__store_release(&x->list, l);
	pthread_mutex_unlock(&x->lock);
	return 0;
}

void
pf__ext_dispose_all(pf__exts *x)
{
	/* Acquire: pairs with the release in pf__ext_add(). */
	const pf__extlist *l = pf__load_acquire(&x->list);
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (l->v[i]->dispose != NULL)
			l->v[i]->dispose(x->scope, l->v[i]->state);
}

void
pf__ext_fini(pf__exts *x)
{
	for (pf__extlist *l = pf__load_relaxed(&x->list), *n; l != NULL;
	     l = n) {
		n = l->older;
		pf__free(l);
	}
	pthread_mutex_destroy(&x->lock);
}
