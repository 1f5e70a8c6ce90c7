/*
 * stats.c: per-thread statistics shards, summed when read (stats.h).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "atomics.h"
#include "record.h"
#include "stats.h"

/* ---------------------------------------------------------- histogram */

#define SUB_BITS 5
#define SUB (1u << SUB_BITS)
/* Octaves above the exact range: 2^5 .. 2^44 ns; later values clamp. */
#define TOP_BIT 44
#define BUCKETS (SUB + (TOP_BIT - SUB_BITS) * SUB)

static unsigned
hist_bucket(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
	if (e >= TOP_BIT)
		return BUCKETS - 1;
	unsigned sub = (unsigned)(v >> (e - SUB_BITS)) & (SUB - 1);
	return SUB + (e - SUB_BITS) * SUB + sub;
}

/* The midpoint of bucket b. */
static uint64_t
hist_value(unsigned b)
{
	if (b < SUB)
		return b;
	unsigned e = (b - SUB) / SUB + SUB_BITS, sub = (b - SUB) % SUB;
	uint64_t width = UINT64_C(1) << (e - SUB_BITS);
	return ((uint64_t)(SUB + sub) << (e - SUB_BITS)) + width / 2;
}

#ifdef PF_TESTING
unsigned
pf__hist_bucket(uint64_t v)
{
	return hist_bucket(v);
}

uint64_t
pf__hist_value(unsigned bucket)
{
	return hist_value(bucket);
}
#endif

typedef struct hist {
	_Atomic(uint64_t) max;
	_Atomic(uint64_t) b[BUCKETS];
} hist;

/* Only one writer at a time (the shard's owner, or the holder of the
 * shared shard's lock): a load and a store, relaxed, as readers only want
 * a recent value. */
static inline void
bump(_Atomic(uint64_t) *c, uint64_t by)
{
	atomic_store_explicit(c, pf__load_relaxed(c) + by,
	    memory_order_relaxed);
}

static void
hist_add(hist *h, int64_t v)
{
	uint64_t u = v > 0 ? (uint64_t)v : 0;
	bump(&h->b[hist_bucket(u)], 1);
	if (u > pf__load_relaxed(&h->max))
		atomic_store_explicit(&h->max, u, memory_order_relaxed);
}

/* A merged histogram, read side. */
typedef struct merged {
	uint64_t b[BUCKETS];
	uint64_t max, count;
} merged;

static void
merge(merged *m, const hist *h)
{
	for (unsigned i = 0; i < BUCKETS; i++) {
		uint64_t n = pf__load_relaxed(&((hist *)h)->b[i]);
		m->b[i] += n;
		m->count += n;
	}
	uint64_t mx = pf__load_relaxed(&((hist *)h)->max);
	if (mx > m->max)
		m->max = mx;
}

/* The value at quantile q (0..1] of m: the smallest bucket whose running
 * count reaches ceil(q * count), read as its midpoint, and never above the
 * exact maximum. */
static uint64_t
quantile(const merged *m, double q)
{
	if (m->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)m->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BUCKETS; i++) {
		seen += m->b[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			return v < m->max ? v : m->max;
		}
	}
	return m->max;
}

static void
latency_of(const merged *m, pf_latency *out)
{
	out->count = m->count;
	out->p50_ns = quantile(m, 0.50);
	out->p90_ns = quantile(m, 0.90);
	out->p99_ns = quantile(m, 0.99);
	out->max_ns = m->max;
}

/* -------------------------------------------------------------- shards */

/* One flow's statistics in one shard. */
typedef struct flow_entry {
	const pf_flow *flow;
	struct flow_entry *next; /* immutable once published */
	_Atomic(uint64_t) n[PF__STAT_COUNT];
	hist pending, run;
} flow_entry;

typedef struct shard {
	/* Readers walk this list; the writer pushes on it with release. */
	PF_CACHE_ALIGNED _Atomic(flow_entry *) head;
	/* The writer's lookup table (open addressing on the flow pointer);
	 * readers never touch it. */
	flow_entry **table;
	unsigned cap, used;
	/* The last flow looked up: most threads run few flows. */
	flow_entry *last;
	bool alloc_failed; /* counted nowhere since: see lookup() */
} shard;

struct pf__stats {
	unsigned n_shards; /* workers, then the shared one */
	pthread_mutex_t shared_lock;
	shard shards[];
};

static unsigned
slot_of(const pf_flow *f, unsigned cap)
{
	uintptr_t x = (uintptr_t)f;
	x ^= x >> 17;
	x *= (uintptr_t)0x9E3779B97F4A7C15u;
	return (unsigned)(x >> 7) & (cap - 1);
}

static bool
table_put(flow_entry **table, unsigned cap, flow_entry *e)
{
	for (unsigned i = slot_of(e->flow, cap), n = 0; n < cap;
	    i = (i + 1) & (cap - 1), n++)
		if (table[i] == NULL) {
			table[i] = e;
			return true;
		}
	return false;
}

/* The shard's entry for f, made on first use; NULL when out of memory
 * (the event then goes uncounted: statistics never fail an execution). */
static flow_entry *
lookup(shard *sh, const pf_flow *f)
{
	if (PF_LIKELY(sh->last != NULL && sh->last->flow == f))
		return sh->last;
	if (sh->cap != 0)
		for (unsigned i = slot_of(f, sh->cap), n = 0; n < sh->cap;
		    i = (i + 1) & (sh->cap - 1), n++) {
			flow_entry *e = sh->table[i];
			if (e == NULL)
				break;
			if (e->flow == f)
				return sh->last = e;
		}
	if (2 * (sh->used + 1) > sh->cap) {
		unsigned cap = sh->cap != 0 ? 2 * sh->cap : 16;
		flow_entry **t = pf__calloc(cap, sizeof(*t));
		if (t == NULL) {
			sh->alloc_failed = true;
			return NULL;
		}
		for (unsigned i = 0; i < sh->cap; i++)
			if (sh->table[i] != NULL)
				(void)table_put(t, cap, sh->table[i]);
		pf__free(sh->table);
		sh->table = t;
		sh->cap = cap;
	}
	flow_entry *e = pf__calloc(1, sizeof(*e));
	if (e == NULL) {
		sh->alloc_failed = true;
		return NULL;
	}
	e->flow = f;
	e->next = pf__load_relaxed(&sh->head);
	(void)table_put(sh->table, sh->cap, e);
	sh->used++;
	/* Release: a reader that finds e finds it initialised. */
	pf__store_release(&sh->head, e);
	return sh->last = e;
}

pf__stats *
pf__stats_new(unsigned max_workers)
{
	size_t n = (size_t)max_workers + 1;
	pf__stats *st = pf__aligned_alloc(PF_CACHELINE,
	    sizeof(*st) + n * sizeof(shard));
	if (st == NULL)
		return NULL;
	memset(st, 0, sizeof(*st) + n * sizeof(shard));
	st->n_shards = (unsigned)n;
	for (size_t i = 0; i < n; i++)
		pf__atomic_init(&st->shards[i].head, NULL);
	pthread_mutex_init(&st->shared_lock, NULL);
	return st;
}

void
pf__stats_free(pf__stats *st)
{
	if (st == NULL)
		return;
	for (unsigned i = 0; i < st->n_shards; i++) {
		shard *sh = &st->shards[i];
		flow_entry *e = pf__load_relaxed(&sh->head);
		while (e != NULL) {
			flow_entry *next = e->next;
			pf__free(e);
			e = next;
		}
		pf__free(sh->table);
	}
	pthread_mutex_destroy(&st->shared_lock);
	pf__free(st);
}

/* The calling thread's shard, locked when it is the shared one. */
static shard *
enter(pf__stats *st, pf__worker *w)
{
	if (w != NULL && w->index + 1 < st->n_shards)
		return &st->shards[w->index];
	pthread_mutex_lock(&st->shared_lock);
	return &st->shards[st->n_shards - 1];
}

static void
leave(pf__stats *st, shard *sh)
{
	if (sh == &st->shards[st->n_shards - 1])
		pthread_mutex_unlock(&st->shared_lock);
}

void
pf__stats_created(pf__stats *st, pf__worker *w, const pf_flow *f)
{
	shard *sh = enter(st, w);
	flow_entry *e = lookup(sh, f);
	if (e != NULL)
		bump(&e->n[PF__STAT_CREATED], 1);
	leave(st, sh);
}

void
pf__stats_started(pf__stats *st, pf__worker *w, const pf_flow *f,
    int64_t pending_ns)
{
	shard *sh = enter(st, w);
	flow_entry *e = lookup(sh, f);
	if (e != NULL) {
		bump(&e->n[PF__STAT_STARTED], 1);
		hist_add(&e->pending, pending_ns);
	}
	leave(st, sh);
}

void
pf__stats_finished(pf__stats *st, pf__worker *w, const pf_flow *f,
    pf_status status, int error, int64_t run_ns)
{
	shard *sh = enter(st, w);
	flow_entry *e = lookup(sh, f);
	if (e != NULL) {
		bump(&e->n[status == PF_COMPLETED ? PF__STAT_COMPLETED :
			status == PF_FAILED ? PF__STAT_FAILED :
			PF__STAT_CANCELLED], 1);
		if (error == PF_ETIMEDOUT)
			bump(&e->n[PF__STAT_TIMED_OUT], 1);
		if (run_ns >= 0)
			hist_add(&e->run, run_ns);
	}
	leave(st, sh);
}

/* ---------------------------------------------------------------- read */

/* One flow's sums over every shard, while reading. */
typedef struct flow_sum {
	const pf_flow *flow;
	uint64_t n[PF__STAT_COUNT];
	merged pending, run;
} flow_sum;

static int
by_name(const void *a, const void *b)
{
	const flow_sum *x = *(flow_sum *const *)a, *y = *(flow_sum *const *)b;
	int c = strcmp(pf__flow_name(x->flow), pf__flow_name(y->flow));
	if (c != 0)
		return c;
	return (uintptr_t)x->flow < (uintptr_t)y->flow ? -1 :
	    (uintptr_t)x->flow > (uintptr_t)y->flow;
}

static void
fill_counts(const uint64_t n[PF__STAT_COUNT], uint64_t *created,
    uint64_t *started, uint64_t *completed, uint64_t *failed,
    uint64_t *cancelled, uint64_t *timed_out)
{
	*created = n[PF__STAT_CREATED];
	*started = n[PF__STAT_STARTED];
	*completed = n[PF__STAT_COMPLETED];
	*failed = n[PF__STAT_FAILED];
	*cancelled = n[PF__STAT_CANCELLED];
	*timed_out = n[PF__STAT_TIMED_OUT];
}

void
pf__stats_read(pf__stats *st, pf_stats *out, pf_flow_stats *flows,
    size_t max_flows)
{
	/* Distinct flows: the sums are collected in a small array grown as
	 * needed; on allocation failure the flows not summed are left out
	 * (the totals then miss them too). */
	flow_sum **sums = NULL;
	size_t n = 0, cap = 0;
	for (unsigned i = 0; i < st->n_shards; i++) {
		/* Acquire: pairs with lookup()'s release. */
		for (flow_entry *e = pf__load_acquire(&st->shards[i].head);
		    e != NULL; e = e->next) {
			flow_sum *s = NULL;
			for (size_t j = 0; j < n; j++)
				if (sums[j]->flow == e->flow) {
					s = sums[j];
					break;
				}
			if (s == NULL) {
				if (n == cap) {
					size_t nc = cap != 0 ? 2 * cap : 8;
					flow_sum **t = pf__calloc(nc,
					    sizeof(*t));
					if (t == NULL)
						continue;
					if (n != 0)
						memcpy(t, sums, n * sizeof(*t));
					pf__free(sums);
					sums = t;
					cap = nc;
				}
				if ((s = pf__calloc(1, sizeof(*s))) == NULL)
					continue;
				s->flow = e->flow;
				sums[n++] = s;
			}
			for (unsigned k = 0; k < PF__STAT_COUNT; k++)
				s->n[k] += pf__load_relaxed(&e->n[k]);
			merge(&s->pending, &e->pending);
			merge(&s->run, &e->run);
		}
	}
	if (n > 1)
		qsort(sums, n, sizeof(*sums), by_name);
	uint64_t total[PF__STAT_COUNT] = { 0 };
	merged *all = pf__calloc(2, sizeof(merged));
	for (size_t j = 0; j < n; j++) {
		flow_sum *s = sums[j];
		for (unsigned k = 0; k < PF__STAT_COUNT; k++)
			total[k] += s->n[k];
		if (all != NULL)
			for (unsigned b = 0; b < BUCKETS; b++) {
				all[0].b[b] += s->pending.b[b];
				all[1].b[b] += s->run.b[b];
			}
		if (all != NULL) {
			all[0].count += s->pending.count;
			all[1].count += s->run.count;
			if (s->pending.max > all[0].max)
				all[0].max = s->pending.max;
			if (s->run.max > all[1].max)
				all[1].max = s->run.max;
		}
		if (j < max_flows) {
			pf_flow_stats *fs = &flows[j];
			memset(fs, 0, sizeof(*fs));
			fs->flow = s->flow;
			fs->name = pf__flow_name(s->flow);
			fill_counts(s->n, &fs->created, &fs->started,
			    &fs->completed, &fs->failed, &fs->cancelled,
			    &fs->timed_out);
			latency_of(&s->pending, &fs->pending);
			latency_of(&s->run, &fs->run);
		}
		pf__free(s);
	}
	pf__free(sums);
	fill_counts(total, &out->created, &out->started, &out->completed,
	    &out->failed, &out->cancelled, &out->timed_out);
	if (all != NULL) {
		latency_of(&all[0], &out->pending);
		latency_of(&all[1], &out->run);
		pf__free(all);
	}
	out->n_flows = n;
}
