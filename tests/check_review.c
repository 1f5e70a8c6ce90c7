/*
 * check_review.c: regressions for bugs found by reviewing the protocols.
 *
 * Each test reproduces an interleaving a reviewer showed could break an
 * API.md promise: crossing journal keys in two parallel groups (a livelock
 * before keyed calls were prepared in key order), a call cancelled by its
 * own timeout not failing its group, a listener removing itself while
 * another thread removes it too, and an abort reaching the bottom of a
 * very deep chain of live contexts (a stack overflow while the walk was
 * recursive).
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <pumped.h>

#include "testlib.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
nop(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	(void)out;
	return 0;
}

static const pf_flow nop_flow = { "nop", nop, 0, 0 };

/* ------------------------------------------------ crossing journal keys */

#define KEYS 128
#define ROUNDS 10

static pf_ctx *cross_ctx[ROUNDS];
static pthread_barrier_t cross_bar;
static atomic_int cross_bad;

static void *
cross_group(void *arg)
{
	int rev = (int)(long)arg;
	static _Thread_local char keys[KEYS][24];
	pf_exec_options o[KEYS];
	pf_call calls[KEYS];
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < KEYS; i++) {
			snprintf(keys[i], sizeof(keys[i]), "r%d-k%d", r,
			    rev ? KEYS - 1 - i : i);
			o[i] = (pf_exec_options){ .key = keys[i] };
			calls[i] = (pf_call){ &nop_flow, NULL, NULL, &o[i], 0,
				0, NULL };
		}
		pthread_barrier_wait(&cross_bar);
		if (pf_ctx_parallel(cross_ctx[r], calls, KEYS, NULL) != 0)
			atomic_fetch_add(&cross_bad, 1);
	}
	return NULL;
}

/* "Every tag operation is thread-safe ... several threads using one
 * standalone context"; waits never deadlock (item 5). */
START_TEST(parallel_groups_with_crossing_keys_finish)
{
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, NULL), 0);
	for (int r = 0; r < ROUNDS; r++)
		ck_assert_int_eq(pf_scope_create_execution(s, NULL,
				     &cross_ctx[r]),
		    0);
	pthread_barrier_init(&cross_bar, NULL, 2);
	pthread_t a, b;
	pthread_create(&a, NULL, cross_group, (void *)0);
	pthread_create(&b, NULL, cross_group, (void *)1);
	/* A livelock spins forever: Check's timeout fails the test. */
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&cross_bar);
	ck_assert_int_eq(atomic_load(&cross_bad), 0);
	for (int r = 0; r < ROUNDS; r++)
		pf_ctx_release(cross_ctx[r]);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------ a call cancelled by timeout */

static int
until_aborted(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	(void)out;
	int64_t end = mono_ms() + 5000;
	while (!pf_ctx_aborted(c) && mono_ms() < end)
		usleep(500);
	return pf_ctx_throw_if_aborted(c);
}

static const pf_flow slow_flow = { "slow", until_aborted, 0, 0 };

static int
run_group(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	pf_exec_options quick = { .timeout_ms = 20 };
	pf_call calls[2] = {
		{ &slow_flow, NULL, NULL, NULL, 0, 0, NULL },
		{ &slow_flow, NULL, NULL, &quick, 0, 0, NULL },
	};
	int64_t t0 = mono_ms();
	int rc = pf_ctx_parallel(c, calls, 2, NULL);
	int *o = out;
	o[0] = rc;
	o[1] = (int)(mono_ms() - t0);
	o[2] = (int)calls[0].status;
	o[3] = (int)calls[1].status;
	return 0;
}

static const pf_flow group_flow = { "group", run_group, 0, 4 * sizeof(int) };

/* Item 8: "returns ... the first failure's code after aborting the other
 * calls": a call that times out fails the group and its sibling is
 * aborted at once, not waited for. */
START_TEST(call_cancelled_by_its_timeout_fails_the_group)
{
	pf_scope *s;
	pf_scope_options so = { .threads = 2 };
	ck_assert_int_eq(pf_scope_create(&s, &so), 0);
	int out[4];
	ck_assert_int_eq(pf_scope_run(s, &group_flow, NULL, out, NULL), 0);
	ck_assert_int_eq(out[0], PF_ETIMEDOUT);
	ck_assert_int_lt(out[1], 3000); /* the sibling was aborted */
	ck_assert_int_eq(out[2], PF_CANCELLED);
	ck_assert_int_eq(out[3], PF_CANCELLED);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------ listener removing itself */

static pf_signal_listener self_l;
static atomic_int self_started, self_finished;

static void
self_removing(pf_signal *s, void *data)
{
	(void)data;
	pf_signal_remove_listener(s, &self_l);
	atomic_store(&self_started, 1);
	usleep(50000);
	atomic_store(&self_finished, 1);
}

static void *
abort_ctx(void *arg)
{
	pf_ctx_abort(arg);
	return NULL;
}

/* Item 3: "after pf_signal_remove_listener returns the listener is not
 * running and will not run", also when the listener removed itself first
 * and is still running. */
START_TEST(remove_waits_for_self_removed_listener)
{
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, NULL), 0);
	pf_ctx *c;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &c), 0);
	ck_assert_int_eq(pf_signal_add_listener(pf_ctx_signal(c), &self_l,
			     self_removing, NULL),
	    0);
	pthread_t t;
	pthread_create(&t, NULL, abort_ctx, c);
	while (!atomic_load(&self_started))
		usleep(100);
	ck_assert_int_eq(pf_signal_remove_listener(pf_ctx_signal(c), &self_l),
	    0);
	ck_assert_int_eq(atomic_load(&self_finished), 1);
	pthread_join(t, NULL);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------------ deep chain, then abort */

static atomic_int chain_left;

/* Each link starts the next, fire and forget, and finishes; the last one
 * waits for the abort.  Every finished link stays alive (its child holds
 * it), so the live chain is as deep as the count. */
static int
chain_link(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	(void)out;
	static const pf_flow self = { "link", chain_link, 0, 0 };
	if (atomic_fetch_sub(&chain_left, 1) > 1)
		return pf_ctx_exec(c, &self, NULL, NULL, NULL);
	return until_aborted(c, NULL, NULL);
}

static const pf_flow chain_flow = { "link", chain_link, 0, 0 };

/* Dispose aborts the whole chain: the walk must not recurse per level. */
START_TEST(abort_reaches_the_bottom_of_a_deep_chain)
{
	long depth = pf_test_scale(300000);
	atomic_store(&chain_left, (int)depth);
	pf_scope *s;
	pf_scope_options so = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&s, &so), 0);
	pf_exec *root;
	ck_assert_int_eq(pf_scope_exec(s, &chain_flow, NULL, NULL, &root), 0);
	int64_t end = mono_ms() + 60000;
	while (atomic_load(&chain_left) > 0 && mono_ms() < end)
		usleep(1000);
	ck_assert_int_le(atomic_load(&chain_left), 0);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
	ck_assert_int_eq(pf_exec_status(root), PF_COMPLETED);
	pf_exec_release(root);
}
END_TEST

/* ----------------------------------------- a worker waiting on another scope */

static pf_scope *scope_a, *scope_b;

static int
leaf7(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	*(int *)out = 7;
	return 0;
}

static const pf_flow leaf_flow = { "leaf", leaf7, 0, sizeof(int) };

static int
inner_on_a(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	return pf_scope_run(scope_b, &leaf_flow, NULL, out, NULL);
}

static const pf_flow inner_flow = { "inner", inner_on_a, 0, sizeof(int) };

static int
outer_on_b(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	(void)in;
	return pf_scope_run(scope_a, &inner_flow, NULL, out, NULL);
}

static const pf_flow outer_flow = { "outer", outer_on_b, 0, sizeof(int) };

/* Item 5, "without deadlock": B's only worker waits for work on scope A,
 * which waits for work on B.  The waiting worker cannot help A; it must
 * let B start a spare worker. */
START_TEST(worker_waiting_on_another_scope_does_not_deadlock)
{
	pf_scope_options o = { .threads = 1 };
	ck_assert_int_eq(pf_scope_create(&scope_a, &o), 0);
	ck_assert_int_eq(pf_scope_create(&scope_b, &o), 0);
	int r = 0;
	ck_assert_int_eq(pf_scope_run(scope_b, &outer_flow, NULL, &r, NULL),
	    0);
	ck_assert_int_eq(r, 7);
	ck_assert_int_eq(pf_scope_dispose(scope_a), 0);
	ck_assert_int_eq(pf_scope_dispose(scope_b), 0);
}
END_TEST

/* ------------------------------------ an extension that skips the handler */

static int
skip_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)next;
	(void)op;
	(void)state;
	return 0; /* completes without running the handler */
}

static const pf_extension skipper = { "skip", NULL, skip_wrap, NULL, NULL };

/* Item 10: a skipped handler's execution completes; its output is the
 * zeroed buffer, never uninitialised memory. */
START_TEST(skipped_handler_completes_with_zeroed_output)
{
	const pf_extension *exts[] = { &skipper };
	pf_scope_options o = { .threads = 1, .extensions = exts,
		.n_extensions = 1 };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	for (int i = 0; i < 100; i++) {
		int r = 12345;
		ck_assert_int_eq(pf_scope_run(s, &leaf_flow, NULL, &r, NULL),
		    0);
		ck_assert_int_eq(r, 0);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* Review of session 2: the dispose refusal for "work of s running on this
 * thread" kept one slot for fn steps, so a dispose of A from an fn step of
 * B nested in an fn step of A went ahead and waited for itself (a hang).
 * The chain of pf__running frames covers every level. */
static pf_scope *nest_a;
static int nest_rc = 12345;

static int
inner_step(pf_ctx *c, void *arg)
{
	(void)c;
	(void)arg;
	nest_rc = pf_scope_dispose(nest_a);
	return 0;
}

static int
outer_step(pf_ctx *c, void *arg)
{
	(void)c;
	return pf_ctx_exec_fn((pf_ctx *)arg, "inner", inner_step, NULL);
}

START_TEST(dispose_from_nested_fn_step_of_another_scope_is_refused)
{
	pf_scope_options o = { .threads = 1 };
	pf_scope *b;
	ck_assert_int_eq(pf_scope_create(&nest_a, &o), 0);
	ck_assert_int_eq(pf_scope_create(&b, &o), 0);
	pf_ctx *ca, *cb;
	ck_assert_int_eq(pf_scope_create_execution(nest_a, NULL, &ca), 0);
	ck_assert_int_eq(pf_scope_create_execution(b, NULL, &cb), 0);
	ck_assert_int_eq(pf_ctx_exec_fn(ca, "outer", outer_step, cb), 0);
	ck_assert_int_eq(nest_rc, PF_EINVAL);
	pf_ctx_release(ca);
	pf_ctx_release(cb);
	ck_assert_int_eq(pf_scope_dispose(b), 0);
	ck_assert_int_eq(pf_scope_dispose(nest_a), 0);
}
END_TEST

static Suite *
review_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "journal_keys_across_groups", .test = parallel_groups_with_crossing_keys_finish, .timeout = 120 },
		{ .tcase = "parallel_fail_fast", .test = call_cancelled_by_its_timeout_fails_the_group, .timeout = 30 },
		{ .tcase = "signal_listeners", .test = remove_waits_for_self_removed_listener, .timeout = 30 },
		{ .tcase = "cross_scope_wait", .test = worker_waiting_on_another_scope_does_not_deadlock, .timeout = 30 },
		{ .tcase = "nested_dispose_refusal", .test = dispose_from_nested_fn_step_of_another_scope_is_refused, .timeout = 10 },
		{ .tcase = "extension_skips_handler", .test = skipped_handler_completes_with_zeroed_output },
		{ .tcase = "deep_abort", .test = abort_reaches_the_bottom_of_a_deep_chain, .timeout = 300, .tags = "stress" },
	};
	return pf_test_suite("review", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(review_suite());
}
