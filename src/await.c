/*
 * await.c: waiting for an execution's end (await.h).
 *
 * Three kinds of waiting thread:
 *
 *  - a worker of e's pool (helping_wait): runs e inline if it has not
 *    started, else other work (e's runner's deque first), and parks only
 *    when there is none, giving its run slot up meanwhile (pool.h, "Run
 *    slots").  With its stack budget for nesting spent, it blocks without
 *    helping; the pool may start a spare worker for it.
 *  - a thread that is no pool's worker (sleeping_wait, may_run): runs e
 *    itself if it has not started and a run slot is free, counting as one
 *    of the scope's threads while it runs handlers; else polls a little
 *    and sleeps.  While it sleeps it gives back the run slots its inline
 *    runs hold (frame.h), and takes them back before it returns to their
 *    handlers.
 *  - a worker of another scope's pool: blocks like an outside thread,
 *    without running e (its own pool may start a spare meanwhile).
 *
 * A sleeping wait with no deadline looks every STARVE_CHECK_NS whether e
 * can still run at all (pf__pool_starved); when that lasted
 * STARVE_GRACE_NS, a thread that may run e does so itself once a slot is
 * free, and one that cannot gives up with PF_EAGAIN.
 */
#include "config.h"

#include <sched.h>
#include <string.h>

#include "alloc.h"
#include "await.h"
#include "clock.h"
#include "engine.h"
#include "exec.h"
#include "frame.h"
#include "waiter.h"

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
 * still run, and how long that must last before the wait gives up: a
 * pool whose workers are all blocked on other scopes' healthy work is
 * starved only for a while. */
#define STARVE_CHECK_NS 20000000
#define STARVE_GRACE_NS 1000000000

static bool
past(int64_t deadline_ns)
{
	return deadline_ns >= 0 && pf__clock_mono_ns() >= deadline_ns;
}

/* Whether e is pending in a pool where nothing can run it any more. */
static bool
hopeless(const pf_exec *e)
{
	return pf__status_of(pf__load_relaxed(&((pf_exec *)e)->state)) ==
		   PF_PENDING &&
	    pf__pool_starved(e->ctx.engine->pool);
}

/*
 * Parks on p until w is signaled or the deadline passes, or (a wait with
 * no deadline) e stayed hopeless for STARVE_GRACE_NS.
 */
static void
park_signaled(pf_exec *e, pf__waiter *w, pf__parker *p, int64_t deadline_ns)
{
	int64_t since = -1;
	while (!pf__waiter_signaled(w) && !past(deadline_ns)) {
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
 * Whether this thread may run an execution inline now.  Not for a wait
 * with a deadline: the handler may run past it, and it may wait for
 * something this thread would do once its wait gave up.  Bounded nesting:
 * a handler run this way may wait in turn, on the caller's stack.
 */
static bool
inline_possible(int64_t deadline_ns)
{
	return deadline_ns < 0 && pf__frame_waiter_runs() < MAX_INLINE_RUNS &&
	    pf__thread_can_nest();
}

bool
pf__inline_begin(pf__engine *g, pf__frame *f)
{
	if (!inline_possible(-1))
		return false;
	bool held = pf__frame_holds_slot(g->pool);
	if (!held && !pf__pool_slot_take(g->pool))
		return false;
	pf__frame_push(f, PF__FRAME_WAITER_RUN, g);
	if (!held)
		f->slot = g->pool;
	return true;
}

void
pf__inline_end(pf__frame *f)
{
	pf__pool *slot = f->slot;
	pf__frame_pop(f);
	if (slot != NULL)
		pf__pool_slot_give(slot);
}

/* Runs e here if nobody started it: true if it did. */
static bool
run_inline(pf_exec *e, int64_t deadline_ns)
{
	pf__frame f;
	if (deadline_ns >= 0 || !pf__inline_begin(e->ctx.engine, &f))
		return false;
	bool ran = pf__exec_run_here(e, NULL);
	pf__inline_end(&f);
	return ran;
}

/*
 * The wait of a thread that is not a worker of e's pool (see the top of
 * this file).  open: the wait counts as unfinished work of e's scope, so
 * the pool it uses (slots, starvation) outlives it; a wait on a disposing
 * scope only sleeps (dispose finishes e).
 */
static void
sleeping_wait_in(pf_exec *e, int64_t deadline_ns, bool may_run, bool open)
{
	if (open && may_run && run_inline(e, deadline_ns))
		return;
	int64_t until = 0;
	for (unsigned i = 1; !pf__exec_done(e); i++) {
		pf__cpu_relax();
		if ((i & 15) == 0) {
			/* As the pool's spinners do: a thread the waiter
			 * depends on may be runnable on this very CPU (a
			 * process bound to one core, as mpirun binds its
			 * ranks), and must not wait for the spin to end. */
			sched_yield();
			int64_t now = pf__clock_mono_ns();
			if (until == 0)
				until = now + WAIT_SPIN_NS;
			if (now >= until ||
			    (deadline_ns >= 0 && now >= deadline_ns))
				break;
		}
	}
	if (pf__exec_done(e))
		return;
	pf__waiter w;
	pf__waiter_init(&w, pf__parker_self());
	if (!pf__waiter_register(e, &w))
		return;
	pf__frame_slots_give();
	for (;;) {
		if (open) {
			park_signaled(e, &w, w.parker, deadline_ns);
		} else {
			while (!pf__waiter_signaled(&w) && !past(deadline_ns)) {
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
		if (pf__waiter_signaled(&w) || past(deadline_ns) || !may_run ||
		    !hopeless(e))
			break;
		if (!inline_possible(deadline_ns))
			break;
		pf__frame_slots_resume();
		(void)run_inline(e, deadline_ns);
		pf__frame_slots_give();
	}
	pf__waiter_unregister(e, &w);
	pf__frame_slots_resume();
}

static void
sleeping_wait(pf_exec *e, int64_t deadline_ns, bool may_run)
{
	pf__engine *g = e->ctx.engine;
	bool open = pf__engine_enter(g) == 0;
	sleeping_wait_in(e, deadline_ns, may_run, open);
	if (open)
		pf__engine_finished(g);
}

static bool
signaled(void *w)
{
	return pf__waiter_signaled(w);
}

/* The worker e's hint names (record.h), or NULL. */
static pf__worker *
where_of(const pf_exec *e)
{
	/* Relaxed: only a hint of whom to steal from; a stale one costs a
	 * useless steal attempt. */
	uint32_t where = pf__load_relaxed(&((pf_exec *)e)->ctx.where);
	return where == 0 ? NULL :
	    pf__pool_worker_at(e->ctx.engine->pool, where - 1);
}

/* A worker's wait (see the top of this file). */
static void
helping_wait(pf_exec *e, pf__worker *wk, int64_t deadline_ns)
{
	pf__waiter w;
	pf__waiter_init(&w, &wk->parker);
	bool registered = false;
	/* A submitter woke us for queued work we have not taken yet. */
	bool owed = false;
	while (!pf__exec_done(e) && !past(deadline_ns)) {
		if (pf__worker_can_help(wk)) {
			/* Queued on our own deque: pop it (and whatever was
			 * pushed after it) rather than claim it in place, so
			 * no stale entry keeps the record alive. */
			pf__worker *where = where_of(e);
			if (where == wk && pf__pool_help(wk, NULL)) {
				owed = false;
				continue;
			}
			if (pf__exec_run_here(e, wk))
				continue;
			if (pf__pool_help(wk, where_of(e))) {
				owed = false;
				continue;
			}
		}
		if (!registered) {
			/* Register, then look once more before sleeping. */
			if (!pf__waiter_register(e, &w))
				return;
			registered = true;
			continue;
		}
		if (pf__waiter_signaled(&w))
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
		owed = pf__pool_idle_park(wk, signaled, &w, deadline_ns);
		pf__pool_slot_resume(wk->pool);
		wk->has_slot = true;
	}
	/* Woken for queued work, but e ended (or the deadline passed)
	 * before we took any: someone else must run it. */
	if (owed)
		pf__pool_pass_on(wk->pool);
	if (registered)
		pf__waiter_unregister(e, &w);
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
	if (!pf__exec_done(e)) {
		if (deadline_ns == 0)
			return PF_EAGAIN;
		/* Its handler is on this thread's stack, below us: it cannot
		 * finish before we return.  Only a running execution can be
		 * (we set it running ourselves then, so a relaxed load sees
		 * it): the walk is skipped for all others. */
		if (pf__status_of(pf__load_relaxed(&e->state)) == PF_RUNNING &&
		    pf__frame_here(PF__FRAME_HANDLER, e))
			return PF_EINVAL;
		pf__worker *w = pf__pool_current(e->ctx.engine->pool);
		pf__worker *other = w == NULL ? pf__worker_self() : NULL;
		if (w != NULL) {
			helping_wait(e, w, deadline_ns);
		} else if (other != NULL) {
			pf__pool_block_begin(other);
			sleeping_wait(e, deadline_ns, false);
			pf__pool_block_end(other);
		} else {
			sleeping_wait(e, deadline_ns, true);
		}
		if (!pf__exec_done(e))
			return PF_EAGAIN;
	}
	return result_of(e, output);
}

int
pf__exec_wait_end(pf_exec *e, void *output)
{
	int rc = pf__exec_wait(e, output, -1);
	if (rc != PF_EAGAIN || pf__exec_done(e))
		return rc;
	/* Nothing can run it now: abort it (a pending one is cancelled at
	 * once, a running one ends when its handler returns) and wait for
	 * its end, so that nothing of it outlives the caller's frame. */
	pf_exec_abort(e);
	while (!pf__exec_done(e))
		(void)pf__exec_wait(e, NULL, -1);
	return PF_EAGAIN;
}

/* ---------------------------------------------------------- public API */

int
pf_exec_wait(pf_exec *e, void *output)
{
	/* Inside a status callback or signal listener a wait may block the
	 * very transition it waits for (pumped.h). */
	if (e == NULL || pf__in_user_callback())
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
	if (pf__in_user_callback())
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

/* ---------------------------------------------------- several handles */

/* A relative timeout as await's deadline: -1 forever, 0 poll. */
static int64_t
deadline_of(uint64_t timeout_ms)
{
	if (timeout_ms == PF_FOREVER)
		return -1;
	if (timeout_ms == 0)
		return 0;
	uint64_t cap = (uint64_t)INT64_MAX / 2000000;
	int64_t ms = (int64_t)(timeout_ms < cap ? timeout_ms : cap);
	return pf__clock_mono_ns() + ms * 1000000;
}

static int
check_handles(pf_exec *const *handles, size_t n, uint64_t timeout_ms)
{
	if (handles == NULL || n == 0)
		return PF_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (handles[i] == NULL)
			return PF_EINVAL;
	/* As pf_exec_wait_for: polling only, in callbacks. */
	if (timeout_ms != 0 && pf__in_user_callback())
		return PF_EINVAL;
	return 0;
}

int
pf_exec_wait_all(pf_exec *const *handles, size_t n, uint64_t timeout_ms)
{
	int rc = check_handles(handles, n, timeout_ms);
	if (rc != 0)
		return rc;
	int64_t deadline = deadline_of(timeout_ms);
	/* One after the other, each with the single wait's machinery
	 * (helping, inline runs, starvation): the total is bounded by the
	 * one deadline. */
	for (size_t i = 0; i < n; i++) {
		rc = pf__exec_wait(handles[i], NULL, deadline);
		if (rc == PF_EAGAIN && !pf__exec_done(handles[i]))
			return PF_EAGAIN;
		if (rc == PF_EINVAL && !pf__exec_done(handles[i]))
			return PF_EINVAL; /* waiting on itself */
	}
	for (size_t i = 0; i < n; i++) {
		rc = result_of(handles[i], NULL);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The lowest index of a finished execution, or n. */
static size_t
first_done(pf_exec *const *handles, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pf__exec_done(handles[i]))
			return i;
	return n;
}

/* How often a wait on several handles wakes to look at them again (the
 * finishers unpark it; this is for starvation, as in sleeping_wait). */
#define ANY_RECHECK_NS 20000000

typedef struct any_wait {
	pf__waiter *ws;
	size_t n;
} any_wait;

static bool
any_signaled(void *arg)
{
	const any_wait *a = arg;
	for (size_t k = 0; k < a->n; k++)
		if (pf__waiter_signaled(&a->ws[k]))
			return true;
	return false;
}

/* Whether no unfinished handle can run any more (each pending in a pool
 * where nothing can run it). */
static bool
all_hopeless(pf_exec *const *handles, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (!pf__exec_done(handles[k]) && !hopeless(handles[k]))
			return false;
	return true;
}

int
pf_exec_wait_any(pf_exec *const *handles, size_t n, uint64_t timeout_ms,
    size_t *index)
{
	int rc = check_handles(handles, n, timeout_ms);
	if (rc != 0 || index == NULL)
		return rc != 0 ? rc : PF_EINVAL;
	/* Waiting on a handler below us on this thread's stack (our own
	 * execution or an ancestor's) would wait for ourselves, as
	 * pf_exec_wait sees too. */
	for (size_t k = 0; k < n; k++)
		if (pf__status_of(pf__load_relaxed(&handles[k]->state)) ==
			PF_RUNNING &&
		    pf__frame_here(PF__FRAME_HANDLER, handles[k]))
			return PF_EINVAL;
	int64_t deadline = deadline_of(timeout_ms);
	/* A worker helps only where some handle's work is queued: its own
	 * pool.  Waiting on other scopes only, it blocks as pf_exec_wait
	 * does there. */
	pf__worker *self = pf__worker_self();
	bool helps = false;
	for (size_t k = 0; k < n && self != NULL && !helps; k++)
		helps = handles[k]->ctx.engine->pool == self->pool;
	pf__waiter local[8];
	pf__waiter *ws = n <= 8 ? local : NULL;
	int64_t hopeless_since = -1;
	bool owed = false; /* as in helping_wait */
	for (;;) {
		size_t i = first_done(handles, n);
		if (i < n) {
			rc = 0;
			*index = i;
			break;
		}
		if (deadline == 0 || past(deadline)) {
			rc = PF_EAGAIN;
			break;
		}
		/* A worker with stack and a slot runs queued work meanwhile,
		 * as a single wait does: maybe what it waits for.  (No
		 * pending handle is claimed in place: an outside thread
		 * would be committed to it while another finished first.) */
		if (helps && pf__worker_can_help(self) &&
		    pf__pool_help(self, NULL)) {
			owed = false;
			continue;
		}
		/* With no deadline, a wait on work nothing can run fails
		 * after STARVE_GRACE_NS, as a single sleeping wait does. */
		if (deadline < 0) {
			int64_t now = pf__clock_mono_ns();
			if (!all_hopeless(handles, n))
				hopeless_since = -1;
			else if (hopeless_since < 0)
				hopeless_since = now;
			else if (now - hopeless_since >= STARVE_GRACE_NS) {
				rc = PF_EAGAIN;
				break;
			}
		}
		if (ws == NULL && (ws = pf__calloc(n, sizeof(*ws))) == NULL) {
			rc = PF_ENOMEM;
			break;
		}
		/* One waiter per handle, all on this thread's parker (a
		 * worker's own, which its idle park sleeps on). */
		pf__parker *p = self != NULL ? &self->parker :
		    pf__parker_self();
		size_t reg = 0;
		bool done = false;
		for (; reg < n; reg++) {
			pf__waiter_init(&ws[reg], p);
			if (!pf__waiter_register(handles[reg], &ws[reg])) {
				done = true; /* finished meanwhile */
				break;
			}
		}
		if (!done) {
			any_wait a = { ws, n };
			int64_t until = pf__clock_mono_ns() + ANY_RECHECK_NS;
			if (deadline >= 0 && deadline < until)
				until = deadline;
			if (helps && pf__worker_can_help(self)) {
				/* Idle as a helping waiter: the slot goes to
				 * whoever can use it; queued work wakes us. */
				self->has_slot = false;
				pf__pool_slot_give(self->pool);
				owed = pf__pool_idle_park(self, any_signaled,
				    &a, until);
				pf__pool_slot_resume(self->pool);
				self->has_slot = true;
			} else {
				/* A worker that cannot help counts as blocked
				 * (its pool may start a spare); any run slots
				 * this thread's inline runs hold are given
				 * back while it sleeps. */
				if (self != NULL)
					pf__pool_block_begin(self);
				pf__frame_slots_give();
				while (!any_signaled(&a) &&
				    pf__parker_park_until(p, until))
					;
				pf__frame_slots_resume();
				if (self != NULL)
					pf__pool_block_end(self);
			}
		}
		for (size_t k = 0; k < reg; k++)
			pf__waiter_unregister(handles[k], &ws[k]);
	}
	if (owed)
		pf__pool_pass_on(self->pool);
	if (ws != local)
		pf__free(ws);
	return rc;
}
