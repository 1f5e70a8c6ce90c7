/*
 * check_stress_trees.c: deep random trees of executions under every kind
 * of disturbance, with 1, 2 and 8 workers.
 *
 * Four outside threads submit roots and wait for most of them.  Each
 * handler reads the tag its ancestors set (while they set it again), sets
 * its own, and starts children: one by one (waited at once, in a batch,
 * handed to the aborter thread, aborted by the handler itself at once or
 * later, or forgotten), as a pf_ctx_parallel or pf_ctx_parallel_settled
 * group, or as a journal pair (the same key twice: the second call must
 * create nothing).  Trees go down to depth 20 with fan-outs up to 8; some
 * handlers fail with their own code, abort their own context, spin until
 * aborted, run an fn step, or subscribe late to a child's status; 1 in 8
 * executions has a 1-5 ms timeout.  A counting extension sees every
 * operation.
 *
 * Every execution owns a slot, found by its input; its plan is a hash of
 * the slot number, so the checker recomputes it.  Callbacks, handlers and
 * waiters only write atomics; the test thread asserts after joining its
 * threads and disposing the scope.  Invariants: one terminal status per
 * execution, each transition delivered once and pending first, no handler
 * for an execution cancelled while pending, the error and output that the
 * plan implies, every waiter returns, every descendant of an aborted
 * context ends (the run drains), and the extension counted each start.
 *
 * Size: pf_test_scale(STRESS_CHECK) executions per worker count under
 * `make check`; PF_STRESS_FULL=1 (`make stress`) runs STRESS_FULL each,
 * 10^7 in all, in rounds of at most ROUND slots.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pumped.h"
#include "../testlib.h"

#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-function"
#endif

#define MAX_DEPTH 20
#define MAX_FANOUT 8
#define OUTSIDE_THREADS 4
#define RING_SIZE 512
#define STRESS_CHECK 30000L
#define STRESS_FULL 3400000L
#define ROUND 200000L
#define SCOPE_TAG_V 0xffffffffu

/* ----------------------------------------------------------- the plan */

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finaliser. */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t salt; /* per round, so rounds differ */

static uint64_t
plan(long id, unsigned what)
{
	return mix((uint64_t)id * 8 + what + salt);
}

/* Roughly 1 in 10 executions fails with its own code. */
static int
planned_code(long id)
{
	uint64_t h = plan(id, 0);
	return h % 10 == 0 ? PF_EUSER - 1 - (int)((h >> 8) % 100) : 0;
}

/* Roughly 1 in 8 executions has a 1-5 ms timeout. */
static uint64_t
planned_timeout(long id)
{
	uint64_t h = plan(id, 1);
	return h % 8 == 0 ? 1 + (h >> 8) % 5 : 0;
}

/* How a single child is used by its parent, or a root by its submitter. */
enum use {
	USE_WAIT,
	USE_BATCH,
	USE_ABORTER,
	USE_FORGET,
	USE_ABORT_NOW,
	USE_ABORT_LATER
};

static enum use
planned_use(long id)
{
	unsigned r = (unsigned)(plan(id, 2) % 100);
	if (r < 45)
		return USE_WAIT;
	if (r < 65)
		return USE_BATCH;
	if (r < 78)
		return USE_ABORTER;
	if (r < 86)
		return USE_FORGET;
	if (r < 92)
		return USE_ABORT_NOW;
	return USE_ABORT_LATER;
}

/* How a handler starts its children. */
enum mode { MODE_SINGLE, MODE_PARALLEL, MODE_SETTLED, MODE_JOURNAL };

static enum mode
planned_mode(long id)
{
	unsigned r = (unsigned)(plan(id, 3) % 100);
	return r < 70 ? MODE_SINGLE : r < 82 ? MODE_PARALLEL :
	    r < 92			      ? MODE_SETTLED :
					        MODE_JOURNAL;
}

/* Mean a little over one child, so trees reach depth 20 now and then. */
static int
planned_kids(long id)
{
	uint64_t h = plan(id, 4);
	unsigned r = (unsigned)(h % 100);
	if (r < 45)
		return 0;
	if (r < 80)
		return 1;
	if (r < 93)
		return 2 + (int)((h >> 8) % 2);
	return 4 + (int)((h >> 8) % (MAX_FANOUT - 3));
}

/* Other handler behaviour: bits of one hash. */
enum {
	DO_SPIN = 1,        /* spin until aborted (bounded) */
	DO_NOTICE = 2,      /* return the abort reason if aborted */
	DO_SELF_ABORT = 4,  /* abort its own context after its children */
	DO_FN = 8,          /* run an fn step */
	DO_LATE_SUB = 16,   /* subscribe late to waited children */
};

static unsigned
planned_do(long id)
{
	uint64_t h = plan(id, 5);
	unsigned d = 0;
	if (h % 24 == 0)
		d |= DO_SPIN;
	if ((h >> 8) % 3 == 0)
		d |= DO_NOTICE;
	if ((h >> 16) % 40 == 0)
		d |= DO_SELF_ABORT;
	if ((h >> 24) % 6 == 0)
		d |= DO_FN;
	if ((h >> 32) % 4 == 0)
		d |= DO_LATE_SUB;
	return d;
}

/* ---------------------------------------------------------------- slots */

enum kind { KIND_PLAIN, KIND_JOURNAL_DUP };

typedef struct slot {
	_Atomic int parent;  /* parent slot, -1 for roots */
	_Atomic int kind;
	_Atomic int created; /* its exec call returned 0 */
	_Atomic int refused; /* the code of a refused exec call */
	_Atomic int n[5];    /* transitions delivered, per status */
	_Atomic int seq;
	_Atomic int order_bad;
	_Atomic int ran;
	_Atomic int cb_error;
	_Atomic int cb_status;
	_Atomic int late_sub;   /* late subscriptions made */
	_Atomic int late_terms; /* terminal statuses they saw */
	_Atomic int waited;
	_Atomic int wait_rc;
	_Atomic int wait_out;
	_Atomic int wait_status;
} slot;

typedef struct run {
	pf_scope *scope;
	slot *slots;
	long n;
	_Atomic long next;
	_Atomic long live;
	_Atomic long terminals;
	_Atomic int stop;
	_Atomic long bad;          /* problems found on other threads */
	_Atomic(const char *) why; /* the first of them */
	_Atomic long ops[3];       /* extension operations per target */
	_Atomic long groups;       /* parallel calls made */
	_Atomic long fn_ran;
	_Atomic long journal_hits;
	_Atomic long tag_reads;
	pthread_mutex_t ring_mu;
	pf_exec *ring[RING_SIZE];
	int ring_n;
} run;

static run R;

typedef struct tree_in {
	int id;
	int depth;
} tree_in;

static const pf_tag tree_tag = { "tree", sizeof(uint32_t), NULL };

static void
problem(const char *why)
{
	const char *none = NULL;
	atomic_compare_exchange_strong(&R.why, &none, why);
	atomic_fetch_add_explicit(&R.bad, 1, memory_order_relaxed);
}

static long
take_slot(void)
{
	long id = atomic_fetch_add_explicit(&R.next, 1, memory_order_relaxed);
	return id < R.n ? id : -1;
}

static void
on_status(pf_exec *e, pf_status st, void *data)
{
	slot *s = data;
	int prev = atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
	bool ok = pf_test_transition_ok(prev, st);
	if (!ok)
		atomic_fetch_add_explicit(&s->order_bad, 1,
		    memory_order_relaxed);
	if ((unsigned)st < 5)
		atomic_fetch_add_explicit(&s->n[st], 1, memory_order_relaxed);
	if (st >= PF_COMPLETED) {
		atomic_store_explicit(&s->cb_error,
		    pf_ctx_error(pf_exec_ctx(e), NULL), memory_order_relaxed);
		atomic_store_explicit(&s->cb_status, (int)pf_exec_status(e),
		    memory_order_relaxed);
		/* Release: the slot's writes above happen before the test
		 * thread's acquire load of terminals. */
		atomic_fetch_add_explicit(&R.terminals, 1,
		    memory_order_release);
	}
}

static void
late_cb(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	slot *s = data;
	if (st >= PF_COMPLETED)
		atomic_fetch_add_explicit(&s->late_terms, 1,
		    memory_order_relaxed);
}

static void
record_wait(long id, pf_exec *e)
{
	slot *s = &R.slots[id];
	int out = -1;
	int rc = pf_exec_wait(e, &out);
	atomic_store_explicit(&s->wait_rc, rc, memory_order_relaxed);
	atomic_store_explicit(&s->wait_out, out, memory_order_relaxed);
	atomic_store_explicit(&s->wait_status, (int)pf_exec_status(e),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&s->waited, 1, memory_order_relaxed);
	/* The wait returned after every terminal callback. */
	if (atomic_load_explicit(&s->late_sub, memory_order_relaxed) &&
	    atomic_load_explicit(&s->late_terms, memory_order_relaxed) != 1)
		problem("wait returned before a late subscriber's terminal "
			"callback");
}

/* pf_ctx_run hands back a code, not a status. */
#define STATUS_UNKNOWN (-1)

static void
record_result(long id, int rc, int out, int st)
{
	slot *s = &R.slots[id];
	atomic_store_explicit(&s->wait_rc, rc, memory_order_relaxed);
	atomic_store_explicit(&s->wait_out, out, memory_order_relaxed);
	atomic_store_explicit(&s->wait_status, st, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->waited, 1, memory_order_relaxed);
}

static void
ring_push(pf_exec *e)
{
	pf_exec_retain(e);
	pthread_mutex_lock(&R.ring_mu);
	if (R.ring_n < RING_SIZE) {
		R.ring[R.ring_n++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&R.ring_mu);
	pf_exec_release(e);
}

static void
tiny_pause(uint64_t h)
{
	struct timespec ts = { 0, (long)(h % 200) * 1000 };
	nanosleep(&ts, NULL);
}

static bool
is_abort_code(int rc)
{
	return rc == PF_ECANCELED || rc == PF_ETIMEDOUT;
}

static int tree_handler(pf_ctx *c, const tree_in *in, int *out);
PF_FLOW(tree_flow, tree_in, int, tree_handler)

static pf_exec_options
slot_opts(long id)
{
	pf_exec_options o = { .timeout_ms = planned_timeout(id),
		.on_status = on_status, .on_status_data = &R.slots[id] };
	return o;
}

static void
prepare(long id, long parent, int kind)
{
	atomic_store_explicit(&R.slots[id].parent, (int)parent,
	    memory_order_relaxed);
	atomic_store_explicit(&R.slots[id].kind, kind, memory_order_relaxed);
}

/*
 * Starts execution id under parent (NULL: a root).  Returns the handle
 * (a reference) or NULL when refused or forgotten.
 */
static pf_exec *
start(pf_ctx *parent, long parent_id, long id, int depth)
{
	slot *s = &R.slots[id];
	tree_in in = { (int)id, depth };
	pf_exec_options o = slot_opts(id);
	bool forget = planned_use(id) == USE_FORGET;
	pf_exec *e = NULL;
	prepare(id, parent_id, KIND_PLAIN);
	atomic_fetch_add_explicit(&R.live, 1, memory_order_relaxed);
	int rc = parent != NULL ?
	    pf_ctx_exec(parent, &tree_flow, &in, &o, forget ? NULL : &e) :
	    pf_scope_exec(R.scope, &tree_flow, &in, &o, forget ? NULL : &e);
	if (rc != 0) {
		atomic_store_explicit(&s->refused, rc, memory_order_relaxed);
		atomic_fetch_sub_explicit(&R.live, 1, memory_order_relaxed);
		return NULL;
	}
	atomic_store_explicit(&s->created, 1, memory_order_relaxed);
	switch (planned_use(id)) {
	case USE_ABORTER:
		ring_push(e);
		break;
	case USE_ABORT_NOW:
		pf_exec_abort(e);
		break;
	default:
		break;
	}
	return e;
}

/* Reads the tree tag: the scope's value or one set by an ancestor (or by
 * c itself when mine). */
static void
check_tag(pf_ctx *c, long id, bool mine)
{
	uint32_t v = 0;
	if (pf_ctx_get(c, &tree_tag, &v) != 0) {
		problem("tree tag missing (scope tag set)");
		return;
	}
	atomic_fetch_add_explicit(&R.tag_reads, 1, memory_order_relaxed);
	if (v == SCOPE_TAG_V)
		return;
	long owner = (long)(v >> 4);
	if ((v & 15) > 2) {
		problem("tree tag holds a value nobody set");
		return;
	}
	long a = mine ? id :
			atomic_load_explicit(&R.slots[id].parent,
			    memory_order_relaxed);
	for (int hops = 0; a >= 0 && hops <= MAX_DEPTH + 1; hops++) {
		if (a == owner)
			return;
		a = atomic_load_explicit(&R.slots[a].parent,
		    memory_order_relaxed);
	}
	problem("tree tag read from a context that is not an ancestor");
}

static void
set_tag(pf_ctx *c, long id, unsigned k)
{
	uint32_t v = (uint32_t)id << 4 | k, got = 0;
	if (pf_ctx_set(c, &tree_tag, &v) != 0 ||
	    pf_ctx_get(c, &tree_tag, &got) != 0 || got != v)
		problem("tag set then get differs");
}

static int
fn_step(pf_ctx *c, void *arg)
{
	long id = *(long *)arg;
	atomic_fetch_add_explicit(&R.fn_ran, 1, memory_order_relaxed);
	/* An fn context sees its parent's tags and shadows them. */
	check_tag(c, id, true);
	set_tag(c, id, 2);
	return planned_code(id ^ 0x77) != 0 ? PF_EUSER - 7 : 0;
}

/* Children one by one, used as planned. */
static void
kids_single(pf_ctx *c, const tree_in *in, int kids, unsigned dos)
{
	pf_exec *held[MAX_FANOUT];
	long ids[MAX_FANOUT];
	int n = 0;
	for (int k = 0; k < kids; k++) {
		long id = take_slot();
		if (id < 0)
			break;
		pf_exec *e = start(c, in->id, id, in->depth + 1);
		if (e == NULL) {
			int rc = atomic_load_explicit(&R.slots[id].refused,
			    memory_order_relaxed);
			if (rc != 0 && !(is_abort_code(rc) && pf_ctx_aborted(c)))
				problem("child refused without its parent "
					"aborted");
			continue;
		}
		if (dos & DO_LATE_SUB && planned_use(id) == USE_WAIT) {
			if (pf_exec_on_status(e, late_cb, &R.slots[id]) == 0)
				atomic_store_explicit(&R.slots[id].late_sub, 1,
				    memory_order_relaxed);
		}
		if (planned_use(id) == USE_WAIT) {
			record_wait(id, e);
			pf_exec_release(e);
		} else {
			held[n] = e;
			ids[n++] = id;
		}
	}
	/* Abort the later ones now that all were started. */
	for (int k = 0; k < n; k++)
		if (planned_use(ids[k]) == USE_ABORT_LATER)
			pf_exec_abort(held[k]);
	for (int k = 0; k < n; k++) {
		if (planned_use(ids[k]) != USE_ABORTER ||
		    plan(in->id, 6) % 2 == 0)
			record_wait(ids[k], held[k]);
		pf_exec_release(held[k]);
	}
}

static void
kids_group(pf_ctx *c, const tree_in *in, int kids, bool settled)
{
	pf_call calls[MAX_FANOUT];
	pf_exec_options opts[MAX_FANOUT];
	tree_in ins[MAX_FANOUT];
	int outs[MAX_FANOUT];
	long ids[MAX_FANOUT];
	int n = 0;
	for (int k = 0; k < kids; k++) {
		long id = take_slot();
		if (id < 0)
			break;
		prepare(id, in->id, KIND_PLAIN);
		ids[n] = id;
		ins[n] = (tree_in){ (int)id, in->depth + 1 };
		opts[n] = slot_opts(id);
		outs[n] = -1;
		calls[n] = (pf_call){ &tree_flow, &ins[n], &outs[n], &opts[n],
			1, PF_PENDING, NULL };
		n++;
	}
	if (n == 0)
		return;
	/* Counted as live before the call, as start() does. */
	atomic_fetch_add_explicit(&R.live, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&R.groups, 1, memory_order_relaxed);
	pf_parallel_stats st = { 99, 99, 99, 99 };
	int rc = settled ? pf_ctx_parallel_settled(c, calls, (size_t)n, &st) :
			   pf_ctx_parallel(c, calls, (size_t)n, &st);
	int made = 0;
	for (int k = 0; k < n; k++)
		made += atomic_load_explicit(&R.slots[ids[k]].n[PF_PENDING],
		    memory_order_relaxed) != 0;
	if (made == 0) {
		/* Refused: the group ran nothing. */
		if (!is_abort_code(rc) || !pf_ctx_aborted(c))
			problem("parallel ran nothing without its parent "
				"aborted");
		for (int k = 0; k < n; k++)
			atomic_store_explicit(&R.slots[ids[k]].refused, rc,
			    memory_order_relaxed);
		atomic_fetch_sub_explicit(&R.live, n, memory_order_relaxed);
		return;
	}
	size_t ok = 0;
	bool rc_seen = rc == 0, cut_short = false;
	for (int k = 0; k < n; k++) {
		if (atomic_load_explicit(&R.slots[ids[k]].n[PF_PENDING],
			memory_order_relaxed) == 0) {
			/* The parent was aborted while the group started its
			 * calls: the later ones were refused. */
			if (!is_abort_code(calls[k].result) ||
			    calls[k].status != PF_CANCELLED ||
			    !pf_ctx_aborted(c))
				problem("parallel call not started, yet not "
					"cancelled by an abort");
			atomic_store_explicit(&R.slots[ids[k]].refused,
			    calls[k].result, memory_order_relaxed);
			atomic_fetch_sub_explicit(&R.live, 1,
			    memory_order_relaxed);
			rc_seen |= calls[k].result == rc;
			cut_short = true;
			continue;
		}
		atomic_store_explicit(&R.slots[ids[k]].created, 1,
		    memory_order_relaxed);
		record_result(ids[k], calls[k].result, outs[k],
		    calls[k].status);
		ok += calls[k].status == PF_COMPLETED;
		rc_seen |= calls[k].result == rc;
	}
	if (st.total != (size_t)n || st.succeeded != ok ||
	    st.failed != (size_t)n - ok)
		problem("parallel stats do not count what happened");
	/* A settled group whose parent was aborted while it started its
	 * calls could not run them all: it returns the abort reason. */
	bool settled_ok = rc == 0 || (cut_short && is_abort_code(rc));
	if (settled ? !settled_ok : (rc == 0) != (ok == (size_t)n)) {
		problem("parallel's return disagrees with its calls");
		fprintf(stderr, "parallel%s: rc %d, %zu of %d completed, "
				"parent aborted %d:",
		    settled ? "_settled" : "", rc, ok, n, pf_ctx_aborted(c));
		for (int k = 0; k < n; k++)
			fprintf(stderr, " [%s %d pending %d]",
			    pf_status_name(calls[k].status), calls[k].result,
			    atomic_load(&R.slots[ids[k]].n[PF_PENDING]));
		fprintf(stderr, "\n");
	}
	if (!rc_seen)
		problem("parallel returned a code none of its calls had");
}

/* The same key twice: the second call runs nothing (unless the first was
 * cancelled) and returns the first one's result. */
static void
kids_journal(pf_ctx *c, const tree_in *in)
{
	long id1 = take_slot(), id2 = take_slot();
	if (id1 < 0 || id2 < 0) {
		/* The last slot of a round: unused, like a journal hit. */
		if (id1 >= 0)
			prepare(id1, in->id, KIND_JOURNAL_DUP);
		return;
	}
	char key[32];
	snprintf(key, sizeof(key), "j%d", in->id);
	prepare(id1, in->id, KIND_PLAIN);
	prepare(id2, in->id, KIND_JOURNAL_DUP);
	tree_in i1 = { (int)id1, in->depth + 1 }, i2 = { (int)id2,
		in->depth + 1 };
	pf_exec_options o1 = slot_opts(id1), o2 = slot_opts(id2);
	o1.key = o2.key = key;
	int out1 = -1, out2 = -1;
	atomic_fetch_add_explicit(&R.live, 2, memory_order_relaxed);
	int r1 = pf_ctx_run(c, &tree_flow, &i1, &out1, &o1);
	bool made1 = atomic_load_explicit(&R.slots[id1].n[PF_PENDING],
	    memory_order_relaxed);
	if (made1) {
		atomic_store_explicit(&R.slots[id1].created, 1,
		    memory_order_relaxed);
		record_result(id1, r1, out1, STATUS_UNKNOWN);
	} else {
		atomic_store_explicit(&R.slots[id1].refused, r1,
		    memory_order_relaxed);
		atomic_fetch_sub_explicit(&R.live, 1, memory_order_relaxed);
	}
	int r2 = pf_ctx_run(c, &tree_flow, &i2, &out2, &o2);
	bool made2 = atomic_load_explicit(&R.slots[id2].n[PF_PENDING],
	    memory_order_relaxed);
	if (made2) {
		atomic_store_explicit(&R.slots[id2].created, 1,
		    memory_order_relaxed);
		record_result(id2, r2, out2, STATUS_UNKNOWN);
	} else {
		atomic_fetch_sub_explicit(&R.live, 1, memory_order_relaxed);
	}
	if (!made1 || is_abort_code(r1))
		return; /* cancelled first calls are dropped: anything goes */
	if (made2)
		problem("journal ran a key twice");
	else if (r2 != r1 || (r1 == 0 && out2 != out1))
		if (!(is_abort_code(r2) && pf_ctx_aborted(c)))
			problem("journal hit returned another result");
	if (!made2)
		atomic_fetch_add_explicit(&R.journal_hits, 1,
		    memory_order_relaxed);
}

static int
tree_handler(pf_ctx *c, const tree_in *in, int *out)
{
	long id = in->id;
	slot *s = &R.slots[id];
	atomic_fetch_add_explicit(&s->ran, 1, memory_order_relaxed);
	unsigned dos = planned_do(id);
	uint32_t depth = 999;
	if (pf_ctx_get(c, &pf_flow_depth_tag, &depth) != 0 ||
	    depth != (uint32_t)in->depth)
		problem("flow depth tag differs from the tree depth");
	check_tag(c, id, false);
	set_tag(c, id, 0);
	if (in->depth < MAX_DEPTH) {
		int kids = planned_kids(id);
		switch (kids == 0 ? MODE_SINGLE : planned_mode(id)) {
		case MODE_SINGLE:
			kids_single(c, in, kids, dos);
			break;
		case MODE_PARALLEL:
			kids_group(c, in, kids, false);
			break;
		case MODE_SETTLED:
			kids_group(c, in, kids, true);
			break;
		case MODE_JOURNAL:
			kids_journal(c, in);
			break;
		}
	}
	/* Set again while children may still read it (forgotten ones). */
	set_tag(c, id, 1);
	if (dos & DO_FN) {
		long arg = id;
		int want = planned_code(id ^ 0x77) != 0 ? PF_EUSER - 7 : 0;
		int rc = pf_ctx_exec_fn(c, "step", fn_step, &arg);
		if (rc != want && !(is_abort_code(rc) && pf_ctx_aborted(c)))
			problem("pf_ctx_exec_fn did not return fn's code");
	}
	uint64_t h = plan(id, 7);
	if (dos & DO_SPIN) {
		for (int i = 0; i < 10 && !pf_ctx_aborted(c); i++)
			tiny_pause(h >> 16);
	}
	if (dos & DO_SELF_ABORT)
		pf_ctx_abort(c);
	if (dos & DO_NOTICE) {
		int rc = pf_ctx_throw_if_aborted(c);
		if (rc != 0)
			return rc;
	}
	int code = planned_code(id);
	if (code != 0)
		return pf_ctx_fail(c, code, "planned failure of %ld", id);
	*out = (int)id * 2;
	return 0;
}

/* ------------------------------------------------------------ extension */

static int
count_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)state;
	if ((unsigned)op->target < 3)
		atomic_fetch_add_explicit(&R.ops[op->target], 1,
		    memory_order_relaxed);
	if (op->context == NULL)
		problem("operation without a context");
	return pf_next_call(next);
}

static const pf_extension counting = { "counting", NULL, count_wrap, NULL,
	NULL };

/* -------------------------------------------------------- outside threads */

static void *
submitter(void *arg)
{
	(void)arg;
	pf_exec *batch[8];
	long ids[8];
	int n = 0;
	for (;;) {
		long id = take_slot();
		if (id < 0)
			break;
		pf_exec *e = start(NULL, -1, id, 0);
		if (e == NULL)
			continue;
		enum use u = planned_use(id);
		if (u == USE_WAIT) {
			record_wait(id, e);
			pf_exec_release(e);
			continue;
		}
		if (u == USE_ABORT_LATER)
			pf_exec_abort(e);
		batch[n] = e;
		ids[n++] = id;
		if (n == 8) {
			for (int k = 0; k < n; k++) {
				record_wait(ids[k], batch[k]);
				pf_exec_release(batch[k]);
			}
			n = 0;
		}
	}
	for (int k = 0; k < n; k++) {
		record_wait(ids[k], batch[k]);
		pf_exec_release(batch[k]);
	}
	return NULL;
}

static void *
aborter(void *arg)
{
	(void)arg;
	uint64_t x = 88172645463325252ull ^ salt;
	while (!atomic_load_explicit(&R.stop, memory_order_acquire)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pf_exec *e = NULL;
		pthread_mutex_lock(&R.ring_mu);
		if (R.ring_n > 0) {
			int i = (int)(x % (uint64_t)R.ring_n);
			e = R.ring[i];
			R.ring[i] = R.ring[--R.ring_n];
		}
		pthread_mutex_unlock(&R.ring_mu);
		if (e == NULL) {
			tiny_pause(50);
			continue;
		}
		if ((x >> 32) % 2)
			tiny_pause(x >> 33);
		/* Its context or the execution: both abort the subtree. */
		if ((x >> 40) % 2)
			pf_ctx_abort(pf_exec_ctx(e));
		else
			pf_exec_abort(e);
		pf_exec_release(e);
	}
	return NULL;
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ checking */

static const char *
check_slot(long id)
{
	slot *s = &R.slots[id];
	int created = atomic_load(&s->created);
	int refused = atomic_load(&s->refused);
	int pend = atomic_load(&s->n[PF_PENDING]);
	if (atomic_load(&s->kind) == KIND_JOURNAL_DUP && !created) {
		/* A journal hit: nothing was created, nothing delivered. */
		if (pend != 0 || atomic_load(&s->seq) != 0 ||
		    atomic_load(&s->ran) != 0)
			return "journal hit delivered transitions";
		return NULL;
	}
	if (!created) {
		if (pend != 0 || atomic_load(&s->ran) != 0)
			return "refused yet delivered transitions or ran";
		return is_abort_code(refused) ? NULL :
						"neither created nor refused "
						"with an abort code";
	}
	if (refused != 0)
		return "created and refused";
	if (atomic_load(&s->order_bad) != 0)
		return "transitions out of order";
	if (pend != 1)
		return "pending not seen exactly once";
	int running = atomic_load(&s->n[PF_RUNNING]);
	if (running > 1)
		return "running seen twice";
	int terms = atomic_load(&s->n[PF_COMPLETED]) +
	    atomic_load(&s->n[PF_FAILED]) + atomic_load(&s->n[PF_CANCELLED]);
	if (terms != 1)
		return "not exactly one terminal status";
	if (atomic_load(&s->seq) != 2 + running)
		return "extra transitions";
	pf_status t = atomic_load(&s->n[PF_COMPLETED]) ? PF_COMPLETED :
	    atomic_load(&s->n[PF_FAILED])               ? PF_FAILED :
							  PF_CANCELLED;
	if (atomic_load(&s->cb_status) != (int)t)
		return "pf_exec_status in the terminal callback differs";
	int ran = atomic_load(&s->ran);
	if (ran != running)
		return running ? "running delivered but the handler did not "
				 "run" :
				 "handler ran for an execution cancelled while "
				 "pending";
	int err = atomic_load(&s->cb_error);
	int code = planned_code(id);
	switch (t) {
	case PF_COMPLETED:
		if (err != 0)
			return "completed with an error";
		break;
	case PF_FAILED:
		if (code == 0 || err != code)
			return "failed with another code than the handler's";
		break;
	default:
		if (!is_abort_code(err))
			return "cancelled with a code other than "
			       "ECANCELED/ETIMEDOUT";
		break;
	}
	if (atomic_load(&s->late_sub) && atomic_load(&s->late_terms) != 1)
		return "late subscriber did not see one terminal status";
	if (atomic_load(&s->waited) > 1)
		return "waited twice";
	if (atomic_load(&s->waited) == 1) {
		int rc = atomic_load(&s->wait_rc);
		if (rc != err)
			return "wait returned another code than the error";
		if (t == PF_COMPLETED && atomic_load(&s->wait_out) != id * 2)
			return "completed with a wrong output";
		int ws = atomic_load(&s->wait_status);
		if (ws != STATUS_UNKNOWN && ws != (int)t)
			return "status after wait is not the terminal one";
	}
	return NULL;
}

typedef struct totals {
	long created, ran, failed, cancelled, pending_cancel, timed_out,
	    groups, journal_hits, fn_steps, tag_reads;
	int max_depth_seen;
	int64_t ms;
} totals;

/* One round: n slots on a new scope with `threads` workers. */
static void
stress_round(unsigned threads, long n, totals *tot)
{
	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.ring_mu, NULL);
	R.n = n;
	R.slots = calloc((size_t)R.n, sizeof(slot));
	ck_assert_ptr_nonnull(R.slots);
	uint32_t scope_v = SCOPE_TAG_V;
	pf_tag_value stag = { &tree_tag, &scope_v };
	const pf_extension *exts[] = { &counting };
	pf_scope_options so = { .threads = threads, .extensions = exts,
		.n_extensions = 1, .tags = &stag, .n_tags = 1 };
	ck_assert_int_eq(pf_scope_create(&R.scope, &so), 0);

	int64_t t0 = now_ms();
	pthread_t sub[OUTSIDE_THREADS], ab;
	ck_assert_int_eq(pthread_create(&ab, NULL, aborter, NULL), 0);
	for (int i = 0; i < OUTSIDE_THREADS; i++)
		ck_assert_int_eq(pthread_create(&sub[i], NULL, submitter,
				     NULL), 0);
	for (int i = 0; i < OUTSIDE_THREADS; i++)
		pthread_join(sub[i], NULL);
	/* Forgotten executions may still run: every exec call made must
	 * deliver its terminal status.  Nobody aborts them now, so this
	 * also shows that nothing runs forever. */
	int64_t deadline = now_ms() + 120000;
	while (atomic_load_explicit(&R.terminals, memory_order_acquire) !=
		atomic_load_explicit(&R.live, memory_order_relaxed) &&
	    now_ms() < deadline) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	long live = atomic_load(&R.live), terms = atomic_load(&R.terminals);
	atomic_store_explicit(&R.stop, 1, memory_order_release);
	pthread_join(ab, NULL);
	for (int i = 0; i < R.ring_n; i++)
		pf_exec_release(R.ring[i]);
	R.ring_n = 0;
	ck_assert_int_eq(pf_scope_dispose(R.scope), 0);
	tot->ms += now_ms() - t0;
	if (terms != live) {
		fprintf(stderr, "trees(%u): %ld exec calls, %ld terminals\n",
		    threads, live, terms);
		for (long id = 0, shown = 0; id < R.n && shown < 10; id++) {
			slot *s = &R.slots[id];
			if (atomic_load(&s->seq) == 0 ||
			    atomic_load(&s->n[PF_COMPLETED]) +
				    atomic_load(&s->n[PF_FAILED]) +
				    atomic_load(&s->n[PF_CANCELLED]) !=
				0)
				continue;
			shown++;
			fprintf(stderr, "  slot %ld (parent %d, depth?): "
					"created %d, running %d, ran %d\n",
			    id, atomic_load(&s->parent),
			    atomic_load(&s->created),
			    atomic_load(&s->n[PF_RUNNING]),
			    atomic_load(&s->ran));
		}
	}
	ck_assert_int_eq(terms, live);
	if (atomic_load(&R.bad) != 0)
		fprintf(stderr, "trees(%u): %ld problems, first: %s\n", threads,
		    atomic_load(&R.bad), atomic_load(&R.why));
	ck_assert_int_eq(atomic_load(&R.bad), 0);

	long bad = 0, created = 0, ran = 0;
	for (long id = 0; id < R.n; id++) {
		slot *s = &R.slots[id];
		const char *why = check_slot(id);
		if (why != NULL && bad++ < 10)
			fprintf(stderr, "trees(%u threads): slot %ld: %s\n",
			    threads, id, why);
		created += atomic_load(&s->created);
		ran += atomic_load(&s->ran);
		tot->failed += atomic_load(&s->n[PF_FAILED]);
		tot->cancelled += atomic_load(&s->n[PF_CANCELLED]);
		tot->pending_cancel += atomic_load(&s->n[PF_CANCELLED]) &&
		    !atomic_load(&s->n[PF_RUNNING]);
		tot->timed_out += atomic_load(&s->n[PF_CANCELLED]) &&
		    atomic_load(&s->cb_error) == PF_ETIMEDOUT;
		int d = 0;
		for (long a = atomic_load(&s->parent); a >= 0 && d <= 64;
		     a = atomic_load(&R.slots[a].parent))
			d++;
		if (atomic_load(&s->created) && d > tot->max_depth_seen)
			tot->max_depth_seen = d;
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(live, created);
	/* The extension saw each start exactly once. */
	ck_assert_int_eq(atomic_load(&R.ops[PF_TARGET_FLOW]), ran);
	ck_assert_int_eq(atomic_load(&R.ops[PF_TARGET_FN]),
	    atomic_load(&R.fn_ran));
	ck_assert_int_le(atomic_load(&R.ops[PF_TARGET_PARALLEL]),
	    atomic_load(&R.groups));
	tot->created += created;
	tot->ran += ran;
	tot->groups += atomic_load(&R.groups);
	tot->journal_hits += atomic_load(&R.journal_hits);
	tot->fn_steps += atomic_load(&R.fn_ran);
	tot->tag_reads += atomic_load(&R.tag_reads);
	free(R.slots);
	pthread_mutex_destroy(&R.ring_mu);
}

static void
stress_run(unsigned threads)
{
	const char *full = getenv("PF_STRESS_FULL");
	bool is_full = full != NULL && strcmp(full, "1") == 0;
	long target = is_full ? STRESS_FULL : pf_test_scale(STRESS_CHECK);
	totals tot;
	memset(&tot, 0, sizeof(tot));
	int rounds = 0;
	while (tot.created < target) {
		long n = target - tot.created + target / 5 + 16;
		if (n > ROUND)
			n = ROUND;
		salt = mix((uint64_t)threads * 1000003u + (uint64_t)rounds);
		stress_round(threads, n, &tot);
		rounds++;
	}
	fprintf(stderr,
	    "trees(%u threads): %d rounds, %ld executions (%ld ran), "
	    "%ld failed, %ld cancelled (%ld while pending, %ld timed out), "
	    "%ld parallel groups, %ld journal hits, %ld fn steps, "
	    "%ld tag reads, depth %d, %lld ms\n",
	    threads, rounds, tot.created, tot.ran, tot.failed, tot.cancelled,
	    tot.pending_cancel, tot.timed_out, tot.groups, tot.journal_hits,
	    tot.fn_steps, tot.tag_reads, tot.max_depth_seen,
	    (long long)tot.ms);
	ck_assert_int_gt(tot.failed, 0);
	ck_assert_int_gt(tot.cancelled, 0);
	ck_assert_int_gt(tot.groups, 0);
}

START_TEST(stress_trees_1_thread)
{
	stress_run(1);
}
END_TEST

START_TEST(stress_trees_2_threads)
{
	stress_run(2);
}
END_TEST

START_TEST(stress_trees_8_threads)
{
	stress_run(8);
}
END_TEST

static Suite *
stress_trees_suite(void)
{
	Suite *s = suite_create("stress_trees");
	TCase *tc = tcase_create("random_trees");
	tcase_set_tags(tc, "stress");
	/* The full size (make stress) takes minutes per worker count. */
	tcase_set_timeout(tc, getenv("PF_STRESS_FULL") ? 3600 : 300);
	tcase_add_test(tc, stress_trees_1_thread);
	tcase_add_test(tc, stress_trees_2_threads);
	tcase_add_test(tc, stress_trees_8_threads);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(stress_trees_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
