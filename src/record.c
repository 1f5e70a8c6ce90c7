/*
 * record.c: memory for context records and their cold blocks.
 *
 * Each worker owns a slab of 256-byte objects (its start hook makes it),
 * so a worker creating child executions allocates without a lock;
 * records freed on another thread go back to the owner's slab through
 * its remote list (slab.c).  Other threads, and larger records, use the
 * heap.
 */
#include "config.h"

#include "alloc.h"
#include "record.h"
#include "slab.h"

void *
pf__record_alloc(size_t size, bool *from_slab)
{
	pf__worker *w = pf__worker_self();
	if (w != NULL && w->user != NULL && size <= PF__RECORD_SLAB_SIZE) {
		void *p = pf__slab_alloc(w->user);
		*from_slab = p != NULL;
		if (p != NULL)
			return p;
	}
	*from_slab = false;
	return pf__malloc(size);
}

void
pf__record_free(void *p, bool from_slab)
{
	if (!from_slab) {
		pf__free(p);
		return;
	}
	pf__worker *w = pf__worker_self();
	pf__slab_free(w != NULL ? w->user : NULL, p);
}

void
pf__record_worker_start(pf__worker *w, void *arg)
{
	(void)arg;
	pf__slab *slab = NULL;
	/* Without a slab the worker allocates records from the heap. */
	if (pf__slab_create(&slab, PF__RECORD_SLAB_SIZE) == 0)
		w->user = slab;
}

void
pf__record_worker_stop(pf__worker *w, void *arg)
{
	(void)arg;
	if (w->user != NULL)
		pf__slab_destroy(w->user);
	w->user = NULL;
}

void
pf__cold_init(pf__cold *k, pf_ctx *c, uint8_t mem)
{
	k->owner = c;
	k->mem = mem;
	k->journal_closed = false;
	pf__atomic_init(&k->id_state, 0);
	k->fd = -1;
	k->tags = NULL;
	k->journal = NULL;
	k->messages = NULL;
	k->inherited = NULL;
	k->error_message = NULL;
	k->metadata = NULL;
	k->subs = NULL;
	k->key = NULL;
	pf__timer_node_init(&k->timer);
}

pf__cold *
pf__ctx_cold(pf_ctx *c)
{
	pf__cold *k = pf__cold_of(c);
	if (PF_LIKELY(k != NULL))
		return k;
	bool from_slab;
	k = pf__record_alloc(sizeof(*k), &from_slab);
	if (k == NULL)
		return NULL;
	pf__cold_init(k, c, from_slab ? PF__COLD_SLAB : PF__COLD_HEAP);
	pf__cold *none = NULL;
	/* Acq_rel: publishes the initialised block (readers acquire it in
	 * pf__cold_of); on failure, acquires the winner's. */
	PF_HB_BEFORE(&c->cold);
	if (atomic_compare_exchange_strong_explicit(&c->cold, &none, k,
		memory_order_acq_rel, memory_order_acquire))
		return k;
	PF_HB_AFTER(&c->cold);
	pf__record_free(k, from_slab);
	return none;
}

void
pf__cold_free(pf__cold *k)
{
	if (k->key != NULL)
		pf__free((char *)k->key);
	if (k->mem != PF__COLD_INLINE) /* else freed with its record */
		pf__record_free(k, k->mem == PF__COLD_SLAB);
}
