/*
 * check_deferred.c: deferred executions (pf_ctx_exec_deferred,
 * pf_scope_exec_deferred, pf_exec_settle), pf_exec_withdraw and
 * pf_scope_create_execution_with_id: the pieces companion libraries
 * (libpumped-mpi) build proxies from.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pumped.h>

#include "testlib.h"

#define E_REMOTE (PF_EUSER - 7)

static const pf_flow out_flow = { "remote-work", NULL, 0, sizeof(long) };

/* Every status a callback saw, in order. */
typedef struct seen {
	atomic_int n;
	pf_status st[8];
} seen;

static void
note_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	seen *s = data;
	int i = atomic_fetch_add(&s->n, 1);
	if (i < 8)
		s->st[i] = st;
}

typedef struct settler {
	pf_exec *e;
	long ms;
	pf_status st;
	int code;
	long value;
	const char *msg;
} settler;

static void *
settle_later(void *arg)
{
	settler *t = arg;
	sleep_ms(t->ms);
	int rc = pf_exec_settle(t->e, t->st, t->code, &t->value, t->msg);
	return (void *)(intptr_t)rc;
}

START_TEST(deferred_runs_until_settled)
{
	pf_scope *s = new_scope(2);
	seen sn = { 0 };
	pf_exec_options o = { .on_status = note_status, .on_status_data = &sn };
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, &o, &e), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
	ck_assert_int_eq(atomic_load(&sn.n), 2);
	ck_assert_int_eq(sn.st[0], PF_PENDING);
	ck_assert_int_eq(sn.st[1], PF_RUNNING);
	ck_assert_int_ne(pf_ctx_started_at(pf_exec_ctx(e)), 0);
	ck_assert_str_eq(pf_exec_flow_name(e), "remote-work");
	long v = 0;
	ck_assert_int_eq(pf_exec_try(e, &v), PF_EAGAIN);
	ck_assert_int_eq(pf_exec_wait_for(e, &v, 20), PF_EAGAIN);
	settler t = { e, 30, PF_COMPLETED, 0, 4242, NULL };
	pthread_t th;
	pthread_create(&th, NULL, settle_later, &t);
	ck_assert_int_eq(pf_exec_wait(e, &v), 0);
	ck_assert_int_eq(v, 4242);
	void *r;
	pthread_join(th, &r);
	ck_assert_int_eq((int)(intptr_t)r, 0);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&sn.n), 3);
	ck_assert_int_eq(sn.st[2], PF_COMPLETED);
	/* Once only. */
	ck_assert_int_eq(pf_exec_settle(e, PF_COMPLETED, 0, &v, NULL),
	    PF_EINVAL);
	ck_assert_int_ne(pf_ctx_completed_at(pf_exec_ctx(e)), 0);
	pf_exec_release(e);
	pf_scope_dispose(s);
}
END_TEST

/* A flow with input data: a deferred execution has no input (it once read
 * from NULL). */
static const pf_flow with_input_flow = { "with-input", NULL, 64,
	sizeof(long) };

START_TEST(deferred_of_a_flow_with_input)
{
	pf_scope *s = new_scope(1);
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &with_input_flow, NULL,
			     &e),
	    0);
	long v = 3;
	ck_assert_int_eq(pf_exec_settle(e, PF_COMPLETED, 0, &v, NULL), 0);
	v = 0;
	ck_assert_int_eq(pf_exec_wait(e, &v), 0);
	ck_assert_int_eq(v, 3);
	pf_exec_release(e);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(deferred_failure_keeps_its_message)
{
	pf_scope *s = new_scope(1);
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_settle(e, PF_FAILED, E_REMOTE, NULL,
			     "rank 3: disk full"),
	    0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), E_REMOTE);
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	const char *msg = NULL;
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), &msg), E_REMOTE);
	ck_assert_str_eq(msg, "rank 3: disk full");
	pf_exec_release(e);
	pf_scope_dispose(s);
}
END_TEST

/* A listener on the deferred execution's signal, as the party doing the
 * work elsewhere would install: it notes the reason. */
typedef struct listen {
	pf_signal_listener l;
	atomic_int reason;
} listen;

static void
on_abort(pf_signal *sg, void *data)
{
	listen *ls = data;
	atomic_store(&ls->reason, pf_signal_reason(sg));
}

START_TEST(abort_and_timeout_reach_the_signal)
{
	pf_scope *s = new_scope(2);
	/* Abort: the signal fires, it stays running until settled. */
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &e), 0);
	listen ls = { .reason = 0 };
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(pf_exec_ctx(e)),
			     &ls.l, on_abort, &ls),
	    0);
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(atomic_load(&ls.reason), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
	ck_assert_int_eq(pf_exec_settle(e, PF_CANCELLED, 0, NULL, NULL), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	pf_exec_release(e);
	/* Timeout: the reason is PF_ETIMEDOUT and code 0 takes it. */
	pf_exec_options o = { .timeout_ms = 20 };
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, &o, &e), 0);
	listen lt = { .reason = 0 };
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(pf_exec_ctx(e)),
			     &lt.l, on_abort, &lt),
	    0);
	for (int i = 0; i < 2000 && atomic_load(&lt.reason) == 0; i++)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&lt.reason), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_settle(e, PF_CANCELLED, 0, NULL, NULL), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	pf_exec_release(e);
	pf_scope_dispose(s);
}
END_TEST

/* After an abort, a failure settles as a handler's would: cancelled with
 * the abort reason; a cancel keeps a code given. */
START_TEST(settle_after_abort_is_a_cancel)
{
	pf_scope *s = new_scope(1);
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &e), 0);
	ck_assert_int_eq(pf_ctx_abort_as(pf_exec_ctx(e), PF_ETIMEDOUT), 0);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(pf_exec_ctx(e))),
	    PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_settle(e, PF_FAILED, E_REMOTE, NULL, "late"),
	    0);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_settle(e, PF_CANCELLED, E_REMOTE, NULL,
			     NULL),
	    0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), E_REMOTE);
	pf_exec_release(e);
	/* pf_ctx_abort_as takes the two abort reasons only. */
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(pf_ctx_abort_as(c, E_REMOTE), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_abort_as(c, 0), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_abort_as(NULL, PF_ECANCELED), PF_EINVAL);
	ck_assert(!pf_ctx_aborted(c));
	ck_assert_int_eq(pf_ctx_abort_as(c, PF_ECANCELED), 0);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), PF_ECANCELED);
	pf_ctx_release(c);
	pf_scope_dispose(s);
}
END_TEST

/* A handler that waits for a deferred execution settled by a thread of
 * its own: its worker helps meanwhile, here with one thread, so that a
 * second flow started before still runs. */
typedef struct waits_in {
	pf_exec *deferred;
	pf_exec *other;
} waits_in;

static int
quick_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in;
	*(long *)out = 7;
	return 0;
}

static const pf_flow quick_flow = { "quick", quick_handler, 0, sizeof(long) };

static int
waits_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	pf_exec *d;
	int rc = pf_ctx_exec_deferred(c, &out_flow, NULL, &d);
	if (rc != 0)
		return rc;
	ck_assert_ptr_eq(pf_ctx_parent(pf_exec_ctx(d)), c);
	pf_exec *q;
	ck_assert_int_eq(pf_ctx_exec(c, &quick_flow, NULL, NULL, &q), 0);
	settler t = { d, 40, PF_COMPLETED, 0, 99, NULL };
	pthread_t th;
	pthread_create(&th, NULL, settle_later, &t);
	long v = 0;
	rc = pf_exec_wait(d, &v);
	pthread_join(th, NULL);
	long qv = 0;
	ck_assert_int_eq(pf_exec_try(q, &qv), 0); /* helped meanwhile */
	ck_assert_int_eq(qv, 7);
	pf_exec_release(q);
	pf_exec_release(d);
	*(long *)out = v;
	return rc;
}

static const pf_flow waits_flow = { "waits", waits_handler, 0, sizeof(long) };

START_TEST(a_worker_waits_and_helps)
{
	pf_scope *s = new_scope(1);
	long v = 0;
	ck_assert_int_eq(pf_scope_run(s, &waits_flow, NULL, &v, NULL), 0);
	ck_assert_int_eq(v, 99);
	pf_scope_dispose(s);
}
END_TEST

/* A deferred parent: its abort reaches the children started under it. */
static int
until_aborted(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	while (!pf_ctx_aborted(c))
		sleep_ms(1);
	return pf_ctx_throw_if_aborted(c);
}

static const pf_flow until_flow = { "until-aborted", until_aborted, 0, 0 };

START_TEST(children_of_a_deferred_execution)
{
	pf_scope *s = new_scope(2);
	pf_exec *d, *child;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &d), 0);
	ck_assert_int_eq(pf_ctx_exec(pf_exec_ctx(d), &until_flow, NULL, NULL,
			     &child),
	    0);
	ck_assert_int_eq(pf_exec_abort(d), 0);
	ck_assert_int_eq(pf_exec_wait(child, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_settle(d, PF_CANCELLED, 0, NULL, NULL), 0);
	ck_assert_int_eq(pf_exec_wait(d, NULL), PF_ECANCELED);
	/* Under an aborted parent nothing is created. */
	pf_exec *late;
	ck_assert_int_eq(pf_ctx_exec_deferred(pf_exec_ctx(d), &out_flow,
			     NULL, &late),
	    PF_ECANCELED);
	pf_exec_release(child);
	pf_exec_release(d);
	pf_scope_dispose(s);
}
END_TEST

/* Dispose aborts a deferred execution; whoever settles it then lets the
 * dispose finish. */
static void
settle_on_abort(pf_signal *sg, void *data)
{
	(void)sg;
	pf_exec_settle(data, PF_CANCELLED, 0, NULL, NULL);
}

START_TEST(dispose_waits_for_the_settle)
{
	pf_scope *s = new_scope(1);
	pf_exec *d;
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &d), 0);
	pf_signal_listener l;
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(pf_exec_ctx(d)),
			     &l, settle_on_abort, d),
	    0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(pf_exec_status(d), PF_CANCELLED);
	pf_exec_release(d);
}
END_TEST

START_TEST(deferred_misuse)
{
	pf_scope *s = new_scope(1);
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec_deferred(NULL, &out_flow, NULL, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_exec_deferred(s, NULL, NULL, &e), PF_EINVAL);
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, NULL),
	    PF_EINVAL);
	pf_exec_options keyed = { .key = "k" };
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, &keyed, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_ctx_exec_deferred(NULL, &out_flow, NULL, &e),
	    PF_EINVAL);
	ck_assert_int_eq(pf_exec_settle(NULL, PF_COMPLETED, 0, NULL, NULL),
	    PF_EINVAL);
	/* An ordinary execution is not settled from outside. */
	ck_assert_int_eq(pf_scope_exec(s, &quick_flow, NULL, NULL, &e), 0);
	ck_assert_int_eq(pf_exec_settle(e, PF_COMPLETED, 0, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL, &e), 0);
	/* Codes that contradict the status; a status that is not an end. */
	ck_assert_int_eq(pf_exec_settle(e, PF_COMPLETED, E_REMOTE, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_exec_settle(e, PF_FAILED, 0, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_exec_settle(e, PF_RUNNING, 0, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_exec_settle(e, (pf_status)77, 0, NULL, NULL),
	    PF_EINVAL);
	ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
	ck_assert_int_eq(pf_exec_settle(e, PF_COMPLETED, 0, NULL, NULL), 0);
	long v = -1;
	ck_assert_int_eq(pf_exec_wait(e, &v), 0);
	ck_assert_int_eq(v, 0); /* no output given: zeroed */
	pf_exec_release(e);
	pf_scope_dispose(s);
	ck_assert(!pf_exec_withdraw(NULL));
}
END_TEST

/* Many threads race to settle one execution: exactly one wins. */
typedef struct race {
	pf_exec *e;
	atomic_int go;
	atomic_int wins;
} race;

static void *
race_settle(void *arg)
{
	race *r = arg;
	while (!atomic_load(&r->go))
		;
	long v = 5;
	if (pf_exec_settle(r->e, PF_COMPLETED, 0, &v, NULL) == 0)
		atomic_fetch_add(&r->wins, 1);
	return NULL;
}

START_TEST(one_settle_wins)
{
	pf_scope *s = new_scope(2);
	for (int round = 0; round < pf_test_scale(300); round++) {
		race r = { .go = 0, .wins = 0 };
		ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, NULL,
				     &r.e),
		    0);
		pthread_t th[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&th[i], NULL, race_settle, &r);
		atomic_store(&r.go, 1);
		pf_exec_abort(r.e); /* racing the settles too */
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		ck_assert_int_eq(atomic_load(&r.wins), 1);
		long v = 0;
		ck_assert_int_eq(pf_exec_wait(r.e, &v), 0);
		ck_assert_int_eq(v, 5);
		pf_exec_release(r.e);
	}
	pf_scope_dispose(s);
}
END_TEST

/* Withdraw takes back pending work only; it never cancels a started
 * handler.  Racing a worker: exactly one of "withdrawn" and "ran". */
typedef struct counted_in {
	atomic_int *ran;
} counted_in;

static int
counted_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)out;
	atomic_fetch_add(((const counted_in *)in)->ran, 1);
	return 0;
}

static const pf_flow counted_flow = { "counted", counted_handler,
	sizeof(counted_in), 0 };

START_TEST(withdraw_takes_back_pending_work_only)
{
	pf_scope *s = new_scope(1);
	/* The one worker is held: what is queued behind it stays pending. */
	pf_exec *hold, *e;
	ck_assert_int_eq(pf_scope_exec(s, &until_flow, NULL, NULL, &hold), 0);
	atomic_int ran = 0;
	counted_in in = { &ran };
	seen sn = { 0 };
	pf_exec_options o = { .on_status = note_status, .on_status_data = &sn };
	ck_assert_int_eq(pf_scope_exec(s, &counted_flow, &in, &o, &e), 0);
	ck_assert(pf_exec_withdraw(e));
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert(pf_ctx_aborted(pf_exec_ctx(e)));
	ck_assert(!pf_exec_withdraw(e));
	ck_assert_int_eq(atomic_load(&sn.n), 2);
	ck_assert_int_eq(sn.st[1], PF_CANCELLED);
	pf_exec_release(e);
	pf_exec_abort(hold);
	pf_exec_wait(hold, NULL);
	pf_exec_release(hold);
	/* Racing the workers. */
	int withdrawn = 0, n = (int)pf_test_scale(20000);
	pf_exec **es = calloc((size_t)n, sizeof(*es));
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pf_scope_exec(s, &counted_flow, &in, NULL,
				     &es[i]),
		    0);
	for (int i = n - 1; i >= 0; i--)
		withdrawn += pf_exec_withdraw(es[i]);
	for (int i = 0; i < n; i++) {
		int rc = pf_exec_wait(es[i], NULL);
		ck_assert(rc == 0 || rc == PF_ECANCELED);
		pf_exec_release(es[i]);
	}
	free(es);
	ck_assert_int_eq(atomic_load(&ran) + withdrawn, n);
	pf_scope_dispose(s);
}
END_TEST

/* The pending status callback sees the handle before the execution is
 * running: a settle from there is refused and leaves it settleable, and a
 * thread it hands the handle to waits for the settle rather than running
 * the flow (which has no handler). */
typedef struct early {
	atomic_int settle_rc;
	pthread_t waiter;
	atomic_bool started;
	atomic_int wait_rc;
	long out;
} early;

static void *
wait_early(void *arg)
{
	pf_exec *e = arg;
	return (void *)(intptr_t)pf_exec_wait(e, NULL);
}

static void
settle_while_pending(pf_exec *e, pf_status st, void *data)
{
	early *x = data;
	if (st != PF_PENDING)
		return;
	atomic_store(&x->settle_rc, pf_exec_settle(e, PF_COMPLETED, 0, NULL,
					NULL));
	/* A waiter on another thread, while it is still pending here. */
	atomic_store(&x->started,
	    pthread_create(&x->waiter, NULL, wait_early, e) == 0);
	sleep_ms(50);
}

START_TEST(pending_callback_settle_and_wait)
{
	pf_scope *s = new_scope(2);
	for (int round = 0; round < 20; round++) {
		early x = { 0 };
		atomic_init(&x.settle_rc, 1);
		pf_exec_options o = { .on_status = settle_while_pending,
			.on_status_data = &x };
		pf_exec *e;
		ck_assert_int_eq(pf_scope_exec_deferred(s, &out_flow, &o, &e),
		    0);
		ck_assert_int_eq(atomic_load(&x.settle_rc), PF_EINVAL);
		ck_assert(atomic_load(&x.started));
		ck_assert_int_eq(pf_exec_status(e), PF_RUNNING);
		long v = 77;
		ck_assert_int_eq(pf_exec_settle(e, PF_COMPLETED, 0, &v, NULL),
		    0);
		void *rc;
		pthread_join(x.waiter, &rc);
		ck_assert_int_eq((int)(intptr_t)rc, 0);
		long got = 0;
		ck_assert_int_eq(pf_exec_wait(e, &got), 0);
		ck_assert_int_eq(got, 77);
		pf_exec_release(e);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Withdraw racing another abort of the same pending execution (a
 * parent's): whichever claims it, it ends cancelled, its listeners all
 * ran before it reads as ended, and the result is the abort's reason. */
static atomic_int listener_done;

static void
slow_listener(pf_signal *sg, void *data)
{
	(void)sg, (void)data;
	sleep_ms(2);
	atomic_fetch_add(&listener_done, 1);
}

static int
blocker_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	while (!pf_ctx_aborted(c))
		sleep_ms(1);
	return 0;
}
static const pf_flow blocker = { "blocker", blocker_handler, 0, 0 };

static int
leaf_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	return 0;
}
static const pf_flow leaf = { "leaf", leaf_handler, 0, 0 };

static void *
withdraw_now(void *arg)
{
	return (void *)(intptr_t)pf_exec_withdraw(arg);
}

START_TEST(withdraw_racing_an_abort)
{
	/* One thread, held by a blocker: the leaf stays pending. */
	pf_scope *s = new_scope(1);
	for (int round = 0; round < 50; round++) {
		pf_exec *b;
		ck_assert_int_eq(pf_scope_exec(s, &blocker, NULL, NULL, &b), 0);
		for (int i = 0; i < 10000 && pf_exec_status(b) != PF_RUNNING;
		     i++)
			sleep_ms(1);
		ck_assert_int_eq(pf_exec_status(b), PF_RUNNING);
		pf_ctx *parent;
		ck_assert_int_eq(pf_scope_create_execution(s, NULL, &parent),
		    0);
		pf_exec *e;
		ck_assert_int_eq(pf_ctx_exec(parent, &leaf, NULL, NULL, &e), 0);
		atomic_store(&listener_done, 0);
		pf_signal_listener l;
		ck_assert_int_eq(pf_signal_add_listener(
				     pf_ctx_signal(pf_exec_ctx(e)), &l,
				     slow_listener, NULL),
		    0);
		pthread_t th;
		pthread_create(&th, NULL, withdraw_now, e);
		ck_assert_int_eq(pf_ctx_abort_as(parent, PF_ETIMEDOUT), 0);
		void *took;
		pthread_join(th, &took);
		if ((bool)(intptr_t)took)
			/* Ended: every listener ran before. */
			ck_assert_int_eq(atomic_load(&listener_done), 1);
		/* The result is the abort's reason, whichever set it. */
		int why = pf_signal_reason(pf_ctx_signal(pf_exec_ctx(e)));
		ck_assert(why == PF_ETIMEDOUT || why == PF_ECANCELED);
		ck_assert_int_eq(pf_exec_wait(e, NULL), why);
		ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
		ck_assert_int_eq(atomic_load(&listener_done), 1);
		pf_exec_abort(b);
		ck_assert_int_eq(pf_exec_wait(b, NULL), 0);
		pf_exec_release(b);
		pf_exec_release(e);
		pf_ctx_release(parent);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

START_TEST(context_with_a_given_id)
{
	pf_scope *s = new_scope(1);
	const char *id = "0192f5e4-7b3a-7c2d-8e9f-0123456789ab";
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution_with_id(s, NULL,
			     "0192F5E4-7B3A-7C2D-8E9F-0123456789AB", &c),
	    0);
	ck_assert_str_eq(pf_ctx_id(c), id);
	pf_exec *e;
	ck_assert_int_eq(pf_ctx_exec(c, &quick_flow, NULL, NULL, &e), 0);
	ck_assert_str_eq(pf_ctx_id(pf_ctx_parent(pf_exec_ctx(e))), id);
	ck_assert_str_ne(pf_exec_id(e), id);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	pf_ctx_release(c);
	const char *bad[] = { "", "0192f5e4", "0192f5e4-7b3a-7c2d-8e9f-0123456789abc",
		"0192f5e4x7b3a-7c2d-8e9f-0123456789ab",
		"0192f5e4-7b3a-7c2d-8e9f-0123456789ag", NULL };
	for (int i = 0; bad[i] != NULL; i++)
		ck_assert_int_eq(pf_scope_create_execution_with_id(s, NULL,
				     bad[i], &c),
		    PF_EINVAL);
	ck_assert_int_eq(pf_scope_create_execution_with_id(s, NULL, NULL, &c),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_create_execution_with_id(NULL, NULL, id, &c),
	    PF_EINVAL);
	pf_scope_dispose(s);
}
END_TEST

int
main(void)
{
	const pf_test t[] = {
		{ "deferred", deferred_runs_until_settled, 60, 0, NULL, NULL,
		    NULL },
		{ "deferred", deferred_of_a_flow_with_input, 0, 0, NULL, NULL,
		    NULL },
		{ "deferred", deferred_failure_keeps_its_message, 0, 0, NULL,
		    NULL, NULL },
		{ "deferred", abort_and_timeout_reach_the_signal, 0, 0, NULL,
		    NULL, NULL },
		{ "deferred", settle_after_abort_is_a_cancel, 0, 0, NULL, NULL,
		    NULL },
		{ "deferred", a_worker_waits_and_helps, 0, 0, NULL, NULL, NULL },
		{ "deferred", children_of_a_deferred_execution, 0, 0, NULL,
		    NULL, NULL },
		{ "deferred", dispose_waits_for_the_settle, 0, 0, NULL, NULL,
		    NULL },
		{ "deferred", deferred_misuse, 0, 0, NULL, NULL, NULL },
		{ "deferred", one_settle_wins, 0, 0, NULL, NULL, NULL },
		{ "withdraw", withdraw_takes_back_pending_work_only, 60, 0,
		    NULL, NULL, NULL },
		{ "withdraw", context_with_a_given_id, 0, 0, NULL, NULL, NULL },
		{ "deferred", pending_callback_settle_and_wait, 30, 0, NULL,
		    NULL, NULL },
		{ "withdraw", withdraw_racing_an_abort, 30, 0, NULL, NULL,
		    NULL },
	};
	return pf_test_run(
	    pf_test_suite("deferred", t, sizeof(t) / sizeof(t[0])));
}
