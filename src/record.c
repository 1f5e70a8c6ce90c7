/*
 * record.c: memory for context records and their cold blocks.
 *
 * Every thread that makes records owns one slab (slab.c) per size class:
 * 176 bytes, an execution with no data (what a pending burst is made of);
 * 256 bytes, a little data or a cold block of its own; 384 bytes, an
 * execution with no data and its cold block in one object (a timeout, a
 * key: one allocation, no install CAS, the two side by side in memory).
 * A worker's slabs are made by its start hook and destroyed by its stop
 * hook; any other thread's are made on its first record and destroyed
 * when the thread exits (a pthread key's destructor).  So records are
 * allocated without a lock on any thread, records freed on another thread
 * go back to their owner's slab through its remote list, and the chunks
 * of a burst of records are reused by the next burst (the slab depot)
 * instead of faulting in fresh pages.  Larger records, and any record when
 * the slabs cannot be made, use the heap.
 */
#include "config.h"

#include <pthread.h>

#include "alloc.h"
#include "record.h"
#include "slab.h"

/* The size classes, smallest first; the first fits an execution with no
 * data, its record made no bigger. */
#define N_CLASSES 3
static const size_t class_size[N_CLASSES] = {
	(sizeof(pf_exec) + 15) & ~(size_t)15, 256, PF__RECORD_SLAB_MAX
};
_Static_assert(((sizeof(pf_exec) + 15) & ~(size_t)15) <= 256,
    "the classes grow");
_Static_assert(sizeof(pf__cold) <= 256, "a cold block fits the middle class");

/* This thread's slabs; all NULL before its first record (or when they
 * could not be made). */
typedef struct thread_slabs {
	pf__slab *s[N_CLASSES];
} thread_slabs;

static _Thread_local thread_slabs tls_slabs PF_TLS_MODEL;

/* Destroys the slabs of threads other than workers when they exit. */
static pthread_key_t slab_key;
static pthread_once_t slab_key_once = PTHREAD_ONCE_INIT;
static bool slab_key_made; /* written once, under slab_key_once */

static void
slabs_destroy(thread_slabs *t)
{
	thread_slabs old = *t;
	/* A record freed later on this thread (by a later destructor) takes
	 * the remote path. */
	*t = (thread_slabs){ { NULL } };
	for (int i = 0; i < N_CLASSES; i++)
		if (old.s[i] != NULL)
			pf__slab_destroy(old.s[i]);
}

static int
slabs_make(thread_slabs *t)
{
	thread_slabs made = { { NULL } };
	for (int i = 0; i < N_CLASSES; i++) {
		int rc = pf__slab_create(&made.s[i], class_size[i]);
		if (rc != 0) {
			slabs_destroy(&made);
			return rc;
		}
	}
	*t = made;
	return 0;
}

static void
thread_slabs_destroy(void *arg)
{
	(void)arg; /* non-NULL so that the destructor runs; the slabs are
	              this thread's */
	slabs_destroy(&tls_slabs);
}

static void
slab_key_make(void)
{
	slab_key_made =
	    pthread_key_create(&slab_key, thread_slabs_destroy) == 0;
}

#ifdef PF_TESTING
static _Thread_local bool tls_heap_only;

void
pf__record_heap_only(bool on)
{
	tls_heap_only = on;
}
#endif

/* The calling thread's slabs, made now if it is not a worker and has
 * none; NULL when out of memory or keys. */
static thread_slabs *
thread_slabs_get(void)
{
	thread_slabs *t = &tls_slabs;
#ifdef PF_TESTING
	if (tls_heap_only)
		return NULL;
#endif
	if (PF_LIKELY(t->s[0] != NULL))
		return t;
	if (pthread_once(&slab_key_once, slab_key_make) != 0 ||
	    !slab_key_made)
		return NULL;
	if (slabs_make(t) != 0)
		return NULL;
	if (pthread_setspecific(slab_key, t) != 0) {
		slabs_destroy(t);
		return NULL;
	}
	return t;
}

void *
pf__record_alloc(size_t size, bool *from_slab)
{
	thread_slabs *t;
	if (size <= PF__RECORD_SLAB_MAX && (t = thread_slabs_get()) != NULL) {
		int i = 0;
		while (size > class_size[i])
			i++;
		void *p = pf__slab_alloc(t->s[i]);
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
	/* The owner's fast path when p is one of this thread's. */
	pf__slab *s = pf__slab_of(p);
	pf__slab *mine = NULL;
	for (int i = 0; i < N_CLASSES; i++)
		if (s == tls_slabs.s[i])
			mine = s;
	pf__slab_free(mine, p);
}

void
pf__record_worker_start(pf__worker *w, void *arg)
{
	(void)w;
	(void)arg;
	/* Without slabs the worker allocates records from the heap. */
	(void)slabs_make(&tls_slabs);
}

void
pf__record_worker_stop(pf__worker *w, void *arg)
{
	(void)w;
	(void)arg;
	slabs_destroy(&tls_slabs);
}

void
pf__cold_init(pf__cold *k, pf_ctx *c, uint8_t mem)
{
	k->owner = c;
	k->mem = mem;
	k->journal_closed = false;
	pf__atomic_init(&k->id_state, 0);
	k->fd = -1;
#ifdef PF_SIGNAL_PIPE
	k->fd_w = -1;
#endif
	k->tags = NULL;
	k->journal = NULL;
	k->messages = NULL;
	k->inherited = NULL;
	k->error_message = NULL;
	k->metadata = NULL;
	k->subs = NULL;
	k->key = NULL;
	k->name = NULL;
	k->on_status = NULL;
	k->on_status_data = NULL;
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
