/*
 * slab.c: per-owner slabs of fixed-size objects.
 *
 * Concurrency contract
 * --------------------
 * pf__slab_create, pf__slab_alloc, pf__slab_destroy, pf__slab_chunks: the
 * owner thread only (create makes the caller the owner).
 * pf__slab_free: any thread, concurrently with any call above, including
 * pf__slab_destroy.  The owner's own frees (mine == the object's slab) take
 * a path with no atomic operation; every other free is lock-free (one CAS
 * loop, which only retries when another free won the race, and at most two
 * atomic decrements once the slab is detached).
 *
 * Algorithm
 * ---------
 * Memory comes in 64 KiB chunks aligned to 64 KiB, so masking an object's
 * address finds its chunk header, and the header names the slab.  The owner
 * carves a fresh chunk with a bump pointer and afterwards reuses freed
 * objects from the chunk's private free list; it counts each chunk's
 * outstanding objects in a plain integer (used) that only it touches.  The
 * free lists are per chunk rather than per slab so that a chunk whose used
 * count drops to zero can be handed back without picking its objects out of
 * a shared list.
 *
 * Frees from other threads push onto one Treiber stack per slab (R. K.
 * Treiber, "Systems Programming: Coping with Parallelism", IBM RJ 5118,
 * 1986).  The owner empties it with a single atomic exchange when its
 * current chunk is exhausted and files each object under its chunk, so the
 * stack has no ABA problem: nobody pops single nodes, and a push whose CAS
 * sees an old head again is still correct because the head really is that
 * value.  The stack is per slab, not per chunk, so that one exchange collects
 * every remote free; per-chunk stacks would make the owner scan its chunks
 * to find the ones with pending frees.  The price is that a remote free
 * touches the slab header after the owner may have called destroy, so the
 * header must outlive every chunk: see "Detach" below.
 *
 * Empty chunks: one is kept as a spare so that a workload oscillating
 * around a chunk boundary does not call the heap on every swing; any other
 * chunk whose last object comes home goes to the depot.  The current chunk
 * is never retired; it is the one the next alloc uses.
 *
 * Depot
 * -----
 * Empty chunks of every slab in the process wait in one depot (a list
 * under a mutex, newest last) and new chunks come from it first, so a
 * burst of records that is freed and then made again reuses pages that
 * are already mapped.  The heap would not: jemalloc coalesces the freed
 * chunks into one large free extent, which it then will not split for a
 * small request (opt.lg_extent_max_active_fit), so each burst faulted in
 * fresh pages, about 10 us per 4 KiB page on the VMs this project runs on.
 * A chunk that has waited in the depot longer than the retention time
 * (PUMPED_RECORD_RETAIN_MS, default 10 s, as jemalloc's own dirty-page
 * decay) goes back to the heap; the check runs whenever any thread gives
 * a chunk to the depot or takes one from it (one clock read per chunk of
 * objects), so an idle process keeps its last burst's chunks until its
 * next burst, as jemalloc keeps dirty pages.  Retention 0 gives every
 * chunk back at once.
 *
 * Detach
 * ------
 * pf__slab_destroy swaps the remote stack's head for the DETACHED mark
 * (acquiring every push made before it), files those objects, and frees
 * every chunk whose used count is zero.  For a chunk that still has live
 * objects it adds used to the chunk's atomic counter live, which until then
 * is zero and untouched.  A remote free that finds DETACHED instead of
 * pushing subtracts one from live.  live therefore reaches zero exactly once,
 * on the operation that accounts for the last outstanding object, and the
 * thread that performs that operation frees the chunk.  Decrements made
 * before the owner's add drive live below zero, never to zero, because the
 * owner's add of used has not happened yet.  The owner's fast path never
 * touches live.
 *
 *   owner: pf__slab_destroy             remote: pf__slab_free(NULL, p)
 *   -------------------------------     ------------------------------
 *   xchg(remote, DETACHED)
 *                                       CAS fails / load sees DETACHED
 *   file the drained objects
 *                                       live -= 1      -> -1, not zero
 *   live += used (1)   -> 0
 *   zero: owner frees the chunk
 *
 *   or, the other way round:
 *
 *   live += used (1)   -> 1, kept
 *                                       live -= 1      -> 0
 *                                       zero: this thread frees the chunk
 *
 * The slab header is released the same way with its counter refs: remote
 * threads that free a chunk subtract one, and at the end of destroy the
 * owner adds the number of chunks it left behind; whoever brings refs to
 * zero frees the header.  A free of a live object always finds its chunk,
 * and so the header, still allocated.
 */
#include "config.h"

#include "slab.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>

#include "alloc.h"
#include "annotate.h"
#include "clock.h"
#include "common.h"
#include "env.h"
#include "list.h"
#include "pumped.h"

#define CHUNK_SIZE ((size_t)64 * 1024)
#define OBJ_ALIGN 16
#define OBJ_MAX 4096

/* A free object: the first word links it, whichever list it is on. */
struct obj {
	struct obj *next;
#ifdef PF_DEBUG
	/* FREED_MAGIC while free; cleared when handed out. */
	uintptr_t magic;
#endif
};

#ifdef PF_DEBUG
#define FREED_MAGIC ((uintptr_t)0xf4eedf4eedf4eed1u)
#define CHUNK_MAGIC ((uintptr_t)0x5ab1ec4b5ab1ec4bu)
#define POISON 0x6b
#endif

/*
 * The mark that replaces the remote stack's head on destroy.  Its address
 * is never an object's, so a pusher can tell it from a real head.
 */
static struct obj detached_mark;
#define DETACHED (&detached_mark)

struct chunk {
#ifdef PF_DEBUG
	uintptr_t magic; /* CHUNK_MAGIC; written at creation only. */
#endif
	/* Written once before any object is handed out; read by any thread. */
	pf__slab *slab;
	/* Owner only: the private free list and the uncarved tail. */
	struct obj *free;
	char *bump;
	char *end;
	/* Owner only: objects out and not yet filed back by the owner. */
	long used;
	/* Owner only: the list of all chunks except the spare. */
	pf__hnode link;
	/* In the depot (under its lock): its place, and since when. */
	pf__ring dlink;
	int64_t idle_since;
	/*
	 * Owner only: the list of non-current chunks with a free object.
	 * A chunk other than cur is on it exactly when its free list is
	 * non-empty (only cur can have bump space).
	 */
	pf__hnode plink;
	bool on_partial;
	/*
	 * Zero until pf__slab_destroy adds used; then the owner and remote
	 * freers drive it to zero, see "Detach" at the top of the file.
	 */
	_Atomic long live;
};

/* The first object sits past the header, rounded to the object alignment. */
#define FIRST_OFFSET                                                           \
	((sizeof(struct chunk) + OBJ_ALIGN - 1) & ~(size_t)(OBJ_ALIGN - 1))

struct pf__slab {
	/* Immutable after create. */
	size_t size;
	/* Owner only. */
	struct chunk *cur;     /* allocations come from here; may be NULL */
	pf__hlist all;         /* every chunk but the spare (link) */
	pf__hlist partial;     /* non-current chunks with a free object (plink) */
	struct chunk *spare;   /* one empty chunk kept back, or NULL */
	size_t nchunks;        /* chunks on all, plus the spare */
	/*
	 * Any thread pushes; the owner takes the whole stack.  On its own
	 * cache line because remote freers hammer it while the owner works
	 * on the fields above.
	 */
	PF_CACHE_ALIGNED _Atomic(struct obj *) remote;
	/*
	 * Zero and untouched until destroy; then counts the chunks left
	 * behind, see "Detach" at the top of the file.
	 */
	_Atomic long refs;
};

static inline struct chunk *
chunk_of(const void *p)
{
	return (struct chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK_SIZE - 1));
}

/*
 * Drops n references from *cnt and says whether it reached zero, in which
 * case the caller frees the object.  The release publishes this thread's
 * writes to the object; the acquire fence on the zero path makes every other
 * dropper's writes visible before the free.  They pair with each other
 * across the droppers.  TSan does not model fences, so under TSan the RMW
 * itself carries the acquire.
 */
/* A reference-count drop: release on every decrement, an acquire fence on
 * the last, so every dropper's writes happen before the one who frees. */
static inline bool
drop(_Atomic long *cnt, long n)
{
	PF_HB_BEFORE(cnt);
#ifdef PF_UNDER_TSAN
	return atomic_fetch_sub_explicit(cnt, n, memory_order_acq_rel) == n;
#else
	if (atomic_fetch_sub_explicit(cnt, n, memory_order_release) != n)
		return false;
	atomic_thread_fence(memory_order_acquire);
	PF_HB_AFTER(cnt); /* every dropper's PF_HB_BEFORE */
	return true;
#endif
}

static void
all_push(pf__slab *s, struct chunk *c)
{
	pf__hlist_push(&s->all, &c->link);
}

static void
all_remove(pf__slab *s, struct chunk *c)
{
	(void)s;
	pf__hlist_del(&c->link);
}

static void
partial_push(pf__slab *s, struct chunk *c)
{
	pf__hlist_push(&s->partial, &c->plink);
	c->on_partial = true;
}

static void
partial_remove(pf__slab *s, struct chunk *c)
{
	(void)s;
	pf__hlist_del(&c->plink);
	c->on_partial = false;
}

/* Makes c look freshly allocated: nothing out, everything still to carve. */
static void
chunk_reset(struct chunk *c)
{
	c->free = NULL;
	c->bump = (char *)c + FIRST_OFFSET;
	c->used = 0;
	c->on_partial = false;
}

/* ---------------------------------------------------------------- depot */

#define RETAIN_MS_DEFAULT 10000
#define RETAIN_MS_MAX 3600000

/* The lock protects chunks, n, and the dlink and idle_since of every
 * chunk on the list. */
static struct {
	pthread_mutex_t lock;
	pf__ring chunks; /* oldest first */
	size_t n;
} depot = { PTHREAD_MUTEX_INITIALIZER, { &depot.chunks, &depot.chunks }, 0 };

/* The retention in ms; -1 until read from the environment.  Relaxed: a
 * plain value; two first readers both read the same environment. */
static _Atomic long retain_ms_cached = -1;

static long
retain_ms(void)
{
	long ms = atomic_load_explicit(&retain_ms_cached, memory_order_relaxed);
	if (ms < 0) {
		ms = (long)pf__env_uint("PUMPED_RECORD_RETAIN_MS", 0,
		    RETAIN_MS_MAX, RETAIN_MS_DEFAULT);
		atomic_store_explicit(&retain_ms_cached, ms,
		    memory_order_relaxed);
	}
	return ms;
}

/*
 * Fork: a child must not inherit the depot's lock held by a thread that
 * does not exist in it.  The lock is taken around fork (the prepare
 * handler) and released on both sides, as jemalloc does with its own.
 * Registered on the first use of the depot, before anyone can hold it.
 */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void
depot_fork_prepare(void)
{
	pthread_mutex_lock(&depot.lock);
}

static void
depot_fork_release(void)
{
	pthread_mutex_unlock(&depot.lock);
}

static void
depot_fork_register(void)
{
	/* Without handlers (ENOMEM) a fork racing a depot call may leave the
	 * child's depot locked; nothing else changes. */
	(void)pthread_atfork(depot_fork_prepare, depot_fork_release,
	    depot_fork_release);
}

static void
depot_lock(void)
{
	(void)pthread_once(&fork_once, depot_fork_register);
	pthread_mutex_lock(&depot.lock);
}

/* Under the depot lock.  Unlinks the chunks idle past the retention time
 * (ms) onto *out, for the caller to free once it has dropped the lock. */
static void
depot_expire(int64_t now, long ms, pf__ring *out)
{
	int64_t cutoff = now - (int64_t)ms * 1000000;
	while (!pf__ring_empty(&depot.chunks)) {
		struct chunk *c = PF_CONTAINER_OF(depot.chunks.next,
		    struct chunk, dlink);
		if (c->idle_since > cutoff)
			break;
		pf__ring_del(&c->dlink);
		pf__ring_append(out, &c->dlink);
		depot.n--;
	}
}

/* Takes the depot's lock and moves the chunks idle past the retention
 * time onto *expired; c, when not NULL, is added first, stamped with the
 * same time (with retention 0 it expires at once).  The clock and the
 * environment are read out of the lock. */
static void
depot_enter(pf__ring *expired, struct chunk *c)
{
	pf__ring_init(expired);
	int64_t now = pf__clock_mono_ns();
	long ms = retain_ms();
	depot_lock();
	if (c != NULL) {
		c->idle_since = now;
		pf__ring_append(&depot.chunks, &c->dlink);
		depot.n++;
	}
	depot_expire(now, ms, expired);
}

/* Drops the depot's lock, then gives the expired chunks to the heap. */
static void
depot_leave(pf__ring *expired)
{
	pthread_mutex_unlock(&depot.lock);
	while (!pf__ring_empty(expired)) {
		pf__ring *n = expired->next;
		pf__ring_del(n);
		pf__free(PF_CONTAINER_OF(n, struct chunk, dlink));
	}
}

/* Any thread: an empty chunk that no slab uses any more. */
static void
depot_give(struct chunk *c)
{
	pf__ring expired;
	depot_enter(&expired, c);
	depot_leave(&expired);
}

/* An empty chunk from the depot, the newest (its pages are the likeliest
 * to be in cache), or NULL. */
static struct chunk *
depot_take(void)
{
	pf__ring expired;
	struct chunk *c = NULL;
	depot_enter(&expired, NULL);
	if (!pf__ring_empty(&depot.chunks)) {
		c = PF_CONTAINER_OF(depot.chunks.prev, struct chunk, dlink);
		pf__ring_del(&c->dlink);
		depot.n--;
	}
	depot_leave(&expired);
	return c;
}

size_t
pf__slab_depot_trim(void)
{
	pf__ring expired;
	depot_enter(&expired, NULL);
	size_t n = depot.n;
	depot_leave(&expired);
	return n;
}

#ifdef PF_TESTING
void
pf__slab_depot_set_retain_ms(long ms)
{
	atomic_store_explicit(&retain_ms_cached, ms, memory_order_relaxed);
}

void
pf__slab_depot_hold(bool hold)
{
	if (hold)
		depot_lock();
	else
		pthread_mutex_unlock(&depot.lock);
}
#endif

/* ------------------------------------------------------------- chunks */

/*
 * Owner only.  c has just become empty and is not cur: keep it as the spare
 * or give it to the depot.
 */
static void
chunk_retire(pf__slab *s, struct chunk *c)
{
	if (c->on_partial)
		partial_remove(s, c);
	all_remove(s, c);
	if (s->spare == NULL) {
		chunk_reset(c);
		s->spare = c;
	} else {
		depot_give(c);
		s->nchunks--;
	}
}

/* Owner only.  Files o back under its chunk c. */
static inline void
put_local(pf__slab *s, struct chunk *c, struct obj *o)
{
	if (c->free == NULL && c != s->cur)
		partial_push(s, c);
	o->next = c->free;
	c->free = o;
	pf__assert(c->used > 0);
	if (PF_UNLIKELY(--c->used == 0) && c != s->cur)
		chunk_retire(s, c);
}

/* Owner only.  Files a list of remotely freed objects. */
static void
file_list(pf__slab *s, struct obj *o)
{
	while (o != NULL) {
		struct obj *next = o->next;
		put_local(s, chunk_of(o), o);
		o = next;
	}
}

#ifdef PF_DEBUG
/* Checks that a free object was not written after it was freed. */
static void
check_poison(const pf__slab *s, const struct obj *o)
{
	pf__assert(o->magic == FREED_MAGIC);
	const unsigned char *b = (const unsigned char *)o;
	for (size_t i = sizeof(struct obj); i < s->size; i++)
		pf__assert(b[i] == POISON);
}
#endif

static inline void *
hand_out(pf__slab *s, struct obj *o, bool was_free)
{
#ifdef PF_DEBUG
	if (was_free)
		check_poison(s, o);
	/* A stale magic left in fresh chunk memory must not look freed. */
	o->magic = 0;
#else
	(void)s;
	(void)was_free;
#endif
	return o;
}

static inline void *
pop(pf__slab *s, struct chunk *c)
{
	struct obj *o = c->free;
	c->free = o->next;
	c->used++;
	return hand_out(s, o, true);
}

static void *
alloc_slow(pf__slab *s)
{
	struct chunk *c = s->cur;

	/* First carve what is left of the current chunk. */
	if (c != NULL && (size_t)(c->end - c->bump) >= s->size) {
		struct obj *o = (struct obj *)(void *)c->bump;
		c->bump += s->size;
		c->used++;
		return hand_out(s, o, false);
	}

	/*
	 * Then collect remote frees.  Relaxed load: it is only a hint to skip
	 * the exchange on an empty stack; the exchange is what orders.  The
	 * acquire exchange pairs with the release CAS in remote_free(), so the
	 * pushers' links and their last writes to the objects are visible.
	 */
	if (atomic_load_explicit(&s->remote, memory_order_relaxed) != NULL) {
		file_list(s, PF_ACQUIRED(&s->remote, atomic_exchange_explicit(
		                 &s->remote, NULL, memory_order_acquire)));
		if (c != NULL && c->free != NULL)
			return pop(s, c);
	}

	/* Then a chunk that already has free objects. */
	if (!pf__hlist_empty(&s->partial)) {
		c = PF_CONTAINER_OF(s->partial.first, struct chunk, plink);
		pf__assert(c->free != NULL);
		partial_remove(s, c);
		s->cur = c;
		return pop(s, c);
	}

	/* Then the spare, then the depot, then the heap. */
	if (s->spare != NULL) {
		c = s->spare;
		s->spare = NULL;
	} else {
		c = depot_take();
		if (c == NULL) {
			c = pf__aligned_alloc(CHUNK_SIZE, CHUNK_SIZE);
			if (c == NULL)
				return NULL;
#ifdef PF_DEBUG
			c->magic = CHUNK_MAGIC;
#endif
			c->end = (char *)c + CHUNK_SIZE;
		}
		/* No other thread can see the chunk until an object of it
		 * is handed out (a depot chunk came through its lock). */
		c->slab = s;
		atomic_init(&c->live, 0);
		chunk_reset(c);
		s->nchunks++;
	}
	all_push(s, c);
	s->cur = c;
	struct obj *o = (struct obj *)(void *)c->bump;
	c->bump += s->size;
	c->used++;
	return hand_out(s, o, false);
}

int
pf__slab_create(pf__slab **out, size_t obj_size)
{
	if (obj_size == 0 || obj_size > OBJ_MAX)
		return PF_EINVAL;
	pf__slab *s = pf__aligned_alloc(PF_CACHELINE, sizeof(*s));
	if (s == NULL)
		return PF_ENOMEM;
	s->size = (obj_size + OBJ_ALIGN - 1) & ~(size_t)(OBJ_ALIGN - 1);
	s->cur = NULL;
	pf__hlist_init(&s->all);
	pf__hlist_init(&s->partial);
	s->spare = NULL;
	s->nchunks = 0;
	/* Published to other threads by whatever hands them an object. */
	atomic_init(&s->remote, NULL);
	atomic_init(&s->refs, 0);
	*out = s;
	return 0;
}

void *
pf__slab_alloc(pf__slab *s)
{
	struct chunk *c = s->cur;
	if (PF_LIKELY(c != NULL && c->free != NULL))
		return pop(s, c);
	return alloc_slow(s);
}

/*
 * The slab is detached: count one object off its chunk's live counter, and
 * free the chunk, then maybe the header, if it was the last one out.
 */
static void
detached_free(pf__slab *s, struct chunk *c)
{
	if (!drop(&c->live, 1))
		return;
	depot_give(c);
	if (drop(&s->refs, 1))
		pf__free(s);
}

static void
remote_free(pf__slab *s, struct chunk *c, struct obj *o)
{
	/*
	 * Relaxed load and relaxed CAS failure: the head value is only used as
	 * the next link, and the successful CAS is what publishes.  Seeing
	 * DETACHED needs no ordering either: it is the last value the head
	 * ever takes, and the chunk's fate is decided on live, whose RMWs
	 * order themselves.
	 */
	struct obj *head =
	    atomic_load_explicit(&s->remote, memory_order_relaxed);
	do {
		if (head == DETACHED) {
			detached_free(s, c);
			return;
		}
		o->next = head;
		/*
		 * Release: publishes o->next and the caller's writes to o.
		 * Pairs with the acquire exchange in alloc_slow() and in
		 * pf__slab_destroy().
		 */
		PF_HB_BEFORE(&s->remote);
	} while (!atomic_compare_exchange_weak_explicit(
	    &s->remote, &head, o, memory_order_release, memory_order_relaxed));
}

pf__slab *
pf__slab_of(const void *p)
{
	/* Written once before any object of the chunk was handed out. */
	return chunk_of(p)->slab;
}

void
pf__slab_free(pf__slab *mine, void *p)
{
	if (p == NULL)
		return;
	struct chunk *c = chunk_of(p);
	struct obj *o = p;
	pf__slab *s = c->slab;
#ifdef PF_DEBUG
	pf__assert(c->magic == CHUNK_MAGIC);
	pf__assert(((uintptr_t)p - (uintptr_t)c - FIRST_OFFSET) % s->size == 0);
	pf__assert(mine == NULL || mine->size == s->size);
	/* Cheap double-free check: a word only a free object carries. */
	pf__assert(o->magic != FREED_MAGIC);
	memset((char *)p + sizeof(struct obj), POISON,
	    s->size - sizeof(struct obj));
	o->magic = FREED_MAGIC;
#endif
	if (PF_LIKELY(s == mine))
		put_local(s, c, o);
	else
		remote_free(s, c, o);
}

void
pf__slab_destroy(pf__slab *s)
{
	/*
	 * Acquire: pairs with the release CAS in remote_free(), as in
	 * alloc_slow().  From here on every remote free takes the detached
	 * path.
	 */
	file_list(s, PF_ACQUIRED(&s->remote, atomic_exchange_explicit(
	                 &s->remote, DETACHED, memory_order_acquire)));
	if (s->spare != NULL)
		depot_give(s->spare);

	long kept = 0;
	pf__hnode *next;
	for (pf__hnode *n = s->all.first; n != NULL; n = next) {
		struct chunk *c = PF_CONTAINER_OF(n, struct chunk, link);
		/* Read first: once live is published c may be freed anytime. */
		next = n->next;
		long used = c->used;
		if (used == 0) {
			depot_give(c);
			continue;
		}
		/*
		 * Adding used is dropping -used references.  Release: the
		 * owner's filing writes above happen before whoever frees c.
		 */
		if (drop(&c->live, -used))
			depot_give(c);
		else
			kept++;
	}
	/*
	 * The owner gives up its hold on the header, which stood for the
	 * chunks it kept; those that remote threads have already freed
	 * brought refs below zero.
	 */
	if (drop(&s->refs, -kept))
		pf__free(s);
}

size_t
pf__slab_chunks(const pf__slab *s)
{
	return s->nchunks;
}
