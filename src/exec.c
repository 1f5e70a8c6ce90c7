/*
 * exec.c: flow executions: status machine, callbacks, waiting.
 *
 * Status word (pf_exec.state): the status in the low 3 bits, plus flags
 * SUBS (dynamic subscribers exist), WAITERS (a waiter is registered) and
 * DONE (terminal callbacks returned; the result is final).  Transitions:
 *
 *   PENDING --CAS by the runner--> RUNNING --CAS--> COMPLETED/FAILED/CANCELLED
 *   PENDING --CAS by an aborter--> CANCELLING --store--> CANCELLED
 *
 * A CAS decides start against cancel: exactly one wins.  The winner owns
 * the record's result fields; it writes the result, the context's error
 * and completed_at, then publishes the terminal status with release order
 * (readers of the status acquire), then runs the status callbacks, then
 * sets DONE (acq_rel) and wakes the waiters registered before it.  Waiters
 * and pf_exec_try look at DONE, so they return only after the callbacks.
 * With no callback to run (no on_status, no subscriber), the terminal
 * status and DONE are set by the same CAS.
 *
 * Waiter registration against completion:
 *
 *   waiter (under ctx.lock)           finisher
 *   old = fetch_or(WAITERS)           old = CAS/fetch_or setting DONE
 *   if old has DONE: return           if old has WAITERS:
 *   link node                           lock; signal and unpark each; unlock
 *
 * Both are RMWs on one word, so one sees the other's bit.  The finisher
 * unparks under ctx.lock and a woken waiter takes that lock once before
 * it returns, so the waiter's stack node and thread-local parker are never
 * touched after the waiter is gone.
 *
 * Subscribers (pf_exec_on_status) use the same word: a subscriber sets
 * SUBS under ctx.lock and reads the status from that same RMW; a finisher
 * whose CAS saw SUBS delivers to the list, each node remembering the last
 * status it was given so that nobody is told twice.
 */
#include "config.h"

#include <sched.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "track.h"

/* A dynamic subscriber.  All fields are protected by the context's lock.
 * busy counts calls of fn running now (it runs without the lock); a
 * subscriber removed meanwhile is freed by the last of them. */
struct pf__sub {
	pf__sub *next;
	pf_status_fn fn;
	void *data;
	uint32_t seen; /* last status delivered or read at subscription */
	uint32_t busy;
	bool removed;
	bool awaited; /* off_status waits for busy and frees it itself */
};

_Thread_local unsigned pf__in_callback PF_TLS_MODEL;

/* The subscribers this thread is calling now, innermost first (a callback
 * may abort another execution, whose subscribers then run inside it), so
 * that pf_exec_off_status from inside one of them does not wait for it. */
struct sub_frame {
	const pf__sub *sub;
	struct sub_frame *outer;
};
static _Thread_local struct sub_frame *tls_subs PF_TLS_MODEL;

static bool
calling_here(const pf__sub *s)
{
	for (const struct sub_frame *f = tls_subs; f != NULL; f = f->outer)
		if (f->sub == s)
			return true;
	return false;
}

/* The executions whose handlers run on this thread's stack now, innermost
 * first: waiting on one of them would wait for itself. */
struct run_frame {
	const pf_exec *e;
	struct run_frame *outer;
};
static _Thread_local struct run_frame *tls_runs PF_TLS_MODEL;

static bool
running_here(const pf_exec *e)
{
	for (const struct run_frame *f = tls_runs; f != NULL; f = f->outer)
		if (f->e == e)
			return true;
	return false;
}

struct pf__waiter {
	pf__waiter *next, *prev;
	pf__parker *parker;
	atomic_bool signaled;
};

static uint32_t
status_of(uint32_t word)
{
	uint32_t st = word & PF__ST_MASK;
	return st == PF__ST_CANCELLING ? PF_PENDING : st;
}

static bool
is_done(const pf_exec *e)
{
	/* Acquire: pairs with the CAS or fetch_or that sets DONE in settle(), so
	 * the result and output are visible. */
	return (PF_ACQUIRED(&((pf_exec *)e)->state,
		    atomic_load_explicit(&((pf_exec *)e)->state,
		    memory_order_acquire)) & PF__F_DONE) != 0;
}

/* ------------------------------------------------------------ callbacks */

/*
 * Delivers status st to the subscribers that have not seen it, one at a
 * time: each is picked (and marked busy) under the lock and called without
 * it, so a subscriber removed before its turn is never called, and one
 * removed during its call is waited for (or, from inside that call, freed
 * here).  The list may change during a call: the search restarts from the
 * head, and `seen` says who was told.
 */
static void
deliver_subs(pf_exec *e, uint32_t st)
{
	for (;;) {
		pf__spin_lock(&e->ctx.lock);
		/* SUBS is set only after the cold block was made. */
		pf__sub *s = pf__cold_of(&e->ctx)->subs;
		while (s != NULL && s->seen >= st)
			s = s->next;
		if (s == NULL) {
			pf__spin_unlock(&e->ctx.lock);
			return;
		}
		s->seen = st;
		s->busy++;
		pf__spin_unlock(&e->ctx.lock);
		/* Without the lock: a callback may abort, subscribe, ... */
		struct sub_frame frame = { s, tls_subs };
		tls_subs = &frame;
		pf__in_callback++;
		s->fn(e, (pf_status)st, s->data);
		pf__in_callback--;
		tls_subs = frame.outer;
		pf__spin_lock(&e->ctx.lock);
		bool gone = --s->busy == 0 && s->removed && !s->awaited;
		pf__spin_unlock(&e->ctx.lock);
		if (gone)
			pf__free(s);
	}
}

static inline void
deliver(pf_exec *e, uint32_t st, uint32_t flags)
{
	if (e->on_status != NULL) {
		pf__in_callback++;
		e->on_status(e, (pf_status)st, e->on_status_data);
		pf__in_callback--;
	}
	if (flags & PF__F_SUBS)
		deliver_subs(e, st);
}

/* --------------------------------------------------------- transitions */

/* PENDING -> to, keeping the flags.  Returns the old word, or UINT32_MAX
 * when the execution was no longer pending. */
static uint32_t
leave_pending(pf_exec *e, uint32_t to)
{
	/* Relaxed: only a first guess; the CAS below validates it. */
	uint32_t old = atomic_load_explicit(&e->state, memory_order_relaxed);
	do {
		if ((old & PF__ST_MASK) != PF_PENDING)
			return UINT32_MAX;
		/* Acquire on success: the winner then reads everything the
		 * creator wrote before publishing the record. */
	} while (!atomic_compare_exchange_weak_explicit(&e->state, &old,
	    (old & ~PF__ST_MASK) | to, memory_order_acquire,
	    memory_order_relaxed));
	PF_HB_AFTER(&e->state);
	return old;
}

static void
wake_waiters(pf_exec *e)
{
	pf__spin_lock(&e->ctx.lock);
	while (e->waiters != NULL) {
		pf__waiter *w = e->waiters;
		e->waiters = w->next;
		pf__parker *p = w->parker;
		/* Release: pairs with the waiter's acquire load of signaled.
		 * The node may be gone once this is seen, hence p above. */
		PF_HB_BEFORE(&w->signaled);
		atomic_store_explicit(&w->signaled, true, memory_order_release);
		pf__parker_unpark(p);
	}
	pf__spin_unlock(&e->ctx.lock);
}

static void
group_failed(pf_exec *e)
{
	pf__group *g = e->group;
	int zero = 0;
	/* Seq_cst, with the seq_cst store and load in start_calls(): either
	 * we see a call's slot or its starter sees our failure. */
	PF_HB_BEFORE(&g->failed);
	if (!atomic_compare_exchange_strong_explicit(&g->failed, &zero,
		e->result, memory_order_seq_cst, memory_order_seq_cst))
		return;
	for (size_t i = 0; i < g->n; i++) {
		pf_exec *o = PF_ACQUIRED(&g->execs[i],
		    atomic_load_explicit(&g->execs[i], memory_order_seq_cst));
		if (o != NULL && o != e)
			pf_exec_abort(o);
	}
}

/* The journal key, or NULL (immutable once the execution started). */
static inline const char *
exec_key(const pf_exec *e)
{
	pf__cold *k = pf__cold_of(&e->ctx);
	return k != NULL ? k->key : NULL;
}

static void
drop_journal_entry(pf_exec *e)
{
	pf_ctx *p = e->ctx.parent;
	pf__spin_lock(&p->lock);
	pf__journal_entry **link = pf__journal_find(p,
	    pf__cold_of(&e->ctx)->key);
	pf__journal_entry *j = *link;
	bool mine = j != NULL && j->exec == e;
	if (mine)
		*link = j->next;
	pf__spin_unlock(&p->lock);
	if (mine) {
		pf__free(j);
		pf__ctx_release(&e->ctx); /* the journal's reference */
	}
}

/*
 * Publishes the terminal status st (the result is written) and finishes:
 * callbacks, journal, DONE, waiters.  Only the owner of the record's state
 * (the runner, or the aborter that claimed it pending) calls it, so the CAS
 * fails only for a concurrent flag change.  When no callback can run, the
 * terminal status and DONE go out in one CAS.
 */
static void
settle(pf_exec *e, uint32_t st)
{
	pf__ctx_cancel_timeout(&e->ctx);
	/* Before DONE: the group lives on the stack of a caller that returns
	 * once every call is DONE. */
	/* Any call that does not complete fails the group: one that failed,
	 * or was cancelled by its own timeout or abort.  (Calls the group
	 * itself aborted find the failure word already set.) */
	if (e->group != NULL && !e->group->settled && st != PF_COMPLETED)
		group_failed(e);
	/* Before DONE too: the parent's handler, once its wait returns,
	 * finds the message it may take (API.md Semantics 1). */
	if (st != PF_COMPLETED)
		pf__ctx_pass_message(&e->ctx);
	/* Relaxed: only a first guess; the CAS below validates it. */
	uint32_t old = atomic_load_explicit(&e->state, memory_order_relaxed);
	uint32_t done;
	/* Release: the result, error and completed_at written before are
	 * visible to whoever acquires the status.  Seq_cst for the journal
	 * handshake in ctx.c (free on x86: a locked CAS is a full barrier). */
	PF_HB_BEFORE(&e->state);
	do {
		done = e->on_status == NULL && !(old & PF__F_SUBS) ?
		    PF__F_DONE : 0;
	} while (!atomic_compare_exchange_weak_explicit(&e->state, &old,
	    (old & ~PF__ST_MASK) | st | done, memory_order_seq_cst,
	    memory_order_relaxed));
	if (!done)
		deliver(e, st, old);
	if (st == PF_CANCELLED && exec_key(e) != NULL)
		drop_journal_entry(e);
	pf__ctx_end_life(&e->ctx);
	pf_scope *s = e->ctx.scope;
	if (!done) {
		PF_HB_BEFORE(&e->state); /* the callbacks' effects */
		old = atomic_fetch_or_explicit(&e->state, PF__F_DONE,
		    memory_order_acq_rel);
	}
	if (old & PF__F_WAITERS)
		wake_waiters(e);
	pf__scope_exec_finished(s);
}

bool
pf__exec_claim_cancel(pf_exec *e)
{
	return leave_pending(e, PF__ST_CANCELLING) != UINT32_MAX;
}

void
pf__exec_cancel_claimed(pf_exec *e, int reason)
{
	e->result = reason;
	pf__ctx_record_error(&e->ctx, reason);
	pf__ctx_end_at(&e->ctx, pf__clock_raw());
	settle(e, PF_CANCELLED);
}

static int
call_handler(void *arg)
{
	pf_exec *e = arg;
	return e->ctx.flow->handler(&e->ctx, e->input, pf__exec_output(e));
}

/* Runs a claimed execution on worker w (which may be NULL). */
static void
run_claimed(pf_exec *e, pf__worker *w, uint32_t old)
{
	/* Relaxed: a hint for helpers choosing whom to steal from. */
	atomic_store_explicit(&e->where, w, memory_order_relaxed);
	/* Not before creation, even if the TSCs of two CPUs disagree by a
	 * few cycles. */
	int64_t now = pf__clock_raw();
	if (now < e->ctx.created_at)
		now = e->ctx.created_at;
	atomic_store_explicit(&e->ctx.started_at, now,
	    memory_order_release);
	struct run_frame frame = { e, tls_runs };
	tls_runs = &frame;
	deliver(e, PF_RUNNING, old);
	pf_scope *s = e->ctx.scope;
	int rc;
	/* Acquire: pairs with the release in pf_scope_use()'s publish. */
	pf__extlist *l = PF_ACQUIRED(&s->exts,
	    atomic_load_explicit(&s->exts, memory_order_acquire));
	if (PF_LIKELY(l == NULL || l->n == 0)) {
		rc = call_handler(e);
	} else {
		pf_operation op = {
			.kind = PF_OP_EXECUTION,
			.target = PF_TARGET_FLOW,
			.context = &e->ctx,
			.flow = e->ctx.flow,
			.name = e->ctx.name,
			.input = e->input,
			.output = pf__exec_output(e),
			.key = exec_key(e),
		};
		rc = pf__ext_run(s, &op, call_handler, e);
	}
	/* Acquire: pairs with the abort CAS in ctx.c; the flag as it is
	 * when the handler returned decides failed vs cancelled. */
	int reason = PF_ACQUIRED(&e->ctx.abort_reason,
	    atomic_load_explicit(&e->ctx.abort_reason, memory_order_acquire));
	uint32_t st;
	if (rc == 0) {
		st = PF_COMPLETED;
	} else if (reason != 0) {
		st = PF_CANCELLED;
		rc = reason;
	} else {
		st = PF_FAILED;
	}
	tls_runs = frame.outer;
	e->result = rc;
	pf__ctx_record_error(&e->ctx, rc);
	pf__ctx_end_at(&e->ctx, pf__clock_raw());
	settle(e, st);
}

bool
pf__exec_run_here(pf_exec *e, pf__worker *w)
{
	uint32_t old = leave_pending(e, PF_RUNNING);
	if (old == UINT32_MAX)
		return false;
	run_claimed(e, w, old);
	return true;
}

static void
task_run(pf__task *t)
{
	pf_exec *e = PF_CONTAINER_OF(t, pf_exec, task);
	(void)pf__exec_run_here(e, pf__worker_self());
	pf__ctx_release(&e->ctx); /* the queue's reference */
}

/* ------------------------------------------------------------- create */

void
pf__subs_free(pf__sub *s)
{
	for (pf__sub *n; s != NULL; s = n) {
		n = s->next;
		pf__free(s);
	}
}

void
pf__exec_free(pf_exec *e)
{
	/* Subscribers and the key live in the cold block, freed by ctx.c. */
	pf__record_free(e, e->ctx.from_slab);
}

/*
 * Depth of a flow started under parent: one more than the depth its parent
 * reads.  A flow context reads its own depth, an fn step its flow's, a
 * standalone context 0 (the tag's default, as a root); only roots, started
 * under the scope itself, are at depth 0.
 */
static uint32_t
flow_depth(const pf_ctx *parent)
{
	for (const pf_ctx *a = parent; a != NULL; a = a->parent) {
		if (a->kind == PF__CTX_FLOW)
			return a->depth + 1;
		if (a->kind == PF__CTX_STANDALONE)
			return 1;
	}
	return 0;
}

/* Outputs from this size on are zeroed by the allocator (pf__calloc). */
#define BIG_OUTPUT ((size_t)64 * 1024)

int
pf__exec_prepare(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *g,
    pf_exec **out)
{
	/* Sizes are checked at the API (PF__MAX_DATA), so none of this
	 * arithmetic can overflow. */
	size_t in_size = (f->input_size + 15) & ~(size_t)15;
	size_t size = sizeof(pf_exec) + in_size + f->output_size;
	/* Options that need the cold block: it comes in the same allocation,
	 * after the data (aligned for it). */
	bool cold = opts != NULL && (opts->timeout_ms != 0 ||
	    opts->key != NULL || opts->metadata != NULL || opts->n_tags != 0);
	size_t cold_at = (size + alignof(pf__cold) - 1) &
	    ~(alignof(pf__cold) - 1);
	if (cold)
		size = cold_at + sizeof(pf__cold);
	int rc = pf__scope_enter(s);
	if (rc != 0)
		return rc;
	/* A large output comes zeroed from the allocator (fresh pages, no
	 * memset), so a big buffer costs nothing until the handler writes
	 * it; small records are zeroed below. */
	bool from_slab = false;
	bool zeroed = f->output_size >= BIG_OUTPUT;
	pf_exec *e = zeroed ? pf__calloc(1, size) :
	    pf__record_alloc(size, &from_slab);
	if (e == NULL) {
		pf__scope_exec_finished(s);
		return PF_ENOMEM;
	}
	pf__ctx_init(&e->ctx, s, parent, PF__CTX_FLOW, pf__clock_raw());
	e->ctx.from_slab = from_slab;
	e->ctx.flow = f;
	e->ctx.parallel = g != NULL;
	if (cold) {
		pf__cold *k = (pf__cold *)((unsigned char *)e + cold_at);
		pf__cold_init(k, &e->ctx, PF__COLD_INLINE);
		atomic_init(&e->ctx.cold, k); /* nobody else sees e yet */
	}
	e->ctx.depth = flow_depth(parent);
	e->task.run = task_run;
	atomic_init(&e->task.next, NULL);
	PF_ATOMIC_OBJ(&e->task.next);
	atomic_init(&e->state, PF_PENDING);
	PF_ATOMIC_OBJ(&e->state);
	e->result = 0;
	e->on_status = NULL;
	e->on_status_data = NULL;
	e->waiters = NULL;
	e->group = g;
	atomic_init(&e->where, NULL);
	PF_ATOMIC_OBJ(&e->where);
	if (f->input_size > 0) {
		memcpy(e->data, input, f->input_size);
		e->input = e->data;
	} else {
		e->input = input;
	}
	if (f->output_size > 0 && !zeroed)
		/* Zeroed: a handler (or an extension that skips it) may
		 * complete without writing it, and the caller must not get
		 * uninitialised memory. */
		memset(e->data + in_size, 0, f->output_size);
	rc = pf__ctx_set_name(&e->ctx, opts != NULL ? opts->name : NULL,
	    f->name != NULL ? f->name : "anonymous");
	if (rc == 0 && opts != NULL) {
		e->on_status = opts->on_status;
		e->on_status_data = opts->on_status_data;
		/* Metadata, the key and the timer node live in the cold block:
		 * made now (a timeout's too, as pf__exec_start cannot fail). */
		pf__cold *k = NULL;
		if ((opts->key != NULL || opts->timeout_ms != 0 ||
			opts->metadata != NULL) &&
		    (k = pf__ctx_cold(&e->ctx)) == NULL)
			rc = PF_ENOMEM;
		if (k != NULL)
			k->metadata = opts->metadata;
		if (rc == 0 && opts->key != NULL &&
		    (k->key = pf__strdup(opts->key)) == NULL)
			rc = PF_ENOMEM;
		if (rc == 0)
			rc = pf__ctx_seed_tags(&e->ctx, opts->tags,
			    opts->n_tags);
	}
	if (rc != 0) {
		pf__exec_discard(e);
		return rc;
	}
	*out = e;
	return 0;
}

void
pf__exec_discard(pf_exec *e)
{
	/* Not linked yet: detach from the parent by hand so that the free
	 * does not unlink it. */
	pf_ctx *parent = e->ctx.parent;
	pf_scope *s = e->ctx.scope;
	e->ctx.parent = NULL;
	pf__ctx_release(&e->ctx);
	pf__ctx_release(parent);
	pf__scope_exec_finished(s);
}

void
pf__exec_start(pf_exec *e, const pf_exec_options *opts, pf_exec **out,
    bool queue)
{
	pf_scope *s = e->ctx.scope;
	/*
	 * Once linked, e can be aborted and finish at any moment (dispose's
	 * abort, a timeout, its parent's abort), and dispose may then tear
	 * down the pool and the timer wheel that this call still uses.  A
	 * worker of the scope is safe (dispose joins it before freeing them);
	 * any other thread counts its call as unfinished work meanwhile.  The
	 * count cannot be refused: e's own count, not yet released, keeps
	 * dispose waiting until this one is added.
	 */
	bool outside = pf__pool_current(s->pool) == NULL;
	if (outside)
		pf__scope_hold(s);
	/* The creation's reference and the queue's, in one store: nobody
	 * else can see the record yet. */
	atomic_store_explicit(&e->ctx.refs, queue ? 2 : 1,
	    memory_order_relaxed);
	/* pending is delivered before anyone else can see the execution, so
	 * it is always the first status a callback sees. */
	if (e->on_status != NULL) {
		pf__in_callback++;
		e->on_status(e, PF_PENDING, e->on_status_data);
		pf__in_callback--;
	}
	/* Armed before it is linked: if the link finds the parent aborted,
	 * the cancellation that follows also cancels the timer.  Not armed
	 * if the pending callback itself aborted the execution: it finished,
	 * and nothing would cancel the timer any more.  Relaxed: nobody else
	 * can see the record yet, only that callback on this thread. */
	if (opts != NULL && opts->timeout_ms != 0 &&
	    (atomic_load_explicit(&e->state, memory_order_relaxed) &
		PF__ST_MASK) == PF_PENDING)
		pf__ctx_arm_timeout(&e->ctx, opts->timeout_ms);
	pf__ctx_link(&e->ctx);
	/* An execution cancelled at link time needs no task: drop the
	 * queue's reference (taken with the creation's, above). */
	/* Relaxed: a stale "pending" only submits a task that will find the
	 * execution cancelled and drop its reference (task_run). */
	if (!queue) {
		/* The caller runs it (pf__exec_run_here), or it was
		 * cancelled: no task, no queue reference. */
	} else if ((atomic_load_explicit(&e->state, memory_order_relaxed) &
		PF__ST_MASK) == PF_PENDING) {
		/* Relaxed: a hint; the push below publishes it. */
		atomic_store_explicit(&e->where, pf__pool_current(s->pool),
		    memory_order_relaxed);
		pf__pool_submit(s->pool, &e->task);
	} else {
		pf__ctx_release(&e->ctx);
	}
	if (out != NULL)
		*out = e;
	else
		pf__ctx_release(&e->ctx);
	if (outside)
		pf__scope_exec_finished(s);
}

int
pf__exec_create(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *g,
    pf_exec **out)
{
	pf_exec *e;
	int rc = pf__exec_prepare(s, parent, f, input, opts, g, &e);
	if (rc == 0)
		pf__exec_start(e, opts, out, true);
	return rc;
}

/* ------------------------------------------------------------- waiting */

static bool
waiter_register(pf_exec *e, pf__waiter *w)
{
	pf__spin_lock(&e->ctx.lock);
	/* Acq_rel RMW on the status word: either settle()'s DONE RMW sees
	 * WAITERS and wakes us, or we see DONE (and its result). */
	uint32_t old = atomic_fetch_or_explicit(&e->state, PF__F_WAITERS,
	    memory_order_acq_rel);
	PF_HB_AFTER(&e->state);
	if (old & PF__F_DONE) {
		pf__spin_unlock(&e->ctx.lock);
		return false;
	}
	w->prev = NULL;
	w->next = e->waiters;
	if (e->waiters != NULL)
		e->waiters->prev = w;
	e->waiters = w;
	pf__spin_unlock(&e->ctx.lock);
	return true;
}

/* Unlinks w if it was not signaled; either way, once this returns the
 * finisher no longer touches w (see the top of this file). */
static void
waiter_unregister(pf_exec *e, pf__waiter *w)
{
	pf__spin_lock(&e->ctx.lock);
	/* Relaxed: under the lock that the signaling store is made under. */
	if (!atomic_load_explicit(&w->signaled, memory_order_relaxed)) {
		if (w->prev != NULL)
			w->prev->next = w->next;
		else
			e->waiters = w->next;
		if (w->next != NULL)
			w->next->prev = w->prev;
	}
	pf__spin_unlock(&e->ctx.lock);
}

static bool
waiter_signaled(void *arg)
{
	pf__waiter *w = arg;
	/* Acquire: pairs with the release store in wake_waiters(). */
	return PF_ACQUIRED(&w->signaled,
	    atomic_load_explicit(&w->signaled, memory_order_acquire));
}

static bool
past(int64_t deadline_ns)
{
	return deadline_ns >= 0 && pf__clock_mono_ns() >= deadline_ns;
}

/*
 * How long a thread that is not a worker polls before it sleeps: a short
 * execution finishes within it and the waiter saves two futex calls (its
 * own sleep and the finisher's wake-up).  Bounded, so a long wait still
 * sleeps almost all the time.
 */
#define WAIT_SPIN_NS 20000
/* How deep an outside thread nests executions it runs itself while
 * waiting (sleeping_wait); deeper waits sleep. */
#define MAX_INLINE_RUNS 16
/* How often a thread asleep in a wait looks whether the awaited work can
 * still run (pf__pool_starved): rare, and only while it sleeps.  The wait
 * gives up only when that lasted STARVE_GRACE_NS without a break: a pool
 * whose workers are all blocked on other scopes' healthy work is starved
 * only for a while. */
#define STARVE_CHECK_NS 20000000
#define STARVE_GRACE_NS 1000000000

/* Whether e is pending in a pool where nothing can run it any more: the
 * wait fails (PF_EAGAIN) rather than sleep forever (API.md Semantics 5). */
static bool
hopeless(const pf_exec *e)
{
	return status_of(atomic_load_explicit(&((pf_exec *)e)->state,
		   memory_order_relaxed)) == PF_PENDING &&
	    pf__pool_starved(e->ctx.scope->pool);
}

/*
 * Parks on p until w is signaled or the deadline passes, or (a wait with
 * no deadline) e stayed hopeless for STARVE_GRACE_NS.  A wait with a
 * deadline ends there anyway.
 */
static void
park_signaled(pf_exec *e, pf__waiter *w, pf__parker *p, int64_t deadline_ns)
{
	int64_t since = -1;
	while (!waiter_signaled(w) && !past(deadline_ns)) {
		int64_t now = pf__clock_mono_ns();
		if (deadline_ns < 0 && hopeless(e)) {
			if (since < 0)
				since = now;
			else if (now - since >= STARVE_GRACE_NS)
				return;
		} else {
			since = -1;
		}
		int64_t until = now + STARVE_CHECK_NS;
		if (deadline_ns >= 0 && deadline_ns < until)
			until = deadline_ns;
		(void)pf__parker_park_until(p, until);
	}
}

/*
 * Runs e here if nobody started it: true if it did.  A thread that is not
 * a worker of e's pool counts as one of the scope's threads while it runs
 * handlers (API.md Semantics 5), so it needs a run slot, unless an outer
 * inline run on this thread holds one.  Bounded nesting: a handler run
 * this way may wait in turn, on the caller's stack.  Not for a wait with a
 * deadline: the handler may run past it, and it may wait for something
 * this thread would do once its wait gave up.
 */
static bool
inline_possible(int64_t deadline_ns)
{
	return deadline_ns < 0 && pf__running_waiter_runs() < MAX_INLINE_RUNS &&
	    pf__thread_can_nest();
}

static bool
run_inline(pf_exec *e, int64_t deadline_ns)
{
	pf_scope *s = e->ctx.scope;
	if (!inline_possible(deadline_ns))
		return false;
	bool held = pf__running_holds_slot(s);
	if (!held && !pf__pool_slot_take(s->pool))
		return false;
	pf__running r;
	pf__running_enter(&r, s, true, !held);
	bool ran = pf__exec_run_here(e, NULL);
	pf__running_leave(&r);
	if (!held)
		pf__pool_slot_give(s->pool);
	return ran;
}

/*
 * The wait of a thread that is not a worker of e's pool: run e itself if it
 * has not started (may_run: threads that are no pool's workers), else poll
 * a little and sleep.  While it sleeps it gives back the run slots its
 * inline runs hold, and takes them back before it returns to their
 * handlers.  open: the wait counts as unfinished work of e's scope, so
 * the pool it uses (slots, starvation) outlives it; a wait on a disposing
 * scope only sleeps (dispose finishes e).
 */
static void
sleeping_wait_in(pf_exec *e, int64_t deadline_ns, bool may_run, bool open)
{
	if (open && may_run && run_inline(e, deadline_ns))
		return;
	int64_t until = 0;
	for (unsigned i = 1; !is_done(e); i++) {
		pf__cpu_relax();
		if ((i & 63) == 0) {
			int64_t now = pf__clock_mono_ns();
			if (until == 0)
				until = now + WAIT_SPIN_NS;
			if (now >= until ||
			    (deadline_ns >= 0 && now >= deadline_ns))
				break;
		}
	}
	if (is_done(e))
		return;
	pf__waiter w = { .parker = pf__parker_self() };
	atomic_init(&w.signaled, false);
	PF_ATOMIC_OBJ(&w.signaled);
	if (!waiter_register(e, &w))
		return;
	pf__running_slots_give();
	for (;;) {
		if (open) {
			park_signaled(e, &w, w.parker, deadline_ns);
		} else {
			while (!waiter_signaled(&w) && !past(deadline_ns)) {
				if (deadline_ns < 0)
					pf__parker_park(w.parker);
				else
					(void)pf__parker_park_until(w.parker,
					    deadline_ns);
			}
			break;
		}
		/* Hopeless: a thread that may run it does so itself as soon
		 * as a slot is free (every blocked worker gave its own up; an
		 * inline runner holding one gives it back when it is done),
		 * and fails only when it cannot run it at all (nesting or
		 * stack spent). */
		if (waiter_signaled(&w) || past(deadline_ns) || !may_run ||
		    !hopeless(e))
			break;
		if (!inline_possible(deadline_ns))
			break;
		pf__running_slots_resume();
		(void)run_inline(e, deadline_ns);
		pf__running_slots_give();
	}
	waiter_unregister(e, &w);
	pf__running_slots_resume();
}

static void
sleeping_wait(pf_exec *e, int64_t deadline_ns, bool may_run)
{
	pf_scope *s = e->ctx.scope;
	bool open = pf__scope_enter(s) == 0;
	sleeping_wait_in(e, deadline_ns, may_run, open);
	if (open)
		pf__scope_exec_finished(s);
}

/*
 * A worker's wait: run the awaited execution inline if it has not started,
 * else run other work (the runner's deque first), and sleep only when
 * there is none, giving its run slot up meanwhile.  When the stack budget
 * for nesting is spent, block without helping; the pool compensates with a
 * spare worker, and when it cannot, a wait on work nobody can run fails.
 */
static void
helping_wait(pf_exec *e, pf__worker *wk, int64_t deadline_ns)
{
	pf__waiter w = { .parker = &wk->parker };
	atomic_init(&w.signaled, false);
	PF_ATOMIC_OBJ(&w.signaled);
	bool registered = false;
	while (!is_done(e) && !past(deadline_ns)) {
		if (pf__worker_can_help(wk)) {
			/* Queued on our own deque: pop it (and whatever was
			 * pushed after it) rather than claim it in place, so
			 * no stale entry keeps the record alive. */
			pf__worker *where = atomic_load_explicit(&e->where,
			    memory_order_relaxed);
			if (where == wk && pf__pool_help(wk, NULL))
				continue;
			if (pf__exec_run_here(e, wk))
				continue;
			if (pf__pool_help(wk, atomic_load_explicit(&e->where,
				memory_order_relaxed)))
				continue;
		}
		if (!registered) {
			/* Register, then look once more before sleeping. */
			if (!waiter_register(e, &w))
				return;
			registered = true;
			continue;
		}
		if (waiter_signaled(&w))
			break;
		if (!pf__worker_can_help(wk)) {
			pf__pool_block_begin(wk);
			park_signaled(e, &w, &wk->parker, deadline_ns);
			pf__pool_block_end(wk);
			break;
		}
		/* Idle in a wait: the slot goes to whoever can use it, and
		 * comes back (with priority) before the handler goes on. */
		wk->has_slot = false;
		pf__pool_slot_give(wk->pool);
		pf__pool_idle_park(wk, waiter_signaled, &w, deadline_ns);
		pf__pool_slot_resume(wk->pool);
		wk->has_slot = true;
	}
	if (registered)
		waiter_unregister(e, &w);
}

static int
result_of(pf_exec *e, void *output)
{
	int r = e->result;
	if (r == 0 && output != NULL && e->ctx.flow->output_size > 0)
		memcpy(output, pf__exec_output(e), e->ctx.flow->output_size);
	return r;
}

int
pf__exec_wait(pf_exec *e, void *output, int64_t deadline_ns)
{
	if (!is_done(e)) {
		if (deadline_ns == 0)
			return PF_EAGAIN;
		/* Its handler is on this thread's stack, below us: it cannot
		 * finish before we return. */
		if (running_here(e))
			return PF_EINVAL;
		pf__worker *w = pf__pool_current(e->ctx.scope->pool);
		pf__worker *other = w == NULL ? pf__worker_self() : NULL;
		if (w != NULL) {
			helping_wait(e, w, deadline_ns);
		} else if (other != NULL) {
			/* A worker of another scope cannot help this one; it
			 * blocks like an outside thread, and its own pool may
			 * start a spare meanwhile. */
			pf__pool_block_begin(other);
			sleeping_wait(e, deadline_ns, false);
			pf__pool_block_end(other);
		} else {
			sleeping_wait(e, deadline_ns, true);
		}
		if (!is_done(e))
			return PF_EAGAIN;
	}
	return result_of(e, output);
}

int
pf__exec_wait_end(pf_exec *e, void *output)
{
	int rc = pf__exec_wait(e, output, -1);
	if (rc != PF_EAGAIN || is_done(e))
		return rc;
	/* Nothing can run it now: abort it (a pending one is cancelled at
	 * once, a running one ends when its handler returns) and wait for
	 * its end, so that nothing of it outlives the caller's frame. */
	pf_exec_abort(e);
	while (!is_done(e))
		(void)pf__exec_wait(e, NULL, -1);
	return PF_EAGAIN;
}

/* ---------------------------------------------------------- public API */

const char *
pf_exec_id(const pf_exec *e)
{
	return e != NULL ? pf_ctx_id(&e->ctx) : NULL;
}

const char *
pf_exec_flow_name(const pf_exec *e)
{
	if (e == NULL)
		return NULL;
	return e->ctx.flow->name != NULL ? e->ctx.flow->name : "anonymous";
}

pf_status
pf_exec_status(const pf_exec *e)
{
	if (e == NULL)
		return PF_PENDING;
	/* Acquire: pairs with the terminal CAS in settle(), so the result and
	 * the context's error are visible with a terminal status. */
	return (pf_status)status_of(PF_ACQUIRED(&((pf_exec *)e)->state,
	    atomic_load_explicit(&((pf_exec *)e)->state,
	    memory_order_acquire)));
}

pf_ctx *
pf_exec_ctx(pf_exec *e)
{
	return e != NULL ? &e->ctx : NULL;
}

int
pf_exec_abort(pf_exec *e)
{
	if (e == NULL)
		return PF_EINVAL;
	/* A finished execution is left as it is (its descendants too). */
	if (status_of(atomic_load_explicit(&e->state, memory_order_acquire)) >=
	    PF_COMPLETED)
		return 0;
	pf__ctx_abort(&e->ctx, PF_ECANCELED);
	return 0;
}

int
pf_exec_throw_if_aborted(const pf_exec *e)
{
	return e != NULL ? pf_ctx_throw_if_aborted(&e->ctx) : PF_EINVAL;
}

int
pf_exec_wait(pf_exec *e, void *output)
{
	/* Inside a status callback or signal listener a wait may block the
	 * very transition it waits for (API.md Semantics 2). */
	if (e == NULL || pf__in_callback != 0)
		return PF_EINVAL;
	return pf__exec_wait(e, output, -1);
}

int
pf_exec_wait_for(pf_exec *e, void *output, uint64_t timeout_ms)
{
	if (e == NULL)
		return PF_EINVAL;
	if (timeout_ms == 0)
		return pf__exec_wait(e, output, 0);
	if (pf__in_callback != 0)
		return PF_EINVAL; /* as pf_exec_wait; polling stays allowed */
	uint64_t cap = (uint64_t)INT64_MAX / 2000000;
	int64_t ms = (int64_t)(timeout_ms < cap ? timeout_ms : cap);
	return pf__exec_wait(e, output, pf__clock_mono_ns() + ms * 1000000);
}

int
pf_exec_try(pf_exec *e, void *output)
{
	if (e == NULL)
		return PF_EINVAL;
	return pf__exec_wait(e, output, 0);
}

int
pf_exec_on_status(pf_exec *e, pf_status_fn fn, void *data)
{
	if (e == NULL || fn == NULL)
		return PF_EINVAL;
	pf__cold *k = pf__ctx_cold(&e->ctx);
	if (k == NULL)
		return PF_ENOMEM;
	pf__sub *s = pf__malloc(sizeof(*s));
	if (s == NULL)
		return PF_ENOMEM;
	s->fn = fn;
	s->data = data;
	pf__spin_lock(&e->ctx.lock);
	/* The RMW both announces us and reads the status: a finisher whose
	 * CAS comes later sees SUBS and delivers to us. */
	PF_HB_BEFORE(&e->state);
	uint32_t old = atomic_fetch_or_explicit(&e->state, PF__F_SUBS,
	    memory_order_acq_rel);
	PF_HB_AFTER(&e->state);
	uint32_t st = status_of(old);
	if (st >= PF_COMPLETED) {
		pf__spin_unlock(&e->ctx.lock);
		pf__free(s);
		pf__in_callback++;
		fn(e, (pf_status)st, data);
		pf__in_callback--;
		return 0;
	}
	s->seen = st;
	s->busy = 0;
	s->removed = false;
	s->awaited = false;
	s->next = NULL;
	/* Appended, so subscribers are told in the order they came. */
	pf__sub **link = &k->subs;
	while (*link != NULL)
		link = &(*link)->next;
	*link = s;
	pf__spin_unlock(&e->ctx.lock);
	return 0;
}

int
pf_exec_off_status(pf_exec *e, pf_status_fn fn, void *data)
{
	if (e == NULL || fn == NULL)
		return PF_EINVAL;
	pf__cold *k = pf__cold_of(&e->ctx);
	if (k == NULL)
		return PF_ENOENT; /* never subscribed */
	pf__spin_lock(&e->ctx.lock);
	for (pf__sub **link = &k->subs; *link != NULL;
	     link = &(*link)->next) {
		pf__sub *s = *link;
		if (s->fn != fn || s->data != data)
			continue;
		*link = s->next;
		s->removed = true;
		/* Once this returns the callback is not running and will not
		 * run: wait for a call in flight on another thread, then free
		 * s here.  A call in flight on this thread is our caller (or
		 * encloses it): the delivery frees s when it returns. */
		if (s->busy != 0 && calling_here(s)) {
			pf__spin_unlock(&e->ctx.lock);
			return 0;
		}
		/* From inside a callback, waiting for one running on another
		 * thread could wait forever (that one may be waiting for ours
		 * in turn): it is removed and will not be called again, but
		 * its current call may still be running.  That delivery frees
		 * it. */
		if (s->busy != 0 && pf__in_callback != 0) {
			pf__spin_unlock(&e->ctx.lock);
			return PF_EAGAIN;
		}
		s->awaited = true;
		while (s->busy != 0) {
			pf__spin_unlock(&e->ctx.lock);
			sched_yield();
			pf__spin_lock(&e->ctx.lock);
		}
		pf__spin_unlock(&e->ctx.lock);
		pf__free(s);
		return 0;
	}
	pf__spin_unlock(&e->ctx.lock);
	return PF_ENOENT;
}

pf_exec *
pf_exec_retain(pf_exec *e)
{
	if (e != NULL)
		pf__ctx_retain(&e->ctx);
	return e;
}

void
pf_exec_release(pf_exec *e)
{
	if (e != NULL)
		pf__ctx_release(&e->ctx);
}
