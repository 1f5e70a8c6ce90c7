/*
 * check_catalogue.c: the test catalogue of the JavaScript original
 * (reference/pumped-fn-spec.md section 4) ported to the C API, then one
 * regression test per bug of its section 5 that the C port fixes (TCase
 * js_bugs_fixed).  Where the JavaScript behaviour is one of those bugs, the
 * port tests what design/API.md says instead.
 *
 * Handlers, status callbacks, extension wraps and signal listeners run on
 * worker threads: they only record (atomics, or arrays under a mutex), and
 * every assertion runs on the test thread after a wait, a join or a dispose,
 * which order the records before the reads.
 *
 * Cases that do not apply to the C API (one line each, why):
 *   4.4 #4  journaled fn with timeout: pf_ctx_exec_fn has no key and no
 *           timeout; fn timeouts come from an ancestor (see 4.6 #22).
 *   4.4 #5  non-journaled fn with timeout: same reason as 4.4 #4.
 *   4.6 #2  flow with provide() dependencies: executors are not in the C API.
 *   4.6 #3  flow with object dependencies: executors are not in the C API.
 *   4.6 #8  fn with key "calc": fn steps have no journal key in C.
 *   4.6 #9  input/output validators (journaled): no schemas; PF_FLOW checks
 *           types at compile time.
 *   4.6 #10 validators (non-journaled): same reason as 4.6 #9.
 *   4.6 #13 invalid output rejected (journaled): no output schemas in C.
 *   4.6 #14 invalid output rejected (non-journaled): no output schemas in C.
 *   4.6 #17 resetJournal: not in the C API (a cancelled entry is dropped
 *           instead: js_bugs_fixed bug13).
 *   4.7 #4  journaled fn operation: fn steps have no journal key in C.
 *   4.12 #12 findFulfilled's fulfilled-only indices: a Promised helper
 *           convention; each pf_call keeps its own position.
 *   4.13 #1  tag key is a Symbol with a schema: identity is the pf_tag's
 *           address (js_bugs_fixed bug12), there are no schemas.
 *   4.13 #8  t() filling in the default: pf_tag_value has no constructor
 *           that substitutes the default (defaults apply at lookup: #6).
 *   4.13 #10 t() without a value throws: no such constructor in C.
 *   4.13 #11-#15 entry() and Map stores: JavaScript Map idioms.
 *   4.13 #17 schema validation on injectTo: no schemas in C.
 *   4.13 #18-#21 collectFrom: a C tag store holds one value per tag.
 *   4.13 #23-#26 toString/Symbol.toStringTag/inspect: JavaScript-only; the
 *           label is plain data (#22 checks it is kept).
 *   4.9, 4.10, 4.11, 4.14, 4.15: internal JS helpers, snapshots, executors
 *           and the 0.5.92+ lifecycle, outside this C API.
 *   Bug 16 (API churn) and the "lazy Promised" part of bug 17: no promises.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pumped.h"
#include "testlib.h"
#include "annotate.h"
#include "timer.h"
#include "scope.h"

/* PF_FLOW and PF_TAG define typed static inline wrappers; clang warns
 * about the ones a test does not call. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-function"
#endif

/* Flows' own failure codes, at or below PF_EUSER. */
#define E_TEST (PF_EUSER - 1)
#define E_FAIL (PF_EUSER - 2)
#define E_CHILD (PF_EUSER - 3)
#define E_FIRST (PF_EUSER - 4)
#define E_SECOND (PF_EUSER - 5)
#define E_INTENTIONAL (PF_EUSER - 6)
#define E_NO_ITEMS (PF_EUSER - 7)
#define E_UNAVAILABLE (PF_EUSER - 8)

/* ------------------------------------------------------------- helpers */


static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
dispose(pf_scope *s)
{
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}

/*
 * A cooperative sleep of up to ms milliseconds that ends early when c is
 * aborted (poll on the signal's fd); returns 0 or the abort reason.
 */
static int
coop_sleep(pf_ctx *c, long ms)
{
	int fd = pf_signal_fd(pf_ctx_signal(c));
	if (fd < 0)
		return fd;
	int64_t end = now_ms() + ms;
	for (;;) {
		int64_t left = end - now_ms();
		if (left <= 0)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, (int)left) > 0)
			break;
	}
	return pf_ctx_throw_if_aborted(c);
}

/* Waits (on the test thread) until *flag is nonzero; false on timeout. */
static bool
wait_flag(_Atomic int *flag, long ms)
{
	int64_t end = now_ms() + ms;
	PF_ATOMIC_OBJ(flag); /* a C11 atomic: see src/annotate.h */
	while (atomic_load_explicit(flag, memory_order_acquire) == 0) {
		if (now_ms() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* True when no timeout timer is armed in s's wheel (tests only). */
static bool
timers_idle(pf_scope *s)
{
	return pf__timers_next_for_test(s->engine.timers) == INT64_MAX;
}

/* Status transitions seen by one on_status callback. */
typedef struct srec {
	_Atomic int n;
	pf_status seq[8];
	/* pf_exec_status() read inside the terminal callback, plus one. */
	_Atomic int status_in_terminal_cb;
	/* pf_ctx_error() read inside the terminal callback. */
	_Atomic int error_in_terminal_cb;
} srec;

static void
srec_cb(pf_exec *e, pf_status st, void *data)
{
	srec *r = data;
	if (st >= PF_COMPLETED) {
		atomic_store_explicit(&r->status_in_terminal_cb,
		    (int)pf_exec_status(e) + 1, memory_order_relaxed);
		atomic_store_explicit(&r->error_in_terminal_cb,
		    pf_ctx_error(pf_exec_ctx(e), NULL), memory_order_relaxed);
	}
	/* Acq_rel: orders this transition's slot after the previous one's
	 * (transitions run on different threads); the waiter reads after
	 * pf_exec_wait, which returns after the terminal callback. */
	int i = atomic_fetch_add_explicit(&r->n, 1, memory_order_acq_rel);
	if (i < 8)
		r->seq[i] = st;
}

/* --------------------------------------------------------------- flows */

static int
double_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	*out = *in * 2;
	return 0;
}
PF_FLOW(double_flow, int, int, double_handler)

/* Sleeps cooperatively *in ms; fails with the abort reason if aborted. */
static _Atomic int coop_started;
static int
coop_handler(pf_ctx *c, const int *in, int *out)
{
	atomic_fetch_add_explicit(&coop_started, 1, memory_order_release);
	int rc = coop_sleep(c, *in);
	if (rc != 0)
		return rc;
	*out = *in;
	return 0;
}
PF_FLOW(coop_flow, int, int, coop_handler)

static _Atomic int fail_calls;
static int
fail_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	(void)out;
	atomic_fetch_add_explicit(&fail_calls, 1, memory_order_relaxed);
	return pf_ctx_fail(c, E_FAIL, "fail");
}
PF_FLOW(fail_flow, int, int, fail_handler)

/* ----------------------------------------------------------------- tags */

/*
 * The tag macros paste the type after "const", so a pointer type goes
 * through a typedef (const cstr * is const char *const *).
 */
typedef const char *cstr;

PF_TAG(request_id_tag, cstr, "requestId")
PF_TAG(name_tag, cstr, "name")
PF_TAG(tracking_tag, int, "tracking")
PF_TAG(status_tag, cstr, "status")
PF_TAG(result_tag, int, "result")
PF_TAG(scope_tag, cstr, "scopeTag")
PF_TAG(exec_tag, cstr, "execTag")
PF_TAG(tag1, cstr, "tag1")
PF_TAG(tag2, cstr, "tag2")
PF_TAG(parent_tag, cstr, "parentTag")
PF_TAG(x_tag, cstr, "x")

PF_TAG_DECLARE(port_tag, int)
PF_TAG_DEFINE_DEFAULT(port_tag, int, "port", 3000);
PF_TAG_DECLARE(count_tag, int)
PF_TAG_DEFINE_DEFAULT(count_tag, int, "count", 10);

/* ====================================================================
 * 4.1 execution-context.test.ts
 * ==================================================================== */

START_TEST(test_context_create_execution_details)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c = NULL;
	pf_ctx_options o = { .name = "test-ctx" };
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	ck_assert_ptr_nonnull(pf_ctx_id(c));
	ck_assert_uint_eq(strlen(pf_ctx_id(c)), 36);
	ck_assert_str_eq(pf_ctx_name(c), "test-ctx");
	ck_assert(pf_ctx_started_at(c) > 0);
	ck_assert_ptr_null(pf_ctx_parent(c));
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

typedef struct child_probe {
	pf_ctx *parent;
	char name[32];
	const char *result;
	const char *tag_value;
	const char *own_value;
	pf_ctx *kept;
	int aborted_before, aborted_after;
} child_probe;

static int
fn_probe_child(pf_ctx *child, void *arg)
{
	child_probe *p = arg;
	p->parent = pf_ctx_parent(child);
	snprintf(p->name, sizeof(p->name), "%s", pf_ctx_name(child));
	p->result = "result";
	return 0;
}

START_TEST(test_context_exec_child_parent_and_result)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	child_probe p = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(c, "child", fn_probe_child, &p), 0);
	ck_assert_ptr_eq(p.parent, c);
	ck_assert_str_eq(p.name, "child");
	ck_assert_str_eq(p.result, "result");
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static int
fn_read_request_id(pf_ctx *child, void *arg)
{
	child_probe *p = arg;
	return request_id_tag_get(child, &p->tag_value);
}

START_TEST(test_context_child_reads_parent_tag)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(request_id_tag_set(c, "req-123"), 0);
	child_probe p = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(c, "child", fn_read_request_id, &p),
	    0);
	ck_assert_str_eq(p.tag_value, "req-123");
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static int
fn_shadow_name(pf_ctx *child, void *arg)
{
	child_probe *p = arg;
	int rc = name_tag_set(child, "child-name");
	if (rc == 0)
		rc = name_tag_get(child, &p->own_value);
	return rc;
}

START_TEST(test_context_child_shadows_parent_tag)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(name_tag_set(c, "parent-name"), 0);
	child_probe p = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(c, "child", fn_shadow_name, &p), 0);
	ck_assert_str_eq(p.own_value, "child-name");
	const char *v = NULL;
	ck_assert_int_eq(name_tag_get(c, &v), 0);
	ck_assert_str_eq(v, "parent-name");
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static int
fn_noop(pf_ctx *child, void *arg)
{
	(void)child;
	(void)arg;
	return 0;
}

START_TEST(test_context_completed_at_after_end)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert(pf_ctx_completed_at(c) == 0);
	ck_assert_int_eq(pf_ctx_end(c), 0);
	int64_t done = pf_ctx_completed_at(c);
	ck_assert(done > 0);
	/* Idempotent, aborts nothing, and the context stays usable. */
	ck_assert_int_eq(pf_ctx_end(c), 0);
	ck_assert(pf_ctx_completed_at(c) == done);
	ck_assert(!pf_ctx_aborted(c));
	ck_assert_int_eq(pf_ctx_exec_fn(c, "after-end", fn_noop, NULL), 0);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static int
fn_fail_test_error(pf_ctx *child, void *arg)
{
	child_probe *p = arg;
	p->kept = pf_ctx_retain(child);
	return pf_ctx_fail(child, E_TEST, "test error");
}

START_TEST(test_context_failing_child_records_error)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	child_probe p = { 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(c, "failing", fn_fail_test_error, &p),
	    E_TEST);
	ck_assert_ptr_nonnull(p.kept);
	const char *msg = NULL;
	ck_assert_int_eq(pf_ctx_error(p.kept, &msg), E_TEST);
	ck_assert_str_eq(msg, "test error");
	ck_assert(pf_ctx_completed_at(p.kept) > 0);
	pf_ctx_release(p.kept);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_context_fresh_not_aborted)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert(!pf_signal_aborted(pf_ctx_signal(c)));
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(c)), 0);
	ck_assert(!pf_ctx_aborted(c));
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), 0);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

/* ====================================================================
 * 4.2 execution-tracking.test.ts
 * ==================================================================== */

typedef struct probe_out {
	int value;
	int found;
	const char *str;
	int code;
	int status;
} probe_out;

static int
tracking_handler(pf_ctx *c, const int *in, probe_out *out)
{
	out->value = *in * 2;
	out->found = tracking_tag_find(c, &out->code) ? 1 : 0;
	return 0;
}
PF_FLOW(tracking_flow, int, probe_out, tracking_handler)

START_TEST(test_tracking_distinct_execution_ids)
{
	pf_scope *s = new_scope(2);
	int ids[3] = { 101, 202, 303 };
	pf_exec *e[3];
	for (int i = 0; i < 3; i++) {
		pf_tag_value tv = tracking_tag_value(&ids[i]);
		pf_exec_options o = { .tags = &tv, .n_tags = 1 };
		ck_assert_int_eq(pf_scope_exec(s, &tracking_flow, &i, &o,
				     &e[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		probe_out out = { 0 };
		ck_assert_int_eq(pf_exec_wait(e[i], &out), 0);
		ck_assert_int_eq(out.found, 1);
		ck_assert_int_eq(out.code, ids[i]);
	}
	ck_assert_str_ne(pf_exec_id(e[0]), pf_exec_id(e[1]));
	ck_assert_str_ne(pf_exec_id(e[0]), pf_exec_id(e[2]));
	ck_assert_str_ne(pf_exec_id(e[1]), pf_exec_id(e[2]));
	for (int i = 0; i < 3; i++)
		pf_exec_release(e[i]);
	dispose(s);
}
END_TEST

static int
status_tag_handler(pf_ctx *c, const int *in, probe_out *out)
{
	(void)in;
	out->found = status_tag_find(c, &out->str) ? 1 : 0;
	return 0;
}
PF_FLOW(status_tag_flow, int, probe_out, status_tag_handler)

START_TEST(test_tracking_status_pending_running_completed)
{
	pf_scope *s = new_scope(2);
	const char *pending = "pending";
	pf_tag_value tv = status_tag_value(&pending);
	srec r = { 0 };
	pf_exec_options o = { .tags = &tv, .n_tags = 1, .on_status = srec_cb,
		.on_status_data = &r };
	int in = 0;
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &status_tag_flow, &in, &o, &e), 0);
	probe_out out = { 0 };
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out.found, 1);
	ck_assert_str_eq(out.str, "pending");
	/* The real status machine, which the JS test never looked at. */
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&r.n), 3);
	ck_assert_int_eq(r.seq[0], PF_PENDING);
	ck_assert_int_eq(r.seq[1], PF_RUNNING);
	ck_assert_int_eq(r.seq[2], PF_COMPLETED);
	pf_exec_release(e);
	dispose(s);
}
END_TEST

START_TEST(test_tracking_abort_cancels)
{
	pf_scope *s = new_scope(2);
	atomic_store(&coop_started, 0);
	int ms = 10000;
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &coop_flow, &ms, NULL, &e), 0);
	ck_assert(wait_flag(&coop_started, 5000));
	sleep_ms(30);
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert(now_ms() - t0 < 5000);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ECANCELED);
	ck_assert(pf_signal_aborted(pf_ctx_signal(pf_exec_ctx(e))));
	pf_exec_release(e);
	dispose(s);
}
END_TEST

START_TEST(test_tracking_timeout_aborts)
{
	pf_scope *s = new_scope(2);
	int ms = 5000; /* ends early: aborted at 50 ms */
	pf_exec *e;
	pf_exec_options o = { .timeout_ms = 50 };
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_scope_exec(s, &coop_flow, &ms, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	int64_t took = now_ms() - t0;
	ck_assert_int_ge(took, 49);
	ck_assert_int_lt(took, 4000);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_throw_if_aborted(e), PF_ETIMEDOUT);
	pf_exec_release(e);
	dispose(s);
}
END_TEST

START_TEST(test_tracking_fast_flow_with_timeout_completes)
{
	pf_scope *s = new_scope(2);
	int ms = 10, out = 0;
	pf_exec *e;
	pf_exec_options o = { .timeout_ms = 5000 };
	ck_assert_int_eq(pf_scope_exec(s, &coop_flow, &ms, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 10);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	/* The flag the JS test never set: the timer really is gone. */
	ck_assert(timers_idle(s));
	pf_exec_release(e);
	dispose(s);
}
END_TEST

static int
add_ten_handler(pf_ctx *c, const int *in, int *out)
{
	int doubled = 0;
	int rc = double_flow_run(c, in, &doubled, NULL);
	if (rc != 0)
		return rc;
	*out = doubled + 10;
	return 0;
}
PF_FLOW(add_ten_flow, int, int, add_ten_handler)

START_TEST(test_tracking_child_flow_result)
{
	pf_scope *s = new_scope(2);
	int in = 5, out = 0;
	ck_assert_int_eq(add_ten_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 20);
	dispose(s);
}
END_TEST

/* A log of names written from handlers, read after the wait. */
static _Atomic int log_n;
static const char *log_v[64];
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void
log_reset(void)
{
	atomic_store(&log_n, 0);
}

static void
log_add(const char *what)
{
	pthread_mutex_lock(&log_mu);
	int i = atomic_load_explicit(&log_n, memory_order_relaxed);
	if (i < 64) {
		log_v[i] = what;
		atomic_store_explicit(&log_n, i + 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&log_mu);
}

static int
step1_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	log_add("step1");
	*out = *in * 2;
	return 0;
}
PF_FLOW(step1_flow, int, int, step1_handler)

static int
step2_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	log_add("step2");
	*out = *in * 2;
	return 0;
}
PF_FLOW(step2_flow, int, int, step2_handler)

static int
steps_handler(pf_ctx *c, const int *in, int *out)
{
	int a = 0;
	pf_exec_options k1 = { .key = "step1" };
	pf_exec_options k2 = { .key = "step2" };
	int rc = step1_flow_run(c, in, &a, &k1);
	if (rc == 0)
		rc = step2_flow_run(c, &a, out, &k2);
	return rc;
}
PF_FLOW(steps_flow, int, int, steps_handler)

START_TEST(test_tracking_journaled_steps_in_order)
{
	pf_scope *s = new_scope(2);
	log_reset();
	int in = 5, out = 0;
	ck_assert_int_eq(steps_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 20);
	ck_assert_int_eq(atomic_load(&log_n), 2);
	ck_assert_str_eq(log_v[0], "step1");
	ck_assert_str_eq(log_v[1], "step2");
	dispose(s);
}
END_TEST

static int
child_error_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	(void)out;
	return pf_ctx_fail(c, E_CHILD, "Child flow error");
}
PF_FLOW(child_error_flow, int, int, child_error_handler)

typedef struct text_out {
	char text[64];
	int code;
} text_out;

static int
catching_parent_handler(pf_ctx *c, const int *in, text_out *out)
{
	pf_exec *e;
	int rc = child_error_flow_exec(c, in, NULL, &e);
	if (rc != 0)
		return rc;
	out->code = pf_exec_wait(e, NULL);
	const char *msg = "";
	pf_ctx_error(pf_exec_ctx(e), &msg);
	snprintf(out->text, sizeof(out->text), "caught: %s", msg);
	pf_exec_release(e);
	return 0;
}
PF_FLOW(catching_parent_flow, int, text_out, catching_parent_handler)

START_TEST(test_tracking_child_error_caught_by_parent)
{
	pf_scope *s = new_scope(2);
	int in = 0;
	text_out out = { { 0 }, 0 };
	ck_assert_int_eq(catching_parent_flow_scope_run(s, &in, &out, NULL),
	    0);
	ck_assert_int_eq(out.code, E_CHILD);
	ck_assert_str_eq(out.text, "caught: Child flow error");
	dispose(s);
}
END_TEST

static _Atomic int probe_calls;
static int
count_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	atomic_fetch_add_explicit(&probe_calls, 1, memory_order_relaxed);
	*out = *in;
	return 0;
}
PF_FLOW(count_flow, int, int, count_handler)

static int
fn_count(pf_ctx *child, void *arg)
{
	(void)child;
	(void)arg;
	atomic_fetch_add_explicit(&probe_calls, 1, memory_order_relaxed);
	return 0;
}

START_TEST(test_tracking_pre_aborted_signal)
{
	pf_scope *s = new_scope(2);
	atomic_store(&probe_calls, 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	int in = 1, out = -1;
	ck_assert_int_eq(count_flow_run(c, &in, &out, NULL), PF_ECANCELED);
	ck_assert_int_eq(out, -1);
	pf_exec *e = NULL;
	ck_assert_int_eq(count_flow_exec(c, &in, NULL, &e), PF_ECANCELED);
	ck_assert_ptr_null(e);
	ck_assert_int_eq(pf_ctx_exec_fn(c, "fn", fn_count, NULL),
	    PF_ECANCELED);
	sleep_ms(20);
	ck_assert_int_eq(atomic_load(&probe_calls), 0);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static int
check_after_20ms_handler(pf_ctx *c, const int *in, probe_out *out)
{
	(void)in;
	sleep_ms(20);
	int rc = pf_ctx_throw_if_aborted(c);
	if (rc != 0)
		return rc;
	out->str = "completed";
	return 0;
}
PF_FLOW(check_after_20ms_flow, int, probe_out, check_after_20ms_handler)

START_TEST(test_tracking_not_aborted_completes)
{
	pf_scope *s = new_scope(2);
	int in = 0;
	probe_out out = { 0 };
	ck_assert_int_eq(check_after_20ms_flow_scope_run(s, &in, &out, NULL),
	    0);
	ck_assert_str_eq(out.str, "completed");
	dispose(s);
}
END_TEST

typedef void (*log_fn)(const char *what);
PF_TAG(callback_tag, log_fn, "callback")

static int
callback_tag_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	log_fn cb = NULL;
	if (!callback_tag_find(c, &cb))
		return E_TEST;
	cb("started");
	cb("processing");
	cb("completed");
	*out = 1;
	return 0;
}
PF_FLOW(callback_tag_flow, int, int, callback_tag_handler)

START_TEST(test_tracking_callback_tag)
{
	pf_scope *s = new_scope(2);
	log_reset();
	log_fn cb = log_add;
	pf_tag_value tv = callback_tag_value(&cb);
	pf_exec_options o = { .tags = &tv, .n_tags = 1 };
	int in = 0, out = 0;
	ck_assert_int_eq(callback_tag_flow_scope_run(s, &in, &out, &o), 0);
	ck_assert_int_eq(atomic_load(&log_n), 3);
	ck_assert_str_eq(log_v[0], "started");
	ck_assert_str_eq(log_v[1], "processing");
	ck_assert_str_eq(log_v[2], "completed");
	dispose(s);
}
END_TEST

typedef struct meta_seen {
	const char *flow_name;
	uint32_t depth;
	bool has_name, has_depth;
} meta_seen;
typedef void (*meta_fn)(meta_seen *m);
PF_TAG(meta_callback_tag, meta_fn, "metaCallback")

static meta_seen meta_record;
static void
meta_store(meta_seen *m)
{
	meta_record = *m;
}

static int
meta_probe_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	meta_fn cb = NULL;
	if (!meta_callback_tag_find(c, &cb))
		return E_TEST;
	meta_seen m = { 0 };
	m.has_name = pf_ctx_find(c, &pf_flow_name_tag, &m.flow_name);
	m.has_depth = pf_ctx_find(c, &pf_flow_depth_tag, &m.depth);
	cb(&m);
	*out = 0;
	return 0;
}
PF_FLOW(meta_probe_flow, int, int, meta_probe_handler)

START_TEST(test_tracking_flow_meta_callback_tag)
{
	pf_scope *s = new_scope(2);
	meta_fn cb = meta_store;
	pf_tag_value tv = meta_callback_tag_value(&cb);
	pf_exec_options o = { .tags = &tv, .n_tags = 1 };
	int in = 0, out = 0;
	ck_assert_int_eq(meta_probe_flow_scope_run(s, &in, &out, &o), 0);
	ck_assert(meta_record.has_name);
	ck_assert(meta_record.has_depth);
	ck_assert_str_eq(meta_record.flow_name, "meta_probe_flow");
	ck_assert_uint_eq(meta_record.depth, 0);
	dispose(s);
}
END_TEST

/* A user set: distinct ints, guarded by a mutex. */
typedef struct user_set {
	pthread_mutex_t mu;
	int v[8];
	int n;
} user_set;
/* A typedef: the tag macros paste the type after "const". */
typedef user_set *user_set_ptr;
PF_TAG(user_set_tag, user_set_ptr, "userSet")

static int
user_set_add_handler(pf_ctx *c, const int *in, int *out)
{
	user_set *set = NULL;
	if (!user_set_tag_find(c, &set))
		return E_TEST;
	pthread_mutex_lock(&set->mu);
	bool have = false;
	for (int i = 0; i < set->n; i++)
		have = have || set->v[i] == *in;
	if (!have && set->n < 8)
		set->v[set->n++] = *in;
	*out = set->n;
	pthread_mutex_unlock(&set->mu);
	return 0;
}
PF_FLOW(user_set_add_flow, int, int, user_set_add_handler)

START_TEST(test_tracking_user_set_tag)
{
	pf_scope *s = new_scope(2);
	user_set set = { .mu = PTHREAD_MUTEX_INITIALIZER };
	user_set *p = &set;
	pf_tag_value tv = user_set_tag_value(&p);
	pf_exec_options o = { .tags = &tv, .n_tags = 1 };
	int a = 1, b = 2, out = 0;
	ck_assert_int_eq(user_set_add_flow_scope_run(s, &a, &out, &o), 0);
	ck_assert_int_eq(out, 1);
	ck_assert_int_eq(user_set_add_flow_scope_run(s, &b, &out, &o), 0);
	ck_assert_int_eq(out, 2);
	ck_assert_int_eq(set.n, 2);
	dispose(s);
}
END_TEST

START_TEST(test_tracking_user_map_tag_and_dispose)
{
	pf_scope *s = new_scope(2);
	/* The "map" is the same guarded container keyed by value. */
	user_set map = { .mu = PTHREAD_MUTEX_INITIALIZER };
	user_set *p = &map;
	pf_tag_value tv = user_set_tag_value(&p);
	pf_exec_options o = { .tags = &tv, .n_tags = 1 };
	int k = 7, out = 0;
	ck_assert_int_eq(user_set_add_flow_scope_run(s, &k, &out, &o), 0);
	ck_assert_int_gt(map.n, 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

START_TEST(test_tracking_concurrent_executions)
{
	pf_scope *s = new_scope(4);
	int ids[3] = { 11, 22, 33 };
	int in[3] = { 1, 2, 3 };
	pf_exec *e[3];
	for (int i = 0; i < 3; i++) {
		pf_tag_value tv = tracking_tag_value(&ids[i]);
		pf_exec_options o = { .tags = &tv, .n_tags = 1 };
		ck_assert_int_eq(pf_scope_exec(s, &tracking_flow, &in[i], &o,
				     &e[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		probe_out out = { 0 };
		ck_assert_int_eq(pf_exec_wait(e[i], &out), 0);
		ck_assert_int_eq(out.value, 2 * (i + 1));
		ck_assert_int_eq(out.code, ids[i]);
	}
	ck_assert_str_ne(pf_exec_id(e[0]), pf_exec_id(e[1]));
	ck_assert_str_ne(pf_exec_id(e[1]), pf_exec_id(e[2]));
	ck_assert_str_ne(pf_exec_id(e[0]), pf_exec_id(e[2]));
	for (int i = 0; i < 3; i++)
		pf_exec_release(e[i]);
	dispose(s);
}
END_TEST

/* ====================================================================
 * 4.3 exec-timeout.test.ts
 * ==================================================================== */

typedef struct child_result {
	int rc;
	int status;
	int value;
} child_result;

/* Runs coop_flow(*in ms) as a child with timeout 50 ms. */
static int
timeout_parent_handler(pf_ctx *c, const int *in, child_result *out)
{
	pf_exec *e;
	pf_exec_options o = { .timeout_ms = 50 };
	int rc = coop_flow_exec(c, in, &o, &e);
	if (rc != 0)
		return rc;
	out->rc = pf_exec_wait(e, &out->value);
	out->status = pf_exec_status(e);
	pf_exec_release(e);
	return 0;
}
PF_FLOW(timeout_parent_flow, int, child_result, timeout_parent_handler)

START_TEST(test_exec_timeout_child_rejects)
{
	pf_scope *s = new_scope(2);
	int ms = 5000; /* ends early: aborted at 50 ms */
	child_result out = { 0 };
	ck_assert_int_eq(timeout_parent_flow_scope_run(s, &ms, &out, NULL),
	    0);
	ck_assert_int_eq(out.rc, PF_ETIMEDOUT);
	ck_assert_int_eq(out.status, PF_CANCELLED);
	dispose(s);
}
END_TEST

/* ====================================================================
 * 4.4 exec-timer-cleanup.test.ts: the JS counted timers; here the scope's
 * wheel must be empty again (pf__timers_next_for_test).
 * ==================================================================== */

typedef struct cleanup_in {
	int mode; /* 0 ok, 1 failing child, 2 journaled */
	int x;
} cleanup_in;

static int
cleanup_parent_handler(pf_ctx *c, const cleanup_in *in, int *out)
{
	pf_exec_options o = { .timeout_ms = 5000 };
	if (in->mode == 2)
		o.key = "test-key";
	if (in->mode == 1) {
		int ignored;
		int rc = fail_flow_run(c, &in->x, &ignored, &o);
		*out = rc != 0 ? -1 : 0;
		return 0;
	}
	return double_flow_run(c, &in->x, out, &o);
}
PF_FLOW(cleanup_parent_flow, cleanup_in, int, cleanup_parent_handler)

static void
timer_cleanup_case(int mode, int expect)
{
	pf_scope *s = new_scope(2);
	ck_assert(timers_idle(s));
	cleanup_in in = { mode, 21 };
	int out = 0;
	ck_assert_int_eq(cleanup_parent_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, expect);
	ck_assert(timers_idle(s));
	dispose(s);
}

START_TEST(test_timer_cleanup_child_success)
{
	timer_cleanup_case(0, 42);
}
END_TEST

START_TEST(test_timer_cleanup_child_failure_caught)
{
	timer_cleanup_case(1, -1);
}
END_TEST

START_TEST(test_timer_cleanup_journaled_child)
{
	timer_cleanup_case(2, 42);
}
END_TEST

/* ====================================================================
 * 4.5 abort-utils.test.ts: createAbortWithTimeout is a standalone context
 * with timeout_ms; its parent link is the context tree.
 * ==================================================================== */

START_TEST(test_abort_utils_no_timeout)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert(!pf_ctx_aborted(c));
	sleep_ms(20);
	ck_assert(!pf_ctx_aborted(c));
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(c)), 0);
	ck_assert(timers_idle(s));
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_abort_utils_timeout_aborts)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	pf_ctx_options o = { .timeout_ms = 100 };
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	ck_assert(!pf_ctx_aborted(c));
	struct pollfd p = { pf_signal_fd(pf_ctx_signal(c)), POLLIN, 0 };
	ck_assert_int_ge(p.fd, 0);
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_ge(now_ms() - t0, 99);
	ck_assert(pf_ctx_aborted(c));
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(c)), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), PF_ETIMEDOUT);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_abort_utils_parent_abort_reaches_child)
{
	pf_scope *s = new_scope(2);
	atomic_store(&coop_started, 0);
	pf_ctx *parent;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &parent), 0);
	int ms = 10000;
	pf_exec *e;
	ck_assert_int_eq(coop_flow_exec(parent, &ms, NULL, &e), 0);
	ck_assert(wait_flag(&coop_started, 5000));
	ck_assert_int_eq(pf_ctx_abort(parent), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(pf_exec_ctx(e))),
	    PF_ECANCELED);
	pf_exec_release(e);
	pf_ctx_release(parent);
	dispose(s);
}
END_TEST

START_TEST(test_abort_utils_parent_abort_with_child_timeout)
{
	pf_scope *s = new_scope(2);
	atomic_store(&coop_started, 0);
	pf_ctx *parent;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &parent), 0);
	int ms = 10000;
	pf_exec *e;
	pf_exec_options o = { .timeout_ms = 100 };
	ck_assert_int_eq(coop_flow_exec(parent, &ms, &o, &e), 0);
	ck_assert(wait_flag(&coop_started, 5000));
	ck_assert_int_eq(pf_ctx_abort(parent), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ECANCELED);
	ck_assert(timers_idle(s));
	sleep_ms(150); /* past the child's deadline: the first abort won */
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(pf_exec_ctx(e))),
	    PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	pf_exec_release(e);
	pf_ctx_release(parent);
	dispose(s);
}
END_TEST

/* ====================================================================
 * 4.6 flow-execution.test.ts
 * ==================================================================== */

START_TEST(test_flow_handler_doubles_input)
{
	pf_scope *s = new_scope(2);
	int in = 5, out = 0;
	ck_assert_int_eq(double_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 10);
	dispose(s);
}
END_TEST

static int
raw_double(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	*(int *)out = *(const int *)in * 2;
	return 0;
}

START_TEST(test_flow_input_output_definition)
{
	static const pf_flow raw = { "raw", raw_double, sizeof(int),
		sizeof(int) };
	pf_scope *s = new_scope(2);
	int in = 5, out = 0;
	ck_assert_int_eq(pf_scope_run(s, &raw, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 10);
	dispose(s);
}
END_TEST

typedef struct child_in {
	int x;
	const char *key; /* NULL: no journal key */
	int twice;       /* run it twice */
} child_in;

typedef struct twice_out {
	int a, b, rc_a, rc_b;
	char id_a[40], id_b[40];
} twice_out;

static int
run_child_handler(pf_ctx *c, const child_in *in, twice_out *out)
{
	pf_exec_options o = { .key = in->key };
	pf_exec *e;
	out->rc_a = count_flow_exec(c, &in->x, &o, &e);
	if (out->rc_a == 0) {
		snprintf(out->id_a, sizeof(out->id_a), "%s", pf_exec_id(e));
		out->rc_a = pf_exec_wait(e, &out->a);
		pf_exec_release(e);
	}
	if (in->twice) {
		out->rc_b = count_flow_exec(c, &in->x, &o, &e);
		if (out->rc_b == 0) {
			snprintf(out->id_b, sizeof(out->id_b), "%s",
			    pf_exec_id(e));
			out->rc_b = pf_exec_wait(e, &out->b);
			pf_exec_release(e);
		}
	}
	return 0;
}
PF_FLOW(run_child_flow, child_in, twice_out, run_child_handler)

START_TEST(test_flow_ctx_exec_child)
{
	pf_scope *s = new_scope(2);
	int in = 5, out = 0;
	ck_assert_int_eq(add_ten_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out - 10, 10); /* the child's x2 */
	dispose(s);
}
END_TEST

static int
keyed_double_handler(pf_ctx *c, const int *in, int *out)
{
	pf_exec_options o = { .key = "step1" };
	return double_flow_run(c, in, out, &o);
}
PF_FLOW(keyed_double_flow, int, int, keyed_double_handler)

START_TEST(test_flow_ctx_exec_journaled_child)
{
	pf_scope *s = new_scope(2);
	int in = 5, out = 0;
	ck_assert_int_eq(keyed_double_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 10);
	dispose(s);
}
END_TEST

static int
fn_ten(pf_ctx *child, void *arg)
{
	(void)child;
	*(int *)arg = 10;
	return 0;
}

static int
fn_parent_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	return pf_ctx_exec_fn(c, "ten", fn_ten, out);
}
PF_FLOW(fn_parent_flow, int, int, fn_parent_handler)

START_TEST(test_flow_ctx_exec_fn)
{
	pf_scope *s = new_scope(2);
	int in = 0, out = 0;
	ck_assert_int_eq(fn_parent_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 10);
	dispose(s);
}
END_TEST

/* Runs the child with a NULL input (and key when *in is 1), then a valid
 * one with the same key. */
static int
invalid_input_handler(pf_ctx *c, const int *in, twice_out *out)
{
	pf_exec_options o = { .key = *in ? "calc" : NULL };
	out->a = -1;
	out->rc_a = pf_ctx_run(c, &count_flow, NULL, &out->a, &o);
	int five = 5;
	out->rc_b = pf_ctx_run(c, &count_flow, &five, &out->b, &o);
	return 0;
}
PF_FLOW(invalid_input_flow, int, twice_out, invalid_input_handler)

static void
invalid_input_case(int keyed)
{
	pf_scope *s = new_scope(2);
	atomic_store(&probe_calls, 0);
	twice_out out = { 0 };
	ck_assert_int_eq(invalid_input_flow_scope_run(s, &keyed, &out, NULL),
	    0);
	ck_assert_int_eq(out.rc_a, PF_EINVAL);
	ck_assert_int_eq(out.a, -1);
	/* Nothing was journaled for the refused call. */
	ck_assert_int_eq(out.rc_b, 0);
	ck_assert_int_eq(out.b, 5);
	ck_assert_int_eq(atomic_load(&probe_calls), 1);
	dispose(s);
}

START_TEST(test_flow_journaled_child_invalid_input_rejected)
{
	invalid_input_case(1);
}
END_TEST

START_TEST(test_flow_child_invalid_input_rejected)
{
	invalid_input_case(0);
}
END_TEST

START_TEST(test_flow_journal_runs_child_once)
{
	pf_scope *s = new_scope(2);
	atomic_store(&probe_calls, 0);
	child_in in = { 10, "calc", 1 };
	twice_out out = { 0 };
	ck_assert_int_eq(run_child_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out.rc_a, 0);
	ck_assert_int_eq(out.rc_b, 0);
	ck_assert_int_eq(out.a, 10);
	ck_assert_int_eq(out.b, 10);
	ck_assert_int_eq(out.a + out.b, 20);
	ck_assert_int_eq(atomic_load(&probe_calls), 1);
	ck_assert_str_eq(out.id_a, out.id_b);
	dispose(s);
}
END_TEST

static int
journal_fail_twice_handler(pf_ctx *c, const int *in, twice_out *out)
{
	pf_exec_options o = { .key = "fail" };
	int ignored;
	out->rc_a = fail_flow_run(c, in, &ignored, &o);
	out->rc_b = fail_flow_run(c, in, &ignored, &o);
	return 0;
}
PF_FLOW(journal_fail_twice_flow, int, twice_out, journal_fail_twice_handler)

START_TEST(test_flow_journal_replays_failure)
{
	pf_scope *s = new_scope(2);
	atomic_store(&fail_calls, 0);
	int in = 0;
	twice_out out = { 0 };
	ck_assert_int_eq(journal_fail_twice_flow_scope_run(s, &in, &out, NULL),
	    0);
	ck_assert_int_eq(out.rc_a, E_FAIL);
	ck_assert_int_eq(out.rc_b, E_FAIL);
	ck_assert_int_eq(atomic_load(&fail_calls), 1);
	dispose(s);
}
END_TEST

static int
done_child_handler(pf_ctx *c, const int *in, const char **out)
{
	(void)c;
	(void)in;
	*out = "done";
	return 0;
}
PF_FLOW(done_child_flow, int, const char *, done_child_handler)

static int
journaled_root_handler(pf_ctx *c, const int *in, const char **out)
{
	pf_exec_options o = { .key = "inner" };
	return done_child_flow_run(c, in, out, &o);
}
PF_FLOW(journaled_root_flow, int, const char *, journaled_root_handler)

START_TEST(test_flow_journaled_child_in_root)
{
	pf_scope *s = new_scope(2);
	int in = 0;
	const char *out = NULL;
	ck_assert_int_eq(journaled_root_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_str_eq(out, "done");
	dispose(s);
}
END_TEST

/* Records what a parallel call sees of its place in the tree. */
static _Atomic int par_seen_parallel;
static _Atomic int par_seen_depth_one;
static int
par_double_handler(pf_ctx *c, const int *in, int *out)
{
	bool par = false;
	uint32_t depth = 99;
	pf_ctx_get(c, &pf_flow_is_parallel_tag, &par);
	pf_ctx_get(c, &pf_flow_depth_tag, &depth);
	if (par)
		atomic_fetch_add_explicit(&par_seen_parallel, 1,
		    memory_order_relaxed);
	if (depth == 1)
		atomic_fetch_add_explicit(&par_seen_depth_one, 1,
		    memory_order_relaxed);
	*out = *in * 2;
	return 0;
}
PF_FLOW(par_double_flow, int, int, par_double_handler)

typedef struct par_out {
	int v[4];
	int rc;
	pf_parallel_stats st;
	pf_status status[4];
	int result[4];
} par_out;

static int
parallel_parent_handler(pf_ctx *c, const int *in, par_out *out)
{
	int a = in[0], b = in[0] + 1;
	pf_call calls[2] = {
		{ &par_double_flow, &a, &out->v[0], NULL, 0, PF_PENDING, NULL },
		{ &par_double_flow, &b, &out->v[1], NULL, 0, PF_PENDING, NULL },
	};
	out->rc = pf_ctx_parallel(c, calls, 2, &out->st);
	for (int i = 0; i < 2; i++) {
		out->status[i] = calls[i].status;
		out->result[i] = calls[i].result;
	}
	return 0;
}
PF_FLOW(parallel_parent_flow, int, par_out, parallel_parent_handler)

START_TEST(test_flow_parallel_results_and_stats)
{
	pf_scope *s = new_scope(2);
	atomic_store(&par_seen_parallel, 0);
	atomic_store(&par_seen_depth_one, 0);
	int in = 5;
	par_out out = { .rc = 0 };
	ck_assert_int_eq(parallel_parent_flow_scope_run(s, &in, &out, NULL),
	    0);
	ck_assert_int_eq(out.rc, 0);
	ck_assert_int_eq(out.v[0], 10);
	ck_assert_int_eq(out.v[1], 12);
	ck_assert_uint_eq(out.st.total, 2);
	ck_assert_uint_eq(out.st.succeeded, 2);
	ck_assert_uint_eq(out.st.failed, 0);
	ck_assert_int_eq(out.status[0], PF_COMPLETED);
	ck_assert_int_eq(out.status[1], PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&par_seen_parallel), 2);
	ck_assert_int_eq(atomic_load(&par_seen_depth_one), 2);
	dispose(s);
}
END_TEST

START_TEST(test_flow_parallel_settled_success_and_failure)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int five = 5, zero = 0, out[2] = { 0, -1 };
	pf_call calls[2] = {
		{ &double_flow, &five, &out[0], NULL, 0, PF_PENDING, NULL },
		{ &fail_flow, &zero, &out[1], NULL, 0, PF_PENDING, NULL },
	};
	pf_parallel_stats st;
	ck_assert_int_eq(pf_ctx_parallel_settled(c, calls, 2, &st), 0);
	ck_assert_uint_eq(st.total, 2);
	ck_assert_uint_eq(st.succeeded, 1);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_int_eq(calls[0].status, PF_COMPLETED);
	ck_assert_int_eq(calls[0].result, 0);
	ck_assert_int_eq(out[0], 10);
	ck_assert_int_eq(calls[1].status, PF_FAILED);
	ck_assert_int_eq(calls[1].result, E_FAIL);
	ck_assert_int_eq(out[1], -1); /* output written only on success */
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static int
slow_child_timeout_handler(pf_ctx *c, const int *in, int *out)
{
	pf_exec_options o = { .timeout_ms = 10 };
	return coop_flow_run(c, in, out, &o);
}
PF_FLOW(slow_child_timeout_flow, int, int, slow_child_timeout_handler)

START_TEST(test_flow_child_timeout_fails_root)
{
	pf_scope *s = new_scope(2);
	int ms = 5000, out = 0; /* ends early: aborted at 10 ms */
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &slow_child_timeout_flow, &ms, NULL,
			     &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), PF_ETIMEDOUT);
	/* The root itself was not aborted: it failed with its child's code. */
	ck_assert_int_eq(pf_exec_status(e), PF_FAILED);
	pf_exec_release(e);
	dispose(s);
}
END_TEST

/* The JS fn slept 100 ms; this one sleeps until aborted (at most 5 s) so
 * that a slow machine cannot let it finish before the timer fires. */
static int
fn_coop_100ms(pf_ctx *child, void *arg)
{
	(void)arg;
	return coop_sleep(child, 5000);
}

START_TEST(test_flow_fn_timeout_rejects)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	pf_ctx_options o = { .timeout_ms = 10 };
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	ck_assert_int_eq(pf_ctx_exec_fn(c, "slow", fn_coop_100ms, NULL),
	    PF_ETIMEDOUT);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

/* ====================================================================
 * 4.7 flow-extensions.test.ts and 4.8 extensions.test.ts: a tracker
 * extension that records each operation after pf_next_call returns.
 * ==================================================================== */

typedef struct oprec {
	pf_target target;
	char name[32];
	char key[32];
	bool has_key;
	int in0, in1;
	bool has_input;
	int output;
	bool has_output;
	int rc;
	uint32_t depth;
	size_t count;
	bool settled;
	pf_scope *scope;
	int fn_result; /* result_tag in an fn step's own store, or -1 */
} oprec;

static pthread_mutex_t track_mu = PTHREAD_MUTEX_INITIALIZER;
static oprec track_v[128];
static int track_n;
static _Atomic int track_calls;

static void
track_reset(void)
{
	pthread_mutex_lock(&track_mu);
	track_n = 0;
	pthread_mutex_unlock(&track_mu);
	atomic_store(&track_calls, 0);
}

static int
track_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)state;
	atomic_fetch_add_explicit(&track_calls, 1, memory_order_relaxed);
	oprec r;
	memset(&r, 0, sizeof(r));
	r.target = op->target;
	snprintf(r.name, sizeof(r.name), "%s", op->name ? op->name : "");
	r.has_key = op->key != NULL;
	if (op->key != NULL)
		snprintf(r.key, sizeof(r.key), "%s", op->key);
	if (op->flow != NULL && op->input != NULL &&
	    op->flow->input_size >= sizeof(int)) {
		r.has_input = true;
		memcpy(&r.in0, op->input, sizeof(int));
		if (op->flow->input_size >= 2 * sizeof(int))
			memcpy(&r.in1, (const int *)op->input + 1,
			    sizeof(int));
	}
	pf_ctx_get(op->context, &pf_flow_depth_tag, &r.depth);
	r.count = op->count;
	r.settled = op->settled;
	r.scope = s;
	r.rc = pf_next_call(next);
	if (r.rc == 0 && op->flow != NULL && op->output != NULL &&
	    op->flow->output_size >= sizeof(int)) {
		r.has_output = true;
		memcpy(&r.output, op->output, sizeof(int));
	}
	r.fn_result = -1;
	if (op->target == PF_TARGET_FN)
		result_tag_find(op->context, &r.fn_result);
	pthread_mutex_lock(&track_mu);
	if (track_n < 128)
		track_v[track_n++] = r;
	pthread_mutex_unlock(&track_mu);
	return r.rc;
}

static const pf_extension tracker = { "tracker", NULL, track_wrap, NULL,
	NULL };

static pf_scope *
tracked_scope(void)
{
	track_reset();
	const pf_extension *exts[] = { &tracker };
	pf_scope_options o = { .threads = 2, .extensions = exts,
		.n_extensions = 1 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	return s;
}

/* The first record matching target and key (NULL: no key) and name (NULL:
 * any), or NULL. */
static const oprec *
find_op(pf_target t, const char *key, const char *name)
{
	for (int i = 0; i < track_n; i++) {
		const oprec *r = &track_v[i];
		if (r->target != t)
			continue;
		if (key == NULL ? r->has_key :
				  (!r->has_key || strcmp(r->key, key) != 0))
			continue;
		if (name != NULL && strcmp(r->name, name) != 0)
			continue;
		return r;
	}
	return NULL;
}

static int
count_ops(pf_target t)
{
	int n = 0;
	for (int i = 0; i < track_n; i++)
		n += track_v[i].target == t;
	return n;
}

START_TEST(test_flow_ext_root_flow_operation)
{
	pf_scope *s = tracked_scope();
	int in = 5, out = 0;
	ck_assert_int_eq(double_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	const oprec *r = find_op(PF_TARGET_FLOW, NULL, "double_flow");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->in0, 5);
	ck_assert_int_eq(r->output, 10);
	ck_assert_uint_eq(r->depth, 0);
}
END_TEST

START_TEST(test_flow_ext_journaled_child_operation)
{
	pf_scope *s = tracked_scope();
	int in = 5, out = 0;
	ck_assert_int_eq(keyed_double_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	const oprec *r = find_op(PF_TARGET_FLOW, "step1", NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->name, "double_flow");
	ck_assert_uint_eq(r->depth, 1);
}
END_TEST

START_TEST(test_flow_ext_child_operation)
{
	pf_scope *s = tracked_scope();
	int in = 5, out = 0;
	ck_assert_int_eq(add_ten_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	const oprec *r = find_op(PF_TARGET_FLOW, NULL, "double_flow");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->depth, 1);
	ck_assert_int_eq(r->output, 10);
	ck_assert_ptr_nonnull(find_op(PF_TARGET_FLOW, NULL, "add_ten_flow"));
}
END_TEST

START_TEST(test_flow_ext_fn_operation)
{
	pf_scope *s = tracked_scope();
	int in = 0, out = 0;
	ck_assert_int_eq(fn_parent_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	const oprec *r = find_op(PF_TARGET_FN, NULL, "ten");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->rc, 0);
}
END_TEST

START_TEST(test_flow_ext_parallel_operation)
{
	pf_scope *s = tracked_scope();
	int in = 5;
	par_out out = { .rc = 0 };
	ck_assert_int_eq(parallel_parent_flow_scope_run(s, &in, &out, NULL),
	    0);
	dispose(s);
	const oprec *r = find_op(PF_TARGET_PARALLEL, NULL, "parallel");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->count, 2);
	ck_assert(!r->settled);
	ck_assert_int_eq(count_ops(PF_TARGET_PARALLEL), 1);
}
END_TEST

static int
variants_handler(pf_ctx *c, const int *in, int *out)
{
	pf_exec_options k = { .key = "journaled" };
	int a = 0, b = 0, f = 0;
	int rc = double_flow_run(c, in, &a, &k);
	if (rc == 0)
		rc = double_flow_run(c, in, &b, NULL);
	if (rc == 0)
		rc = pf_ctx_exec_fn(c, "fnPlain", fn_ten, &f);
	*out = a + b + f;
	return rc;
}
PF_FLOW(variants_flow, int, int, variants_handler)

START_TEST(test_flow_ext_operation_variants)
{
	pf_scope *s = tracked_scope();
	int in = 1, out = 0;
	ck_assert_int_eq(variants_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out, 14);
	dispose(s);
	ck_assert_ptr_nonnull(find_op(PF_TARGET_FLOW, "journaled",
	    "double_flow"));
	ck_assert_ptr_nonnull(find_op(PF_TARGET_FLOW, NULL, "double_flow"));
	const oprec *fn = find_op(PF_TARGET_FN, NULL, "fnPlain");
	ck_assert_ptr_nonnull(fn);
	ck_assert(!fn->has_key);
}
END_TEST

static int
order_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	const char **names = state;
	log_add(names[0]);
	int rc = pf_next_call(next);
	log_add(names[1]);
	return rc;
}

static int
logging_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	log_add("handler");
	*out = *in;
	return 0;
}
PF_FLOW(logging_flow, int, int, logging_handler)

START_TEST(test_flow_ext_order_outermost_first)
{
	static const char *n1[] = { "ext1-before", "ext1-after" };
	static const char *n2[] = { "ext2-before", "ext2-after" };
	pf_extension e1 = { "ext1", NULL, order_wrap, NULL, (void *)n1 };
	pf_extension e2 = { "ext2", NULL, order_wrap, NULL, (void *)n2 };
	const pf_extension *exts[] = { &e1, &e2 };
	pf_scope_options o = { .threads = 2, .extensions = exts,
		.n_extensions = 2 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	log_reset();
	int in = 1, out = 0;
	ck_assert_int_eq(logging_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	static const char *want[] = { "ext1-before", "ext2-before", "handler",
		"ext2-after", "ext1-after" };
	ck_assert_int_eq(atomic_load(&log_n), 5);
	for (int i = 0; i < 5; i++)
		ck_assert_str_eq(log_v[i], want[i]);
}
END_TEST

START_TEST(test_flow_ext_context_depth)
{
	pf_scope *s = tracked_scope();
	int in = 5, out = 0;
	ck_assert_int_eq(add_ten_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	bool d0 = false, d1 = false;
	for (int i = 0; i < track_n; i++) {
		if (track_v[i].target != PF_TARGET_FLOW)
			continue;
		d0 = d0 || track_v[i].depth == 0;
		d1 = d1 || track_v[i].depth == 1;
	}
	ck_assert(d0);
	ck_assert(d1);
}
END_TEST

static _Atomic(pf_scope *) child_scope_seen;
static int
scope_probe_handler(pf_ctx *c, const int *in, int *out)
{
	atomic_store_explicit(&child_scope_seen, pf_ctx_scope(c),
	    memory_order_relaxed);
	*out = *in;
	return 0;
}
PF_FLOW(scope_probe_flow, int, int, scope_probe_handler)

static int
scope_parent_handler(pf_ctx *c, const int *in, int *out)
{
	return scope_probe_flow_run(c, in, out, NULL);
}
PF_FLOW(scope_parent_flow, int, int, scope_parent_handler)

START_TEST(test_flow_ext_child_ctx_scope)
{
	pf_scope *s = tracked_scope();
	atomic_store(&child_scope_seen, NULL);
	int in = 1, out = 0;
	ck_assert_int_eq(scope_parent_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_ptr_eq(atomic_load(&child_scope_seen), s);
	ck_assert_int_ge(atomic_load(&track_calls), 2);
	dispose(s);
}
END_TEST

static int
read_parent_tag_handler(pf_ctx *c, const int *in, probe_out *out)
{
	(void)in;
	out->found = parent_tag_find(c, &out->str) ? 1 : 0;
	return 0;
}
PF_FLOW(read_parent_tag_flow, int, probe_out, read_parent_tag_handler)

static int
set_parent_tag_handler(pf_ctx *c, const int *in, probe_out *out)
{
	int rc = parent_tag_set(c, "parentValue");
	if (rc != 0)
		return rc;
	return read_parent_tag_flow_run(c, in, out, NULL);
}
PF_FLOW(set_parent_tag_flow, int, probe_out, set_parent_tag_handler)

START_TEST(test_flow_ext_parent_value_visible_in_child)
{
	pf_scope *s = tracked_scope();
	int in = 0;
	probe_out out = { 0 };
	ck_assert_int_eq(set_parent_tag_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out.found, 1);
	ck_assert_str_eq(out.str, "parentValue");
	dispose(s);
}
END_TEST

typedef struct meta_out {
	uint32_t depth;
	const char *name, *parent_name;
	bool is_parallel;
	int found;
} meta_out;

static int
child_flow_handler(pf_ctx *c, const int *in, meta_out *out)
{
	(void)in;
	out->found = pf_ctx_find(c, &pf_flow_depth_tag, &out->depth) +
	    pf_ctx_find(c, &pf_flow_name_tag, &out->name) +
	    pf_ctx_find(c, &pf_flow_parent_name_tag, &out->parent_name) +
	    pf_ctx_find(c, &pf_flow_is_parallel_tag, &out->is_parallel);
	return 0;
}
PF_FLOW(child_flow, int, meta_out, child_flow_handler)

static int
parent_flow_handler(pf_ctx *c, const int *in, meta_out *out)
{
	return child_flow_run(c, in, out, NULL);
}
PF_FLOW(parent_flow, int, meta_out, parent_flow_handler)

START_TEST(test_flow_ext_child_flow_meta)
{
	pf_scope *s = tracked_scope();
	int in = 0;
	meta_out out = { 0 };
	ck_assert_int_eq(parent_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out.found, 4);
	ck_assert_uint_eq(out.depth, 1);
	ck_assert_str_eq(out.name, "child_flow");
	ck_assert_str_eq(out.parent_name, "parent_flow");
	ck_assert(!out.is_parallel);
	dispose(s);
}
END_TEST

START_TEST(test_flow_ext_parallel_completes)
{
	pf_scope *s = tracked_scope();
	int in = 1;
	par_out out = { .rc = 0 };
	ck_assert_int_eq(parallel_parent_flow_scope_run(s, &in, &out, NULL),
	    0);
	ck_assert_int_eq(out.rc, 0);
	dispose(s);
}
END_TEST

static int
read_scope_exec_tags_handler(pf_ctx *c, const int *in, meta_out *out)
{
	(void)in;
	out->found = 0;
	const char *v = NULL;
	if (scope_tag_get(c, &v) == 0 && strcmp(v, "scopeValue") == 0)
		out->found |= 1;
	if (exec_tag_get(c, &v) == 0 && strcmp(v, "execValue") == 0)
		out->found |= 2;
	if (tag1_find(c, &v) && strcmp(v, "value1") == 0)
		out->found |= 4;
	if (tag2_find(c, &v) && strcmp(v, "value2") == 0)
		out->found |= 8;
	return 0;
}
PF_FLOW(read_tags_flow, int, meta_out, read_scope_exec_tags_handler)

START_TEST(test_flow_ext_scope_tag)
{
	const char *sv = "scopeValue";
	pf_tag_value tv = scope_tag_value(&sv);
	pf_scope_options o = { .threads = 2, .tags = &tv, .n_tags = 1 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	int in = 0;
	meta_out out = { 0 };
	ck_assert_int_eq(read_tags_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out.found, 1);
	dispose(s);
}
END_TEST

START_TEST(test_flow_ext_execution_tag)
{
	pf_scope *s = new_scope(2);
	const char *ev = "execValue";
	pf_tag_value tv = exec_tag_value(&ev);
	pf_exec_options o = { .tags = &tv, .n_tags = 1 };
	int in = 0;
	meta_out out = { 0 };
	ck_assert_int_eq(read_tags_flow_scope_run(s, &in, &out, &o), 0);
	ck_assert_int_eq(out.found, 2);
	dispose(s);
}
END_TEST

START_TEST(test_flow_ext_execution_tags_isolated)
{
	pf_scope *s = new_scope(2);
	const char *v1 = "value1", *v2 = "value2";
	pf_tag_value t1 = tag1_value(&v1), t2 = tag2_value(&v2);
	pf_exec_options o1 = { .tags = &t1, .n_tags = 1 };
	pf_exec_options o2 = { .tags = &t2, .n_tags = 1 };
	int in = 0;
	meta_out out = { 0 };
	ck_assert_int_eq(read_tags_flow_scope_run(s, &in, &out, &o1), 0);
	ck_assert_int_eq(out.found, 4);
	ck_assert_int_eq(read_tags_flow_scope_run(s, &in, &out, &o2), 0);
	ck_assert_int_eq(out.found, 8); /* tag1 is not there any more */
	dispose(s);
}
END_TEST

static int
root_tag_parent_handler(pf_ctx *c, const int *in, probe_out *out)
{
	return read_parent_tag_flow_run(c, in, out, NULL);
}
PF_FLOW(root_tag_parent_flow, int, probe_out, root_tag_parent_handler)

START_TEST(test_flow_ext_root_tag_seen_by_child)
{
	pf_scope *s = new_scope(2);
	const char *pv = "parentValue";
	pf_tag_value tv = parent_tag_value(&pv);
	pf_exec_options o = { .tags = &tv, .n_tags = 1 };
	int in = 0;
	probe_out out = { 0 };
	ck_assert_int_eq(root_tag_parent_flow_scope_run(s, &in, &out, &o), 0);
	ck_assert_int_eq(out.found, 1);
	ck_assert_str_eq(out.str, "parentValue");
	dispose(s);
}
END_TEST

typedef struct life {
	_Atomic int inits, disposes, wraps;
} life;

static int
life_init(pf_scope *s, void *state)
{
	(void)s;
	atomic_fetch_add(&((life *)state)->inits, 1);
	return 0;
}

static int
life_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)op;
	atomic_fetch_add(&((life *)state)->wraps, 1);
	return pf_next_call(next);
}

static void
life_dispose(pf_scope *s, void *state)
{
	(void)s;
	atomic_fetch_add(&((life *)state)->disposes, 1);
}

static void
dispose_called_case(const pf_flow *f, int expect_rc)
{
	life l = { 0 };
	pf_extension ext = { "life", life_init, life_wrap, life_dispose, &l };
	const pf_extension *exts[] = { &ext };
	pf_scope_options o = { .threads = 2, .extensions = exts,
		.n_extensions = 1 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	ck_assert_int_eq(atomic_load(&l.inits), 1);
	int in = 1, out = 0;
	ck_assert_int_eq(pf_scope_run(s, f, &in, &out, NULL), expect_rc);
	ck_assert_int_eq(atomic_load(&l.disposes), 0);
	dispose(s);
	ck_assert_int_eq(atomic_load(&l.disposes), 1);
	ck_assert_int_eq(atomic_load(&l.wraps), 1);
}

START_TEST(test_flow_ext_dispose_on_success)
{
	dispose_called_case(&double_flow, 0);
}
END_TEST

START_TEST(test_flow_ext_dispose_on_failure)
{
	dispose_called_case(&fail_flow, E_FAIL);
}
END_TEST

START_TEST(test_flow_ext_dispose_only_with_scope)
{
	life l = { 0 };
	pf_extension ext = { "life", life_init, life_wrap, life_dispose, &l };
	pf_scope *s = new_scope(2);
	ck_assert_int_eq(pf_scope_use(s, &ext), 0);
	int in = 1, out = 0;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(double_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(atomic_load(&l.disposes), 0);
	dispose(s);
	ck_assert_int_eq(atomic_load(&l.inits), 1);
	ck_assert_int_eq(atomic_load(&l.disposes), 1);
	ck_assert_int_eq(atomic_load(&l.wraps), 3);
}
END_TEST

/* 4.8 extensions.test.ts */

typedef struct pair {
	int a, b;
} pair;

static int
multiply_handler(pf_ctx *c, const pair *in, int *out)
{
	(void)c;
	*out = in->a * in->b;
	return 0;
}
PF_FLOW(multiply_flow, pair, int, multiply_handler)

static int
add_handler(pf_ctx *c, const pair *in, int *out)
{
	(void)c;
	*out = in->a + in->b;
	return 0;
}
PF_FLOW(add_flow, pair, int, add_handler)

typedef struct triple {
	int multiplied, added, combined;
} triple;

static int
journaled_math_handler(pf_ctx *c, const pair *in, triple *out)
{
	pf_exec_options km = { .key = "multiply" }, ka = { .key = "add" },
			kc = { .key = "combine" };
	int rc = multiply_flow_run(c, in, &out->multiplied, &km);
	if (rc == 0)
		rc = add_flow_run(c, in, &out->added, &ka);
	if (rc == 0) {
		pair p = { out->multiplied, out->added };
		rc = add_flow_run(c, &p, &out->combined, &kc);
	}
	return rc;
}
PF_FLOW(journaled_math_flow, pair, triple, journaled_math_handler)

START_TEST(test_extensions_records_journaled_steps)
{
	pf_scope *s = tracked_scope();
	pair in = { 5, 3 };
	triple out = { 0 };
	ck_assert_int_eq(journaled_math_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	ck_assert_int_eq(out.multiplied, 15);
	ck_assert_int_eq(out.added, 8);
	ck_assert_int_eq(out.combined, 23);
	static const char *keys[] = { "multiply", "add", "combine" };
	int at = 0;
	for (int i = 0; i < track_n && at < 3; i++)
		if (track_v[i].has_key && strcmp(track_v[i].key, keys[at]) == 0)
			at++;
	ck_assert_int_eq(at, 3); /* in this order */
	const oprec *m = find_op(PF_TARGET_FLOW, "multiply", NULL);
	ck_assert_int_eq(m->in0, 5);
	ck_assert_int_eq(m->in1, 3);
	ck_assert_int_eq(m->output, 15);
	ck_assert_int_eq(find_op(PF_TARGET_FLOW, "add", NULL)->output, 8);
	ck_assert_int_eq(find_op(PF_TARGET_FLOW, "combine", NULL)->output, 23);
}
END_TEST

static int
increment_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	*out = *in + 1;
	return 0;
}
PF_FLOW(increment_flow, int, int, increment_handler)

static int
sub_flows_handler(pf_ctx *c, const int *in, pair *out)
{
	int inc = 0;
	int rc = increment_flow_run(c, in, &inc, NULL);
	if (rc == 0)
		rc = double_flow_run(c, &inc, &out->b, NULL);
	out->a = *in;
	return rc;
}
PF_FLOW(sub_flows_flow, int, pair, sub_flows_handler)

START_TEST(test_extensions_records_sub_flows)
{
	pf_scope *s = tracked_scope();
	int in = 5;
	pair out = { 0, 0 };
	ck_assert_int_eq(sub_flows_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	ck_assert_int_eq(out.a, 5);
	ck_assert_int_eq(out.b, 12);
	const oprec *inc = find_op(PF_TARGET_FLOW, NULL, "increment_flow");
	const oprec *dbl = find_op(PF_TARGET_FLOW, NULL, "double_flow");
	ck_assert_ptr_nonnull(inc);
	ck_assert_ptr_nonnull(dbl);
	ck_assert_int_eq(inc->in0, 5);
	ck_assert_int_eq(dbl->in0, 6);
}
END_TEST

/* fn steps publish their result in their own context's result_tag. */
typedef struct fn_arg {
	int x;
	int op; /* 0 multiply by 2, 1 add 10, 2 fail */
	int out;
} fn_arg;

static int
fn_math(pf_ctx *child, void *arg)
{
	fn_arg *a = arg;
	if (a->op == 2)
		return pf_ctx_fail(child, E_INTENTIONAL, "Intentional failure");
	a->out = a->op == 0 ? a->x * 2 : a->x + 10;
	return result_tag_set(child, a->out);
}

static int
multiply_op_handler(pf_ctx *c, const int *in, int *out)
{
	fn_arg a = { *in, 0, 0 };
	int rc = pf_ctx_exec_fn(c, "multiply-op", fn_math, &a);
	*out = a.out;
	return rc;
}
PF_FLOW(multiply_op_flow, int, int, multiply_op_handler)

static int
add_op_handler(pf_ctx *c, const int *in, int *out)
{
	fn_arg a = { *in, 1, 0 };
	int rc = pf_ctx_exec_fn(c, "add-op", fn_math, &a);
	*out = a.out;
	return rc;
}
PF_FLOW(add_op_flow, int, int, add_op_handler)

static int
fail_op_handler(pf_ctx *c, const int *in, int *out)
{
	fn_arg a = { *in, 2, 0 };
	int rc = pf_ctx_exec_fn(c, "fail-op", fn_math, &a);
	*out = a.out;
	return rc;
}
PF_FLOW(fail_op_flow, int, int, fail_op_handler)

static int
fn_combine(pf_ctx *child, void *arg)
{
	triple *t = arg;
	t->combined = t->multiplied + t->added;
	return result_tag_set(child, t->combined);
}

/* in: x, and whether the second call fails. */
static int
parallel_fns_handler(pf_ctx *c, const pair *in, triple *out)
{
	pf_call calls[2] = {
		{ &multiply_op_flow, &in->a, &out->multiplied, NULL, 0, 0, NULL },
		{ in->b ? &fail_op_flow : &add_op_flow, &in->a, &out->added,
		    NULL, 0, 0, NULL },
	};
	int rc = pf_ctx_parallel(c, calls, 2, NULL);
	if (rc != 0)
		return rc;
	return pf_ctx_exec_fn(c, "combine", fn_combine, out);
}
PF_FLOW(parallel_fns_flow, pair, triple, parallel_fns_handler)

START_TEST(test_extensions_parallel_with_fn_steps)
{
	pf_scope *s = tracked_scope();
	pair in = { 5, 0 };
	triple out = { 0 };
	ck_assert_int_eq(parallel_fns_flow_scope_run(s, &in, &out, NULL), 0);
	dispose(s);
	ck_assert_int_eq(out.multiplied, 10);
	ck_assert_int_eq(out.added, 15);
	ck_assert_int_eq(out.combined, 25);
	ck_assert_int_ge(count_ops(PF_TARGET_FLOW), 3);
	const oprec *root = find_op(PF_TARGET_FLOW, NULL, "parallel_fns_flow");
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(root->in0, 5);
	ck_assert_int_eq(count_ops(PF_TARGET_PARALLEL), 1);
	const oprec *p = find_op(PF_TARGET_PARALLEL, NULL, NULL);
	ck_assert_uint_eq(p->count, 2);
	ck_assert(!p->settled);
	ck_assert_int_eq(find_op(PF_TARGET_FN, NULL, "multiply-op")->fn_result,
	    10);
	ck_assert_int_eq(find_op(PF_TARGET_FN, NULL, "add-op")->fn_result, 15);
	ck_assert_int_eq(find_op(PF_TARGET_FN, NULL, "combine")->fn_result,
	    25);
}
END_TEST

START_TEST(test_extensions_failing_fn_recorded)
{
	pf_scope *s = tracked_scope();
	pair in = { 5, 1 };
	triple out = { 0 };
	ck_assert_int_eq(parallel_fns_flow_scope_run(s, &in, &out, NULL),
	    E_INTENTIONAL);
	dispose(s);
	const oprec *f = find_op(PF_TARGET_FN, NULL, "fail-op");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(f->rc, E_INTENTIONAL);
	ck_assert_ptr_null(find_op(PF_TARGET_FN, NULL, "combine"));
}
END_TEST

/* An order pipeline: validate, check stock of each item in parallel
 * (settled), then create the order (journaled). */
typedef struct order {
	int id;
	int n_items;
	int items[4]; /* stock per item; 0 is out of stock */
} order;

typedef struct order_out {
	int order_id;
	bool valid;
	const char *status;
} order_out;

static int
validate_handler(pf_ctx *c, const order *in, bool *out)
{
	if (in->n_items == 0)
		return pf_ctx_fail(c, E_NO_ITEMS, "Order has no items");
	*out = true;
	return 0;
}
PF_FLOW(validate_flow, order, bool, validate_handler)

static int
stock_handler(pf_ctx *c, const int *in, int *out)
{
	if (*in == 0)
		return pf_ctx_fail(c, E_UNAVAILABLE, "out of stock");
	*out = *in;
	return 0;
}
PF_FLOW(stock_flow, int, int, stock_handler)

static int
create_order_handler(pf_ctx *c, const order *in, int *out)
{
	(void)c;
	*out = in->id;
	return 0;
}
PF_FLOW(create_order_flow, order, int, create_order_handler)

static int
process_order_handler(pf_ctx *c, const order *in, order_out *out)
{
	int rc = validate_flow_run(c, in, &out->valid, NULL);
	if (rc != 0)
		return pf_ctx_fail(c, rc, "Order has no items");
	pf_call calls[4];
	int stock[4];
	for (int i = 0; i < in->n_items; i++)
		calls[i] = (pf_call){ &stock_flow, &in->items[i], &stock[i],
			NULL, 0, 0, NULL };
	pf_parallel_stats st;
	rc = pf_ctx_parallel_settled(c, calls, (size_t)in->n_items, &st);
	if (rc != 0)
		return rc;
	if (st.failed != 0)
		return pf_ctx_fail(c, E_UNAVAILABLE, "Items unavailable");
	pf_exec_options k = { .key = "create-order" };
	rc = create_order_flow_run(c, in, &out->order_id, &k);
	if (rc == 0)
		out->status = "completed";
	return rc;
}
PF_FLOW(process_order_flow, order, order_out, process_order_handler)

static int
run_order(pf_scope *s, const order *o, order_out *out, char *msg, size_t len)
{
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &process_order_flow, o, NULL, &e), 0);
	int rc = pf_exec_wait(e, out);
	const char *m = "";
	pf_ctx_error(pf_exec_ctx(e), &m);
	snprintf(msg, len, "%s", m != NULL ? m : "");
	pf_exec_release(e);
	return rc;
}

START_TEST(test_extensions_order_composition)
{
	pf_scope *s = tracked_scope();
	char msg[64];
	order good = { 123, 2, { 5, 7 } };
	order_out out = { 0 };
	ck_assert_int_eq(run_order(s, &good, &out, msg, sizeof(msg)), 0);
	ck_assert_int_eq(out.order_id, 123);
	ck_assert(out.valid);
	ck_assert_str_eq(out.status, "completed");
	order empty = { 124, 0, { 0 } };
	ck_assert_int_eq(run_order(s, &empty, &out, msg, sizeof(msg)),
	    E_NO_ITEMS);
	ck_assert_str_eq(msg, "Order has no items");
	order missing = { 125, 2, { 5, 0 } };
	ck_assert_int_eq(run_order(s, &missing, &out, msg, sizeof(msg)),
	    E_UNAVAILABLE);
	ck_assert_str_eq(msg, "Items unavailable");
	dispose(s);
	ck_assert_ptr_nonnull(find_op(PF_TARGET_FLOW, "create-order", NULL));
	ck_assert_ptr_nonnull(find_op(PF_TARGET_PARALLEL, NULL, NULL));
	ck_assert(find_op(PF_TARGET_PARALLEL, NULL, NULL)->settled);
}
END_TEST

/* ====================================================================
 * 4.12 promised-settled.test.ts, as parallel_settled: each pf_call holds
 * its own result and status, in call order.
 * ==================================================================== */

typedef struct vin {
	int v, mul, fail;
} vin;

static int
value_handler(pf_ctx *c, const vin *in, int *out)
{
	if (in->fail != 0)
		return pf_ctx_fail(c, in->fail, "error %d", in->fail);
	*out = in->v * in->mul;
	return 0;
}
PF_FLOW(value_flow, vin, int, value_handler)

#define OK(x) { (x), 1, 0 }
#define MUL(x, m) { (x), (m), 0 }
#define ERR(code) { 0, 1, (code) }

typedef struct settled {
	size_t n;
	vin in[8];
	pf_call calls[8];
	int out[8];
	pf_parallel_stats st;
	int rc;
} settled;

static void
run_settled(settled *r, const vin *in, size_t n)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	r->n = n;
	for (size_t i = 0; i < n; i++) {
		r->in[i] = in[i];
		r->out[i] = -1;
		r->calls[i] = (pf_call){ &value_flow, &r->in[i], &r->out[i],
			NULL, 0, PF_PENDING, NULL };
	}
	r->rc = pf_ctx_parallel_settled(c, r->calls, n, &r->st);
	pf_ctx_release(c);
	dispose(s);
	ck_assert_int_eq(r->rc, 0);
}

/* Values of completed calls, in call order. */
static size_t
fulfilled(const settled *r, int *v)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->calls[i].status == PF_COMPLETED) {
			ck_assert_int_eq(r->calls[i].result, 0);
			v[k++] = r->out[i];
		}
	return k;
}

/* Codes of failed calls, in call order. */
static size_t
rejected(const settled *r, int *v)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->calls[i].status != PF_COMPLETED) {
			ck_assert_int_eq(r->calls[i].status, PF_FAILED);
			ck_assert_int_eq(r->out[i], -1);
			v[k++] = r->calls[i].result;
		}
	return k;
}

START_TEST(test_settled_fulfilled_all)
{
	settled r;
	vin in[] = { MUL(5, 2), MUL(5, 3), MUL(5, 4) };
	run_settled(&r, in, 3);
	int v[8];
	ck_assert_uint_eq(fulfilled(&r, v), 3);
	ck_assert_int_eq(v[0], 10);
	ck_assert_int_eq(v[1], 15);
	ck_assert_int_eq(v[2], 20);
}
END_TEST

START_TEST(test_settled_fulfilled_skips_failures)
{
	settled r;
	vin in[] = { OK(10), ERR(E_FAIL), OK(20), ERR(E_FAIL) };
	run_settled(&r, in, 4);
	int v[8];
	ck_assert_uint_eq(fulfilled(&r, v), 2);
	ck_assert_int_eq(v[0], 10);
	ck_assert_int_eq(v[1], 20);
}
END_TEST

START_TEST(test_settled_rejected_in_order)
{
	settled r;
	vin in[] = { ERR(E_FIRST), ERR(E_SECOND) };
	run_settled(&r, in, 2);
	int v[8];
	ck_assert_uint_eq(rejected(&r, v), 2);
	ck_assert_int_eq(v[0], E_FIRST);
	ck_assert_int_eq(v[1], E_SECOND);
}
END_TEST

START_TEST(test_settled_rejected_single)
{
	settled r;
	vin in[] = { OK(1), ERR(E_FAIL), OK(2) };
	run_settled(&r, in, 3);
	int v[8];
	ck_assert_uint_eq(rejected(&r, v), 1);
	ck_assert_int_eq(v[0], E_FAIL);
}
END_TEST

START_TEST(test_settled_partition)
{
	settled r;
	vin in[] = { OK(10), ERR(E_FAIL), OK(20), ERR(E_FAIL) };
	run_settled(&r, in, 4);
	int f[8], j[8];
	ck_assert_uint_eq(fulfilled(&r, f), 2);
	ck_assert_uint_eq(rejected(&r, j), 2);
	ck_assert_int_eq(f[0], 10);
	ck_assert_int_eq(f[1], 20);
	ck_assert_uint_eq(r.st.succeeded, 2);
	ck_assert_uint_eq(r.st.failed, 2);
}
END_TEST

START_TEST(test_settled_first_fulfilled)
{
	settled r;
	vin in[] = { OK(5), OK(10), OK(15) };
	run_settled(&r, in, 3);
	int v[8];
	ck_assert_uint_ge(fulfilled(&r, v), 1);
	ck_assert_int_eq(v[0], 5);
}
END_TEST

START_TEST(test_settled_first_fulfilled_after_failure)
{
	settled r;
	vin in[] = { ERR(E_FAIL), OK(42), ERR(E_FAIL) };
	run_settled(&r, in, 3);
	int v[8];
	ck_assert_uint_eq(fulfilled(&r, v), 1);
	ck_assert_int_eq(v[0], 42);
}
END_TEST

START_TEST(test_settled_first_rejected)
{
	settled r;
	vin in[] = { ERR(E_FIRST), ERR(E_SECOND) };
	run_settled(&r, in, 2);
	int v[8];
	ck_assert_uint_ge(rejected(&r, v), 1);
	ck_assert_int_eq(v[0], E_FIRST);
}
END_TEST

START_TEST(test_settled_first_rejected_among_successes)
{
	settled r;
	vin in[] = { OK(1), ERR(E_FAIL), OK(2) };
	run_settled(&r, in, 3);
	int v[8];
	ck_assert_uint_eq(rejected(&r, v), 1);
	ck_assert_int_eq(v[0], E_FAIL);
}
END_TEST

static int
find_fulfilled_gt(const settled *r, int min)
{
	int v[8];
	size_t n = fulfilled(r, v);
	for (size_t i = 0; i < n; i++)
		if (v[i] > min)
			return v[i];
	return -1;
}

START_TEST(test_settled_find_fulfilled)
{
	settled r;
	vin in[] = { OK(1), OK(5), OK(10) };
	run_settled(&r, in, 3);
	ck_assert_int_eq(find_fulfilled_gt(&r, 3), 5);
}
END_TEST

START_TEST(test_settled_find_fulfilled_skips_failures)
{
	settled r;
	vin in[] = { ERR(E_FAIL), OK(1), ERR(E_FAIL), OK(5) };
	run_settled(&r, in, 4);
	ck_assert_int_eq(find_fulfilled_gt(&r, 3), 5);
}
END_TEST

START_TEST(test_settled_map_fulfilled)
{
	settled r;
	vin in[] = { OK(1), OK(2), OK(3) };
	run_settled(&r, in, 3);
	int v[8];
	ck_assert_uint_eq(fulfilled(&r, v), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(v[i] * 10, (i + 1) * 10);
}
END_TEST

START_TEST(test_settled_map_fulfilled_skips_failures)
{
	settled r;
	vin in[] = { OK(1), ERR(E_FAIL), OK(2), ERR(E_FAIL) };
	run_settled(&r, in, 4);
	int v[8];
	ck_assert_uint_eq(fulfilled(&r, v), 2);
	ck_assert_int_eq(v[0] * 10, 10);
	ck_assert_int_eq(v[1] * 10, 20);
}
END_TEST

START_TEST(test_settled_calls_keep_their_positions)
{
	settled r;
	vin in[] = { ERR(E_FAIL), OK(100), OK(200) };
	run_settled(&r, in, 3);
	ck_assert_int_eq(r.calls[0].status, PF_FAILED);
	ck_assert_int_eq(r.calls[1].status, PF_COMPLETED);
	ck_assert_int_eq(r.out[1], 100);
	ck_assert_int_eq(r.calls[2].status, PF_COMPLETED);
	ck_assert_int_eq(r.out[2], 200);
}
END_TEST

START_TEST(test_settled_all_fulfilled)
{
	settled r;
	vin in[] = { OK(10), OK(20) };
	run_settled(&r, in, 2);
	ck_assert_uint_eq(r.st.failed, 0);
	ck_assert_uint_eq(r.st.succeeded, 2);
	ck_assert_int_eq(r.out[0], 10);
	ck_assert_int_eq(r.out[1], 20);
}
END_TEST

START_TEST(test_settled_all_fulfilled_reports_one_of_two)
{
	settled r;
	vin in[] = { OK(1), ERR(E_FAIL) };
	run_settled(&r, in, 2);
	ck_assert_uint_eq(r.st.total, 2);
	ck_assert_uint_eq(r.st.succeeded, 1);
	ck_assert_uint_eq(r.st.failed, 1);
}
END_TEST

START_TEST(test_settled_all_fulfilled_reports_counts)
{
	settled r;
	vin in[] = { OK(1), ERR(E_FAIL), ERR(E_FAIL) };
	run_settled(&r, in, 3);
	ck_assert_uint_eq(r.st.total, 3);
	ck_assert_uint_eq(r.st.succeeded, 1);
	ck_assert_uint_eq(r.st.failed, 2);
}
END_TEST

START_TEST(test_settled_root_executions_partition)
{
	pf_scope *s = new_scope(2);
	vin in[3] = { MUL(5, 2), ERR(E_FAIL), MUL(5, 3) };
	pf_exec *e[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pf_scope_exec(s, &value_flow, &in[i], NULL,
				     &e[i]), 0);
	int f[3], nf = 0, nr = 0;
	for (int i = 0; i < 3; i++) {
		int v = -1;
		if (pf_exec_wait(e[i], &v) == 0)
			f[nf++] = v;
		else
			nr++;
		pf_exec_release(e[i]);
	}
	ck_assert_int_eq(nf, 2);
	ck_assert_int_eq(f[0], 10);
	ck_assert_int_eq(f[1], 15);
	ck_assert_int_eq(nr, 1);
	dispose(s);
}
END_TEST

START_TEST(test_settled_empty)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_parallel_stats st = { 7, 7, 7, 7 };
	ck_assert_int_eq(pf_ctx_parallel_settled(c, NULL, 0, &st), 0);
	ck_assert_uint_eq(st.total, 0);
	ck_assert_uint_eq(st.succeeded, 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_int_eq(pf_ctx_parallel_settled(c, NULL, 0, NULL), 0);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_settled_chained_filter_sum)
{
	settled r;
	vin in[] = { OK(1), ERR(E_FAIL), OK(5), OK(10) };
	run_settled(&r, in, 4);
	int v[8], sum = 0;
	size_t n = fulfilled(&r, v);
	for (size_t i = 0; i < n; i++)
		if (v[i] > 3)
			sum += v[i];
	ck_assert_int_eq(sum, 15);
}
END_TEST

/* ====================================================================
 * 4.13 tag.test.ts
 * ==================================================================== */

START_TEST(test_tag_context_store)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(port_tag_set(c, 8080), 0);
	int v = 0;
	ck_assert_int_eq(port_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 8080);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_tag_value_array)
{
	pf_scope *s = new_scope(2);
	int port = 8081;
	const char *x = "x";
	pf_tag_value tags[] = { x_tag_value(&x), port_tag_value(&port) };
	pf_ctx_options o = { .tags = tags, .n_tags = 2 };
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	int v = 0;
	ck_assert_int_eq(port_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 8081);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_scope_container)
{
	int port = 8082;
	pf_tag_value tv = port_tag_value(&port);
	pf_scope_options so = { .threads = 2, .tags = &tv, .n_tags = 1 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &so), 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int v = 0;
	ck_assert_int_eq(port_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 8082);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_without_default)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	const char *v = "untouched";
	ck_assert_int_eq(x_tag_get(c, &v), PF_ENOENT);
	ck_assert_str_eq(v, "untouched"); /* written only on success */
	ck_assert(!x_tag_find(c, &v));
	ck_assert_str_eq(v, "untouched");
	ck_assert_int_eq(x_tag_set(c, "hello"), 0);
	ck_assert_int_eq(x_tag_get(c, &v), 0);
	ck_assert_str_eq(v, "hello");
	v = NULL;
	ck_assert(x_tag_find(c, &v));
	ck_assert_str_eq(v, "hello");
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_with_default)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int v = 0;
	ck_assert_int_eq(count_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 10);
	v = 0;
	ck_assert(count_tag_find(c, &v));
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(count_tag_set(c, 42), 0);
	ck_assert_int_eq(count_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 42);
	v = 0;
	ck_assert(count_tag_find(c, &v));
	ck_assert_int_eq(v, 42);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_tagged_value)
{
	const char *x = "x";
	pf_tag_value tv = x_tag_value(&x);
	ck_assert_ptr_eq(tv.tag, &x_tag);
	ck_assert_str_eq(*(const char *const *)tv.value, "x");
}
END_TEST

START_TEST(test_tag_tagged_value_explicit)
{
	pf_scope *s = new_scope(2);
	int port = 8080;
	pf_tag_value tv = port_tag_value(&port);
	ck_assert_ptr_eq(tv.tag, &port_tag);
	pf_ctx_options o = { .tags = &tv, .n_tags = 1 };
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	port = 1; /* copied during the call */
	int v = 0;
	ck_assert_int_eq(port_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 8080);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_inject_then_extract)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int v = 0;
	ck_assert_int_eq(port_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 3000);
	ck_assert_int_eq(port_tag_set(c, 9090), 0);
	ck_assert_int_eq(port_tag_get(c, &v), 0);
	ck_assert_int_eq(v, 9090);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

START_TEST(test_tag_label_kept)
{
	ck_assert_str_eq(port_tag.label, "port");
	ck_assert_uint_eq(port_tag.size, sizeof(int));
}
END_TEST

/* ====================================================================
 * js_bugs_fixed: one regression test per bug of spec section 5.
 * ==================================================================== */

/* #1: the status is terminal in the terminal callback and right after
 * wait. */
START_TEST(test_bug01_status_set_with_settlement)
{
	pf_scope *s = new_scope(2);
	for (int i = 0; i < 200; i++) {
		srec r = { 0 };
		pf_exec_options o = { .on_status = srec_cb,
			.on_status_data = &r };
		const pf_flow *f = i % 2 ? &fail_flow : &double_flow;
		pf_status want = i % 2 ? PF_FAILED : PF_COMPLETED;
		pf_exec *e;
		ck_assert_int_eq(pf_scope_exec(s, f, &i, &o, &e), 0);
		int out;
		pf_exec_wait(e, &out);
		ck_assert_int_eq(pf_exec_status(e), want);
		ck_assert_int_eq(atomic_load(&r.status_in_terminal_cb),
		    (int)want + 1);
		ck_assert_int_eq(atomic_load(&r.error_in_terminal_cb),
		    i % 2 ? E_FAIL : 0);
		ck_assert_int_ne(pf_exec_try(e, &out), PF_EAGAIN);
		pf_exec_release(e);
	}
	dispose(s);
}
END_TEST

static _Atomic int gate;
static _Atomic int blocker_started;
static int
blocker_handler(pf_ctx *c, const int *in, int *out)
{
	(void)c;
	atomic_store_explicit(&blocker_started, 1, memory_order_release);
	while (atomic_load_explicit(&gate, memory_order_acquire) == 0)
		sleep_ms(1);
	*out = *in;
	return 0;
}
PF_FLOW(blocker_flow, int, int, blocker_handler)

/* #2: pending is observable; a late subscriber gets the terminal status
 * once; a subscriber added while pending sees the later transitions. */
START_TEST(test_bug02_pending_observable_late_subscriber)
{
	pf_scope *s = new_scope(1);
	atomic_store(&gate, 0);
	atomic_store(&blocker_started, 0);
	int in = 1;
	pf_exec *b, *e;
	ck_assert_int_eq(pf_scope_exec(s, &blocker_flow, &in, NULL, &b), 0);
	ck_assert(wait_flag(&blocker_started, 5000));
	srec first = { 0 }, during = { 0 }, late = { 0 };
	pf_exec_options o = { .on_status = srec_cb, .on_status_data = &first };
	ck_assert_int_eq(pf_scope_exec(s, &double_flow, &in, &o, &e), 0);
	/* The only worker is busy: e is pending and says so. */
	ck_assert_int_eq(pf_exec_status(e), PF_PENDING);
	ck_assert_int_eq(atomic_load(&first.n), 1);
	ck_assert_int_eq(first.seq[0], PF_PENDING);
	ck_assert_int_eq(pf_exec_on_status(e, srec_cb, &during), 0);
	atomic_store(&gate, 1);
	int out = 0;
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 2);
	ck_assert_int_eq(atomic_load(&during.n), 2);
	ck_assert_int_eq(during.seq[0], PF_RUNNING);
	ck_assert_int_eq(during.seq[1], PF_COMPLETED);
	ck_assert_int_eq(pf_exec_on_status(e, srec_cb, &late), 0);
	ck_assert_int_eq(atomic_load(&late.n), 1);
	ck_assert_int_eq(late.seq[0], PF_COMPLETED);
	ck_assert_int_eq(atomic_load(&first.n), 3);
	ck_assert_int_eq(pf_exec_wait(b, NULL), 0);
	pf_exec_release(b);
	pf_exec_release(e);
	dispose(s);
}
END_TEST

static void
abort_in_terminal_cb(pf_exec *e, pf_status st, void *data)
{
	(void)data;
	if (st >= PF_COMPLETED)
		pf_exec_abort(e);
}

/* #3: a callback cannot change the status (there are no exceptions to
 * throw; the nearest misuse is aborting from the terminal callback), and
 * later callbacks still run. */
START_TEST(test_bug03_callback_cannot_change_status)
{
	pf_scope *s = new_scope(2);
	int in = 4, out = 0;
	srec r = { 0 };
	pf_exec_options o = { .on_status = abort_in_terminal_cb };
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &double_flow, &in, &o, &e), 0);
	ck_assert_int_eq(pf_exec_on_status(e, srec_cb, &r), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(out, 8);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(pf_exec_try(e, NULL), 0);
	int n = atomic_load(&r.n);
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(r.seq[n - 1], PF_COMPLETED);
	pf_exec_release(e);
	dispose(s);
}
END_TEST

static _Atomic int listener_runs;
static void
count_listener(pf_signal *sig, void *data)
{
	(void)sig;
	(void)data;
	atomic_fetch_add_explicit(&listener_runs, 1, memory_order_relaxed);
}

/* #4: the timer is released at completion: nothing aborts at the
 * deadline. */
START_TEST(test_bug04_timer_released_after_completion)
{
	pf_scope *s = new_scope(2);
	atomic_store(&listener_runs, 0);
	int in = 3, out = 0;
	pf_exec_options o = { .timeout_ms = 200 };
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &double_flow, &in, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	pf_signal_listener l;
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(pf_exec_ctx(e)),
			     &l, count_listener, NULL), 0);
	ck_assert(timers_idle(s));
	sleep_ms(300); /* well past the deadline */
	ck_assert(!pf_ctx_aborted(pf_exec_ctx(e)));
	ck_assert_int_eq(atomic_load(&listener_runs), 0);
	ck_assert_int_eq(pf_signal_remove_listener(pf_ctx_signal(
			     pf_exec_ctx(e)), &l), 0);
	pf_exec_release(e);
	/* A standalone context ended early keeps no timer either once it is
	 * released. */
	pf_ctx *c;
	pf_ctx_options co = { .timeout_ms = 50 };
	ck_assert_int_eq(pf_scope_create_execution(s, &co, &c), 0);
	pf_ctx_release(c);
	ck_assert(timers_idle(s));
	dispose(s);
}
END_TEST

static size_t
children_of(pf_ctx *c)
{
	size_t n = 0;
	pf__spin_lock(&c->lock);
	for (pf__hnode *k = c->children.first; k != NULL; k = k->next)
		n++;
	pf__spin_unlock(&c->lock);
	return n;
}

/* #5: no per-child state accumulates on the parent (the C port keeps a
 * weak children list instead of listeners); LSan checks the rest. */
START_TEST(test_bug05_no_listener_accumulation)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int n = 10000;
	for (int i = 0; i < n; i++) {
		int out = 0;
		ck_assert_int_eq(double_flow_run(c, &i, &out, NULL), 0);
		ck_assert_int_eq(out, 2 * i);
		ck_assert_int_eq(pf_ctx_exec_fn(c, "fn", fn_noop, NULL), 0);
	}
	/* The last few may still be dropping the worker's reference. */
	int64_t end = now_ms() + 2000;
	while (children_of(c) != 0 && now_ms() < end)
		sleep_ms(1);
	ck_assert_uint_eq(children_of(c), 0);
	/* No listener was ever added to c: no cold block either. */
	ck_assert_ptr_null(pf__cold_of(c));
	/* Aborting the parent now walks nothing left over. */
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

typedef struct bug6_out {
	int seen_reason;
	int journal_rc;
	int child_rc;
} bug6_out;

static int
bug6_handler(pf_ctx *c, const int *in, bug6_out *out)
{
	(void)in;
	pf_exec *child;
	int ms = 10000;
	int rc = coop_flow_exec(c, &ms, NULL, &child);
	if (rc != 0)
		return rc;
	out->seen_reason = coop_sleep(c, 10000);
	out->child_rc = pf_exec_wait(child, NULL);
	pf_exec_release(child);
	/* A journal write after the timeout runs nothing. */
	int v = 0;
	pf_exec_options k = { .key = "after-timeout" };
	out->journal_rc = count_flow_run(c, &ms, &v, &k);
	return out->seen_reason;
}
PF_FLOW(bug6_flow, int, bug6_out, bug6_handler)

/* #6: a timeout aborts the handler's context (and its children)
 * observably, and the execution ends with PF_ETIMEDOUT. */
START_TEST(test_bug06_timeout_aborts_handler_context)
{
	pf_scope *s = new_scope(2);
	atomic_store(&probe_calls, 0);
	int in = 0;
	bug6_out out = { 0 };
	pf_exec_options o = { .timeout_ms = 100 };
	pf_exec *e;
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_scope_exec(s, &bug6_flow, &in, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), PF_ETIMEDOUT);
	ck_assert(now_ms() - t0 < 5000);
	ck_assert_int_eq(pf_exec_status(e), PF_CANCELLED);
	ck_assert_int_eq(pf_ctx_error(pf_exec_ctx(e), NULL), PF_ETIMEDOUT);
	pf_exec_release(e);
	dispose(s);
	ck_assert_int_eq(atomic_load(&probe_calls), 0);
}
END_TEST

static _Atomic int bug6_child_reason;
static int
bug6_record_handler(pf_ctx *c, const int *in, bug6_out *out)
{
	bug6_handler(c, in, out);
	atomic_store(&bug6_child_reason, out->child_rc);
	return out->seen_reason;
}
PF_FLOW(bug6_record_flow, int, bug6_out, bug6_record_handler)

/* #6 (children): the child of a timed-out execution sees the same reason;
 * the journal call made after the timeout returns it too. */
START_TEST(test_bug06_timeout_reaches_children)
{
	pf_scope *s = new_scope(2);
	atomic_store(&probe_calls, 0);
	int in = 0;
	pf_exec_options o = { .timeout_ms = 100 };
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &bug6_record_flow, &in, &o, &e), 0);
	ck_assert_int_eq(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	ck_assert_int_eq(atomic_load(&bug6_child_reason), PF_ETIMEDOUT);
	pf_exec_release(e);
	dispose(s);
	ck_assert_int_eq(atomic_load(&probe_calls), 0);
}
END_TEST

static int
ignore_abort_handler(pf_ctx *c, const int *in, int *out)
{
	atomic_store_explicit(&coop_started, 1, memory_order_release);
	while (!pf_ctx_aborted(c))
		sleep_ms(1);
	*out = *in; /* returns 0 although aborted */
	return 0;
}
PF_FLOW(ignore_abort_flow, int, int, ignore_abort_handler)

static int
unrelated_error_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	(void)out;
	while (!pf_ctx_aborted(c))
		sleep_ms(1);
	return E_TEST; /* an unrelated error while aborted */
}
PF_FLOW(unrelated_error_flow, int, int, unrelated_error_handler)

/* #7: abort and timeout are told apart by code; "cancelled" means
 * "returned an error while aborted" (the error becomes the reason). */
START_TEST(test_bug07_abort_and_timeout_distinguishable)
{
	pf_scope *s = new_scope(4);
	atomic_store(&coop_started, 0);
	int ms = 10000;
	pf_exec *a, *t;
	ck_assert_int_eq(pf_scope_exec(s, &coop_flow, &ms, NULL, &a), 0);
	pf_exec_options o = { .timeout_ms = 20 };
	ck_assert_int_eq(pf_scope_exec(s, &coop_flow, &ms, &o, &t), 0);
	ck_assert_int_eq(pf_exec_abort(a), 0);
	ck_assert_int_eq(pf_exec_wait(a, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_wait(t, NULL), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_throw_if_aborted(a), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_throw_if_aborted(t), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_ctx_throw_if_aborted(pf_exec_ctx(t)),
	    PF_ETIMEDOUT);
	ck_assert_int_eq(pf_signal_reason(pf_ctx_signal(pf_exec_ctx(a))),
	    PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(a), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_status(t), PF_CANCELLED);
	pf_exec_release(a);
	pf_exec_release(t);

	/* An unrelated error while aborted: cancelled with the reason. */
	pf_exec *u;
	ck_assert_int_eq(pf_scope_exec(s, &unrelated_error_flow, &ms, &o, &u),
	    0);
	ck_assert_int_eq(pf_exec_wait(u, NULL), PF_ETIMEDOUT);
	ck_assert_int_eq(pf_exec_status(u), PF_CANCELLED);
	pf_exec_release(u);

	/* An error while not aborted is a failure with its own code. */
	int out;
	pf_exec *f;
	ck_assert_int_eq(pf_scope_exec(s, &fail_flow, &ms, NULL, &f), 0);
	ck_assert_int_eq(pf_exec_wait(f, &out), E_FAIL);
	ck_assert_int_eq(pf_exec_status(f), PF_FAILED);
	ck_assert_int_eq(pf_exec_throw_if_aborted(f), 0);
	pf_exec_release(f);
	dispose(s);
}
END_TEST

typedef struct bug8_arg {
	int before, after, reason_after;
} bug8_arg;

static int
fn_abort_parent(pf_ctx *child, void *arg)
{
	bug8_arg *a = arg;
	a->before = pf_ctx_aborted(child);
	pf_ctx_abort(pf_ctx_parent(child));
	a->after = pf_ctx_aborted(child);
	a->reason_after = pf_signal_reason(pf_ctx_signal(child));
	return pf_ctx_throw_if_aborted(child);
}

/* #8: fn steps inherit the abort; a standalone context can be aborted,
 * its listeners run before pf_ctx_abort returns and its fd turns
 * readable. */
START_TEST(test_bug08_fn_steps_inherit_abort)
{
	pf_scope *s = new_scope(2);
	atomic_store(&listener_runs, 0);
	atomic_store(&probe_calls, 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pf_signal_listener l;
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(c), &l,
			     count_listener, NULL), 0);
	int fd = pf_signal_fd(pf_ctx_signal(c));
	ck_assert_int_ge(fd, 0);
	bug8_arg a = { -1, -1, 0 };
	ck_assert_int_eq(pf_ctx_exec_fn(c, "aborter", fn_abort_parent, &a),
	    PF_ECANCELED);
	ck_assert_int_eq(a.before, 0);
	ck_assert_int_eq(a.after, 1);
	ck_assert_int_eq(a.reason_after, PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&listener_runs), 1);
	struct pollfd p = { fd, POLLIN, 0 };
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert(pf_ctx_aborted(c));
	/* Later fn steps under it run nothing. */
	ck_assert_int_eq(pf_ctx_exec_fn(c, "later", fn_count, NULL),
	    PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&probe_calls), 0);
	/* A second abort changes nothing and reruns no listener. */
	ck_assert_int_eq(pf_ctx_abort(c), 0);
	ck_assert_int_eq(atomic_load(&listener_runs), 1);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

static _Atomic int bug9_finished;
static _Atomic int bug9_exec_rc;
static int
bug9_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	(void)out;
	atomic_store_explicit(&coop_started, 1, memory_order_release);
	int rc = coop_sleep(c, 10000);
	int one = 1;
	atomic_store(&bug9_exec_rc,
	    pf_scope_exec(pf_ctx_scope(c), &count_flow, &one, NULL, NULL));
	sleep_ms(20); /* dispose must still be waiting for us */
	atomic_store_explicit(&bug9_finished, 1, memory_order_release);
	return rc;
}
PF_FLOW(bug9_flow, int, int, bug9_handler)

/* #9: dispose cancels pending work, aborts running work and waits. */
START_TEST(test_bug09_dispose_cancels_and_waits)
{
	pf_scope *s = new_scope(1);
	atomic_store(&coop_started, 0);
	atomic_store(&bug9_finished, 0);
	atomic_store(&probe_calls, 0);
	int in = 0;
	pf_exec *run, *pend;
	ck_assert_int_eq(pf_scope_exec(s, &bug9_flow, &in, NULL, &run), 0);
	ck_assert(wait_flag(&coop_started, 5000));
	srec r = { 0 };
	pf_exec_options o = { .on_status = srec_cb, .on_status_data = &r };
	ck_assert_int_eq(pf_scope_exec(s, &count_flow, &in, &o, &pend), 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert(now_ms() - t0 < 5000);
	ck_assert_int_eq(atomic_load(&bug9_finished), 1);
	ck_assert_int_eq(atomic_load(&bug9_exec_rc), PF_ESHUTDOWN);
	ck_assert_int_eq(pf_exec_status(run), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(run, NULL), PF_ECANCELED);
	ck_assert_int_eq(pf_exec_status(pend), PF_CANCELLED);
	ck_assert_int_eq(pf_exec_wait(pend, NULL), PF_ECANCELED);
	ck_assert_int_eq(atomic_load(&probe_calls), 0);
	ck_assert_int_eq(atomic_load(&r.n), 2);
	ck_assert_int_eq(r.seq[0], PF_PENDING);
	ck_assert_int_eq(r.seq[1], PF_CANCELLED);
	ck_assert(pf_ctx_aborted(c));
	ck_assert_int_eq(pf_ctx_throw_if_aborted(c), PF_ECANCELED);
	pf_exec_release(run);
	pf_exec_release(pend);
	pf_ctx_release(c);
}
END_TEST

/* A call of the parallel tests: fails after fail_ms, or sleeps sleep_ms
 * cooperatively; records whether it saw isParallel. */
typedef struct pin {
	int fail_ms;  /* >= 0: fail after that long */
	int sleep_ms; /* else: sleep cooperatively that long */
} pin;

static _Atomic int pin_parallel_seen;
static int
pin_handler(pf_ctx *c, const pin *in, int *out)
{
	bool par = false;
	pf_ctx_get(c, &pf_flow_is_parallel_tag, &par);
	if (par)
		atomic_fetch_add_explicit(&pin_parallel_seen, 1,
		    memory_order_relaxed);
	if (in->fail_ms >= 0) {
		sleep_ms(in->fail_ms);
		return pf_ctx_fail(c, E_FAIL, "fail");
	}
	int rc = coop_sleep(c, in->sleep_ms);
	if (rc != 0)
		return rc;
	*out = in->sleep_ms;
	return 0;
}
PF_FLOW(pin_flow, pin, int, pin_handler)

/* #10: isParallel is set, parallel cancels siblings and counts failures. */
START_TEST(test_bug10_parallel_cancels_siblings_counts_failed)
{
	pf_scope *s = new_scope(4);
	atomic_store(&pin_parallel_seen, 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	pin in[3] = { { 10, 0 }, { -1, 10000 }, { -1, 10000 } };
	int out[3] = { -1, -1, -1 };
	pf_call calls[3];
	for (int i = 0; i < 3; i++)
		calls[i] = (pf_call){ &pin_flow, &in[i], &out[i], NULL, 0, 0, NULL };
	pf_parallel_stats st;
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_ctx_parallel(c, calls, 3, &st), E_FAIL);
	ck_assert(now_ms() - t0 < 5000);
	ck_assert_uint_eq(st.total, 3);
	ck_assert_uint_eq(st.succeeded, 0);
	ck_assert_uint_eq(st.failed, 3);
	ck_assert_int_eq(calls[0].status, PF_FAILED);
	ck_assert_int_eq(calls[0].result, E_FAIL);
	for (int i = 1; i < 3; i++) {
		/* A sibling that never started is cancelled too. */
		ck_assert_int_eq(calls[i].status, PF_CANCELLED);
		ck_assert_int_eq(calls[i].result, PF_ECANCELED);
	}
	ck_assert_int_ge(atomic_load(&pin_parallel_seen), 1);

	/* One that finished first stays completed and is counted. */
	atomic_store(&pin_parallel_seen, 0);
	pin in2[3] = { { -1, 0 }, { 200, 0 }, { -1, 10000 } };
	for (int i = 0; i < 3; i++)
		calls[i] = (pf_call){ &pin_flow, &in2[i], &out[i], NULL, 0, 0, NULL };
	ck_assert_int_eq(pf_ctx_parallel(c, calls, 3, &st), E_FAIL);
	ck_assert_int_eq(calls[0].status, PF_COMPLETED);
	ck_assert_int_eq(calls[1].status, PF_FAILED);
	ck_assert_int_eq(calls[2].status, PF_CANCELLED);
	ck_assert_uint_eq(st.total, 3);
	ck_assert_uint_eq(st.succeeded, 1);
	ck_assert_uint_eq(st.failed, 2);
	ck_assert_int_eq(atomic_load(&pin_parallel_seen), 3);
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

typedef struct agree_out {
	int bad; /* number of disagreements */
	int checked;
} agree_out;

static const char *scope_v = "scope";

/* Checks that get and find agree for the tags visible from c. */
static void
check_agree(const pf_ctx *c, agree_out *o)
{
	const pf_tag *tags[] = { &scope_tag, &exec_tag, &x_tag, &port_tag,
		&tag1, &pf_flow_name_tag, &pf_flow_depth_tag };
	for (size_t i = 0; i < PF_ARRAY_SIZE(tags); i++) {
		unsigned char g[16] = { 0 }, f[16] = { 0 };
		int rc = pf_ctx_get(c, tags[i], g);
		bool found = pf_ctx_find(c, tags[i], f);
		o->checked++;
		if ((rc == 0) != found || (found && memcmp(g, f, 16) != 0) ||
		    (rc != 0 && rc != PF_ENOENT))
			o->bad++;
	}
}

static int
fn_agree(pf_ctx *child, void *arg)
{
	check_agree(child, arg);
	return 0;
}

/* Outputs are private, uninitialised buffers: both handlers zero theirs. */
static int
agree_child_handler(pf_ctx *c, const int *in, agree_out *out)
{
	(void)in;
	*out = (agree_out){ 0, 0 };
	check_agree(c, out);
	return pf_ctx_exec_fn(c, "fn", fn_agree, out);
}
PF_FLOW(agree_child_flow, int, agree_out, agree_child_handler)

static int
agree_root_handler(pf_ctx *c, const int *in, agree_out *out)
{
	*out = (agree_out){ 0, 0 };
	check_agree(c, out);
	x_tag_set(c, "own");
	agree_out child = { 0 };
	int rc = agree_child_flow_run(c, in, &child, NULL);
	out->bad += child.bad;
	out->checked += child.checked;
	return rc;
}
PF_FLOW(agree_root_flow, int, agree_out, agree_root_handler)

/* #11: get and find agree everywhere, scope tags included. */
START_TEST(test_bug11_get_and_find_agree)
{
	pf_tag_value stv = scope_tag_value(&scope_v);
	pf_scope_options so = { .threads = 2, .tags = &stv, .n_tags = 1 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &so), 0);
	const char *ev = "exec";
	pf_tag_value etv = exec_tag_value(&ev);
	pf_exec_options o = { .tags = &etv, .n_tags = 1 };
	int in = 0;
	agree_out out = { 0 };
	ck_assert_int_eq(agree_root_flow_scope_run(s, &in, &out, &o), 0);
	ck_assert_int_eq(out.checked, 21);
	ck_assert_int_eq(out.bad, 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	agree_out so_out = { 0 };
	check_agree(c, &so_out);
	ck_assert_int_eq(so_out.bad, 0);
	const char *v = NULL;
	ck_assert(scope_tag_find(c, &v));
	ck_assert_str_eq(v, "scope");
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

/* Two tags with one label, and tags whose default is zero or absent. */
static const pf_tag dup_a = { "dup", sizeof(int), NULL };
static const pf_tag dup_b = { "dup", sizeof(int), NULL };
static const int zero_default = 0;
static const pf_tag zero_tag = { "zero", sizeof(int), &zero_default };
static const pf_tag nodefault_tag = { "none", sizeof(int), NULL };

/* #12: identity is the address; a zero default is a value, NULL is none. */
START_TEST(test_bug12_tag_identity_and_defaults)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	int one = 1, v = 99;
	ck_assert_int_eq(pf_ctx_set(c, &dup_a, &one), 0);
	ck_assert_int_eq(pf_ctx_get(c, &dup_a, &v), 0);
	ck_assert_int_eq(v, 1);
	v = 99;
	ck_assert_int_eq(pf_ctx_get(c, &dup_b, &v), PF_ENOENT);
	ck_assert(!pf_ctx_find(c, &dup_b, &v));
	ck_assert_int_eq(v, 99);
	ck_assert_int_eq(pf_ctx_get(c, &zero_tag, &v), 0);
	ck_assert_int_eq(v, 0);
	v = 99;
	ck_assert(pf_ctx_find(c, &zero_tag, &v));
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(pf_ctx_get(c, &nodefault_tag, &v), PF_ENOENT);
	ck_assert(!pf_ctx_find(c, &nodefault_tag, NULL));
	pf_ctx_release(c);
	dispose(s);
}
END_TEST

typedef struct bug13_out {
	int rc[6];
	int v[6];
} bug13_out;

static int
bug13_handler(pf_ctx *c, const int *in, bug13_out *out)
{
	(void)in;
	char k1[16], k2[16];
	snprintf(k1, sizeof(k1), "%s", "a:b:c");
	snprintf(k2, sizeof(k2), "%s%s", "a:b", ":c");
	pf_exec_options o1 = { .key = k1 }, o2 = { .key = k2 },
			o3 = { .key = "a:b" };
	int x = 1, y = 2;
	out->rc[0] = count_flow_run(c, &x, &out->v[0], &o1);
	out->rc[1] = count_flow_run(c, &y, &out->v[1], &o2); /* replay */
	out->rc[2] = count_flow_run(c, &y, &out->v[2], &o3); /* distinct */
	/* Another flow with the same key: refused, nothing runs (API.md
	 * Semantics 9). */
	out->rc[3] = double_flow_run(c, &y, &out->v[3], &o1);
	/* A cancelled entry is dropped, so the next call runs anew. */
	pf_exec_options kc = { .key = "cancel-me" };
	pf_exec *e;
	int ms = 10000;
	out->rc[4] = coop_flow_exec(c, &ms, &kc, &e);
	if (out->rc[4] == 0) {
		pf_exec_abort(e);
		out->rc[4] = pf_exec_wait(e, NULL);
		pf_exec_release(e);
	}
	int quick = 1;
	out->rc[5] = coop_flow_run(c, &quick, &out->v[5], &kc);
	return 0;
}
PF_FLOW(bug13_flow, int, bug13_out, bug13_handler)

/* #13 (and #18): journal keys compare by content, in full (':' is not
 * special), per parent; a cancelled entry is dropped. */
START_TEST(test_bug13_journal_key_by_content)
{
	pf_scope *s = tracked_scope();
	atomic_store(&probe_calls, 0);
	int in = 0;
	bug13_out out;
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(bug13_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(out.rc[0], 0);
	ck_assert_int_eq(out.v[0], 1);
	ck_assert_int_eq(out.rc[1], 0);
	ck_assert_int_eq(out.v[1], 1); /* the recorded result */
	ck_assert_int_eq(out.rc[2], 0);
	ck_assert_int_eq(out.v[2], 2);
	ck_assert_int_eq(atomic_load(&probe_calls), 2);
	ck_assert_int_eq(out.rc[3], PF_EINVAL);
	ck_assert_int_eq(out.v[3], 0);
	ck_assert_int_eq(out.rc[4], PF_ECANCELED);
	ck_assert_int_eq(out.rc[5], 0);
	ck_assert_int_eq(out.v[5], 1);
	/* A second root has its own journal. */
	ck_assert_int_eq(bug13_flow_scope_run(s, &in, &out, NULL), 0);
	ck_assert_int_eq(atomic_load(&probe_calls), 4);
	dispose(s);
	ck_assert_ptr_nonnull(find_op(PF_TARGET_FLOW, "a:b:c", NULL));
	ck_assert_ptr_nonnull(find_op(PF_TARGET_FLOW, "a:b", NULL));
	int runs = 0;
	for (int i = 0; i < track_n; i++)
		runs += track_v[i].has_key && strcmp(track_v[i].key, "a:b:c") ==
		    0;
	ck_assert_int_eq(runs, 2); /* once per root */
}
END_TEST

typedef struct bg_out {
	pf_exec *child;
} bg_out;

static srec bg_rec;
static int
gate_fail_handler(pf_ctx *c, const int *in, int *out)
{
	(void)in;
	(void)out;
	while (atomic_load_explicit(&gate, memory_order_acquire) == 0 &&
	    !pf_ctx_aborted(c))
		sleep_ms(1);
	return pf_ctx_fail(c, E_FAIL, "background failure");
}
PF_FLOW(gate_fail_flow, int, int, gate_fail_handler)

static int
spawn_background_handler(pf_ctx *c, const int *in, bg_out *out)
{
	pf_exec_options o = { .on_status = srec_cb, .on_status_data = &bg_rec };
	int rc = gate_fail_flow_exec(c, in, &o, &out->child);
	if (rc != 0)
		return rc;
	/* And one truly fire-and-forget. */
	return gate_fail_flow_exec(c, in, NULL, NULL);
}
PF_FLOW(spawn_background_flow, int, bg_out, spawn_background_handler)

/* #14 and #15: an un-awaited child delays nothing, its later failure does
 * not fail the root, and it is observable (status callback, error). */
START_TEST(test_bug15_root_not_delayed_by_unawaited_children)
{
	pf_scope *s = new_scope(4);
	atomic_store(&gate, 0);
	memset(&bg_rec, 0, sizeof(bg_rec));
	int in = 0;
	bg_out out = { NULL };
	pf_exec *root;
	int64_t t0 = now_ms();
	ck_assert_int_eq(pf_scope_exec(s, &spawn_background_flow, &in, NULL,
			     &root), 0);
	ck_assert_int_eq(pf_exec_wait(root, &out), 0);
	ck_assert(now_ms() - t0 < 2000);
	ck_assert_ptr_nonnull(out.child);
	ck_assert_int_lt(pf_exec_status(out.child), PF_COMPLETED);
	atomic_store(&gate, 1);
	ck_assert_int_eq(pf_exec_wait(out.child, NULL), E_FAIL);
	ck_assert_int_eq(pf_exec_status(out.child), PF_FAILED);
	ck_assert_int_eq(pf_exec_status(root), PF_COMPLETED);
	ck_assert_int_eq(pf_exec_try(root, NULL), 0);
	int n = atomic_load(&bg_rec.n);
	ck_assert_int_eq(bg_rec.seq[n - 1], PF_FAILED);
	ck_assert_int_eq(atomic_load(&bg_rec.error_in_terminal_cb), E_FAIL);
	pf_exec_release(out.child);
	pf_exec_release(root);
	dispose(s);
}
END_TEST

static int
fn_child_writes(pf_ctx *child, void *arg)
{
	(void)arg;
	return x_tag_set(child, "child");
}

/* #17: a child's writes never reach its parent; an aborted handler that
 * returns 0 completes (cancelled needs an error). */
START_TEST(test_bug17_documented_behaviour_holds)
{
	pf_scope *s = new_scope(2);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(pf_ctx_exec_fn(c, "w", fn_child_writes, NULL), 0);
	ck_assert(!x_tag_find(c, NULL));
	pf_ctx_release(c);
	int in = 5, out = 0;
	pf_exec *e;
	atomic_store(&coop_started, 0);
	ck_assert_int_eq(pf_scope_exec(s, &ignore_abort_flow, &in, NULL, &e),
	    0);
	ck_assert(wait_flag(&coop_started, 5000));
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(pf_exec_wait(e, &out), 0);
	ck_assert_int_eq(pf_exec_status(e), PF_COMPLETED);
	ck_assert_int_eq(out, 5);
	pf_exec_release(e);
	dispose(s);
}
END_TEST

/* ---------------------------------------------------------------- suite */

static Suite *
catalogue_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "execution_context", .test = test_context_create_execution_details },
		{ .tcase = "execution_context", .test = test_context_exec_child_parent_and_result },
		{ .tcase = "execution_context", .test = test_context_child_reads_parent_tag },
		{ .tcase = "execution_context", .test = test_context_child_shadows_parent_tag },
		{ .tcase = "execution_context", .test = test_context_completed_at_after_end },
		{ .tcase = "execution_context", .test = test_context_failing_child_records_error },
		{ .tcase = "execution_context", .test = test_context_fresh_not_aborted },
		{ .tcase = "execution_tracking", .test = test_tracking_distinct_execution_ids },
		{ .tcase = "execution_tracking", .test = test_tracking_status_pending_running_completed },
		{ .tcase = "execution_tracking", .test = test_tracking_abort_cancels },
		{ .tcase = "execution_tracking", .test = test_tracking_timeout_aborts },
		{ .tcase = "execution_tracking", .test = test_tracking_fast_flow_with_timeout_completes },
		{ .tcase = "execution_tracking", .test = test_tracking_child_flow_result },
		{ .tcase = "execution_tracking", .test = test_tracking_journaled_steps_in_order },
		{ .tcase = "execution_tracking", .test = test_tracking_child_error_caught_by_parent },
		{ .tcase = "execution_tracking", .test = test_tracking_pre_aborted_signal },
		{ .tcase = "execution_tracking", .test = test_tracking_not_aborted_completes },
		{ .tcase = "execution_tracking", .test = test_tracking_callback_tag },
		{ .tcase = "execution_tracking", .test = test_tracking_flow_meta_callback_tag },
		{ .tcase = "execution_tracking", .test = test_tracking_user_set_tag },
		{ .tcase = "execution_tracking", .test = test_tracking_user_map_tag_and_dispose },
		{ .tcase = "execution_tracking", .test = test_tracking_concurrent_executions },
		{ .tcase = "exec_timeout", .test = test_exec_timeout_child_rejects },
		{ .tcase = "exec_timer_cleanup", .test = test_timer_cleanup_child_success },
		{ .tcase = "exec_timer_cleanup", .test = test_timer_cleanup_child_failure_caught },
		{ .tcase = "exec_timer_cleanup", .test = test_timer_cleanup_journaled_child },
		{ .tcase = "abort_utils", .test = test_abort_utils_no_timeout },
		{ .tcase = "abort_utils", .test = test_abort_utils_timeout_aborts },
		{ .tcase = "abort_utils", .test = test_abort_utils_parent_abort_reaches_child },
		{ .tcase = "abort_utils", .test = test_abort_utils_parent_abort_with_child_timeout },
		{ .tcase = "flow_execution", .test = test_flow_handler_doubles_input },
		{ .tcase = "flow_execution", .test = test_flow_input_output_definition },
		{ .tcase = "flow_execution", .test = test_flow_ctx_exec_child },
		{ .tcase = "flow_execution", .test = test_flow_ctx_exec_journaled_child },
		{ .tcase = "flow_execution", .test = test_flow_ctx_exec_fn },
		{ .tcase = "flow_execution", .test = test_flow_journaled_child_invalid_input_rejected },
		{ .tcase = "flow_execution", .test = test_flow_child_invalid_input_rejected },
		{ .tcase = "flow_execution", .test = test_flow_journal_runs_child_once },
		{ .tcase = "flow_execution", .test = test_flow_journal_replays_failure },
		{ .tcase = "flow_execution", .test = test_flow_journaled_child_in_root },
		{ .tcase = "flow_execution", .test = test_flow_parallel_results_and_stats },
		{ .tcase = "flow_execution", .test = test_flow_parallel_settled_success_and_failure },
		{ .tcase = "flow_execution", .test = test_flow_child_timeout_fails_root },
		{ .tcase = "flow_execution", .test = test_flow_fn_timeout_rejects },
		{ .tcase = "flow_extensions", .test = test_flow_ext_root_flow_operation },
		{ .tcase = "flow_extensions", .test = test_flow_ext_journaled_child_operation },
		{ .tcase = "flow_extensions", .test = test_flow_ext_child_operation },
		{ .tcase = "flow_extensions", .test = test_flow_ext_fn_operation },
		{ .tcase = "flow_extensions", .test = test_flow_ext_parallel_operation },
		{ .tcase = "flow_extensions", .test = test_flow_ext_operation_variants },
		{ .tcase = "flow_extensions", .test = test_flow_ext_order_outermost_first },
		{ .tcase = "flow_extensions", .test = test_flow_ext_context_depth },
		{ .tcase = "flow_extensions", .test = test_flow_ext_child_ctx_scope },
		{ .tcase = "flow_extensions", .test = test_flow_ext_parent_value_visible_in_child },
		{ .tcase = "flow_extensions", .test = test_flow_ext_child_flow_meta },
		{ .tcase = "flow_extensions", .test = test_flow_ext_parallel_completes },
		{ .tcase = "flow_extensions", .test = test_flow_ext_scope_tag },
		{ .tcase = "flow_extensions", .test = test_flow_ext_execution_tag },
		{ .tcase = "flow_extensions", .test = test_flow_ext_execution_tags_isolated },
		{ .tcase = "flow_extensions", .test = test_flow_ext_root_tag_seen_by_child },
		{ .tcase = "flow_extensions", .test = test_flow_ext_dispose_on_success },
		{ .tcase = "flow_extensions", .test = test_flow_ext_dispose_on_failure },
		{ .tcase = "flow_extensions", .test = test_flow_ext_dispose_only_with_scope },
		{ .tcase = "extensions", .test = test_extensions_records_journaled_steps },
		{ .tcase = "extensions", .test = test_extensions_records_sub_flows },
		{ .tcase = "extensions", .test = test_extensions_parallel_with_fn_steps },
		{ .tcase = "extensions", .test = test_extensions_failing_fn_recorded },
		{ .tcase = "extensions", .test = test_extensions_order_composition },
		{ .tcase = "parallel_settled", .test = test_settled_fulfilled_all },
		{ .tcase = "parallel_settled", .test = test_settled_fulfilled_skips_failures },
		{ .tcase = "parallel_settled", .test = test_settled_rejected_in_order },
		{ .tcase = "parallel_settled", .test = test_settled_rejected_single },
		{ .tcase = "parallel_settled", .test = test_settled_partition },
		{ .tcase = "parallel_settled", .test = test_settled_first_fulfilled },
		{ .tcase = "parallel_settled", .test = test_settled_first_fulfilled_after_failure },
		{ .tcase = "parallel_settled", .test = test_settled_first_rejected },
		{ .tcase = "parallel_settled", .test = test_settled_first_rejected_among_successes },
		{ .tcase = "parallel_settled", .test = test_settled_find_fulfilled },
		{ .tcase = "parallel_settled", .test = test_settled_find_fulfilled_skips_failures },
		{ .tcase = "parallel_settled", .test = test_settled_map_fulfilled },
		{ .tcase = "parallel_settled", .test = test_settled_map_fulfilled_skips_failures },
		{ .tcase = "parallel_settled", .test = test_settled_calls_keep_their_positions },
		{ .tcase = "parallel_settled", .test = test_settled_all_fulfilled },
		{ .tcase = "parallel_settled", .test = test_settled_all_fulfilled_reports_one_of_two },
		{ .tcase = "parallel_settled", .test = test_settled_all_fulfilled_reports_counts },
		{ .tcase = "parallel_settled", .test = test_settled_root_executions_partition },
		{ .tcase = "parallel_settled", .test = test_settled_empty },
		{ .tcase = "parallel_settled", .test = test_settled_chained_filter_sum },
		{ .tcase = "tag", .test = test_tag_context_store },
		{ .tcase = "tag", .test = test_tag_tag_value_array },
		{ .tcase = "tag", .test = test_tag_scope_container },
		{ .tcase = "tag", .test = test_tag_without_default },
		{ .tcase = "tag", .test = test_tag_with_default },
		{ .tcase = "tag", .test = test_tag_tagged_value },
		{ .tcase = "tag", .test = test_tag_tagged_value_explicit },
		{ .tcase = "tag", .test = test_tag_inject_then_extract },
		{ .tcase = "tag", .test = test_tag_label_kept },
		{ .tcase = "js_bugs_fixed", .test = test_bug01_status_set_with_settlement, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug02_pending_observable_late_subscriber, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug03_callback_cannot_change_status, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug04_timer_released_after_completion, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug05_no_listener_accumulation, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug06_timeout_aborts_handler_context, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug06_timeout_reaches_children, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug07_abort_and_timeout_distinguishable, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug08_fn_steps_inherit_abort, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug09_dispose_cancels_and_waits, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug10_parallel_cancels_siblings_counts_failed, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug11_get_and_find_agree, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug12_tag_identity_and_defaults, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug13_journal_key_by_content, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug15_root_not_delayed_by_unawaited_children, .timeout = 60 },
		{ .tcase = "js_bugs_fixed", .test = test_bug17_documented_behaviour_holds, .timeout = 60 },
	};
	return pf_test_suite("catalogue", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(catalogue_suite());
}
