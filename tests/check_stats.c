/*
 * check_stats.c: pf_scope_stats (statistics per flow and per scope) and
 * its histograms (src/stats.c).
 *
 * Counts are checked exactly against known runs (fib(15): 1973
 * executions), latencies against durations the handlers impose (sleeps),
 * the histogram's bucketing against its 2% bound over the whole range, and
 * reads from another thread while the scope runs (under TSan in CI).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pumped.h>

#include "stats.h"
#include "testlib.h"

#define WAIT_MS 15000u
#define E_FAIL (PF_EUSER - 1)

static pf_scope *
stats_scope(unsigned threads)
{
	pf_scope *s = new_scope(threads);
	ck_assert_int_eq(pf_scope_stats_enable(s), 0);
	ck_assert_int_eq(pf_scope_stats_enable(s), 0); /* idempotent */
	return s;
}

/* ---------------------------------------------------------- workloads */

static int fib_handler(pf_ctx *c, const void *in, void *out);
static const pf_flow fib_flow = { "fib", fib_handler, sizeof(int),
	sizeof(long) };

static int
fib_handler(pf_ctx *c, const void *in, void *out)
{
	int n = *(const int *)in;
	if (n < 2) {
		*(long *)out = n;
		return 0;
	}
	int n1 = n - 1, n2 = n - 2;
	long a = 0, b = 0;
	pf_exec *e;
	int rc = pf_ctx_exec(c, &fib_flow, &n1, NULL, &e);
	if (rc != 0)
		return rc;
	int rc2 = pf_ctx_run(c, &fib_flow, &n2, &b, NULL);
	rc = pf_exec_wait(e, &a);
	pf_exec_release(e);
	if (rc != 0 || rc2 != 0)
		return rc != 0 ? rc : rc2;
	*(long *)out = a + b;
	return 0;
}

static int
fail_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	return E_FAIL;
}

static const pf_flow fail_flow = { "fails", fail_handler, 0, 0 };

/* Sleeps the milliseconds of its input. */
static int
sleep_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)out;
	sleep_ms(*(const int *)in);
	return 0;
}

static const pf_flow sleep_flow = { "sleeps", sleep_handler, sizeof(int),
	0 };

/* Runs until aborted. */
static int
loop_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	while (!pf_ctx_aborted(c))
		sleep_ms(1);
	return pf_ctx_throw_if_aborted(c);
}

static const pf_flow loop_flow = { "loops", loop_handler, 0, 0 };

/* Blocks until *gate is set. */
static int
gate_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)out;
	atomic_bool *gate = *(atomic_bool *const *)in;
	while (!atomic_load_explicit(gate, memory_order_acquire))
		sleep_ms(1);
	return 0;
}

static const pf_flow gate_flow = { "gate", gate_handler, sizeof(void *),
	0 };

static const pf_flow_stats *
find(const pf_flow_stats *fs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fs[i].name, name) == 0)
			return &fs[i];
	ck_abort_msg("no statistics for flow %s", name);
	return NULL;
}

static void
check_latency(const pf_latency *l, uint64_t count)
{
	ck_assert_uint_eq(l->count, count);
	ck_assert_uint_le(l->p50_ns, l->p90_ns);
	ck_assert_uint_le(l->p90_ns, l->p99_ns);
	ck_assert_uint_le(l->p99_ns, l->max_ns);
}

/* -------------------------------------------------------------- tests */

START_TEST(histogram_buckets_within_two_percent)
{
	/* Exact below 32; above, every value reads back within 1/64 of
	 * itself; buckets never go down as values go up. */
	for (uint64_t v = 0; v < 32; v++)
		ck_assert_uint_eq(pf__hist_value(pf__hist_bucket(v)), v);
	unsigned prev = 0;
	uint64_t v = 1;
	for (int i = 0; i < 200000; i++) {
		v = v + 1 + v / 1000;
		if (v >= (UINT64_C(1) << 44))
			break;
		unsigned b = pf__hist_bucket(v);
		ck_assert_uint_ge(b, prev);
		prev = b;
		uint64_t r = pf__hist_value(b);
		uint64_t d = r > v ? r - v : v - r;
		ck_assert_msg(d * 64 <= v, "value %llu reads as %llu",
		    (unsigned long long)v, (unsigned long long)r);
	}
	/* Huge values share the last bucket. */
	ck_assert_uint_eq(pf__hist_bucket(UINT64_MAX),
	    pf__hist_bucket(UINT64_C(1) << 50));
}
END_TEST

START_TEST(off_by_default_reads_disabled)
{
	unsetenv("PUMPED_STATS");
	pf_scope *s = new_scope(2);
	int n = 10;
	long r;
	ck_assert_int_eq(pf_scope_run(s, &fib_flow, &n, &r, NULL), 0);
	pf_stats st;
	memset(&st, 0xa5, sizeof(st));
	pf_flow_stats fs[2];
	ck_assert_int_eq(pf_scope_stats(s, &st, fs, 2), 0);
	ck_assert(!st.enabled);
	ck_assert_uint_eq(st.created, 0);
	ck_assert_uint_eq(st.n_flows, 0);
	ck_assert_uint_eq(st.run.count, 0);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(bad_arguments_are_einval)
{
	pf_scope *s = stats_scope(1);
	pf_stats st;
	pf_flow_stats fs[1];
	ck_assert_int_eq(pf_scope_stats_enable(NULL), PF_EINVAL);
	ck_assert_int_eq(pf_scope_stats(NULL, &st, fs, 1), PF_EINVAL);
	ck_assert_int_eq(pf_scope_stats(s, NULL, fs, 1), PF_EINVAL);
	ck_assert_int_eq(pf_scope_stats(s, &st, NULL, 1), PF_EINVAL);
	ck_assert_int_eq(pf_scope_stats(s, &st, NULL, 0), 0);
	ck_assert(st.enabled);
	ck_assert_uint_eq(st.n_flows, 0);
	ck_assert_uint_eq(st.workers, 1);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(fib_counts_are_exact)
{
	unsigned threads = 1 + (unsigned)_i; /* 1 and 2 workers */
	pf_scope *s = stats_scope(threads);
	int n = 15;
	long r = 0;
	ck_assert_int_eq(pf_scope_run(s, &fib_flow, &n, &r, NULL), 0);
	ck_assert_int_eq(r, 610);
	pf_stats st;
	pf_flow_stats fs[4];
	ck_assert_int_eq(pf_scope_stats(s, &st, fs, 4), 0);
	ck_assert(st.enabled);
	ck_assert_uint_eq(st.n_flows, 1);
	ck_assert_ptr_eq(fs[0].flow, &fib_flow);
	ck_assert_str_eq(fs[0].name, "fib");
	ck_assert_uint_eq(fs[0].created, 1973);
	ck_assert_uint_eq(fs[0].started, 1973);
	ck_assert_uint_eq(fs[0].completed, 1973);
	ck_assert_uint_eq(fs[0].failed + fs[0].cancelled + fs[0].timed_out, 0);
	check_latency(&fs[0].pending, 1973);
	check_latency(&fs[0].run, 1973);
	ck_assert_uint_eq(st.created, 1973);
	ck_assert_uint_eq(st.completed, 1973);
	ck_assert_uint_eq(st.run.count, 1973);
	ck_assert_uint_eq(st.run.max_ns, fs[0].run.max_ns);
	/* The root's run spans all of the others: it is the maximum. */
	ck_assert_uint_gt(st.run.max_ns, 0);
	ck_assert_uint_eq(st.workers, threads);
	ck_assert_uint_eq(st.spares, 0);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(failures_cancels_and_timeouts_are_counted)
{
	pf_scope *s = stats_scope(1);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pf_scope_run(s, &fail_flow, NULL, NULL, NULL),
		    E_FAIL);
	pf_exec_options t = { .timeout_ms = 5 };
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pf_scope_run(s, &loop_flow, NULL, NULL, &t),
		    PF_ETIMEDOUT);
	/* Aborted while pending behind a gate on the only worker: cancelled
	 * without a start (no pending or run sample). */
	atomic_bool gate = false;
	atomic_bool *gp = &gate;
	pf_exec *g, *x;
	ck_assert_int_eq(pf_scope_exec(s, &gate_flow, &gp, NULL, &g), 0);
	int ms = 0;
	ck_assert_int_eq(pf_scope_exec(s, &sleep_flow, &ms, NULL, &x), 0);
	ck_assert_int_eq(pf_exec_abort(x), 0);
	atomic_store_explicit(&gate, true, memory_order_release);
	ck_assert_int_eq(pf_exec_wait_for(g, NULL, WAIT_MS), 0);
	ck_assert_int_eq(pf_exec_wait_for(x, NULL, WAIT_MS), PF_ECANCELED);
	pf_exec_release(g);
	pf_exec_release(x);

	pf_stats st;
	pf_flow_stats fs[8];
	ck_assert_int_eq(pf_scope_stats(s, &st, fs, 8), 0);
	ck_assert_uint_eq(st.n_flows, 4);
	/* Sorted by name. */
	ck_assert_str_eq(fs[0].name, "fails");
	ck_assert_str_eq(fs[1].name, "gate");
	ck_assert_str_eq(fs[2].name, "loops");
	ck_assert_str_eq(fs[3].name, "sleeps");
	const pf_flow_stats *f = find(fs, 4, "fails");
	ck_assert_uint_eq(f->created, 5);
	ck_assert_uint_eq(f->started, 5);
	ck_assert_uint_eq(f->failed, 5);
	ck_assert_uint_eq(f->completed + f->cancelled, 0);
	const pf_flow_stats *l = find(fs, 4, "loops");
	ck_assert_uint_eq(l->created, 3);
	ck_assert_uint_eq(l->cancelled, 3);
	ck_assert_uint_eq(l->timed_out, 3);
	ck_assert_uint_ge(l->run.p50_ns, 4000000); /* ran until its 5 ms */
	const pf_flow_stats *x2 = find(fs, 4, "sleeps");
	ck_assert_uint_eq(x2->created, 1);
	ck_assert_uint_eq(x2->started, 0);
	ck_assert_uint_eq(x2->cancelled, 1);
	ck_assert_uint_eq(x2->timed_out, 0);
	ck_assert_uint_eq(x2->run.count, 0);
	ck_assert_uint_eq(x2->pending.count, 0);
	ck_assert_uint_eq(st.created, 10);
	ck_assert_uint_eq(st.failed, 5);
	ck_assert_uint_eq(st.cancelled, 4);
	ck_assert_uint_eq(st.timed_out, 3);
	ck_assert_uint_eq(st.completed, 1);
	/* Fewer slots than flows: the first ones by name, all counted. */
	pf_flow_stats one[1];
	ck_assert_int_eq(pf_scope_stats(s, &st, one, 1), 0);
	ck_assert_uint_eq(st.n_flows, 4);
	ck_assert_str_eq(one[0].name, "fails");
	pf_scope_dispose(s);
}
END_TEST

START_TEST(run_time_percentiles_follow_the_handlers)
{
	/* 20 sleeps of 2 ms and one of 40 ms: p50 about 2 ms, max 40. */
	pf_scope *s = stats_scope(2);
	int ms = 2;
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(pf_scope_run(s, &sleep_flow, &ms, NULL, NULL),
		    0);
	ms = 40;
	ck_assert_int_eq(pf_scope_run(s, &sleep_flow, &ms, NULL, NULL), 0);
	pf_stats st;
	pf_flow_stats fs[1];
	ck_assert_int_eq(pf_scope_stats(s, &st, fs, 1), 0);
	check_latency(&fs[0].run, 21);
	ck_assert_uint_ge(fs[0].run.p50_ns, 2000000 - 2000000 / 50);
	ck_assert_uint_lt(fs[0].run.p50_ns, 40000000);
	ck_assert_uint_ge(fs[0].run.max_ns, 40000000);
	ck_assert_uint_ge(fs[0].run.p99_ns, 40000000 - 40000000 / 50);
	pf_scope_dispose(s);
}
END_TEST

START_TEST(environment_turns_it_on)
{
	ck_assert_int_eq(setenv("PUMPED_STATS", "1", 1), 0);
	pf_scope *s = new_scope(1);
	ck_assert_int_eq(unsetenv("PUMPED_STATS"), 0);
	int n = 5;
	long r;
	ck_assert_int_eq(pf_scope_run(s, &fib_flow, &n, &r, NULL), 0);
	pf_stats st;
	ck_assert_int_eq(pf_scope_stats(s, &st, NULL, 0), 0);
	ck_assert(st.enabled);
	ck_assert_uint_eq(st.created, 15); /* fib(5): 2 F(6) - 1 */
	pf_scope_dispose(s);
}
END_TEST

START_TEST(outside_submissions_are_counted)
{
	/* Roots from this thread go through the injector; each counts. */
	pf_scope *s = stats_scope(2);
	enum { N = 200 };
	pf_exec *e[N];
	int n = 3;
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pf_scope_exec(s, &fib_flow, &n, NULL, &e[i]),
		    0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pf_exec_wait_for(e[i], NULL, WAIT_MS), 0);
		pf_exec_release(e[i]);
	}
	pf_stats st;
	ck_assert_int_eq(pf_scope_stats(s, &st, NULL, 0), 0);
	ck_assert_uint_ge(st.injector_pushes, N);
	ck_assert_uint_eq(st.created, N * 5); /* fib(3): 5 each */
	ck_assert_uint_eq(st.completed, N * 5);
	pf_scope_dispose(s);
}
END_TEST

typedef struct reader_arg {
	pf_scope *s;
	atomic_bool stop;
	atomic_long reads;
} reader_arg;

static void *
reader(void *p)
{
	reader_arg *a = p;
	uint64_t last = 0;
	while (!atomic_load_explicit(&a->stop, memory_order_acquire)) {
		pf_stats st;
		pf_flow_stats fs[2];
		ck_assert_int_eq(pf_scope_stats(a->s, &st, fs, 2), 0);
		/* Counters only grow. */
		ck_assert_uint_ge(st.completed, last);
		last = st.completed;
		atomic_fetch_add(&a->reads, 1);
	}
	return NULL;
}

START_TEST(reads_race_running_work)
{
	pf_scope *s = stats_scope(2);
	reader_arg a = { .s = s, .stop = false, .reads = 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, reader, &a), 0);
	int n = 17;
	long r;
	/* Until several reads overlapped the rounds. */
	int rounds = 0;
	while (rounds < (int)pf_test_scale(10) ||
	    (atomic_load(&a.reads) < 3 && rounds < 100000)) {
		ck_assert_int_eq(pf_scope_run(s, &fib_flow, &n, &r, NULL), 0);
		rounds++;
	}
	atomic_store_explicit(&a.stop, true, memory_order_release);
	pthread_join(t, NULL);
	ck_assert_int_ge(atomic_load(&a.reads), 3);
	pf_stats st;
	ck_assert_int_eq(pf_scope_stats(s, &st, NULL, 0), 0);
	ck_assert_uint_eq(st.completed, (uint64_t)rounds * 5167); /* fib(17) */
	pf_scope_dispose(s);
}
END_TEST

int
main(void)
{
	const pf_test t[] = {
		{ "histogram", histogram_buckets_within_two_percent, 30, 0,
		    NULL, NULL, NULL },
		{ "api", off_by_default_reads_disabled, 30, 0, NULL, NULL,
		    NULL },
		{ "api", bad_arguments_are_einval, 0, 0, NULL, NULL, NULL },
		{ "api", fib_counts_are_exact, 0, 2, NULL, NULL, NULL },
		{ "api", failures_cancels_and_timeouts_are_counted, 0, 0, NULL,
		    NULL, NULL },
		{ "api", run_time_percentiles_follow_the_handlers, 0, 0, NULL,
		    NULL, NULL },
		{ "api", environment_turns_it_on, 0, 0, NULL, NULL, NULL },
		{ "api", outside_submissions_are_counted, 0, 0, NULL, NULL,
		    NULL },
		{ "api", reads_race_running_work, 0, 0, NULL, NULL, NULL },
	};
	return pf_test_run(pf_test_suite("stats", t, sizeof(t) / sizeof(t[0])));
}
