/*
 * mpi.c: libpumped-mpi, tracked flow executions across MPI ranks
 * (<pumped/mpi.h>).  Built on the public API only: proxies are deferred
 * executions (pf_scope_exec_deferred, pf_exec_settle), remote executions
 * run under a context carrying the proxy's id
 * (pf_scope_create_execution_with_id), and work stealing takes pending
 * executions back with pf_exec_withdraw.
 *
 * Threads.  One communication thread per attachment makes every MPI call
 * after attach.  Other threads talk to it through a command queue under
 * m->lock (commands are embedded in the items, so an abort listener never
 * allocates); it sleeps on m->wake with a bounded back-off when idle.
 * Everything named "comm thread only" below is touched by it alone.
 *
 * Wire.  One tag on a duplicate of the program's communicator; every
 * message is a struct wire followed by two byte strings (n1, n2).  Since
 * all messages match the same receive, MPI's non-overtaking rule keeps
 * each sender's messages in order.  Kinds:
 *   REQ   (req, a: timeout ns or 0 (-1: already past), b: the tags'
 *         bytes, pad: 1 when the work was taken or pushed, id: the
 *         proxy's id) name, then the travelling tags and the input
 *   REP   (req, a: status, b: code) message, output
 *   ABORT (req, a: reason)
 *   STEAL (a: how many the thief wants)      GAVE (a: how many it got)
 *   NOTICE (the sender is detaching)
 *   PROBE (req: wave)   REPORT (req: wave, a: quiescent) sent, received
 *   FIN   (every rank is done: detach returns)
 * The detach protocol is at drain_step.
 *
 * Items (proxies) and hosts (executions run here for other ranks) are
 * described at their structs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pumped/mpi.h>

#define WIRE_MAGIC 0x314d4650u /* "PFM1" */
#define TAG 0x7066             /* the one tag, on the library's own comm */
#define NBUCKETS 1024u
#define SPIN_NS 200000         /* after activity, poll this long */
#define FIRST_SLEEP_US 20
#define IN_FLIGHT_SLEEP_US 100 /* the longest sleep while answers are due */
/* Inputs and outputs up to this many bytes: a message is one MPI_Isend
 * of an int count of bytes, with room for the header and the name. */
#define MAX_PAYLOAD ((size_t)INT_MAX - 65536)
#define LIFELINE_RETRY_NS 1000000000 /* a safety net: lifelines push */

enum kind {
	K_REQ = 1, K_REP, K_ABORT, K_STEAL, K_GAVE, K_NOTICE,
	/* the termination waves: not counted as messages of the work */
	K_PROBE, K_REPORT, K_FIN
};

/* Waves of the termination detection at least this far apart. */
#define WAVE_GAP_NS 1000000

typedef struct wire {
	uint32_t magic;
	uint16_t kind;
	uint16_t pad;
	uint64_t req;
	int64_t a;
	int32_t b;
	uint32_t n1;
	uint32_t n2;
	uint32_t pad2;
	char id[40];
} wire;

/* ------------------------------------------------------------ registry */

typedef struct entry {
	const pf_flow *flow;
	pf_mpi_codec codec;
	pf_flow wrapper; /* runs an ANY_RANK execution here (local_handler) */
} entry;

/* A queued request to the comm thread. */
enum cmd_kind { C_SEND = 1, C_ABORT, C_HOST_DONE, C_WAKE, C_BARRIER };

typedef struct cmd {
	struct cmd *next;
	int kind;
	void *obj;
} cmd;

/*
 * An item: one proxy.  Its refs: the settle path's (dropped once the proxy
 * is settled), a queued abort command's, the ANY list's.  rank is -1 while
 * an ANY_RANK item runs here (local: its child execution L, the wrapper);
 * a thief that takes it makes it remote.  Fields the comm thread alone
 * uses after the item was handed to it: req, hnext, abort_sent.
 */
typedef struct item {
	atomic_int refs;
	pf_mpi *m;
	const entry *fe;
	pf_exec *proxy;
	pf_exec *local;     /* ANY_RANK, while here: L (a reference) */
	void *in;           /* the travelling tags, then the encoded input */
	size_t in_len;      /* both */
	size_t tags_len;    /* the tags' part */
	void *out;          /* ANY_RANK: L's output goes here */
	int rank;
	uint64_t req;
	int64_t deadline_ns; /* CLOCK_REALTIME, 0: none */
	pf_signal_listener l;
	bool listening;
	bool abort_sent;
	atomic_bool abort_queued;
	atomic_int abort_reason;
	atomic_bool started; /* L's handler began */
	bool given;          /* taken by another rank (comm thread) */
	cmd send_cmd, abort_cmd;
	struct item *hnext; /* the table of requests in flight */
	struct item *anext, *aprev; /* the ANY list (under m->lock) */
	bool listed;        /* on the ANY list (under m->lock) */
	bool gone;          /* L started or ended (under m->lock) */
} item;

/* A host: an execution run here for rank src.  Comm thread only, except
 * done_cmd (pushed by the execution's status callback). */
typedef struct host {
	pf_mpi *m;
	const entry *fe;
	int src;
	uint64_t req;
	int abort_reason;
	pf_ctx *shadow;
	pf_exec *e;
	void *input;
	bool decoded;
	atomic_bool ran;
	cmd done_cmd;
	struct host *hnext;
} host;

/* A pf_mpi_barrier in progress: the caller sleeps until the comm thread
 * sees the MPI_Ibarrier complete. */
typedef struct barrier {
	cmd c;
	MPI_Request req;
	bool done; /* under m->lock */
} barrier;

struct pf_mpi {
	pf_scope *scope;
	/* A context of the scope held until detach: it keeps the scope's
	 * memory, so that a scope disposed before detach (a misuse) only
	 * refuses new work (PF_ESHUTDOWN) instead of being reached freed. */
	pf_ctx *anchor;
	MPI_Comm comm;
	int rank, size;
	int threads;
	int64_t clock_offset_ns; /* this clock minus rank 0's, at attach */
	bool own_mpi;
	bool no_steal;
	unsigned idle_max_us;
	pthread_t thread;

	pthread_mutex_t lock; /* the command queue, sleeping, the ANY list */
	pthread_cond_t wake;
	pthread_cond_t barrier_done;
	pthread_mutex_t barrier_lock; /* one pf_mpi_barrier at a time */
	cmd *cmd_head, *cmd_tail;
	bool sleeping;
	item *any_head, *any_tail;
	atomic_bool detaching;
	atomic_bool closed; /* FIN seen: pf_mpi_exec is refused */
	atomic_int users;   /* pf_mpi_exec calls in progress */

	pthread_rwlock_t reg_lock;
	entry **flows;
	size_t nflows, flows_cap;
	const pf_tag **tags; /* travelling tags, by label (reg_lock) */
	size_t ntags, tags_cap;

	atomic_int any_pending; /* ANY items here whose L has not started */
	atomic_int busy;        /* ANY handlers running here */
	atomic_int hosted_running; /* hosts whose handler started */
	atomic_long live;       /* items (proxies) not yet settled */
	atomic_int nlifelines;

	/* comm thread only */
	item *table[NBUCKETS];
	host *hosts[NBUCKETS];
	long in_flight, nhosted;
	uint64_t next_req;
	MPI_Request *sreq;
	void **sbuf;
	int nsend, send_cap;
	bool steal_out;
	int victim;
	unsigned char *tried;
	int ntried;
	bool waiting_lifeline;
	int64_t lifeline_since;
	int *lifeline_want;
	bool draining, done, fin;
	int notices;           /* ranks known to be detaching, self included */
	/* Messages of the work (not the waves) sent and received here. */
	uint64_t msgs_sent, msgs_recv;
	/* Coordinator (rank 0): the wave in progress and the last one. */
	uint64_t wave;
	bool wave_out;
	int reports;
	bool wave_quiet;
	uint64_t wave_sent, wave_recv;
	uint64_t own_sent, own_recv; /* rank 0's own, at the wave's start */
	bool last_quiet;
	uint64_t last_sent, last_recv;
	int64_t wave_at;
	barrier *barrier; /* the one in progress */
	unsigned rng;

	struct {
		atomic_ullong sent, hosted, local_any, given, taken,
		    steal_asks, aborts, messages;
	} st;
};

static _Thread_local item *tl_withdrawing;

static int64_t
now_ns(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *
pf_mpi_strerror(int code)
{
	switch (code) {
	case PF_MPI_ENOFLOW:
		return "flow not registered on that rank";
	case PF_MPI_ECODEC:
		return "codec failed or malformed message";
	case PF_MPI_ETHREAD:
		return "MPI thread level below MPI_THREAD_SERIALIZED";
	case PF_MPI_EMPI:
		return "MPI call failed";
	}
	return pf_strerror(code);
}

/* ---------------------------------------------------------- commands */

static void
push_cmd(pf_mpi *m, cmd *c, int kind, void *obj)
{
	c->kind = kind;
	c->obj = obj;
	c->next = NULL;
	pthread_mutex_lock(&m->lock);
	if (m->cmd_tail != NULL)
		m->cmd_tail->next = c;
	else
		m->cmd_head = c;
	m->cmd_tail = c;
	if (m->sleeping)
		pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

static cmd *
take_cmds(pf_mpi *m)
{
	pthread_mutex_lock(&m->lock);
	cmd *c = m->cmd_head;
	m->cmd_head = m->cmd_tail = NULL;
	pthread_mutex_unlock(&m->lock);
	return c;
}

/* ------------------------------------------------------------- codecs */

static int
encode(int (*fn)(const void *, void **, size_t *, void *), void *data,
    const void *value, size_t size, void **bytes, size_t *len)
{
	*bytes = NULL;
	*len = 0;
	if (fn != NULL) {
		int rc = fn(value, bytes, len, data);
		if (rc != 0 || (*len > 0 && *bytes == NULL) ||
		    *len > UINT32_MAX) {
			free(*bytes);
			*bytes = NULL;
			*len = 0;
			return -1;
		}
		return 0;
	}
	if (size == 0)
		return 0;
	if (size > UINT32_MAX || (*bytes = malloc(size)) == NULL)
		return -1;
	memcpy(*bytes, value, size);
	*len = size;
	return 0;
}

static int
decode(int (*fn)(const void *, size_t, void *, void *), void *data,
    const void *bytes, size_t len, void *value, size_t size)
{
	if (size > 0)
		memset(value, 0, size);
	if (fn != NULL)
		return fn(bytes, len, value, data) != 0 ? -1 : 0;
	if (len != size)
		return -1;
	if (size > 0)
		memcpy(value, bytes, size);
	return 0;
}

/* ----------------------------------------------------------- registry */

static const entry *
find_flow(pf_mpi *m, const pf_flow *f, const char *name, size_t name_len)
{
	const entry *found = NULL;
	pthread_rwlock_rdlock(&m->reg_lock);
	for (size_t i = 0; i < m->nflows && found == NULL; i++) {
		const entry *e = m->flows[i];
		if (f != NULL ? e->flow == f :
			strlen(e->flow->name) == name_len &&
			    memcmp(e->flow->name, name, name_len) == 0)
			found = e;
	}
	pthread_rwlock_unlock(&m->reg_lock);
	return found;
}

/* Room for one more element in the array of pointers at *arr (n used,
 * *cap allocated): 0 or PF_ENOMEM.  The pointer is moved by memcpy, so
 * one helper serves arrays of any pointer type. */
static int
reserve_one(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap != 0 ? *cap * 2 : 8;
	void *old, *p;
	memcpy(&old, arr, sizeof(old));
	if ((p = realloc(old, nc * size)) == NULL)
		return PF_ENOMEM;
	memcpy(arr, &p, sizeof(p));
	*cap = nc;
	return 0;
}

static int local_handler(pf_ctx *c, const void *in, void *out);

int
pf_mpi_register(pf_mpi *m, const pf_flow *f, const pf_mpi_codec *codec)
{
	if (m == NULL || f == NULL || f->name == NULL || f->name[0] == '\0' ||
	    f->handler == NULL || strlen(f->name) > 4096)
		return PF_EINVAL;
	entry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return PF_ENOMEM;
	e->flow = f;
	if (codec != NULL)
		e->codec = *codec;
	e->wrapper.name = f->name;
	e->wrapper.handler = local_handler;
	e->wrapper.input_size = sizeof(item *);
	e->wrapper.output_size = 0;
	int rc = 0;
	pthread_rwlock_wrlock(&m->reg_lock);
	for (size_t i = 0; i < m->nflows; i++)
		if (m->flows[i]->flow == f ||
		    strcmp(m->flows[i]->flow->name, f->name) == 0)
			rc = PF_EINVAL;
	if (rc == 0)
		rc = reserve_one(&m->flows, &m->flows_cap, m->nflows,
		    sizeof(*m->flows));
	if (rc == 0)
		m->flows[m->nflows++] = e;
	pthread_rwlock_unlock(&m->reg_lock);
	if (rc != 0)
		free(e);
	return rc;
}

/* -------------------------------------------------------------- tags */

int
pf_mpi_register_tag(pf_mpi *m, const pf_tag *t)
{
	if (m == NULL || t == NULL || t->label == NULL || t->label[0] == '\0' ||
	    t->size == 0 || t->size > (1u << 20) || strlen(t->label) > 4096)
		return PF_EINVAL;
	int rc = 0;
	pthread_rwlock_wrlock(&m->reg_lock);
	for (size_t i = 0; i < m->ntags; i++)
		if (m->tags[i] == t || strcmp(m->tags[i]->label, t->label) == 0)
			rc = PF_EINVAL;
	if (rc == 0)
		rc = reserve_one(&m->tags, &m->tags_cap, m->ntags,
		    sizeof(*m->tags));
	if (rc == 0)
		m->tags[m->ntags++] = t;
	pthread_rwlock_unlock(&m->reg_lock);
	return rc;
}

/* A travelling tag on the wire: this, the label, then the value. */
typedef struct tag_head {
	uint32_t label_len;
	uint32_t size;
} tag_head;

/*
 * The values of the registered tags that c sees (its own, its ancestors',
 * the scope's; a default is left out: the other side has it too), as one
 * blob in *out (malloc; NULL and 0 when none): 0 or -1 (no memory).
 */
static int
tags_encode(pf_mpi *m, pf_ctx *c, unsigned char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	int rc = 0;
	pthread_rwlock_rdlock(&m->reg_lock);
	for (size_t i = 0; i < m->ntags && rc == 0; i++) {
		const pf_tag *t = m->tags[i];
		size_t ll = strlen(t->label);
		size_t add = sizeof(tag_head) + ll + t->size;
		unsigned char *n = realloc(*out, *len + add);
		if (n == NULL) {
			rc = -1;
			break;
		}
		*out = n;
		unsigned char *v = n + *len + sizeof(tag_head) + ll;
		if (pf_ctx_find(c, t, v) &&
		    (t->default_value == NULL ||
			memcmp(v, t->default_value, t->size) != 0)) {
			tag_head h = { (uint32_t)ll, (uint32_t)t->size };
			memcpy(n + *len, &h, sizeof(h));
			memcpy(n + *len + sizeof(h), t->label, ll);
			*len += add;
		}
	}
	pthread_rwlock_unlock(&m->reg_lock);
	if (rc != 0 || *len == 0) {
		free(*out);
		*out = NULL;
		*len = 0;
	}
	return rc;
}

/* Sets on c the travelling tags of a blob that this rank registered too
 * (same label and size); others are skipped.  false: malformed. */
static bool
tags_decode(pf_mpi *m, pf_ctx *c, const unsigned char *p, size_t len)
{
	bool ok = true;
	pthread_rwlock_rdlock(&m->reg_lock);
	while (len > 0) {
		tag_head h;
		if (len < sizeof(h)) {
			ok = false;
			break;
		}
		memcpy(&h, p, sizeof(h));
		if ((size_t)h.label_len + h.size > len - sizeof(h)) {
			ok = false;
			break;
		}
		const char *label = (const char *)p + sizeof(h);
		for (size_t i = 0; i < m->ntags; i++) {
			const pf_tag *t = m->tags[i];
			if (t->size == h.size && strlen(t->label) == h.label_len &&
			    memcmp(t->label, label, h.label_len) == 0) {
				(void)pf_ctx_set(c, t, label + h.label_len);
				break;
			}
		}
		size_t used = sizeof(h) + h.label_len + h.size;
		p += used;
		len -= used;
	}
	pthread_rwlock_unlock(&m->reg_lock);
	return ok;
}

/* -------------------------------------------------------------- items */

static void
item_release(item *it)
{
	if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1)
		return;
	pf_exec_release(it->local);
	pf_exec_release(it->proxy);
	free(it->in);
	free(it->out);
	free(it);
}

static void
unlisten(item *it)
{
	if (it->listening) {
		pf_signal_remove_listener(pf_ctx_signal(pf_exec_ctx(it->proxy)),
		    &it->l);
		it->listening = false;
	}
}

/* Settles the proxy once (the caller owns the settle path's reference and
 * gives it up). */
static void
item_settle(item *it, pf_status st, int code, const void *out,
    const char *msg)
{
	unlisten(it);
	if (st == PF_CANCELLED && pf_ctx_aborted(pf_exec_ctx(it->proxy))) {
		/* Its own abort reason (a timeout or a cancel here), and that
		 * reason's text rather than the other side's. */
		code = 0;
		msg = NULL;
	}
	if (st == PF_COMPLETED)
		code = 0;
	else if (st == PF_FAILED && code == 0)
		code = PF_ECANCELED;
	(void)pf_exec_settle(it->proxy, st, code, out, msg);
	atomic_fetch_sub(&it->m->live, 1);
	item_release(it);
}

/* L started or ended: off the ANY list for good.  Drops the list's
 * reference if it was listed. */
static void
any_gone(pf_mpi *m, item *it)
{
	pthread_mutex_lock(&m->lock);
	it->gone = true;
	bool was = it->listed;
	if (was) {
		if (it->aprev != NULL)
			it->aprev->anext = it->anext;
		else
			m->any_head = it->anext;
		if (it->anext != NULL)
			it->anext->aprev = it->aprev;
		else
			m->any_tail = it->aprev;
		it->listed = false;
	}
	pthread_mutex_unlock(&m->lock);
	if (was)
		item_release(it);
}

/* The proxy's signal: queue an abort for the comm thread (once). */
static void
on_proxy_abort(pf_signal *s, void *data)
{
	item *it = data;
	atomic_store(&it->abort_reason, pf_signal_reason(s));
	if (atomic_exchange(&it->abort_queued, true))
		return;
	atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
	push_cmd(it->m, &it->abort_cmd, C_ABORT, it);
}

/* An ANY_RANK execution run here: the wrapper L around the flow. */
static int
local_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	item *it = *(item *const *)in;
	pf_mpi *m = it->m;
	const pf_flow *f = it->fe->flow;
	atomic_store(&it->started, true);
	any_gone(m, it);
	atomic_fetch_sub(&m->any_pending, 1);
	atomic_fetch_add(&m->busy, 1);
	int rc;
	void *input = NULL;
	if (f->input_size > 0 && (input = malloc(f->input_size)) == NULL) {
		rc = pf_ctx_fail(c, PF_ENOMEM, "no memory for the input");
	} else if (decode(it->fe->codec.decode_input, it->fe->codec.data,
		       it->in != NULL ?
			   (unsigned char *)it->in + it->tags_len : NULL,
		       it->in_len - it->tags_len, input, f->input_size) != 0) {
		rc = pf_ctx_fail(c, PF_MPI_ECODEC,
		    "decoding the input of %s failed on rank %d", f->name,
		    m->rank);
	} else {
		rc = f->handler(c, input, it->out);
		if (it->fe->codec.free_input != NULL)
			it->fe->codec.free_input(input, it->fe->codec.data);
	}
	free(input);
	atomic_fetch_sub(&m->busy, 1);
	atomic_fetch_add(&m->st.local_any, 1);
	return rc;
}

/* L's status: its end settles the proxy, unless the comm thread withdrew
 * it to give it to another rank (the withdraw runs this callback on that
 * thread, inside pf_exec_withdraw). */
static void
local_status(pf_exec *l, pf_status st, void *data)
{
	item *it = data;
	if (st < PF_COMPLETED || tl_withdrawing == it)
		return;
	pf_mpi *m = it->m;
	if (!atomic_load(&it->started)) {
		any_gone(m, it);
		atomic_fetch_sub(&m->any_pending, 1);
	}
	const char *msg = NULL;
	int code = pf_ctx_error(pf_exec_ctx(l), &msg);
	item_settle(it, st, code, it->out, code != 0 ? msg : NULL);
}

/* ------------------------------------------------------------- sends */

static void
progress_sends(pf_mpi *m)
{
	int i = 0;
	while (i < m->nsend) {
		int flag = 0;
		MPI_Test(&m->sreq[i], &flag, MPI_STATUS_IGNORE);
		if (!flag) {
			i++;
			continue;
		}
		free(m->sbuf[i]);
		m->nsend--;
		m->sreq[i] = m->sreq[m->nsend];
		m->sbuf[i] = m->sbuf[m->nsend];
	}
}

/* Sends one message; false when out of memory (nothing sent). */
static bool
send_msg(pf_mpi *m, int dest, wire *w, const void *p1, size_t n1,
    const void *p2, size_t n2)
{
	if (m->nsend == m->send_cap) {
		int cap = m->send_cap ? m->send_cap * 2 : 64;
		MPI_Request *r = realloc(m->sreq, (size_t)cap * sizeof(*r));
		if (r == NULL)
			return false;
		m->sreq = r;
		void **b = realloc(m->sbuf, (size_t)cap * sizeof(*b));
		if (b == NULL)
			return false;
		m->sbuf = b;
		m->send_cap = cap;
	}
	size_t len = sizeof(*w) + n1 + n2;
	if (len > INT_MAX)
		return false;
	unsigned char *buf = malloc(len);
	if (buf == NULL)
		return false;
	w->magic = WIRE_MAGIC;
	w->n1 = (uint32_t)n1;
	w->n2 = (uint32_t)n2;
	memcpy(buf, w, sizeof(*w));
	if (n1 > 0)
		memcpy(buf + sizeof(*w), p1, n1);
	if (n2 > 0)
		memcpy(buf + sizeof(*w) + n1, p2, n2);
	if (MPI_Isend(buf, (int)len, MPI_BYTE, dest, TAG, m->comm,
		&m->sreq[m->nsend]) != MPI_SUCCESS) {
		free(buf);
		return false;
	}
	m->sbuf[m->nsend++] = buf;
	if (w->kind <= K_NOTICE)
		m->msgs_sent++;
	return true;
}

static void
send_small(pf_mpi *m, int dest, int kind, uint64_t req, int64_t a)
{
	wire w = { .kind = (uint16_t)kind, .req = req, .a = a };
	(void)send_msg(m, dest, &w, NULL, 0, NULL, 0);
}

/* ------------------------------------------------------- proxy side */

static item **
table_slot(pf_mpi *m, uint64_t req)
{
	item **p = &m->table[req % NBUCKETS];
	while (*p != NULL && (*p)->req != req)
		p = &(*p)->hnext;
	return p;
}

/* Sends it's request to it->rank (comm thread). */
static void
send_request(pf_mpi *m, item *it)
{
	pf_exec *p = it->proxy;
	if (pf_ctx_aborted(pf_exec_ctx(p))) {
		item_settle(it, PF_CANCELLED, 0, NULL, NULL);
		return;
	}
	/* Every rank is done (a call that raced the end of detach): nobody
	 * would answer. */
	if (m->fin) {
		item_settle(it, PF_CANCELLED, PF_ESHUTDOWN, NULL, NULL);
		return;
	}
	int64_t budget = 0;
	if (it->deadline_ns != 0) {
		budget = it->deadline_ns - now_ns(CLOCK_REALTIME);
		if (budget <= 0)
			budget = -1;
	}
	it->req = ++m->next_req;
	wire w = { .kind = K_REQ, .pad = it->given, .req = it->req,
		.a = budget, .b = (int32_t)it->tags_len };
	snprintf(w.id, sizeof(w.id), "%s", pf_exec_id(p));
	const char *name = it->fe->flow->name;
	if (!send_msg(m, it->rank, &w, name, strlen(name), it->in,
		it->in_len)) {
		item_settle(it, PF_FAILED, PF_ENOMEM, NULL,
		    "no memory to send the request");
		return;
	}
	it->hnext = NULL;
	*table_slot(m, it->req) = it;
	m->in_flight++;
	atomic_fetch_add(&m->st.sent, 1);
	/* Aborted since the check above: the listener's command comes later
	 * and sends the abort. */
}

static void
send_abort(pf_mpi *m, item *it, int reason)
{
	if (it->rank < 0 || it->abort_sent || *table_slot(m, it->req) != it)
		return;
	it->abort_sent = true;
	send_small(m, it->rank, K_ABORT, it->req, reason);
	atomic_fetch_add(&m->st.aborts, 1);
}

static void
on_reply(pf_mpi *m, int src, const wire *w, const char *msg, size_t msg_len,
    const void *out, size_t out_len)
{
	item **slot = table_slot(m, w->req);
	item *it = *slot;
	if (it == NULL || it->rank != src)
		return; /* not ours (garbage): ignored */
	*slot = it->hnext;
	m->in_flight--;
	char *text = NULL;
	if (msg_len > 0 && (text = malloc(msg_len + 1)) != NULL) {
		memcpy(text, msg, msg_len);
		text[msg_len] = '\0';
	}
	pf_status st = (pf_status)w->a;
	int code = w->b;
	const pf_flow *f = it->fe->flow;
	void *value = NULL;
	if (st == PF_COMPLETED && f->output_size > 0 &&
	    (value = malloc(f->output_size)) == NULL) {
		item_settle(it, PF_FAILED, PF_ENOMEM, NULL,
		    "no memory for the output");
	} else if (st == PF_COMPLETED &&
	    decode(it->fe->codec.decode_output, it->fe->codec.data, out,
		out_len, value, f->output_size) != 0) {
		char why[160];
		snprintf(why, sizeof(why),
		    "decoding the output of %s from rank %d failed", f->name,
		    src);
		item_settle(it, PF_FAILED, PF_MPI_ECODEC, NULL, why);
	} else if (st != PF_COMPLETED && st != PF_FAILED &&
	    st != PF_CANCELLED) {
		item_settle(it, PF_FAILED, PF_MPI_ECODEC, NULL,
		    "malformed reply");
	} else {
		item_settle(it, st, code, value, text);
	}
	free(value);
	free(text);
}

/* ------------------------------------------------------- host side */

static host **
host_slot(pf_mpi *m, int src, uint64_t req)
{
	host **p = &m->hosts[(req * 31 + (uint64_t)src) % NBUCKETS];
	while (*p != NULL && ((*p)->req != req || (*p)->src != src))
		p = &(*p)->hnext;
	return p;
}

static void
reply(pf_mpi *m, int dest, uint64_t req, pf_status st, int code,
    const char *msg, const void *out, size_t out_len)
{
	wire w = { .kind = K_REP, .req = req, .a = st, .b = code };
	size_t n = msg != NULL ? strlen(msg) : 0;
	if (!send_msg(m, dest, &w, msg, n, out, out_len)) {
		/* No memory for the output: the short answer, with no data. */
		w.b = PF_ENOMEM;
		w.a = PF_FAILED;
		(void)send_msg(m, dest, &w, NULL, 0, NULL, 0);
	}
}

static void
host_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	host *h = data;
	if (st == PF_RUNNING) {
		atomic_store(&h->ran, true);
		atomic_fetch_add(&h->m->hosted_running, 1);
	}
	if (st >= PF_COMPLETED) {
		if (atomic_load(&h->ran))
			atomic_fetch_sub(&h->m->hosted_running, 1);
		push_cmd(h->m, &h->done_cmd, C_HOST_DONE, h);
	}
}

static void
host_free(host *h)
{
	if (h->decoded && h->fe->codec.free_input != NULL)
		h->fe->codec.free_input(h->input, h->fe->codec.data);
	free(h->input);
	pf_exec_release(h->e);
	pf_ctx_release(h->shadow);
	free(h);
}

static void
on_request(pf_mpi *m, int src, const wire *w, const char *name,
    size_t name_len, const void *in, size_t in_len)
{
	/* Distributable work arrived (taken or pushed): the ranks have work
	 * again, so this one asks anew once idle.  A request for this rank
	 * by name says nothing about that: a rank serving a stream of them
	 * must not send a steal request after each (it cost the round trip
	 * 5 us). */
	if (w->pad & 1) {
		atomic_fetch_add(&m->st.taken, 1);
		m->waiting_lifeline = false;
		m->ntried = 0;
		memset(m->tried, 0, (size_t)m->size);
	}
	char why[200];
	const entry *fe = find_flow(m, NULL, name, name_len);
	if (fe == NULL) {
		snprintf(why, sizeof(why),
		    "flow '%.*s' is not registered on rank %d",
		    (int)(name_len > 100 ? 100 : name_len), name, m->rank);
		reply(m, src, w->req, PF_FAILED, PF_MPI_ENOFLOW, why, NULL, 0);
		return;
	}
	if (w->a < 0) {
		reply(m, src, w->req, PF_CANCELLED, PF_ETIMEDOUT, NULL, NULL,
		    0);
		return;
	}
	const pf_flow *f = fe->flow;
	host *h = calloc(1, sizeof(*h));
	if (h == NULL || (f->input_size > 0 &&
			     (h->input = malloc(f->input_size)) == NULL)) {
		if (h != NULL)
			free(h);
		reply(m, src, w->req, PF_FAILED, PF_ENOMEM, NULL, NULL, 0);
		return;
	}
	h->m = m;
	h->fe = fe;
	h->src = src;
	h->req = w->req;
	size_t tags_len = w->b > 0 ? (size_t)w->b : 0;
	if (tags_len > in_len ||
	    decode(fe->codec.decode_input, fe->codec.data,
		(const unsigned char *)in + tags_len, in_len - tags_len,
		h->input, f->input_size) != 0) {
		snprintf(why, sizeof(why),
		    "decoding the input of %s failed on rank %d", f->name,
		    m->rank);
		reply(m, src, w->req, PF_FAILED, PF_MPI_ECODEC, why, NULL, 0);
		host_free(h);
		return;
	}
	h->decoded = true;
	char id[40];
	memcpy(id, w->id, sizeof(id));
	id[sizeof(id) - 1] = '\0';
	char shadow_name[32];
	snprintf(shadow_name, sizeof(shadow_name), "mpi:rank%d", src);
	pf_ctx_options co = { .name = shadow_name };
	int rc = pf_scope_create_execution_with_id(m->scope, &co, id,
	    &h->shadow);
	/* The travelling tags, on the context the execution inherits from. */
	if (rc == 0 && !tags_decode(m, h->shadow, in, tags_len)) {
		snprintf(why, sizeof(why), "malformed tags for %s on rank %d",
		    f->name, m->rank);
		reply(m, src, w->req, PF_FAILED, PF_MPI_ECODEC, why, NULL, 0);
		host_free(h);
		return;
	}
	if (rc == 0) {
		pf_exec_options eo = { .on_status = host_status,
			.on_status_data = h };
		if (w->a > 0)
			eo.timeout_ms = (uint64_t)((w->a + 999999) / 1000000);
		*host_slot(m, src, w->req) = h;
		m->nhosted++;
		rc = pf_ctx_exec(h->shadow, f, h->input, &eo, &h->e);
		if (rc != 0) {
			*host_slot(m, src, w->req) = NULL;
			m->nhosted--;
		}
	}
	if (rc != 0) {
		reply(m, src, w->req, rc == PF_ESHUTDOWN ? PF_CANCELLED :
		    PF_FAILED, rc, NULL, NULL, 0);
		host_free(h);
		return;
	}
	atomic_fetch_add(&m->st.hosted, 1);
}

static void
host_done(pf_mpi *m, host *h)
{
	const pf_flow *f = h->fe->flow;
	void *out = f->output_size > 0 ? malloc(f->output_size) : NULL;
	/* The status callback runs before the result is final: wait for it
	 * (a few instructions). */
	int rc = pf_exec_wait(h->e, out);
	pf_status st = pf_exec_status(h->e);
	const char *msg = NULL;
	int code = pf_ctx_error(pf_exec_ctx(h->e), &msg);
	if (code == 0)
		code = rc;
	void *bytes = NULL;
	size_t len = 0;
	char why[200];
	if (st == PF_COMPLETED && f->output_size > 0 && out == NULL) {
		st = PF_FAILED;
		code = PF_ENOMEM;
		msg = NULL;
	} else if (st == PF_COMPLETED &&
	    (encode(h->fe->codec.encode_output, h->fe->codec.data, out,
		 f->output_size, &bytes, &len) != 0 ||
		len > MAX_PAYLOAD)) {
		free(bytes);
		bytes = NULL;
		len = 0;
		st = PF_FAILED;
		code = PF_MPI_ECODEC;
		snprintf(why, sizeof(why),
		    "encoding the output of %s failed on rank %d", f->name,
		    m->rank);
		msg = why;
	}
	if (st == PF_CANCELLED && h->abort_reason != 0)
		code = h->abort_reason;
	if (!m->fin) /* after FIN nobody reads answers */
		reply(m, h->src, h->req, st, st == PF_COMPLETED ? 0 : code,
		    st == PF_COMPLETED ? NULL : msg, bytes, len);
	free(bytes);
	free(out);
	*host_slot(m, h->src, h->req) = h->hnext;
	m->nhosted--;
	host_free(h);
}

static void
on_abort_msg(pf_mpi *m, int src, const wire *w)
{
	host *h = *host_slot(m, src, w->req);
	if (h == NULL)
		return; /* answered already */
	if (h->abort_reason == 0)
		h->abort_reason = (int)w->a;
	/* A timeout there is one here too: the handler's signal says so. */
	(void)pf_ctx_abort_as(h->shadow, w->a == PF_ETIMEDOUT ?
	    PF_ETIMEDOUT : PF_ECANCELED);
}

/* ------------------------------------------------------- balancing */

/* Pops the oldest ANY item still pending here, withdrawn from this rank
 * (its L cancelled, never run): NULL when none. */
static item *
take_pending(pf_mpi *m)
{
	for (;;) {
		pthread_mutex_lock(&m->lock);
		item *it = m->any_head;
		if (it != NULL) {
			m->any_head = it->anext;
			if (m->any_head != NULL)
				m->any_head->aprev = NULL;
			else
				m->any_tail = NULL;
			it->listed = false;
		}
		pthread_mutex_unlock(&m->lock);
		if (it == NULL)
			return NULL;
		bool ok = false;
		if (!atomic_load(&it->started) &&
		    !pf_ctx_aborted(pf_exec_ctx(it->proxy))) {
			tl_withdrawing = it;
			ok = pf_exec_withdraw(it->local);
			tl_withdrawing = NULL;
		}
		if (ok) {
			atomic_fetch_sub(&m->any_pending, 1);
			pf_exec_release(it->local);
			it->local = NULL;
			return it; /* with the list's reference */
		}
		item_release(it); /* the list's reference */
	}
}

/* Executions waiting to start here: hosts not started, ANY items. */
static long
queued(pf_mpi *m)
{
	long q = m->nhosted - atomic_load(&m->hosted_running);
	return (q > 0 ? q : 0) + atomic_load(&m->any_pending);
}

/*
 * Gives up to want pending ANY items to rank thief; returns how many.  It
 * keeps what its own idle workers are about to start (a thief must not
 * take work that would run here at once) and gives at most half of the
 * rest.
 */
static int
give(pf_mpi *m, int thief, int want)
{
	int pending = atomic_load(&m->any_pending);
	int running = atomic_load(&m->busy) +
	    atomic_load(&m->hosted_running);
	int keep = m->threads > running ? m->threads - running : 0;
	int n = pending > keep ? (pending - keep + 1) / 2 : 0;
	if (n > want)
		n = want;
	int given = 0;
	while (given < n) {
		item *it = take_pending(m);
		if (it == NULL)
			break;
		it->rank = thief;
		it->given = true;
		/* The settle path's reference (L's end did not take it: it
		 * was withdrawn) now waits for the thief's reply. */
		item_release(it); /* the list's */
		send_request(m, it);
		given++;
	}
	atomic_fetch_add(&m->st.given, (unsigned long long)given);
	return given;
}

static void
on_steal(pf_mpi *m, int src, const wire *w)
{
	int want = (int)(w->a > 0 && w->a < 1 << 20 ? w->a : 1);
	int given = give(m, src, want);
	send_small(m, src, K_GAVE, 0, given);
	if (given == 0 && m->lifeline_want[src] == 0) {
		m->lifeline_want[src] = want;
		atomic_fetch_add(&m->nlifelines, 1);
	}
}

static void
on_gave(pf_mpi *m, int src, const wire *w)
{
	if (!m->steal_out || src != m->victim)
		return;
	m->steal_out = false;
	if (w->a > 0) {
		m->ntried = 0;
		memset(m->tried, 0, (size_t)m->size);
		return;
	}
	if (!m->tried[src]) {
		m->tried[src] = 1;
		m->ntried++;
	}
	if (m->ntried >= m->size - 1) {
		m->waiting_lifeline = true;
		m->lifeline_since = now_ns(CLOCK_MONOTONIC);
	}
}

/* Steals when short of work, pushes to waiting thieves when it has some.
 * Returns whether it sent anything. */
static bool
balance(pf_mpi *m)
{
	bool did = false;
	if (m->size < 2)
		return false;
	if (atomic_load(&m->nlifelines) > 0 &&
	    atomic_load(&m->any_pending) > 0) {
		for (int r = 0; r < m->size; r++) {
			int want = m->lifeline_want[r];
			if (want == 0)
				continue;
			if (give(m, r, want) == 0)
				break;
			m->lifeline_want[r] = 0;
			atomic_fetch_sub(&m->nlifelines, 1);
			did = true;
		}
	}
	if (m->no_steal || m->steal_out)
		return did;
	if (m->waiting_lifeline) {
		if (m->notices >= m->size ||
		    now_ns(CLOCK_MONOTONIC) - m->lifeline_since <
			LIFELINE_RETRY_NS)
			return did;
		m->waiting_lifeline = false;
		m->ntried = 0;
		memset(m->tried, 0, (size_t)m->size);
	}
	/* Nothing waits to start here: ask for as many as there are
	 * threads (the handlers running may be waits on remote work, which
	 * this rank cannot tell from computing). */
	if (queued(m) > 0)
		return did;
	/* A random victim not asked since work last came. */
	m->rng = m->rng * 1103515245u + 12345u;
	unsigned start = m->rng >> 16;
	for (int i = 0; i < m->size; i++) {
		int r = (int)((start + (unsigned)i) % (unsigned)m->size);
		if (r == m->rank || m->tried[r])
			continue;
		m->victim = r;
		m->steal_out = true;
		send_small(m, r, K_STEAL, 0, m->threads);
		atomic_fetch_add(&m->st.steal_asks, 1);
		return true;
	}
	return did;
}

/* ------------------------------------------------------ comm thread */

static void on_probe(pf_mpi *m, int src, const wire *w);
static void fin_local(pf_mpi *m);
static void on_report(pf_mpi *m, const wire *w, const void *p, size_t n);

static bool
poll_messages(pf_mpi *m, bool again)
{
	bool did = false;
	for (int i = 0; i < 64; i++) {
		int flag = 0;
		MPI_Message msg;
		MPI_Status status;
		if (MPI_Improbe(MPI_ANY_SOURCE, TAG, m->comm, &flag, &msg,
			&status) != MPI_SUCCESS)
			break;
		if (!flag) {
			/* Open MPI's probe looks for a match, then progresses
			 * the transport (which may bring the message in) and
			 * returns without looking again.  After a sleep, look
			 * once more, or a message that arrived during it waits
			 * for the next (the first request after a quiet spell
			 * took two idle sleeps, up to twice idle_sleep_max_us).
			 * Not on every poll: probing twice there made the
			 * round trip slower (22 us against 19). */
			if (!again)
				break;
			again = false;
			i--;
			continue;
		}
		int count = 0;
		MPI_Get_count(&status, MPI_BYTE, &count);
		unsigned char *buf = malloc(count > 0 ? (size_t)count : 1);
		if (buf == NULL) {
			/* Receive it into nothing: the message is dropped,
			 * which cannot be answered; keep going. */
			unsigned char none;
			MPI_Mrecv(&none, 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
			continue;
		}
		MPI_Mrecv(buf, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
		did = true;
		atomic_fetch_add(&m->st.messages, 1);
		int src = status.MPI_SOURCE;
		wire w;
		if ((size_t)count >= sizeof(w)) {
			memcpy(&w, buf, sizeof(w));
			if (w.kind <= K_NOTICE)
				m->msgs_recv++;
			const unsigned char *p1 = buf + sizeof(w);
			if (w.magic == WIRE_MAGIC &&
			    (size_t)w.n1 + w.n2 == (size_t)count - sizeof(w)) {
				const unsigned char *p2 = p1 + w.n1;
				switch (w.kind) {
				case K_REQ:
					on_request(m, src, &w,
					    (const char *)p1, w.n1, p2, w.n2);
					break;
				case K_REP:
					on_reply(m, src, &w, (const char *)p1,
					    w.n1, p2, w.n2);
					break;
				case K_ABORT:
					on_abort_msg(m, src, &w);
					break;
				case K_STEAL:
					on_steal(m, src, &w);
					break;
				case K_GAVE:
					on_gave(m, src, &w);
					break;
				case K_NOTICE:
					m->notices++;
					break;
				case K_PROBE:
					on_probe(m, src, &w);
					break;
				case K_REPORT:
					on_report(m, &w, p1, w.n1);
					break;
				case K_FIN:
					m->fin = true;
					fin_local(m);
					break;
				}
			}
		}
		free(buf);
	}
	return did;
}

static bool
run_commands(pf_mpi *m)
{
	cmd *c = take_cmds(m);
	bool did = c != NULL;
	while (c != NULL) {
		cmd *next = c->next;
		switch (c->kind) {
		case C_SEND:
			send_request(m, c->obj);
			break;
		case C_ABORT: {
			item *it = c->obj;
			send_abort(m, it, atomic_load(&it->abort_reason));
			item_release(it);
			break;
		}
		case C_HOST_DONE:
			host_done(m, c->obj);
			break;
		case C_WAKE:
			break;
		case C_BARRIER: {
			barrier *b = c->obj;
			if (MPI_Ibarrier(m->comm, &b->req) == MPI_SUCCESS) {
				m->barrier = b;
			} else {
				pthread_mutex_lock(&m->lock);
				b->done = true;
				pthread_cond_broadcast(&m->barrier_done);
				pthread_mutex_unlock(&m->lock);
			}
			break;
		}
		}
		c = next;
	}
	return did;
}

/*
 * FIN: every rank was found quiet twice.  What is here now was started
 * since this rank last reported (by a thread of the program, not by the
 * work): no rank will answer a request any more, so those end cancelled
 * with PF_ESHUTDOWN, and what runs here for another rank is aborted and
 * ends unanswered.  The thread leaves once nothing runs here for
 * another rank (their callbacks reach m).
 */
static void
fin_local(pf_mpi *m)
{
	for (unsigned b = 0; b < NBUCKETS; b++) {
		item *it;
		while ((it = m->table[b]) != NULL) {
			m->table[b] = it->hnext;
			m->in_flight--;
			item_settle(it, PF_CANCELLED, PF_ESHUTDOWN, NULL,
			    NULL);
		}
	}
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (host *h = m->hosts[b]; h != NULL; h = h->hnext)
			(void)pf_ctx_abort_as(h->shadow, PF_ECANCELED);
	m->steal_out = false;
}

/* Nothing of the attachment left here: no proxy unsettled, nothing run
 * here for another rank, no steal unanswered. */
static bool
quiescent(pf_mpi *m)
{
	return atomic_load(&m->live) == 0 && m->nhosted == 0 &&
	    !m->steal_out;
}

static void
on_probe(pf_mpi *m, int src, const wire *w)
{
	uint64_t c[2] = { m->msgs_sent, m->msgs_recv };
	wire r = { .kind = K_REPORT, .req = w->req, .a = quiescent(m) };
	(void)send_msg(m, src, &r, c, sizeof(c), NULL, 0);
}

static void
on_report(pf_mpi *m, const wire *w, const void *p, size_t n)
{
	uint64_t c[2];
	if (m->rank != 0 || !m->wave_out || w->req != m->wave ||
	    n != sizeof(c))
		return;
	memcpy(c, p, sizeof(c));
	m->reports++;
	m->wave_quiet = m->wave_quiet && w->a != 0;
	m->wave_sent += c[0];
	m->wave_recv += c[1];
}

/*
 * Detach is a quiescence point.  A detaching rank tells every other
 * (NOTICE) and goes on as before: it runs what others send it, steals and
 * gives work.  Once every rank is detaching, rank 0 detects termination
 * with waves (Mattern's four counters): it asks every rank (PROBE) whether
 * it is quiescent and how many messages of the work it sent and received
 * (REPORT); two waves in a row where all were quiescent, all sent
 * messages were received, and the totals did not move mean that nothing
 * is left anywhere, nor in transit.  Rank 0 then sends FIN and every rank
 * returns from detach.  Thieves stop their timed retries once all are
 * detaching, so that idle ranks do not keep the counters moving.
 */
static void
drain_step(pf_mpi *m)
{
	if (!m->draining) {
		m->draining = true;
		m->notices++;
		for (int r = 0; r < m->size; r++)
			if (r != m->rank)
				send_small(m, r, K_NOTICE, 0, 0);
	}
	if (m->rank == 0 && !m->fin) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		if (!m->wave_out && m->notices >= m->size && quiescent(m) &&
		    now - m->wave_at >= WAVE_GAP_NS) {
			m->wave++;
			m->wave_out = true;
			m->wave_at = now;
			m->reports = 0;
			m->wave_quiet = true;
			m->wave_sent = m->own_sent = m->msgs_sent;
			m->wave_recv = m->own_recv = m->msgs_recv;
			for (int r = 1; r < m->size; r++)
				send_small(m, r, K_PROBE, m->wave, 0);
		}
		if (m->wave_out && m->reports == m->size - 1) {
			m->wave_out = false;
			/* Rank 0 itself stayed quiet through the wave (the
			 * program's own threads may start work at any time:
			 * no message from them may slip between). */
			bool quiet = m->wave_quiet &&
			    m->wave_sent == m->wave_recv && quiescent(m) &&
			    m->msgs_sent == m->own_sent &&
			    m->msgs_recv == m->own_recv;
			if (quiet && m->last_quiet &&
			    m->last_sent == m->wave_sent &&
			    m->last_recv == m->wave_recv) {
				for (int r = 1; r < m->size; r++)
					send_small(m, r, K_FIN, 0, 0);
				m->fin = true;
				fin_local(m);
			}
			m->last_quiet = quiet;
			m->last_sent = m->wave_sent;
			m->last_recv = m->wave_recv;
		}
	}
	if (m->fin) {
		atomic_store(&m->closed, true);
		if (m->nsend == 0 && m->nhosted == 0)
			m->done = true;
	}
}

static bool
progress_barrier(pf_mpi *m)
{
	int flag = 0;
	if (m->barrier == NULL ||
	    (MPI_Test(&m->barrier->req, &flag, MPI_STATUS_IGNORE) ==
		    MPI_SUCCESS &&
		!flag))
		return false;
	pthread_mutex_lock(&m->lock);
	m->barrier->done = true;
	m->barrier = NULL;
	pthread_cond_broadcast(&m->barrier_done);
	pthread_mutex_unlock(&m->lock);
	return true;
}

/*
 * Whether the thread gives the CPU away after a poll that found nothing
 * (the n-th in a row, from 0), while it polls.  mpirun binds a rank to one
 * core, so the callers, the workers and this thread share it:
 * - work of ours started or queued here (an ANY handler, a hosted
 *   execution not yet done): every poll, so that it runs;
 * - answers due and nothing of ours to run: never; the waiting caller
 *   needs the CPU only once the answer is in (and the poll that brings it
 *   is followed by a yield, below);
 * - nothing due: the first poll after activity (a caller whose proxy just
 *   settled runs at once), then every 8th.  Yielding after every poll
 *   gave every other turn to the pool's idle spinner, which put 8-12 us
 *   on the arrival of the next request (a round trip of 22 us, 19 us
 *   with this), and a sched_yield costs 1.6 us on a VM even when nothing
 *   else wants the CPU.
 */
static bool
poll_yields(pf_mpi *m, unsigned n)
{
	if (m->nhosted > 0 || atomic_load(&m->busy) > 0)
		return true;
	if (m->in_flight > 0)
		return false;
	return n % 8 == 0;
}

static void *
comm_main(void *arg)
{
	pf_mpi *m = arg;
	int64_t last = now_ns(CLOCK_MONOTONIC);
	unsigned sleep_us = FIRST_SLEEP_US;
	unsigned idle_polls = 0; /* polls that found nothing, in a row */
	bool slept = false;      /* the last round ended asleep */
	while (!m->done) {
		bool did = run_commands(m);
		did |= poll_messages(m, slept);
		slept = false;
		progress_sends(m);
		did |= progress_barrier(m);
		did |= balance(m);
		if (atomic_load(&m->detaching))
			drain_step(m);
		if (m->done)
			break;
		int64_t now = now_ns(CLOCK_MONOTONIC);
		if (did) {
			idle_polls = 0;
			last = now;
			sleep_us = FIRST_SLEEP_US;
			continue;
		}
		if (now - last < SPIN_NS || m->nsend > 0 ||
		    m->barrier != NULL) {
			if (poll_yields(m, idle_polls++))
				sched_yield();
			continue;
		}
		pthread_mutex_lock(&m->lock);
		if (m->cmd_head == NULL) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			long ns = ts.tv_nsec + (long)sleep_us * 1000;
			ts.tv_sec += ns / 1000000000;
			ts.tv_nsec = ns % 1000000000;
			m->sleeping = true;
			pthread_cond_timedwait(&m->wake, &m->lock, &ts);
			m->sleeping = false;
			slept = true;
		}
		pthread_mutex_unlock(&m->lock);
		sleep_us = sleep_us * 2 > m->idle_max_us ? m->idle_max_us :
		    sleep_us * 2;
		/* Answers are due: look for them often (a request's round
		 * trip after idle then costs the other side's wake-up, not
		 * both sides'). */
		if (m->in_flight > 0 && sleep_us > IN_FLIGHT_SLEEP_US)
			sleep_us = IN_FLIGHT_SLEEP_US;
	}
	return NULL;
}

/* -------------------------------------------------------------- API */

/*
 * pf_mpi_exec calls under way on this thread.  The status callbacks of
 * the executions they create run inside them (on this thread), and a
 * detach there would wait for the very call it is in (users never
 * drops): detach and barrier refuse, as waits in callbacks do.  So they
 * do on the communication thread, where a proxy's last callbacks run
 * when its answer settles it: they would wait for that thread.
 */
static _Thread_local unsigned calls_here;

#define CLOCK_TAG 0x7067
#define CLOCK_ROUNDS 8

/*
 * How far each rank's CLOCK_REALTIME is ahead of rank 0's (collective, at
 * attach, before the comm thread exists): rank 0 sends its time, the
 * other answers with its own, and of CLOCK_ROUNDS exchanges the one with
 * the shortest round trip gives offset = theirs - (sent + received) / 2
 * (StarPU-MPI aligns its traces' clocks the same way).  Rank 0 sends each
 * rank its offset.
 */
static void
measure_clock_offset(pf_mpi *m)
{
	int64_t t[2];
	if (m->rank == 0) {
		for (int r = 1; r < m->size; r++) {
			int64_t best_rtt = INT64_MAX, best = 0;
			for (int i = 0; i < CLOCK_ROUNDS; i++) {
				int64_t t0 = now_ns(CLOCK_REALTIME);
				MPI_Send(&t0, 1, MPI_INT64_T, r, CLOCK_TAG,
				    m->comm);
				MPI_Recv(t, 1, MPI_INT64_T, r, CLOCK_TAG,
				    m->comm, MPI_STATUS_IGNORE);
				int64_t t2 = now_ns(CLOCK_REALTIME);
				if (t2 - t0 < best_rtt) {
					best_rtt = t2 - t0;
					best = t[0] - (t0 + (t2 - t0) / 2);
				}
			}
			MPI_Send(&best, 1, MPI_INT64_T, r, CLOCK_TAG, m->comm);
		}
		m->clock_offset_ns = 0;
		return;
	}
	for (int i = 0; i < CLOCK_ROUNDS; i++) {
		MPI_Recv(t, 1, MPI_INT64_T, 0, CLOCK_TAG, m->comm,
		    MPI_STATUS_IGNORE);
		t[1] = now_ns(CLOCK_REALTIME);
		MPI_Send(&t[1], 1, MPI_INT64_T, 0, CLOCK_TAG, m->comm);
	}
	MPI_Recv(&m->clock_offset_ns, 1, MPI_INT64_T, 0, CLOCK_TAG, m->comm,
	    MPI_STATUS_IGNORE);
}

int
pf_mpi_attach(pf_scope *s, MPI_Comm comm, const pf_mpi_options *opts,
    pf_mpi **out)
{
	if (s == NULL || out == NULL || comm == MPI_COMM_NULL)
		return PF_EINVAL;
	int inited = 0, finalized = 0, level = 0;
	MPI_Finalized(&finalized);
	if (finalized)
		return PF_MPI_EMPI;
	MPI_Initialized(&inited);
	bool own = false;
	if (!inited) {
		if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED,
			&level) != MPI_SUCCESS)
			return PF_MPI_EMPI;
		own = true;
	} else {
		MPI_Query_thread(&level);
	}
	if (level < MPI_THREAD_SERIALIZED) {
		if (own)
			MPI_Finalize();
		return PF_MPI_ETHREAD;
	}
	pf_mpi *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		if (own)
			MPI_Finalize();
		return PF_ENOMEM;
	}
	m->scope = s;
	m->own_mpi = own;
	m->threads = (int)pf_scope_threads(s);
	m->idle_max_us = opts != NULL && opts->idle_sleep_max_us != 0 ?
	    opts->idle_sleep_max_us : 1000;
	if (m->idle_max_us < FIRST_SLEEP_US)
		m->idle_max_us = FIRST_SLEEP_US;
	if (m->idle_max_us > 1000000)
		m->idle_max_us = 1000000;
	m->no_steal = opts != NULL && opts->no_steal;
	if (MPI_Comm_dup(comm, &m->comm) != MPI_SUCCESS) {
		free(m);
		if (own)
			MPI_Finalize();
		return PF_MPI_EMPI;
	}
	MPI_Comm_rank(m->comm, &m->rank);
	MPI_Comm_size(m->comm, &m->size);
	m->rng = 2654435761u * (unsigned)(m->rank + 1);
	m->tried = calloc((size_t)m->size, 1);
	m->lifeline_want = calloc((size_t)m->size, sizeof(int));
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&m->barrier_done, NULL);
	pthread_mutex_init(&m->barrier_lock, NULL);
	pthread_rwlock_init(&m->reg_lock, NULL);
	pf_ctx_options ao = { .name = "mpi attachment" };
	int rc = pf_scope_create_execution(s, &ao, &m->anchor);
	if (rc == 0 && (m->tried == NULL || m->lifeline_want == NULL))
		rc = PF_ENOMEM;
	/* Every rank's structure exists before any message can arrive; the
	 * barrier is collective like the dup above. */
	int ok = rc == 0, all = 0;
	MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, m->comm);
	if (rc == 0 && !all)
		rc = PF_ENOMEM;
	if (rc == 0) {
		measure_clock_offset(m);
		char name[32];
		snprintf(name, sizeof(name), "rank %d", m->rank);
		(void)pf_scope_trace_set_process(s, m->rank, name,
		    m->clock_offset_ns);
	}
	if (rc == 0 && pthread_create(&m->thread, NULL, comm_main, m) != 0)
		rc = PF_ENOMEM;
	if (rc != 0) {
		pf_ctx_release(m->anchor);
		MPI_Comm_free(&m->comm);
		free(m->tried);
		free(m->lifeline_want);
		pthread_rwlock_destroy(&m->reg_lock);
		pthread_cond_destroy(&m->barrier_done);
		pthread_mutex_destroy(&m->barrier_lock);
		pthread_cond_destroy(&m->wake);
		pthread_mutex_destroy(&m->lock);
		free(m);
		if (own)
			MPI_Finalize();
		return rc;
	}
	*out = m;
	return 0;
}

/* After the communication thread left: requests end cancelled, abort
 * commands drop their item. */
static void
drain_late(pf_mpi *m)
{
	for (cmd *c = take_cmds(m), *next; c != NULL; c = next) {
		next = c->next;
		if (c->kind == C_SEND)
			item_settle(c->obj, PF_CANCELLED, PF_ESHUTDOWN, NULL,
			    NULL);
		else if (c->kind == C_ABORT)
			item_release(c->obj);
	}
}

int
pf_mpi_detach(pf_mpi *m)
{
	/* From a worker it would wait for its own handler to end. */
	if (m == NULL || pf_worker_index() >= 0 || calls_here > 0 ||
	    pthread_equal(pthread_self(), m->thread) ||
	    atomic_exchange(&m->detaching, true))
		return PF_EINVAL;
	pthread_mutex_lock(&m->lock);
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	/*
	 * Calls racing the end (a thread of the program calling pf_mpi_exec
	 * while detach completes).  A call that saw closed false counted
	 * itself in users first, and the thread set closed before this load
	 * (both seq_cst, as in Dekker's protocol): wait for such calls, then
	 * end what they left.  Their requests end cancelled; their ANY_RANK
	 * work runs here, and m stays until it settled.
	 */
	atomic_store(&m->closed, true);
	while (atomic_load(&m->users) != 0)
		sched_yield();
	drain_late(m);
	while (atomic_load(&m->live) != 0) {
		struct timespec pause = { 0, 100000 };
		nanosleep(&pause, NULL);
		drain_late(m);
	}
	drain_late(m);
	MPI_Comm_free(&m->comm);
	if (m->own_mpi)
		MPI_Finalize();
	for (size_t i = 0; i < m->nflows; i++)
		free(m->flows[i]);
	free(m->flows);
	free(m->tags);
	free(m->sreq);
	free(m->sbuf);
	free(m->tried);
	free(m->lifeline_want);
	pthread_rwlock_destroy(&m->reg_lock);
	pthread_cond_destroy(&m->barrier_done);
	pthread_mutex_destroy(&m->barrier_lock);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	pf_ctx_release(m->anchor);
	free(m);
	return 0;
}

int
pf_mpi_barrier(pf_mpi *m)
{
	if (m == NULL || pf_worker_index() >= 0 || calls_here > 0 ||
	    pthread_equal(pthread_self(), m->thread) ||
	    atomic_load(&m->detaching))
		return PF_EINVAL;
	pthread_mutex_lock(&m->barrier_lock);
	barrier b = { .done = false };
	push_cmd(m, &b.c, C_BARRIER, &b);
	pthread_mutex_lock(&m->lock);
	while (!b.done)
		pthread_cond_wait(&m->barrier_done, &m->lock);
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&m->barrier_lock);
	return 0;
}

int
pf_mpi_rank(const pf_mpi *m)
{
	return m != NULL ? m->rank : -1;
}

int
pf_mpi_size(const pf_mpi *m)
{
	return m != NULL ? m->size : 0;
}

int64_t
pf_mpi_clock_offset_ns(const pf_mpi *m)
{
	return m != NULL ? m->clock_offset_ns : 0;
}

pf_scope *
pf_mpi_scope(const pf_mpi *m)
{
	return m != NULL ? m->scope : NULL;
}

int
pf_mpi_stats_get(pf_mpi *m, pf_mpi_stats *o)
{
	if (m == NULL || o == NULL)
		return PF_EINVAL;
	o->sent = atomic_load(&m->st.sent);
	o->hosted = atomic_load(&m->st.hosted);
	o->local_any = atomic_load(&m->st.local_any);
	o->given = atomic_load(&m->st.given);
	o->taken = atomic_load(&m->st.taken);
	o->steal_asks = atomic_load(&m->st.steal_asks);
	o->aborts = atomic_load(&m->st.aborts);
	o->messages = atomic_load(&m->st.messages);
	return 0;
}

static int exec_in(pf_mpi *m, pf_ctx *parent, int rank, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf_exec **out);

int
pf_mpi_exec(pf_mpi *m, pf_ctx *parent, int rank, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf_exec **out)
{
	if (out != NULL)
		*out = NULL;
	if (m == NULL || f == NULL || rank < PF_MPI_ANY_RANK ||
	    rank >= m->size || (opts != NULL && opts->key != NULL) ||
	    (f->input_size > 0 && input == NULL))
		return PF_EINVAL;
	/* Counted before closed is read: detach waits for the calls that
	 * found it open (see pf_mpi_detach). */
	atomic_fetch_add(&m->users, 1);
	calls_here++;
	int rc = atomic_load(&m->closed) ? PF_ESHUTDOWN :
	    exec_in(m, parent, rank, f, input, opts, out);
	calls_here--;
	atomic_fetch_sub(&m->users, 1);
	return rc;
}

static int
exec_in(pf_mpi *m, pf_ctx *parent, int rank, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf_exec **out)
{
	bool any = rank == PF_MPI_ANY_RANK;
	const entry *fe = find_flow(m, f, NULL, 0);
	if (fe == NULL)
		return PF_MPI_ENOFLOW;
	item *it = calloc(1, sizeof(*it));
	if (it == NULL ||
	    (any && f->output_size > 0 &&
		(it->out = malloc(f->output_size)) == NULL)) {
		free(it);
		return PF_ENOMEM;
	}
	if (encode(fe->codec.encode_input, fe->codec.data, input,
		f->input_size, &it->in, &it->in_len) != 0 ||
	    it->in_len > MAX_PAYLOAD) {
		free(it->in);
		free(it->out);
		free(it);
		return PF_MPI_ECODEC;
	}
	if (it->out != NULL)
		memset(it->out, 0, f->output_size);
	atomic_init(&it->refs, 1);
	it->m = m;
	it->fe = fe;
	it->rank = any ? -1 : rank;
	int rc = parent != NULL ?
	    pf_ctx_exec_deferred(parent, f, opts, &it->proxy) :
	    pf_scope_exec_deferred(m->scope, f, opts, &it->proxy);
	if (rc != 0) {
		free(it->in);
		free(it->out);
		free(it);
		return rc;
	}
	pf_exec *p = it->proxy;
	if (out != NULL)
		*out = pf_exec_retain(p);
	if (pf_exec_status(p) != PF_RUNNING) {
		item_release(it); /* cancelled at its creation */
		return 0;
	}
	atomic_fetch_add(&m->live, 1); /* until item_settle */
	if (opts != NULL && opts->timeout_ms != 0)
		it->deadline_ns = pf_ctx_created_at(pf_exec_ctx(p)) +
		    (int64_t)opts->timeout_ms * 1000000;
	/* The travelling tags go before the input, as the proxy sees them. */
	unsigned char *tags;
	size_t tags_len;
	unsigned char *both = NULL;
	if (tags_encode(m, pf_exec_ctx(p), &tags, &tags_len) != 0 ||
	    (tags_len > 0 && (tags_len + it->in_len > MAX_PAYLOAD ||
				 (both = malloc(tags_len + it->in_len)) ==
				     NULL))) {
		free(tags);
		item_settle(it, PF_FAILED, PF_ENOMEM, NULL,
		    "no memory for the tags");
		return 0;
	}
	if (tags_len > 0) {
		memcpy(both, tags, tags_len);
		if (it->in_len > 0)
			memcpy(both + tags_len, it->in, it->in_len);
		free(tags);
		free(it->in);
		it->in = both;
		it->in_len += tags_len;
		it->tags_len = tags_len;
	}
	it->listening = true;
	if (pf_signal_add_listener(pf_ctx_signal(pf_exec_ctx(p)), &it->l,
		on_proxy_abort, it) != 0)
		it->listening = false;
	if (!any) {
		push_cmd(m, &it->send_cmd, C_SEND, it);
		return 0;
	}
	/* Here, as a child L of the proxy, unless a thief takes it while it
	 * is pending: the list holds a reference meanwhile. */
	atomic_fetch_add(&it->refs, 1);
	atomic_fetch_add(&m->any_pending, 1);
	pf_exec_options lo = { .on_status = local_status,
		.on_status_data = it };
	rc = pf_ctx_exec(pf_exec_ctx(p), &fe->wrapper, &it, &lo, &it->local);
	if (rc != 0) {
		atomic_fetch_sub(&m->any_pending, 1);
		item_release(it); /* the list's, never listed */
		item_settle(it, rc == PF_ECANCELED || rc == PF_ETIMEDOUT ?
		    PF_CANCELLED : PF_FAILED, rc, NULL, NULL);
		return 0;
	}
	/* Listed only while L has not started: a thief may take it. */
	pthread_mutex_lock(&m->lock);
	bool gone = it->gone;
	if (!gone) {
		it->aprev = m->any_tail;
		it->anext = NULL;
		if (m->any_tail != NULL)
			m->any_tail->anext = it;
		else
			m->any_head = it;
		m->any_tail = it;
		it->listed = true;
	}
	if (atomic_load(&m->nlifelines) > 0 && m->sleeping)
		pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (gone)
		item_release(it); /* the list's */
	return 0;
}

int
pf_mpi_run(pf_mpi *m, pf_ctx *parent, int rank, const pf_flow *f,
    const void *input, void *output, const pf_exec_options *opts)
{
	pf_exec *e;
	int rc = pf_mpi_exec(m, parent, rank, f, input, opts, &e);
	if (rc != 0)
		return rc;
	rc = pf_exec_wait(e, output);
	pf_exec_release(e);
	return rc;
}
