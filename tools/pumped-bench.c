/*
 * pumped-bench: libpumped's benchmark.  A program, never a unit test.
 *
 * Usage: tools/pumped-bench [--threads N] [--runs R] [--quick] [--no-peers]
 *                           [--svg FILE] [workload [ARG]] ...
 *
 * Every figure is measured against baselines in the same invocation, the
 * runtimes alternating within each run, because the machines this runs on
 * are shared and noisy: absolute nanoseconds move from one minute to the
 * next, ratios measured side by side much less.  Each workload prints the
 * median and the min-max over R runs and the command that repeats it;
 * ratios are computed per run (pairs measured back to back), then their
 * median is shown.  A summary with the targets of issues 2-4 ends the run.
 *
 * Workloads (ARG overrides the size):
 *   rt-fib N    runtime level: fib(N), one pool task per call and a join
 *               by helping, on src/pool.h directly; vs serial fib
 *   nqueens N   tracked: a child execution per placement above the last two
 *               rows of an N x N board; vs oneTBB task_group, same split
 *   fib N       tracked: every call >= 2 a child execution (pf_ctx_exec +
 *               pf_ctx_run), waited on; vs oneTBB task_group, OpenMP tasks
 *   wide N      N root executions from one outside thread, then waited;
 *               vs a mutex+condvar pool and oneTBB task_arena::enqueue
 *   rtt N       N sequential pf_scope_run from an outside thread; vs the
 *               same peers; plus the CPU an idle scope burns
 *   rtt-idle N  N round trips, each after a 1 ms sleep: median latency
 *   coarse N    N executions of ~2 ms CPU: speedup 1 -> threads
 *   timeout N   wide with timeout_ms = 10000 on every execution, vs wide
 *   mem N       resident bytes per pending execution with N held
 *   stats N     tracked fib(N) with statistics on vs off: the cost of
 *               pf_scope_stats_enable per execution
 *   trace N     tracked fib(N) with a timeline trace on vs off
 *   pfor N      pf_scope_parallel_for over N elements (grain N/1024) vs
 *               oneTBB parallel_for, same grain, and a serial loop
 *
 * The bench links libpumped statically (libtool -static) so that it can
 * reach the runtime's internal pf__pool_* functions for rt-fib; it uses the
 * production build of the library, not the test build, whose fault
 * injection draws a ticket from a shared counter on every allocation.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pumped.h"

#include "pool.h"

#include "bench-peers.h"

#define MAX_RUNS 64
#define SETTLE_MS 30

#ifndef HAVE_TBB
/* configure found no oneTBB: bench-tbb.cc is not built. */
int
bench_tbb_available(void)
{
	return 0;
}
int64_t
bench_tbb_fib(unsigned threads, int n, long *result)
{
	return -1;
}
int64_t
bench_tbb_nqueens(unsigned threads, int n, long *result)
{
	return -1;
}
int64_t
bench_tbb_wide(unsigned threads, long n)
{
	return -1;
}
int64_t
bench_tbb_rtt(unsigned threads, long rounds)
{
	return -1;
}
int64_t
bench_tbb_pfor(unsigned threads, long n, long grain, uint64_t *result)
{
	return -1;
}
void
bench_tbb_shutdown(void)
{
}
#endif

/* ------------------------------------------------------------ options */

typedef struct options {
	unsigned threads;
	int runs;
	bool quick;
	bool peers;
	const char *svg;
	const char *argv0;
} options;

static options g_opt;

/* ------------------------------------------------------------ helpers */

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Lets the previous runtime's threads finish spinning and park (libgomp
 * spins for a while after a parallel region, TBB workers too). */
static void
settle(void)
{
	sleep_ns((int64_t)SETTLE_MS * 1000000);
}

static void
die(const char *what, int rc)
{
	fprintf(stderr, "pumped-bench: %s: %s (%d)\n", what, pf_strerror(rc), rc);
	exit(1);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median_of(const double *v, int n)
{
	double s[MAX_RUNS * 64 > 4096 ? MAX_RUNS * 64 : 4096];
	if (n <= 0)
		return 0;
	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Median of a large sample, sorting it in place. */
static double
percentile_inplace(double *v, long n, double p)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	long i = (long)(p * (double)(n - 1) + 0.5);
	return v[i];
}

/* One measured quantity over the runs. */
typedef struct series {
	const char *label;
	const char *unit;
	double v[MAX_RUNS];
	int n;
	bool missing; /* the peer is unavailable */
} series;

static void
series_add(series *s, double x)
{
	if (x < 0) {
		s->missing = true;
		return;
	}
	if (s->n < MAX_RUNS)
		s->v[s->n++] = x;
}

static double
series_median(const series *s)
{
	return median_of(s->v, s->n);
}

static void
series_minmax(const series *s, double *lo, double *hi)
{
	*lo = *hi = s->n ? s->v[0] : 0;
	for (int i = 1; i < s->n; i++) {
		if (s->v[i] < *lo)
			*lo = s->v[i];
		if (s->v[i] > *hi)
			*hi = s->v[i];
	}
}

/* Per-run ratio a/b of two series measured side by side. */
static series
series_ratio(const series *a, const series *b)
{
	series r = { "", "x", { 0 }, 0, a->missing || b->missing };
	int n = a->n < b->n ? a->n : b->n;
	for (int i = 0; i < n && !r.missing; i++)
		if (b->v[i] > 0)
			r.v[r.n++] = a->v[i] / b->v[i];
	if (r.n == 0)
		r.missing = true;
	return r;
}

/* ------------------------------------------------------ summary, chart */

typedef struct summary_line {
	char what[96];
	double med, lo, hi;
	char unit[16];
	char target[64];
	int verdict; /* 1 met, 0 missed, -1 no target / unavailable */
} summary_line;

typedef struct bar {
	char group[32];
	char runtime[40];
	double value;
	char unit[16];
} bar;

static summary_line g_summary[64];
static int g_nsummary;
static bar g_bars[128];
static int g_nbars;

static void
add_bar(const char *group, const series *s)
{
	if (s->missing || s->n == 0 || g_nbars >= (int)(sizeof(g_bars) / sizeof(g_bars[0])))
		return;
	bar *b = &g_bars[g_nbars++];
	snprintf(b->group, sizeof(b->group), "%s", group);
	snprintf(b->runtime, sizeof(b->runtime), "%s", s->label);
	b->value = series_median(s);
	snprintf(b->unit, sizeof(b->unit), "%s", s->unit);
}

/* Scales a value for printing: returns the factor and sets the unit. */
static double
scale_for(double v, const char *unit, const char **shown)
{
	if (strcmp(unit, "ns") == 0) {
		if (v >= 1e6) {
			*shown = "ms";
			return 1e-6;
		}
		if (v >= 1e4) {
			*shown = "us";
			return 1e-3;
		}
	}
	*shown = unit;
	return 1;
}

static void
print_series(const series *s, const char *per)
{
	if (s->missing || s->n == 0) {
		if (g_opt.peers)
			printf("  %-34s %12s\n", s->label, "unavailable");
		return;
	}
	double lo, hi, med = series_median(s);
	series_minmax(s, &lo, &hi);
	const char *u;
	double f = scale_for(med, s->unit, &u);
	char unit[32];
	snprintf(unit, sizeof(unit), "%s%s%s", u, per ? "/" : "", per ? per : "");
	printf("  %-34s %12.*f %-12s [%.*f - %.*f]\n", s->label,
	    med * f < 10 ? 2 : 1, med * f, unit, med * f < 10 ? 2 : 1, lo * f,
	    med * f < 10 ? 2 : 1, hi * f);
}

/* Prints a ratio/figure and records it in the summary.  target_le > 0:
 * met when the median is <= it; target_ge > 0: met when >= it. */
static void
report(const char *what, const series *s, double target_le, double target_ge,
    const char *target_note)
{
	if ((s->missing || s->n == 0) && !g_opt.peers)
		return; /* a ratio to a peer that --no-peers turned off */
	summary_line *l = g_nsummary < 64 ? &g_summary[g_nsummary++] : NULL;
	if (s->missing || s->n == 0) {
		printf("  %-34s %12s\n", what, "unavailable");
		if (l != NULL) {
			snprintf(l->what, sizeof(l->what), "%s", what);
			l->verdict = -1;
			snprintf(l->unit, sizeof(l->unit), "-");
			snprintf(l->target, sizeof(l->target), "%s",
			    target_note ? target_note : "");
			l->med = l->lo = l->hi = 0;
		}
		return;
	}
	double lo, hi, med = series_median(s);
	series_minmax(s, &lo, &hi);
	int verdict = -1;
	if (target_le > 0)
		verdict = med <= target_le;
	else if (target_ge > 0)
		verdict = med >= target_ge;
	printf("  %-34s %12.3f %-12s [%.3f - %.3f]%s%s%s\n", what, med, s->unit,
	    lo, hi, target_note ? "  target " : "", target_note ? target_note : "",
	    verdict == 1 ? " (met)" : verdict == 0 ? " (MISSED)" : "");
	if (l != NULL) {
		snprintf(l->what, sizeof(l->what), "%s", what);
		l->med = med;
		l->lo = lo;
		l->hi = hi;
		snprintf(l->unit, sizeof(l->unit), "%s", s->unit);
		snprintf(l->target, sizeof(l->target), "%s",
		    target_note ? target_note : "");
		l->verdict = verdict;
	}
}

/* Prints the command that repeats one workload. */
static void
print_repeat(const char *name, long arg)
{
	printf("  repeat: %s --threads %u --runs %d%s%s %s %ld\n", g_opt.argv0,
	    g_opt.threads, g_opt.runs, g_opt.quick ? " --quick" : "",
	    g_opt.peers ? "" : " --no-peers", name, arg);
}

static void
print_title(const char *name, long arg, const char *what)
{
	printf("\n== %s %ld: %s (threads %u, runs %d)\n", name, arg, what,
	    g_opt.threads, g_opt.runs);
	print_repeat(name, arg);
}

/* ------------------------------------------------------------- fib */

/* The serial floor.  noinline keeps the compiler from unrolling the
 * recursion into something that is not "one call per node". */
__attribute__((noinline)) static long
serial_fib(int n)
{
	return n < 2 ? n : serial_fib(n - 1) + serial_fib(n - 2);
}

/* Number of calls fib(n) makes, itself included: 2 F(n+1) - 1. */
static long
fib_calls(int n)
{
	long a = 0, b = 1; /* F(0), F(1) */
	for (int i = 0; i < n + 1; i++) {
		long c = a + b;
		a = b;
		b = c;
	}
	return 2 * a - 1; /* a = F(n+1) */
}

static long
fib_value(int n)
{
	long a = 0, b = 1;
	for (int i = 0; i < n; i++) {
		long c = a + b;
		a = b;
		b = c;
	}
	return a;
}

static int64_t
time_serial_fib(int n)
{
	int64_t t0 = now_ns();
	long r = serial_fib(n);
	int64_t t1 = now_ns();
	if (r != fib_value(n)) {
		fprintf(stderr, "pumped-bench: serial fib wrong\n");
		exit(1);
	}
	return t1 - t0;
}

/* ------------------------------------------ rt-fib: the runtime alone */

/*
 * A fork-join helper on src/pool.h: spawn pushes a task on the worker's
 * own deque; join runs tasks (its own child first: the deque is LIFO and
 * every grandchild was joined already) until the child is done, spinning
 * when there is nothing to help with, as Lace does.
 */
/* The pool runs every task with one function (rt_run); each kind of task
 * here says its own. */
typedef struct rt_task {
	pf__task task;
	void (*fn)(pf__task *t);
} rt_task;

static void
rt_run(pf__task *t)
{
	PF_CONTAINER_OF(t, rt_task, task)->fn(t);
}

typedef struct rt_job {
	rt_task task;
	int n;
	long result;
	atomic_int done;
} rt_job;

static long rt_fib(pf__worker *w, int n);

static void
rt_job_run(pf__task *t)
{
	rt_job *j = PF_CONTAINER_OF(t, rt_job, task.task);
	j->result = rt_fib(pf__worker_self(), j->n);
	/* Release: publishes result to the joiner's acquire load. */
	atomic_store_explicit(&j->done, 1, memory_order_release);
}

static void
rt_join(pf__worker *w, rt_job *j)
{
	unsigned idle = 0;
	while (!atomic_load_explicit(&j->done, memory_order_acquire)) {
		if (pf__pool_help(w, NULL)) {
			idle = 0;
			continue;
		}
		if (++idle < 256)
			pf__cpu_relax();
		else
			sched_yield();
	}
}

static long
rt_fib(pf__worker *w, int n)
{
	if (n < 2)
		return n;
	rt_job j;
	j.task.fn = rt_job_run;
	atomic_init(&j.task.task.next, NULL);
	j.n = n - 1;
	atomic_init(&j.done, 0);
	pf__pool_submit(w->pool, &j.task.task);
	long b = rt_fib(w, n - 2);
	rt_join(w, &j);
	return j.result + b;
}

/* The root runs on a worker; the outside thread sleeps on a condvar. */
typedef struct rt_root {
	rt_task task;
	pf__pool *pool;
	int n;
	long result;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
} rt_root;

static void
rt_root_run(pf__task *t)
{
	rt_root *r = PF_CONTAINER_OF(t, rt_root, task.task);
	r->result = rt_fib(pf__pool_current(r->pool), r->n);
	pthread_mutex_lock(&r->mu);
	r->done = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static int64_t
time_rt_fib(pf__pool *p, int n)
{
	rt_root r;
	memset(&r, 0, sizeof(r));
	r.task.fn = rt_root_run;
	atomic_init(&r.task.task.next, NULL);
	r.pool = p;
	r.n = n;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	int64_t t0 = now_ns();
	pf__pool_submit(p, &r.task.task);
	pthread_mutex_lock(&r.mu);
	while (!r.done)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	int64_t t1 = now_ns();
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	if (r.result != fib_value(n)) {
		fprintf(stderr, "pumped-bench: rt-fib(%d) = %ld, wrong\n", n,
		    r.result);
		exit(1);
	}
	return t1 - t0;
}

static pf__pool *
rt_pool_create(unsigned threads)
{
	pf__pool_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.threads = threads;
	cfg.max_spare = 1;
	cfg.run = rt_run;
	pf__pool *p;
	int rc = pf__pool_create(&p, &cfg);
	if (rc != 0)
		die("pf__pool_create", rc);
	return p;
}

static void
wl_rt_fib(long arg)
{
	int n = (int)arg;
	long calls = fib_calls(n), spawns = (calls - 1) / 2;
	char l1[48], ln[48];
	snprintf(l1, sizeof(l1), "pool fib, 1 thread");
	snprintf(ln, sizeof(ln), "pool fib, %u threads", g_opt.threads);
	series ser = { "serial C fib", "ns", { 0 }, 0, false };
	series one = { l1, "ns", { 0 }, 0, false };
	series many = { ln, "ns", { 0 }, 0, false };
	series spawn1 = { "", "ns", { 0 }, 0, false };
	print_title("rt-fib", arg, "runtime fork-join, a task per call");
	pf__pool *p1 = rt_pool_create(1), *pn = rt_pool_create(g_opt.threads);
	/* Warm-up: first touches of stacks and deques. */
	(void)time_rt_fib(p1, n < 20 ? n : 20);
	(void)time_rt_fib(pn, n < 20 ? n : 20);
	for (int r = 0; r < g_opt.runs; r++) {
		int64_t ts = time_serial_fib(n);
		settle();
		int64_t t1 = time_rt_fib(p1, n);
		settle();
		int64_t tn = time_rt_fib(pn, n);
		settle();
		series_add(&ser, (double)ts / (double)calls);
		series_add(&one, (double)t1 / (double)calls);
		series_add(&many, (double)tn / (double)calls);
		series_add(&spawn1, (double)(t1 - ts) / (double)spawns);
	}
	pf__pool_destroy(p1);
	pf__pool_destroy(pn);
	printf("  %ld calls, %ld spawn+join pairs\n", calls, spawns);
	print_series(&ser, "call");
	print_series(&one, "call");
	print_series(&many, "call");
	add_bar("rt-fib", &ser);
	add_bar("rt-fib", &one);
	add_bar("rt-fib", &many);
	report("rt-fib: ns per spawn+join, 1 thread", &spawn1, 15, 0,
	    "<= 15 ns");
	series sp = series_ratio(&one, &many);
	char what[64];
	snprintf(what, sizeof(what), "rt-fib: speedup 1 -> %u threads",
	    g_opt.threads);
	report(what, &sp, 0, 1.9, ">= 1.9 (fib 32)");
	series ov = series_ratio(&one, &ser);
	report("rt-fib: 1 thread / serial", &ov, 0, 0, NULL);
}

/* ------------------------------------------------ tracked fib (public) */

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
	if (rc != 0)
		return rc;
	if (rc2 != 0)
		return rc2;
	*(long *)out = a + b;
	return 0;
}

static pf_scope *
scope_create(unsigned threads)
{
	pf_scope_options o;
	memset(&o, 0, sizeof(o));
	o.threads = threads;
	pf_scope *s;
	int rc = pf_scope_create(&s, &o);
	if (rc != 0)
		die("pf_scope_create", rc);
	return s;
}

static int64_t
time_tracked_fib(pf_scope *s, int n)
{
	long r = 0;
	int64_t t0 = now_ns();
	int rc = pf_scope_run(s, &fib_flow, &n, &r, NULL);
	int64_t t1 = now_ns();
	if (rc != 0)
		die("fib: pf_scope_run", rc);
	if (r != fib_value(n)) {
		fprintf(stderr, "pumped-bench: tracked fib(%d) = %ld, wrong\n",
		    n, r);
		exit(1);
	}
	return t1 - t0;
}

static int64_t
checked_peer_fib(int64_t (*fn)(unsigned, int, long *), unsigned threads,
    int n)
{
	long r = 0;
	int64_t t = fn(threads, n, &r);
	if (t >= 0 && r != fib_value(n)) {
		fprintf(stderr, "pumped-bench: peer fib(%d) = %ld, wrong\n", n,
		    r);
		exit(1);
	}
	return t;
}

static void
wl_fib(long arg)
{
	int n = (int)arg;
	long calls = fib_calls(n);
	unsigned T = g_opt.threads;
	char l1[48], ln[48], lt[48], lo[48];
	snprintf(l1, sizeof(l1), "pumped tracked, 1 thread");
	snprintf(ln, sizeof(ln), "pumped tracked, %u threads", T);
	snprintf(lt, sizeof(lt), "oneTBB task_group, %u threads", T);
	snprintf(lo, sizeof(lo), "OpenMP tasks, %u threads", T);
	series ser = { "serial C fib", "ns", { 0 }, 0, false };
	series one = { l1, "ns", { 0 }, 0, false };
	series many = { ln, "ns", { 0 }, 0, false };
	series tbb = { lt, "ns", { 0 }, 0, !g_opt.peers || !bench_tbb_available() };
	series omp = { lo, "ns", { 0 }, 0, !g_opt.peers || !bench_omp_available() };
	print_title("fib", arg, "every call a tracked child execution, waited");
	pf_scope *s1 = scope_create(1), *sn = scope_create(T);
	(void)time_tracked_fib(s1, n < 18 ? n : 18);
	(void)time_tracked_fib(sn, n < 18 ? n : 18);
	if (!tbb.missing)
		(void)checked_peer_fib(bench_tbb_fib, T, n < 18 ? n : 18);
	if (!omp.missing)
		(void)checked_peer_fib(bench_omp_fib, T, n < 18 ? n : 18);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		series_add(&ser, (double)time_serial_fib(n) / (double)calls);
		series_add(&many, (double)time_tracked_fib(sn, n) / (double)calls);
		settle();
		if (!tbb.missing) {
			series_add(&tbb, (double)checked_peer_fib(bench_tbb_fib,
						   T, n) / (double)calls);
			settle();
		}
		if (!omp.missing) {
			series_add(&omp, (double)checked_peer_fib(bench_omp_fib,
						   T, n) / (double)calls);
			settle();
		}
		series_add(&one, (double)time_tracked_fib(s1, n) / (double)calls);
		settle();
	}
	pf_scope_dispose(s1);
	pf_scope_dispose(sn);
	printf("  %ld calls = %ld executions (times below are per call)\n",
	    calls, calls);
	print_series(&ser, "call");
	print_series(&one, "exec");
	print_series(&many, "exec");
	print_series(&tbb, "call");
	print_series(&omp, "call");
	add_bar("fib", &many);
	add_bar("fib", &tbb);
	add_bar("fib", &omp);
	series rt = series_ratio(&many, &tbb);
	char what[64];
	snprintf(what, sizeof(what), "fib %d: tracked / oneTBB, %u thr", n, T);
	report(what, &rt, 1.0, 0, "<= 1.0 (issue 3: <= 3)");
	series ro = series_ratio(&many, &omp);
	snprintf(what, sizeof(what), "fib %d: tracked / OpenMP, %u thr", n, T);
	report(what, &ro, 0, 0, NULL);
	series sp = series_ratio(&one, &many);
	snprintf(what, sizeof(what), "fib %d: tracked speedup 1 -> %u", n, T);
	report(what, &sp, 0, 0, NULL);
}

/* ----------------------------------------------------- stats, trace */

/*
 * Tracked fib(N) on a scope with a feature switched on (*son, set up by
 * the caller) and on a plain one, alternating: *off and *on get ns per
 * execution; the caller reads and disposes *son, and the plain scope is
 * disposed here.  The difference per run is reported against limit_ns.
 */
static void
fib_on_off(const char *name, long arg, pf_scope *son, double limit_ns,
    const char *target)
{
	int n = (int)arg;
	long calls = fib_calls(n);
	unsigned T = g_opt.threads;
	char loff[48], lon[48];
	snprintf(loff, sizeof(loff), "%s off, %u threads", name, T);
	snprintf(lon, sizeof(lon), "%s on, %u threads", name, T);
	series off = { loff, "ns", { 0 }, 0, false };
	series on = { lon, "ns", { 0 }, 0, false };
	pf_scope *soff = scope_create(T);
	(void)time_tracked_fib(soff, n < 18 ? n : 18);
	(void)time_tracked_fib(son, n < 18 ? n : 18);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		series_add(&off, (double)time_tracked_fib(soff, n) /
		    (double)calls);
		settle();
		series_add(&on, (double)time_tracked_fib(son, n) /
		    (double)calls);
		settle();
	}
	pf_scope_dispose(soff);
	print_series(&off, "exec");
	print_series(&on, "exec");
	series d = { "", "ns", { 0 }, 0, false };
	for (int i = 0; i < on.n && i < off.n; i++)
		d.v[d.n++] = on.v[i] - off.v[i];
	char what[64];
	snprintf(what, sizeof(what), "%s: ns per exec over off, %u thr", name,
	    T);
	report(what, &d, limit_ns, 0, target);
}

/* What keeping statistics (pf_scope_stats_enable) costs per execution. */
static void
wl_stats(long arg)
{
	print_title("stats", arg, "fib with and without pf_scope_stats");
	pf_scope *son = scope_create(g_opt.threads);
	int rc = pf_scope_stats_enable(son);
	if (rc != 0)
		die("pf_scope_stats_enable", rc);
	fib_on_off("stats", arg, son, 25, "<= 25 ns (issue 12)");
	pf_stats st;
	pf_flow_stats fs;
	rc = pf_scope_stats(son, &st, &fs, 1);
	if (rc != 0)
		die("pf_scope_stats", rc);
	printf("  the stats scope counted %" PRIu64 " executions (run p50 %"
	       PRIu64 " ns, p99 %" PRIu64 " ns, max %" PRIu64 " ns)\n",
	    st.completed, st.run.p50_ns, st.run.p99_ns, st.run.max_ns);
	pf_scope_dispose(son);
}

/* What a timeline trace (pf_scope_trace_start, to a temporary file
 * written at dispose) costs per execution. */
static void
wl_trace(long arg)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/pumped-bench-trace-%ld.json",
	    (long)getpid());
	print_title("trace", arg, "fib with and without a timeline trace");
	pf_scope *son = scope_create(g_opt.threads);
	int rc = pf_scope_trace_start(son, path);
	if (rc != 0)
		die("pf_scope_trace_start", rc);
	fib_on_off("trace", arg, son, 150, "<= 150 ns (issue 12)");
	int64_t t0 = now_ns();
	pf_scope_dispose(son); /* writes the file */
	printf("  dispose wrote the trace (%s) in %.1f ms, then removed\n",
	    path, (double)(now_ns() - t0) / 1e6);
	(void)remove(path);
}

/* --------------------------------------------------------------- pfor */

/* pf_scope_parallel_for over [0, N) with a grain of N / 1024, every piece
 * a tracked execution, against oneTBB's parallel_for with the same grain
 * (simple_partitioner) and a serial loop. */
typedef struct pfor_acc {
	_Atomic(uint64_t) sum;
} pfor_acc;

static int
pfor_piece(pf_ctx *c, int64_t b, int64_t e, void *arg)
{
	(void)c;
	pfor_acc *acc = arg;
	uint64_t s = 0;
	for (int64_t i = b; i < e; i++)
		s += pfor_body((uint64_t)i);
	atomic_fetch_add_explicit(&acc->sum, s, memory_order_relaxed);
	return 0;
}

static int64_t
time_pumped_pfor(pf_scope *s, long n, long grain, uint64_t *result)
{
	pfor_acc acc;
	atomic_init(&acc.sum, 0);
	int64_t t0 = now_ns();
	int rc = pf_scope_parallel_for(s, 0, n, grain, pfor_piece, &acc);
	int64_t t1 = now_ns();
	if (rc != 0)
		die("pf_scope_parallel_for", rc);
	*result = atomic_load(&acc.sum);
	return t1 - t0;
}

static void
wl_pfor(long arg)
{
	long n = arg, grain = n / 1024 > 0 ? n / 1024 : 1;
	unsigned T = g_opt.threads;
	char lp[48], lt[48];
	snprintf(lp, sizeof(lp), "pumped parallel_for, %u threads", T);
	snprintf(lt, sizeof(lt), "oneTBB parallel_for, %u threads", T);
	series ser = { "serial loop", "ms", { 0 }, 0, false };
	series pf = { lp, "ms", { 0 }, 0, false };
	series tbb = { lt, "ms", { 0 }, 0, !g_opt.peers || !bench_tbb_available() };
	print_title("pfor", arg, "a loop split into tracked pieces of n/1024");
	pf_scope *s = scope_create(T);
	uint64_t want = 0;
	for (long i = 0; i < n; i++)
		want += pfor_body((uint64_t)i);
	uint64_t got;
	(void)time_pumped_pfor(s, n / 8, grain, &got);
	if (!tbb.missing)
		(void)bench_tbb_pfor(T, n / 8, grain, &got);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		int64_t t0 = now_ns();
		uint64_t v = 0;
		for (long i = 0; i < n; i++)
			v += pfor_body((uint64_t)i);
		int64_t t1 = now_ns();
		if (v != want)
			die("pfor: serial", PF_EINVAL);
		series_add(&ser, (double)(t1 - t0) / 1e6);
		settle();
		series_add(&pf, (double)time_pumped_pfor(s, n, grain, &got) /
		    1e6);
		if (got != want) {
			fprintf(stderr, "pumped-bench: pfor sum wrong\n");
			exit(1);
		}
		settle();
		if (!tbb.missing) {
			series_add(&tbb, (double)bench_tbb_pfor(T, n, grain,
						 &got) / 1e6);
			if (got != want) {
				fprintf(stderr, "pumped-bench: tbb pfor sum "
						"wrong\n");
				exit(1);
			}
			settle();
		}
	}
	pf_scope_dispose(s);
	printf("  %ld elements, grain %ld (%ld pieces)\n", n, grain,
	    (n + grain - 1) / grain);
	print_series(&ser, "loop");
	print_series(&pf, "loop");
	print_series(&tbb, "loop");
	add_bar("pfor", &pf);
	add_bar("pfor", &tbb);
	series rt = series_ratio(&pf, &tbb);
	char what[64];
	snprintf(what, sizeof(what), "pfor: pumped / oneTBB, %u thr", T);
	report(what, &rt, 1.1, 0, "<= 1.1 (issue 13)");
	series sp = series_ratio(&ser, &pf);
	snprintf(what, sizeof(what), "pfor: speedup over serial, %u thr", T);
	report(what, &sp, 0, 0, NULL);
}

/* ------------------------------------------------------------ nqueens */

/*
 * N-queens: a child execution per placement above the last two rows (the
 * last two rows are counted serially in the handler), the last child of
 * each node run with pf_ctx_run and the others started with pf_ctx_exec
 * and waited; against oneTBB with a task_group per node, the same split.
 */
typedef struct nq_board {
	int n, row;
	uint32_t cols, d1, d2; /* attacked columns, both diagonals */
} nq_board;

static uint32_t
nq_free(const nq_board *b)
{
	uint32_t all = (UINT32_C(1) << b->n) - 1;
	return all & ~(b->cols | b->d1 | b->d2);
}

static nq_board
nq_place(const nq_board *b, uint32_t bit)
{
	uint32_t all = (UINT32_C(1) << b->n) - 1;
	nq_board k = { b->n, b->row + 1, b->cols | bit,
		((b->d1 | bit) << 1) & all, (b->d2 | bit) >> 1 };
	return k;
}

/* Solutions below board b, serially. */
static long
nq_serial(const nq_board *b)
{
	if (b->row == b->n)
		return 1;
	long count = 0;
	for (uint32_t f = nq_free(b); f != 0; f &= f - 1) {
		nq_board k = nq_place(b, f & -f);
		count += nq_serial(&k);
	}
	return count;
}

/* Executions the tracked solve makes: the root and every board above the
 * last two rows. */
static long
nq_execs(const nq_board *b)
{
	if (b->row >= b->n - 2)
		return 1;
	long count = 1;
	for (uint32_t f = nq_free(b); f != 0; f &= f - 1) {
		nq_board k = nq_place(b, f & -f);
		count += nq_execs(&k);
	}
	return count;
}

static int nq_handler(pf_ctx *c, const void *in, void *out);
static const pf_flow nq_flow = { "nqueens", nq_handler, sizeof(nq_board),
	sizeof(long) };

static int
nq_handler(pf_ctx *c, const void *in, void *out)
{
	const nq_board *b = in;
	if (b->row >= b->n - 2) {
		*(long *)out = nq_serial(b);
		return 0;
	}
	nq_board kids[32];
	int k = 0;
	for (uint32_t f = nq_free(b); f != 0; f &= f - 1)
		kids[k++] = nq_place(b, f & -f);
	pf_exec *e[32];
	int started = 0, rc = 0;
	for (; started < k - 1; started++)
		if ((rc = pf_ctx_exec(c, &nq_flow, &kids[started], NULL,
			 &e[started])) != 0)
			break;
	long total = 0, v = 0;
	if (rc == 0 && k > 0) {
		rc = pf_ctx_run(c, &nq_flow, &kids[k - 1], &v, NULL);
		total += v;
	}
	for (int i = 0; i < started; i++) {
		int r = pf_exec_wait(e[i], &v);
		pf_exec_release(e[i]);
		if (r != 0 && rc == 0)
			rc = r;
		total += v;
	}
	*(long *)out = total;
	return rc;
}

static int64_t
time_tracked_nq(pf_scope *s, int n, long want)
{
	nq_board b = { n, 0, 0, 0, 0 };
	long r = 0;
	int64_t t0 = now_ns();
	int rc = pf_scope_run(s, &nq_flow, &b, &r, NULL);
	int64_t t1 = now_ns();
	if (rc != 0)
		die("nqueens: pf_scope_run", rc);
	if (r != want) {
		fprintf(stderr, "pumped-bench: tracked nqueens(%d) = %ld, "
				"want %ld\n", n, r, want);
		exit(1);
	}
	return t1 - t0;
}

static int64_t
time_serial_nq(int n, long *r)
{
	nq_board b = { n, 0, 0, 0, 0 };
	int64_t t0 = now_ns();
	*r = nq_serial(&b);
	return now_ns() - t0;
}

static void
wl_nqueens(long arg)
{
	int n = (int)arg;
	unsigned T = g_opt.threads;
	nq_board root = { n, 0, 0, 0, 0 };
	long execs = nq_execs(&root), want = 0;
	char ln[48], lt[48];
	snprintf(ln, sizeof(ln), "pumped tracked, %u threads", T);
	snprintf(lt, sizeof(lt), "oneTBB task_group, %u threads", T);
	series ser = { "serial C", "ms", { 0 }, 0, false };
	series many = { ln, "ms", { 0 }, 0, false };
	series tbb = { lt, "ms", { 0 }, 0,
		!g_opt.peers || !bench_tbb_available() };
	print_title("nqueens", arg,
	    "a tracked child execution per placement above the last 2 rows");
	pf_scope *sn = scope_create(T);
	(void)time_serial_nq(n, &want);
	(void)time_tracked_nq(sn, n, want);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		long got = 0;
		series_add(&ser, (double)time_serial_nq(n, &got) / 1e6);
		series_add(&many, (double)time_tracked_nq(sn, n, want) / 1e6);
		settle();
		if (!tbb.missing) {
			int64_t t = bench_tbb_nqueens(T, n, &got);
			if (t >= 0 && got != want) {
				fprintf(stderr, "pumped-bench: oneTBB nqueens(%d) "
						"= %ld, want %ld\n", n, got, want);
				exit(1);
			}
			series_add(&tbb, (double)t / 1e6);
			settle();
		}
	}
	pf_scope_dispose(sn);
	printf("  %ld solutions, %ld executions per solve\n", want, execs);
	print_series(&ser, "solve");
	print_series(&many, "solve");
	print_series(&tbb, "solve");
	add_bar("nqueens", &many);
	add_bar("nqueens", &tbb);
	series rt = series_ratio(&many, &tbb);
	char what[64];
	snprintf(what, sizeof(what), "nqueens %d: tracked / oneTBB, %u thr", n,
	    T);
	report(what, &rt, 1.0, 0, "<= 1.0");
}

/* --------------------------------------------------------------- wide */

static int
nop_handler(pf_ctx *c, const void *in, void *out)
{
	return 0;
}
static const pf_flow nop_flow = { "nop", nop_handler, 0, 0 };

static pf_exec **g_handles;
static long g_nhandles;

static pf_exec **
handles(long n)
{
	if (n > g_nhandles) {
		free(g_handles);
		g_handles = malloc((size_t)n * sizeof(*g_handles));
		if (g_handles == NULL) {
			fprintf(stderr, "pumped-bench: out of memory\n");
			exit(1);
		}
		memset(g_handles, 0, (size_t)n * sizeof(*g_handles));
		g_nhandles = n;
	}
	return g_handles;
}

/* n root executions of f from this thread, then each waited and
 * released: the time of the whole, in ns. */
static int64_t
time_roots(pf_scope *s, const pf_flow *f, long n, uint64_t timeout_ms)
{
	pf_exec **h = handles(n);
	pf_exec_options o;
	memset(&o, 0, sizeof(o));
	o.timeout_ms = timeout_ms;
	const pf_exec_options *op = timeout_ms ? &o : NULL;
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int rc = pf_scope_exec(s, f, NULL, op, &h[i]);
		if (rc != 0)
			die("pf_scope_exec", rc);
	}
	for (long i = 0; i < n; i++) {
		int rc = pf_exec_wait(h[i], NULL);
		if (rc != 0)
			die("pf_exec_wait", rc);
		pf_exec_release(h[i]);
	}
	return now_ns() - t0;
}

static int64_t
time_wide(pf_scope *s, long n, uint64_t timeout_ms)
{
	return time_roots(s, &nop_flow, n, timeout_ms);
}

static void
wl_wide(long n)
{
	unsigned T = g_opt.threads;
	char lp[48], lm[48], lt[48];
	snprintf(lp, sizeof(lp), "pumped, %u threads", T);
	snprintf(lm, sizeof(lm), "mutex+condvar pool, %u threads", T);
	snprintf(lt, sizeof(lt), "oneTBB enqueue, %u threads", T);
	series pum = { lp, "ns", { 0 }, 0, false };
	series mp = { lm, "ns", { 0 }, 0, !g_opt.peers };
	series tbb = { lt, "ns", { 0 }, 0, !g_opt.peers || !bench_tbb_available() };
	print_title("wide", n, "root executions from one outside thread, then waited");
	pf_scope *s = scope_create(T);
	bench_mpool *pool = mp.missing ? NULL : bench_mpool_create(T);
	if (!mp.missing && pool == NULL)
		mp.missing = true;
	(void)time_wide(s, n / 10 + 1, 0);
	if (!tbb.missing)
		(void)bench_tbb_wide(T, n / 10 + 1);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		series_add(&pum, (double)time_wide(s, n, 0) / (double)n);
		settle();
		if (!mp.missing) {
			series_add(&mp, (double)bench_mpool_wide(pool, n) / (double)n);
			settle();
		}
		if (!tbb.missing) {
			series_add(&tbb, (double)bench_tbb_wide(T, n) / (double)n);
			settle();
		}
	}
	pf_scope_dispose(s);
	bench_mpool_destroy(pool);
	print_series(&pum, "exec");
	print_series(&mp, "task");
	print_series(&tbb, "task");
	add_bar("wide", &pum);
	add_bar("wide", &mp);
	add_bar("wide", &tbb);
	series a = series_ratio(&pum, &mp), b = series_ratio(&pum, &tbb);
	report("wide: pumped / mutex pool", &a, 1.0, 0, "<= 1.0");
	report("wide: pumped / oneTBB enqueue", &b, 0.75, 0, "<= 0.75");
}

static void
wl_timeout(long n)
{
	unsigned T = g_opt.threads;
	series plain = { "wide, no timeout", "ns", { 0 }, 0, false };
	series tmo = { "wide, timeout_ms = 10000", "ns", { 0 }, 0, false };
	print_title("timeout", n, "wide with a 10 s timeout armed on every execution");
	pf_scope *s = scope_create(T);
	(void)time_wide(s, n / 10 + 1, 10000);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		series_add(&plain, (double)time_wide(s, n, 0) / (double)n);
		settle();
		series_add(&tmo, (double)time_wide(s, n, 10000) / (double)n);
		settle();
	}
	pf_scope_dispose(s);
	print_series(&plain, "exec");
	print_series(&tmo, "exec");
	add_bar("timeout", &plain);
	add_bar("timeout", &tmo);
	series q = series_ratio(&tmo, &plain);
	report("timeout: with / without", &q, 1.1, 0, "<= 1.1");
}

/* ---------------------------------------------------------------- rtt */

static int64_t
time_rtt(pf_scope *s, long rounds)
{
	int64_t t0 = now_ns();
	for (long i = 0; i < rounds; i++) {
		int rc = pf_scope_run(s, &nop_flow, NULL, NULL, NULL);
		if (rc != 0)
			die("rtt: pf_scope_run", rc);
	}
	return now_ns() - t0;
}

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
wl_rtt(long n)
{
	unsigned T = g_opt.threads;
	char lp[48], lm[48], lt[48];
	snprintf(lp, sizeof(lp), "pumped, %u threads", T);
	snprintf(lm, sizeof(lm), "mutex+condvar pool, %u threads", T);
	snprintf(lt, sizeof(lt), "oneTBB enqueue+wait, %u threads", T);
	series pum = { lp, "ns", { 0 }, 0, false };
	series mp = { lm, "ns", { 0 }, 0, !g_opt.peers };
	series tbb = { lt, "ns", { 0 }, 0, !g_opt.peers || !bench_tbb_available() };
	series idle = { "", "%", { 0 }, 0, false };
	print_title("rtt", n, "sequential submit + wait from an outside thread");
	pf_scope *s = scope_create(T);
	bench_mpool *pool = mp.missing ? NULL : bench_mpool_create(T);
	if (!mp.missing && pool == NULL)
		mp.missing = true;
	(void)time_rtt(s, n / 10 + 1);
	if (!tbb.missing)
		(void)bench_tbb_rtt(T, n / 10 + 1);
	settle();
	for (int r = 0; r < g_opt.runs; r++) {
		series_add(&pum, (double)time_rtt(s, n) / (double)n);
		settle();
		if (!mp.missing) {
			series_add(&mp, (double)bench_mpool_rtt(pool, n) / (double)n);
			settle();
		}
		if (!tbb.missing) {
			series_add(&tbb, (double)bench_tbb_rtt(T, n) / (double)n);
			settle();
		}
	}
	bench_mpool_destroy(pool);
	/* Idle: the scope just ran work; the other runtimes have parked
	 * (settle) and the mutex pool is gone.  Whatever CPU the process
	 * uses now is the idle scope's (plus TBB's sleeping workers). */
	(void)time_rtt(s, 1000);
	int64_t idle_ns = g_opt.quick ? 500000000 : 1000000000;
	double c0 = cpu_seconds();
	int64_t w0 = now_ns();
	sleep_ns(idle_ns);
	double c1 = cpu_seconds();
	int64_t w1 = now_ns();
	series_add(&idle, 100.0 * (c1 - c0) / ((double)(w1 - w0) / 1e9));
	pf_scope_dispose(s);
	print_series(&pum, "round trip");
	print_series(&mp, "round trip");
	print_series(&tbb, "round trip");
	add_bar("rtt", &pum);
	add_bar("rtt", &mp);
	add_bar("rtt", &tbb);
	series a = series_ratio(&pum, &tbb), b = series_ratio(&pum, &mp);
	report("rtt: pumped / oneTBB", &a, 0.2, 0, "<= 0.2");
	report("rtt: pumped / mutex pool", &b, 0, 0, NULL);
	char what[64];
	snprintf(what, sizeof(what), "rtt: idle scope CPU, %% of a core (%.1f s)",
	    (double)idle_ns / 1e9);
	report(what, &idle, 5, 0, "<= 5 %");
}

static void
wl_rtt_idle(long n)
{
	unsigned T = g_opt.threads;
	char lp[48], lm[48], lt[48];
	snprintf(lp, sizeof(lp), "pumped, %u threads", T);
	snprintf(lm, sizeof(lm), "mutex+condvar pool, %u threads", T);
	snprintf(lt, sizeof(lt), "oneTBB enqueue+wait, %u threads", T);
	series pum = { lp, "ns", { 0 }, 0, false };
	series mp = { lm, "ns", { 0 }, 0, !g_opt.peers };
	series tbb = { lt, "ns", { 0 }, 0, !g_opt.peers || !bench_tbb_available() };
	print_title("rtt-idle", n, "one round trip after each 1 ms sleep, median latency");
	pf_scope *s = scope_create(T);
	bench_mpool *pool = mp.missing ? NULL : bench_mpool_create(T);
	if (!mp.missing && pool == NULL)
		mp.missing = true;
	double *lat = malloc((size_t)n * sizeof(*lat));
	double *all = malloc((size_t)n * (size_t)g_opt.runs * sizeof(*all));
	if (lat == NULL || all == NULL) {
		fprintf(stderr, "pumped-bench: out of memory\n");
		exit(1);
	}
	long nall = 0;
	for (int r = 0; r < g_opt.runs; r++) {
		for (int v = 0; v < 3; v++) {
			series *dst = v == 0 ? &pum : v == 1 ? &mp : &tbb;
			if (dst->missing)
				continue;
			for (long i = 0; i < n; i++) {
				sleep_ns(1000000);
				int64_t t;
				if (v == 0)
					t = time_rtt(s, 1);
				else if (v == 1)
					t = bench_mpool_rtt(pool, 1);
				else
					t = bench_tbb_rtt(T, 1);
				lat[i] = (double)t;
				if (v == 0)
					all[nall++] = (double)t;
			}
			series_add(dst, percentile_inplace(lat, n, 0.5));
		}
	}
	pf_scope_dispose(s);
	bench_mpool_destroy(pool);
	printf("  (each figure: the median latency of one run's %ld round trips)\n", n);
	print_series(&pum, NULL);
	print_series(&mp, NULL);
	print_series(&tbb, NULL);
	printf("  pumped over all runs: p90 %.1f us, p99 %.1f us\n",
	    percentile_inplace(all, nall, 0.9) / 1e3,
	    percentile_inplace(all, nall, 0.99) / 1e3);
	free(lat);
	free(all);
	add_bar("rtt-idle", &pum);
	add_bar("rtt-idle", &mp);
	add_bar("rtt-idle", &tbb);
	series us = pum;
	for (int i = 0; i < us.n; i++)
		us.v[i] /= 1e3;
	us.unit = "us";
	report("rtt-idle: pumped median latency", &us, 15, 0, "<= 15 us");
	series a = series_ratio(&pum, &tbb);
	report("rtt-idle: pumped / oneTBB", &a, 0, 0, NULL);
}

/* ------------------------------------------------------------- coarse */

static uint64_t g_spin_iters;
static volatile uint64_t g_sink;

__attribute__((noinline)) static uint64_t
spin_work(uint64_t iters)
{
	uint64_t x = 88172645463325252ULL;
	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

/* Iterations of spin_work that take ~2 ms here (best of a few tries, so
 * that a preemption during calibration does not shrink the work). */
static void
calibrate_spin(void)
{
	const uint64_t probe = 2000000;
	int64_t best = INT64_MAX;
	for (int i = 0; i < 5; i++) {
		int64_t t0 = now_ns();
		g_sink = spin_work(probe);
		int64_t t = now_ns() - t0;
		if (t < best)
			best = t;
	}
	g_spin_iters = (uint64_t)((double)probe * 2e6 / (double)best);
}

/* How many CPUs this process really gets right now: `threads` threads
 * each spinning ~20 ms against one thread alone.  On a shared machine
 * this says whether a missed speedup is the library's or the machine's. */
static void *
spin_thread(void *arg)
{
	g_sink = spin_work(*(const uint64_t *)arg);
	return NULL;
}

static double
machine_parallelism(unsigned threads)
{
	uint64_t iters = g_spin_iters * 10;
	pthread_t th[64];
	if (threads > 64)
		threads = 64;
	int64_t one = INT64_MAX, all = INT64_MAX;
	unsigned started = threads;
	for (int round = 0; round < 3; round++) {
		int64_t t0 = now_ns();
		g_sink = spin_work(iters);
		int64_t t1 = now_ns();
		unsigned n = 0;
		for (unsigned i = 0; i < threads; i++)
			n += pthread_create(&th[n], NULL, spin_thread, &iters) == 0;
		for (unsigned i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		int64_t t2 = now_ns();
		if (t1 - t0 < one)
			one = t1 - t0;
		if (t2 - t1 < all)
			all = t2 - t1;
		if (n < started)
			started = n;
	}
	return (double)started * (double)one / (double)all;
}

static int
coarse_handler(pf_ctx *c, const void *in, void *out)
{
	g_sink = spin_work(g_spin_iters);
	return 0;
}
static const pf_flow coarse_flow = { "coarse", coarse_handler, 0, 0 };

static void
wl_coarse(long n)
{
	unsigned T = g_opt.threads;
	char ln[48];
	snprintf(ln, sizeof(ln), "pumped, %u threads", T);
	series one = { "pumped, 1 thread", "ns", { 0 }, 0, false };
	series many = { ln, "ns", { 0 }, 0, false };
	print_title("coarse", n, "executions of ~2 ms CPU each");
	pf_scope *s1 = scope_create(1), *sn = scope_create(T);
	for (int r = 0; r < g_opt.runs; r++) {
		series_add(&one,
		    (double)time_roots(s1, &coarse_flow, n, 0) / (double)n);
		settle();
		series_add(&many,
		    (double)time_roots(sn, &coarse_flow, n, 0) / (double)n);
		settle();
	}
	pf_scope_dispose(s1);
	pf_scope_dispose(sn);
	print_series(&one, "exec");
	print_series(&many, "exec");
	add_bar("coarse", &one);
	add_bar("coarse", &many);
	series sp = series_ratio(&one, &many);
	char what[64];
	snprintf(what, sizeof(what), "coarse: speedup 1 -> %u threads", T);
	report(what, &sp, 0, 1.9, ">= 1.9");
}

/* ---------------------------------------------------------------- mem */

static atomic_int g_block_release;

static int
block_handler(pf_ctx *c, const void *in, void *out)
{
	while (!atomic_load_explicit(&g_block_release, memory_order_acquire))
		sleep_ns(100000);
	return 0;
}
static const pf_flow block_flow = { "block", block_handler, 0, 0 };

static long
rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = -1;
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Runs in its own process (measure_mem, --mem-child). */
static double
measure_mem_child(long n)
{
	atomic_store(&g_block_release, 0);
	pf_scope *s = scope_create(1);
	pf_exec *b;
	int rc = pf_scope_exec(s, &block_flow, NULL, NULL, &b);
	if (rc != 0)
		die("mem: pf_scope_exec", rc);
	while (pf_exec_status(b) != PF_RUNNING)
		sleep_ns(100000);
	pf_exec **h = handles(n); /* touched by handles() */
	long r0 = rss_bytes();
	for (long i = 0; i < n; i++) {
		rc = pf_scope_exec(s, &nop_flow, NULL, NULL, &h[i]);
		if (rc != 0)
			die("mem: pf_scope_exec", rc);
	}
	long r1 = rss_bytes();
	if (r0 < 0 || r1 < 0)
		fprintf(stderr, "pumped-bench: mem: cannot read "
		    "/proc/self/statm\n");
	long pending = 0;
	for (long i = 0; i < n; i++)
		pending += pf_exec_status(h[i]) == PF_PENDING;
	if (pending != n)
		fprintf(stderr, "pumped-bench: mem: only %ld of %ld pending\n",
		    pending, n);
	/* Drain properly: it also checks that the held work all runs. */
	atomic_store_explicit(&g_block_release, 1, memory_order_release);
	for (long i = 0; i < n; i++) {
		(void)pf_exec_wait(h[i], NULL);
		pf_exec_release(h[i]);
	}
	pf_exec_wait(b, NULL);
	pf_exec_release(b);
	pf_scope_dispose(s);
	if (r0 < 0 || r1 < 0)
		return -1;
	return (double)(r1 - r0) / (double)n;
}

/*
 * In a new process (this program again, exec'd with --mem-child N), so that
 * memory freed by earlier workloads and kept by the allocator does not hide
 * the cost, and so that nothing of the peers' runtimes (oneTBB and OpenMP
 * thread pools, their fork handlers) is inherited, as a fork would.
 */
static double
measure_mem(long n)
{
	int fd[2];
	fflush(stdout);
	fflush(stderr);
	if (pipe(fd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		close(fd[0]);
		if (dup2(fd[1], STDOUT_FILENO) < 0)
			_exit(126);
		char arg[32];
		snprintf(arg, sizeof(arg), "%ld", n);
		execl("/proc/self/exe", g_opt.argv0, "--mem-child", arg,
		    (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	double v = -1;
	char buf[64];
	ssize_t got = read(fd[0], buf, sizeof(buf) - 1);
	if (got > 0) {
		buf[got] = 0;
		v = strtod(buf, NULL);
	}
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		fprintf(stderr, "pumped-bench: mem: the measuring process was "
		    "killed by signal %d\n", WTERMSIG(st));
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "pumped-bench: mem: the measuring process "
		    "exited with status %d\n", WEXITSTATUS(st));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got <= 0)
		v = -1;
	return v;
}

static void
wl_mem(long n)
{
	series m = { "pumped, 1 blocked worker", "B", { 0 }, 0, false };
	print_title("mem", n, "resident bytes per pending execution (handles held)");
	for (int r = 0; r < g_opt.runs; r++)
		series_add(&m, measure_mem(n));
	print_series(&m, "pending exec");
	add_bar("mem", &m);
	report("mem: bytes per pending execution", &m, 192, 0,
	    "<= 192 (issue 3: <= 512)");
}

/* ---------------------------------------------------------------- svg */

static const char *
runtime_colour(const char *label)
{
	if (strncmp(label, "pumped", 6) == 0 || strncmp(label, "pool", 4) == 0)
		return strstr(label, "1 thread") ? "#9ecae1" : "#2171b5";
	if (strncmp(label, "wide", 4) == 0)
		return strstr(label, "timeout") ? "#2171b5" : "#9ecae1";
	if (strncmp(label, "oneTBB", 6) == 0)
		return "#e6550d";
	if (strncmp(label, "OpenMP", 6) == 0)
		return "#31a354";
	if (strncmp(label, "mutex", 5) == 0)
		return "#756bb1";
	return "#969696";
}

static void
xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

/* One group of bars per workload, each bar's height relative to the
 * slowest in its group (lower is better everywhere), labelled with its
 * value. */
static void
write_svg(const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "pumped-bench: cannot write %s\n", path);
		return;
	}
	const int bw = 26, gap = 40, h = 260, top = 40, left = 20;
	int x = left, width = left;
	for (int i = 0; i < g_nbars; i++)
		width += bw + ((i + 1 == g_nbars ||
				   strcmp(g_bars[i].group, g_bars[i + 1].group))
			? gap : 2);
	width += 260;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		   "height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n",
	    width, h + top + 60);
	fprintf(f, "<text x=\"%d\" y=\"20\" font-size=\"14\">libpumped bench, "
		   "%u threads, median of %d runs (lower is better; bar height "
		   "relative to the group's slowest)</text>\n",
	    left, g_opt.threads, g_opt.runs);
	for (int i = 0; i < g_nbars;) {
		int j = i;
		double mx = 0;
		while (j < g_nbars && strcmp(g_bars[j].group, g_bars[i].group) == 0) {
			if (g_bars[j].value > mx)
				mx = g_bars[j].value;
			j++;
		}
		int gx = x;
		for (int k = i; k < j; k++) {
			double bh = mx > 0 ? (double)h * g_bars[k].value / mx : 0;
			const char *u;
			double sc = scale_for(g_bars[k].value, g_bars[k].unit, &u);
			fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" "
				   "fill=\"%s\"><title>",
			    x, top + h - bh, bw, bh, runtime_colour(g_bars[k].runtime));
			xml_text(f, g_bars[k].runtime);
			fprintf(f, ": %.3g %s</title></rect>\n",
			    g_bars[k].value * sc, u);
			fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"9\" "
				   "transform=\"rotate(-60 %d %.1f)\">%.3g %s</text>\n",
			    x + 4, top + h - bh - 3, x + 4, top + h - bh - 3,
			    g_bars[k].value * sc, u);
			x += bw + 2;
		}
		fprintf(f, "<text x=\"%d\" y=\"%d\">", gx, top + h + 16);
		xml_text(f, g_bars[i].group);
		fputs("</text>\n", f);
		x += gap - 2;
		i = j;
	}
	/* Legend: every distinct runtime label. */
	int ly = top;
	for (int i = 0; i < g_nbars; i++) {
		bool seen = false;
		for (int k = 0; k < i && !seen; k++)
			seen = strcmp(g_bars[k].runtime, g_bars[i].runtime) == 0;
		if (seen)
			continue;
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" "
			   "fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
		    x + 10, ly, runtime_colour(g_bars[i].runtime), x + 24, ly + 9);
		xml_text(f, g_bars[i].runtime);
		fputs("</text>\n", f);
		ly += 15;
	}
	fputs("</svg>\n", f);
	fclose(f);
	printf("\nchart written to %s\n", path);
}

/* --------------------------------------------------------------- main */

typedef struct workload {
	const char *name;
	void (*fn)(long arg);
	long full, quick; /* default sizes */
} workload;

static const workload g_workloads[] = {
	{ "rt-fib", wl_rt_fib, 30, 25 },
	{ "fib", wl_fib, 30, 25 },
	{ "nqueens", wl_nqueens, 12, 10 },
	{ "wide", wl_wide, 1000000, 100000 },
	{ "rtt", wl_rtt, 100000, 10000 },
	{ "rtt-idle", wl_rtt_idle, 1000, 200 },
	{ "coarse", wl_coarse, 256, 64 },
	{ "timeout", wl_timeout, 1000000, 100000 },
	{ "mem", wl_mem, 1000000, 100000 },
	{ "stats", wl_stats, 30, 25 },
	{ "trace", wl_trace, 30, 25 },
	{ "pfor", wl_pfor, 100000000, 10000000 },
};
#define N_WORKLOADS (sizeof(g_workloads) / sizeof(g_workloads[0]))

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pumped-bench [--threads N] [--runs R] [--quick] [--no-peers]\n"
	    "                    [--svg FILE] [workload [SIZE]] ...\n"
	    "workloads (default: all, in this order):\n");
	for (size_t i = 0; i < N_WORKLOADS; i++)
		fprintf(f, "  %-9s default size %ld (--quick: %ld)\n",
		    g_workloads[i].name, g_workloads[i].full,
		    g_workloads[i].quick);
	fprintf(f,
	    "--threads N  threads of the multi-threaded runs (default: the CPUs\n"
	    "             this process may use)\n"
	    "--runs R     runs per workload (default 5, --quick 3); median and\n"
	    "             min-max are printed\n"
	    "--quick      smaller sizes, about 20 s in all\n"
	    "--peers      run the baselines (oneTBB, OpenMP, mutex pool; default)\n"
	    "--no-peers   libpumped only\n"
	    "--svg FILE   also write a bar chart\n");
}

static bool
parse_long(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0)
		return false;
	*out = v;
	return true;
}

static unsigned
default_threads(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int
main(int argc, char **argv)
{
	struct {
		const workload *w;
		long arg;
	} todo[64];
	int ntodo = 0;
	int runs = 0;
	g_opt.argv0 = argv[0];
	g_opt.peers = true;
	/* The mem workload's measuring process (measure_mem). */
	long mem_n;
	if (argc == 3 && strcmp(argv[1], "--mem-child") == 0 &&
	    parse_long(argv[2], &mem_n)) {
		printf("%.6f\n", measure_mem_child(mem_n));
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v;
		if (strcmp(a, "--threads") == 0 && i + 1 < argc &&
		    parse_long(argv[i + 1], &v) && v <= 1024) {
			g_opt.threads = (unsigned)v;
			i++;
		} else if (strcmp(a, "--runs") == 0 && i + 1 < argc &&
		    parse_long(argv[i + 1], &v) && v <= MAX_RUNS) {
			runs = (int)v;
			i++;
		} else if (strcmp(a, "--quick") == 0) {
			g_opt.quick = true;
		} else if (strcmp(a, "--peers") == 0) {
			g_opt.peers = true;
		} else if (strcmp(a, "--no-peers") == 0) {
			g_opt.peers = false;
		} else if (strcmp(a, "--svg") == 0 && i + 1 < argc) {
			g_opt.svg = argv[++i];
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			const workload *w = NULL;
			for (size_t k = 0; k < N_WORKLOADS; k++)
				if (strcmp(a, g_workloads[k].name) == 0)
					w = &g_workloads[k];
			if (w == NULL || ntodo == 64) {
				fprintf(stderr, "pumped-bench: bad argument '%s'\n", a);
				usage(stderr);
				return 2;
			}
			todo[ntodo].w = w;
			todo[ntodo].arg = 0;
			if (i + 1 < argc && parse_long(argv[i + 1], &v))
				todo[ntodo].arg = v, i++;
			ntodo++;
		}
	}
	if (g_opt.threads == 0)
		g_opt.threads = default_threads();
	g_opt.runs = runs ? runs : g_opt.quick ? 3 : 5;
	if (ntodo == 0)
		for (size_t k = 0; k < N_WORKLOADS; k++)
			todo[ntodo++].w = &g_workloads[k], todo[ntodo - 1].arg = 0;
	for (int i = 0; i < ntodo; i++) {
		if (todo[i].arg == 0)
			todo[i].arg = g_opt.quick ? todo[i].w->quick : todo[i].w->full;
		if ((strcmp(todo[i].w->name, "fib") == 0 ||
			strcmp(todo[i].w->name, "rt-fib") == 0) &&
		    todo[i].arg > 45) {
			fprintf(stderr, "pumped-bench: fib size at most 45\n");
			return 2;
		}
	}

	struct utsname u;
	uname(&u);
	printf("pumped-bench: libpumped %s, %s %s, %ld CPUs online, %u "
	       "threads, %d runs%s\n",
	    PF_VERSION_STRING, u.sysname, u.machine,
	    sysconf(_SC_NPROCESSORS_ONLN), g_opt.threads, g_opt.runs,
	    g_opt.quick ? ", quick" : "");
	printf("peers: oneTBB %s, OpenMP %s, mutex+condvar pool %s\n",
	    !g_opt.peers ? "off" : bench_tbb_available() ? "yes" : "not built",
	    !g_opt.peers ? "off" : bench_omp_available() ? "yes" : "not built",
	    g_opt.peers ? "yes" : "off");
#ifdef PF_DEBUG
	printf("WARNING: --enable-debug build: assertions on, figures are not "
	       "representative\n");
#endif
#if defined(PF_TSAN) || defined(__SANITIZE_ADDRESS__)
	printf("WARNING: sanitizer build: figures are not representative\n");
#endif
	calibrate_spin();
	printf("machine: %u threads of pure CPU spin run %.2fx as fast as one "
	       "(fastest of 3 each; %u.0 on an idle machine)\n",
	    g_opt.threads, machine_parallelism(g_opt.threads),
	    g_opt.threads);
	printf("figures: median [min - max] over the runs; ratios are per-run "
	       "pairs measured back to back\n");
	fflush(stdout);

	int64_t t0 = now_ns();
	for (int i = 0; i < ntodo; i++) {
		todo[i].w->fn(todo[i].arg);
		fflush(stdout);
	}
	if (g_opt.peers && bench_tbb_available())
		bench_tbb_shutdown();

	printf("\n== summary (%u threads; targets are those of issues 2-4, "
	       "set for 2 threads)\n", g_opt.threads);
	for (int i = 0; i < g_nsummary; i++) {
		summary_line *l = &g_summary[i];
		if (l->verdict == -1 && l->unit[0] == '-')
			printf("  %-44s %10s\n", l->what, "unavailable");
		else
			printf("  %-44s %10.3f %-3s [%.3f - %.3f]%s%s%s\n",
			    l->what, l->med, l->unit, l->lo, l->hi,
			    l->target[0] ? "  target " : "", l->target,
			    l->verdict == 1 ? " met" :
			    l->verdict == 0 ? " MISSED" : "");
	}
	printf("total %.1f s\n", (double)(now_ns() - t0) / 1e9);
	if (g_opt.svg != NULL)
		write_svg(g_opt.svg);
	free(g_handles);
	return 0;
}
