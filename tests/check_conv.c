/*
 * check_conv.c: conveniences of <pumped.h> beyond API.md: pf_exec_wait_all
 * and pf_exec_wait_any (from outside threads and from workers, deadlines,
 * misuse), the parallel loop (pf_ctx_parallel_for: every element once,
 * failures, aborts, misuse), pf_worker_index and the names of the
 * library's threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pumped.h>

#include "testlib.h"

#define E_FAIL (PF_EUSER - 3)

/* Sleeps the ms of its input; fails when the input is negative. */
static int
nap_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	int ms = *(const int *)in;
	sleep_ms(ms < 0 ? -ms : ms);
	*(int *)out = ms;
	return ms < 0 ? E_FAIL : 0;
}

static const pf_flow nap_flow = { "nap", nap_handler, sizeof(int),
	sizeof(int) };

typedef struct gate_in {
	atomic_bool *open;
} gate_in;

static int
gate_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)out;
	atomic_bool *open = ((const gate_in *)in)->open;
	while (!atomic_load_explicit(open, memory_order_acquire))
		sleep_ms(1);
	return 0;
}

static const pf_flow gate_flow = { "gate", gate_handler, sizeof(gate_in),
	0 };

static void
start_naps(pf_scope *s, const int *ms, pf_exec **e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pf_scope_exec(s, &nap_flow, &ms[i], NULL,
		    &e[i]), 0);
}

static void
release_all(pf_exec **e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pf_exec_release(e[i]);
}

START_TEST(wait_all_waits_for_every_one)
{
	pf_scope *s = new_scope(2);
	int ms[5] = { 5, 1, 20, 0, 3 };
	pf_exec *e[5];
	start_naps(s, ms, e, 5);
	ck_assert_int_eq(pf_exec_wait_all(e, 5, PF_FOREVER), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pf_exec_status(e[i]), PF_COMPLETED);
	release_all(e, 5);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(wait_all_returns_the_first_failure)
{
	pf_scope *s = new_scope(2);
	int ms[4] = { 1, 2, -1, -3 };
	pf_exec *e[4];
	start_naps(s, ms, e, 4);
	ck_assert_int_eq(pf_exec_wait_all(e, 4, PF_FOREVER), E_FAIL);
	for (int i = 0; i < 4; i++)
		ck_assert_int_ne(pf_exec_status(e[i]), PF_RUNNING);
	release_all(e, 4);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(wait_all_times_out)
{
	pf_scope *s = new_scope(1);
	atomic_bool open = false;
	gate_in g = { &open };
	pf_exec *e[2];
	int ms = 0;
	ck_assert_int_eq(pf_scope_exec(s, &nap_flow, &ms, NULL, &e[0]), 0);
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e[1]), 0);
	ck_assert_int_eq(pf_exec_wait_all(e, 2, 0), PF_EAGAIN);
	ck_assert_int_eq(pf_exec_wait_all(e, 2, 30), PF_EAGAIN);
	atomic_store_explicit(&open, true, memory_order_release);
	ck_assert_int_eq(pf_exec_wait_all(e, 2, 15000), 0);
	release_all(e, 2);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(wait_any_returns_the_first_to_finish)
{
	/* Nine gates hold nine of eleven workers; a nap runs on another and
	 * is the first to finish. */
	pf_scope *s = new_scope(11);
	atomic_bool open = false;
	gate_in g = { &open };
	pf_exec *e[10];
	for (int i = 0; i < 9; i++)
		ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e[i]),
		    0);
	int ms = 5;
	ck_assert_int_eq(pf_scope_exec(s, &nap_flow, &ms, NULL, &e[9]), 0);
	size_t idx = 99;
	ck_assert_int_eq(pf_exec_wait_any(e, 9, 0, &idx), PF_EAGAIN);
	ck_assert_uint_eq(idx, 99);
	ck_assert_int_eq(pf_exec_wait_any(e, 10, PF_FOREVER, &idx), 0);
	ck_assert_uint_eq(idx, 9);
	int out = 0;
	ck_assert_int_eq(pf_exec_try(e[idx], &out), 0);
	ck_assert_int_eq(out, 5);
	atomic_store_explicit(&open, true, memory_order_release);
	ck_assert_int_eq(pf_exec_wait_all(e, 10, 15000), 0);
	/* All finished: the lowest index. */
	ck_assert_int_eq(pf_exec_wait_any(e, 10, 0, &idx), 0);
	ck_assert_uint_eq(idx, 0);
	release_all(e, 10);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(wait_any_times_out)
{
	pf_scope *s = new_scope(1);
	atomic_bool open = false;
	gate_in g = { &open };
	pf_exec *e[2];
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e[0]), 0);
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &g, NULL, &e[1]), 0);
	size_t idx = 7;
	ck_assert_int_eq(pf_exec_wait_any(e, 2, 30, &idx), PF_EAGAIN);
	ck_assert_uint_eq(idx, 7);
	atomic_store_explicit(&open, true, memory_order_release);
	ck_assert_int_eq(pf_exec_wait_any(e, 2, 15000, &idx), 0);
	ck_assert_int_eq(pf_exec_wait_all(e, 2, 15000), 0);
	release_all(e, 2);
	pf_scope_dispose(s);
}
END_TEST

/* Starts n naps and waits for any, then all, from a worker. */
static int
fan_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	int ms[12];
	pf_exec *e[12];
	for (int i = 0; i < 12; i++) {
		ms[i] = i % 3;
		int rc = pf_ctx_exec(c, &nap_flow, &ms[i], NULL, &e[i]);
		if (rc != 0)
			return rc;
	}
	size_t idx;
	int rc = pf_exec_wait_any(e, 12, PF_FOREVER, &idx);
	if (rc == 0 && !(idx < 12 && pf_exec_status(e[idx]) >= PF_COMPLETED))
		rc = E_FAIL;
	int rc2 = pf_exec_wait_all(e, 12, PF_FOREVER);
	for (int i = 0; i < 12; i++)
		pf_exec_release(e[i]);
	return rc != 0 ? rc : rc2;
}

static const pf_flow fan_flow = { "fan", fan_handler, 0, 0 };

START_TEST(workers_wait_on_many)
{
	/* One worker: wait_any from it must not deadlock (a spare runs the
	 * children, or the wait_all helps). */
	pf_scope *s = new_scope(1 + (unsigned)_i);
	for (int r = 0; r < 5; r++)
		ck_assert_int_eq(pf_scope_run(s, &fan_flow, NULL, NULL, NULL), 0);
	pf_scope_dispose(s);
}
END_TEST

/* Waits with wait_any on the handle in its input: its own, or an
 * ancestor's. */
typedef struct self_in {
	pf_exec **target;
	atomic_bool *ready;
	int depth; /* > 0: run a child that waits instead */
} self_in;

static int self_any_handler(pf_ctx *c, const void *in, void *out);
static const pf_flow self_any_flow = { "self-any", self_any_handler,
	sizeof(self_in), sizeof(int) };

static int
self_any_handler(pf_ctx *c, const void *in, void *out)
{
	const self_in *si = in;
	if (si->depth > 0) {
		self_in deeper = { si->target, si->ready, si->depth - 1 };
		return pf_ctx_run(c, &self_any_flow, &deeper, out, NULL);
	}
	while (!atomic_load_explicit(si->ready, memory_order_acquire))
		sleep_ms(1);
	size_t idx;
	*(int *)out = pf_exec_wait_any(si->target, 1, PF_FOREVER, &idx);
	return 0;
}

START_TEST(wait_any_on_itself_is_einval)
{
	/* Its own execution, then its parent's (black-box finding: it hung,
	 * and dispose with it). */
	pf_scope *s = new_scope(2);
	for (int depth = 0; depth < 2; depth++) {
		pf_exec *e = NULL;
		atomic_bool ready = false;
		self_in si = { &e, &ready, depth };
		ck_assert_int_eq(pf_scope_exec(s, &self_any_flow, &si, NULL, &e),
		    0);
		atomic_store_explicit(&ready, true, memory_order_release);
		int got = 0;
		ck_assert_int_eq(pf_exec_wait_for(e, &got, 15000), 0);
		ck_assert_int_eq(got, PF_EINVAL);
		pf_exec_release(e);
	}
	pf_scope_dispose(s);
}
END_TEST

/* Starts a child, then waits for it with wait_any. */
static int
any_child_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	int ms = 1;
	pf_exec *e;
	int rc = pf_ctx_exec(c, &nap_flow, &ms, NULL, &e);
	if (rc != 0)
		return rc;
	size_t idx;
	rc = pf_exec_wait_any(&e, 1, PF_FOREVER, &idx);
	pf_exec_release(e);
	return rc;
}

static const pf_flow any_child_flow = { "any-child", any_child_handler, 0,
	0 };

START_TEST(wait_any_helps_without_spares)
{
	/* One worker, no spare allowed: the waiting worker must run the
	 * child itself (black-box finding: it slept forever). */
	setenv("PUMPED_MAX_SPARE", "0", 1);
	pf_scope *s = new_scope(1);
	unsetenv("PUMPED_MAX_SPARE");
	for (int i = 0; i < 20; i++) {
		pf_exec *e;
		ck_assert_int_eq(pf_scope_exec(s, &any_child_flow, NULL, NULL,
		    &e), 0);
		ck_assert_int_eq(pf_exec_wait_for(e, NULL, 15000), 0);
		pf_exec_release(e);
	}
	pf_scope_dispose(s);
}
END_TEST

START_TEST(many_handles_and_misuse)
{
	pf_scope *s = new_scope(2);
	enum { N = 300 };
	int ms[N];
	pf_exec *e[N];
	for (int i = 0; i < N; i++)
		ms[i] = i == N - 1 ? 1 : 0;
	start_naps(s, ms, e, N);
	size_t idx;
	ck_assert_int_eq(pf_exec_wait_any(e, N, PF_FOREVER, &idx), 0);
	ck_assert_int_eq(pf_exec_wait_all(e, N, PF_FOREVER), 0);
	ck_assert_int_eq(pf_exec_wait_all(NULL, 1, 0), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait_all(e, 0, 0), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait_any(e, 1, 0, NULL), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait_any(NULL, 1, 0, &idx), PF_EINVAL);
	pf_exec *with_null[2] = { e[0], NULL };
	ck_assert_int_eq(pf_exec_wait_all(with_null, 2, 0), PF_EINVAL);
	ck_assert_int_eq(pf_exec_wait_any(with_null, 2, 0, &idx), PF_EINVAL);
	release_all(e, N);
	pf_scope_dispose(s);
}
END_TEST

/* -------------------------------------------------------- parallel for */

typedef struct visit_arg {
	atomic_uchar *seen;  /* one counter per element */
	atomic_long calls;
	atomic_long sum;
	int64_t fail_at;     /* the piece holding it fails; INT64_MIN: none */
	atomic_int bad_names;
} visit_arg;

static int
visit(pf_ctx *c, int64_t b, int64_t e, void *p)
{
	visit_arg *a = p;
	atomic_fetch_add(&a->calls, 1);
	char want[64];
	snprintf(want, sizeof(want), "for[%lld,%lld)", (long long)b,
	    (long long)e);
	if (strcmp(pf_ctx_name(c), want) != 0)
		atomic_fetch_add(&a->bad_names, 1);
	long s = 0;
	for (int64_t i = b; i < e; i++) {
		if (a->seen != NULL)
			atomic_fetch_add(&a->seen[i], 1);
		s += (long)i;
	}
	atomic_fetch_add(&a->sum, s);
	if (a->fail_at >= b && a->fail_at < e)
		return E_FAIL;
	return 0;
}

START_TEST(parallel_for_visits_each_element_once)
{
	static const int64_t grains[] = { 1, 7, 1000, 0, 200000 };
	enum { N = 100000 };
	pf_scope *s = new_scope(2);
	atomic_uchar *seen = calloc(N, 1);
	for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
		memset(seen, 0, N);
		visit_arg a = { seen, 0, 0, INT64_MIN, 0 };
		ck_assert_int_eq(pf_scope_parallel_for(s, 0, N, grains[g],
		    visit, &a), 0);
		for (int i = 0; i < N; i++)
			ck_assert_msg(seen[i] == 1, "grain %lld: element %d "
			    "seen %d times", (long long)grains[g], i, seen[i]);
		ck_assert_int_eq(atomic_load(&a.sum), (long)N * (N - 1) / 2);
		ck_assert_int_eq(atomic_load(&a.bad_names), 0);
		if (grains[g] > 0)
			ck_assert_int_ge(atomic_load(&a.calls),
			    (N + grains[g] - 1) / grains[g]);
	}
	free(seen);
	/* Negative bounds, an odd length. */
	visit_arg a = { NULL, 0, 0, INT64_MIN, 0 };
	ck_assert_int_eq(pf_scope_parallel_for(s, -501, 500, 10, visit, &a), 0);
	ck_assert_int_eq(atomic_load(&a.sum), -1001); /* -501 + (-500 .. 499) */
	pf_scope_dispose(s);
}
END_TEST

typedef struct loop_in {
	int64_t n, grain, fail_at;
} loop_in;

static int
loop_handler(pf_ctx *c, const void *in, void *out)
{
	const loop_in *l = in;
	visit_arg a = { NULL, 0, 0, l->fail_at, 0 };
	int rc = pf_ctx_parallel_for(c, 0, l->n, l->grain, visit, &a);
	*(long *)out = atomic_load(&a.sum);
	return rc;
}

static const pf_flow loop_flow = { "loop", loop_handler, sizeof(loop_in),
	sizeof(long) };

START_TEST(parallel_for_inside_a_handler_and_failures)
{
	pf_scope *s = new_scope(2);
	loop_in l = { 1 << 20, 1024, INT64_MIN };
	long sum = 0;
	ck_assert_int_eq(pf_scope_run(s, &loop_flow, &l, &sum, NULL), 0);
	ck_assert_int_eq(sum, (long)(1 << 20) * ((1 << 20) - 1) / 2);
	/* One piece fails: its code, once every piece ended. */
	l.fail_at = 123456;
	ck_assert_int_eq(pf_scope_run(s, &loop_flow, &l, &sum, NULL), E_FAIL);
	l.fail_at = 0;
	l.grain = 1 << 20; /* one piece, the top one, fails */
	ck_assert_int_eq(pf_scope_run(s, &loop_flow, &l, &sum, NULL), E_FAIL);
	pf_scope_dispose(s);
}
END_TEST

/* Spins until aborted. */
static int
spin_until_aborted(pf_ctx *c, int64_t b, int64_t e, void *p)
{
	(void)b, (void)e;
	atomic_int *started = p;
	atomic_fetch_add(started, 1);
	while (!pf_ctx_aborted(c))
		sleep_ms(1);
	return pf_ctx_throw_if_aborted(c);
}

typedef struct spin_in {
	atomic_int *started;
} spin_in;

static int
spin_loop(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	const spin_in *si = in;
	return pf_ctx_parallel_for(c, 0, 64, 1, spin_until_aborted,
	    si->started);
}

static const pf_flow spin_flow = { "spin-loop", spin_loop, sizeof(spin_in),
	0 };

START_TEST(parallel_for_stops_when_its_parent_is_aborted)
{
	pf_scope *s = new_scope(2);
	atomic_int started = 0;
	spin_in si = { &started };
	pf_exec *e;
	ck_assert_int_eq(pf_scope_exec(s, &spin_flow, &si, NULL, &e), 0);
	for (int i = 0; i < 10000 && atomic_load(&started) < 1; i++)
		sleep_ms(1);
	ck_assert_int_eq(pf_exec_abort(e), 0);
	ck_assert_int_eq(pf_exec_wait_for(e, NULL, 15000), PF_ECANCELED);
	/* Not all 64 pieces got to their body. */
	ck_assert_int_lt(atomic_load(&started), 64);
	pf_exec_release(e);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(parallel_for_misuse)
{
	pf_scope *s = new_scope(1);
	visit_arg a = { NULL, 0, 0, INT64_MIN, 0 };
	ck_assert_int_eq(pf_scope_parallel_for(s, 5, 5, 1, visit, &a), 0);
	ck_assert_int_eq(pf_scope_parallel_for(s, 9, 5, 1, visit, &a), 0);
	ck_assert_int_eq(atomic_load(&a.calls), 0);
	ck_assert_int_eq(pf_scope_parallel_for(NULL, 0, 5, 1, visit, &a),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_parallel_for(s, 0, 5, 1, NULL, &a),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_parallel_for(s, 0, 5, -1, visit, &a),
	    PF_EINVAL);
	ck_assert_int_eq(pf_scope_parallel_for(s, INT64_MIN, INT64_MAX, 1,
	    visit, &a), PF_EINVAL);
	ck_assert_int_eq(pf_ctx_parallel_for(NULL, 0, 5, 1, visit, &a),
	    PF_EINVAL);
	pf_scope_dispose(s);
}
END_TEST

/* ---------------------------------------------------- threads, indexes */

typedef struct where {
	int index;
	char name[16];
} where;

static int
where_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in;
	where *w = out;
	w->index = pf_worker_index();
	pthread_getname_np(pthread_self(), w->name, sizeof(w->name));
	return 0;
}

static const pf_flow where_flow = { "where", where_handler, 0,
	sizeof(where) };

static int
spawn_where(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	/* A child on the pool: a worker runs it (maybe this one). */
	return pf_ctx_run(c, &where_flow, NULL, out, NULL);
}

static const pf_flow spawn_flow = { "spawn", spawn_where, 0,
	sizeof(where) };

START_TEST(workers_know_their_index_and_name)
{
	ck_assert_int_eq(pf_worker_index(), -1);
	pf_scope *s = new_scope(3);
	/* Started from here and waited later, so a worker runs it. */
	for (int r = 0; r < 20; r++) {
		pf_exec *e;
		ck_assert_int_eq(pf_scope_exec(s, &spawn_flow, NULL, NULL, &e),
		    0);
		sleep_ms(2);
		where w = { -2, "" };
		ck_assert_int_eq(pf_exec_wait(e, &w), 0);
		pf_exec_release(e);
		if (w.index == -1) {
			/* This thread ran it inline: not a worker. */
			continue;
		}
		ck_assert_int_ge(w.index, 0);
		ck_assert_int_lt(w.index, 3);
		char want[16];
		snprintf(want, sizeof(want), "pumped-w%d", w.index);
		ck_assert_str_eq(w.name, want);
	}
	/* The timer thread has its name too. */
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	int timers = 0, workers = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		    de->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL) {
			timers += strcmp(comm, "pumped-timer\n") == 0;
			workers += strncmp(comm, "pumped-w", 8) == 0;
		}
		fclose(f);
	}
	closedir(d);
	ck_assert_int_ge(timers, 1);
	ck_assert_int_eq(workers, 3);
	pf_scope_dispose(s);
}
END_TEST

typedef struct hook_log {
	atomic_int starts, stops, wrong_index;
	atomic_uint seen; /* bit per index */
} hook_log;

static void
on_start(int index, void *data)
{
	hook_log *h = data;
	if (pf_worker_index() != index)
		atomic_fetch_add(&h->wrong_index, 1);
	atomic_fetch_or(&h->seen, 1u << index);
	atomic_fetch_add(&h->starts, 1);
}

static void
on_stop(int index, void *data)
{
	hook_log *h = data;
	if (pf_worker_index() != index)
		atomic_fetch_add(&h->wrong_index, 1);
	atomic_fetch_add(&h->stops, 1);
}

START_TEST(thread_hooks_run_on_every_worker)
{
	hook_log h = { 0, 0, 0, 0 };
	pf_set_thread_hooks(on_start, on_stop, &h);
	pf_scope *s = new_scope(3);
	pf_set_thread_hooks(NULL, NULL, NULL); /* later scopes: none */
	pf_scope *plain = new_scope(2);
	int n = 10;
	ck_assert_int_eq(pf_scope_run(s, &nap_flow, &n, &n, NULL), 0);
	for (int i = 0; i < 10000 && atomic_load(&h.starts) < 3; i++)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&h.starts), 3);
	ck_assert_uint_eq(atomic_load(&h.seen), 7);
	ck_assert_int_eq(atomic_load(&h.stops), 0);
	pf_scope_dispose(s);
	ck_assert_int_eq(atomic_load(&h.stops), 3);
	ck_assert_int_eq(atomic_load(&h.wrong_index), 0);
	pf_scope_dispose(plain);
	ck_assert_int_eq(atomic_load(&h.starts), 3);
}
END_TEST

int
main(void)
{
	const pf_test t[] = {
		{ "wait", wait_all_waits_for_every_one, 60, 0, NULL, NULL,
		    NULL },
		{ "wait", wait_all_returns_the_first_failure, 0, 0, NULL, NULL,
		    NULL },
		{ "wait", wait_all_times_out, 0, 0, NULL, NULL, NULL },
		{ "wait", wait_any_returns_the_first_to_finish, 0, 0, NULL,
		    NULL, NULL },
		{ "wait", wait_any_times_out, 0, 0, NULL, NULL, NULL },
		{ "wait", workers_wait_on_many, 0, 2, NULL, NULL, NULL },
		{ "wait", many_handles_and_misuse, 0, 0, NULL, NULL, NULL },
		{ "wait", wait_any_on_itself_is_einval, 0, 0, NULL, NULL, NULL },
		{ "wait", wait_any_helps_without_spares, 0, 0, NULL, NULL,
		    NULL },
		{ "pfor", parallel_for_visits_each_element_once, 120, 0, NULL,
		    NULL, NULL },
		{ "pfor", parallel_for_inside_a_handler_and_failures, 0, 0,
		    NULL, NULL, NULL },
		{ "pfor", parallel_for_stops_when_its_parent_is_aborted, 0, 0,
		    NULL, NULL, NULL },
		{ "pfor", parallel_for_misuse, 0, 0, NULL, NULL, NULL },
		{ "threads", workers_know_their_index_and_name, 60, 0, NULL,
		    NULL, NULL },
		{ "threads", thread_hooks_run_on_every_worker, 0, 0, NULL, NULL,
		    NULL },
	};
	return pf_test_run(pf_test_suite("conv", t, sizeof(t) / sizeof(t[0])));
}
