/*
 * check_slab.c: slabs hand out distinct, aligned objects, reuse what the
 * owner and other threads free, give empty chunks to the depot (which
 * serves the next burst and gives them back after the retention time),
 * outlive their owner's destroy while objects are live, and report
 * PF_ENOMEM.
 *
 * Worker threads never call ck_assert: they record what they saw in their
 * argument struct, and the test thread asserts after joining them.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "annotate.h"
#include "pumped.h"
#include "slab.h"
#include "testlib.h"

#define CHUNK_SIZE (64 * 1024)

static void
disarm(void)
{
	pf__alloc_fail_at(0);
}

/* Chunks go straight back to the heap, so that a failing heap call is
 * the only way to a new chunk. */
static void
no_depot(void)
{
	disarm();
	pf__slab_depot_set_retain_ms(0);
	(void)pf__slab_depot_trim();
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a;
	uintptr_t y = (uintptr_t) * (void *const *)b;
	return x < y ? -1 : x > y;
}

static pf__slab *
make_slab(size_t size)
{
	pf__slab *s = NULL;
	ck_assert_int_eq(pf__slab_create(&s, size), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* ---- create validates its argument ---- */

START_TEST(create_rejects_bad_sizes)
{
	pf__slab *s = (pf__slab *)(uintptr_t)0x1;
	ck_assert_int_eq(pf__slab_create(&s, 0), PF_EINVAL);
	ck_assert_int_eq(pf__slab_create(&s, 4097), PF_EINVAL);
	/* The out-parameter is written only on success. */
	ck_assert_ptr_eq(s, (pf__slab *)(uintptr_t)0x1);
	ck_assert_int_eq(pf__slab_create(&s, 4096), 0);
	pf__slab_destroy(s);
	ck_assert_int_eq(pf__slab_create(&s, 1), 0);
	pf__slab_destroy(s);
}
END_TEST

START_TEST(destroy_without_objects)
{
	pf__slab *s = make_slab(32);
	pf__slab_destroy(s);
	s = make_slab(32);
	void *p = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(p);
	pf__slab_free(s, p);
	pf__slab_free(s, NULL);
	pf__slab_destroy(s);
}
END_TEST

/* ---- the owner reuses what it frees ---- */

START_TEST(owner_free_then_alloc_reuses)
{
	pf__slab *s = make_slab(40);
	void *a = pf__slab_alloc(s);
	void *b = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	pf__slab_free(s, a);
	ck_assert_ptr_eq(pf__slab_alloc(s), a);
	pf__slab_free(s, b);
	pf__slab_free(s, a);
	/* Most recently freed first: the hottest object comes back. */
	ck_assert_ptr_eq(pf__slab_alloc(s), a);
	ck_assert_ptr_eq(pf__slab_alloc(s), b);
	pf__slab_free(s, a);
	pf__slab_free(s, b);
	ck_assert_uint_eq(pf__slab_chunks(s), 1);
	pf__slab_destroy(s);
}
END_TEST

/* ---- objects are distinct, aligned and writable over their size ---- */

static const size_t sizes[] = {1, 16, 24, 100, 1000, 4096};

START_TEST(objects_distinct_aligned_writable)
{
	size_t size = sizes[_i];
	size_t rounded = (size + 15) & ~(size_t)15;
	/* Enough for three chunks whatever the header takes. */
	size_t n = 3 * CHUNK_SIZE / rounded;
	pf__slab *s = make_slab(size);
	unsigned char **p = malloc(n * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		p[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
		memset(p[i], (int)(i * 7 + 1) & 0xff, size);
	}
	/* Overlapping objects would have overwritten each other's bytes. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < size; j++)
			ck_assert_uint_eq(p[i][j], (i * 7 + 1) & 0xff);
	qsort(p, n, sizeof(*p), cmp_ptr);
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_ge((uintptr_t)(p[i] - p[i - 1]), rounded);
	for (size_t i = 0; i < n; i++)
		pf__slab_free(s, p[i]);
	pf__slab_destroy(s);
	free(p);
}
END_TEST

/* ---- many chunks, and memory goes back ---- */

START_TEST(many_chunks_memory_returned)
{
	const size_t n = 100000;
	pf__slab *s = make_slab(64);
	void **p = malloc(n * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		p[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p[i]);
	}
	size_t peak = pf__slab_chunks(s);
	ck_assert_uint_ge(peak, n * 64 / CHUNK_SIZE);
	/* Interleaved order, so chunks empty out of order. */
	for (size_t i = 0; i < n; i += 2)
		pf__slab_free(s, p[i]);
	for (size_t i = 1; i < n; i += 2)
		pf__slab_free(s, p[i]);
	/* The current chunk and one spare stay; the rest went back. */
	ck_assert_uint_le(pf__slab_chunks(s), 2);

	/* A second round reuses and does not grow past the first. */
	for (size_t i = 0; i < n; i++) {
		p[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p[i]);
	}
	ck_assert_uint_le(pf__slab_chunks(s), peak);
	for (size_t i = n; i-- > 0;)
		pf__slab_free(s, p[i]);
	ck_assert_uint_le(pf__slab_chunks(s), 2);
	pf__slab_destroy(s);
	free(p);
}
END_TEST

/* ---- frees from other threads come back to the owner ---- */

struct freer {
	pthread_t tid;
	void **objs;
	size_t n;
	size_t obj_size;
	bool own_slab; /* free with a slab of its own as `mine` */
	int err;       /* recorded here, asserted by the test thread */
};

static void *
free_all(void *arg)
{
	struct freer *f = arg;
	pf__slab *mine = NULL;
	if (f->own_slab && pf__slab_create(&mine, f->obj_size) != 0) {
		f->err = 1;
		mine = NULL;
	}
	for (size_t i = 0; i < f->n; i++)
		pf__slab_free(mine, f->objs[i]);
	if (mine != NULL)
		pf__slab_destroy(mine);
	return NULL;
}

START_TEST(remote_frees_come_back)
{
	const size_t n = 3000, size = 48;
	pf__slab *s = make_slab(size);
	void **orig = malloc(n * sizeof(*orig));
	ck_assert_ptr_nonnull(orig);
	for (size_t i = 0; i < n; i++) {
		orig[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(orig[i]);
	}
	size_t chunks = pf__slab_chunks(s);

	/*
	 * The owner keeps the lowest object of each chunk, so that no chunk
	 * empties and goes back to the heap (which could hand the same
	 * addresses out again, or not); the other threads free the rest.
	 */
	qsort(orig, n, sizeof(*orig), cmp_ptr);
	void **kept = malloc(n * sizeof(*kept));
	void **rest = malloc(n * sizeof(*rest));
	ck_assert_ptr_nonnull(kept);
	ck_assert_ptr_nonnull(rest);
	size_t nkept = 0, nrest = 0;
	uintptr_t last = 0;
	for (size_t i = 0; i < n; i++) {
		uintptr_t c = (uintptr_t)orig[i] & ~(uintptr_t)(CHUNK_SIZE - 1);
		if (c != last)
			kept[nkept++] = orig[i];
		else
			rest[nrest++] = orig[i];
		last = c;
	}
	ck_assert_uint_eq(nkept, chunks);

	struct freer f[3];
	for (int t = 0; t < 3; t++) {
		size_t from = t * nrest / 3, to = (t + 1) * nrest / 3;
		f[t] = (struct freer){.objs = rest + from,
		    .n = to - from,
		    .obj_size = size,
		    .own_slab = t == 0};
		ck_assert_int_eq(
		    pthread_create(&f[t].tid, NULL, free_all, &f[t]), 0);
	}
	for (int t = 0; t < 3; t++) {
		ck_assert_int_eq(pthread_join(f[t].tid, NULL), 0);
		ck_assert_int_eq(f[t].err, 0);
	}

	/*
	 * The owner may first carve what is left of its current chunk (less
	 * than one chunk of objects); after that every freed object comes
	 * back through the remote stack, and no chunk is added.
	 */
	size_t limit = nrest + CHUNK_SIZE / size, got = 0, seen = 0;
	void **again = malloc((limit + nkept) * sizeof(*again));
	ck_assert_ptr_nonnull(again);
	bool *hit = calloc(nrest, sizeof(*hit));
	ck_assert_ptr_nonnull(hit);
	while (seen < nrest && got < limit) {
		void *p = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p);
		again[got++] = p;
		void **at = bsearch(&p, rest, nrest, sizeof(*rest), cmp_ptr);
		if (at != NULL) {
			ck_assert(!hit[at - rest]);
			hit[at - rest] = true;
			seen++;
		}
	}
	ck_assert_uint_eq(seen, nrest);
	ck_assert_uint_eq(pf__slab_chunks(s), chunks);

	/* Freed remotely once more, everything but two chunks goes back. */
	memcpy(again + got, kept, nkept * sizeof(*kept));
	struct freer all = {.objs = again, .n = got + nkept, .obj_size = size};
	ck_assert_int_eq(pthread_create(&all.tid, NULL, free_all, &all), 0);
	ck_assert_int_eq(pthread_join(all.tid, NULL), 0);
	/*
	 * Every object was out, so the next alloc runs dry and collects the
	 * remote frees, and the emptied chunks go back.
	 */
	void *p = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_le(pf__slab_chunks(s), 2);
	pf__slab_free(s, p);
	pf__slab_destroy(s);
	free(orig);
	free(kept);
	free(rest);
	free(again);
	free(hit);
}
END_TEST

/* ---- destroy with live objects ---- */

struct late_freer {
	pthread_t tid;
	void **objs;
	size_t n;
	size_t size;
	atomic_bool go;
};

static void *
late_free(void *arg)
{
	struct late_freer *f = arg;
	/* Acquire: pairs with the release store of go by the test thread. */
	while (!atomic_load_explicit(&f->go, memory_order_acquire))
		sched_yield();
	PF_HB_AFTER(&f->go); /* src/annotate.h */
	for (size_t i = 0; i < f->n; i++) {
		/* Still ours to write: under ASan a freed chunk would trap. */
		memset(f->objs[i], 0xa5, f->size);
		pf__slab_free(NULL, f->objs[i]);
	}
	return NULL;
}

START_TEST(destroy_then_remote_free_last)
{
	const size_t n = 5000, size = 96;
	pf__slab *s = make_slab(size);
	void **p = malloc(n * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		p[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p[i]);
	}
	/*
	 * Free some locally and some remotely before destroy, so destroy
	 * meets empty chunks, partial chunks and a non-empty remote stack.
	 */
	for (size_t i = 0; i < n / 2; i++)
		pf__slab_free(s, p[i]);
	struct late_freer early = {.objs = p + n / 2, .n = n / 4, .size = size};
	atomic_init(&early.go, true);
	PF_ATOMIC_OBJ(&early.go);
	ck_assert_int_eq(
	    pthread_create(&early.tid, NULL, late_free, &early), 0);
	ck_assert_int_eq(pthread_join(early.tid, NULL), 0);

	pf__slab_destroy(s);

	/* The last live objects die on another thread; LSan checks the rest. */
	struct late_freer late = {
	    .objs = p + n / 2 + n / 4, .n = n - n / 2 - n / 4, .size = size};
	atomic_init(&late.go, true);
	PF_ATOMIC_OBJ(&late.go);
	ck_assert_int_eq(pthread_create(&late.tid, NULL, late_free, &late), 0);
	ck_assert_int_eq(pthread_join(late.tid, NULL), 0);
	free(p);
}
END_TEST

START_TEST(destroy_races_last_remote_free)
{
	/*
	 * Many short rounds, so both orders of the race happen, each over
	 * several chunks, so that remote frees release chunks while destroy
	 * is still walking the slab's list.
	 */
	const size_t size = 4096;
	long rounds = pf_test_scale(2000);
	for (long r = 0; r < rounds; r++) {
		pf__slab *s = make_slab(size);
		void *objs[64], *keep[64];
		size_t nkeep = 0;
		uintptr_t last = 0;
		for (int i = 0; i < 64; i++) {
			objs[i] = pf__slab_alloc(s);
			ck_assert_ptr_nonnull(objs[i]);
		}
		/* One live object per chunk; newest chunk first. */
		for (int i = 63; i >= 0; i--) {
			uintptr_t c =
			    (uintptr_t)objs[i] & ~(uintptr_t)(CHUNK_SIZE - 1);
			if (c != last)
				keep[nkeep++] = objs[i];
			else
				pf__slab_free(s, objs[i]);
			last = c;
		}
		ck_assert_uint_ge(nkeep, 2);
		struct late_freer f = {.objs = keep, .n = nkeep, .size = size};
		atomic_init(&f.go, false);
		PF_ATOMIC_OBJ(&f.go);
		ck_assert_int_eq(
		    pthread_create(&f.tid, NULL, late_free, &f), 0);
		/*
		 * Release: lets the freer start as destroy begins; pairs with
		 * its acquire load of go.
		 */
		PF_HB_BEFORE(&f.go);
		atomic_store_explicit(&f.go, true, memory_order_release);
		pf__slab_destroy(s);
		ck_assert_int_eq(pthread_join(f.tid, NULL), 0);
	}
}
END_TEST

/* ---- stress: the owner allocates while two threads free ---- */

#define RING 1024

/* Single producer (owner), single consumer (freer). */
struct ring {
	_Atomic size_t head; /* written by the consumer */
	char pad1[64];
	_Atomic size_t tail; /* written by the producer */
	char pad2[64];
	uint64_t *slot[RING];
};

struct stress_freer {
	pthread_t tid;
	struct ring ring;
	long freed;
	long bad;
};

#define STRESS_SIZE 64
#define STOP ((uint64_t *)(uintptr_t)1)

static bool
ring_put(struct ring *r, uint64_t *p)
{
	/* Relaxed: only the producer writes tail. */
	size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/*
	 * Acquire: pairs with the release store of head in ring_get(), so
	 * the consumer is done with the slot before it is reused.
	 */
	if (t - PF_ACQUIRED(&r->head, atomic_load_explicit(&r->head,
		    memory_order_acquire)) == RING)
		return false;
	r->slot[t % RING] = p;
	/*
	 * Release: publishes the slot and the object's contents; pairs with
	 * the acquire load of tail in ring_get().
	 */
	PF_HB_BEFORE(&r->tail);
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return true;
}

static uint64_t *
ring_get(struct ring *r)
{
	/* Relaxed: only the consumer writes head. */
	size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	/* Acquire: pairs with the release store of tail in ring_put(). */
	if (PF_ACQUIRED(&r->tail, atomic_load_explicit(&r->tail,
		memory_order_acquire)) == h)
		return NULL;
	uint64_t *p = r->slot[h % RING];
	/* Release: pairs with the acquire load of head in ring_put(). */
	PF_HB_BEFORE(&r->head);
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return p;
}

static bool
stamp_ok(const uint64_t *p)
{
	for (size_t w = 1; w < STRESS_SIZE / 8; w++)
		if (p[w] != p[0] + w)
			return false;
	return true;
}

static void *
stress_free(void *arg)
{
	struct stress_freer *f = arg;
	for (;;) {
		uint64_t *p = ring_get(&f->ring);
		if (p == NULL) {
			sched_yield();
			continue;
		}
		if (p == STOP)
			return NULL;
		if (!stamp_ok(p))
			f->bad++;
		pf__slab_free(NULL, p);
		f->freed++;
	}
}

START_TEST(stress_owner_allocs_while_others_free)
{
	long total = pf_test_scale(1000000);
	pf__slab *s = make_slab(STRESS_SIZE);
	struct stress_freer *f = calloc(2, sizeof(*f));
	ck_assert_ptr_nonnull(f);
	for (int t = 0; t < 2; t++) {
		PF_ATOMIC_OBJ(&f[t].ring.head);
		PF_ATOMIC_OBJ(&f[t].ring.tail);
	}
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(
		    pthread_create(&f[t].tid, NULL, stress_free, &f[t]), 0);

	long sent[2] = {0, 0}, local = 0, bad = 0;
	uint64_t *held[64] = {0};
	for (long i = 0; i < total; i++) {
		uint64_t *p = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p);
		for (size_t w = 0; w < STRESS_SIZE / 8; w++)
			p[w] = (uint64_t)i * 16 + w;
		/* One in four the owner keeps a while and frees itself. */
		if (i % 4 == 3) {
			uint64_t **h = &held[(i / 4) % 64];
			if (*h != NULL) {
				bad += !stamp_ok(*h);
				pf__slab_free(s, *h);
				local++;
			}
			*h = p;
			continue;
		}
		int t = (int)(i & 1);
		while (!ring_put(&f[t].ring, p))
			sched_yield();
		sent[t]++;
	}
	for (int t = 0; t < 2; t++)
		while (!ring_put(&f[t].ring, STOP))
			sched_yield();
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(pthread_join(f[t].tid, NULL), 0);
	for (int i = 0; i < 64; i++) {
		if (held[i] != NULL) {
			bad += !stamp_ok(held[i]);
			pf__slab_free(s, held[i]);
			local++;
		}
	}
	ck_assert_int_eq(bad, 0);
	for (int t = 0; t < 2; t++) {
		ck_assert_int_eq(f[t].bad, 0);
		ck_assert_int_eq(f[t].freed, sent[t]);
	}
	ck_assert_int_eq(sent[0] + sent[1] + local, total);
	/*
	 * Live objects never exceeded the rings plus the held set plus what
	 * waited on the remote stack, so the slab stayed small.
	 */
	void *p = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(p);
	pf__slab_free(s, p);
	ck_assert_uint_le(pf__slab_chunks(s), 64);
	pf__slab_destroy(s);
	free(f);
}
END_TEST

/* ---- allocation failure ---- */

START_TEST(create_reports_enomem)
{
	pf__alloc_fail_at(0);
	pf__slab *s = NULL;
	ck_assert_int_eq(pf__slab_create(&s, 64), 0);
	long n = pf__alloc_count();
	ck_assert_int_ge(n, 1);
	pf__slab_destroy(s);
	for (long i = 1; i <= n; i++) {
		pf__slab *t = (pf__slab *)(uintptr_t)0x1;
		pf__alloc_fail_at(i);
		ck_assert_int_eq(pf__slab_create(&t, 64), PF_ENOMEM);
		ck_assert_ptr_eq(t, (pf__slab *)(uintptr_t)0x1);
	}
	disarm();
}
END_TEST

START_TEST(alloc_returns_null_when_chunk_fails)
{
	pf__slab *s = make_slab(128);
	/* The first object needs the first chunk. */
	pf__alloc_fail_at(1);
	ck_assert_ptr_null(pf__slab_alloc(s));
	disarm();
	ck_assert_uint_eq(pf__slab_chunks(s), 0);

	/* Fill one chunk, then fail the second one. */
	size_t cap = CHUNK_SIZE / 128;
	void **p = malloc((cap + 1) * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	size_t n = 0;
	p[n++] = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(p[0]);
	pf__alloc_fail_at(1);
	for (;;) {
		ck_assert_uint_le(n, cap);
		void *q = pf__slab_alloc(s);
		if (q == NULL)
			break;
		p[n++] = q;
	}
	disarm();
	ck_assert_uint_eq(pf__slab_chunks(s), 1);
	ck_assert_uint_ge(n, cap - 2);
	/* The failure left the slab usable. */
	p[n] = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(p[n]);
	ck_assert_uint_eq(pf__slab_chunks(s), 2);
	for (size_t i = 0; i <= n; i++)
		pf__slab_free(s, p[i]);
	pf__slab_destroy(s);
	free(p);
}
END_TEST

/* ---- the depot: empty chunks serve the next burst, then go back ---- */

/* The chunks that objects p[0..n) lie in, sorted, without repeats;
 * returns how many. */
static size_t
chunks_of(void **p, size_t n, uintptr_t *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uintptr_t)p[i] & ~(uintptr_t)(CHUNK_SIZE - 1);
	qsort(out, n, sizeof(*out), cmp_ptr);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || out[k - 1] != out[i])
			out[k++] = out[i];
	return k;
}

static bool
in_chunks(const void *q, const uintptr_t *c, size_t k)
{
	uintptr_t a = (uintptr_t)q & ~(uintptr_t)(CHUNK_SIZE - 1);
	for (size_t i = 0; i < k; i++)
		if (c[i] == a)
			return true;
	return false;
}

/* A burst fills chunks and frees them; a slab made afterwards (of another
 * object size) carves the same chunks without calling the heap. */
START_TEST(depot_serves_the_next_burst)
{
	pf__slab_depot_set_retain_ms(3600000);
	size_t before = pf__slab_depot_trim();
	enum { N = 2000 };
	void **p = malloc(N * sizeof(*p));
	uintptr_t *c = malloc(N * sizeof(*c));
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(c);
	pf__slab *s = make_slab(256);
	for (size_t i = 0; i < N; i++) {
		p[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p[i]);
	}
	size_t k = chunks_of(p, N, c);
	ck_assert_uint_ge(k, 7);
	for (size_t i = 0; i < N; i++)
		pf__slab_free(s, p[i]);
	/* All but the current chunk and the spare went to the depot. */
	ck_assert_uint_eq(pf__slab_depot_trim(), before + k - 2);
	pf__slab_destroy(s);
	ck_assert_uint_eq(pf__slab_depot_trim(), before + k);

	/* Any heap allocation now fails: the chunks must come from the
	 * depot, newest first, so the last burst's. */
	pf__slab *t = make_slab(128);
	size_t n = 0;
	pf__alloc_fail_at(1);
	size_t want = (k - 1) * ((CHUNK_SIZE - 256) / 128);
	for (; n < want && n < N; n++) {
		p[n] = pf__slab_alloc(t);
		ck_assert_ptr_nonnull(p[n]);
		ck_assert(in_chunks(p[n], c, k));
	}
	disarm();
	for (size_t i = 0; i < n; i++)
		pf__slab_free(t, p[i]);
	pf__slab_destroy(t);
	free(p);
	free(c);
	/* Retention 0: the next look gives every chunk back. */
	pf__slab_depot_set_retain_ms(0);
	ck_assert_uint_eq(pf__slab_depot_trim(), 0);
}
END_TEST

/* Chunks idle past the retention time go back to the heap; younger ones
 * stay. */
START_TEST(depot_gives_back_after_retention)
{
	pf__slab_depot_set_retain_ms(0);
	ck_assert_uint_eq(pf__slab_depot_trim(), 0);
	pf__slab_depot_set_retain_ms(200);
	enum { N = 1000 };
	void **p = malloc(N * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	pf__slab *s = make_slab(256);
	for (size_t i = 0; i < N; i++) {
		p[i] = pf__slab_alloc(s);
		ck_assert_ptr_nonnull(p[i]);
	}
	for (size_t i = 0; i < N; i++)
		pf__slab_free(s, p[i]);
	pf__slab_destroy(s);
	ck_assert_uint_ge(pf__slab_depot_trim(), 3);
	sleep_ms(400);
	ck_assert_uint_eq(pf__slab_depot_trim(), 0);
	free(p);
}
END_TEST

#ifdef PF_DEBUG
/* ---- debug builds catch a double free ---- */

START_TEST(double_free_aborts)
{
	pf__slab *s = make_slab(32);
	void *p = pf__slab_alloc(s);
	ck_assert_ptr_nonnull(p);
	pf__slab_free(s, p);
	pf__slab_free(s, p); /* aborts */
}
END_TEST
#endif

static Suite *
slab_suite(void)
{
	Suite *su = suite_create("slab");
	TCase *tc;

	tc = tcase_create("create_validates");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, create_rejects_bad_sizes);
	tcase_add_test(tc, destroy_without_objects);
	suite_add_tcase(su, tc);

	tc = tcase_create("owner_reuses");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, owner_free_then_alloc_reuses);
	suite_add_tcase(su, tc);

	tc = tcase_create("objects_distinct_aligned_writable");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_loop_test(tc, objects_distinct_aligned_writable, 0,
	    (int)(sizeof(sizes) / sizeof(sizes[0])));
	suite_add_tcase(su, tc);

	tc = tcase_create("memory_returned");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, many_chunks_memory_returned);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(su, tc);

	tc = tcase_create("remote_frees");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, remote_frees_come_back);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(su, tc);

	tc = tcase_create("detach");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, destroy_then_remote_free_last);
	tcase_add_test(tc, destroy_races_last_remote_free);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(su, tc);

	tc = tcase_create("stress");
	tcase_set_tags(tc, "stress");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, stress_owner_allocs_while_others_free);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(su, tc);

	tc = tcase_create("depot");
	tcase_add_checked_fixture(tc, disarm, disarm);
	tcase_add_test(tc, depot_serves_the_next_burst);
	tcase_add_test(tc, depot_gives_back_after_retention);
	suite_add_tcase(su, tc);

	tc = tcase_create("alloc_failure");
	tcase_add_checked_fixture(tc, no_depot, disarm);
	tcase_add_test(tc, create_reports_enomem);
	tcase_add_test(tc, alloc_returns_null_when_chunk_fails);
	suite_add_tcase(su, tc);

#ifdef PF_DEBUG
	/* An abort can only be caught when each test runs in a child. */
	const char *fork_mode = getenv("CK_FORK");
	if (fork_mode == NULL || strcmp(fork_mode, "no") != 0) {
		tc = tcase_create("debug_checks");
		tcase_add_test_raise_signal(tc, double_free_aborts, SIGABRT);
		suite_add_tcase(su, tc);
	}
#endif

	return su;
}

int
main(void)
{
	SRunner *sr = srunner_create(slab_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
