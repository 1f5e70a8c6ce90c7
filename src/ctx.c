/*
 * ctx.c: execution contexts: the tree, abort, tags, signal, lifetime.
 *
 * Abort protocol.  Each context has an abort word, 0 or the reason, set
 * once by CAS: the first abort wins and later ones change nothing.  The
 * aborter then runs the context's own effects (signal fd, listeners,
 * cancelling a pending execution) and walks the children.  A child links
 * itself into its parent's list under the parent's lock and reads the
 * parent's abort word under that same lock:
 *
 *   aborter                           child being created
 *   CAS parent.abort 0 -> r           lock(parent)
 *   lock(parent)                      link child; r' = parent.abort
 *   walk children: abort each         unlock(parent)
 *   unlock(parent)                    if r': abort child with r'
 *
 * If the child's critical section comes first, the walk finds it linked;
 * if the aborter's lock comes first, its CAS happened before and the child
 * reads r.  So a child created under an aborted parent starts aborted, and
 * no child escapes a concurrent abort.  The walk drops the parent's lock
 * while it aborts a child (listeners and status callbacks are user code),
 * holding a reference on the child so its sibling link stays valid.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "slab.h"
#include "track.h"

struct pf__tag_entry {
	const pf_tag *tag;
	pf__tag_entry *next;
	alignas(16) unsigned char value[];
};

struct pf__message {
	pf__message *next;
	int code; /* inherited messages: the code they came with */
	char text[];
};

void
pf__spin_lock_slow(pf__spin *l)
{
	for (unsigned spins = 0;; spins++) {
		/* Relaxed: only a hint before retrying the acquire exchange. */
		while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
			if (spins++ < 128)
				pf__cpu_relax();
			else
				sched_yield();
		}
		if (!atomic_exchange_explicit(&l->held, true,
			memory_order_acquire)) {
			PF_HB_AFTER(l); /* as in pf__spin_lock() */
			return;
		}
	}
}

/* --------------------------------------------------------------- life */

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
	pf__slab *slab = NULL;
	/* Without a slab the worker allocates records from the heap. */
	if (pf__slab_create(&slab, PF__RECORD_SLAB_SIZE) == 0)
		w->user = slab;
}

void
pf__record_worker_stop(pf__worker *w, void *arg)
{
	if (w->user != NULL)
		pf__slab_destroy(w->user);
	w->user = NULL;
}

void
pf__ctx_init(pf_ctx *c, pf_scope *s, pf_ctx *parent, uint8_t kind,
    int64_t now)
{
	atomic_init(&c->refs, 1);
	PF_ATOMIC_OBJ(&c->refs);
	c->kind = kind;
	c->parallel = false;
	atomic_init(&c->handles, 0);
	c->depth = 0;
	atomic_init(&c->abort_reason, 0);
	atomic_init(&c->lock.held, false);
	PF_ATOMIC_OBJ(&c->lock.held);
	c->parent = parent;
	c->scope = s;
	c->children = c->sib_next = c->sib_prev = NULL;
	atomic_init(&c->journal_used, false);
	PF_ATOMIC_OBJ(&c->journal_used);
	atomic_init(&c->life_over, false);
	PF_ATOMIC_OBJ(&c->life_over);
	atomic_init(&c->error, 0);
	PF_ATOMIC_OBJ(&c->error);
	c->name = NULL;
	c->name_owned = false;
	c->listeners = c->firing = NULL;
	c->firing_removed = false;
	c->flow = NULL;
	c->created_at = now;
	atomic_init(&c->started_at, 0);
	PF_ATOMIC_OBJ(&c->started_at);
	atomic_init(&c->completed_at, 0);
	PF_ATOMIC_OBJ(&c->completed_at);
	atomic_init(&c->cold, NULL);
	PF_ATOMIC_OBJ(&c->cold);
	c->signal.unused = 0;
	pf__uuid_v7(&c->id, pf__clock_raw_to_wall(now));
	if (parent != NULL)
		pf__ctx_retain(parent);
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
pf__cold_init(pf__cold *k, pf_ctx *c, uint8_t mem)
{
	k->owner = c;
	k->mem = mem;
	k->journal_closed = false;
	atomic_init(&k->id_state, 0);
	PF_ATOMIC_OBJ(&k->id_state);
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

static void
cold_free(pf__cold *k)
{
	for (pf__tag_entry *t = k->tags, *n; t != NULL; t = n) {
		n = t->next;
		pf__free(t);
	}
	for (pf__journal_entry *j = k->journal, *n; j != NULL; j = n) {
		n = j->next;
		if (j->exec != NULL)
			pf_exec_release(j->exec);
		pf__free(j);
	}
	for (pf__message *m = k->messages, *n; m != NULL; m = n) {
		n = m->next;
		pf__free(m);
	}
	pf__free(k->inherited);
	pf__subs_free(k->subs);
	if (k->key != NULL)
		pf__free((char *)k->key);
	if (k->fd >= 0)
		close(k->fd);
	if (k->mem != PF__COLD_INLINE) /* else freed with its record */
		pf__record_free(k, k->mem == PF__COLD_SLAB);
}

int
pf__ctx_link(pf_ctx *c)
{
	pf_ctx *p = c->parent;
	pf__spin_lock(&p->lock);
	c->sib_prev = NULL;
	c->sib_next = p->children;
	if (p->children != NULL)
		p->children->sib_prev = c;
	p->children = c;
	/* Under the lock: see the diagram at the top of this file. */
	int reason = atomic_load_explicit(&p->abort_reason,
	    memory_order_acquire);
	pf__spin_unlock(&p->lock);
	if (reason != 0)
		pf__ctx_abort(c, reason);
	return reason;
}

void
pf__ctx_retain(pf_ctx *c)
{
	/* Relaxed: taking a reference needs an existing one, which orders
	 * everything that matters (refcount-vs-atomic.rst). */
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

bool
pf__ctx_try_retain(pf_ctx *c)
{
	/* Relaxed, as for any increment: the caller holds the parent's lock,
	 * which keeps the record's memory (not its count) alive. */
	uint32_t n = atomic_load_explicit(&c->refs, memory_order_relaxed);
	while (n != 0)
		if (atomic_compare_exchange_weak_explicit(&c->refs, &n, n + 1,
			memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

static void scope_free(pf_scope *s);

#ifdef PF_DEBUG
/* The count of a freed record (see destroy()), and the smallest count
 * taken for a poisoned one: the slab's poison bytes read 0x6b6b6b6b. */
#define REFS_POISON 0xdeadbeefu
#define REFS_POISONED_MIN 0x6b6b6b6bu

/* Debug builds catch a release of a record with no reference left: a
 * double release, or one after the record was freed (API.md Semantics
 * 12), as long as its memory was not reused meanwhile. */
static void
check_released(uint32_t old)
{
	if (PF_UNLIKELY(old == 0 || old >= REFS_POISONED_MIN)) {
		fprintf(stderr, "libpumped: release of a handle with no "
				"reference left (released twice, or after "
				"its record was freed)\n");
		abort();
	}
}
#else
#define check_released(old) ((void)(old))
#endif

/* Frees one record whose count reached 0; returns its parent, whose
 * reference the caller must drop. */
static pf_ctx *
destroy(pf_ctx *c)
{
	pf_ctx *p = c->parent;
	if (p != NULL) {
		pf__spin_lock(&p->lock);
		if (c->sib_prev != NULL)
			c->sib_prev->sib_next = c->sib_next;
		else
			p->children = c->sib_next;
		if (c->sib_next != NULL)
			c->sib_next->sib_prev = c->sib_prev;
		pf__spin_unlock(&p->lock);
	}
	/* Relaxed: the count reached 0 with acquire; nobody else can
	 * install a cold block any more. */
	pf__cold *k = atomic_load_explicit(&c->cold, memory_order_relaxed);
	if (k != NULL)
		cold_free(k);
	if (c->name_owned)
		pf__free((char *)c->name);
#ifdef PF_DEBUG
	/* A later release of this record reads a poisoned count (heap
	 * memory keeps it; slab memory is poisoned past the guard). */
	atomic_store_explicit(&c->refs, REFS_POISON, memory_order_relaxed);
#endif
	if (c->kind == PF__CTX_FLOW)
		pf__exec_free((pf_exec *)c);
	else if (c->kind == PF__CTX_ROOT)
		scope_free(c->scope);
	else
		pf__record_free(c, c->from_slab);
	return p;
}

void
pf__ctx_release(pf_ctx *c)
{
	while (c != NULL) {
		/* Release: our writes to the record happen before its free.
		 * The acquire fence pairs with the other releasers' release
		 * decrements before the last one frees it. */
		PF_HB_BEFORE(&c->refs);
#ifdef PF_UNDER_TSAN
		uint32_t old = atomic_fetch_sub_explicit(&c->refs, 1,
		    memory_order_acq_rel);
		check_released(old);
		if (old != 1)
			return;
#else
		uint32_t old = atomic_fetch_sub_explicit(&c->refs, 1,
		    memory_order_release);
		check_released(old);
		if (old != 1)
			return;
		atomic_thread_fence(memory_order_acquire);
#endif
		PF_HB_AFTER(&c->refs); /* every releaser's PF_HB_BEFORE */
		/* Iterative, so that a long chain of last references does
		 * not recurse once per ancestor. */
		c = destroy(c);
	}
}

int
pf__ctx_set_name(pf_ctx *c, const char *name, const char *fallback)
{
	if (name == NULL) {
		c->name = fallback;
		return 0;
	}
	char *copy = pf__strdup(name);
	if (copy == NULL)
		return PF_ENOMEM;
	c->name = copy;
	c->name_owned = true;
	return 0;
}

/* ------------------------------------------------------------- abort */

static void fire_signal(pf_ctx *c);

/* The first child at or after `from` that is still alive, retained. */
static pf_ctx *
next_live(pf_ctx *from)
{
	for (pf_ctx *c = from; c != NULL; c = c->sib_next)
		if (pf__ctx_try_retain(c))
			return c;
	return NULL;
}

/* Sets c's abort word (first abort wins) and runs c's own effects; false
 * when c was already aborted, whose aborter then also walks its subtree. */
static bool
abort_one(pf_ctx *c, int reason)
{
	int zero = 0;
	/* Acq_rel: publishes the reason with everything before it; the
	 * readers' acquire loads pair with it. */
	PF_HB_BEFORE(&c->abort_reason);
	if (!atomic_compare_exchange_strong_explicit(&c->abort_reason, &zero,
		reason, memory_order_acq_rel, memory_order_acquire))
		return false;
	/* A pending execution is claimed before any listener runs: a
	 * listener may take long, and no worker may start the handler
	 * meanwhile (API.md Semantics 3).  It is published cancelled after
	 * them, so that it is not finished (and dispose still waits) while
	 * they run on its record. */
	bool cancel = c->kind == PF__CTX_FLOW &&
	    pf__exec_claim_cancel((pf_exec *)c);
	fire_signal(c);
	if (cancel)
		pf__exec_cancel_claimed((pf_exec *)c, reason);
	else if (c->kind == PF__CTX_STANDALONE)
		/* An aborted context has nothing left to time out; this also
		 * clears every standalone timer before dispose stops the
		 * wheel. */
		pf__ctx_cancel_timeout(c);
	return true;
}

/* The first live child of c at or after `from` (from NULL: the first),
 * retained.  A record whose count is 0 is being freed: it has no live
 * descendant (each holds a reference on it) and nothing to abort. */
static pf_ctx *
live_child(pf_ctx *c, pf_ctx *after)
{
	pf__spin_lock(&c->lock);
	/* `after` is still linked: our reference keeps it in the list. */
	pf_ctx *r = next_live(after != NULL ? after->sib_next : c->children);
	pf__spin_unlock(&c->lock);
	return r;
}

/*
 * Aborts c and its subtree, depth first, without recursion (a chain of
 * finished ancestors kept alive by a live descendant can be as deep as a
 * program likes).  Every node below c is retained while the walk is in its
 * subtree; climbing from a node to its parent finds the next sibling under
 * the parent's lock before dropping the node.
 */
void
pf__ctx_abort(pf_ctx *c, int reason)
{
	if (!abort_one(c, reason))
		return;
	pf_ctx *cur = c;
	pf_ctx *child = live_child(cur, NULL);
	for (;;) {
		while (child != NULL) {
			if (abort_one(child, reason)) {
				cur = child; /* descend, keeping the reference */
				child = live_child(cur, NULL);
				continue;
			}
			/* Aborted before: its own aborter walks its subtree. */
			pf_ctx *next = live_child(cur, child);
			pf__ctx_release(child);
			child = next;
		}
		if (cur == c)
			return;
		pf_ctx *parent = cur->parent;
		child = live_child(parent, cur);
		pf__ctx_release(cur);
		cur = parent;
	}
}

/* Whether a timeout still applies: executions until their terminal
 * status, standalone contexts until they end. */
static bool
unfinished(pf_ctx *c)
{
	/* Acquire: pairs with pf__ctx_end_at()'s release store, and with
	 * the terminal status CAS in settle(). */
	if (c->kind != PF__CTX_FLOW)
		return PF_ACQUIRED(&c->completed_at,
			   atomic_load_explicit(&c->completed_at,
			   memory_order_acquire)) == 0;
	uint32_t st = PF_ACQUIRED(&((pf_exec *)c)->state,
			  atomic_load_explicit(&((pf_exec *)c)->state,
			  memory_order_acquire)) & PF__ST_MASK;
	return st == PF_PENDING || st == PF_RUNNING || st == PF__ST_CANCELLING;
}

static void
timer_fired(pf__timer_node *n, bool fired)
{
	pf_ctx *c = PF_CONTAINER_OF(n, pf__cold, timer)->owner;
	/* Finishing cancels the timer but may lose the race with this
	 * callback; a deadline that finds the work finished changes nothing.
	 * A cancelled timer only gives its reference back. */
	if (fired && unfinished(c))
		pf__ctx_abort(c, PF_ETIMEDOUT);
	/* A standalone context's timer holds a count of unfinished work
	 * (pf_scope_create_execution); an execution's own count covers its
	 * timer. */
	if (c->kind == PF__CTX_STANDALONE)
		pf__scope_exec_finished(c->scope);
	pf__ctx_release(c); /* the timer's reference */
}

void
pf__ctx_arm_timeout(pf_ctx *c, uint64_t timeout_ms)
{
	/* The deadline counts from creation: time spent pending counts. */
	int64_t ms = timeout_ms > (uint64_t)INT64_MAX / 2000000 ?
	    INT64_MAX / 2000000 : (int64_t)timeout_ms;
	/* Converted near now (creation was a moment ago), not from the
	 * calibration point, whose error grows with the distance: a timeout
	 * must never fire early. */
	int64_t created = pf__clock_raw_to_mono_near(c->created_at);
	pf__cold *k = pf__cold_of(c); /* made by the caller beforehand */
	pf__ctx_retain(c);
	pf__timer_arm(c->scope->timers, &k->timer, created + ms * 1000000,
	    timer_fired);
}

void
pf__ctx_cancel_timeout(pf_ctx *c)
{
	/* No cold block: no timer.  A cancel of a node never armed, already
	 * cancelled or fired does nothing and does not touch the wheel
	 * (which dispose may have stopped by then); otherwise the timer
	 * thread gives the timer's reference back (timer_fired), whether the
	 * deadline or this cancel came first. */
	pf__cold *k = pf__cold_of(c);
	if (k != NULL)
		pf__timer_cancel(c->scope->timers, &k->timer);
}

void
pf__ctx_end_at(pf_ctx *c, int64_t now)
{
	/* "Once": a load and a store, not a CAS.  Only pf_ctx_end on another
	 * thread can race with the owner here, and then either timestamp is
	 * a right answer.  Release: pairs with the acquire in
	 * pf_ctx_completed_at(). */
	if (atomic_load_explicit(&c->completed_at, memory_order_relaxed) != 0)
		return;
	/* Not before the start, even if two CPUs' TSCs disagree slightly. */
	int64_t started = atomic_load_explicit(&c->started_at,
	    memory_order_relaxed);
	if (now < started)
		now = started;
	if (now < c->created_at)
		now = c->created_at;
	PF_HB_BEFORE(&c->completed_at);
	atomic_store_explicit(&c->completed_at, now, memory_order_release);
}

/* ------------------------------------------------------------- errors */

/* A message of len bytes (plus the NUL), not yet linked anywhere. */
static pf__message *
message_new(size_t len)
{
	pf__message *m = pf__malloc(sizeof(*m) + len + 1);
	if (m != NULL)
		m->code = 0;
	return m;
}

/* A copy of text, not yet linked anywhere; NULL when out of memory. */
static pf__message *
message_copy(const char *text)
{
	size_t len = strlen(text);
	pf__message *m = message_new(len);
	if (m != NULL)
		memcpy(m->text, text, len + 1);
	return m;
}

/* Links m into k's messages (under c's lock) and returns its text.
 * Messages are kept until the record is freed, so a pointer handed out by
 * pf_ctx_error or in a pf_call stays valid as long as the context. */
static const char *
message_keep(pf_ctx *c, pf__cold *k, pf__message *m)
{
	pf__spin_lock(&c->lock);
	m->next = k->messages;
	k->messages = m;
	pf__spin_unlock(&c->lock);
	return m->text;
}

static const char *
keep_message(pf_ctx *c, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int len = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (len < 0)
		return NULL;
	pf__cold *k = pf__ctx_cold(c);
	if (k == NULL)
		return NULL;
	pf__message *m = message_new((size_t)len);
	if (m == NULL)
		return NULL;
	vsnprintf(m->text, (size_t)len + 1, fmt, ap);
	return message_keep(c, k, m);
}

const char *
pf__ctx_keep_text(pf_ctx *c, const char *text)
{
	pf__cold *k = pf__ctx_cold(c);
	pf__message *m = k != NULL ? message_copy(text) : NULL;
	return m != NULL ? message_keep(c, k, m) : NULL;
}

const char *
pf__ctx_own_message(pf_ctx *c)
{
	pf__cold *k = pf__cold_of(c);
	if (k == NULL)
		return NULL;
	pf__spin_lock(&c->lock);
	const char *msg = k->error_message;
	pf__spin_unlock(&c->lock);
	return msg;
}

void
pf__ctx_pass_message(pf_ctx *c)
{
	pf_ctx *p = c->parent;
	/* Only c's runner writes its error now, so the text stays put.  The
	 * scope's root handles no failure: nothing to pass up to. */
	const char *msg = pf__ctx_own_message(c);
	if (msg == NULL || p == NULL || p->kind == PF__CTX_ROOT)
		return;
	pf__cold *k = pf__ctx_cold(p);
	pf__message *m = k != NULL ? message_copy(msg) : NULL;
	if (m == NULL)
		return; /* the parent falls back to the code's text */
	m->code = atomic_load_explicit(&c->error, memory_order_relaxed);
	pf__spin_lock(&p->lock);
	pf__message *old = k->inherited;
	k->inherited = m;
	pf__spin_unlock(&p->lock);
	pf__free(old);
}

void
pf__ctx_record_error(pf_ctx *c, int code)
{
	/* The common case, success with no pf_ctx_fail before, needs no
	 * lock: only this thread (the runner) has written error so far. */
	if (code == 0 && atomic_load_explicit(&c->error, memory_order_relaxed) == 0)
		return;
	pf__spin_lock(&c->lock);
	/* The same code as pf_ctx_fail set keeps its message.  Any other
	 * code takes the message of the last failure under c with that code
	 * (moved to the kept messages, so it outlives later failures), else
	 * its pf_strerror text. */
	if (atomic_load_explicit(&c->error, memory_order_relaxed) != code) {
		atomic_store_explicit(&c->error, code, memory_order_relaxed);
		pf__cold *k = pf__cold_of(c);
		if (k != NULL) {
			pf__message *m = k->inherited;
			k->error_message = NULL;
			if (m != NULL && m->code == code && code != 0) {
				k->inherited = NULL;
				m->next = k->messages;
				k->messages = m;
				k->error_message = m->text;
			}
		}
	}
	pf__spin_unlock(&c->lock);
}

int
pf_ctx_fail(pf_ctx *c, int code, const char *fmt, ...)
{
	if (c == NULL)
		return code;
	const char *msg = NULL;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		msg = keep_message(c, fmt, ap);
		va_end(ap);
	}
	pf__spin_lock(&c->lock);
	atomic_store_explicit(&c->error, code, memory_order_relaxed);
	/* No message (none given, or no memory for it): the code's text. */
	pf__cold *k = pf__cold_of(c);
	if (k != NULL)
		k->error_message = msg;
	pf__spin_unlock(&c->lock);
	return code;
}

int
pf_ctx_error(const pf_ctx *c, const char **message)
{
	if (c == NULL)
		return PF_EINVAL;
	pf_ctx *m = (pf_ctx *)c;
	pf__spin_lock(&m->lock);
	int code = atomic_load_explicit(&m->error, memory_order_relaxed);
	pf__cold *k = pf__cold_of(m);
	const char *msg = k != NULL ? k->error_message : NULL;
	pf__spin_unlock(&m->lock);
	if (message != NULL)
		*message = code == 0 ? NULL : msg != NULL ? msg :
		    pf_strerror(code);
	return code;
}

/* ------------------------------------------------------------- queries */

const char *
pf_ctx_id(const pf_ctx *cc)
{
	if (cc == NULL)
		return NULL;
	pf_ctx *c = (pf_ctx *)cc;
	/* The text lives in the cold block: most ids are never read. */
	pf__cold *k = pf__ctx_cold(c);
	if (k == NULL)
		return NULL;
	/* Acquire: pairs with the release store of 2 below, so the text is
	 * complete when we see it ready. */
	uint8_t st = PF_ACQUIRED(&k->id_state,
	    atomic_load_explicit(&k->id_state, memory_order_acquire));
	if (PF_LIKELY(st == 2))
		return k->id_text;
	uint8_t zero = 0;
	if (atomic_compare_exchange_strong_explicit(&k->id_state, &zero, 1,
		memory_order_acquire, memory_order_acquire)) {
		pf__uuid_format(&c->id, k->id_text);
		PF_HB_BEFORE(&k->id_state);
		atomic_store_explicit(&k->id_state, 2, memory_order_release);
		return k->id_text;
	}
	while (atomic_load_explicit(&k->id_state, memory_order_acquire) != 2)
		pf__cpu_relax();
	PF_HB_AFTER(&k->id_state);
	return k->id_text;
}

const char *
pf_ctx_name(const pf_ctx *c)
{
	return c != NULL ? c->name : NULL;
}

pf_ctx *
pf_ctx_parent(const pf_ctx *c)
{
	if (c == NULL || c->parent == NULL || c->parent->kind == PF__CTX_ROOT)
		return NULL;
	return c->parent;
}

pf_scope *
pf_ctx_scope(const pf_ctx *c)
{
	return c != NULL ? c->scope : NULL;
}

/* Timestamps are kept raw (clock.h) and converted when read. */
static int64_t
wall(int64_t raw)
{
	pf__clock_refine();
	return pf__clock_raw_to_wall(raw);
}

int64_t
pf_ctx_created_at(const pf_ctx *c)
{
	return c != NULL ? wall(c->created_at) : 0;
}

int64_t
pf_ctx_started_at(const pf_ctx *c)
{
	/* Acquire: pairs with the release store when the handler starts. */
	return c != NULL ? wall(atomic_load_explicit(&c->started_at,
			       memory_order_acquire)) : 0;
}

int64_t
pf_ctx_completed_at(const pf_ctx *c)
{
	return c != NULL ? wall(atomic_load_explicit(&c->completed_at,
			       memory_order_acquire)) : 0;
}

void *
pf_ctx_metadata(const pf_ctx *c)
{
	if (c == NULL)
		return NULL;
	pf__cold *k = pf__cold_of(c);
	return k != NULL ? k->metadata : NULL;
}

pf_ctx *
pf_ctx_retain(pf_ctx *c)
{
	if (c == NULL)
		return NULL;
	if (c->kind == PF__CTX_STANDALONE)
		/* Relaxed: like a reference increment. */
		atomic_fetch_add_explicit(&c->handles, 1, memory_order_relaxed);
	pf__ctx_retain(c);
	return c;
}

int
pf_ctx_end(pf_ctx *c)
{
	if (c == NULL || c->kind == PF__CTX_ROOT)
		return PF_EINVAL;
	pf__ctx_end_at(c, pf__clock_raw());
	/* A standalone context is unfinished until it ends: its timeout no
	 * longer applies after that.  Flow contexts keep theirs until the
	 * execution finishes. */
	if (c->kind == PF__CTX_STANDALONE)
		pf__ctx_cancel_timeout(c);
	return 0;
}

void
pf_ctx_release(pf_ctx *c)
{
	if (c == NULL)
		return;
	/* Acq_rel: the last handle's release sees the others' writes before
	 * it ends the context. */
	PF_HB_BEFORE(&c->handles);
	if (c->kind == PF__CTX_STANDALONE &&
	    atomic_fetch_sub_explicit(&c->handles, 1, memory_order_acq_rel) ==
		1) {
		PF_HB_AFTER(&c->handles);
		pf_ctx_end(c);
		pf__ctx_end_life(c);
	}
	pf__ctx_release(c);
}

int
pf_ctx_abort(pf_ctx *c)
{
	if (c == NULL || c->kind == PF__CTX_ROOT)
		return PF_EINVAL;
	pf__ctx_abort(c, PF_ECANCELED);
	return 0;
}

bool
pf_ctx_aborted(const pf_ctx *c)
{
	/* Acquire: pairs with the abort CAS in abort_one(). */
	return c != NULL && PF_ACQUIRED(&c->abort_reason,
	    atomic_load_explicit(&c->abort_reason, memory_order_acquire)) != 0;
}

int
pf_ctx_throw_if_aborted(const pf_ctx *c)
{
	if (c == NULL)
		return PF_EINVAL;
	return PF_ACQUIRED(&c->abort_reason,
	    atomic_load_explicit(&c->abort_reason, memory_order_acquire));
}

/* --------------------------------------------------------------- tags */

static bool
is_meta_tag(const pf_tag *t)
{
	return t == &pf_flow_name_tag || t == &pf_flow_parent_name_tag ||
	    t == &pf_flow_depth_tag || t == &pf_flow_is_parallel_tag;
}

static const char *
flow_name_of(const pf_ctx *c)
{
	return c->flow->name != NULL ? c->flow->name : "anonymous";
}

/* Flow metadata as seen from flow context c; false when absent. */
static bool
meta_value(const pf_ctx *c, const pf_tag *t, void *out)
{
	if (t == &pf_flow_name_tag) {
		const char *name = flow_name_of(c);
		if (out != NULL)
			memcpy(out, &name, sizeof(name));
		return true;
	}
	if (t == &pf_flow_depth_tag) {
		if (out != NULL)
			memcpy(out, &c->depth, sizeof(uint32_t));
		return true;
	}
	if (t == &pf_flow_is_parallel_tag) {
		bool par = c->parallel;
		if (out != NULL)
			memcpy(out, &par, sizeof(par));
		return true;
	}
	for (const pf_ctx *a = c->parent; a != NULL; a = a->parent) {
		if (a->kind == PF__CTX_FLOW) {
			const char *name = flow_name_of(a);
			if (out != NULL)
				memcpy(out, &name, sizeof(name));
			return true;
		}
	}
	return false;
}

/* Under c's lock, whose cold block is k (not NULL). */
static pf__tag_entry *
own_entry(const pf__cold *k, const pf_tag *t)
{
	for (pf__tag_entry *e = k->tags; e != NULL; e = e->next)
		if (e->tag == t)
			return e;
	return NULL;
}

static int
set_value(pf_ctx *c, const pf_tag *t, const void *value)
{
	pf__cold *k = pf__ctx_cold(c);
	if (k == NULL)
		return PF_ENOMEM;
	pf__spin_lock(&c->lock);
	pf__tag_entry *e = own_entry(k, t);
	if (e != NULL) {
		memcpy(e->value, value, t->size);
		pf__spin_unlock(&c->lock);
		return 0;
	}
	pf__spin_unlock(&c->lock);
	pf__tag_entry *n = pf__malloc(sizeof(*n) + t->size);
	if (n == NULL)
		return PF_ENOMEM;
	n->tag = t;
	memcpy(n->value, value, t->size);
	pf__spin_lock(&c->lock);
	/* Another thread may have added it meanwhile: then update that one. */
	e = own_entry(k, t);
	if (e != NULL) {
		memcpy(e->value, value, t->size);
		pf__spin_unlock(&c->lock);
		pf__free(n);
		return 0;
	}
	n->next = k->tags;
	k->tags = n;
	pf__spin_unlock(&c->lock);
	return 0;
}

/* Whether t is a tag whose values the library can hold. */
static bool
tag_ok(const pf_tag *t)
{
	return t != NULL && t->size != 0 && t->size <= PF__MAX_DATA;
}

int
pf__ctx_seed_tags(pf_ctx *c, const pf_tag_value *tags, size_t n)
{
	if (n != 0 && tags == NULL)
		return PF_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!tag_ok(tags[i].tag) || tags[i].value == NULL)
			return PF_EINVAL;
		int rc = set_value(c, tags[i].tag, tags[i].value);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
pf_ctx_set(pf_ctx *c, const pf_tag *t, const void *value)
{
	if (c == NULL || !tag_ok(t) || value == NULL)
		return PF_EINVAL;
	return set_value(c, t, value);
}

static bool
lookup(const pf_ctx *from, const pf_tag *t, void *out)
{
	bool meta = is_meta_tag(t);
	for (const pf_ctx *c = from; c != NULL; c = c->parent) {
		pf_ctx *m = (pf_ctx *)c;
		/* No cold block: no tag of its own (one set concurrently may
		 * be missed, as if set just after this read). */
		pf__cold *k = pf__cold_of(c);
		pf__tag_entry *e = NULL;
		if (k != NULL) {
			pf__spin_lock(&m->lock);
			e = own_entry(k, t);
			if (e != NULL && out != NULL)
				memcpy(out, e->value, t->size);
			pf__spin_unlock(&m->lock);
		}
		if (e != NULL)
			return true;
		if (meta && c->kind == PF__CTX_FLOW)
			return meta_value(c, t, out);
	}
	if (t->default_value != NULL) {
		if (out != NULL)
			memcpy(out, t->default_value, t->size);
		return true;
	}
	return false;
}

int
pf_ctx_get(const pf_ctx *c, const pf_tag *t, void *out)
{
	if (c == NULL || !tag_ok(t) || out == NULL)
		return PF_EINVAL;
	return lookup(c, t, out) ? 0 : PF_ENOENT;
}

bool
pf_ctx_find(const pf_ctx *c, const pf_tag *t, void *out)
{
	if (c == NULL || !tag_ok(t))
		return false;
	return lookup(c, t, out);
}

/* ------------------------------------------------------------ journal */

/* The link that holds key's entry in parent's journal, or the link
 * where it would be appended.  The caller holds parent->lock, and made
 * parent's cold block before it used the journal. */
pf__journal_entry **
pf__journal_find(pf_ctx *parent, const char *key)
{
	pf__journal_entry **link = &pf__cold_of(parent)->journal;
	for (; *link != NULL; link = &(*link)->next)
		if (strcmp((*link)->key, key) == 0)
			break;
	return link;
}

/*
 * A journal entry holds its execution, and the execution holds its parent:
 * a cycle.  It is broken when the parent's life ends: a flow context when
 * its execution reaches a terminal status, an fn step when its fn returns,
 * a standalone context when its last handle is released.  Placeholders of
 * creations in progress stay; journal_settle() sees the journal closed and
 * drops its own.  The handshake, without a lock on the finishing path:
 *
 *   first keyed child (under c->lock)   end of life
 *   journal_used := 1 (seq_cst)         terminal CAS / life_over := 1
 *   read end of life (seq_cst)          read journal_used (seq_cst)
 *   if over: run unjournaled            if used: close the journal
 *
 * Either the child sees the end and adds nothing, or the end sees the
 * journal used and closes it (under the lock, after the child's entry).
 */
static void
close_journal(pf_ctx *c)
{
	/* journal_used is set only after the cold block was made. */
	pf__cold *k = pf__cold_of(c);
	pf__spin_lock(&c->lock);
	k->journal_closed = true;
	pf__journal_entry *done = NULL;
	for (pf__journal_entry **link = &k->journal; *link != NULL;) {
		pf__journal_entry *j = *link;
		if (j->exec != NULL) {
			*link = j->next;
			j->next = done;
			done = j;
		} else {
			link = &j->next;
		}
	}
	pf__spin_unlock(&c->lock);
	for (pf__journal_entry *j = done, *n; j != NULL; j = n) {
		n = j->next;
		pf_exec_release(j->exec);
		pf__free(j);
	}
}

static bool
life_is_over(pf_ctx *c)
{
	/* Seq_cst: the journal handshake's load (diagram above). */
	if (c->kind != PF__CTX_FLOW)
		return atomic_load_explicit(&c->life_over, memory_order_seq_cst);
	uint32_t st = atomic_load_explicit(&((pf_exec *)c)->state,
			  memory_order_seq_cst) & PF__ST_MASK;
	return st >= PF_COMPLETED && st != PF__ST_CANCELLING;
}

void
pf__ctx_end_life(pf_ctx *c)
{
	/* Seq_cst store then load: the handshake's end-of-life side. */
	if (c->kind != PF__CTX_FLOW)
		atomic_store_explicit(&c->life_over, true, memory_order_seq_cst);
	if (atomic_load_explicit(&c->journal_used, memory_order_seq_cst))
		close_journal(c);
}

bool
pf__ctx_journal_open(pf_ctx *c)
{
	if (pf__cold_of(c)->journal_closed)
		return false;
	/* Relaxed check: it saves the seq_cst store once the flag is set;
	 * the flag only ever goes from false to true. */
	if (!atomic_load_explicit(&c->journal_used, memory_order_relaxed))
		atomic_store_explicit(&c->journal_used, true,
		    memory_order_seq_cst);
	return !life_is_over(c);
}

/* -------------------------------------------------------------- signal */

enum { L_IDLE, L_QUEUED, L_RUNNING };

static pf_ctx *
signal_ctx(const pf_signal *s)
{
	return PF_CONTAINER_OF(s, pf_ctx, signal);
}

/* The listeners this thread is running now, innermost first (a listener
 * may abort another context, whose listeners then run inside it). */
struct firing_frame {
	const pf_signal_listener *l;
	struct firing_frame *outer;
};
static _Thread_local struct firing_frame *tls_firing PF_TLS_MODEL;

static bool
firing_here(const pf_signal_listener *l)
{
	for (struct firing_frame *f = tls_firing; f != NULL; f = f->outer)
		if (f->l == l)
			return true;
	return false;
}

/* Runs on the aborting thread, once, right after the abort word is set. */
static void
fire_signal(pf_ctx *c)
{
	pf_signal *s = &c->signal;
	pf__spin_lock(&c->lock);
	/* Read under the lock: pf_signal_fd makes the cold block before it
	 * takes the lock and checks the abort word, so either we see the
	 * block here or it sees the abort. */
	pf__cold *k = pf__cold_of(c);
	if (k != NULL && k->fd >= 0) {
		uint64_t one = 1;
		/* Cannot fail for a counter below 2^64 - 1. */
		ssize_t w = write(k->fd, &one, sizeof(one));
		(void)w;
	}
	while (c->listeners != NULL) {
		pf_signal_listener *l = c->listeners;
		c->listeners = l->_next;
		if (c->listeners != NULL)
			c->listeners->_prev = NULL;
		l->_next = l->_prev = NULL;
		l->_state = L_RUNNING;
		c->firing = l;
		c->firing_removed = false;
		pf__spin_unlock(&c->lock);
		struct firing_frame frame = { l, tls_firing };
		tls_firing = &frame;
		pf__in_callback++;
		l->_fn(s, l->_data);
		pf__in_callback--;
		tls_firing = frame.outer;
		pf__spin_lock(&c->lock);
		/* After this, remove_listener stops waiting and the caller may
		 * reuse l: do not touch it again.  A listener that removed
		 * itself may already be gone: only clear `firing`. */
		if (!c->firing_removed)
			l->_state = L_IDLE;
		c->firing = NULL;
	}
	pf__spin_unlock(&c->lock);
}

pf_signal *
pf_ctx_signal(pf_ctx *c)
{
	return c != NULL ? &c->signal : NULL;
}

bool
pf_signal_aborted(const pf_signal *s)
{
	return s != NULL && pf_ctx_aborted(signal_ctx(s));
}

int
pf_signal_reason(const pf_signal *s)
{
	if (s == NULL)
		return PF_EINVAL;
	return pf_ctx_throw_if_aborted(signal_ctx(s));
}

int
pf_signal_fd(pf_signal *s)
{
	if (s == NULL)
		return PF_EINVAL;
	pf_ctx *c = signal_ctx(s);
	pf__cold *k = pf__ctx_cold(c); /* the fd lives in the cold block */
	if (k == NULL)
		return PF_ENOMEM;
	pf__spin_lock(&c->lock);
	if (k->fd < 0) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0) {
			pf__spin_unlock(&c->lock);
			return errno == ENOMEM ? PF_ENOMEM : PF_EAGAIN;
		}
		k->fd = fd;
		/* Already aborted: the fd must be readable now.  Under the
		 * lock, so fire_signal cannot write a second time unseen. */
		if (atomic_load_explicit(&c->abort_reason,
			memory_order_acquire) != 0) {
			uint64_t one = 1;
			ssize_t w = write(fd, &one, sizeof(one));
			(void)w;
		}
	}
	int fd = k->fd;
	pf__spin_unlock(&c->lock);
	return fd;
}

int
pf_signal_add_listener(pf_signal *s, pf_signal_listener *l,
    void (*fn)(pf_signal *s, void *data), void *data)
{
	if (s == NULL || l == NULL || fn == NULL)
		return PF_EINVAL;
	pf_ctx *c = signal_ctx(s);
	pf__spin_lock(&c->lock);
	/* Adding a queued or running listener again would corrupt the list. */
	bool present = c->firing == l;
	for (pf_signal_listener *q = c->listeners; q != NULL && !present;
	     q = q->_next)
		present = q == l;
	if (present) {
		pf__spin_unlock(&c->lock);
		return PF_EINVAL;
	}
	l->_fn = fn;
	l->_data = data;
	/* Checked under the lock: fire_signal takes it after the abort word
	 * is set, so either it sees this listener or we see the abort. */
	if (atomic_load_explicit(&c->abort_reason, memory_order_acquire) != 0) {
		l->_state = L_IDLE;
		l->_next = l->_prev = NULL;
		pf__spin_unlock(&c->lock);
		pf__in_callback++;
		fn(s, data);
		pf__in_callback--;
		return 0;
	}
	l->_state = L_QUEUED;
	l->_prev = NULL;
	l->_next = c->listeners;
	if (c->listeners != NULL)
		c->listeners->_prev = l;
	c->listeners = l;
	pf__spin_unlock(&c->lock);
	return 0;
}

int
pf_signal_remove_listener(pf_signal *s, pf_signal_listener *l)
{
	if (s == NULL || l == NULL)
		return PF_EINVAL;
	pf_ctx *c = signal_ctx(s);
	pf__spin_lock(&c->lock);
	if (l->_state == L_QUEUED) {
		if (l->_prev != NULL)
			l->_prev->_next = l->_next;
		else
			c->listeners = l->_next;
		if (l->_next != NULL)
			l->_next->_prev = l->_prev;
		l->_next = l->_prev = NULL;
		l->_state = L_IDLE;
	} else if (c->firing == l && !firing_here(l)) {
		/* It runs on another thread now: wait until it returned. */
		while (c->firing == l) {
			pf__spin_unlock(&c->lock);
			sched_yield();
			pf__spin_lock(&c->lock);
		}
	} else if (c->firing == l) {
		/* Removing itself from inside its own call (perhaps from a
		 * listener it set off): nothing to wait for.  It stays
		 * `firing` until it returns, so a removal from another thread
		 * still waits; fire_signal will not touch it. */
		c->firing_removed = true;
		l->_state = L_IDLE;
	}
	pf__spin_unlock(&c->lock);
	return 0;
}

/* --------------------------------------------------------------- scope */

static void
scope_free(pf_scope *s)
{
	for (pf__extlist *l = atomic_load_explicit(&s->exts,
		 memory_order_relaxed), *n;
	     l != NULL; l = n) {
		n = l->older;
		pf__free(l);
	}
	pf__free(s->unfinished); /* kept until now: late callers still count */
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	pf__free(s);
}
