/*
 * trace.c: per-thread event rings and the Chrome Trace Event JSON writer
 * (trace.h, docs/trace.md).
 *
 * Ring protocol (one writer per buffer at a time; readers at any time):
 *
 *   writer, record number h                 reader
 *   claim = h + 1        (relaxed)          h1 = head          (acquire)
 *   fence(release)                          copy records [lo, h1) (relaxed)
 *   slot[h % cap] = words (relaxed)         fence(acquire)
 *   head = h + 1         (release)          c2 = claim         (relaxed)
 *
 * A record the reader copied is whole if no writer began to overwrite its
 * slot before the copy ended.  Overwriting record i means writing record
 * i + cap, which first raises claim to i + cap + 1 and then fences; if the
 * reader saw any word of that write, its fence/fence pairing makes it see
 * that claim (or a later one).  So the reader keeps only records i with
 * i >= c2 - cap and counts the others as dropped.  In keep-oldest mode the
 * writer stops at cap records and nothing is ever overwritten.
 *
 * Words are relaxed atomics, so no access is a data race (TSan clean) and
 * the plain stores cost what plain stores cost.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "atomics.h"
#include "clock.h"
#include "env.h"
#include "timer.h"
#include "trace.h"

/* -------------------------------------------------------------- records */

static int64_t
wall_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum { R_CREATED = 1, R_FINISHED, R_ABORT, R_TIMEOUT };

#define WORDS 10
/* word 0: type (bits 0-7), status (8-15), has-parent (16), tid (32-63);
 * word 1: the event's time; 2: created; 3: started; 4-5: id; 6-7: parent;
 * word 8: flow name index (low 32), error or reason (high 32). */
#define HAS_PARENT (UINT64_C(1) << 16)
/* word 0, bit 17: a deferred execution's end (its slice gets a lane of
 * its own at write time: see assign_lanes). */
#define DEFERRED (UINT64_C(1) << 17)

typedef struct rec {
	_Atomic(uint64_t) w[WORDS];
} rec;

/* Trace ids of threads that are not workers (tid words). */
#define TID_TIMER 99999u
#define TID_OUTSIDE 100000u
#define TID_DEFERRED 200000u

typedef struct name_node {
	uint32_t idx;
	char *name;
	struct name_node *next; /* immutable once published */
} name_node;

typedef struct name_slot {
	const pf_flow *flow;
	const char *fname; /* the flow's name pointer when first seen */
	uint32_t idx;
} name_slot;

typedef struct buf {
	PF_CACHE_ALIGNED _Atomic(uint64_t) head; /* records published */
	_Atomic(uint64_t) claim;                 /* records begun */
	_Atomic(uint64_t) lost; /* not recorded: full (keep oldest), no memory */
	_Atomic(rec *) recs;                     /* by the writer, once */
	_Atomic(name_node *) names;              /* pushed by the writer */
	/* Writer only. */
	name_slot *tab;
	unsigned tab_cap, tab_used;
	uint32_t next_idx;
	bool no_memory; /* the ring could not be allocated: all lost */
} buf;

struct pf__trace {
	char *path;
	unsigned threads; /* base workers: the others are spares */
	unsigned n_bufs;  /* workers, then the shared one */
	uint64_t cap;     /* records per buffer, a power of two */
	bool keep_newest;
	int64_t origin; /* raw */
	/* CLOCK_REALTIME at the origin.  Under write_lock, for one write:
	 * the end pair times convert against, the origin converted so, and
	 * the rate that turns CLOCK_MONOTONIC spans into wall-clock ns. */
	int64_t origin_wall;
	int64_t end_raw, end_mono, origin_mono;
	double scale;
	pthread_mutex_t shared_lock; /* writers of the shared buffer */
	pthread_mutex_t write_lock;  /* one writer of the file at a time */
	buf bufs[];
};

/* ----------------------------------------------------------- settings */

#define DEFAULT_EVENTS 65536
#define MIN_EVENTS 1024
#define MAX_EVENTS (1ul << 24)

static uint64_t
round_pow2(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* PUMPED_TRACE_KEEP: "newest" (default) or "oldest"; anything else warns
 * once and keeps the default. */
static bool
keep_newest_setting(void)
{
	static atomic_bool warned;
	const char *v = getenv("PUMPED_TRACE_KEEP");
	if (v == NULL || strcmp(v, "newest") == 0)
		return true;
	if (strcmp(v, "oldest") == 0)
		return false;
	if (!atomic_exchange_explicit(&warned, true, memory_order_relaxed))
		fprintf(stderr, "libpumped: PUMPED_TRACE_KEEP=\"%s\" is not "
				"newest or oldest; using newest\n", v);
	return true;
}

static int64_t since_origin_ns(const pf__trace *t, int64_t raw);

pf__trace *
pf__trace_new(const char *path, unsigned threads, unsigned max_workers,
    int64_t origin, int *rc)
{
	/* Fail now rather than at dispose when the file cannot be made:
	 * opened (created if missing) without truncating it, and without
	 * blocking on a FIFO that has no reader yet (ENXIO: fine). */
	if (path == NULL || path[0] == '\0') {
		errno = EINVAL;
		*rc = PF_EINVAL;
		return NULL;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
	if (fd < 0 && errno != ENXIO) {
		*rc = PF_EINVAL; /* errno says why */
		return NULL;
	}
	if (fd >= 0)
		close(fd);
	size_t n = (size_t)max_workers + 1;
	pf__trace *t = pf__aligned_alloc(PF_CACHELINE,
	    sizeof(*t) + n * sizeof(buf));
	char *p = pf__strdup(path);
	if (t == NULL || p == NULL) {
		pf__free(t);
		pf__free(p);
		*rc = PF_ENOMEM;
		return NULL;
	}
	memset(t, 0, sizeof(*t) + n * sizeof(buf));
	t->path = p;
	t->threads = threads;
	t->n_bufs = (unsigned)n;
	t->cap = round_pow2(pf__env_uint("PUMPED_TRACE_BUFFER", MIN_EVENTS,
	    MAX_EVENTS, DEFAULT_EVENTS));
	t->keep_newest = keep_newest_setting();
	t->origin = origin;
	pf__clock_pair_now(&t->end_raw, &t->end_mono);
	t->origin_mono = pf__clock_raw_to_mono_measured(origin, t->end_raw,
	    t->end_mono);
	t->origin_wall = wall_now_ns() - since_origin_ns(t, t->end_raw);
	t->scale = 1.0;
	for (size_t i = 0; i < n; i++) {
		buf *b = &t->bufs[i];
		pf__atomic_init(&b->head, 0);
		pf__atomic_init(&b->claim, 0);
		pf__atomic_init(&b->lost, 0);
		pf__atomic_init(&b->recs, NULL);
		pf__atomic_init(&b->names, NULL);
	}
	pthread_mutex_init(&t->shared_lock, NULL);
	pthread_mutex_init(&t->write_lock, NULL);
	*rc = 0;
	return t;
}

void
pf__trace_free(pf__trace *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->n_bufs; i++) {
		buf *b = &t->bufs[i];
		pf__free(pf__load_relaxed(&b->recs));
		name_node *nn = pf__load_relaxed(&b->names);
		while (nn != NULL) {
			name_node *next = nn->next;
			pf__free(nn->name);
			pf__free(nn);
			nn = next;
		}
		pf__free(b->tab);
	}
	pthread_mutex_destroy(&t->shared_lock);
	pthread_mutex_destroy(&t->write_lock);
	pf__free(t->path);
	pf__free(t);
}

/* ------------------------------------------------------------ writers */

static unsigned
name_hash(const pf_flow *f, unsigned cap)
{
	uintptr_t x = (uintptr_t)f;
	x ^= x >> 15;
	x *= (uintptr_t)0x9E3779B97F4A7C15u;
	return (unsigned)(x >> 9) & (cap - 1);
}

/* The buffer's index of f's name, copying it on first sight; UINT32_MAX
 * when out of memory (the record then names no flow). */
static uint32_t
name_index(buf *b, const pf_flow *f)
{
	const char *fname = f->name != NULL ? f->name : "anonymous";
	if (b->tab_cap != 0)
		for (unsigned i = name_hash(f, b->tab_cap), n = 0;
		    n < b->tab_cap; i = (i + 1) & (b->tab_cap - 1), n++) {
			name_slot *s = &b->tab[i];
			if (s->flow == NULL)
				break;
			/* The same flow, unless its memory now holds
			 * another flow: then the name pointer differs too
			 * (in all but contrived cases). */
			if (s->flow == f && s->fname == fname)
				return s->idx;
		}
	if (2 * (b->tab_used + 1) > b->tab_cap) {
		unsigned cap = b->tab_cap != 0 ? 2 * b->tab_cap : 16;
		name_slot *t = pf__calloc(cap, sizeof(*t));
		if (t == NULL)
			return UINT32_MAX;
		for (unsigned i = 0; i < b->tab_cap; i++) {
			name_slot *s = &b->tab[i];
			if (s->flow == NULL)
				continue;
			unsigned j = name_hash(s->flow, cap);
			while (t[j].flow != NULL)
				j = (j + 1) & (cap - 1);
			t[j] = *s;
		}
		pf__free(b->tab);
		b->tab = t;
		b->tab_cap = cap;
	}
	name_node *nn = pf__calloc(1, sizeof(*nn));
	char *copy = pf__strdup(fname);
	if (nn == NULL || copy == NULL) {
		pf__free(nn);
		pf__free(copy);
		return UINT32_MAX;
	}
	nn->idx = b->next_idx++;
	nn->name = copy;
	nn->next = pf__load_relaxed(&b->names);
	/* Release: a reader that finds the node finds it filled. */
	pf__store_release(&b->names, nn);
	unsigned j = name_hash(f, b->tab_cap);
	while (b->tab[j].flow != NULL)
		j = (j + 1) & (b->tab_cap - 1);
	b->tab[j] = (name_slot){ f, fname, nn->idx };
	b->tab_used++;
	return nn->idx;
}

static void
emit(pf__trace *t, buf *b, const uint64_t v[WORDS])
{
	rec *r = pf__load_relaxed(&b->recs);
	if (PF_UNLIKELY(r == NULL)) {
		if (!b->no_memory)
			r = pf__calloc(t->cap, sizeof(rec));
		if (r == NULL) {
			b->no_memory = true;
			atomic_store_explicit(&b->lost,
			    pf__load_relaxed(&b->lost) + 1,
			    memory_order_relaxed);
			return;
		}
		/* Release: readers see the ring zeroed. */
		pf__store_release(&b->recs, r);
	}
	uint64_t h = pf__load_relaxed(&b->head);
	if (!t->keep_newest && h >= t->cap) {
		atomic_store_explicit(&b->lost, pf__load_relaxed(&b->lost) + 1,
		    memory_order_relaxed);
		return;
	}
	/* See the protocol at the top of the file. */
	atomic_store_explicit(&b->claim, h + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	rec *slot = &r[h & (t->cap - 1)];
	for (unsigned i = 0; i < WORDS; i++)
		atomic_store_explicit(&slot->w[i], v[i], memory_order_relaxed);
	pf__store_release(&b->head, h + 1);
}

/* The trace id of a thread that is not a worker of the scope. */
static uint32_t
other_tid(void)
{
	static atomic_uint next;
	static _Thread_local uint32_t mine PF_TLS_MODEL;
	if (pf__timer_thread_here())
		return TID_TIMER;
	if (mine == 0)
		mine = TID_OUTSIDE + atomic_fetch_add_explicit(&next, 1,
		    memory_order_relaxed);
	return mine;
}

/* The calling thread's buffer, locked when shared; *tid its trace id. */
static buf *
enter(pf__trace *t, pf__worker *w, uint32_t *tid)
{
	if (w != NULL && w->index + 1 < t->n_bufs) {
		*tid = w->index + 1;
		return &t->bufs[w->index];
	}
	*tid = other_tid();
	pthread_mutex_lock(&t->shared_lock);
	return &t->bufs[t->n_bufs - 1];
}

static void
leave(pf__trace *t, buf *b)
{
	if (b == &t->bufs[t->n_bufs - 1])
		pthread_mutex_unlock(&t->shared_lock);
}

static void
put_id(uint64_t *v, const pf__uuid *id)
{
	v[0] = pf__uuid_half(id, 0);
	v[1] = pf__uuid_half(id, 1);
}

void
pf__trace_created(pf__trace *t, pf__worker *w, const pf__uuid *id,
    const pf__uuid *parent, const pf_flow *f, int64_t created)
{
	uint32_t tid;
	buf *b = enter(t, w, &tid);
	uint64_t v[WORDS] = { 0 };
	v[0] = R_CREATED | (parent != NULL ? HAS_PARENT : 0) |
	    (uint64_t)tid << 32;
	v[1] = v[2] = (uint64_t)created;
	put_id(&v[4], id);
	if (parent != NULL)
		put_id(&v[6], parent);
	v[8] = name_index(b, f);
	emit(t, b, v);
	leave(t, b);
}

void
pf__trace_finished(pf__trace *t, pf__worker *w, const pf__uuid *id,
    const pf__uuid *parent, const pf_flow *f, int64_t created,
    int64_t started, int64_t completed, pf_status status, int error,
    bool deferred)
{
	uint32_t tid;
	buf *b = enter(t, w, &tid);
	uint64_t v[WORDS] = { 0 };
	v[0] = R_FINISHED | (uint64_t)status << 8 |
	    (parent != NULL ? HAS_PARENT : 0) | (deferred ? DEFERRED : 0) |
	    (uint64_t)tid << 32;
	v[1] = (uint64_t)completed;
	v[2] = (uint64_t)created;
	v[3] = (uint64_t)started;
	put_id(&v[4], id);
	if (parent != NULL)
		put_id(&v[6], parent);
	v[8] = name_index(b, f) | (uint64_t)(uint32_t)error << 32;
	emit(t, b, v);
	leave(t, b);
}

static void
instant(pf__trace *t, pf__worker *w, unsigned type, const pf__uuid *id,
    int reason, int64_t now)
{
	uint32_t tid;
	buf *b = enter(t, w, &tid);
	uint64_t v[WORDS] = { 0 };
	v[0] = type | (uint64_t)tid << 32;
	v[1] = (uint64_t)now;
	put_id(&v[4], id);
	v[8] = UINT32_MAX | (uint64_t)(uint32_t)reason << 32;
	emit(t, b, v);
	leave(t, b);
}

void
pf__trace_abort(pf__trace *t, pf__worker *w, const pf__uuid *id,
    int reason, int64_t now)
{
	instant(t, w, R_ABORT, id, reason, now);
}

void
pf__trace_timeout(pf__trace *t, pf__worker *w, const pf__uuid *id,
    int64_t now)
{
	instant(t, w, R_TIMEOUT, id, 0, now);
}

/* ------------------------------------------------------------ reading */

/* One buffer's records, copied. */
typedef struct snap {
	uint64_t (*v)[WORDS];
	size_t n;
	char **names; /* by index */
	uint32_t n_names;
	uint64_t dropped;
} snap;

static bool
take(pf__trace *t, buf *b, snap *s)
{
	memset(s, 0, sizeof(*s));
	/* Acquire: pairs with the writer's release of the ring. */
	rec *r = pf__load_acquire(&b->recs);
	s->dropped = pf__load_relaxed(&b->lost);
	if (r == NULL)
		return true;
	uint64_t h1 = pf__load_acquire(&b->head);
	uint64_t lo = t->keep_newest && h1 > t->cap ? h1 - t->cap : 0;
	/* After head: every name a copied record uses was published before
	 * it (acquire). */
	name_node *names = pf__load_acquire(&b->names);
	s->v = h1 > lo ? malloc((size_t)(h1 - lo) * sizeof(*s->v)) : NULL;
	if (h1 > lo && s->v == NULL)
		return false;
	for (uint64_t i = lo; i < h1; i++)
		for (unsigned k = 0; k < WORDS; k++)
			s->v[i - lo][k] = atomic_load_explicit(
			    &r[i & (t->cap - 1)].w[k], memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	uint64_t c2 = pf__load_relaxed(&b->claim);
	uint64_t keep = t->keep_newest && c2 > t->cap ? c2 - t->cap : 0;
	if (keep < lo)
		keep = lo;
	if (keep > h1)
		keep = h1;
	s->dropped += keep; /* overwritten, or possibly torn */
	memmove(s->v, s->v + (keep - lo), (size_t)(h1 - keep) *
	    sizeof(*s->v));
	s->n = (size_t)(h1 - keep);
	for (name_node *nn = names; nn != NULL; nn = nn->next)
		if (nn->idx + 1 > s->n_names)
			s->n_names = nn->idx + 1;
	if (s->n_names != 0) {
		s->names = calloc(s->n_names, sizeof(*s->names));
		if (s->names == NULL) {
			free(s->v);
			return false;
		}
		for (name_node *nn = names; nn != NULL; nn = nn->next)
			s->names[nn->idx] = nn->name;
	}
	return true;
}

/* ------------------------------------------------------------ writing */

/* A JSON string: exact escapes; bytes that are not UTF-8 become U+FFFD. */
static void
json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	fputc('"', f);
	while (*p != '\0') {
		unsigned c = *p;
		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc((int)c, f);
			p++;
		} else if (c < 0x20) {
			fprintf(f, "\\u%04x", c);
			p++;
		} else if (c < 0x80) {
			fputc((int)c, f);
			p++;
		} else {
			/* Length and minimum of a well-formed sequence. */
			unsigned len = c >= 0xf0 && c <= 0xf4 ? 4 :
			    c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
			uint32_t cp = len == 4 ? c & 7 : len == 3 ? c & 15 :
			    c & 31;
			unsigned i = 1;
			for (; len != 0 && i < len; i++) {
				if ((p[i] & 0xc0) != 0x80)
					break;
				cp = cp << 6 | (p[i] & 0x3f);
			}
			bool ok = len != 0 && i == len &&
			    !(len == 3 && cp < 0x800) &&
			    !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
			    !(cp >= 0xd800 && cp <= 0xdfff);
			if (ok) {
				fwrite(p, 1, len, f);
				p += len;
			} else {
				fputs("\\ufffd", f);
				p += 1;
			}
		}
	}
	fputc('"', f);
}

static void
uuid_text(uint64_t hi, uint64_t lo, char out[PF__UUID_TEXT_LEN + 1])
{
	pf__uuid u;
	for (unsigned i = 0; i < 8; i++) {
		u.b[i] = (uint8_t)(hi >> (56 - 8 * i));
		u.b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
	pf__uuid_format(&u, out);
}

/*
 * Nanoseconds from the origin to raw.  The raw clock's map to
 * CLOCK_MONOTONIC (clock.c) is piecewise linear and slews: each
 * refinement appends a segment whose rate steers it back to the measured
 * time, so between refinements it is off by up to the first calibration's
 * error times the time since (17-180 us at about 1 s on the loaded VM,
 * found by a black-box test comparing handlers' wall-clock stamps with
 * their slices).  Traces are converted after the fact, so they
 * interpolate between the measured pairs instead, ending with one read at
 * this write (pf__clock_raw_to_mono_measured): exact at each pair.  Taking
 * one segment's rate for the whole span since the origin was worse still
 * (1.9 ms over 1.5 s across a refinement, under TSan in CI).
 */
static int64_t
since_origin_ns(const pf__trace *t, int64_t raw)
{
	return raw > t->origin ? pf__clock_raw_to_mono_measured(raw,
	    t->end_raw, t->end_mono) - t->origin_mono : 0;
}

/*
 * Each write converts against a pair read now, and measures CLOCK_REALTIME
 * against CLOCK_MONOTONIC since the origin: both are slewed alike by NTP,
 * so the rate is 1 unless the wall clock was set; a small step is spread
 * over the file, one over 5% (or a span under 10 ms, too short to
 * measure) is ignored.  The times then follow the wall clock that
 * origin_unix_ns and the ranks' clock offsets are measured in.
 */
static void
measure_rate(pf__trace *t)
{
	pf__clock_pair_now(&t->end_raw, &t->end_mono);
	int64_t wall_end = wall_now_ns();
	t->origin_mono = pf__clock_raw_to_mono_measured(t->origin, t->end_raw,
	    t->end_mono);
	int64_t span = t->end_mono - t->origin_mono;
	double wall = (double)(wall_end - t->origin_wall);
	t->scale = 1.0;
	if (span > 10000000) {
		double r = wall / (double)span;
		if (r > 0.95 && r < 1.05)
			t->scale = r;
	}
}

/* Microseconds since the origin. */
static double
us(const pf__trace *t, int64_t raw)
{
	return (double)since_origin_ns(t, raw) * t->scale / 1000.0;
}

static const char *
status_text(unsigned st)
{
	return st == PF_COMPLETED ? "completed" : st == PF_FAILED ? "failed" :
	    "cancelled";
}

static const char *
name_of(const snap *s, uint64_t w8)
{
	uint32_t i = (uint32_t)w8;
	return i < s->n_names && s->names[i] != NULL ? s->names[i] : "?";
}

/* One record's events; *first says whether a comma is due. */
static void
write_record(FILE *f, const pf__trace *t, const snap *s, const uint64_t *v,
    int pid, bool *first)
{
	unsigned type = (unsigned)(v[0] & 0xff), st = (v[0] >> 8) & 0xff;
	bool parent = (v[0] & HAS_PARENT) != 0;
	unsigned tid = (unsigned)(v[0] >> 32);
	char id[PF__UUID_TEXT_LEN + 1], pid_text[PF__UUID_TEXT_LEN + 1];
	uuid_text(v[4], v[5], id);
#define SEP() (fputs(*first ? "\n" : ",\n", f), *first = false)
	switch (type) {
	case R_CREATED:
		SEP();
		fputs("{\"ph\":\"b\",\"cat\":\"life\",\"name\":", f);
		json_string(f, name_of(s, v[8]));
		fprintf(f, ",\"id\":\"%s\",\"ts\":%.3f,\"pid\":%d,\"tid\":%u}",
		    id, us(t, (int64_t)v[1]), pid, tid);
		if (parent) {
			SEP();
			fprintf(f, "{\"ph\":\"s\",\"cat\":\"child\",\"name\":"
				   "\"child\",\"id\":\"%s\",\"ts\":%.3f,"
				   "\"pid\":%d,\"tid\":%u}",
			    id, us(t, (int64_t)v[1]), pid, tid);
		}
		break;
	case R_FINISHED: {
		double done = us(t, (int64_t)v[1]);
		if (v[3] != 0) {
			double start = us(t, (int64_t)v[3]);
			SEP();
			fputs("{\"ph\":\"X\",\"cat\":\"exec\",\"name\":", f);
			json_string(f, name_of(s, v[8]));
			fprintf(f, ",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,"
				   "\"tid\":%u,\"args\":{\"id\":\"%s\","
				   "\"parent\":",
			    start, done > start ? done - start : 0.0, pid, tid,
			    id);
			if (parent) {
				uuid_text(v[6], v[7], pid_text);
				fprintf(f, "\"%s\"", pid_text);
			} else {
				fputs("null", f);
			}
			double created = us(t, (int64_t)v[2]);
			fprintf(f, ",\"status\":\"%s\",\"error\":%d,"
				   "\"pending_us\":%.3f}}",
			    status_text(st), (int)(v[8] >> 32),
			    start > created ? start - created : 0.0);
			if (parent) {
				SEP();
				fprintf(f, "{\"ph\":\"f\",\"bp\":\"e\",\"cat\":"
					   "\"child\",\"name\":\"child\","
					   "\"id\":\"%s\",\"ts\":%.3f,"
					   "\"pid\":%d,\"tid\":%u}",
				    id, start, pid, tid);
			}
		}
		SEP();
		fputs("{\"ph\":\"e\",\"cat\":\"life\",\"name\":", f);
		json_string(f, name_of(s, v[8]));
		fprintf(f, ",\"id\":\"%s\",\"ts\":%.3f,\"pid\":%d,\"tid\":%u,"
			   "\"args\":{\"status\":\"%s\"}}",
		    id, done, pid, tid, status_text(st));
		break;
	}
	case R_ABORT:
	case R_TIMEOUT:
		SEP();
		fprintf(f, "{\"ph\":\"i\",\"s\":\"t\",\"name\":\"%s\","
			   "\"ts\":%.3f,\"pid\":%d,\"tid\":%u,\"args\":"
			   "{\"id\":\"%s\"",
		    type == R_ABORT ? "abort" : "timeout",
		    us(t, (int64_t)v[1]), pid, tid, id);
		if (type == R_ABORT)
			fprintf(f, ",\"reason\":%d", (int)(v[8] >> 32));
		fputs("}}", f);
		break;
	}
#undef SEP
}

static void
thread_name(FILE *f, const pf__trace *t, unsigned tid, int pid)
{
	char name[48];
	if (tid == TID_TIMER)
		snprintf(name, sizeof(name), "timer");
	else if (tid >= TID_DEFERRED)
		snprintf(name, sizeof(name), "deferred %u",
		    tid - TID_DEFERRED + 1);
	else if (tid >= TID_OUTSIDE)
		snprintf(name, sizeof(name), "outside thread %u",
		    tid - TID_OUTSIDE + 1);
	else if (tid - 1 < t->threads)
		snprintf(name, sizeof(name), "worker %u", tid - 1);
	else
		snprintf(name, sizeof(name), "spare %u", tid - 1);
	fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,"
		   "\"tid\":%u,\"args\":{\"name\":\"%s\"}}",
	    pid, tid, name);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A deferred execution's slice, for assign_lanes. */
typedef struct span {
	uint64_t *v;
	int64_t start, end;
} span;

static int
cmp_span(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

/*
 * Deferred executions (pumped.h: proxies of work elsewhere) end on
 * whichever thread settles them, and many overlap there without nesting.
 * Their slices go to lanes of their own instead ("deferred N" threads),
 * packed first-fit in start order so that no two on a lane overlap: the
 * lane whose last slice ended first is reused when it ended in time
 * (a min-heap of lane ends).  Rewrites the snapshots' tid words; false
 * when out of memory.
 */
static bool
assign_lanes(snap *snaps, unsigned n_bufs)
{
	size_t n = 0, cap = 0;
	span *sp = NULL;
	for (unsigned i = 0; i < n_bufs; i++)
		for (size_t j = 0; j < snaps[i].n; j++) {
			uint64_t *v = snaps[i].v[j];
			if ((v[0] & 0xff) != R_FINISHED || !(v[0] & DEFERRED) ||
			    v[3] == 0)
				continue;
			if (n == cap) {
				size_t nc = cap != 0 ? 2 * cap : 64;
				span *ns = realloc(sp, nc * sizeof(*ns));
				if (ns == NULL) {
					free(sp);
					return false;
				}
				sp = ns;
				cap = nc;
			}
			sp[n++] = (span){ v, (int64_t)v[3], (int64_t)v[1] };
		}
	if (n == 0)
		return true;
	qsort(sp, n, sizeof(*sp), cmp_span);
	/* A min-heap of lanes by the end of their last slice: end[k] and
	 * lane[k] are one entry. */
	int64_t *end = malloc(n * sizeof(*end));
	uint32_t *lane = malloc(n * sizeof(*lane));
	if (end == NULL || lane == NULL) {
		free(end);
		free(lane);
		free(sp);
		return false;
	}
	size_t h = 0;
	uint32_t lanes = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t l;
		if (h > 0 && end[0] <= sp[i].start) {
			l = lane[0]; /* pop the earliest end */
			end[0] = end[--h];
			lane[0] = lane[h];
			for (size_t k = 0;;) {
				size_t c = 2 * k + 1;
				if (c >= h)
					break;
				if (c + 1 < h && end[c + 1] < end[c])
					c++;
				if (end[k] <= end[c])
					break;
				int64_t te = end[k];
				end[k] = end[c];
				end[c] = te;
				uint32_t tl = lane[k];
				lane[k] = lane[c];
				lane[c] = tl;
				k = c;
			}
		} else {
			l = lanes++;
		}
		sp[i].v[0] = (sp[i].v[0] & UINT64_C(0xffffffff)) |
		    (uint64_t)(TID_DEFERRED + l) << 32;
		/* push (its end, l) */
		size_t k = h++;
		end[k] = sp[i].end;
		lane[k] = l;
		while (k > 0 && end[(k - 1) / 2] > end[k]) {
			size_t pa = (k - 1) / 2;
			int64_t te = end[k];
			end[k] = end[pa];
			end[pa] = te;
			uint32_t tl = lane[k];
			lane[k] = lane[pa];
			lane[pa] = tl;
			k = pa;
		}
	}
	free(end);
	free(lane);
	free(sp);
	return true;
}

int
pf__trace_write(pf__trace *t, const pf__trace_process *p)
{
	pthread_mutex_lock(&t->write_lock);
	int rc = 0;
	size_t plen = strlen(t->path);
	char *tmp = malloc(plen + 16);
	snap *snaps = calloc(t->n_bufs, sizeof(*snaps));
	uint32_t *tids = NULL;
	size_t n_tids = 0, cap_tids = 0;
	FILE *f = NULL;
	bool in_place = false;
	struct stat st;
	if (tmp == NULL || snaps == NULL)
		goto fail;
	snprintf(tmp, plen + 16, "%s.tmp", t->path);
	uint64_t dropped = 0;
	for (unsigned i = 0; i < t->n_bufs; i++) {
		if (!take(t, &t->bufs[i], &snaps[i]))
			goto fail;
		dropped += snaps[i].dropped;
	}
	measure_rate(t);
	if (!assign_lanes(snaps, t->n_bufs))
		goto fail;
	for (unsigned i = 0; i < t->n_bufs; i++) {
		/* The threads seen, for their names. */
		for (size_t j = 0; j < snaps[i].n; j++) {
			uint32_t tid = (uint32_t)(snaps[i].v[j][0] >> 32);
			if (n_tids > 0 && tids[n_tids - 1] == tid)
				continue;
			if (n_tids == cap_tids) {
				size_t nc = cap_tids != 0 ? 2 * cap_tids : 16;
				uint32_t *nt = realloc(tids, nc * sizeof(*nt));
				if (nt == NULL)
					goto fail;
				tids = nt;
				cap_tids = nc;
			}
			tids[n_tids++] = tid;
		}
	}
	if (n_tids > 1)
		qsort(tids, n_tids, sizeof(*tids), cmp_u32);
	/* A regular file (or none yet) is replaced whole: written beside it,
	 * then renamed over it, so a reader never sees half a file.  Anything
	 * else (a symbolic link, a device, a FIFO) is written through, in
	 * place: renaming over it would replace the link or the node. */
	in_place = lstat(t->path, &st) == 0 && !S_ISREG(st.st_mode);
	f = fopen(in_place ? t->path : tmp, "w");
	if (f == NULL)
		goto fail;
	int os_pid = (int)getpid();
	int pid = p != NULL ? p->pid : os_pid;
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\n\"otherData\":{"
		   "\"producer\":\"libpumped\",\"version\":\"%s\","
		   "\"dropped_events\":%llu,\"buffer_events\":%llu,"
		   "\"keep\":\"%s\",\"os_pid\":%d,\"origin_unix_ns\":%lld,"
		   "\"clock_offset_ns\":%lld},\n\"traceEvents\":[",
	    PF_VERSION_STRING, (unsigned long long)dropped,
	    (unsigned long long)t->cap, t->keep_newest ? "newest" : "oldest",
	    os_pid, (long long)t->origin_wall,
	    (long long)(p != NULL ? p->clock_offset_ns : 0));
	fprintf(f, "\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,"
		   "\"tid\":0,\"args\":{\"name\":", pid);
	json_string(f, p != NULL ? p->name : "libpumped scope");
	fputs("}}", f);
	for (size_t j = 0; j < n_tids; j++)
		if (j == 0 || tids[j] != tids[j - 1])
			thread_name(f, t, tids[j], pid);
	bool first = false;
	for (unsigned i = 0; i < t->n_bufs; i++)
		for (size_t j = 0; j < snaps[i].n; j++)
			write_record(f, t, &snaps[i], snaps[i].v[j], pid,
			    &first);
	fputs("\n]}\n", f);
	if (ferror(f) || fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	if (!in_place && rename(tmp, t->path) != 0)
		goto fail;
	goto out;
fail:
	fprintf(stderr, "libpumped: could not write the trace %s: %s\n",
	    t->path, strerror(errno));
	if (f != NULL)
		fclose(f);
	if (tmp != NULL && !in_place)
		(void)unlink(tmp);
	rc = PF_EINVAL;
out:
	if (snaps != NULL)
		for (unsigned i = 0; i < t->n_bufs; i++) {
			free(snaps[i].v);
			free(snaps[i].names);
		}
	free(snaps);
	free(tids);
	free(tmp);
	pthread_mutex_unlock(&t->write_lock);
	return rc;
}
