/*
 * record.c: memory for context records and their cold blocks.
 *
 * Every thread that makes records owns a slab of 256-byte objects
 * (slab.c): a worker's is made by its start hook and destroyed by its
 * stop hook; any other thread's is made on its first record and destroyed
 * when the thread exits (a pthread key's destructor).  So records are
 * allocated without a lock on any thread, records freed on another thread
 * go back to their owner's slab through its remote list, and the chunks of
 * a burst of records are reused by the next burst (the slab depot) instead
 * of faulting in fresh pages.  Larger records, and any record when a slab
 * cannot be made, use the heap.
 */
#include "config.h"

#include <pthread.h>

#include "alloc.h"
#include "record.h"
#include "slab.h"

/* This thread's slab, or NULL before its first record. */
static _Thread_local pf__slab *tls_slab PF_TLS_MODEL;

/* Destroys the slabs of threads other than workers when they exit. */
static pthread_key_t slab_key;
static pthread_once_t slab_key_once = PTHREAD_ONCE_INIT;
static bool slab_key_made; /* written once, under slab_key_once */

static void
thread_slab_destroy(void *s)
{
	/* A record freed by a later destructor takes the remote path. */
	tls_slab = NULL;
	pf__slab_destroy(s);
}

static void
slab_key_make(void)
{
	slab_key_made =
	    pthread_key_create(&slab_key, thread_slab_destroy) == 0;
}

/* The calling thread's slab, made now if it is not a worker and has
 * none; NULL when out of memory or keys. */
#ifdef PF_TESTING
static _Thread_local bool tls_heap_only;

void
pf__record_heap_only(bool on)
{
	tls_heap_only = on;
}
#endif

static pf__slab *
thread_slab(void)
{
	pf__slab *s = tls_slab;
#ifdef PF_TESTING
	if (tls_heap_only)
		return NULL;
#endif
	if (PF_LIKELY(s != NULL))
		return s;
	if (pthread_once(&slab_key_once, slab_key_make) != 0 ||
	    !slab_key_made)
		return NULL;
	if (pf__slab_create(&s, PF__RECORD_SLAB_SIZE) != 0)
		return NULL;
	if (pthread_setspecific(slab_key, s) != 0) {
		pf__slab_destroy(s);
		return NULL;
	}
	tls_slab = s;
	return s;
}

void *
pf__record_alloc(size_t size, bool *from_slab)
{
	pf__slab *s;
	if (size <= PF__RECORD_SLAB_SIZE && (s = thread_slab()) != NULL) {
		void *p = pf__slab_alloc(s);
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
	pf__slab_free(tls_slab, p);
}

void
pf__record_worker_start(pf__worker *w, void *arg)
{
	(void)arg;
	pf__slab *slab = NULL;
	/* Without a slab the worker allocates records from the heap. */
	if (pf__slab_create(&slab, PF__RECORD_SLAB_SIZE) == 0)
		w->user = slab;
	tls_slab = slab;
}

void
pf__record_worker_stop(pf__worker *w, void *arg)
{
	(void)arg;
	tls_slab = NULL;
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
