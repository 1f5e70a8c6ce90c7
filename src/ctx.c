/*
 * ctx.c: the context tree: lifetime, links, abort, timeouts, and the
 * queries of pf_ctx (ctx.h).
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

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "clock.h"
#include "ctx.h"
#include "engine.h"
#include "message.h"
#include "probe.h"
#include "sig.h"
#include "sub.h"
#include "tag.h"

static const pf__ctx_class *classes[PF__CTX_KINDS];

void
pf__ctx_set_class(unsigned kind, const pf__ctx_class *cls)
{
	pf__assert(kind < PF__CTX_KINDS);
	pf__assert(classes[kind] == NULL || classes[kind] == cls);
	classes[kind] = cls;
}

/* --------------------------------------------------------------- life */

void
pf__ctx_init(pf_ctx *c, pf__engine *g, pf_ctx *parent, uint8_t kind,
    int64_t now)
{
	pf__atomic_init(&c->refs, 1);
	c->kind = kind;
	c->from_slab = false;
	c->parallel = false;
	pf__atomic_init(&c->handles, 0); /* and `where`, its union twin */
	c->depth = 0;
	pf__atomic_init(&c->abort_reason, 0);
	pf__spin_init(&c->lock);
	c->parent = parent;
	c->engine = g;
	pf__hlist_init(&c->children);
	c->sibling.next = NULL;
	c->sibling.pprev = NULL;
	pf__atomic_init(&c->journal_used, false);
	pf__atomic_init(&c->life_over, false);
	pf__atomic_init(&c->error, 0);
	c->name = NULL;
	c->name_owned = false;
	c->listeners = c->firing = NULL;
	c->firing_removed = false;
	c->start_is_creation = false;
	c->flow = NULL;
	c->created_at = now;
	pf__atomic_init(&c->started_at, 0);
	pf__atomic_init(&c->completed_at, 0);
	pf__atomic_init(&c->cold, NULL);
	c->signal.unused = 0;
	pf__uuid_v7(&c->id, pf__clock_raw_to_wall(now));
	if (parent != NULL)
		pf__ctx_retain(parent);
}

int
pf__ctx_new(pf__engine *g, pf_ctx *parent, uint8_t kind, const char *name,
    const char *fallback, pf_ctx **out)
{
	bool from_slab;
	pf_ctx *c = pf__record_alloc(sizeof(*c), &from_slab);
	if (c == NULL)
		return PF_ENOMEM;
	int64_t now = pf__clock_raw();
	pf__ctx_init(c, g, parent, kind, now);
	c->from_slab = from_slab;
	atomic_init(&c->started_at, now);
	int rc = pf__ctx_set_name(c, name, fallback);
	if (rc != 0) {
		pf__ctx_discard(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
pf__ctx_discard(pf_ctx *c)
{
	/* Not linked: detach from the parent by hand, so that the free does
	 * not unlink it, then drop the reference it held. */
	pf__assert(c->sibling.pprev == NULL);
	pf_ctx *parent = c->parent;
	c->parent = NULL;
	pf__ctx_release(c);
	pf__ctx_release(parent);
}

int
pf__ctx_link(pf_ctx *c)
{
	pf_ctx *p = c->parent;
	pf__spin_lock(&p->lock);
	pf__hlist_push(&p->children, &c->sibling);
	/* Under the lock: see the diagram at the top of this file. */
	int reason = pf__ctx_abort_reason(p);
	pf__spin_unlock(&p->lock);
	if (reason != 0)
		pf__ctx_abort(c, reason);
	return reason;
}

void
pf__ctx_retain(pf_ctx *c)
{
	/* Relaxed: taking a reference needs an existing one, which orders
	 * everything that matters (Linux's refcount-vs-atomic.rst). */
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

bool
pf__ctx_try_retain(pf_ctx *c)
{
	/* Relaxed, as for any increment: the caller holds the parent's lock,
	 * which keeps the record's memory (not its count) alive. */
	pf__assert(c->parent == NULL || pf__spin_held(&c->parent->lock));
	uint32_t n = pf__load_relaxed(&c->refs);
	while (n != 0)
		if (atomic_compare_exchange_weak_explicit(&c->refs, &n, n + 1,
			memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

#ifdef PF_DEBUG
/* The count of a freed record (see destroy()), and the smallest count
 * taken for a poisoned one: the slab's poison bytes read 0x6b6b6b6b. */
#define REFS_POISON 0xdeadbeefu
#define REFS_POISONED_MIN 0x6b6b6b6bu

/* Debug builds catch a release of a record with no reference left: a
 * double release, or one after the record was freed (pumped.h: a handle
 * is not used after its release), as long as its memory was not reused
 * meanwhile. */
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
		/* Linked (a record never linked was discarded without its
		 * parent); the node's links are the parent lock's. */
		pf__assert(c->sibling.pprev != NULL);
		pf__hlist_del(&c->sibling);
		pf__spin_unlock(&p->lock);
	}
	/* Nobody can reach c any more: no listener, child or waiter. */
	pf__assert(pf__hlist_empty(&c->children));
	if (c->name_owned) /* before the cold block that may hold it */
		pf__free((char *)pf__ctx_name(c));
	/* Relaxed: the count reached 0 with acquire; nobody else can
	 * install a cold block any more. */
	pf__cold *k = pf__load_relaxed(&c->cold);
	if (k != NULL) {
		/* The journal was closed when c's life ended (journal.c),
		 * and every placeholder was settled by its creator. */
		pf__assert(k->journal == NULL);
		/* Each module frees its part; most blocks have few parts. */
		if (k->tags != NULL)
			pf__tags_free(k);
		if (k->messages != NULL || k->inherited != NULL)
			pf__messages_free(k);
		if (k->subs != NULL)
			pf__subs_free(k);
		if (k->fd >= 0)
			pf__signal_free(k);
		pf__cold_free(k);
	}
#ifdef PF_DEBUG
	/* A later release of this record reads a poisoned count (heap
	 * memory keeps it; slab memory is poisoned past the guard). */
	atomic_store_explicit(&c->refs, REFS_POISON, memory_order_relaxed);
#endif
	const pf__ctx_class *cls = classes[c->kind];
	if (cls != NULL && cls->free != NULL)
		cls->free(c);
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
		if (c->kind != PF__CTX_FLOW) /* a flow's is its flow's */
			c->name = fallback;
		return 0;
	}
	pf__cold *k = NULL;
	if (c->kind == PF__CTX_FLOW && (k = pf__ctx_cold(c)) == NULL)
		return PF_ENOMEM;
	char *copy = pf__strdup(name);
	if (copy == NULL)
		return PF_ENOMEM;
	if (k != NULL)
		k->name = copy;
	else
		c->name = copy;
	c->name_owned = true;
	return 0;
}

void
pf__ctx_end_at(pf_ctx *c, int64_t now)
{
	/* "Once": a load and a store, not a CAS.  Only pf_ctx_end on another
	 * thread can race with the owner here, and then either timestamp is
	 * a right answer.  Release: pairs with the acquire in
	 * pf_ctx_completed_at(). */
	if (pf__load_relaxed(&c->completed_at) != 0)
		return;
	/* Not before the start, even if two CPUs' TSCs disagree slightly. */
	int64_t started = pf__load_relaxed(&c->started_at);
	if (now < started)
		now = started;
	if (now < c->created_at)
		now = c->created_at;
	pf__store_release(&c->completed_at, now);
}

/* ------------------------------------------------------------- abort */

static bool unfinished(pf_ctx *c);

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
	/* Observers hear of aborts that can still change something: not of
	 * finished records that a walk (dispose's) reaches while they are
	 * still held. */
	if (PF_PROBE_ON(ctx_aborted) && unfinished(c))
		PF_PROBE3(ctx_aborted, pf__uuid_half(&c->id, 0),
		    pf__uuid_half(&c->id, 1), reason);
	pf__trace *trace = pf__engine_trace(c->engine);
	if (trace != NULL && unfinished(c))
		pf__trace_abort(trace, pf__pool_current(c->engine->pool), &c->id,
		    reason, pf__clock_raw());
	/* A pending execution is claimed before any listener runs: a
	 * listener may take long, and no worker may start the handler
	 * meanwhile (pumped.h, pf_exec_abort).  It is published cancelled
	 * after them, so that it is not finished (and dispose still waits)
	 * while they run on its record. */
	const pf__ctx_class *cls = classes[c->kind];
	bool cancel = cls != NULL && cls->claim_cancel != NULL &&
	    cls->claim_cancel(c);
	pf__signal_fire(c);
	if (cancel)
		cls->cancel_claimed(c, reason);
	else if (c->kind == PF__CTX_STANDALONE)
		/* An aborted context has nothing left to time out; this also
		 * clears every standalone timer before dispose stops the
		 * wheel. */
		pf__ctx_cancel_timeout(c);
	return true;
}

/* The first live child of c after `after` (NULL: the first), retained.  A
 * record whose count is 0 is being freed: it has no live descendant (each
 * holds a reference on it) and nothing to abort. */
static pf_ctx *
live_child(pf_ctx *c, pf_ctx *after)
{
	pf__spin_lock(&c->lock);
	/* `after` is still linked: our reference keeps it in the list. */
	pf__hnode *n = after != NULL ? after->sibling.next : c->children.first;
	pf_ctx *r = NULL;
	for (; n != NULL && r == NULL; n = n->next) {
		pf_ctx *k = PF_CONTAINER_OF(n, pf_ctx, sibling);
		if (pf__ctx_try_retain(k))
			r = k;
	}
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

void
pf__ctx_walk(pf_ctx *c, void (*visit)(pf_ctx *k, unsigned depth, void *arg),
    void *arg)
{
	/* The abort walk's order and references, without its effects: every
	 * node is retained while the walk is in its subtree. */
	unsigned depth = 0;
	pf_ctx *cur = c;
	pf_ctx *child = live_child(cur, NULL);
	for (;;) {
		while (child != NULL) {
			visit(child, depth + 1, arg);
			cur = child;
			depth++;
			child = live_child(cur, NULL);
		}
		if (cur == c)
			return;
		pf_ctx *parent = cur->parent;
		child = live_child(parent, cur);
		pf__ctx_release(cur);
		cur = parent;
		depth--;
	}
}

/* ----------------------------------------------------------- timeouts */

/* Whether a timeout still applies: executions until their terminal
 * status, standalone contexts until they end. */
static bool
unfinished(pf_ctx *c)
{
	/* Acquire: pairs with pf__ctx_end_at()'s release store, and with
	 * the terminal status CAS in exec.c. */
	if (c->kind != PF__CTX_FLOW)
		return pf__load_acquire(&c->completed_at) == 0;
	uint32_t st = pf__exec_word((pf_exec *)c) & PF__ST_MASK;
	return st == PF_PENDING || st == PF_RUNNING || st == PF__ST_CANCELLING;
}

/* A flow context's inline timer (record.h), or NULL. */
static pf__inline_timer *
inline_timer(pf_ctx *c)
{
	/* Relaxed: the flag is immutable once the record is created. */
	if (c->kind == PF__CTX_FLOW &&
	    (pf__load_relaxed(&((pf_exec *)c)->state) & PF__F_TIMER_INLINE))
		return pf__exec_inline_timer((pf_exec *)c);
	return NULL;
}

static void
timer_fired_ctx(pf_ctx *c, bool fired)
{
	/* Finishing cancels the timer but may lose the race with this
	 * callback; a deadline that finds the work finished changes nothing.
	 * A cancelled timer only gives its reference back. */
	if (fired && unfinished(c)) {
		if (PF_PROBE_ON(timeout_fired))
			PF_PROBE2(timeout_fired, pf__uuid_half(&c->id, 0),
			    pf__uuid_half(&c->id, 1));
		pf__trace *trace = pf__engine_trace(c->engine);
		if (trace != NULL)
			pf__trace_timeout(trace, NULL, &c->id,
			    pf__clock_raw());
		pf__ctx_abort(c, PF_ETIMEDOUT);
	}
	/* A standalone context's timer holds a count of unfinished work
	 * (standalone.c); an execution's own count covers its timer. */
	if (c->kind == PF__CTX_STANDALONE)
		pf__engine_finished(c->engine);
	pf__ctx_release(c); /* the timer's reference */
}

static void
timer_fired(pf__timer_node *n, bool fired)
{
	timer_fired_ctx(PF_CONTAINER_OF(n, pf__cold, timer)->owner, fired);
}

static void
inline_timer_fired(pf__timer_node *n, bool fired)
{
	timer_fired_ctx(PF_CONTAINER_OF(n, pf__inline_timer, node)->owner,
	    fired);
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
	int64_t deadline = created + ms * 1000000;
	pf__ctx_retain(c);
	pf__inline_timer *it = inline_timer(c);
	if (it != NULL) {
		pf__timer_arm(c->engine->timers, &it->node, deadline,
		    inline_timer_fired);
		return;
	}
	pf__cold *k = pf__cold_of(c);
	pf__assert(k != NULL); /* made by the caller beforehand */
	pf__timer_arm(c->engine->timers, &k->timer, deadline, timer_fired);
}

void
pf__ctx_cancel_timeout(pf_ctx *c)
{
	/* No inline timer and no cold block: no timer.  A cancel of a node
	 * never armed, already cancelled or fired does nothing and does not
	 * touch the wheel (which dispose may have stopped by then);
	 * otherwise the timer thread gives the timer's reference back
	 * (timer_fired), whether the deadline or this cancel came first. */
	pf__inline_timer *it = inline_timer(c);
	if (it != NULL) {
		pf__timer_cancel(c->engine->timers, &it->node);
		return;
	}
	pf__cold *k = pf__cold_of(c);
	if (k == NULL)
		return;
	/*
	 * A standalone context's timer holds a count of unfinished work
	 * only until the timer thread has handled this cancel, which may
	 * be before pf__timer_cancel returns (it pushes, then reads the
	 * thread's sleep word): dispose could then stop and free the wheel
	 * under that read.  Its canceller is any thread (pf_ctx_abort,
	 * pf_ctx_end), holding no count of its own, so it holds one across
	 * the call; taken before the node's CAS, while the timer's count
	 * still stands, so dispose cannot see zero in between.  A flow's
	 * timer is cancelled by its finisher, whose own count covers it.
	 * Found by TSan in standalone_timeouts_racing_dispose_are_safe.
	 */
	bool hold = c->kind == PF__CTX_STANDALONE;
	if (hold)
		pf__engine_hold(c->engine);
	pf__timer_cancel(c->engine->timers, &k->timer);
	if (hold)
		pf__engine_finished(c->engine);
}

/* ------------------------------------------------------------ queries */

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
	if (PF_LIKELY(pf__load_acquire(&k->id_state) == 2))
		return k->id_text;
	uint8_t zero = 0;
	if (atomic_compare_exchange_strong_explicit(&k->id_state, &zero, 1,
		memory_order_acquire, memory_order_acquire)) {
		pf__uuid_format(&c->id, k->id_text);
		pf__store_release(&k->id_state, 2);
		return k->id_text;
	}
	while (pf__load_acquire(&k->id_state) != 2)
		pf__cpu_relax();
	return k->id_text;
}

const char *
pf_ctx_name(const pf_ctx *c)
{
	return c != NULL ? pf__ctx_name(c) : NULL;
}

pf_ctx *
pf_ctx_parent(const pf_ctx *c)
{
	if (c == NULL || c->parent == NULL || c->parent->kind == PF__CTX_ROOT)
		return NULL;
	return c->parent;
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
	return c != NULL ? wall(pf__load_acquire(&((pf_ctx *)c)->started_at)) :
	    0;
}

int64_t
pf_ctx_completed_at(const pf_ctx *c)
{
	/* Acquire: pairs with the release store in pf__ctx_end_at(). */
	return c != NULL ?
	    wall(pf__load_acquire(&((pf_ctx *)c)->completed_at)) : 0;
}

void *
pf_ctx_metadata(const pf_ctx *c)
{
	if (c == NULL)
		return NULL;
	pf__cold *k = pf__cold_of(c);
	return k != NULL ? k->metadata : NULL;
}

int
pf_ctx_abort(pf_ctx *c)
{
	if (c == NULL || c->kind == PF__CTX_ROOT)
		return PF_EINVAL;
	pf__ctx_abort(c, PF_ECANCELED);
	return 0;
}

int
pf_ctx_abort_as(pf_ctx *c, int reason)
{
	if (c == NULL || c->kind == PF__CTX_ROOT ||
	    (reason != PF_ECANCELED && reason != PF_ETIMEDOUT))
		return PF_EINVAL;
	pf__ctx_abort(c, reason);
	return 0;
}

bool
pf_ctx_aborted(const pf_ctx *c)
{
	return c != NULL && pf__ctx_abort_reason(c) != 0;
}

int
pf_ctx_throw_if_aborted(const pf_ctx *c)
{
	if (c == NULL)
		return PF_EINVAL;
	return pf__ctx_abort_reason(c);
}
