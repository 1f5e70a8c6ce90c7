/*
 * check_exec.c: executions, black box, against API.md "Semantics" items 1
 * to 6 (status machine, status callbacks, abort, timeout, waiting, child
 * executions holding their parent).
 *
 * Only the public header is used.  Handlers, status callbacks and signal
 * listeners run on the scope's threads, so they only record into atomics
 * (or into fields the test thread reads after a wait or join that orders
 * them); every ck_assert runs on the test thread.  Each test names, in a
 * comment, the sentence of API.md it checks.
 *
 * Timing: the test machine is small and noisy.  Deadlines are short (20 to
 * 100 ms) and the upper bounds generous (seconds); a handler that waits for
 * something gives up after GIVE_UP_MS so a broken library fails a test
 * instead of hanging it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pumped.h>

#include "testlib.h"

#define MS INT64_C(1000000)
#define GIVE_UP_MS 10000

/* -------------------------------------------------------------- helpers */


static int64_t
clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static int64_t
wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* A small unique number per thread: pthread_t is opaque, this is not. */
static _Atomic int tid_next = 1;
static _Thread_local int tid_self;

static int
my_tid(void)
{
	if (tid_self == 0)
		tid_self = atomic_fetch_add(&tid_next, 1);
	return tid_self;
}

/* Polls until *p >= want or ms elapse; true when reached. */
static bool
await_at_least(_Atomic int *p, int want, long ms)
{
	int64_t end = mono_ns() + ms * MS;
	while (atomic_load(p) < want) {
		if (mono_ns() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}


static bool
is_terminal(pf_status st)
{
	return st == PF_COMPLETED || st == PF_FAILED || st == PF_CANCELLED;
}

/* ---------------------------------------------------------------- flows */

/*
 * gate_flow: input is a gate (passed as is).  The handler records its
 * thread and that it started, waits until the gate opens, writes g->out
 * and returns g->ret.
 */
typedef struct gate {
	_Atomic int open;
	_Atomic int started;  /* handler starts            */
	_Atomic int finished; /* handler returns           */
	_Atomic int tid;      /* my_tid() of the handler   */
	_Atomic int gave_up;
	_Atomic int64_t started_at_seen;   /* pf_ctx_started_at in handler */
	_Atomic int64_t completed_at_seen; /* pf_ctx_completed_at in handler */
	int ret;
	int out;
} gate;

static int
gate_handler(pf_ctx *c, const void *in, void *out)
{
	gate *g = (gate *)in;
	atomic_store(&g->tid, my_tid());
	atomic_store(&g->started_at_seen, pf_ctx_started_at(c));
	atomic_store(&g->completed_at_seen, pf_ctx_completed_at(c));
	atomic_fetch_add(&g->started, 1);
	if (!await_at_least(&g->open, 1, GIVE_UP_MS))
		atomic_store(&g->gave_up, 1);
	*(int *)out = g->out;
	atomic_fetch_add(&g->finished, 1);
	return g->ret;
}

static const pf_flow gate_flow = { "gate", gate_handler, 0, sizeof(int) };

/* Occupies one worker with a closed gate until the test opens it. */
static pf_exec *
block_worker(pf_scope *s, gate *g)
{
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, g, NULL, &e), 0);
	ck_assert(await_at_least(&g->started, 1, GIVE_UP_MS));
	return e;
}

static void
unblock_worker(pf_exec *e, gate *g)
{
	atomic_store(&g->open, 1);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
}

/* code_flow: input int code; writes 42 and returns the code. */
static _Atomic int code_runs;
static _Atomic int code_tid;

static int
code_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	atomic_fetch_add(&code_runs, 1);
	atomic_store(&code_tid, my_tid());
	*(int *)out = 42;
	return *(const int *)in;
}

static const pf_flow code_flow = { "code", code_handler, sizeof(int),
	sizeof(int) };

/* fail_flow: fails with PF_EUSER - 8 and the message "bad 3". */
static int
fail_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	*(int *)out = 42;
	return pf_ctx_fail(c, PF_EUSER - 8, "bad %d", 3);
}

static const pf_flow fail_flow = { "fail", fail_handler, 0, sizeof(int) };

/*
 * aw_flow ("abort waiter"): input an aw (passed as is).  The handler waits
 * until its context is aborted, observing it the way `mode` says, records
 * the reason, writes 1 and returns a->ret.
 */
enum { AW_FLAG, AW_THROW, AW_FD, AW_LISTENER, AW_MODES };

typedef struct aw {
	int mode;
	int ret;
	_Atomic int started;
	_Atomic int done;
	_Atomic int gave_up;
	_Atomic int reason;      /* pf_ctx_throw_if_aborted after the abort */
	_Atomic int poll_rc;     /* AW_FD: poll()'s return value            */
	_Atomic int poll_in;     /* AW_FD: POLLIN was set                   */
	_Atomic int heard;       /* AW_LISTENER: the listener ran           */
	_Atomic int heard_reason;
	_Atomic int remove_rc;
} aw;

static void
aw_listener(pf_signal *s, void *data)
{
	aw *a = data;
	atomic_store(&a->heard_reason, pf_signal_reason(s));
	atomic_fetch_add(&a->heard, 1);
}

static int
aw_handler(pf_ctx *c, const void *in, void *out)
{
	aw *a = (aw *)in;
	atomic_fetch_add(&a->started, 1);
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	switch (a->mode) {
	case AW_FLAG:
		while (!pf_ctx_aborted(c) && mono_ns() < end)
			sleep_ms(1);
		break;
	case AW_THROW:
		while (pf_ctx_throw_if_aborted(c) == 0 && mono_ns() < end)
			sleep_ms(1);
		break;
	case AW_FD: {
		struct pollfd p = { pf_signal_fd(pf_ctx_signal(c)), POLLIN, 0 };
		int rc = p.fd < 0 ? -1 : poll(&p, 1, GIVE_UP_MS);
		atomic_store(&a->poll_rc, rc);
		atomic_store(&a->poll_in, (p.revents & POLLIN) != 0);
		break;
	}
	case AW_LISTENER: {
		pf_signal_listener l;
		memset(&l, 0, sizeof l);
		pf_signal *s = pf_ctx_signal(c);
		if (pf_signal_add_listener(s, &l, aw_listener, a) == 0) {
			(void)await_at_least(&a->heard, 1, GIVE_UP_MS);
			atomic_store(&a->remove_rc,
			    pf_signal_remove_listener(s, &l));
		}
		break;
	}
	}
	if (!pf_ctx_aborted(c))
		atomic_store(&a->gave_up, 1);
	atomic_store(&a->reason, pf_ctx_throw_if_aborted(c));
	*(int *)out = 1;
	atomic_store(&a->done, 1);
	return a->ret;
}

static const pf_flow aw_flow = { "aw", aw_handler, 0, sizeof(int) };

/*
 * spawn_flow: starts an aw_flow child (the grandchild of whoever started
 * it), hands its handle out, waits for its own abort like aw_flow, then
 * waits for the grandchild and returns its result.
 */
typedef struct spawn {
	aw self;               /* how the spawner waits for its own abort */
	aw grand;              /* the grandchild's record                 */
	_Atomic(pf_exec *) g;  /* the grandchild, retained                */
	_Atomic int exec_rc;
} spawn;

static int
spawn_handler(pf_ctx *c, const void *in, void *out)
{
	spawn *sp = (spawn *)in;
	pf_exec *g = NULL;
	int rc = pf_ctx_exec(c, &aw_flow, &sp->grand, NULL, &g);
	atomic_store(&sp->exec_rc, rc);
	if (rc != 0)
		return rc;
	atomic_store(&sp->g, pf_exec_retain(g));
	(void)aw_handler(c, &sp->self, out);
	rc = pf_exec_wait(g, NULL);
	pf_exec_release(g);
	return rc;
}

static const pf_flow spawn_flow = { "spawn", spawn_handler, 0, sizeof(int) };

/* flag_flow: input an _Atomic int (passed as is); sets it to 1. */
static int
flag_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)out;
	atomic_store((_Atomic int *)in, 1);
	return 0;
}

static const pf_flow flag_flow = { "flag", flag_handler, 0, 0 };

/* ------------------------------------------------------ status callbacks */

/* What a status callback saw; everything it writes is atomic. */
typedef struct cbrec {
	_Atomic int n;
	_Atomic int seq[8];
	_Atomic int tid[8];
	long sleep_terminal_ms;
	_Atomic int terminal_done;
	_Atomic int st_seen;   /* pf_exec_status(e) in the terminal call */
	_Atomic int err_seen;  /* pf_ctx_error in the terminal call      */
	_Atomic int msg_ok;    /* its message was "bad 3"               */
	_Atomic int64_t started_seen, completed_seen;
	/* Aborts to perform. */
	pf_status abort_self_on;   /* abort e itself on this status (-1: no) */
	pf_ctx *abort_ctx;         /* abort this context on the terminal call */
} cbrec;

static void
cbrec_init(cbrec *r)
{
	memset(r, 0, sizeof *r);
	r->abort_self_on = (pf_status)-1;
}

static void
cb_record(pf_exec *e, pf_status st, void *data)
{
	cbrec *r = data;
	int i = atomic_fetch_add(&r->n, 1);
	if (i < 8) {
		atomic_store(&r->seq[i], (int)st);
		atomic_store(&r->tid[i], my_tid());
	}
	if (st == r->abort_self_on)
		(void)pf_exec_abort(e);
	if (is_terminal(st)) {
		pf_ctx *c = pf_exec_ctx(e);
		const char *msg = NULL;
		atomic_store(&r->st_seen, (int)pf_exec_status(e));
		atomic_store(&r->err_seen, pf_ctx_error(c, &msg));
		atomic_store(&r->msg_ok, msg != NULL && strcmp(msg, "bad 3") == 0);
		atomic_store(&r->started_seen, pf_ctx_started_at(c));
		atomic_store(&r->completed_seen, pf_ctx_completed_at(c));
		if (r->abort_ctx != NULL)
			(void)pf_ctx_abort(r->abort_ctx);
		if (r->sleep_terminal_ms > 0)
			sleep_ms(r->sleep_terminal_ms);
		atomic_store(&r->terminal_done, 1);
	}
}

/* ========================================================= 1. Status */

/* "pending from creation until the handler starts" */
START_TEST(pending_until_handler_starts)
{
	pf_scope *s = new_scope(1);
	gate blk = { 0 };
	pf_exec *b = block_worker(s, &blk);

	gate g = { 0 };
	atomic_store(&g.open, 1);
	g.out = 5;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	sleep_ms(30);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	ck_assert_int_eq(atomic_load(&g.started), 0);
	pf_ctx *c = pf_exec_ctx(e);
	ck_assert_int_ne(pf_ctx_created_at(c), 0);
	/* "started_at when the handler starts": 0 while pending. */
	ck_assert_int_eq(pf_ctx_started_at(c), 0);
	ck_assert_int_eq(pf_ctx_completed_at(c), 0);

	unblock_worker(b, &blk);
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 5);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_ne(pf_ctx_started_at(c), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "running while it runs" */
START_TEST(running_while_handler_runs)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	g.out = 9;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert(await_at_least(&g.started, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
	pf_ctx *c = pf_exec_ctx(e);
	ck_assert_int_ne(pf_ctx_started_at(c), 0);
	ck_assert_int_eq(pf_ctx_completed_at(c), 0);
	/* Inside the handler the start was already recorded. */
	ck_assert_int_ne(atomic_load(&g.started_at_seen), 0);
	ck_assert_int_eq(atomic_load(&g.completed_at_seen), 0);
	int out = -1;
	ck_assert_int_eq(pf_exec_try(e, &out), PF_EAGAIN);
	ck_assert_int_eq(out, -1);

	atomic_store(&g.open, 1);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 9);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "completed (handler returned 0)" */
START_TEST(completed_when_handler_returns_zero)
{
	pf_scope *s = new_scope(2);
	int code = 0, out = -1;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &code, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 42);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), 0);
	ck_assert(!pf_ctx_aborted(pf_exec_ctx(e)));
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "failed (returned an error while not aborted)"; "The output is written
 * only when the execution completes." */
START_TEST(failed_when_error_not_aborted)
{
	pf_scope *s = new_scope(2);
	int code = PF_EUSER - 7, out = -1;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &code, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), PF_EUSER - 7);
	ck_assert_int_eq(out, -1);
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), PF_EUSER - 7);
	pf_exec_release(e);

	/* pf_ctx_fail's message is the context's error message. */
	ck_assert_int_eq(pf_scope_exec(s, &fail_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), PF_EUSER - 8);
	ck_assert_int_eq(out, -1);
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	const char *msg = NULL;
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), &msg), PF_EUSER - 8);
	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(msg, "bad 3");
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "cancelled (... or returned an error while aborted; the error is then the
 * abort reason)" */
START_TEST(cancelled_when_error_while_aborted)
{
	pf_scope *s = new_scope(2);
	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 5 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, NULL, &e), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_exec_abort(e), 0);
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(e, &out), PF_ECANCELED);
	ck_assert_int_eq(out, -1);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&a.gave_up), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "completed (handler returned 0)" even after an abort: "Aborted" only
 * matters for an error. */
START_TEST(completed_when_zero_after_abort)
{
	pf_scope *s = new_scope(2);
	aw a = { .mode = AW_FLAG, .ret = 0 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, NULL, &e), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_exec_abort(e), 0);
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 1);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), 0);
	ck_assert_int_eq(atomic_load(&a.reason), PF_ECANCELED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "a terminal status never changes" (and its callback runs once) */
START_TEST(terminal_never_changes)
{
	pf_scope *s = new_scope(2);
	int out = -1;

	cbrec r;
	cbrec_init(&r);
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	int ok = 0;
	pf_exec *done = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, &o, &done), 0);
	ck_assert_int_eq(pf_exec_wait(done, &out), 0);
	(void)pf_exec_abort(done);
	(void)pf_ctx_abort(pf_exec_ctx(done));
	ck_assert_int_eq(pf_exec_status(done), PF_COMPLETED);
	out = -1;
	ck_assert_int_eq(pf_exec_wait(done, &out), 0);
	ck_assert_int_eq(out, 42);
	ck_assert_int_eq(pf_exec_try(done, NULL), 0);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(done), NULL), 0);
	sleep_ms(20);
	ck_assert_int_eq(atomic_load(&r.n), 3);
	pf_exec_release(done);

	int bad = PF_EUSER - 3;
	pf_exec *failed = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &bad, NULL, &failed), 0);
	ck_assert_int_eq(pf_exec_wait(failed, NULL), PF_EUSER - 3);
	(void)pf_exec_abort(failed);
	ck_assert_int_eq(pf_exec_status(failed), PF_FAILED);
	ck_assert_int_eq(pf_exec_wait(failed, NULL), PF_EUSER - 3);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(failed), NULL), PF_EUSER - 3);
	pf_exec_release(failed);

	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec *canc = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, NULL, &canc), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	(void)pf_exec_abort(canc);
	ck_assert_int_eq(pf_exec_wait(canc, NULL), PF_ECANCELED);
	(void)pf_exec_abort(canc);
	ck_assert_int_eq(pf_exec_status(canc), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(canc, NULL), PF_ECANCELED);
	pf_exec_release(canc);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "The status, result and error are published before any waiter wakes or
 * any callback runs"; "it ends itself (completed_at, and pf_ctx_error with
 * a message) just before the terminal status is published." */
START_TEST(terminal_callback_sees_published_result)
{
	pf_scope *s = new_scope(2);
	cbrec r;
	cbrec_init(&r);
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &fail_flow, NULL, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_EUSER - 8);
	ck_assert_int_eq(atomic_load(&r.terminal_done), 1);
	ck_assert_int_eq(atomic_load(&r.st_seen), PF_FAILED);
	ck_assert_int_eq(atomic_load(&r.err_seen), PF_EUSER - 8);
	ck_assert_int_eq(atomic_load(&r.msg_ok), 1);
	ck_assert_int_ne(atomic_load(&r.completed_seen), 0);
	ck_assert_int_ne(atomic_load(&r.started_seen), 0);
	pf_exec_release(e);

	cbrec_init(&r);
	int ok = 0;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r.st_seen), PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&r.err_seen), 0);
	ck_assert_int_ne(atomic_load(&r.completed_seen), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* The same from an outside waiter: when pf_exec_wait returns, status,
 * error and completed_at are all there. */
typedef struct waiter_arg {
	pf_exec *e;
	_Atomic int waiting;
	_Atomic int rc;
	_Atomic int out;
	_Atomic int st;
	_Atomic int err;
	_Atomic int64_t completed;
	_Atomic int done;
	_Atomic int64_t cpu_ns; /* thread CPU time spent in the wait */
} waiter_arg;

static void *
waiter_main(void *p)
{
	waiter_arg *w = p;
	int out = -1;
	atomic_store(&w->waiting, 1);
	int64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	int rc = pf_exec_wait(w->e, &out);
	atomic_store(&w->cpu_ns, clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0);
	atomic_store(&w->st, (int)pf_exec_status(w->e));
	atomic_store(&w->err, pf_ctx_error(pf_exec_ctx(w->e), NULL));
	atomic_store(&w->completed, pf_ctx_completed_at(pf_exec_ctx(w->e)));
	atomic_store(&w->out, out);
	atomic_store(&w->rc, rc);
	atomic_store(&w->done, 1);
	return NULL;
}

START_TEST(waiter_sees_published_result)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	g.ret = PF_EUSER - 4;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	waiter_arg w = { .e = e };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
	ck_assert(await_at_least(&w.waiting, 1, GIVE_UP_MS));
	sleep_ms(10);
	atomic_store(&g.open, 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&w.rc), PF_EUSER - 4);
	ck_assert_int_eq(atomic_load(&w.st), PF_FAILED);
	ck_assert_int_eq(atomic_load(&w.err), PF_EUSER - 4);
	ck_assert_int_ne(atomic_load(&w.completed), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "records created_at at creation and started_at when the handler starts;
 * it ends itself (completed_at ...) just before the terminal status". */
START_TEST(exec_timestamps_ordered)
{
	pf_scope *s = new_scope(2);
	int64_t t0 = wall_ns();
	int ok = 0;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	int64_t t1 = wall_ns();
	pf_ctx *c = pf_exec_ctx(e);
	int64_t cr = pf_ctx_created_at(c), st = pf_ctx_started_at(c),
		co = pf_ctx_completed_at(c);
	ck_assert_int_ne(cr, 0);
	ck_assert_int_ne(st, 0);
	ck_assert_int_ne(co, 0);
	ck_assert_int_le(cr, st);
	ck_assert_int_le(st, co);
	/* ns since the Unix epoch: within a generous 1 s of this clock. */
	ck_assert_int_ge(cr, t0 - 1000 * MS);
	ck_assert_int_le(co, t1 + 1000 * MS);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Standalone contexts ... start when created"; "pf_ctx_end only records
 * completed_at: it aborts nothing and the context stays usable (children may
 * still be started under it)." */
static int
fn_return_arg(pf_ctx *child, void *arg)
{
	(void)child;
	return *(int *)arg;
}

START_TEST(standalone_starts_at_creation_and_end_only_records)
{
	pf_scope *s = new_scope(2);
	int64_t t0 = wall_ns();
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_ge(pf_ctx_created_at(c), t0 - 1000 * MS);
	ck_assert_int_ne(pf_ctx_started_at(c), 0);
	ck_assert_int_ge(pf_ctx_started_at(c), pf_ctx_created_at(c));
	ck_assert_int_eq(pf_ctx_completed_at(c), 0);

	ck_assert_int_eq(pf_ctx_end(c), 0);
	int64_t co = pf_ctx_completed_at(c);
	ck_assert_int_ne(co, 0);
	ck_assert_int_ge(co, pf_ctx_started_at(c));
	ck_assert(!pf_ctx_aborted(c));
	/* Idempotent: completed_at is recorded once. */
	sleep_ms(2);
	ck_assert_int_eq(pf_ctx_end(c), 0);
	ck_assert_int_eq(pf_ctx_completed_at(c), co);

	/* Still usable: a child flow and an fn step run under it. */
	int ok = 0, out = -1;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &code_flow, &ok, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 42);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	pf_exec_release(e);
	int seven = 7;
	ck_assert_int_eq(pf_ctx_exec_fn(c, "seven", fn_return_arg, &seven), 7);
	ck_assert(!pf_ctx_aborted(c));
	ck_assert_int_eq(pf_ctx_completed_at(c), co);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "fn-step contexts start when created; ... end when the fn returns" */
typedef struct fnrec {
	pf_ctx *parent_seen;
	int64_t started, completed;
	pf_ctx *kept; /* retained child */
} fnrec;

static int
fn_keep(pf_ctx *child, void *arg)
{
	fnrec *r = arg;
	r->parent_seen = pf_ctx_parent(child);
	r->started = pf_ctx_started_at(child);
	r->completed = pf_ctx_completed_at(child);
	r->kept = pf_ctx_retain(child);
	return 0;
}

START_TEST(fn_step_starts_at_creation_ends_on_return)
{
	pf_scope *s = new_scope(1);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	fnrec r = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(c, "keep", fn_keep, &r), 0);
	ck_assert_ptr_eq(r.parent_seen, c);
	ck_assert_int_ne(r.started, 0);
	ck_assert_int_eq(r.completed, 0);
	ck_assert_ptr_nonnull(r.kept);
	int64_t co = pf_ctx_completed_at(r.kept);
	ck_assert_int_ne(co, 0);
	ck_assert_int_ge(co, pf_ctx_started_at(r.kept));
	ck_assert_int_eq(pf_ctx_started_at(r.kept), r.started);
	pf_ctx_release(r.kept);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_ctx_exec_fn returns exactly what the fn returned." */
static const int fn_values[] = { 0, 7, -12345, PF_EUSER - 1, PF_ETIMEDOUT,
	PF_ECANCELED, INT_MAX, INT_MIN };

static int
exec_fn_in_handler(pf_ctx *c, const void *in, void *out)
{
	int v = *(const int *)in;
	*(int *)out = pf_ctx_exec_fn(c, "ret", fn_return_arg, &v);
	return 0;
}

static const pf_flow exec_fn_flow = { "exec_fn", exec_fn_in_handler,
	sizeof(int), sizeof(int) };

START_TEST(exec_fn_returns_fn_result)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	for (size_t i = 0; i < sizeof fn_values / sizeof fn_values[0]; i++) {
		int v = fn_values[i];
		ck_assert_int_eq(pf_ctx_exec_fn(c, "ret", fn_return_arg, &v), v);
		int out = 1;
		ck_assert_int_eq(pf_scope_run(s, &exec_fn_flow, &v, &out, NULL), 0);
		ck_assert_int_eq(out, v);
	}
	/* Non-zero fn results do not abort the parent. */
	ck_assert(!pf_ctx_aborted(c));
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ================================================= 2. Status callbacks */

/* "opts.on_status sees every transition, pending first, in order, each
 * exactly once." */
START_TEST(on_status_sees_each_transition_once)
{
	pf_scope *s = new_scope(2);
	static const int codes[] = { 0, PF_EUSER - 2 };
	static const pf_status ends[] = { PF_COMPLETED, PF_FAILED };
	for (int k = 0; k < 2; k++) {
		cbrec r;
		cbrec_init(&r);
		pf_exec_options o = { .on_status = cb_record,
			.on_status_data = &r };
		pf_exec *e = NULL;
		ck_assert_int_eq(pf_scope_exec(s, &code_flow, &codes[k], &o, &e),
		    0);
		ck_assert_int_eq(pf_exec_wait(e, NULL), codes[k]);
		sleep_ms(10);
		ck_assert_int_eq(atomic_load(&r.n), 3);
		ck_assert_int_eq(atomic_load(&r.seq[0]), PF_PENDING);
		ck_assert_int_eq(atomic_load(&r.seq[1]), PF_RUNNING);
		ck_assert_int_eq(atomic_load(&r.seq[2]), ends[k]);
		pf_exec_release(e);
	}

	/* Aborted while running: pending, running, cancelled. */
	cbrec r;
	cbrec_init(&r);
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, &o, &e), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	(void)pf_exec_abort(e);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	sleep_ms(10);
	ck_assert_int_eq(atomic_load(&r.n), 3);
	ck_assert_int_eq(atomic_load(&r.seq[0]), PF_PENDING);
	ck_assert_int_eq(atomic_load(&r.seq[1]), PF_RUNNING);
	ck_assert_int_eq(atomic_load(&r.seq[2]), PF_CANCELLED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Callbacks run on the thread that makes the transition": pending on the
 * submitter, running and terminal on the thread that runs the handler. */
START_TEST(callbacks_run_on_transition_thread)
{
	pf_scope *s = new_scope(2);
	cbrec r;
	cbrec_init(&r);
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	gate g = { 0 };
	atomic_store(&g.open, 1);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r.n), 3);
	ck_assert_int_eq(atomic_load(&r.tid[0]), my_tid());
	ck_assert_int_eq(atomic_load(&r.tid[1]), atomic_load(&g.tid));
	ck_assert_int_eq(atomic_load(&r.tid[2]), atomic_load(&g.tid));
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_exec_on_status on a finished execution calls fn once at once with
 * the terminal status" */
START_TEST(subscribe_finished_calls_once_at_once)
{
	pf_scope *s = new_scope(2);
	int bad = PF_EUSER - 6;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &bad, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_EUSER - 6);
	cbrec r;
	cbrec_init(&r);
	ck_assert_int_eq(pf_exec_on_status(e, cb_record, &r), 0);
	ck_assert_int_eq(atomic_load(&r.n), 1);
	ck_assert_int_eq(atomic_load(&r.seq[0]), PF_FAILED);
	ck_assert_int_eq(atomic_load(&r.tid[0]), my_tid());
	sleep_ms(20);
	ck_assert_int_eq(atomic_load(&r.n), 1);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(atomic_load(&r.n), 1);
}
END_TEST

/* "otherwise it sees every later transition" (running: terminal only) */
START_TEST(subscribe_running_sees_later_only)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert(await_at_least(&g.started, 1, GIVE_UP_MS));
	cbrec r;
	cbrec_init(&r);
	ck_assert_int_eq(pf_exec_on_status(e, cb_record, &r), 0);
	sleep_ms(10);
	ck_assert_int_eq(atomic_load(&r.n), 0);
	atomic_store(&g.open, 1);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r.n), 1);
	ck_assert_int_eq(atomic_load(&r.seq[0]), PF_COMPLETED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ... (pending: running then terminal) */
START_TEST(subscribe_pending_sees_running_and_terminal)
{
	pf_scope *s = new_scope(1);
	gate blk = { 0 };
	pf_exec *b = block_worker(s, &blk);
	gate g = { 0 };
	atomic_store(&g.open, 1);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	cbrec r;
	cbrec_init(&r);
	ck_assert_int_eq(pf_exec_on_status(e, cb_record, &r), 0);
	ck_assert_int_eq(atomic_load(&r.n), 0);
	unblock_worker(b, &blk);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r.n), 2);
	ck_assert_int_eq(atomic_load(&r.seq[0]), PF_RUNNING);
	ck_assert_int_eq(atomic_load(&r.seq[1]), PF_COMPLETED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_exec_off_status: "Removes the first subscription equal to (fn,
 * data); PF_ENOENT if none." */
START_TEST(off_status_stops_calls)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	/* Subscribe once it runs (the gate holds it there): otherwise the
	 * running transition may legitimately reach r1 between its on and
	 * its off. */
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	while (pf_exec_status(e) != PF_RUNNING && mono_ns() < end)
		sched_yield();
	ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
	cbrec r1, r2;
	cbrec_init(&r1);
	cbrec_init(&r2);
	ck_assert_int_eq(pf_exec_off_status(e, cb_record, &r1), PF_ENOENT);
	ck_assert_int_eq(pf_exec_on_status(e, cb_record, &r1), 0);
	ck_assert_int_eq(pf_exec_on_status(e, cb_record, &r2), 0);
	ck_assert_int_eq(pf_exec_off_status(e, cb_record, &r1), 0);
	ck_assert_int_eq(pf_exec_off_status(e, cb_record, &r1), PF_ENOENT);
	atomic_store(&g.open, 1);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r1.n), 0);
	ck_assert_int_ge(atomic_load(&r2.n), 1);
	ck_assert_int_eq(atomic_load(&r2.seq[atomic_load(&r2.n) - 1]),
	    PF_COMPLETED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_exec_wait ... return[s] only after the callbacks for the terminal
 * transition have returned." */
START_TEST(wait_returns_after_terminal_callbacks)
{
	pf_scope *s = new_scope(2);
	/* opts.on_status, via pf_exec_wait. */
	cbrec r;
	cbrec_init(&r);
	r.sleep_terminal_ms = 50;
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	int ok = 0;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r.terminal_done), 1);
	pf_exec_release(e);

	/* A subscription made while running. */
	gate g = { 0 };
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert(await_at_least(&g.started, 1, GIVE_UP_MS));
	cbrec r2;
	cbrec_init(&r2);
	r2.sleep_terminal_ms = 50;
	ck_assert_int_eq(pf_exec_on_status(e, cb_record, &r2), 0);
	atomic_store(&g.open, 1);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&r2.terminal_done), 1);
	pf_exec_release(e);

	/* pf_scope_run is exec + wait. */
	cbrec_init(&r);
	r.sleep_terminal_ms = 50;
	ck_assert_int_eq(pf_scope_run(s, &code_flow, &ok, NULL, &o), 0);
	ck_assert_int_eq(atomic_load(&r.terminal_done), 1);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "(and wait_for, try when they return the result)" */
START_TEST(wait_for_and_try_after_terminal_callbacks)
{
	pf_scope *s = new_scope(2);
	for (int k = 0; k < 2; k++) {
		cbrec r;
		cbrec_init(&r);
		r.sleep_terminal_ms = 50;
		pf_exec_options o = { .on_status = cb_record,
			.on_status_data = &r };
		int ok = 0, out = -1, rc = PF_EAGAIN;
		pf_exec *e = NULL;
		ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, &o, &e), 0);
		int64_t end = mono_ns() + GIVE_UP_MS * MS;
		while (rc == PF_EAGAIN && mono_ns() < end)
			rc = k == 0 ? pf_exec_try(e, &out)
				    : pf_exec_wait_for(e, &out, 1);
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(out, 42);
		ck_assert_int_eq(atomic_load(&r.terminal_done), 1);
		pf_exec_release(e);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Inside a status callback ... a program may read anything and abort
 * anything": its own execution (when it starts running, and while still
 * pending) */
START_TEST(callback_aborts_own_execution)
{
	pf_scope *s = new_scope(2);
	cbrec r;
	cbrec_init(&r);
	r.abort_self_on = PF_RUNNING;
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&a.gave_up), 0);
	ck_assert_int_eq(atomic_load(&a.reason), PF_ECANCELED);
	pf_exec_release(e);

	/* Aborted from its pending callback: never runs. */
	cbrec_init(&r);
	r.abort_self_on = PF_PENDING;
	aw a2 = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a2, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	sleep_ms(20);
	ck_assert_int_eq(atomic_load(&a2.started), 0);
	ck_assert_int_eq(atomic_load(&r.n), 2);
	ck_assert_int_eq(atomic_load(&r.seq[0]), PF_PENDING);
	ck_assert_int_eq(atomic_load(&r.seq[1]), PF_CANCELLED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ... and another context. */
START_TEST(callback_aborts_other_context)
{
	pf_scope *s = new_scope(2);
	pf_ctx *other = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &other), 0);
	cbrec r;
	cbrec_init(&r);
	r.abort_ctx = other;
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	int ok = 0;
	ck_assert_int_eq(pf_scope_run(s, &code_flow, &ok, NULL, &o), 0);
	ck_assert(pf_ctx_aborted(other));
	ck_assert_int_eq(pf_ctx_throw_if_aborted(other), PF_ECANCELED);
	pf_ctx_release(other);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ============================================================ 3. Abort */

/* "Aborting a context aborts it and every descendant, present ..." */
START_TEST(abort_reaches_running_descendants)
{
	pf_scope *s = new_scope(4);
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &root), 0);
	spawn sp = { .self = { .mode = AW_FLAG, .ret = PF_EUSER - 1 },
		.grand = { .mode = AW_FLAG, .ret = PF_EUSER - 2 } };
	pf_exec *child = NULL;
	ck_assert_int_eq(pf_ctx_exec(root, &spawn_flow, &sp, NULL, &child), 0);
	ck_assert(await_at_least(&sp.self.started, 1, GIVE_UP_MS));
	ck_assert(await_at_least(&sp.grand.started, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_exec_status(child), PF_RUNNING);

	ck_assert_int_eq(pf_ctx_abort(root), 0);
	ck_assert_int_eq(pf_exec_wait(child, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(child), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&sp.self.reason), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&sp.grand.reason), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&sp.self.gave_up), 0);
	ck_assert_int_eq(atomic_load(&sp.grand.gave_up), 0);
	pf_exec *g = atomic_load(&sp.g);
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(pf_exec_status(g), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_throw_if_aborted(g), PF_ECANCELED);
	pf_exec_release(g);
	pf_exec_release(child);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "... and future (a child created under an aborted parent starts
 * aborted)"; "pf_ctx_exec_fn, pf_ctx_exec, pf_ctx_run and parallel on an
 * aborted context run nothing and return the abort reason (pf_ctx_exec then
 * hands back no handle)." */
static _Atomic int fn_calls;

static int
fn_count(pf_ctx *child, void *arg)
{
	(void)child;
	(void)arg;
	atomic_fetch_add(&fn_calls, 1);
	return 0;
}

static void
check_refuses_children(pf_ctx *c, int reason)
{
	int ok = 0, out = -1;
	atomic_store(&code_runs, 0);
	atomic_store(&fn_calls, 0);
	ck_assert_int_eq(pf_ctx_exec_fn(c, "f", fn_count, NULL), reason);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_ctx_exec(c, &code_flow, &ok, NULL, &e), reason);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(pf_ctx_exec(c, &code_flow, &ok, NULL, NULL), reason);
	ck_assert_int_eq(pf_ctx_run(c, &code_flow, &ok, &out, NULL), reason);
	ck_assert_int_eq(out, -1);
	pf_call call = { .flow = &code_flow, .input = &ok, .output = &out };
	ck_assert_int_eq(pf_ctx_parallel(c, &call, 1, NULL), reason);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, &call, 1, NULL), reason);
	sleep_ms(20);
	ck_assert_int_eq(atomic_load(&fn_calls), 0);
	ck_assert_int_eq(atomic_load(&code_runs), 0);
	ck_assert_int_eq(out, -1);
}

START_TEST(aborted_context_starts_nothing)
{
	pf_scope *s = new_scope(2);
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &root), 0);
	fnrec kept = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(root, "keep", fn_keep, &kept), 0);
	ck_assert_int_eq(pf_ctx_abort(root), 0);
	check_refuses_children(root, PF_ECANCELED);
	/* A descendant made before the abort refuses as well. */
	ck_assert(pf_ctx_aborted(kept.kept));
	check_refuses_children(kept.kept, PF_ECANCELED);
	pf_ctx_release(kept.kept);
	pf_ctx_release(root);

	/* The reason is the timeout's when the timeout aborted it. */
	pf_ctx_options co = { .timeout_ms = 20 };
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &root), 0);
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	while (!pf_ctx_aborted(root) && mono_ns() < end)
		sleep_ms(1);
	check_refuses_children(root, PF_ETIMEDOUT);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_ctx_abort on a context that is not aborted aborts it and its live
 * descendants, ended or not." */
START_TEST(abort_reaches_ended_descendants)
{
	pf_scope *s = new_scope(1);
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &root), 0);
	fnrec kept = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(root, "keep", fn_keep, &kept), 0);
	ck_assert_int_ne(pf_ctx_completed_at(kept.kept), 0);
	ck_assert(!pf_ctx_aborted(kept.kept));
	ck_assert_int_eq(pf_ctx_abort(root), 0);
	ck_assert(pf_ctx_aborted(kept.kept));
	ck_assert_int_eq(pf_ctx_throw_if_aborted(kept.kept), PF_ECANCELED);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(kept.kept)),
	    PF_ECANCELED);
	pf_ctx_release(kept.kept);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static void
await_aborted(pf_ctx *c)
{
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	while (!pf_ctx_aborted(c) && mono_ns() < end)
		sleep_ms(1);
	ck_assert(pf_ctx_aborted(c));
}

/* "The first abort wins: its reason ... becomes the reason of that context
 * and of every descendant it reaches; later aborts change nothing."
 * Timeout first, then explicit abort. */
START_TEST(timeout_then_abort_keeps_timedout)
{
	pf_scope *s = new_scope(2);
	pf_ctx_options co = { .timeout_ms = 20 };
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &root), 0);
	fnrec kept = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(root, "keep", fn_keep, &kept), 0);
	await_aborted(root);
	/* The timer thread sets the root's reason first, then walks down:
	 * the child may be reached a moment later. */
	await_aborted(kept.kept);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(root), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(kept.kept), PF_ETIMEDOUT);
	(void)pf_ctx_abort(root);
	(void)pf_ctx_abort(kept.kept);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(root), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(root)), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(kept.kept), PF_ETIMEDOUT);
	pf_ctx_release(kept.kept);
	pf_ctx_release(root);

	/* The same on an execution. */
	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec_options o = { .timeout_ms = 20 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	(void)pf_exec_abort(e);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(pf_exec_ctx(e)), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ... the reverse: explicit abort, then the deadline passes. */
START_TEST(abort_then_timeout_keeps_canceled)
{
	pf_scope *s = new_scope(2);
	pf_ctx_options co = { .timeout_ms = 30 };
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &root), 0);
	fnrec kept = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(root, "keep", fn_keep, &kept), 0);
	ck_assert_int_eq(pf_ctx_abort(root), 0);
	sleep_ms(100);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(root), PF_ECANCELED);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(kept.kept), PF_ECANCELED);
	pf_ctx_release(kept.kept);
	pf_ctx_release(root);

	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec_options o = { .timeout_ms = 30 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, &o, &e), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	sleep_ms(80);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* A descendant aborted first keeps its own reason when the ancestor's
 * timeout reaches it later; one not aborted takes the ancestor's. */
START_TEST(descendant_keeps_own_earlier_reason)
{
	pf_scope *s = new_scope(2);
	pf_ctx_options co = { .timeout_ms = 30 };
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &root), 0);
	fnrec k1 = { 0 }, k2 = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(root, "k1", fn_keep, &k1), 0);
	ck_assert_int_eq(pf_ctx_exec_fn(root, "k2", fn_keep, &k2), 0);
	ck_assert_int_eq(pf_ctx_abort(k1.kept), 0);
	ck_assert(!pf_ctx_aborted(root));
	await_aborted(root);
	await_aborted(k2.kept); /* reached just after the root, see above */
	ck_assert_int_eq(pf_ctx_throw_if_aborted(root), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(k1.kept), PF_ECANCELED);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(k2.kept), PF_ETIMEDOUT);
	pf_ctx_release(k1.kept);
	pf_ctx_release(k2.kept);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "A pending execution that is aborted never runs its handler and becomes
 * cancelled at once, waking its waiters." */
START_TEST(pending_aborted_never_runs)
{
	pf_scope *s = new_scope(1);
	gate blk = { 0 };
	pf_exec *b = block_worker(s, &blk);

	/* Without waiters. */
	cbrec r;
	cbrec_init(&r);
	pf_exec_options o = { .on_status = cb_record, .on_status_data = &r };
	gate p = { 0 };
	atomic_store(&p.open, 1);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &p, &o, &e), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	/* Its callbacks ran on the aborting thread, pending then cancelled. */
	ck_assert_int_eq(atomic_load(&r.n), 2);
	ck_assert_int_eq(atomic_load(&r.seq[0]), PF_PENDING);
	ck_assert_int_eq(atomic_load(&r.seq[1]), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&r.tid[1]), my_tid());
	ck_assert_int_eq(atomic_load(&r.st_seen), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&r.err_seen), PF_ECANCELED);
	ck_assert_int_ne(atomic_load(&r.completed_seen), 0);
	/* Never started: started_at stays 0; it ended. */
	pf_ctx *c = pf_exec_ctx(e);
	ck_assert_int_eq(pf_ctx_started_at(c), 0);
	ck_assert_int_ne(pf_ctx_completed_at(c), 0);
	ck_assert_int_eq(pf_ctx_error(c, NULL), PF_ECANCELED);
	int out = -1;
	ck_assert_int_eq(pf_exec_try(e, &out), PF_ECANCELED);
	ck_assert_int_eq(out, -1);

	/* With an outside waiter, woken while the only worker is still
	 * busy.  Item 5 lets an outside waiter run a not-yet-started
	 * execution itself; if it did, there is nothing pending to abort. */
	gate q = { 0 };
	atomic_store(&q.open, 1);
	pf_exec *e2 = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &q, NULL, &e2), 0);
	waiter_arg w = { .e = e2 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
	ck_assert(await_at_least(&w.waiting, 1, GIVE_UP_MS));
	sleep_ms(30);
	bool ran_inline = atomic_load(&q.started) != 0;
	ck_assert_int_eq(pf_exec_abort(e2), 0);
	if (!ran_inline) {
		ck_assert_int_eq(pf_exec_status(e2), PF_CANCELLED);
		ck_assert(await_at_least(&w.done, 1, 2000));
		ck_assert_int_eq(atomic_load(&w.rc), PF_ECANCELED);
		ck_assert_int_eq(atomic_load(&w.st), PF_CANCELLED);
		/* The worker is still blocked: nobody else woke it. */
		ck_assert_int_eq(atomic_load(&blk.finished), 0);
	}
	pthread_join(t, NULL);

	unblock_worker(b, &blk);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	sleep_ms(30);
	ck_assert_int_eq(atomic_load(&p.started), 0);
	if (!ran_inline)
		ck_assert_int_eq(atomic_load(&q.started), 0);
	ck_assert_int_eq(atomic_load(&r.n), 2);
	pf_exec_release(e);
	pf_exec_release(e2);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "A running handler observes the abort through pf_ctx_aborted,
 * pf_ctx_throw_if_aborted, the signal's fd and listeners" */
START_TEST(running_handler_observes_abort)
{
	pf_scope *s = new_scope(2);
	aw a = { .mode = _i, .ret = PF_EUSER - 1 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, NULL, &e), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	sleep_ms(10);
	ck_assert_int_eq(atomic_load(&a.done), 0);
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&a.gave_up), 0);
	ck_assert_int_eq(atomic_load(&a.reason), PF_ECANCELED);
	if (_i == AW_FD) {
		ck_assert_int_eq(atomic_load(&a.poll_rc), 1);
		ck_assert_int_eq(atomic_load(&a.poll_in), 1);
	}
	if (_i == AW_LISTENER) {
		ck_assert_int_eq(atomic_load(&a.heard), 1);
		ck_assert_int_eq(atomic_load(&a.heard_reason), PF_ECANCELED);
		ck_assert_int_eq(atomic_load(&a.remove_rc), 0);
	}
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_exec_abort on a finished execution changes nothing" */
START_TEST(abort_finished_changes_nothing)
{
	pf_scope *s = new_scope(2);
	static const int codes[] = { 0, PF_EUSER - 9 };
	static const pf_status ends[] = { PF_COMPLETED, PF_FAILED };
	for (int k = 0; k < 2; k++) {
		pf_exec *e = NULL;
		ck_assert_int_eq(pf_scope_exec(s, &code_flow, &codes[k], NULL, &e),
		    0);
		ck_assert_int_eq(pf_exec_wait(e, NULL), codes[k]);
		pf_signal_listener l;
		memset(&l, 0, sizeof l);
		aw heard = { 0 };
		pf_signal *sig = pf_ctx_signal(pf_exec_ctx(e));
		ck_assert_int_eq(pf_signal_add_listener(sig, &l, aw_listener,
				     &heard),
		    0);
		(void)pf_exec_abort(e);
		ck_assert_int_eq(pf_exec_status(e), ends[k]);
		ck_assert_int_eq(pf_exec_throw_if_aborted(e), 0);
		ck_assert(!pf_ctx_aborted(pf_exec_ctx(e)));
		ck_assert(!pf_signal_aborted(sig));
		ck_assert_int_eq(atomic_load(&heard.heard), 0);
		int out = -1;
		ck_assert_int_eq(pf_exec_wait(e, &out), codes[k]);
		ck_assert_int_eq(out, k == 0 ? 42 : -1);
		ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), codes[k]);
		ck_assert_int_eq(pf_signal_remove_listener(sig, &l), 0);
		pf_exec_release(e);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Listener records, with a delay so "has run before abort returns" is not
 * satisfied by luck. */
typedef struct lrec {
	long delay_ms;
	_Atomic int running;
	_Atomic int calls;
	_Atomic int reason;
	_Atomic int tid;
} lrec;

static void
slow_listener(pf_signal *s, void *data)
{
	lrec *r = data;
	atomic_store(&r->running, 1);
	atomic_store(&r->tid, my_tid());
	atomic_store(&r->reason, pf_signal_reason(s));
	if (r->delay_ms > 0)
		sleep_ms(r->delay_ms);
	atomic_fetch_add(&r->calls, 1);
	atomic_store(&r->running, 0);
}

/* "Signal listeners of the aborted contexts have run before pf_ctx_abort
 * ... returns" */
START_TEST(listeners_ran_before_ctx_abort_returns)
{
	pf_scope *s = new_scope(1);
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &root), 0);
	fnrec kept = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(root, "keep", fn_keep, &kept), 0);
	pf_signal_listener l1, l2;
	memset(&l1, 0, sizeof l1);
	memset(&l2, 0, sizeof l2);
	lrec r1 = { .delay_ms = 20 }, r2 = { .delay_ms = 20 };
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(root), &l1,
			     slow_listener, &r1),
	    0);
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(kept.kept), &l2,
			     slow_listener, &r2),
	    0);
	ck_assert_int_eq(atomic_load(&r1.calls), 0);
	ck_assert_int_eq(pf_ctx_abort(root), 0);
	ck_assert_int_eq(atomic_load(&r1.calls), 1);
	ck_assert_int_eq(atomic_load(&r2.calls), 1);
	ck_assert_int_eq(atomic_load(&r1.reason), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&r2.reason), PF_ECANCELED);
	/* Once only. */
	(void)pf_ctx_abort(root);
	ck_assert_int_eq(atomic_load(&r1.calls), 1);
	ck_assert_int_eq(atomic_load(&r2.calls), 1);
	ck_assert_int_eq(pf_signal_remove_listener(pf_ctx_signal(root), &l1), 0);
	ck_assert_int_eq(
	    pf_signal_remove_listener(pf_ctx_signal(kept.kept), &l2), 0);
	pf_ctx_release(kept.kept);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "... before pf_ctx_abort/pf_exec_abort returns" (a running execution
 * and its running child) */
START_TEST(listeners_ran_before_exec_abort_returns)
{
	pf_scope *s = new_scope(4);
	spawn sp = { .self = { .mode = AW_FLAG, .ret = PF_EUSER - 1 },
		.grand = { .mode = AW_FLAG, .ret = PF_EUSER - 2 } };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &spawn_flow, &sp, NULL, &e), 0);
	ck_assert(await_at_least(&sp.self.started, 1, GIVE_UP_MS));
	ck_assert(await_at_least(&sp.grand.started, 1, GIVE_UP_MS));
	pf_exec *g = atomic_load(&sp.g);
	ck_assert_ptr_nonnull(g);
	pf_signal_listener l1, l2;
	memset(&l1, 0, sizeof l1);
	memset(&l2, 0, sizeof l2);
	lrec r1 = { .delay_ms = 20 }, r2 = { .delay_ms = 20 };
	pf_signal *s1 = pf_ctx_signal(pf_exec_ctx(e));
	pf_signal *s2 = pf_ctx_signal(pf_exec_ctx(g));
	ck_assert_int_eq(pf_signal_add_listener(s1, &l1, slow_listener, &r1), 0);
	ck_assert_int_eq(pf_signal_add_listener(s2, &l2, slow_listener, &r2), 0);
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(atomic_load(&r1.calls), 1);
	ck_assert_int_eq(atomic_load(&r2.calls), 1);
	ck_assert_int_eq(atomic_load(&r2.reason), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_signal_remove_listener(s1, &l1), 0);
	ck_assert_int_eq(pf_signal_remove_listener(s2, &l2), 0);
	pf_exec_release(g);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "adding a listener to an aborted signal runs it at once" */
START_TEST(listener_added_to_aborted_runs_at_once)
{
	pf_scope *s = new_scope(1);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	pf_signal *sig = pf_ctx_signal(c);
	ck_assert(pf_signal_aborted(sig));
	pf_signal_listener l;
	memset(&l, 0, sizeof l);
	lrec r = { 0 };
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, slow_listener, &r), 0);
	ck_assert_int_eq(atomic_load(&r.calls), 1);
	ck_assert_int_eq(atomic_load(&r.tid), my_tid());
	ck_assert_int_eq(atomic_load(&r.reason), PF_ECANCELED);
	ck_assert_int_eq(pf_signal_remove_listener(sig, &l), 0);
	pf_ctx_release(c);

	/* A timed-out one reports its reason. */
	pf_ctx_options co = { .timeout_ms = 20 };
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &c), 0);
	await_aborted(c);
	sig = pf_ctx_signal(c);
	memset(&l, 0, sizeof l);
	lrec r2 = { 0 };
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, slow_listener, &r2), 0);
	ck_assert_int_eq(atomic_load(&r2.calls), 1);
	ck_assert_int_eq(atomic_load(&r2.reason), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_signal_remove_listener(sig, &l), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "after pf_signal_remove_listener returns the listener is not running and
 * will not run" (removed before the abort) */
START_TEST(removed_listener_never_runs)
{
	pf_scope *s = new_scope(1);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_signal *sig = pf_ctx_signal(c);
	pf_signal_listener l, keep;
	memset(&l, 0, sizeof l);
	memset(&keep, 0, sizeof keep);
	lrec r = { 0 }, rk = { 0 };
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, slow_listener, &r), 0);
	ck_assert_int_eq(pf_signal_add_listener(sig, &keep, slow_listener, &rk),
	    0);
	ck_assert_int_eq(pf_signal_remove_listener(sig, &l), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	sleep_ms(10);
	ck_assert_int_eq(atomic_load(&r.calls), 0);
	ck_assert_int_eq(atomic_load(&r.running), 0);
	ck_assert_int_eq(atomic_load(&rk.calls), 1);
	ck_assert_int_eq(pf_signal_remove_listener(sig, &keep), 0);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ... (removed while it runs on the aborting thread) */
typedef struct abort_arg {
	pf_ctx *c;
} abort_arg;

static void *
abort_main(void *p)
{
	(void)pf_ctx_abort(((abort_arg *)p)->c);
	return NULL;
}

START_TEST(remove_waits_for_running_listener)
{
	pf_scope *s = new_scope(1);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_signal *sig = pf_ctx_signal(c);
	pf_signal_listener l;
	memset(&l, 0, sizeof l);
	lrec r = { .delay_ms = 100 };
	ck_assert_int_eq(pf_signal_add_listener(sig, &l, slow_listener, &r), 0);
	abort_arg aa = { c };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, abort_main, &aa), 0);
	ck_assert(await_at_least(&r.running, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_signal_remove_listener(sig, &l), 0);
	ck_assert_int_eq(atomic_load(&r.running), 0);
	ck_assert_int_eq(atomic_load(&r.calls), 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&r.calls), 1);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "The signal fd belongs to the context and closes with it." */
START_TEST(signal_fd_turns_readable_and_closes_with_context)
{
	pf_scope *s = new_scope(1);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int fd = pf_signal_fd(pf_ctx_signal(c));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
	struct pollfd p = { fd, POLLIN, 0 };
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert(p.revents & POLLIN);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

/* ========================================================== 4. Timeout */

/* "timeout_ms ... aborts that execution (and its descendants) with
 * PF_ETIMEDOUT when it is still unfinished at the deadline" (scope exec) */
START_TEST(scope_exec_times_out)
{
	pf_scope *s = new_scope(2);
	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec_options o = { .timeout_ms = 30 };
	int64_t t0 = mono_ns();
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &a, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	int64_t dt = mono_ns() - t0;
	ck_assert_int_ge(dt, 30 * MS);
	ck_assert_int_lt(dt, 3000 * MS);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&a.reason), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ETIMEDOUT);
	pf_exec_release(e);

	/* A handler that returns 0 after the timeout completes. */
	aw b = { .mode = AW_THROW, .ret = 0 };
	ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &b, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&b.reason), PF_ETIMEDOUT);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "counted from creation (time spent pending counts)" */
START_TEST(timeout_counts_pending_time)
{
	pf_scope *s = new_scope(1);
	gate blk = { 0 };
	pf_exec *b = block_worker(s, &blk);
	gate p = { 0 };
	atomic_store(&p.open, 1);
	pf_exec_options o = { .timeout_ms = 30 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &p, &o, &e), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	/* Never started, so the deadline must come from creation. */
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	while (pf_exec_status(e) == PF_PENDING && mono_ns() < end)
		sleep_ms(1);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ETIMEDOUT);
	ck_assert_int_eq(atomic_load(&blk.finished), 0);
	unblock_worker(b, &blk);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	sleep_ms(20);
	ck_assert_int_eq(atomic_load(&p.started), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "The timer is released when the execution finishes, whatever the path."
 * An execution that finished before its deadline is never aborted later. */
START_TEST(timer_released_when_finished)
{
	pf_scope *s = new_scope(2);
	enum { N = 10 };
	pf_exec *es[3 * N];
	aw as[N];
	pf_exec_options o = { .timeout_ms = 150 };
	int ok = 0, bad = PF_EUSER - 1;
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, &o, &es[i]),
		    0);
		ck_assert_int_eq(pf_scope_exec(s, &code_flow, &bad, &o,
				     &es[N + i]),
		    0);
		memset(&as[i], 0, sizeof as[i]);
		as[i].mode = AW_FLAG;
		as[i].ret = PF_EUSER - 1;
		ck_assert_int_eq(pf_scope_exec(s, &aw_flow, &as[i], &o,
				     &es[2 * N + i]),
		    0);
		/* Cancelled by hand (pending or running) before the
		 * deadline. */
		ck_assert_int_eq(pf_exec_abort(es[2 * N + i]), 0);
	}
	for (int i = 0; i < 3 * N; i++)
		(void)pf_exec_wait(es[i], NULL);
	/* Past every deadline. */
	sleep_ms(250);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pf_exec_status(es[i]), PF_COMPLETED);
		ck_assert(!pf_ctx_aborted(pf_exec_ctx(es[i])));
		ck_assert_int_eq(pf_exec_throw_if_aborted(es[i]), 0);
		ck_assert_int_eq(pf_exec_status(es[N + i]), PF_FAILED);
		ck_assert(!pf_ctx_aborted(pf_exec_ctx(es[N + i])));
		ck_assert_int_eq(pf_exec_status(es[2 * N + i]), PF_CANCELLED);
		ck_assert_int_eq(pf_exec_throw_if_aborted(es[2 * N + i]),
		    PF_ECANCELED);
	}
	for (int i = 0; i < 3 * N; i++)
		pf_exec_release(es[i]);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Timeouts work at every level (... child exec ...)", reaching the child's
 * descendants but not its parent. */
START_TEST(child_exec_times_out)
{
	pf_scope *s = new_scope(4);
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &root), 0);
	spawn sp = { .self = { .mode = AW_FLAG, .ret = PF_EUSER - 1 },
		.grand = { .mode = AW_FLAG, .ret = PF_EUSER - 2 } };
	pf_exec_options o = { .timeout_ms = 30 };
	int64_t t0 = mono_ns();
	pf_exec *child = NULL;
	ck_assert_int_eq(pf_ctx_exec(root, &spawn_flow, &sp, &o, &child), 0);
	ck_assert_int_eq(pf_exec_wait(child, NULL), PF_ETIMEDOUT);
	ck_assert_int_ge(mono_ns() - t0, 30 * MS);
	ck_assert_int_eq(pf_exec_status(child), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&sp.self.reason), PF_ETIMEDOUT);
	ck_assert_int_eq(atomic_load(&sp.grand.reason), PF_ETIMEDOUT);
	pf_exec *g = atomic_load(&sp.g);
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(pf_exec_status(g), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(g, NULL), PF_ETIMEDOUT);
	ck_assert(!pf_ctx_aborted(root));
	pf_exec_release(g);
	pf_exec_release(child);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "... standalone contexts": pf_scope_create_execution with timeout_ms. */
START_TEST(standalone_context_times_out)
{
	pf_scope *s = new_scope(1);
	pf_ctx_options co = { .timeout_ms = 30 };
	int64_t t0 = mono_ns();
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &c), 0);
	ck_assert(!pf_ctx_aborted(c));
	await_aborted(c);
	int64_t dt = mono_ns() - t0;
	ck_assert_int_ge(dt, 30 * MS);
	ck_assert_int_lt(dt, 3000 * MS);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(c)), PF_ETIMEDOUT);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ========================================================== 5. Waiting */

/* fib(n) where every call with n >= 2 is two child executions waited on. */
static const pf_flow fib_flow;

static int
fib_handler(pf_ctx *c, const void *in, void *out)
{
	int n = *(const int *)in;
	if (n < 2) {
		*(long *)out = n;
		return 0;
	}
	int n1 = n - 1, n2 = n - 2;
	pf_exec *a = NULL, *b = NULL;
	int rc = pf_ctx_exec(c, &fib_flow, &n1, NULL, &a);
	if (rc != 0)
		return rc;
	rc = pf_ctx_exec(c, &fib_flow, &n2, NULL, &b);
	if (rc != 0) {
		(void)pf_exec_wait(a, NULL);
		pf_exec_release(a);
		return rc;
	}
	long x = -1, y = -1;
	int ra = pf_exec_wait(a, &x);
	int rb = pf_exec_wait(b, &y);
	pf_exec_release(a);
	pf_exec_release(b);
	if (ra != 0)
		return ra;
	if (rb != 0)
		return rb;
	*(long *)out = x + y;
	return 0;
}

static const pf_flow fib_flow = { "fib", fib_handler, sizeof(int), sizeof(long) };

static const unsigned loop_threads[] = { 1, 2, 4 };

/* "pf_exec_wait may be called from ... a worker of the same scope inside a
 * handler, at any depth, with any number of threads (1 included), without
 * deadlock" */
START_TEST(fib_of_waited_children)
{
	pf_scope *s = new_scope(loop_threads[_i]);
	ck_assert_uint_eq(pf_scope_threads(s), loop_threads[_i]);
	int n = 15;
	long out = -1;
	ck_assert_int_eq(pf_scope_run(s, &fib_flow, &n, &out, NULL), 0);
	ck_assert_int_eq(out, 610);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static const pf_flow nest_flow;

static int
nest_handler(pf_ctx *c, const void *in, void *out)
{
	int d = *(const int *)in;
	if (d == 0) {
		*(int *)out = 0;
		return 0;
	}
	int below = d - 1, got = -1;
	pf_exec *e = NULL;
	int rc = pf_ctx_exec(c, &nest_flow, &below, NULL, &e);
	if (rc != 0)
		return rc;
	rc = pf_exec_wait(e, &got);
	pf_exec_release(e);
	if (rc != 0)
		return rc;
	*(int *)out = got + 1;
	return 0;
}

static const pf_flow nest_flow = { "nest", nest_handler, sizeof(int), sizeof(int) };

START_TEST(nested_waits_30_deep)
{
	pf_scope *s = new_scope(loop_threads[_i]);
	int d = 30, out = -1;
	ck_assert_int_eq(pf_scope_run(s, &nest_flow, &d, &out, NULL), 0);
	ck_assert_int_eq(out, 30);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "An external thread sleeps on a condition variable or futex, not in a
 * spin loop" */
START_TEST(external_waiter_sleeps)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	g.out = 3;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert(await_at_least(&g.started, 1, GIVE_UP_MS));
	waiter_arg w = { .e = e };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
	ck_assert(await_at_least(&w.waiting, 1, GIVE_UP_MS));
	sleep_ms(200);
	atomic_store(&g.open, 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&w.rc), 0);
	ck_assert_int_eq(atomic_load(&w.out), 3);
	/* 200 ms of waiting cost well under 100 ms of CPU. */
	ck_assert_int_lt(atomic_load(&w.cpu_ns), 100 * MS);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "An external thread ... may run the awaited execution itself if nobody
 * has started it", but only in a free run slot: with the only worker busy
 * in a handler, a one-thread scope runs one handler at a time (API.md
 * Semantics 5), so the outside wait sleeps and the worker runs it once it
 * is free. */
START_TEST(external_wait_runs_pending_only_in_a_free_slot)
{
	pf_scope *s = new_scope(1);
	gate busy = { 0 };
	pf_exec *b = block_worker(s, &busy);
	int worker = atomic_load(&busy.tid);
	gate g = { 0 };
	g.open = 1;
	g.out = 5;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	int out = 0;
	ck_assert_int_eq(pf_exec_wait_for(e, &out, 200), PF_EAGAIN);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	atomic_store(&busy.open, 1);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 5);
	ck_assert_int_eq(atomic_load(&g.tid), worker);
	pf_exec_release(e);
	unblock_worker(b, &busy);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static int
dispose_own_scope_handler(pf_ctx *c, const void *in, void *out)
{
	*(int *)out = pf_scope_dispose(pf_ctx_scope(c));
	return 0;
}
static const pf_flow dispose_own_scope_flow = { "dispose-own",
	dispose_own_scope_handler, 0, sizeof(int) };

/* A handler that an outside waiter runs itself is still one of the
 * scope's handlers: disposing the scope from it is PF_EINVAL (it would
 * wait for itself), as from a worker. */
START_TEST(external_wait_inline_handler_cannot_dispose)
{
	pf_scope *s = new_scope(1);
	gate busy = { 0 };
	pf_exec *b = block_worker(s, &busy);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &dispose_own_scope_flow, NULL, NULL,
	    &e), 0);
	int out = 0;
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, PF_EINVAL);
	pf_exec_release(e);
	unblock_worker(b, &busy);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* A wait with a deadline never runs the execution itself: the handler
 * could outlast the deadline, or wait for what this thread does after
 * giving up. */
START_TEST(external_wait_for_does_not_run_pending)
{
	pf_scope *s = new_scope(1);
	gate busy = { 0 };
	pf_exec *b = block_worker(s, &busy);
	gate g = { 0 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_wait_for(e, NULL, 20), PF_EAGAIN);
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	ck_assert_int_eq(atomic_load(&g.started), 0);
	atomic_store(&g.open, 1);
	unblock_worker(b, &busy);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_exec_wait_for: "giving up with PF_EAGAIN after timeout_ms (0: poll)",
 * and the result once finished. */
START_TEST(wait_for_times_out_then_delivers)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	g.out = 77;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	int out = -1;
	int64_t t0 = mono_ns();
	ck_assert_int_eq(pf_exec_wait_for(e, &out, 30), PF_EAGAIN);
	int64_t dt = mono_ns() - t0;
	ck_assert_int_ge(dt, 30 * MS);
	ck_assert_int_lt(dt, 3000 * MS);
	ck_assert_int_eq(out, -1);
	t0 = mono_ns();
	ck_assert_int_eq(pf_exec_wait_for(e, &out, 0), PF_EAGAIN);
	ck_assert_int_lt(mono_ns() - t0, 1000 * MS);
	ck_assert_int_eq(out, -1);
	ck_assert(!is_terminal(pf_exec_status(e)));
	atomic_store(&g.open, 1);
	ck_assert_int_eq(pf_exec_wait_for(e, &out, GIVE_UP_MS), 0);
	ck_assert_int_eq(out, 77);
	out = -1;
	ck_assert_int_eq(pf_exec_wait_for(e, &out, 0), 0);
	ck_assert_int_eq(out, 77);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_exec_try: "The result if finished, else PF_EAGAIN; never blocks." */
START_TEST(try_eagain_until_finished)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	g.out = 11;
	g.ret = 0;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	int out = -1;
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(pf_exec_try(e, &out), PF_EAGAIN);
		sleep_ms(2);
	}
	ck_assert_int_eq(out, -1);
	atomic_store(&g.open, 1);
	int rc = PF_EAGAIN;
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	while ((rc = pf_exec_try(e, &out)) == PF_EAGAIN && mono_ns() < end)
		sleep_ms(1);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(out, 11);
	pf_exec_release(e);

	/* A failure is its result too. */
	gate f = { 0 };
	f.ret = PF_EUSER - 12;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &f, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_try(e, NULL), PF_EAGAIN);
	atomic_store(&f.open, 1);
	end = mono_ns() + GIVE_UP_MS * MS;
	out = -1;
	while ((rc = pf_exec_try(e, &out)) == PF_EAGAIN && mono_ns() < end)
		sleep_ms(1);
	ck_assert_int_eq(rc, PF_EUSER - 12);
	ck_assert_int_eq(out, -1);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Submitting ... never runs the new execution's handler on the calling
 * thread before returning" (an outside submitter) */
START_TEST(submit_never_runs_on_caller)
{
	pf_scope *s = new_scope(2);
	for (int i = 0; i < 20; i++) {
		gate g = { 0 };
		atomic_store(&g.open, 1);
		pf_exec *e = NULL;
		ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
		/* Waiting only after the handler ran elsewhere: the wait
		 * itself may not run it on this thread. */
		ck_assert(await_at_least(&g.finished, 1, GIVE_UP_MS));
		ck_assert_int_ne(atomic_load(&g.tid), my_tid());
		ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
		pf_exec_release(e);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ... (a handler submitting a child on a one-thread scope: nobody else can
 * run the child, so it must not have started when pf_ctx_exec returns) */
typedef struct sub_rec {
	gate child;
	_Atomic int started_before_return;
	_Atomic int exec_rc;
	_Atomic int wait_rc;
	_Atomic int self_tid;
} sub_rec;

static int
submit_child_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	sub_rec *r = (sub_rec *)in;
	atomic_store(&r->self_tid, my_tid());
	pf_exec *e = NULL;
	int rc = pf_ctx_exec(c, &gate_flow, &r->child, NULL, &e);
	atomic_store(&r->started_before_return, atomic_load(&r->child.started));
	atomic_store(&r->exec_rc, rc);
	if (rc != 0)
		return rc;
	atomic_store(&r->wait_rc, pf_exec_wait(e, NULL));
	pf_exec_release(e);
	return 0;
}

static const pf_flow submit_child_flow = { "submit_child",
	submit_child_handler, 0, 0 };

START_TEST(child_submit_never_runs_on_caller)
{
	pf_scope *s = new_scope(1);
	for (int i = 0; i < 20; i++) {
		sub_rec r = { 0 };
		atomic_store(&r.child.open, 1);
		ck_assert_int_eq(pf_scope_run(s, &submit_child_flow, &r, NULL,
				     NULL),
		    0);
		ck_assert_int_eq(atomic_load(&r.exec_rc), 0);
		ck_assert_int_eq(atomic_load(&r.started_before_return), 0);
		ck_assert_int_eq(atomic_load(&r.wait_rc), 0);
		ck_assert_int_eq(atomic_load(&r.child.started), 1);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Submitting (pf_scope_exec, pf_ctx_exec) never blocks on running work" */
START_TEST(submit_does_not_block_on_running_work)
{
	pf_scope *s = new_scope(1);
	gate blk = { 0 };
	pf_exec *b = block_worker(s, &blk);
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int64_t t0 = mono_ns();
	pf_exec *es[8];
	int ok = 0;
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pf_scope_exec(s, &code_flow, &ok, NULL, &es[i]),
		    0);
		ck_assert_int_eq(pf_ctx_exec(c, &code_flow, &ok, NULL,
				     &es[4 + i]),
		    0);
	}
	ck_assert_int_lt(mono_ns() - t0, 1000 * MS);
	ck_assert_int_eq(atomic_load(&blk.finished), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pf_exec_status(es[i]), PF_PENDING);
	unblock_worker(b, &blk);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pf_exec_wait(es[i], NULL), 0);
		pf_exec_release(es[i]);
	}
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "idle workers pick up queued work without anyone waiting for it" */
typedef struct ff_rec {
	_Atomic int child_flag;
	_Atomic int exec_rc;
} ff_rec;

static int
ff_parent_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	ff_rec *r = (ff_rec *)in;
	atomic_store(&r->exec_rc,
	    pf_ctx_exec(c, &flag_flow, &r->child_flag, NULL, NULL));
	return 0;
}

static const pf_flow ff_parent_flow = { "ff_parent", ff_parent_handler, 0,
	0 };

START_TEST(idle_workers_pick_up_queued_work)
{
	unsigned threads = loop_threads[_i];
	pf_scope *s = new_scope(threads);
	_Atomic int flag = 0;
	ck_assert_int_eq(pf_scope_exec(s, &flag_flow, &flag, NULL, NULL), 0);
	ck_assert(await_at_least(&flag, 1, 5000));

	/* A child started and not waited for, by a parent not waited for. */
	ff_rec r = { 0 };
	ck_assert_int_eq(pf_scope_exec(s, &ff_parent_flow, &r, NULL, NULL), 0);
	ck_assert(await_at_least(&r.child_flag, 1, 5000));
	ck_assert_int_eq(atomic_load(&r.exec_rc), 0);

	/* From a standalone context. */
	pf_ctx *c = NULL;
	_Atomic int flag2 = 0;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(pf_ctx_exec(c, &flag_flow, &flag2, NULL, NULL), 0);
	ck_assert(await_at_least(&flag2, 1, 5000));
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Many waiters on one execution: outside threads and handlers ("from any
 * thread, including a worker of the same scope inside a handler") all wake
 * with its output. */
typedef struct hw_in {
	pf_exec *target;
} hw_in;

static int
handler_waiter(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	const hw_in *h = in;
	return pf_exec_wait(h->target, out);
}

static const pf_flow handler_waiter_flow = { "handler_waiter",
	handler_waiter, 0, sizeof(int) };

START_TEST(many_waiters_wake_with_output)
{
	pf_scope *s = new_scope(loop_threads[_i]);
	gate g = { 0 };
	g.out = 4242;
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert(await_at_least(&g.started, 1, GIVE_UP_MS));

	enum { NT = 4, NH = 3 };
	waiter_arg w[NT];
	pthread_t t[NT];
	for (int i = 0; i < NT; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].e = e;
		ck_assert_int_eq(pthread_create(&t[i], NULL, waiter_main, &w[i]),
		    0);
	}
	hw_in h = { e };
	pf_exec *hs[NH];
	for (int i = 0; i < NH; i++)
		ck_assert_int_eq(pf_scope_exec(s, &handler_waiter_flow, &h,
				     NULL, &hs[i]),
		    0);
	for (int i = 0; i < NT; i++)
		ck_assert(await_at_least(&w[i].waiting, 1, GIVE_UP_MS));
	sleep_ms(30);
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(atomic_load(&w[i].done), 0);
	atomic_store(&g.open, 1);
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(atomic_load(&w[i].rc), 0);
		ck_assert_int_eq(atomic_load(&w[i].out), 4242);
	}
	for (int i = 0; i < NH; i++) {
		int out = -1;
		ck_assert_int_eq(pf_exec_wait(hs[i], &out), 0);
		ck_assert_int_eq(out, 4242);
		pf_exec_release(hs[i]);
	}
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 4242);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ================================== 6. Child executions hold the parent */

static const pf_tag t_num = { "num", sizeof(int), NULL };

typedef struct orphan {
	gate g;                 /* the child waits on it */
	aw a;                   /* or waits for its abort */
	bool use_aw;
	_Atomic(pf_exec *) child;
	_Atomic int exec_rc;
	/* Seen by the child after the gate opened. */
	_Atomic int tag_rc;
	_Atomic int tag_via_parent;
	_Atomic int tag_via_self;
	_Atomic int64_t parent_completed;
	_Atomic int parent_is_set;
} orphan;

static int
orphan_child_handler(pf_ctx *c, const void *in, void *out)
{
	orphan *o = (orphan *)in;
	int rc = o->use_aw ? aw_handler(c, &o->a, out)
			   : gate_handler(c, &o->g, out);
	pf_ctx *p = pf_ctx_parent(c);
	atomic_store(&o->parent_is_set, p != NULL);
	if (p != NULL) {
		int v = -1;
		atomic_store(&o->tag_rc, pf_ctx_get(p, &t_num, &v));
		atomic_store(&o->tag_via_parent, v);
		atomic_store(&o->parent_completed, pf_ctx_completed_at(p));
	}
	int v = -1;
	(void)pf_ctx_get(c, &t_num, &v);
	atomic_store(&o->tag_via_self, v);
	if (rc == 0)
		*(int *)out = v;
	return rc;
}

static const pf_flow orphan_child_flow = { "orphan_child",
	orphan_child_handler, 0, sizeof(int) };

static int
orphan_parent_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	orphan *o = (orphan *)in;
	int v = 99;
	(void)pf_ctx_set(c, &t_num, &v);
	pf_exec *e = NULL;
	int rc = pf_ctx_exec(c, &orphan_child_flow, o, NULL, &e);
	atomic_store(&o->exec_rc, rc);
	if (rc == 0)
		atomic_store(&o->child, e);
	return 0; /* without waiting for the child */
}

static const pf_flow orphan_parent_flow = { "orphan_parent",
	orphan_parent_handler, 0, 0 };

/* "Child executions hold a reference to their parent context, so tags read
 * through the parent stay valid. A parent may finish before an un-awaited
 * child; the child goes on unless aborted." */
START_TEST(child_outlives_parent_reads_tags)
{
	pf_scope *s = new_scope(2);
	orphan o = { 0 };
	pf_exec *p = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &orphan_parent_flow, &o, NULL, &p),
	    0);
	ck_assert_int_eq(pf_exec_wait(p, NULL), 0);
	ck_assert_int_eq(pf_exec_status(p), PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&o.exec_rc), 0);
	pf_exec *child = atomic_load(&o.child);
	ck_assert_ptr_nonnull(child);
	/* Drop every handle on the parent: the child still holds it. */
	pf_exec_release(p);
	sleep_ms(20);
	ck_assert(!is_terminal(pf_exec_status(child)));
	ck_assert(!pf_ctx_aborted(pf_exec_ctx(child)));

	atomic_store(&o.g.open, 1);
	int out = -1;
	ck_assert_int_eq(pf_exec_wait(child, &out), 0);
	ck_assert_int_eq(pf_exec_status(child), PF_COMPLETED);
	ck_assert_int_eq(out, 99);
	ck_assert_int_eq(atomic_load(&o.parent_is_set), 1);
	ck_assert_int_eq(atomic_load(&o.tag_rc), 0);
	ck_assert_int_eq(atomic_load(&o.tag_via_parent), 99);
	ck_assert_int_eq(atomic_load(&o.tag_via_self), 99);
	ck_assert_int_ne(atomic_load(&o.parent_completed), 0);
	pf_exec_release(child);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Aborting the parent aborts it." (the parent's context, after the parent
 * execution finished; and a standalone parent that has ended) */
START_TEST(aborting_finished_parent_aborts_child)
{
	pf_scope *s = new_scope(2);
	orphan o = { .use_aw = true,
		.a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 } };
	pf_exec *p = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &orphan_parent_flow, &o, NULL, &p),
	    0);
	ck_assert_int_eq(pf_exec_wait(p, NULL), 0);
	pf_exec *child = atomic_load(&o.child);
	ck_assert_ptr_nonnull(child);
	ck_assert(await_at_least(&o.a.started, 1, GIVE_UP_MS));
	sleep_ms(20);
	ck_assert_int_eq(pf_exec_status(child), PF_RUNNING);
	ck_assert_int_eq(pf_ctx_abort(pf_exec_ctx(p)), 0);
	ck_assert_int_eq(pf_exec_wait(child, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(child), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&o.a.gave_up), 0);
	/* The finished parent keeps its status. */
	ck_assert_int_eq(pf_exec_status(p), PF_COMPLETED);
	pf_exec_release(child);
	pf_exec_release(p);

	/* A standalone parent that has ended. */
	pf_ctx *root = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &root), 0);
	aw a = { .mode = AW_FLAG, .ret = PF_EUSER - 1 };
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_ctx_exec(root, &aw_flow, &a, NULL, &e), 0);
	ck_assert(await_at_least(&a.started, 1, GIVE_UP_MS));
	ck_assert_int_eq(pf_ctx_end(root), 0);
	sleep_ms(20);
	ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
	ck_assert(!pf_ctx_aborted(pf_exec_ctx(e)));
	ck_assert_int_eq(pf_ctx_abort(root), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&a.gave_up), 0);
	pf_exec_release(e);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ========================================================== stress */

/* race_flow: returns an error if it sees its context aborted, else 0,
 * recording which. */
typedef struct race_rec {
	cbrec cb;
	_Atomic int started;
	_Atomic int ret;
} race_rec;

static int
race_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	race_rec *r = (race_rec *)in;
	atomic_fetch_add(&r->started, 1);
	int ret = pf_ctx_aborted(c) ? PF_EUSER - 1 : 0;
	atomic_store(&r->ret, ret);
	return ret;
}

static const pf_flow race_flow = { "race", race_handler, 0, 0 };

/* Abort racing start and finish: every execution takes one path through
 * the status machine (item 1), its callbacks see exactly that path once
 * (item 2), and one aborted before it started never runs (item 3). */
START_TEST(abort_races_start_and_finish)
{
	long n = pf_test_scale(2000);
	pf_scope *s = new_scope(2);
	race_rec *rs = calloc((size_t)n, sizeof *rs);
	pf_exec **es = calloc((size_t)n, sizeof *es);
	ck_assert_ptr_nonnull(rs);
	ck_assert_ptr_nonnull(es);
	for (long i = 0; i < n; i++) {
		cbrec_init(&rs[i].cb);
		pf_exec_options o = { .on_status = cb_record,
			.on_status_data = &rs[i].cb };
		ck_assert_int_eq(pf_scope_exec(s, &race_flow, &rs[i], &o, &es[i]),
		    0);
		if (i % 2 == 0)
			ck_assert_int_eq(pf_exec_abort(es[i]), 0);
	}
	long ran = 0, cancelled_pending = 0;
	for (long i = 0; i < n; i++) {
		int rc = pf_exec_wait(es[i], NULL);
		pf_status st = pf_exec_status(es[i]);
		race_rec *r = &rs[i];
		int started = atomic_load(&r->started);
		int calls = atomic_load(&r->cb.n);
		ck_assert_int_le(started, 1);
		ck_assert_int_eq(atomic_load(&r->cb.seq[0]), PF_PENDING);
		if (started) {
			ran++;
			int ret = atomic_load(&r->ret);
			ck_assert_int_eq(calls, 3);
			ck_assert_int_eq(atomic_load(&r->cb.seq[1]), PF_RUNNING);
			ck_assert_int_eq(st, ret == 0 ? PF_COMPLETED
						      : PF_CANCELLED);
			ck_assert_int_eq(rc, ret == 0 ? 0 : PF_ECANCELED);
		} else {
			cancelled_pending++;
			ck_assert_int_eq(i % 2, 0);
			ck_assert_int_eq(calls, 2);
			ck_assert_int_eq(st, PF_CANCELLED);
			ck_assert_int_eq(rc, PF_ECANCELED);
		}
		ck_assert_int_eq(atomic_load(&r->cb.seq[calls - 1]), (int)st);
		ck_assert_int_eq(atomic_load(&r->cb.st_seen), (int)st);
		if (i % 2 == 1)
			ck_assert_int_eq(st, PF_COMPLETED);
	}
	ck_assert_int_eq(ran + cancelled_pending, n);
	for (long i = 0; i < n; i++)
		pf_exec_release(es[i]);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	/* Nothing runs or calls back after dispose. */
	for (long i = 0; i < n; i++)
		ck_assert_int_le(atomic_load(&rs[i].cb.n), 3);
	free(es);
	free(rs);
}
END_TEST

/* ------------------------------------------------------------------ main */

/*
 * A pending callback that aborts its own execution, which has a timeout:
 * the execution ends cancelled before its timer would be armed, and no
 * timer is left holding it (LeakSanitizer checks the ASan build).
 */
static void
abort_on_pending(pf_exec *e, pf_status st, void *data)
{
	if (st == PF_PENDING)
		pf_exec_abort(e);
	atomic_fetch_add((atomic_int *)data, 1);
}

static int
never_runs(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	return 1;
}

START_TEST(pending_callback_aborts_execution_with_timeout)
{
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, NULL), 0);
	static const pf_flow f = { "never", never_runs, 0, 0 };
	atomic_int calls = 0;
	pf_exec_options o = { .timeout_ms = 20, .on_status = abort_on_pending,
		.on_status_data = &calls };
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &f, NULL, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(atomic_load(&calls), 2); /* pending, cancelled */
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_exec_off_status: once it returns, the callback is not running and
 * will not run, even when a delivery was in flight on another thread. */
typedef struct slow_sub {
	atomic_int started, finished;
} slow_sub;

static void
slow_sub_cb(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	slow_sub *ss = data;
	if (st != PF_RUNNING && st != PF_PENDING)
		return;
	atomic_store(&ss->started, 1);
	sleep_ms(50);
	atomic_store(&ss->finished, 1);
}

START_TEST(off_status_waits_for_callback_in_flight)
{
	pf_scope *s = new_scope(2);
	gate g = { 0 };
	slow_sub ss = { 0 };
	/* Subscribed while pending (usually), the running transition
	 * reaches the slow callback on a worker; off_status from here must
	 * then wait for it to return. */
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_on_status(e, slow_sub_cb, &ss), 0);
	int64_t end = mono_ns() + GIVE_UP_MS * MS;
	while (!atomic_load(&ss.started) && pf_exec_status(e) == PF_PENDING &&
	    mono_ns() < end)
		sched_yield();
	if (atomic_load(&ss.started)) {
		ck_assert_int_eq(pf_exec_off_status(e, slow_sub_cb, &ss), 0);
		ck_assert_int_eq(atomic_load(&ss.finished), 1);
	} else {
		/* It started before we subscribed: nothing in flight. */
		ck_assert_int_eq(pf_exec_off_status(e, slow_sub_cb, &ss), 0);
	}
	atomic_store(&g.open, 1);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static Suite *
exec_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "status_pending_running", .test = pending_until_handler_starts, .timeout = 30 },
		{ .tcase = "status_pending_running", .test = running_while_handler_runs, .timeout = 30 },
		{ .tcase = "status_terminal_rules", .test = completed_when_handler_returns_zero, .timeout = 30 },
		{ .tcase = "status_terminal_rules", .test = failed_when_error_not_aborted, .timeout = 30 },
		{ .tcase = "status_terminal_rules", .test = cancelled_when_error_while_aborted, .timeout = 30 },
		{ .tcase = "status_terminal_rules", .test = completed_when_zero_after_abort, .timeout = 30 },
		{ .tcase = "status_terminal_rules", .test = terminal_never_changes, .timeout = 30 },
		{ .tcase = "status_published_before_wake", .test = terminal_callback_sees_published_result, .timeout = 30 },
		{ .tcase = "status_published_before_wake", .test = waiter_sees_published_result, .timeout = 30 },
		{ .tcase = "status_timestamps", .test = exec_timestamps_ordered, .timeout = 30 },
		{ .tcase = "status_timestamps", .test = standalone_starts_at_creation_and_end_only_records, .timeout = 30 },
		{ .tcase = "status_timestamps", .test = fn_step_starts_at_creation_ends_on_return, .timeout = 30 },
		{ .tcase = "status_timestamps", .test = exec_fn_returns_fn_result, .timeout = 30 },
		{ .tcase = "callbacks_see_transitions", .test = on_status_sees_each_transition_once, .timeout = 30 },
		{ .tcase = "callbacks_see_transitions", .test = callbacks_run_on_transition_thread, .timeout = 30 },
		{ .tcase = "callbacks_subscribe", .test = subscribe_finished_calls_once_at_once, .timeout = 30 },
		{ .tcase = "callbacks_subscribe", .test = subscribe_running_sees_later_only, .timeout = 30 },
		{ .tcase = "callbacks_subscribe", .test = subscribe_pending_sees_running_and_terminal, .timeout = 30 },
		{ .tcase = "callbacks_subscribe", .test = off_status_stops_calls, .timeout = 30 },
		{ .tcase = "callbacks_subscribe", .test = off_status_waits_for_callback_in_flight, .timeout = 30 },
		{ .tcase = "callbacks_before_wait_returns", .test = wait_returns_after_terminal_callbacks, .timeout = 30 },
		{ .tcase = "callbacks_before_wait_returns", .test = wait_for_and_try_after_terminal_callbacks, .timeout = 30 },
		{ .tcase = "callbacks_may_abort", .test = callback_aborts_own_execution, .timeout = 30 },
		{ .tcase = "callbacks_may_abort", .test = pending_callback_aborts_execution_with_timeout, .timeout = 30 },
		{ .tcase = "callbacks_may_abort", .test = callback_aborts_other_context, .timeout = 30 },
		{ .tcase = "abort_cascades", .test = abort_reaches_running_descendants, .timeout = 30 },
		{ .tcase = "abort_cascades", .test = aborted_context_starts_nothing, .timeout = 30 },
		{ .tcase = "abort_cascades", .test = abort_reaches_ended_descendants, .timeout = 30 },
		{ .tcase = "abort_first_wins", .test = timeout_then_abort_keeps_timedout, .timeout = 30 },
		{ .tcase = "abort_first_wins", .test = abort_then_timeout_keeps_canceled, .timeout = 30 },
		{ .tcase = "abort_first_wins", .test = descendant_keeps_own_earlier_reason, .timeout = 30 },
		{ .tcase = "abort_pending", .test = pending_aborted_never_runs, .timeout = 30 },
		{ .tcase = "abort_observed_by_handler", .test = running_handler_observes_abort, .timeout = 30, .loop = AW_MODES },
		{ .tcase = "abort_finished", .test = abort_finished_changes_nothing, .timeout = 30 },
		{ .tcase = "abort_signal", .test = listeners_ran_before_ctx_abort_returns, .timeout = 30 },
		{ .tcase = "abort_signal", .test = listeners_ran_before_exec_abort_returns, .timeout = 30 },
		{ .tcase = "abort_signal", .test = listener_added_to_aborted_runs_at_once, .timeout = 30 },
		{ .tcase = "abort_signal", .test = removed_listener_never_runs, .timeout = 30 },
		{ .tcase = "abort_signal", .test = remove_waits_for_running_listener, .timeout = 30 },
		{ .tcase = "abort_signal", .test = signal_fd_turns_readable_and_closes_with_context, .timeout = 30 },
		{ .tcase = "timeout", .test = scope_exec_times_out, .timeout = 30 },
		{ .tcase = "timeout", .test = timeout_counts_pending_time, .timeout = 30 },
		{ .tcase = "timeout", .test = timer_released_when_finished, .timeout = 30 },
		{ .tcase = "timeout", .test = child_exec_times_out, .timeout = 30 },
		{ .tcase = "timeout", .test = standalone_context_times_out, .timeout = 30 },
		{ .tcase = "wait_in_handlers", .test = fib_of_waited_children, .timeout = 60, .loop = 3 },
		{ .tcase = "wait_in_handlers", .test = nested_waits_30_deep, .timeout = 60, .loop = 3 },
		{ .tcase = "wait_outside", .test = external_waiter_sleeps, .timeout = 30 },
		{ .tcase = "wait_outside", .test = external_wait_runs_pending_only_in_a_free_slot, .timeout = 30 },
		{ .tcase = "wait_outside", .test = external_wait_inline_handler_cannot_dispose, .timeout = 30 },
		{ .tcase = "wait_outside", .test = external_wait_for_does_not_run_pending, .timeout = 30 },
		{ .tcase = "wait_outside", .test = wait_for_times_out_then_delivers, .timeout = 30 },
		{ .tcase = "wait_outside", .test = try_eagain_until_finished, .timeout = 30 },
		{ .tcase = "wait_many_waiters", .test = many_waiters_wake_with_output, .timeout = 30, .loop = 3 },
		{ .tcase = "submit", .test = submit_never_runs_on_caller, .timeout = 30 },
		{ .tcase = "submit", .test = child_submit_never_runs_on_caller, .timeout = 30 },
		{ .tcase = "submit", .test = submit_does_not_block_on_running_work, .timeout = 30 },
		{ .tcase = "submit", .test = idle_workers_pick_up_queued_work, .timeout = 30, .loop = 3 },
		{ .tcase = "child_holds_parent", .test = child_outlives_parent_reads_tags, .timeout = 30 },
		{ .tcase = "child_holds_parent", .test = aborting_finished_parent_aborts_child, .timeout = 30 },
		{ .tcase = "stress_abort_races", .test = abort_races_start_and_finish, .timeout = 120, .tags = "stress" },
	};
	return pf_test_suite("exec", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(exec_suite());
}
