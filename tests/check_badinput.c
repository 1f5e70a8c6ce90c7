/*
 * check_badinput.c: every public function of pumped.h called with NULL and
 * out-of-range arguments (issue 5, "Bad input"; API.md Semantics item 12).
 *
 * One table row per (function, bad argument).  Each row runs in a fresh
 * environment (a one-worker scope, a standalone context, a finished
 * execution, a standalone context of a scope already disposed), must
 * return the code documented in pumped.h, must write no out-parameter and
 * start nothing, and must leave the environment working.  Results that are
 * not codes are folded into a long: a pointer compares as 0 when NULL, a
 * bool as 0 when false, a string as 0 when it equals the documented text.
 *
 * Handlers and callbacks only count (atomics); assertions run on the test
 * thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pumped.h>

#include "testlib.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BADINPUT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(BADINPUT_ASAN)
#define BADINPUT_ASAN 1
#endif
#ifdef BADINPUT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* ------------------------------------------------------------ fixtures */

static atomic_int runs;       /* handlers and fn steps that ran */
static atomic_int callbacks;  /* status callbacks and listeners */
static atomic_int inits;      /* extension inits                */

static int
count_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	atomic_fetch_add(&runs, 1);
	*(int *)out = 1;
	return 0;
}

static const pf_flow int_flow = { "int", count_handler, sizeof(int),
	sizeof(int) };
static const pf_flow no_handler_flow = { "no-handler", NULL, 0, 0 };

static int
count_step(pf_ctx *c, void *arg)
{
	(void)c;
	(void)arg;
	atomic_fetch_add(&runs, 1);
	return 0;
}

static void
count_status(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)st;
	(void)data;
	atomic_fetch_add(&callbacks, 1);
}

static void
count_listener(pf_signal *s, void *data)
{
	(void)s;
	(void)data;
	atomic_fetch_add(&callbacks, 1);
}

static int
count_init(pf_scope *s, void *state)
{
	(void)s;
	(void)state;
	atomic_fetch_add(&inits, 1);
	return 0;
}

static const pf_extension ext = { "counting", count_init, NULL, NULL, NULL };

PF_TAG(tag_int, int, "badinput.int");
static const pf_tag tag_size0 = { "badinput.size0", 0, NULL };
static const int one = 1;

static const pf_tag_value tv_null_tag[1] = { { NULL, &one } };
static const pf_tag_value tv_null_value[1] = { { &tag_int, NULL } };
static const pf_tag_value tv_size0[1] = { { &tag_size0, &one } };
/* A valid first tag, copied before the second is found bad. */
static const pf_tag_value tv_second_bad[2] = { { &tag_int, &one },
	{ &tag_int, NULL } };

struct env {
	pf_scope *s;
	pf_ctx *c;       /* standalone context of s            */
	pf_exec *done;   /* a finished execution of s          */
	pf_ctx *dead;    /* standalone context of a disposed scope */
	pf_signal_listener l;
	int in, out;
	pf_call calls[2];
};

static void
env_open(struct env *v)
{
	memset(v, 0, sizeof(*v));
	atomic_store(&runs, 0);
	atomic_store(&callbacks, 0);
	atomic_store(&inits, 0);
	pf_scope_options o = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&v->s, &o), 0);
	ck_assert_int_eq(pf_scope_create_execution(v->s, NULL, &v->c), 0);
	v->in = 1;
	ck_assert_int_eq(pf_scope_exec(v->s, &int_flow, &v->in, NULL, &v->done),
	    0);
	ck_assert_int_eq(pf_exec_wait(v->done, NULL), 0);
	pf_scope *gone;
	ck_assert_int_eq(pf_scope_create(&gone, &o), 0);
	ck_assert_int_eq(pf_scope_create_execution(gone, NULL, &v->dead), 0);
	ck_assert_int_eq(pf_scope_dispose(gone), 0);
	for (int i = 0; i < 2; i++)
		v->calls[i] = (pf_call){ &int_flow, &v->in, &v->out, NULL, 0,
			PF_PENDING, NULL };
	/* The environment's own runs are not the row's. */
	atomic_store(&runs, 0);
}

static void
env_close(struct env *v)
{
	pf_exec_release(v->done);
	pf_ctx_release(v->c);
	pf_ctx_release(v->dead);
	ck_assert_int_eq(pf_scope_dispose(v->s), 0);
}

/* An address no out-parameter can legitimately receive. */
static char sentinel_byte;
#define SENTINEL ((void *)&sentinel_byte)

/* Folded results (see the top of the file). */
#define IS_NULL(p) ((p) == NULL ? 0L : 1L)
#define IS_FALSE(b) ((b) ? 1L : 0L)
#define OUT_WRITTEN 1L /* a failing call wrote its out-parameter */

static long
str_is(const char *got, const char *want)
{
	return got != NULL && strcmp(got, want) == 0 ? 0L : 1L;
}

/* ---------------------------------------------------------------- rows */

#define ROW_FN(id) static long id(struct env *v)

/* scope */
ROW_FN(create_null_out) { (void)v; return pf_scope_create(NULL, NULL); }

static long
create_with(const pf_scope_options *o)
{
	pf_scope *s = SENTINEL;
	int rc = pf_scope_create(&s, o);
	if (rc == 0)
		pf_scope_dispose(s);
	if (s != SENTINEL && rc != 0)
		return OUT_WRITTEN;
	/* Options are checked before any extension is initialised. */
	if (atomic_load(&inits) != 0 && rc != 0)
		return 2;
	return rc;
}

ROW_FN(create_threads_1025)
{
	(void)v;
	pf_scope_options o = { .threads = 1025 };
	return create_with(&o);
}
ROW_FN(create_threads_max)
{
	(void)v;
	pf_scope_options o = { .threads = UINT_MAX };
	return create_with(&o);
}
ROW_FN(create_ext_array_null)
{
	(void)v;
	pf_scope_options o = { .threads = 1, .n_extensions = 1 };
	return create_with(&o);
}
ROW_FN(create_ext_element_null)
{
	(void)v;
	const pf_extension *list[2] = { &ext, NULL };
	pf_scope_options o = { .threads = 1, .extensions = list,
		.n_extensions = 2 };
	return create_with(&o);
}
ROW_FN(create_tags_array_null)
{
	(void)v;
	pf_scope_options o = { .threads = 1, .n_tags = 1 };
	return create_with(&o);
}
ROW_FN(create_tag_null)
{
	(void)v;
	pf_scope_options o = { .threads = 1, .tags = tv_null_tag, .n_tags = 1 };
	return create_with(&o);
}
ROW_FN(create_tag_value_null)
{
	(void)v;
	pf_scope_options o = { .threads = 1, .tags = tv_null_value,
		.n_tags = 1 };
	return create_with(&o);
}
ROW_FN(create_tag_size0)
{
	(void)v;
	pf_scope_options o = { .threads = 1, .tags = tv_size0, .n_tags = 1 };
	return create_with(&o);
}
ROW_FN(dispose_null) { (void)v; return pf_scope_dispose(NULL); }
ROW_FN(threads_null) { (void)v; return (long)pf_scope_threads(NULL); }
ROW_FN(use_null_scope) { (void)v; return pf_scope_use(NULL, &ext); }
ROW_FN(use_null_ext) { return pf_scope_use(v->s, NULL); }

static int
dispose_self_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)out;
	return pf_scope_dispose((pf_scope *)in);
}

static const pf_flow dispose_self_flow = { "dispose-self",
	dispose_self_handler, 0, 0 };

ROW_FN(dispose_from_own_handler)
{
	return pf_scope_run(v->s, &dispose_self_flow, v->s, NULL, NULL);
}

/* root executions */
static long
exec_with(struct env *v, pf_scope *s, const pf_flow *f, const void *in,
    const pf_exec_options *o)
{
	pf_exec *e = SENTINEL;
	int rc = pf_scope_exec(s, f, in, o, &e);
	if (rc == 0) {
		pf_exec_wait(e, NULL);
		pf_exec_release(e);
	} else if (e != SENTINEL) {
		return OUT_WRITTEN;
	}
	(void)v;
	return rc;
}

ROW_FN(exec_null_scope) { return exec_with(v, NULL, &int_flow, &v->in, NULL); }
ROW_FN(exec_null_flow) { return exec_with(v, v->s, NULL, &v->in, NULL); }
ROW_FN(exec_null_handler)
{
	return exec_with(v, v->s, &no_handler_flow, NULL, NULL);
}
ROW_FN(exec_null_input) { return exec_with(v, v->s, &int_flow, NULL, NULL); }
ROW_FN(exec_tags_array_null)
{
	pf_exec_options o = { .n_tags = 1, .on_status = count_status };
	return exec_with(v, v->s, &int_flow, &v->in, &o);
}
ROW_FN(exec_tag_null)
{
	pf_exec_options o = { .tags = tv_null_tag, .n_tags = 1,
		.on_status = count_status };
	return exec_with(v, v->s, &int_flow, &v->in, &o);
}
ROW_FN(exec_tag_value_null)
{
	pf_exec_options o = { .tags = tv_null_value, .n_tags = 1,
		.on_status = count_status };
	return exec_with(v, v->s, &int_flow, &v->in, &o);
}
ROW_FN(exec_tag_size0)
{
	pf_exec_options o = { .tags = tv_size0, .n_tags = 1,
		.on_status = count_status };
	return exec_with(v, v->s, &int_flow, &v->in, &o);
}
ROW_FN(exec_second_tag_bad)
{
	pf_exec_options o = { .name = "copied", .tags = tv_second_bad,
		.n_tags = 2, .on_status = count_status };
	return exec_with(v, v->s, &int_flow, &v->in, &o);
}
ROW_FN(exec_root_key)
{
	pf_exec_options o = { .key = "k", .on_status = count_status };
	return exec_with(v, v->s, &int_flow, &v->in, &o);
}
ROW_FN(run_null_scope)
{
	return pf_scope_run(NULL, &int_flow, &v->in, &v->out, NULL);
}
ROW_FN(run_null_flow)
{
	return pf_scope_run(v->s, NULL, &v->in, &v->out, NULL);
}
ROW_FN(run_null_input)
{
	return pf_scope_run(v->s, &int_flow, NULL, &v->out, NULL);
}
ROW_FN(run_root_key)
{
	pf_exec_options o = { .key = "k" };
	return pf_scope_run(v->s, &int_flow, &v->in, &v->out, &o);
}

/* execution handles */
ROW_FN(exec_id_null) { (void)v; return IS_NULL(pf_exec_id(NULL)); }
ROW_FN(exec_flow_name_null) { (void)v; return IS_NULL(pf_exec_flow_name(NULL)); }
ROW_FN(exec_status_null) { (void)v; return (long)pf_exec_status(NULL); }
ROW_FN(exec_ctx_null) { (void)v; return IS_NULL(pf_exec_ctx(NULL)); }
ROW_FN(exec_abort_null) { (void)v; return pf_exec_abort(NULL); }
ROW_FN(exec_throw_null) { (void)v; return pf_exec_throw_if_aborted(NULL); }
ROW_FN(exec_wait_null) { return pf_exec_wait(NULL, &v->out); }
ROW_FN(exec_wait_for_null) { return pf_exec_wait_for(NULL, &v->out, 10); }
ROW_FN(exec_try_null) { return pf_exec_try(NULL, &v->out); }
ROW_FN(on_status_null_exec)
{
	(void)v;
	return pf_exec_on_status(NULL, count_status, NULL);
}
ROW_FN(on_status_null_fn) { return pf_exec_on_status(v->done, NULL, NULL); }
ROW_FN(off_status_null_exec)
{
	(void)v;
	return pf_exec_off_status(NULL, count_status, NULL);
}
ROW_FN(off_status_null_fn) { return pf_exec_off_status(v->done, NULL, NULL); }
ROW_FN(off_status_never_added)
{
	return pf_exec_off_status(v->done, count_status, v);
}
ROW_FN(off_status_other_data)
{
	/* Subscribed with data v on a finished execution: called at once
	 * and not kept, so nothing is there to remove. */
	int rc = pf_exec_on_status(v->done, count_status, v);
	if (rc != 0)
		return rc;
	return pf_exec_off_status(v->done, count_status, &v->in);
}
ROW_FN(exec_retain_null) { (void)v; return IS_NULL(pf_exec_retain(NULL)); }
ROW_FN(exec_release_null)
{
	(void)v;
	pf_exec_release(NULL);
	return 0;
}

/* standalone contexts */
static long
create_execution_with(pf_scope *s, const pf_ctx_options *o)
{
	pf_ctx *c = SENTINEL;
	int rc = pf_scope_create_execution(s, o, &c);
	if (rc == 0)
		pf_ctx_release(c);
	else if (c != SENTINEL)
		return OUT_WRITTEN;
	return rc;
}

ROW_FN(create_execution_null_scope)
{
	(void)v;
	return create_execution_with(NULL, NULL);
}
ROW_FN(create_execution_null_out)
{
	return pf_scope_create_execution(v->s, NULL, NULL);
}
ROW_FN(create_execution_tags_array_null)
{
	pf_ctx_options o = { .n_tags = 1 };
	return create_execution_with(v->s, &o);
}
ROW_FN(create_execution_tag_null)
{
	pf_ctx_options o = { .tags = tv_null_tag, .n_tags = 1 };
	return create_execution_with(v->s, &o);
}
ROW_FN(create_execution_tag_value_null)
{
	pf_ctx_options o = { .tags = tv_null_value, .n_tags = 1 };
	return create_execution_with(v->s, &o);
}
ROW_FN(create_execution_tag_size0)
{
	pf_ctx_options o = { .tags = tv_size0, .n_tags = 1 };
	return create_execution_with(v->s, &o);
}
ROW_FN(ctx_retain_null) { (void)v; return IS_NULL(pf_ctx_retain(NULL)); }
ROW_FN(ctx_release_null)
{
	(void)v;
	pf_ctx_release(NULL);
	return 0;
}
ROW_FN(ctx_id_null) { (void)v; return IS_NULL(pf_ctx_id(NULL)); }
ROW_FN(ctx_name_null) { (void)v; return IS_NULL(pf_ctx_name(NULL)); }
ROW_FN(ctx_parent_null) { (void)v; return IS_NULL(pf_ctx_parent(NULL)); }
ROW_FN(ctx_scope_null) { (void)v; return IS_NULL(pf_ctx_scope(NULL)); }
ROW_FN(ctx_created_null) { (void)v; return (long)pf_ctx_created_at(NULL); }
ROW_FN(ctx_started_null) { (void)v; return (long)pf_ctx_started_at(NULL); }
ROW_FN(ctx_completed_null)
{
	(void)v;
	return (long)pf_ctx_completed_at(NULL);
}
ROW_FN(ctx_error_null)
{
	const char *m = SENTINEL;
	int rc = pf_ctx_error(NULL, &m);
	(void)v;
	return m != SENTINEL ? OUT_WRITTEN : rc;
}
ROW_FN(ctx_error_null_message) { return pf_ctx_error(v->c, NULL); }
ROW_FN(ctx_metadata_null) { (void)v; return IS_NULL(pf_ctx_metadata(NULL)); }
ROW_FN(ctx_end_null) { (void)v; return pf_ctx_end(NULL); }
ROW_FN(ctx_abort_null) { (void)v; return pf_ctx_abort(NULL); }
ROW_FN(ctx_aborted_null) { (void)v; return IS_FALSE(pf_ctx_aborted(NULL)); }
ROW_FN(ctx_throw_null) { (void)v; return pf_ctx_throw_if_aborted(NULL); }
ROW_FN(ctx_fail_null)
{
	(void)v;
	/* Documented "returns code", so that `return pf_ctx_fail(...)` in a
	 * handler keeps its code even on a NULL context. */
	return pf_ctx_fail(NULL, PF_EUSER - 1, "x") == PF_EUSER - 1 ? 0 : 1;
}
ROW_FN(ctx_fail_null_fmt)
{
	int rc = pf_ctx_fail(v->c, PF_EUSER - 2, NULL);
	const char *m = NULL;
	if (rc != PF_EUSER - 2 || pf_ctx_error(v->c, &m) != PF_EUSER - 2 ||
	    m == NULL)
		return 1;
	return 0;
}

/* child work */
ROW_FN(exec_fn_null_parent)
{
	(void)v;
	return pf_ctx_exec_fn(NULL, "s", count_step, NULL);
}
ROW_FN(exec_fn_null_fn) { return pf_ctx_exec_fn(v->c, "s", NULL, NULL); }

static long
child_with(struct env *v, pf_ctx *parent, const pf_flow *f, const void *in,
    const pf_exec_options *o)
{
	pf_exec *e = SENTINEL;
	int rc = pf_ctx_exec(parent, f, in, o, &e);
	if (rc == 0) {
		pf_exec_wait(e, NULL);
		pf_exec_release(e);
	} else if (e != SENTINEL) {
		return OUT_WRITTEN;
	}
	(void)v;
	return rc;
}

ROW_FN(ctx_exec_null_parent)
{
	return child_with(v, NULL, &int_flow, &v->in, NULL);
}
ROW_FN(ctx_exec_null_flow) { return child_with(v, v->c, NULL, &v->in, NULL); }
ROW_FN(ctx_exec_null_handler)
{
	return child_with(v, v->c, &no_handler_flow, NULL, NULL);
}
ROW_FN(ctx_exec_null_input)
{
	return child_with(v, v->c, &int_flow, NULL, NULL);
}
ROW_FN(ctx_exec_tags_array_null)
{
	pf_exec_options o = { .n_tags = 2, .on_status = count_status };
	return child_with(v, v->c, &int_flow, &v->in, &o);
}
ROW_FN(ctx_exec_tag_null)
{
	pf_exec_options o = { .tags = tv_null_tag, .n_tags = 1,
		.on_status = count_status };
	return child_with(v, v->c, &int_flow, &v->in, &o);
}
ROW_FN(ctx_exec_tag_value_null)
{
	pf_exec_options o = { .tags = tv_null_value, .n_tags = 1,
		.on_status = count_status, .key = "k" };
	return child_with(v, v->c, &int_flow, &v->in, &o);
}
ROW_FN(ctx_exec_tag_size0)
{
	pf_exec_options o = { .tags = tv_size0, .n_tags = 1,
		.on_status = count_status };
	return child_with(v, v->c, &int_flow, &v->in, &o);
}
ROW_FN(ctx_exec_second_tag_bad_keyed)
{
	/* Refused after the journal entry was claimed: the entry must go,
	 * so the same key then runs. */
	pf_exec_options o = { .name = "copied", .tags = tv_second_bad,
		.n_tags = 2, .on_status = count_status, .key = "k" };
	long rc = child_with(v, v->c, &int_flow, &v->in, &o);
	pf_exec_options good = { .key = "k" };
	if (pf_ctx_run(v->c, &int_flow, &v->in, &v->out, &good) != 0 ||
	    atomic_load(&runs) != 1)
		return 4;
	return rc;
}
ROW_FN(ctx_run_null_parent)
{
	return pf_ctx_run(NULL, &int_flow, &v->in, &v->out, NULL);
}
ROW_FN(ctx_run_null_flow)
{
	return pf_ctx_run(v->c, NULL, &v->in, &v->out, NULL);
}
ROW_FN(ctx_run_null_input)
{
	return pf_ctx_run(v->c, &int_flow, NULL, &v->out, NULL);
}
ROW_FN(ctx_run_tags_array_null)
{
	pf_exec_options o = { .n_tags = 1, .key = "k" };
	return pf_ctx_run(v->c, &int_flow, &v->in, &v->out, &o);
}

/* parallel */
ROW_FN(parallel_null_ctx)
{
	return pf_ctx_parallel(NULL, v->calls, 2, NULL);
}
ROW_FN(parallel_null_calls) { return pf_ctx_parallel(v->c, NULL, 2, NULL); }
ROW_FN(parallel_null_calls_n0)
{
	pf_parallel_stats st = { 9, 9, 9, 9 };
	int rc = pf_ctx_parallel(v->c, NULL, 0, &st);
	if (rc == 0 && (st.total != 0 || st.succeeded != 0 || st.failed != 0))
		return 1;
	return rc;
}
ROW_FN(parallel_call_null_flow)
{
	v->calls[1].flow = NULL;
	return pf_ctx_parallel(v->c, v->calls, 2, NULL);
}
ROW_FN(parallel_call_null_handler)
{
	v->calls[1].flow = &no_handler_flow;
	return pf_ctx_parallel(v->c, v->calls, 2, NULL);
}
ROW_FN(parallel_call_null_input)
{
	v->calls[1].input = NULL;
	return pf_ctx_parallel(v->c, v->calls, 2, NULL);
}
ROW_FN(parallel_call_tags_array_null)
{
	pf_exec_options o = { .n_tags = 1 };
	v->calls[1].opts = &o;
	return pf_ctx_parallel(v->c, v->calls, 2, NULL);
}
ROW_FN(settled_null_ctx)
{
	return pf_ctx_parallel_settled(NULL, v->calls, 2, NULL);
}
ROW_FN(settled_null_calls)
{
	return pf_ctx_parallel_settled(v->c, NULL, 2, NULL);
}
ROW_FN(settled_call_null_flow)
{
	v->calls[0].flow = NULL;
	return pf_ctx_parallel_settled(v->c, v->calls, 2, NULL);
}
ROW_FN(settled_call_null_input)
{
	v->calls[0].input = NULL;
	return pf_ctx_parallel_settled(v->c, v->calls, 2, NULL);
}

/* tags */
ROW_FN(set_null_ctx) { (void)v; return pf_ctx_set(NULL, &tag_int, &one); }
ROW_FN(set_null_tag) { return pf_ctx_set(v->c, NULL, &one); }
ROW_FN(set_null_value) { return pf_ctx_set(v->c, &tag_int, NULL); }
ROW_FN(set_size0) { return pf_ctx_set(v->c, &tag_size0, &one); }
ROW_FN(get_null_ctx)
{
	int out = 5;
	(void)v;
	int rc = pf_ctx_get(NULL, &tag_int, &out);
	return out != 5 ? OUT_WRITTEN : rc;
}
ROW_FN(get_null_tag)
{
	int out = 5;
	int rc = pf_ctx_get(v->c, NULL, &out);
	return out != 5 ? OUT_WRITTEN : rc;
}
ROW_FN(get_null_out) { return pf_ctx_get(v->c, &tag_int, NULL); }
ROW_FN(get_size0)
{
	int out = 5;
	int rc = pf_ctx_get(v->c, &tag_size0, &out);
	return out != 5 ? OUT_WRITTEN : rc;
}
ROW_FN(get_absent) { return pf_ctx_get(v->c, &tag_int, &v->out); }
ROW_FN(find_null_ctx)
{
	(void)v;
	return IS_FALSE(pf_ctx_find(NULL, &tag_int, NULL));
}
ROW_FN(find_null_tag) { return IS_FALSE(pf_ctx_find(v->c, NULL, NULL)); }
ROW_FN(find_size0) { return IS_FALSE(pf_ctx_find(v->c, &tag_size0, NULL)); }

/* signal */
ROW_FN(signal_null) { (void)v; return IS_NULL(pf_ctx_signal(NULL)); }
ROW_FN(signal_aborted_null) { (void)v; return IS_FALSE(pf_signal_aborted(NULL)); }
ROW_FN(signal_reason_null) { (void)v; return pf_signal_reason(NULL); }
ROW_FN(signal_fd_null) { (void)v; return pf_signal_fd(NULL); }
ROW_FN(listener_add_null_signal)
{
	return pf_signal_add_listener(NULL, &v->l, count_listener, NULL);
}
ROW_FN(listener_add_null_listener)
{
	return pf_signal_add_listener(pf_ctx_signal(v->c), NULL,
	    count_listener, NULL);
}
ROW_FN(listener_add_null_fn)
{
	return pf_signal_add_listener(pf_ctx_signal(v->c), &v->l, NULL, NULL);
}
ROW_FN(listener_add_twice)
{
	pf_signal *s = pf_ctx_signal(v->c);
	int rc = pf_signal_add_listener(s, &v->l, count_listener, NULL);
	if (rc != 0)
		return rc;
	rc = pf_signal_add_listener(s, &v->l, count_listener, NULL);
	/* Still added once: one abort, one call. */
	pf_ctx_abort(v->c);
	if (atomic_load(&callbacks) != 1)
		return 3;
	return rc;
}
ROW_FN(listener_remove_null_signal)
{
	return pf_signal_remove_listener(NULL, &v->l);
}
ROW_FN(listener_remove_null_listener)
{
	return pf_signal_remove_listener(pf_ctx_signal(v->c), NULL);
}

/* names */
ROW_FN(status_name_negative)
{
	(void)v;
	return str_is(pf_status_name((pf_status)-1), "unknown");
}
ROW_FN(status_name_past_end)
{
	(void)v;
	return str_is(pf_status_name((pf_status)(PF_CANCELLED + 1)), "unknown");
}
ROW_FN(status_name_int_max)
{
	(void)v;
	return str_is(pf_status_name((pf_status)INT_MAX), "unknown");
}
ROW_FN(strerror_positive)
{
	(void)v;
	return str_is(pf_strerror(1), "unknown error");
}
ROW_FN(strerror_unknown_negative)
{
	(void)v;
	return str_is(pf_strerror(-9999), "unknown error");
}
ROW_FN(strerror_int_max)
{
	(void)v;
	return str_is(pf_strerror(INT_MAX), "unknown error");
}
ROW_FN(strerror_int_min)
{
	(void)v;
	return str_is(pf_strerror(INT_MIN), "user error");
}
ROW_FN(strerror_user)
{
	(void)v;
	return str_is(pf_strerror(PF_EUSER), "user error");
}
ROW_FN(strerror_zero)
{
	(void)v;
	return str_is(pf_strerror(0), "success");
}
ROW_FN(next_call_null) { (void)v; return pf_next_call(NULL); }

/* new work on a disposed scope, through a context that outlived it */
ROW_FN(dead_ctx_exec) { return child_with(v, v->dead, &int_flow, &v->in, NULL); }
ROW_FN(dead_ctx_run)
{
	return pf_ctx_run(v->dead, &int_flow, &v->in, &v->out, NULL);
}
ROW_FN(dead_ctx_exec_keyed)
{
	pf_exec_options o = { .key = "k", .on_status = count_status };
	return child_with(v, v->dead, &int_flow, &v->in, &o);
}
ROW_FN(dead_ctx_exec_fn)
{
	return pf_ctx_exec_fn(v->dead, "s", count_step, NULL);
}
ROW_FN(dead_ctx_parallel)
{
	return pf_ctx_parallel(v->dead, v->calls, 2, NULL);
}
ROW_FN(dead_ctx_parallel_settled)
{
	return pf_ctx_parallel_settled(v->dead, v->calls, 2, NULL);
}

struct row {
	const char *fn;  /* the function called          */
	const char *bad; /* what is wrong with the call   */
	long (*call)(struct env *v);
	long want;       /* documented result, folded     */
};

#define R_NULL 0L  /* a NULL pointer   */
#define R_FALSE 0L /* false            */
#define R_TEXT 0L  /* the documented string */

static const struct row rows[] = {
	{ "pf_scope_create", "out NULL", create_null_out, PF_EINVAL },
	{ "pf_scope_create", "threads 1025", create_threads_1025, PF_EINVAL },
	{ "pf_scope_create", "threads UINT_MAX", create_threads_max, PF_EINVAL },
	{ "pf_scope_create", "n_extensions 1, extensions NULL",
	    create_ext_array_null, PF_EINVAL },
	{ "pf_scope_create", "extensions[1] NULL", create_ext_element_null,
	    PF_EINVAL },
	{ "pf_scope_create", "n_tags 1, tags NULL", create_tags_array_null,
	    PF_EINVAL },
	{ "pf_scope_create", "tags[0].tag NULL", create_tag_null, PF_EINVAL },
	{ "pf_scope_create", "tags[0].value NULL", create_tag_value_null,
	    PF_EINVAL },
	{ "pf_scope_create", "tag of size 0", create_tag_size0, PF_EINVAL },
	{ "pf_scope_dispose", "scope NULL", dispose_null, PF_EINVAL },
	{ "pf_scope_dispose", "from the scope's own handler",
	    dispose_from_own_handler, PF_EINVAL },
	{ "pf_scope_threads", "scope NULL -> 0", threads_null, 0 },
	{ "pf_scope_use", "scope NULL", use_null_scope, PF_EINVAL },
	{ "pf_scope_use", "extension NULL", use_null_ext, PF_EINVAL },

	{ "pf_scope_exec", "scope NULL", exec_null_scope, PF_EINVAL },
	{ "pf_scope_exec", "flow NULL", exec_null_flow, PF_EINVAL },
	{ "pf_scope_exec", "flow handler NULL", exec_null_handler, PF_EINVAL },
	{ "pf_scope_exec", "input NULL, input_size > 0", exec_null_input,
	    PF_EINVAL },
	{ "pf_scope_exec", "n_tags 1, tags NULL", exec_tags_array_null,
	    PF_EINVAL },
	{ "pf_scope_exec", "tags[0].tag NULL", exec_tag_null, PF_EINVAL },
	{ "pf_scope_exec", "tags[0].value NULL", exec_tag_value_null,
	    PF_EINVAL },
	{ "pf_scope_exec", "tag of size 0", exec_tag_size0, PF_EINVAL },
	{ "pf_scope_exec", "tags[1].value NULL after a valid tags[0]",
	    exec_second_tag_bad, PF_EINVAL },
	{ "pf_scope_exec", "key on a root execution", exec_root_key,
	    PF_EINVAL },
	{ "pf_scope_run", "scope NULL", run_null_scope, PF_EINVAL },
	{ "pf_scope_run", "flow NULL", run_null_flow, PF_EINVAL },
	{ "pf_scope_run", "input NULL, input_size > 0", run_null_input,
	    PF_EINVAL },
	{ "pf_scope_run", "key on a root execution", run_root_key, PF_EINVAL },

	{ "pf_exec_id", "NULL -> NULL", exec_id_null, R_NULL },
	{ "pf_exec_flow_name", "NULL -> NULL", exec_flow_name_null, R_NULL },
	{ "pf_exec_status", "NULL -> PF_PENDING", exec_status_null,
	    PF_PENDING },
	{ "pf_exec_ctx", "NULL -> NULL", exec_ctx_null, R_NULL },
	{ "pf_exec_abort", "NULL", exec_abort_null, PF_EINVAL },
	{ "pf_exec_throw_if_aborted", "NULL", exec_throw_null, PF_EINVAL },
	{ "pf_exec_wait", "NULL", exec_wait_null, PF_EINVAL },
	{ "pf_exec_wait_for", "NULL", exec_wait_for_null, PF_EINVAL },
	{ "pf_exec_try", "NULL", exec_try_null, PF_EINVAL },
	{ "pf_exec_on_status", "exec NULL", on_status_null_exec, PF_EINVAL },
	{ "pf_exec_on_status", "fn NULL", on_status_null_fn, PF_EINVAL },
	{ "pf_exec_off_status", "exec NULL", off_status_null_exec, PF_EINVAL },
	{ "pf_exec_off_status", "fn NULL", off_status_null_fn, PF_EINVAL },
	{ "pf_exec_off_status", "never added -> PF_ENOENT",
	    off_status_never_added, PF_ENOENT },
	{ "pf_exec_off_status", "other data -> PF_ENOENT",
	    off_status_other_data, PF_ENOENT },
	{ "pf_exec_retain", "NULL -> NULL", exec_retain_null, R_NULL },
	{ "pf_exec_release", "NULL ignored", exec_release_null, 0 },

	{ "pf_scope_create_execution", "scope NULL",
	    create_execution_null_scope, PF_EINVAL },
	{ "pf_scope_create_execution", "out NULL", create_execution_null_out,
	    PF_EINVAL },
	{ "pf_scope_create_execution", "n_tags 1, tags NULL",
	    create_execution_tags_array_null, PF_EINVAL },
	{ "pf_scope_create_execution", "tags[0].tag NULL",
	    create_execution_tag_null, PF_EINVAL },
	{ "pf_scope_create_execution", "tags[0].value NULL",
	    create_execution_tag_value_null, PF_EINVAL },
	{ "pf_scope_create_execution", "tag of size 0",
	    create_execution_tag_size0, PF_EINVAL },
	{ "pf_ctx_retain", "NULL -> NULL", ctx_retain_null, R_NULL },
	{ "pf_ctx_release", "NULL ignored", ctx_release_null, 0 },
	{ "pf_ctx_id", "NULL -> NULL", ctx_id_null, R_NULL },
	{ "pf_ctx_name", "NULL -> NULL", ctx_name_null, R_NULL },
	{ "pf_ctx_parent", "NULL -> NULL", ctx_parent_null, R_NULL },
	{ "pf_ctx_scope", "NULL -> NULL", ctx_scope_null, R_NULL },
	{ "pf_ctx_created_at", "NULL -> 0", ctx_created_null, 0 },
	{ "pf_ctx_started_at", "NULL -> 0", ctx_started_null, 0 },
	{ "pf_ctx_completed_at", "NULL -> 0", ctx_completed_null, 0 },
	{ "pf_ctx_error", "ctx NULL", ctx_error_null, PF_EINVAL },
	{ "pf_ctx_error", "message NULL allowed -> 0", ctx_error_null_message,
	    0 },
	{ "pf_ctx_metadata", "NULL -> NULL", ctx_metadata_null, R_NULL },
	{ "pf_ctx_end", "NULL", ctx_end_null, PF_EINVAL },
	{ "pf_ctx_abort", "NULL", ctx_abort_null, PF_EINVAL },
	{ "pf_ctx_aborted", "NULL -> false", ctx_aborted_null, R_FALSE },
	{ "pf_ctx_throw_if_aborted", "NULL", ctx_throw_null, PF_EINVAL },
	{ "pf_ctx_fail", "ctx NULL -> returns code", ctx_fail_null, 0 },
	{ "pf_ctx_fail", "fmt NULL -> code recorded with a message",
	    ctx_fail_null_fmt, 0 },

	{ "pf_ctx_exec_fn", "parent NULL", exec_fn_null_parent, PF_EINVAL },
	{ "pf_ctx_exec_fn", "fn NULL", exec_fn_null_fn, PF_EINVAL },
	{ "pf_ctx_exec", "parent NULL", ctx_exec_null_parent, PF_EINVAL },
	{ "pf_ctx_exec", "flow NULL", ctx_exec_null_flow, PF_EINVAL },
	{ "pf_ctx_exec", "flow handler NULL", ctx_exec_null_handler,
	    PF_EINVAL },
	{ "pf_ctx_exec", "input NULL, input_size > 0", ctx_exec_null_input,
	    PF_EINVAL },
	{ "pf_ctx_exec", "n_tags 2, tags NULL", ctx_exec_tags_array_null,
	    PF_EINVAL },
	{ "pf_ctx_exec", "tags[0].tag NULL", ctx_exec_tag_null, PF_EINVAL },
	{ "pf_ctx_exec", "tags[0].value NULL, with a key",
	    ctx_exec_tag_value_null, PF_EINVAL },
	{ "pf_ctx_exec", "tag of size 0", ctx_exec_tag_size0, PF_EINVAL },
	{ "pf_ctx_exec", "tags[1].value NULL, with a key (then the key runs)",
	    ctx_exec_second_tag_bad_keyed, PF_EINVAL },
	{ "pf_ctx_run", "parent NULL", ctx_run_null_parent, PF_EINVAL },
	{ "pf_ctx_run", "flow NULL", ctx_run_null_flow, PF_EINVAL },
	{ "pf_ctx_run", "input NULL, input_size > 0", ctx_run_null_input,
	    PF_EINVAL },
	{ "pf_ctx_run", "n_tags 1, tags NULL, with a key",
	    ctx_run_tags_array_null, PF_EINVAL },
	{ "pf_ctx_parallel", "ctx NULL", parallel_null_ctx, PF_EINVAL },
	{ "pf_ctx_parallel", "calls NULL, n 2", parallel_null_calls,
	    PF_EINVAL },
	{ "pf_ctx_parallel", "calls NULL, n 0 -> 0", parallel_null_calls_n0,
	    0 },
	{ "pf_ctx_parallel", "calls[1].flow NULL", parallel_call_null_flow,
	    PF_EINVAL },
	{ "pf_ctx_parallel", "calls[1] handler NULL",
	    parallel_call_null_handler, PF_EINVAL },
	{ "pf_ctx_parallel", "calls[1].input NULL, input_size > 0",
	    parallel_call_null_input, PF_EINVAL },
	{ "pf_ctx_parallel", "calls[1] n_tags 1, tags NULL",
	    parallel_call_tags_array_null, PF_EINVAL },
	{ "pf_ctx_parallel_settled", "ctx NULL", settled_null_ctx, PF_EINVAL },
	{ "pf_ctx_parallel_settled", "calls NULL, n 2", settled_null_calls,
	    PF_EINVAL },
	{ "pf_ctx_parallel_settled", "calls[0].flow NULL",
	    settled_call_null_flow, PF_EINVAL },
	{ "pf_ctx_parallel_settled", "calls[0].input NULL, input_size > 0",
	    settled_call_null_input, PF_EINVAL },

	{ "pf_ctx_set", "ctx NULL", set_null_ctx, PF_EINVAL },
	{ "pf_ctx_set", "tag NULL", set_null_tag, PF_EINVAL },
	{ "pf_ctx_set", "value NULL", set_null_value, PF_EINVAL },
	{ "pf_ctx_set", "tag of size 0", set_size0, PF_EINVAL },
	{ "pf_ctx_get", "ctx NULL", get_null_ctx, PF_EINVAL },
	{ "pf_ctx_get", "tag NULL", get_null_tag, PF_EINVAL },
	{ "pf_ctx_get", "out NULL", get_null_out, PF_EINVAL },
	{ "pf_ctx_get", "tag of size 0", get_size0, PF_EINVAL },
	{ "pf_ctx_get", "absent, no default -> PF_ENOENT", get_absent,
	    PF_ENOENT },
	{ "pf_ctx_find", "ctx NULL -> false", find_null_ctx, R_FALSE },
	{ "pf_ctx_find", "tag NULL -> false", find_null_tag, R_FALSE },
	{ "pf_ctx_find", "tag of size 0 -> false", find_size0, R_FALSE },

	{ "pf_ctx_signal", "NULL -> NULL", signal_null, R_NULL },
	{ "pf_signal_aborted", "NULL -> false", signal_aborted_null, R_FALSE },
	{ "pf_signal_reason", "NULL", signal_reason_null, PF_EINVAL },
	{ "pf_signal_fd", "NULL", signal_fd_null, PF_EINVAL },
	{ "pf_signal_add_listener", "signal NULL", listener_add_null_signal,
	    PF_EINVAL },
	{ "pf_signal_add_listener", "listener NULL",
	    listener_add_null_listener, PF_EINVAL },
	{ "pf_signal_add_listener", "fn NULL", listener_add_null_fn,
	    PF_EINVAL },
	{ "pf_signal_add_listener", "the same listener twice",
	    listener_add_twice, PF_EINVAL },
	{ "pf_signal_remove_listener", "signal NULL",
	    listener_remove_null_signal, PF_EINVAL },
	{ "pf_signal_remove_listener", "listener NULL",
	    listener_remove_null_listener, PF_EINVAL },

	{ "pf_status_name", "-1 -> \"unknown\"", status_name_negative, R_TEXT },
	{ "pf_status_name", "PF_CANCELLED + 1 -> \"unknown\"",
	    status_name_past_end, R_TEXT },
	{ "pf_status_name", "INT_MAX -> \"unknown\"", status_name_int_max,
	    R_TEXT },
	{ "pf_strerror", "1 -> \"unknown error\"", strerror_positive, R_TEXT },
	{ "pf_strerror", "-9999 -> \"unknown error\"",
	    strerror_unknown_negative, R_TEXT },
	{ "pf_strerror", "INT_MAX -> \"unknown error\"", strerror_int_max,
	    R_TEXT },
	{ "pf_strerror", "INT_MIN -> \"user error\"", strerror_int_min,
	    R_TEXT },
	{ "pf_strerror", "PF_EUSER -> \"user error\"", strerror_user, R_TEXT },
	{ "pf_strerror", "0 -> \"success\"", strerror_zero, R_TEXT },
	{ "pf_next_call", "NULL", next_call_null, PF_EINVAL },

	{ "pf_ctx_exec", "context of a disposed scope", dead_ctx_exec,
	    PF_ESHUTDOWN },
	{ "pf_ctx_exec", "context of a disposed scope, with a key",
	    dead_ctx_exec_keyed, PF_ESHUTDOWN },
	{ "pf_ctx_run", "context of a disposed scope", dead_ctx_run,
	    PF_ESHUTDOWN },
	{ "pf_ctx_exec_fn", "context of a disposed scope", dead_ctx_exec_fn,
	    PF_ESHUTDOWN },
	{ "pf_ctx_parallel", "context of a disposed scope", dead_ctx_parallel,
	    PF_ESHUTDOWN },
	{ "pf_ctx_parallel_settled", "context of a disposed scope",
	    dead_ctx_parallel_settled, PF_ESHUTDOWN },
};

#define N_ROWS ((int)(sizeof(rows) / sizeof(rows[0])))

/* ---------------------------------------------------------------- tests */

/*
 * Rows whose call is not refused work: they may run a status callback or a
 * listener, or abort the standalone context.  Every other row must leave
 * no trace.
 */
static bool
has_effects(const struct row *r)
{
	return r->call == off_status_other_data ||
	    r->call == parallel_null_calls_n0 || r->call == ctx_fail_null_fmt ||
	    r->call == listener_add_twice ||
	    r->call == ctx_exec_second_tag_bad_keyed;
}

START_TEST(bad_argument_returns_documented_result)
{
	const struct row *r = &rows[_i];
	struct env v;
	env_open(&v);
	long got = r->call(&v);
	ck_assert_msg(got == r->want, "%s, %s: got %ld, want %ld", r->fn,
	    r->bad, got, r->want);
	/* A refused call started nothing: no handler, no fn step, no status
	 * callback (listeners are counted only by listener_add_twice). */
	if (!has_effects(r)) {
		ck_assert_msg(atomic_load(&runs) == 0,
		    "%s, %s: %d handler(s) ran", r->fn, r->bad,
		    atomic_load(&runs));
		ck_assert_msg(atomic_load(&callbacks) == 0,
		    "%s, %s: %d callback(s) ran", r->fn, r->bad,
		    atomic_load(&callbacks));
	}
	/* The environment still works. */
	if (!pf_ctx_aborted(v.c)) {
		int in = 2, out = 0;
		ck_assert_int_eq(pf_ctx_run(v.c, &int_flow, &in, &out, NULL), 0);
		ck_assert_int_eq(out, 1);
	}
	ck_assert_int_eq(pf_scope_run(v.s, &int_flow, &v.in, &v.out, NULL), 0);
	env_close(&v);
#ifdef BADINPUT_ASAN
	ck_assert_msg(__lsan_do_recoverable_leak_check() == 0, "%s, %s: leak",
	    r->fn, r->bad);
#endif
}
END_TEST

/* Every public function appears in the table at least once. */
START_TEST(table_covers_every_public_function)
{
	static const char *const public_fns[] = { "pf_status_name",
		"pf_strerror", "pf_ctx_set", "pf_ctx_get", "pf_ctx_find",
		"pf_next_call", "pf_scope_create", "pf_scope_dispose",
		"pf_scope_threads", "pf_scope_use", "pf_scope_exec",
		"pf_scope_run", "pf_exec_id", "pf_exec_flow_name",
		"pf_exec_status", "pf_exec_ctx", "pf_exec_abort",
		"pf_exec_throw_if_aborted", "pf_exec_wait", "pf_exec_wait_for",
		"pf_exec_try", "pf_exec_on_status", "pf_exec_off_status",
		"pf_exec_retain", "pf_exec_release",
		"pf_scope_create_execution", "pf_ctx_retain", "pf_ctx_release",
		"pf_ctx_id", "pf_ctx_name", "pf_ctx_parent", "pf_ctx_scope",
		"pf_ctx_created_at", "pf_ctx_started_at",
		"pf_ctx_completed_at", "pf_ctx_error", "pf_ctx_metadata",
		"pf_ctx_end", "pf_ctx_abort", "pf_ctx_aborted",
		"pf_ctx_throw_if_aborted", "pf_ctx_fail", "pf_ctx_exec_fn",
		"pf_ctx_exec", "pf_ctx_run", "pf_ctx_parallel",
		"pf_ctx_parallel_settled", "pf_ctx_signal",
		"pf_signal_aborted", "pf_signal_reason", "pf_signal_fd",
		"pf_signal_add_listener", "pf_signal_remove_listener" };
	for (size_t i = 0; i < sizeof(public_fns) / sizeof(public_fns[0]);
	     i++) {
		bool found = false;
		for (int j = 0; j < N_ROWS && !found; j++)
			found = strcmp(rows[j].fn, public_fns[i]) == 0;
		ck_assert_msg(found, "no bad-input row for %s", public_fns[i]);
	}
}
END_TEST

static Suite *
badinput_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "bad_arguments", .test = bad_argument_returns_documented_result, .timeout = 60, .loop = N_ROWS },
		{ .tcase = "bad_arguments", .test = table_covers_every_public_function, .timeout = 60 },
	};
	return pf_test_suite("badinput", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(badinput_suite());
}
