/*
 * exec.c: flow executions: creation and the status machine (exec.h).
 *
 * Status word (pf_exec.state, record.h): the status in the low 3 bits,
 * plus flags SUBS (dynamic subscribers exist), WAITERS (a waiter is
 * registered) and DONE (terminal callbacks returned; the result is final).
 * Transitions:
 *
 *   PENDING --CAS by the runner--> RUNNING --CAS--> COMPLETED/FAILED/CANCELLED
 *   PENDING --CAS by an aborter--> CANCELLING --store--> CANCELLED
 *
 * A CAS decides start against cancel: exactly one wins.  The winner owns
 * the record's result fields; it writes the result, the context's error
 * and completed_at, then publishes the terminal status with release order
 * (readers of the status acquire), then runs the status callbacks, then
 * sets DONE (acq_rel) and wakes the waiters registered before it (the
 * registration protocol is in waiter.h).  Waiters and pf_exec_try look at
 * DONE, so they return only after the callbacks.  With no callback to run
 * (no on_status, no subscriber), the terminal status and DONE are set by
 * the same CAS.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "engine.h"
#include "exec.h"
#include "frame.h"
#include "group.h"
#include "journal.h"
#include "message.h"
#include "probe.h"
#include "sig.h"
#include "sub.h"
#include "tag.h"
#include "waiter.h"

/* --------------------------------------------------------- transitions */

/* Nanoseconds between two raw clock readings (0 if either is unset). */
static int64_t
raw_span_ns(int64_t from, int64_t to)
{
	return to != 0 ? pf__clock_raw_span_ns(from, to) : 0;
}

/* The parent id a trace records: none for a root. */
static const pf__uuid *
trace_parent(const pf_ctx *c)
{
	const pf_ctx *p = c->parent;
	return p != NULL && p->kind != PF__CTX_ROOT ? &p->id : NULL;
}

/* A terminal status for the trace (trace.h). */
static void
trace_finished(pf__trace *t, pf_exec *e, uint32_t st)
{
	const pf_ctx *c = &e->ctx;
	pf__trace_finished(t, pf__pool_current(c->engine->pool), &c->id,
	    trace_parent(c), c->flow, c->created_at,
	    pf__load_relaxed(&c->started_at), pf__load_relaxed(&c->completed_at),
	    (pf_status)st, e->result,
	    (pf__load_relaxed(&e->state) & PF__F_WAS_DEFERRED) != 0);
}

/* A terminal status for the statistics (stats.h). */
static void
stats_finished(pf_exec *e, uint32_t st)
{
	const pf_ctx *c = &e->ctx;
	int64_t started = pf__load_relaxed(&c->started_at);
	pf__stats_finished(pf__engine_stats(c->engine),
	    pf__pool_current(c->engine->pool),
	    c->flow, (pf_status)st, e->result, started != 0 ?
	    raw_span_ns(started, pf__load_relaxed(&c->completed_at)) : -1);
}

/* The probe of a terminal status (probe.h): computed only when a tracer
 * listens. */
static void
probe_finished(pf_exec *e, uint32_t st)
{
	const pf_ctx *c = &e->ctx;
	int64_t started = pf__load_relaxed(&c->started_at);
	int64_t done = pf__load_relaxed(&c->completed_at);
	/* Six arguments, bpftrace's limit on x86-64: the pending time is
	 * exec_started's. */
	int64_t run = started != 0 ? raw_span_ns(started, done) : 0;
	PF_PROBE6(exec_finished, pf__uuid_half(&c->id, 0),
	    pf__uuid_half(&c->id, 1), pf__flow_name(c->flow), (int)st,
	    e->result, run);
	(void)run, (void)st; /* without USDT */
}

/* PENDING -> to, keeping the flags.  Returns the old word, or UINT32_MAX
 * when the execution was no longer pending. */
static uint32_t
leave_pending(pf_exec *e, uint32_t to)
{
	/* Relaxed: only a first guess; the CAS below validates it. */
	uint32_t old = pf__load_relaxed(&e->state);
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

/* The journal key, or NULL (immutable once the execution started). */
static inline const char *
exec_key(const pf_exec *e)
{
	pf__cold *k = pf__cold_of(&e->ctx);
	return k != NULL ? k->key : NULL;
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
	 * once every call is DONE.  Any call that does not complete fails
	 * the group: one that failed, or was cancelled by its own timeout or
	 * abort.  (Calls the group itself aborted find the failure word
	 * already set.) */
	if (e->group != NULL && !e->group->settled && st != PF_COMPLETED)
		pf__group_failed(e->group, e);
	/* Before DONE too: the parent's handler, once its wait returns,
	 * finds the message it may take (message.h). */
	if (st != PF_COMPLETED)
		pf__ctx_pass_message(&e->ctx);
	/* Relaxed: only a first guess; the CAS below validates it. */
	uint32_t old = pf__load_relaxed(&e->state);
	uint32_t done;
	/* Release: the result, error and completed_at written before are
	 * visible to whoever acquires the status.  Seq_cst for the journal
	 * handshake (journal.c; free on x86: a locked CAS is a full
	 * barrier). */
	PF_HB_BEFORE(&e->state);
	do {
		done = !(old & (PF__F_ON_STATUS | PF__F_SUBS)) ?
		    PF__F_DONE : 0;
	} while (!atomic_compare_exchange_weak_explicit(&e->state, &old,
	    (old & ~PF__ST_MASK) | st | done, memory_order_seq_cst,
	    memory_order_relaxed));
	if (PF_PROBE_ON(exec_finished))
		probe_finished(e, st);
	if (pf__engine_stats(e->ctx.engine) != NULL)
		stats_finished(e, st);
	pf__trace *trace = pf__engine_trace(e->ctx.engine);
	if (trace != NULL)
		trace_finished(trace, e, st);
	if (!done)
		pf__status_deliver(e, st, old);
	if (st == PF_CANCELLED && exec_key(e) != NULL)
		pf__journal_drop(e);
	pf__ctx_end_life(&e->ctx);
	pf__engine *g = e->ctx.engine;
	if (!done) {
		PF_HB_BEFORE(&e->state); /* the callbacks' effects */
		old = atomic_fetch_or_explicit(&e->state, PF__F_DONE,
		    memory_order_acq_rel);
	}
	if (old & PF__F_WAITERS)
		pf__waiters_wake(e);
	pf__engine_finished(g);
}

static bool
claim_cancel(pf_ctx *c)
{
	return leave_pending((pf_exec *)c, PF__ST_CANCELLING) != UINT32_MAX;
}

static void
cancel_claimed(pf_ctx *c, int reason)
{
	pf_exec *e = (pf_exec *)c;
	e->result = reason;
	pf__ctx_record_error(&e->ctx, reason);
	pf__ctx_end_at(&e->ctx, pf__clock_raw());
	settle(e, PF_CANCELLED);
}

const pf__ctx_class pf__exec_class = {
	/* The record is freed as any other (pf__record_free). */
	.claim_cancel = claim_cancel,
	.cancel_claimed = cancel_claimed,
};

static int
call_handler(void *arg)
{
	pf_exec *e = arg;
	return e->ctx.flow->handler(&e->ctx, pf__exec_input(e),
	    pf__exec_output(e));
}

/* What every start records, on worker w (which may be NULL): the hint
 * of where it runs, started_at, the probe and the statistics. */
static void
mark_started(pf_exec *e, pf__worker *w)
{
	/* Relaxed: a hint for helpers choosing whom to steal from. */
	atomic_store_explicit(&e->ctx.where, w != NULL ? w->index + 1 : 0,
	    memory_order_relaxed);
	/* Not before creation, even if the TSCs of two CPUs disagree by a
	 * few cycles.  One started for its creator to run at once starts at
	 * its creation: one clock read for both. */
	int64_t now = e->ctx.start_is_creation ? e->ctx.created_at :
	    pf__clock_raw();
	if (now < e->ctx.created_at)
		now = e->ctx.created_at;
	/* Release: pairs with the acquire in pf_ctx_started_at(). */
	atomic_store_explicit(&e->ctx.started_at, now, memory_order_release);
	if (PF_PROBE_ON(exec_started))
		PF_PROBE5(exec_started, pf__uuid_half(&e->ctx.id, 0),
		    pf__uuid_half(&e->ctx.id, 1), pf__flow_name(e->ctx.flow),
		    w != NULL ? (int64_t)w->index : (int64_t)-1,
		    raw_span_ns(e->ctx.created_at, now));
	pf__stats *stats = pf__engine_stats(e->ctx.engine);
	if (stats != NULL)
		pf__stats_started(stats,
		    pf__pool_current(e->ctx.engine->pool), e->ctx.flow,
		    raw_span_ns(e->ctx.created_at, now));
}

/* Publishes the end of a run: the result, the error, completed_at, then
 * the terminal status st. */
static void
finish(pf_exec *e, int rc, uint32_t st)
{
	e->result = rc;
	pf__ctx_record_error(&e->ctx, rc);
	pf__ctx_end_at(&e->ctx, pf__clock_raw());
	settle(e, st);
}

/* Runs a claimed execution on worker w (which may be NULL). */
static void
run_claimed(pf_exec *e, pf__worker *w, uint32_t old)
{
	mark_started(e, w);
	pf__frame frame;
	pf__frame_push(&frame, PF__FRAME_HANDLER, e);
	pf__status_deliver(e, PF_RUNNING, old);
	pf__exts *x = &e->ctx.engine->exts;
	int rc;
	if (PF_LIKELY(pf__ext_none(x))) {
		rc = call_handler(e);
	} else {
		pf_operation op = {
			.kind = PF_OP_EXECUTION,
			.target = PF_TARGET_FLOW,
			.context = &e->ctx,
			.flow = e->ctx.flow,
			.name = pf__ctx_name(&e->ctx),
			.input = pf__exec_input(e),
			.output = pf__exec_output(e),
			.key = exec_key(e),
		};
		rc = pf__ext_run(x, &op, call_handler, e);
	}
	/* The abort flag as it is when the handler returned decides failed
	 * vs cancelled. */
	int reason = pf__ctx_abort_reason(&e->ctx);
	uint32_t st;
	if (rc == 0) {
		st = PF_COMPLETED;
	} else if (reason != 0) {
		st = PF_CANCELLED;
		rc = reason;
	} else {
		st = PF_FAILED;
	}
	pf__frame_pop(&frame);
	finish(e, rc, st);
}

bool
pf__exec_run_here(pf_exec *e, pf__worker *w)
{
	/* A deferred execution has no handler to run: only pf__exec_defer
	 * sets it running (a handle can leak out before, through its
	 * pending status callback, to a waiter that would claim it).  The
	 * flag is set before the record is published and stays while it is
	 * pending. */
	if (pf__load_relaxed(&e->state) & PF__F_DEFERRED)
		return false;
	uint32_t old = leave_pending(e, PF_RUNNING);
	if (old == UINT32_MAX)
		return false;
	run_claimed(e, w, old);
	return true;
}

void
pf__exec_task_run(pf__task *t)
{
	pf_exec *e = PF_CONTAINER_OF(t, pf_exec, task);
	(void)pf__exec_run_here(e, pf__worker_self());
	pf__ctx_release(&e->ctx); /* the queue's reference */
}

/* ------------------------------------------------------------- create */

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

/* The options that live in the cold block: made with the record (a
 * timeout's too, as pf__exec_start cannot fail). */
static int
apply_options(pf_exec *e, const pf_exec_options *opts)
{
	pf__cold *k = NULL;
	/* Relaxed: nobody else can see the record yet. */
	bool cold_timer = opts->timeout_ms != 0 &&
	    !(pf__load_relaxed(&e->state) & PF__F_TIMER_INLINE);
	if ((opts->key != NULL || cold_timer || opts->metadata != NULL ||
		opts->on_status != NULL) &&
	    (k = pf__ctx_cold(&e->ctx)) == NULL)
		return PF_ENOMEM;
	if (k != NULL)
		k->metadata = opts->metadata;
	if (opts->on_status != NULL) {
		k->on_status = opts->on_status;
		k->on_status_data = opts->on_status_data;
		/* Relaxed: nobody else can see the record yet. */
		atomic_store_explicit(&e->state,
		    pf__load_relaxed(&e->state) | PF__F_ON_STATUS,
		    memory_order_relaxed);
	}
	if (opts->key != NULL && (k->key = pf__strdup(opts->key)) == NULL)
		return PF_ENOMEM;
	return pf__tags_seed(&e->ctx, opts->tags, opts->n_tags);
}

int
pf__exec_prepare(pf__engine *g, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *group,
    pf_exec **out)
{
	/* Sizes were checked against PF__MAX_DATA by the caller, so none of
	 * this arithmetic can overflow. */
	pf__assert(f->input_size <= PF__MAX_DATA &&
	    f->output_size <= PF__MAX_DATA);
	size_t in_size = f->input_size > 0 ?
	    (f->input_size + 15) & ~(size_t)15 : input != NULL ? 16 : 0;
	size_t size = sizeof(pf_exec) + in_size + f->output_size;
	/* Options that need the cold block: it comes in the same allocation,
	 * after the data (aligned for it), when the two fit the largest slab
	 * class or the record comes from the heap anyway; else it is a slab
	 * object of its own (apply_options), as two slab objects cost less
	 * than one heap record. */
	bool cold = opts != NULL && (opts->key != NULL ||
	    opts->metadata != NULL || opts->n_tags != 0 ||
	    opts->on_status != NULL || opts->name != NULL);
	/* A timeout alone: its timer follows the data (record.h); with
	 * other cold options it lives in the cold block. */
	bool timer_inline = opts != NULL && opts->timeout_ms != 0 && !cold;
	size_t timer_at = (size + alignof(pf__inline_timer) - 1) &
	    ~(alignof(pf__inline_timer) - 1);
	if (timer_inline)
		size = timer_at + sizeof(pf__inline_timer);
	size_t cold_at = (size + alignof(pf__cold) - 1) &
	    ~(alignof(pf__cold) - 1);
	if (cold && size <= PF__RECORD_SLAB_MAX &&
	    cold_at + sizeof(pf__cold) > PF__RECORD_SLAB_MAX)
		cold = false;
	if (cold)
		size = cold_at + sizeof(pf__cold);
	int rc = pf__engine_enter(g);
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
		pf__engine_finished(g);
		return PF_ENOMEM;
	}
	pf__ctx_init(&e->ctx, g, parent, PF__CTX_FLOW, pf__clock_raw());
	e->ctx.from_slab = from_slab;
	e->ctx.flow = f;
	e->ctx.parallel = group != NULL;
	if (cold) {
		pf__cold *k = (pf__cold *)((unsigned char *)e + cold_at);
		pf__cold_init(k, &e->ctx, PF__COLD_INLINE);
		atomic_init(&e->ctx.cold, k); /* nobody else sees e yet */
	}
	e->ctx.depth = flow_depth(parent);
	pf__atomic_init(&e->task.next, NULL);
	pf__atomic_init(&e->state, PF_PENDING |
	    (f->input_size == 0 && input != NULL ? PF__F_INPUT_PTR : 0) |
	    (timer_inline ? PF__F_TIMER_INLINE : 0));
	if (timer_inline) {
		pf__inline_timer *it =
		    (pf__inline_timer *)(void *)((unsigned char *)e + timer_at);
		pf__assert(it == pf__exec_inline_timer(e));
		it->owner = &e->ctx;
		pf__timer_node_init(&it->node);
	}
	e->result = 0;
	pf__hlist_init(&e->waiters);
	e->group = group;
	if (f->input_size > 0) {
		/* A deferred execution has no input (its work is
		 * elsewhere): zeroed. */
		if (input != NULL)
			memcpy(e->data, input, f->input_size);
		else
			memset(e->data, 0, f->input_size);
	} else if (input != NULL) {
		memcpy(e->data, &input, sizeof(input)); /* INPUT_PTR, above */
	}
	if (f->output_size > 0 && !zeroed)
		/* Zeroed: a handler (or an extension that skips it) may
		 * complete without writing it, and the caller must not get
		 * uninitialised memory. */
		memset(e->data + in_size, 0, f->output_size);
	rc = pf__ctx_set_name(&e->ctx, opts != NULL ? opts->name : NULL,
	    pf__flow_name(f));
	if (rc == 0 && opts != NULL)
		rc = apply_options(e, opts);
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
	pf__engine *g = e->ctx.engine;
	pf__ctx_discard(&e->ctx);
	pf__engine_finished(g);
}

void
pf__exec_start(pf_exec *e, const pf_exec_options *opts, pf_exec **out,
    bool queue)
{
	pf__engine *g = e->ctx.engine;
	/*
	 * Once linked, e can be aborted and finish at any moment (dispose's
	 * abort, a timeout, its parent's abort), and dispose may then tear
	 * down the pool and the timer wheel that this call still uses.  A
	 * worker of the scope is safe (dispose joins it before freeing them);
	 * any other thread counts its call as unfinished work meanwhile.  The
	 * count cannot be refused: e's own count, not yet released, keeps
	 * dispose waiting until this one is added.
	 */
	pf__worker *self = pf__pool_current(g->pool);
	bool outside = self == NULL;
	if (outside)
		pf__engine_hold(g);
	pf__stats *stats = pf__engine_stats(g);
	if (stats != NULL)
		pf__stats_created(stats, self, e->ctx.flow);
	pf__trace *trace = pf__engine_trace(g);
	if (trace != NULL)
		pf__trace_created(trace, self, &e->ctx.id, trace_parent(&e->ctx),
		    e->ctx.flow, e->ctx.created_at);
	if (PF_PROBE_ON(exec_created)) {
		/* A root's parent is the scope itself: no parent id. */
		const pf_ctx *p = e->ctx.parent;
		bool root = p == NULL || p->kind == PF__CTX_ROOT;
		PF_PROBE6(exec_created, pf__uuid_half(&e->ctx.id, 0),
		    pf__uuid_half(&e->ctx.id, 1),
		    root ? 0 : pf__uuid_half(&p->id, 0),
		    root ? 0 : pf__uuid_half(&p->id, 1),
		    pf__flow_name(e->ctx.flow), (unsigned)e->ctx.depth);
		(void)root;
	}
	/* The creation's reference and the queue's, in one store: nobody
	 * else can see the record yet. */
	atomic_store_explicit(&e->ctx.refs, queue ? 2 : 1,
	    memory_order_relaxed);
	/* pending is delivered before anyone else can see the execution, so
	 * it is always the first status a callback sees. */
	if (pf__load_relaxed(&e->state) & PF__F_ON_STATUS)
		pf__status_call(e, PF_PENDING);
	/* Armed before it is linked: if the link finds the parent aborted,
	 * the cancellation that follows also cancels the timer.  Not armed
	 * if the pending callback itself aborted the execution: it finished,
	 * and nothing would cancel the timer any more.  Relaxed: nobody else
	 * can see the record yet, only that callback on this thread. */
	if (opts != NULL && opts->timeout_ms != 0 &&
	    (pf__load_relaxed(&e->state) & PF__ST_MASK) == PF_PENDING)
		pf__ctx_arm_timeout(&e->ctx, opts->timeout_ms);
	pf__ctx_link(&e->ctx);
	/* Relaxed: a stale "pending" only submits a task that will find the
	 * execution cancelled and drop its reference (pf__exec_task_run). */
	if (!queue) {
		/* The caller runs it (pf__exec_run_here) at once, or it was
		 * cancelled: no task, no queue reference.  Unless a pending
		 * callback ran since, its creation is its start. */
		e->ctx.start_is_creation =
		    !(pf__load_relaxed(&e->state) & PF__F_ON_STATUS);
	} else if ((pf__load_relaxed(&e->state) & PF__ST_MASK) == PF_PENDING) {
		/* Relaxed: a hint; the push below publishes it. */
		atomic_store_explicit(&e->ctx.where, self != NULL ?
		    self->index + 1 : 0, memory_order_relaxed);
		pf__pool_submit(g->pool, &e->task);
	} else {
		/* Cancelled at link time: no task, drop the queue's
		 * reference (taken with the creation's, above). */
		pf__ctx_release(&e->ctx);
	}
	if (out != NULL)
		*out = e;
	else
		pf__ctx_release(&e->ctx);
	if (outside)
		pf__engine_finished(g);
}

int
pf__exec_create(pf__engine *g, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *group,
    pf_exec **out)
{
	pf_exec *e;
	int rc = pf__exec_prepare(g, parent, f, input, opts, group, &e);
	if (rc == 0)
		pf__exec_start(e, opts, out, true);
	return rc;
}

/* ---------------------------------------------------- deferred and withdraw */

int
pf__exec_defer(pf__engine *g, pf_ctx *parent, const pf_flow *f,
    const pf_exec_options *opts, pf_exec **out)
{
	pf_exec *e;
	int rc = pf__exec_prepare(g, parent, f, NULL, opts, NULL, &e);
	if (rc != 0)
		return rc;
	/* Relaxed: nobody else can see the record yet. */
	atomic_store_explicit(&e->state,
	    pf__load_relaxed(&e->state) | PF__F_DEFERRED | PF__F_WAS_DEFERRED,
	    memory_order_relaxed);
	/* Not queued: nothing runs it.  Cancelled at link time (its parent
	 * was aborted meanwhile), it stays so, and settling it is refused. */
	pf__exec_start(e, opts, &e, false);
	uint32_t old = leave_pending(e, PF_RUNNING);
	if (old != UINT32_MAX) {
		mark_started(e, pf__pool_current(g->pool));
		pf__status_deliver(e, PF_RUNNING, old);
	}
	*out = e;
	return 0;
}

int
pf__exec_settle_deferred(pf_exec *e, pf_status st, int code,
    const void *output, const char *message)
{
	/* The one caller that clears the flag owns the end, and only a
	 * running execution's flag is cleared: a settle from the pending
	 * status callback (before pf__exec_defer sets it running) is refused
	 * and leaves the flag for a later one.  Acquire on success: the
	 * winner then reads the running state the creator published. */
	uint32_t old = pf__load_relaxed(&e->state);
	do {
		if (!(old & PF__F_DEFERRED) || pf__status_of(old) != PF_RUNNING)
			return PF_EINVAL;
	} while (!atomic_compare_exchange_weak_explicit(&e->state, &old,
	    old & ~PF__F_DEFERRED, memory_order_acquire,
	    memory_order_relaxed));
	/* As for a handler (run_claimed): a failure once aborted is a
	 * cancel with the abort reason. */
	int reason = pf__ctx_abort_reason(&e->ctx);
	if (st == PF_FAILED && reason != 0) {
		st = PF_CANCELLED;
		code = reason;
		message = NULL;
	}
	if (st == PF_CANCELLED && code == 0)
		code = reason != 0 ? reason : PF_ECANCELED;
	size_t n = e->ctx.flow->output_size;
	if (st == PF_COMPLETED && output != NULL && n > 0)
		memcpy(pf__exec_output(e), output, n);
	if (code != 0 && message != NULL)
		(void)pf_ctx_fail(&e->ctx, code, "%s", message);
	finish(e, code, st);
	return 0;
}

bool
pf__exec_withdraw(pf_exec *e)
{
	/* Claimed like an abort claims it (the CAS decides against the
	 * runner), then aborted: its signal fires as for any cancel. */
	if (leave_pending(e, PF__ST_CANCELLING) == UINT32_MAX)
		return false;
	pf__ctx_abort(&e->ctx, PF_ECANCELED);
	/* Another aborter may have set the reason first (its own claim then
	 * failed against ours) and still be running the listeners: as for
	 * any cancel (ctx.c, abort_one), the execution is published
	 * cancelled only after them, with that abort's reason. */
	pf__signal_wait_fired(&e->ctx);
	cancel_claimed(&e->ctx, pf__ctx_abort_reason(&e->ctx));
	return true;
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
	return e != NULL ? pf__flow_name(e->ctx.flow) : NULL;
}

pf_status
pf_exec_status(const pf_exec *e)
{
	if (e == NULL)
		return PF_PENDING;
	/* Acquire: pairs with the terminal CAS in settle(), so the result and
	 * the context's error are visible with a terminal status. */
	return (pf_status)pf__status_of(pf__exec_word(e));
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
	if (pf__status_of(pf__exec_word(e)) >= PF_COMPLETED)
		return 0;
	pf__ctx_abort(&e->ctx, PF_ECANCELED);
	return 0;
}

int
pf_exec_settle(pf_exec *e, pf_status status, int code, const void *output,
    const char *message)
{
	if (e == NULL)
		return PF_EINVAL;
	switch (status) {
	case PF_COMPLETED:
		if (code != 0)
			return PF_EINVAL;
		break;
	case PF_FAILED:
		if (code == 0)
			return PF_EINVAL;
		break;
	case PF_CANCELLED:
		break;
	default:
		return PF_EINVAL;
	}
	return pf__exec_settle_deferred(e, status, code, output, message);
}

bool
pf_exec_withdraw(pf_exec *e)
{
	return e != NULL && pf__exec_withdraw(e);
}

int
pf_exec_throw_if_aborted(const pf_exec *e)
{
	return e != NULL ? pf__ctx_abort_reason(&e->ctx) : PF_EINVAL;
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
