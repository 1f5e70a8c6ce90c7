/*
 * scope.c: the public API layer: scope, extensions chain, root and child
 * executions, fn steps, parallel groups, standalone contexts.
 *
 * Extensions list: an immutable array published through an atomic pointer
 * (release on publish, acquire on read), replaced whole by pf_scope_use
 * under the scope's mutex.  Replaced arrays are kept until the scope is
 * freed, so an operation that loaded an old array can finish with it.
 * With no extension registered the pointer is NULL and an operation costs
 * one load and a branch.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "barrier.h"
#include "clock.h"
#include "env.h"
#include "track.h"

static const uint32_t depth_default = 0;
static const bool parallel_default = false;

PF_EXTERN const pf_tag pf_flow_name_tag = { "flow.name", sizeof(const char *),
	NULL };
PF_EXTERN const pf_tag pf_flow_parent_name_tag = { "flow.parentName",
	sizeof(const char *), NULL };
PF_EXTERN const pf_tag pf_flow_depth_tag = { "flow.depth", sizeof(uint32_t),
	&depth_default };
PF_EXTERN const pf_tag pf_flow_is_parallel_tag = { "flow.isParallel",
	sizeof(bool), &parallel_default };

enum { SCOPE_OPEN, SCOPE_DISPOSING, SCOPE_DISPOSED };

/* This thread's chain of pf__running frames (track.h). */
static _Thread_local pf__running *tls_running PF_TLS_MODEL;

void
pf__running_enter(pf__running *r, pf_scope *s, bool waiter_run, bool slot)
{
	r->scope = s;
	r->slot = slot;
	r->outer = tls_running;
	r->waiter_runs = (r->outer != NULL ? r->outer->waiter_runs : 0) +
	    (waiter_run ? 1 : 0);
	tls_running = r;
}

void
pf__running_leave(pf__running *r)
{
	tls_running = r->outer;
}

unsigned
pf__running_waiter_runs(void)
{
	return tls_running != NULL ? tls_running->waiter_runs : 0;
}

bool
pf__running_holds_slot(const pf_scope *s)
{
	for (const pf__running *r = tls_running; r != NULL; r = r->outer)
		if (r->scope == s && r->slot)
			return true;
	return false;
}

void
pf__running_slots_give(void)
{
	for (const pf__running *r = tls_running; r != NULL; r = r->outer)
		if (r->slot)
			pf__pool_slot_give(r->scope->pool);
}

void
pf__running_slots_resume(void)
{
	for (const pf__running *r = tls_running; r != NULL; r = r->outer)
		if (r->slot)
			pf__pool_slot_resume(r->scope->pool);
}

static bool
running_in(const pf_scope *s)
{
	for (const pf__running *r = tls_running; r != NULL; r = r->outer)
		if (r->scope == s)
			return true;
	return false;
}

/* Spare workers allowed beyond the base count (PUMPED_MAX_SPARE). */
#define DEFAULT_MAX_SPARE 256

/* ---------------------------------------------------------- extensions */

struct pf_next {
	const void *thread; /* the thread that may call it (see pf_next_call) */
	pf_scope *scope;
	const pf__extlist *list;
	size_t index;
	const pf_operation *op;
	int (*run)(void *arg);
	void *arg;
	bool called;
};

int
pf_next_call(pf_next *next)
{
	/* Once, and on the wrap's own thread: from another thread the
	 * operation would run outside the scope's run slots. */
	if (next == NULL || next->called || next->thread != &tls_running)
		return PF_EINVAL;
	next->called = true;
	while (next->index < next->list->n) {
		const pf_extension *x = next->list->v[next->index];
		if (x->wrap != NULL) {
			pf_next inner = *next;
			inner.index++;
			inner.called = false;
			return x->wrap(next->scope, &inner, next->op, x->state);
		}
		/* An extension without wrap is transparent. */
		next->index++;
	}
	return next->run(next->arg);
}

int
pf__ext_run(pf_scope *s, const pf_operation *op, int (*run)(void *),
    void *arg)
{
	/* Acquire: pairs with the release store in pf_scope_use(), so the
	 * array's contents are visible. */
	const pf__extlist *l = PF_ACQUIRED(&s->exts,
	    atomic_load_explicit(&s->exts, memory_order_acquire));
	if (l == NULL || l->n == 0)
		return run(arg);
	pf_next next = { &tls_running, s, l, 0, op, run, arg, false };
	return pf_next_call(&next);
}

static int
add_extension(pf_scope *s, const pf_extension *ext)
{
	if (ext->init != NULL) {
		int rc = ext->init(s, ext->state);
		if (rc != 0)
			return rc;
	}
	pthread_mutex_lock(&s->lock);
	/* Relaxed: only writers, serialised by this mutex, store it. */
	pf__extlist *old = atomic_load_explicit(&s->exts, memory_order_relaxed);
	size_t n = old != NULL ? old->n : 0;
	pf__extlist *l = pf__malloc(sizeof(*l) + (n + 1) * sizeof(l->v[0]));
	if (l == NULL) {
		pthread_mutex_unlock(&s->lock);
		if (ext->dispose != NULL)
			ext->dispose(s, ext->state);
		return PF_ENOMEM;
	}
	if (n != 0)
		memcpy(l->v, old->v, n * sizeof(l->v[0]));
	l->v[n] = ext;
	l->n = n + 1;
	l->older = old;
	/* Release: publishes the filled array to pf__ext_run's acquire. */
	PF_HB_BEFORE(&s->exts);
	atomic_store_explicit(&s->exts, l, memory_order_release);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void
dispose_extensions(pf_scope *s)
{
	/* Acquire: pairs with the release in add_extension(). */
	const pf__extlist *l = PF_ACQUIRED(&s->exts,
	    atomic_load_explicit(&s->exts, memory_order_acquire));
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (l->v[i]->dispose != NULL)
			l->v[i]->dispose(s, l->v[i]->state);
}

/* --------------------------------------------------------------- scope */

static int
scope_open(const pf_scope *s)
{
	return atomic_load_explicit(&s->state, memory_order_acquire) ==
		SCOPE_OPEN ? 0 : PF_ESHUTDOWN;
}

/*
 * Entering against dispose:
 *
 *   creator (pf__scope_enter)          pf_scope_dispose
 *   stripe += 1                        state := DISPOSING (seq_cst)
 *   StoreLoad                          StoreLoad
 *   load state                         sum the stripes
 *
 * Either the creator sees DISPOSING and backs out, or dispose's sum counts
 * the execution it is creating: dispose never tears the pool down under a
 * creation in progress.  Why a sum of stripes read one by one is exact
 * when it reads 0: every execution counted was entered before the state
 * store (later ones back out), so its increment is visible to all of
 * dispose's loads; a decrement seen implies its increment was seen too.
 * So the sum is at least the number of executions whose finish dispose
 * has not seen, and 0 means none is left.
 *
 * The StoreLoad barriers.  A worker's stripe is written only by that
 * worker, so with membarrier(2) available it is a plain load and store,
 * and the creator's barrier is a compiler barrier: dispose pays instead
 * with pf__barrier_heavy() (barrier.h).  Otherwise (outside threads share
 * a stripe; old kernels; TSan) the stripe is a seq_cst RMW and the loads
 * are seq_cst.  Finishers' decrements become visible without a barrier,
 * so dispose re-sums on a short timed wait as well as on broadcasts.
 */
static void
stripe_add(pf_scope *s, long d)
{
	pf__worker *w = pf__pool_current(s->pool);
	if (w != NULL && s->asym) {
		pf__stripe *st = &s->unfinished[w->index];
		/* A load and a store: only this worker writes its stripe.
		 * Release (a plain store on x86): what the worker wrote
		 * before finishing happens before dispose's later work (the
		 * extensions' dispose callbacks), which read the sum with
		 * acquire. */
		PF_HB_BEFORE(&st->n); /* for unfinished_sum() */
		atomic_store_explicit(&st->n,
		    atomic_load_explicit(&st->n, memory_order_relaxed) + d,
		    memory_order_release);
		pf__barrier_light();
		return;
	}
	pf__stripe *st = &s->unfinished[w != NULL ? w->index :
	    s->n_stripes - 1];
	PF_HB_BEFORE(&st->n); /* for unfinished_sum() */
	atomic_fetch_add_explicit(&st->n, d, memory_order_seq_cst);
}

int
pf__scope_enter(pf_scope *s)
{
	stripe_add(s, 1);
	/* Seq_cst: after the stripe's increment (the StoreLoad argument
	 * above stripe_add()). */
	if (atomic_load_explicit(&s->state, memory_order_seq_cst) ==
	    SCOPE_OPEN)
		return 0;
	pf__scope_exec_finished(s);
	return PF_ESHUTDOWN;
}

void
pf__scope_hold(pf_scope *s)
{
	stripe_add(s, 1);
}

void
pf__scope_exec_finished(pf_scope *s)
{
	stripe_add(s, -1);
	/* Seq_cst: a finisher that sees the scope still open needs no
	 * broadcast (dispose re-sums on a 1 ms timed wait anyway). */
	if (atomic_load_explicit(&s->state, memory_order_seq_cst) !=
	    SCOPE_OPEN) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
	}
}

static long
unfinished_sum(pf_scope *s)
{
	long sum = 0;
	/* Seq_cst (acquire at least): after dispose's state store, and
	 * pairing with the workers' release stores and the seq_cst RMWs of
	 * stripe_add(). */
	for (unsigned i = 0; i < s->n_stripes; i++)
		sum += PF_ACQUIRED(&s->unfinished[i].n,
		    atomic_load_explicit(&s->unfinished[i].n,
		    memory_order_seq_cst));
	return sum;
}

int
pf_scope_create(pf_scope **out, const pf_scope_options *opts)
{
	pf_scope_options none = { 0 };
	if (out == NULL)
		return PF_EINVAL;
	if (opts == NULL)
		opts = &none;
	if ((opts->n_extensions != 0 && opts->extensions == NULL) ||
	    (opts->n_tags != 0 && opts->tags == NULL) ||
	    opts->threads > PF__MAX_THREADS)
		return PF_EINVAL;
	for (size_t i = 0; i < opts->n_extensions; i++)
		if (opts->extensions[i] == NULL)
			return PF_EINVAL;

	pf_scope *s = pf__aligned_alloc(PF_CACHELINE, sizeof(*s));
	if (s == NULL)
		return PF_ENOMEM;
	memset(s, 0, sizeof(*s));
	pf__ctx_init(&s->root, s, NULL, PF__CTX_ROOT, pf__clock_raw());
	s->root.name = "scope";
	atomic_init(&s->state, SCOPE_OPEN);
	PF_ATOMIC_OBJ(&s->state);
	atomic_init(&s->exts, NULL);
	PF_ATOMIC_OBJ(&s->exts);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->idle, &ca);
	pthread_condattr_destroy(&ca);

	/* Frees s through its root's last reference. */
	int rc = pf__ctx_seed_tags(&s->root, opts->tags, opts->n_tags);
	if (rc != 0) {
		pf__ctx_release(&s->root);
		return rc;
	}
	s->threads = opts->threads != 0 ? opts->threads : pf__default_threads();
	rc = pf__timers_start(&s->timers);
	if (rc != 0) {
		pf__ctx_release(&s->root);
		return rc;
	}
	pf__pool_config cfg = {
		.threads = s->threads,
		.max_spare = (unsigned)pf__env_uint("PUMPED_MAX_SPARE", 0,
		    PF__MAX_THREADS, DEFAULT_MAX_SPARE),
		.stack_size = (size_t)pf__env_uint("PUMPED_STACK_KB", 64,
				  1u << 20, 8192) * 1024,
		.on_start = pf__record_worker_start,
		.on_stop = pf__record_worker_stop,
	};
	rc = pf__pool_create(&s->pool, &cfg);
	if (rc != 0) {
		pf__timers_stop(s->timers);
		pf__ctx_release(&s->root);
		return rc;
	}
	s->asym = pf__barrier_init();
	s->n_stripes = s->pool->max_workers + 1;
	s->unfinished = pf__aligned_alloc(PF_CACHELINE,
	    s->n_stripes * sizeof(*s->unfinished));
	if (s->unfinished == NULL) {
		pf__pool_destroy(s->pool);
		pf__timers_stop(s->timers);
		pf__ctx_release(&s->root);
		return PF_ENOMEM;
	}
	for (unsigned i = 0; i < s->n_stripes; i++) {
		atomic_init(&s->unfinished[i].n, 0);
		PF_ATOMIC_OBJ(&s->unfinished[i].n);
	}
	for (size_t i = 0; i < opts->n_extensions; i++) {
		rc = add_extension(s, opts->extensions[i]);
		if (rc != 0) {
			dispose_extensions(s);
			pf__pool_destroy(s->pool);
			pf__timers_stop(s->timers);
			pf__ctx_release(&s->root);
			return rc;
		}
	}
	*out = s;
	return 0;
}

int
pf_scope_dispose(pf_scope *s)
{
	/* From one of the scope's own handlers or fn steps it would wait
	 * for itself; from a status callback or signal listener it may wait
	 * for the very transition (or timer) that runs it. */
	if (s == NULL || pf__pool_current(s->pool) != NULL || running_in(s) ||
	    pf__in_callback != 0)
		return PF_EINVAL;
	int open = SCOPE_OPEN;
	if (!atomic_compare_exchange_strong_explicit(&s->state, &open,
		SCOPE_DISPOSING, memory_order_seq_cst, memory_order_seq_cst))
		return PF_ESHUTDOWN;
	/* The heavy half of the StoreLoad pair described at
	 * pf__scope_enter(). */
	if (s->asym)
		pf__barrier_heavy();
	/* Cancels every pending execution and aborts every running one and
	 * every standalone context: they all descend from the root. */
	pf__ctx_abort(&s->root, PF_ECANCELED);
	pthread_mutex_lock(&s->lock);
	while (unfinished_sum(s) != 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->idle, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	dispose_extensions(s);
	/* Runs what is still queued (only stale entries of executions that
	 * already finished) and joins the workers. */
	pf__pool_destroy(s->pool);
	pf__timers_stop(s->timers);
	atomic_store_explicit(&s->state, SCOPE_DISPOSED, memory_order_release);
	/* The scope's own reference; records still held keep the memory. */
	pf__ctx_release(&s->root);
	return 0;
}

unsigned
pf_scope_threads(const pf_scope *s)
{
	return s != NULL ? s->threads : 0;
}

int
pf_scope_use(pf_scope *s, const pf_extension *ext)
{
	if (s == NULL || ext == NULL)
		return PF_EINVAL;
	int rc = scope_open(s);
	return rc != 0 ? rc : add_extension(s, ext);
}

/* ---------------------------------------------------------- executions */

/* The checks of every call that starts a flow execution.  Starting work
 * from a status callback or signal listener is refused (API.md Semantics
 * 2). */
static int
check_flow(const pf_flow *f, const void *input, const pf_exec_options *opts)
{
	if (f == NULL || f->handler == NULL ||
	    (f->input_size > 0 && input == NULL) ||
	    f->input_size > PF__MAX_DATA || f->output_size > PF__MAX_DATA ||
	    pf__in_callback != 0)
		return PF_EINVAL;
	if (opts != NULL && opts->n_tags != 0 && opts->tags == NULL)
		return PF_EINVAL;
	return 0;
}

int
pf_scope_exec(pf_scope *s, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out)
{
	if (s == NULL)
		return PF_EINVAL;
	int rc = check_flow(f, input, opts);
	if (rc == 0 && opts != NULL && opts->key != NULL)
		rc = PF_EINVAL; /* journal keys belong to child executions */
	if (rc == 0)
		rc = scope_open(s);
	if (rc != 0)
		return rc;
	return pf__exec_create(s, &s->root, f, input, opts, NULL, out);
}

int
pf_scope_run(pf_scope *s, const pf_flow *f, const void *input, void *output,
    const pf_exec_options *opts)
{
	pf_exec *e;
	int rc = pf_scope_exec(s, f, input, opts, &e);
	if (rc != 0)
		return rc;
	rc = pf__exec_wait_end(e, output);
	pf_exec_release(e);
	return rc;
}

/* The checks every child operation makes on its parent. */
static int
check_parent(pf_ctx *parent)
{
	if (parent == NULL || parent->kind == PF__CTX_ROOT)
		return PF_EINVAL;
	int rc = scope_open(parent->scope);
	if (rc != 0)
		return rc;
	/* Acquire: pairs with the abort CAS in ctx.c. */
	return PF_ACQUIRED(&parent->abort_reason,
	    atomic_load_explicit(&parent->abort_reason, memory_order_acquire));
}

/*
 * Journal lookup for key under parent.  Returns 1 with *found retained
 * when an execution is recorded, 0 with *slot holding a new placeholder
 * entry that the caller fills (or removes), 2 when the parent's journal is
 * closed (its life ended: run unjournaled), or a negative code.
 */
static int
journal_claim(pf_ctx *parent, const pf_flow *f, const char *key,
    pf_exec **found, pf__journal_entry **slot)
{
	size_t len = strlen(key);
	pf__journal_entry *fresh = NULL;
	/* The journal lives in the parent's cold block. */
	pf__cold *k = pf__ctx_cold(parent);
	if (k == NULL)
		return PF_ENOMEM;
	for (;;) {
		pf__spin_lock(&parent->lock);
		if (!pf__ctx_journal_open(parent)) {
			pf__spin_unlock(&parent->lock);
			pf__free(fresh);
			return 2;
		}
		pf__journal_entry **link = pf__journal_find(parent, key);
		pf__journal_entry *j = *link;
		if (j != NULL && j->exec == NULL) {
			/* Its first caller is creating it: wait for that. */
			pf__spin_unlock(&parent->lock);
			sched_yield();
			continue;
		}
		if (j != NULL && pf_exec_status(j->exec) == PF_CANCELLED) {
			/* A cancelled entry is dropped: run anew. */
			*link = j->next;
			pf__spin_unlock(&parent->lock);
			pf_exec_release(j->exec);
			pf__free(j);
			continue;
		}
		if (j != NULL && j->flow != f) {
			/* The key belongs to another flow's call: its result
			 * is not this flow's (API.md Semantics 9). */
			pf__spin_unlock(&parent->lock);
			pf__free(fresh);
			return PF_EINVAL;
		}
		if (j != NULL) {
			pf__ctx_retain(&j->exec->ctx);
			*found = j->exec;
			pf__spin_unlock(&parent->lock);
			pf__free(fresh);
			return 1;
		}
		if (fresh != NULL) {
			fresh->next = NULL;
			fresh->exec = NULL;
			fresh->flow = f;
			*link = fresh;
			pf__spin_unlock(&parent->lock);
			*slot = fresh;
			return 0;
		}
		pf__spin_unlock(&parent->lock);
		fresh = pf__malloc(sizeof(*fresh) + len + 1);
		if (fresh == NULL)
			return PF_ENOMEM;
		memcpy(fresh->key, key, len + 1);
	}
}

static void
journal_settle(pf_ctx *parent, pf__journal_entry *slot, pf_exec *e)
{
	pf__cold *k = pf__cold_of(parent); /* made by journal_claim */
	pf__spin_lock(&parent->lock);
	if (e != NULL && !k->journal_closed) {
		pf__ctx_retain(&e->ctx); /* the journal's reference */
		slot->exec = e;
		pf__spin_unlock(&parent->lock);
		return;
	}
	/* Creation failed, or the journal closed meanwhile: remove the
	 * placeholder. */
	for (pf__journal_entry **link = &k->journal; *link != NULL;
	     link = &(*link)->next) {
		if (*link == slot) {
			*link = slot->next;
			break;
		}
	}
	pf__spin_unlock(&parent->lock);
	pf__free(slot);
}

/*
 * A child execution in two phases (see pf__exec_prepare), so that parallel
 * can prepare every call before it starts any.  A prepared child is either
 * a journal hit (an execution recorded under its key, retained) or a new
 * record not yet started, with its journal placeholder when keyed.
 */
struct child {
	pf_exec *e;
	bool hit;
	pf__journal_entry *slot;
};

static int
child_prepare(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf__group *g, struct child *c)
{
	int rc = check_flow(f, input, opts);
	if (rc == 0)
		rc = check_parent(parent);
	if (rc != 0)
		return rc;
	c->hit = false;
	c->slot = NULL;
	if (opts != NULL && opts->key != NULL) {
		rc = journal_claim(parent, f, opts->key, &c->e, &c->slot);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			c->hit = true;
			return 0;
		}
		/* rc 2: the journal is closed; run unjournaled. */
	}
	rc = pf__exec_prepare(parent->scope, parent, f, input, opts, g, &c->e);
	if (rc != 0 && c->slot != NULL)
		journal_settle(parent, c->slot, NULL);
	return rc;
}

static void
child_start(pf_ctx *parent, struct child *c, const pf_exec_options *opts,
    pf_exec **out, bool queue)
{
	if (!c->hit) {
		/* Keeps the creation's reference in c->e. */
		pf__exec_start(c->e, opts, &c->e, queue);
		if (c->slot != NULL)
			journal_settle(parent, c->slot, c->e);
	}
	if (out != NULL)
		*out = c->e;
	else
		pf_exec_release(c->e);
}

static void
child_abandon(pf_ctx *parent, struct child *c)
{
	if (c->hit) {
		pf_exec_release(c->e);
		return;
	}
	pf__exec_discard(c->e);
	if (c->slot != NULL)
		journal_settle(parent, c->slot, NULL);
}

static int
child_exec(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf__group *g, pf_exec **out, bool queue)
{
	struct child c;
	int rc = child_prepare(parent, f, input, opts, g, &c);
	if (rc == 0)
		child_start(parent, &c, opts, out, queue);
	return rc;
}

int
pf_ctx_exec(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out)
{
	return child_exec(parent, f, input, opts, NULL, out, true);
}

int
pf_ctx_run(pf_ctx *parent, const pf_flow *f, const void *input, void *output,
    const pf_exec_options *opts)
{
	/*
	 * On a worker of the scope, with stack to spare, the child is not
	 * queued at all: the wait would claim it from the own deque anyway,
	 * so run it here at once and skip the push, the take (and its
	 * fence) and the queue's reference.  Elsewhere it goes through the
	 * pool as usual.
	 */
	pf__worker *w = parent != NULL && parent->kind != PF__CTX_ROOT ?
	    pf__pool_current(parent->scope->pool) : NULL;
	bool here = w != NULL && pf__worker_can_help(w);
	pf_exec *e;
	int rc = child_exec(parent, f, input, opts, NULL, &e, !here);
	if (rc != 0)
		return rc;
	if (here)
		pf__exec_run_here(e, w);
	rc = pf__exec_wait_end(e, output);
	pf_exec_release(e);
	return rc;
}

/* ------------------------------------------------------------- fn steps */

struct fn_call {
	pf_fn fn;
	pf_ctx *child;
	void *arg;
};

static int
call_fn(void *arg)
{
	struct fn_call *c = arg;
	return c->fn(c->child, c->arg);
}

/* A bare child context (fn step or standalone), linked under parent. */
static int
new_context(pf_scope *s, pf_ctx *parent, uint8_t kind, const char *name,
    const char *fallback, pf_ctx **out)
{
	bool from_slab;
	pf_ctx *c = pf__record_alloc(sizeof(*c), &from_slab);
	if (c == NULL)
		return PF_ENOMEM;
	int64_t now = pf__clock_raw();
	pf__ctx_init(c, s, parent, kind, now);
	c->from_slab = from_slab;
	atomic_init(&c->started_at, now);
	int rc = pf__ctx_set_name(c, name, fallback);
	if (rc != 0) {
		c->parent = NULL;
		pf__ctx_release(c);
		pf__ctx_release(parent);
		return rc;
	}
	*out = c;
	return 0;
}

int
pf_ctx_exec_fn(pf_ctx *parent, const char *name, pf_fn fn, void *arg)
{
	if (fn == NULL || pf__in_callback != 0)
		return PF_EINVAL;
	int rc = check_parent(parent);
	if (rc != 0)
		return rc;
	/* Steps nest on the caller's stack: refused once its budget for
	 * nesting is spent, as helping is (API.md Semantics 5). */
	if (!pf__thread_can_nest())
		return PF_EAGAIN;
	/* Counted as unfinished while it runs, so that dispose does not
	 * dispose the extensions under its wrap on an outside thread. */
	pf_scope *s = parent->scope;
	rc = pf__scope_enter(s);
	if (rc != 0)
		return rc;
	pf_ctx *child;
	rc = new_context(s, parent, PF__CTX_FN, name, "fn", &child);
	if (rc != 0) {
		pf__scope_exec_finished(s);
		return rc;
	}
	pf__ctx_link(child);
	struct fn_call call = { fn, child, arg };
	pf_operation op = {
		.kind = PF_OP_EXECUTION,
		.target = PF_TARGET_FN,
		.context = child,
		.name = child->name,
	};
	pf__running r;
	pf__running_enter(&r, parent->scope, false, false);
	rc = pf__ext_run(parent->scope, &op, call_fn, &call);
	pf__running_leave(&r);
	if (rc != 0) {
		pf__ctx_record_error(child, rc);
		pf__ctx_pass_message(child);
	}
	pf__ctx_end_at(child, pf__clock_raw());
	pf__ctx_end_life(child);
	pf__ctx_release(child);
	pf__scope_exec_finished(s);
	return rc;
}

/* ------------------------------------------------------------- parallel */

/* Preparation order of a group's calls: see run_parallel(). */
struct call_order {
	const char *key; /* NULL: no journal key */
	size_t idx;
};

struct par {
	pf_ctx *ctx;
	pf_call *calls;
	size_t n;
	bool settled;
	pf__group group;
	struct child *children;    /* n slots */
	struct call_order *order;  /* n slots */
	size_t *alias;             /* n slots: first call with the same key,
	                              or n */
	pf_parallel_stats stats;
};

static int
order_cmp(const void *a, const void *b)
{
	const struct call_order *x = a, *y = b;
	if (x->key != NULL && y->key != NULL) {
		int c = strcmp(x->key, y->key);
		if (c != 0)
			return c;
	} else if (x->key != y->key) {
		return x->key == NULL ? -1 : 1;
	}
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Keyed calls are prepared in key order.  Preparing one leaves a journal
 * placeholder that a concurrent caller with the same key waits on; two
 * groups preparing crossing keys in their own orders would each wait on
 * the other's placeholder forever.  In one global order, a group only
 * waits for keys after all the keys it holds, so no cycle can form.
 * Sorting also puts a group's calls with equal keys side by side: all but
 * the first share the first's execution.
 */
static int
plan_order(struct par *p)
{
	for (size_t i = 0; i < p->n; i++) {
		const pf_exec_options *o = p->calls[i].opts;
		p->order[i].key = o != NULL ? o->key : NULL;
		p->order[i].idx = i;
	}
	qsort(p->order, p->n, sizeof(*p->order), order_cmp);
	for (size_t k = 0; k < p->n; k++) {
		struct call_order *o = &p->order[k];
		bool dup = k > 0 && o->key != NULL && p->order[k - 1].key != NULL &&
		    strcmp(o->key, p->order[k - 1].key) == 0;
		p->alias[o->idx] = dup ? (p->alias[p->order[k - 1].idx] < p->n ?
		    p->alias[p->order[k - 1].idx] : p->order[k - 1].idx) : p->n;
		/* One key, two flows: as for two separate calls (API.md
		 * Semantics 9). */
		if (dup && p->calls[o->idx].flow !=
		    p->calls[p->order[k - 1].idx].flow)
			return PF_EINVAL;
	}
	return 0;
}

/*
 * A call's message (pf_call.message): NULL when it completed, else its
 * error's text, copied into the calling context when it is the call's own
 * (pf_ctx_fail's or inherited), so it lives as long as that context.
 */
static const char *
call_message(pf_ctx *caller, pf_exec *e, int rc)
{
	if (rc == 0)
		return NULL;
	const char *own = pf__ctx_own_message(&e->ctx);
	const char *kept = own != NULL ? pf__ctx_keep_text(caller, own) : NULL;
	return kept != NULL ? kept : pf_strerror(rc);
}

static int
run_parallel(void *arg)
{
	struct par *p = arg;
	pf__group *g = &p->group;
	int planned = plan_order(p);
	if (planned != 0) {
		for (size_t j = 0; j < p->n; j++) {
			p->calls[j].result = planned;
			p->calls[j].status = PF_CANCELLED;
			p->calls[j].message = pf_strerror(planned);
		}
		return planned;
	}
	/* Prepare every call before starting any: an allocation failure
	 * then returns PF_ENOMEM with nothing started. */
	for (size_t k = 0; k < p->n; k++) {
		size_t i = p->order[k].idx;
		pf_call *c = &p->calls[i];
		int rc = p->alias[i] < p->n ? 0 :
		    child_prepare(p->ctx, c->flow, c->input, c->opts, g,
			&p->children[i]);
		if (rc != 0) {
			for (size_t q = k; q-- > 0;) {
				size_t j = p->order[q].idx;
				if (p->alias[j] == p->n)
					child_abandon(p->ctx, &p->children[j]);
			}
			/* Nothing ran: every call reports why. */
			for (size_t j = 0; j < p->n; j++) {
				p->calls[j].result = rc;
				p->calls[j].status = PF_CANCELLED;
				p->calls[j].message = pf_strerror(rc);
			}
			return rc;
		}
	}
	/* On a worker with stack to spare, the last call is not queued: the
	 * reverse wait below would claim it first anyway, so it runs here
	 * (as pf_ctx_run does) once every call has started. */
	pf__worker *w = pf__pool_current(p->ctx->scope->pool);
	bool here = w != NULL && pf__worker_can_help(w) && p->n > 0 &&
	    p->alias[p->n - 1] >= p->n;
	/* Started in call order; a call sharing an earlier call's key takes
	 * that (already started) execution. */
	for (size_t i = 0; i < p->n; i++) {
		pf_exec *e;
		if (p->alias[i] < p->n) {
			e = pf_exec_retain(atomic_load_explicit(
			    &g->execs[p->alias[i]], memory_order_relaxed));
		} else {
			child_start(p->ctx, &p->children[i],
			    p->calls[i].opts, &e, !(here && i == p->n - 1));
		}
		/* Seq_cst, with group_failed() in exec.c: either the failing
		 * call sees this slot and aborts e, or we see its failure. */
		PF_HB_BEFORE(&g->execs[i]);
		atomic_store_explicit(&g->execs[i], e, memory_order_seq_cst);
		if (!p->settled &&
		    atomic_load_explicit(&g->failed, memory_order_seq_cst) != 0)
			pf_exec_abort(e);
	}
	if (here)
		pf__exec_run_here(atomic_load_explicit(&g->execs[p->n - 1],
		    memory_order_relaxed), w);
	/* The slots are written only by this thread; the relaxed loads of
	 * them here and above read our own stores.  Wait in reverse: the
	 * last started is the likeliest still queued on our own deque, so a
	 * worker runs it inline. */
	bool starved = false;
	for (size_t i = p->n; i-- > 0;) {
		pf_exec *e = atomic_load_explicit(&g->execs[i],
		    memory_order_relaxed);
		pf_call *c = &p->calls[i];
		/* Waited to the end, whatever happens: the calls refer to
		 * this frame (the group).  One that nothing could run was
		 * aborted: PF_EAGAIN. */
		c->result = pf__exec_wait_end(e, c->output);
		starved |= c->result == PF_EAGAIN &&
		    pf_exec_status(e) == PF_CANCELLED;
		c->status = pf_exec_status(e);
		c->message = call_message(p->ctx, e, c->result);
	}
	for (size_t i = 0; i < p->n; i++)
		pf_exec_release(atomic_load_explicit(&g->execs[i],
		    memory_order_relaxed));
	p->stats.total = p->n;
	for (size_t i = 0; i < p->n; i++) {
		if (p->calls[i].status == PF_COMPLETED)
			p->stats.succeeded++;
		else if (p->calls[i].status == PF_CANCELLED)
			p->stats.cancelled++;
	}
	p->stats.failed = p->stats.total - p->stats.succeeded;
	if (p->settled)
		return 0;
	if (starved)
		return PF_EAGAIN;
	/* Every call is DONE here (waited), and a failing call sets the
	 * word before its DONE: acquire is more than enough. */
	int first = PF_ACQUIRED(&g->failed,
	    atomic_load_explicit(&g->failed, memory_order_acquire));
	if (first != 0)
		return first;
	for (size_t i = 0; i < p->n; i++)
		if (p->calls[i].result != 0)
			return p->calls[i].result;
	return 0;
}

static int
parallel(pf_ctx *c, pf_call *calls, size_t n, pf_parallel_stats *stats,
    bool settled)
{
	/* Defined whatever happens: all zero until calls ran. */
	if (stats != NULL)
		*stats = (pf_parallel_stats){ 0, 0, 0, 0 };
	if (c == NULL || (n != 0 && calls == NULL) || pf__in_callback != 0)
		return PF_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int rc = check_flow(calls[i].flow, calls[i].input,
		    calls[i].opts);
		if (rc != 0)
			return rc;
	}
	int rc = check_parent(c);
	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	/* Counted as unfinished while it runs, so that dispose does not
	 * dispose the extensions under a group's wrap on an outside thread. */
	rc = pf__scope_enter(c->scope);
	if (rc != 0)
		return rc;
	struct par p = { .ctx = c, .calls = calls, .n = n, .settled = settled };
	/* One block for the four per-call arrays (on the stack when small). */
	size_t per_call = sizeof(*p.group.execs) + sizeof(*p.children) +
	    sizeof(*p.order) + sizeof(*p.alias);
	if (n > SIZE_MAX / per_call) {
		pf__scope_exec_finished(c->scope);
		return PF_EINVAL;
	}
	alignas(16) unsigned char small[8 * (sizeof(void *) +
	    sizeof(struct child) + sizeof(struct call_order) + sizeof(size_t))];
	unsigned char *block = n <= 8 ? small : pf__malloc(n * per_call);
	if (block == NULL) {
		pf__scope_exec_finished(c->scope);
		return PF_ENOMEM;
	}
	/* Largest alignment first: children, order, then the word arrays. */
	p.children = (struct child *)(void *)block;
	p.order = (struct call_order *)(void *)(block + n * sizeof(*p.children));
	p.group.execs = (_Atomic(pf_exec *) *)(void *)((unsigned char *)p.order +
	    n * sizeof(*p.order));
	p.alias = (size_t *)(void *)((unsigned char *)p.group.execs +
	    n * sizeof(*p.group.execs));
	p.group.n = n;
	p.group.settled = settled;
	for (size_t i = 0; i < n; i++) {
		atomic_init(&p.group.execs[i], NULL);
		PF_ATOMIC_OBJ(&p.group.execs[i]);
	}
	atomic_init(&p.group.failed, 0);
	pf_operation op = {
		.kind = PF_OP_EXECUTION,
		.target = PF_TARGET_PARALLEL,
		.context = c,
		.name = "parallel",
		.input = calls,
		.count = n,
		.settled = settled,
	};
	rc = pf__ext_run(c->scope, &op, run_parallel, &p);
	if (block != small)
		pf__free(block);
	pf__scope_exec_finished(c->scope);
	/* Still zero when nothing started (an allocation failed). */
	if (stats != NULL)
		*stats = p.stats;
	return rc;
}

int
pf_ctx_parallel(pf_ctx *c, pf_call *calls, size_t n, pf_parallel_stats *stats)
{
	return parallel(c, calls, n, stats, false);
}

int
pf_ctx_parallel_settled(pf_ctx *c, pf_call *calls, size_t n,
    pf_parallel_stats *stats)
{
	return parallel(c, calls, n, stats, true);
}

/* ---------------------------------------------------- standalone contexts */

int
pf_scope_create_execution(pf_scope *s, const pf_ctx_options *opts,
    pf_ctx **out)
{
	if (s == NULL || out == NULL ||
	    (opts != NULL && opts->n_tags != 0 && opts->tags == NULL))
		return PF_EINVAL;
	/* Counted as unfinished while it is being built, so that dispose
	 * cannot stop the timer wheel under it. */
	int rc = scope_open(s);
	if (rc == 0)
		rc = pf__scope_enter(s);
	if (rc != 0)
		return rc;
	pf_ctx *c;
	rc = new_context(s, &s->root, PF__CTX_STANDALONE,
	    opts != NULL ? opts->name : NULL, "execution", &c);
	if (rc != 0) {
		pf__scope_exec_finished(s);
		return rc;
	}
	atomic_init(&c->handles, 1);
	if (opts != NULL) {
		rc = pf__ctx_seed_tags(c, opts->tags, opts->n_tags);
		/* Metadata and a timeout's timer node live in the cold block. */
		pf__cold *k = NULL;
		if (rc == 0 && (opts->timeout_ms != 0 ||
			opts->metadata != NULL) &&
		    (k = pf__ctx_cold(c)) == NULL)
			rc = PF_ENOMEM;
		if (k != NULL)
			k->metadata = opts->metadata;
		if (rc != 0) {
			pf_ctx *p = c->parent;
			c->parent = NULL;
			pf__ctx_release(c);
			pf__ctx_release(p);
			pf__scope_exec_finished(s);
			return rc;
		}
	}
	/* Armed before it is linked: an abort at link time then finds the
	 * timer and cancels it.  An armed timer keeps the count taken above
	 * until its callback gives it back (ctx.c, timer_fired): a cancel
	 * from pf_ctx_end, pf_ctx_release or an abort on any thread then
	 * always finds the wheel alive, since dispose waits for the count. */
	bool armed = opts != NULL && opts->timeout_ms != 0;
	if (armed)
		pf__ctx_arm_timeout(c, opts->timeout_ms);
	pf__ctx_link(c);
	if (!armed)
		pf__scope_exec_finished(s);
	*out = c;
	return 0;
}

/* --------------------------------------------------------------- names */

const char *
pf_status_name(pf_status s)
{
	switch (s) {
	case PF_PENDING:
		return "pending";
	case PF_RUNNING:
		return "running";
	case PF_COMPLETED:
		return "completed";
	case PF_FAILED:
		return "failed";
	case PF_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

const char *
pf_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
	case PF_EINVAL:
		return "invalid argument";
	case PF_ENOMEM:
		return "out of memory";
	case PF_ECANCELED:
		return "execution aborted";
	case PF_ETIMEDOUT:
		return "execution timed out";
	case PF_ENOENT:
		return "tag not found";
	case PF_EAGAIN:
		/* Also a wait or step with no thread or stack left to run
		 * the work, and a thread that could not be created. */
		return "not finished yet, or no thread available to run it";
	case PF_ESHUTDOWN:
		return "scope is disposed or disposing";
	}
	return code <= PF_EUSER ? "user error" : "unknown error";
}
