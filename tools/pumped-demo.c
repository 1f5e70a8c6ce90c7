/*
 * pumped-demo: counts the primes below N, split into chunks that run as
 * child executions of one root flow on every core, then prints the
 * execution tree that ran (ids, names, statuses, durations), the total
 * time, and the speedup over the same job on a one-thread scope.
 *
 * Usage: pumped-demo [--trace FILE] [N [CHUNKS]]   (defaults: 4000000 and 16)
 *
 * --trace FILE records the multi-threaded run as a timeline trace (Chrome
 * Trace Event JSON; open it in Perfetto, or run tools/pumped-trace FILE).
 *
 * It uses only the public API (<pumped.h>).  Exit status 0 when both runs
 * found the same, known-good count; 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */

#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pumped.h>

#define MAX_CHUNKS 256

/* What one chunk's execution left behind, for the tree. */
typedef struct chunk_report {
	char id[37];
	char name[32];
	pf_status status;
	int64_t started_at, completed_at; /* ns since the epoch */
	int worker;                       /* demo's own thread numbering */
	uint64_t primes;
} chunk_report;

typedef struct job {
	uint32_t n;               /* count the primes in [0, n) */
	unsigned chunks;
	chunk_report *reports;    /* chunks entries, filled by the flows */
} job;

typedef struct range {
	uint32_t lo, hi;
} range;

typedef struct chunk_result {
	uint64_t primes;
	int worker;
} chunk_result;

/*
 * Numbers the threads that run chunks, in the order they first run one in
 * the current run (run_job() bumps run_number; threads of an earlier scope
 * renumber themselves).  Relaxed is enough: only uniqueness matters, and
 * the numbers reach main() through the waits, which order everything.
 */
static atomic_uint run_number;
static atomic_int next_worker;
static _Thread_local unsigned worker_run;
static _Thread_local int worker_number;

static int
this_worker(void)
{
	unsigned run = atomic_load_explicit(&run_number, memory_order_relaxed);
	if (worker_run != run) {
		worker_run = run;
		worker_number = atomic_fetch_add_explicit(&next_worker, 1,
		    memory_order_relaxed);
	}
	return worker_number;
}

static bool
is_prime(uint32_t v)
{
	if (v < 2)
		return false;
	if (v % 2 == 0)
		return v == 2;
	for (uint32_t d = 3; d <= v / d; d += 2)
		if (v % d == 0)
			return false;
	return true;
}

static int
count_chunk(pf_ctx *ctx, const range *in, chunk_result *out)
{
	uint64_t primes = 0;
	for (uint32_t v = in->lo; v < in->hi; v++) {
		/* Stay cancellable without paying for it on every number. */
		if ((v & 0xffff) == 0 && pf_ctx_aborted(ctx))
			return pf_ctx_throw_if_aborted(ctx);
		primes += is_prime(v);
	}
	out->primes = primes;
	out->worker = this_worker();
	return 0;
}
PF_FLOW(count_chunk_flow, range, chunk_result, count_chunk)

/*
 * Runs on the thread that finishes a chunk.  The terminal transition is
 * published after the context ended, so both timestamps are there.
 */
static void
on_chunk_status(pf_exec *e, pf_status status, void *data)
{
	chunk_report *r = data;
	r->status = status;
	if (status < PF_COMPLETED)
		return;
	pf_ctx *c = pf_exec_ctx(e);
	snprintf(r->id, sizeof r->id, "%s", pf_exec_id(e));
	r->started_at = pf_ctx_started_at(c);
	r->completed_at = pf_ctx_completed_at(c);
}

static int
count_primes(pf_ctx *ctx, const job *in, uint64_t *out)
{
	range ranges[MAX_CHUNKS];
	chunk_result results[MAX_CHUNKS];
	pf_exec_options opts[MAX_CHUNKS];
	pf_call calls[MAX_CHUNKS];

	for (unsigned i = 0; i < in->chunks; i++) {
		chunk_report *r = &in->reports[i];
		ranges[i] = (range){
			.lo = (uint32_t)((uint64_t)in->n * i / in->chunks),
			.hi = (uint32_t)((uint64_t)in->n * (i + 1) / in->chunks),
		};
		snprintf(r->name, sizeof r->name, "chunk[%u,%u)", ranges[i].lo,
		    ranges[i].hi);
		opts[i] = (pf_exec_options){
			.name = r->name,
			.on_status = on_chunk_status,
			.on_status_data = r,
		};
		calls[i] = (pf_call){
			.flow = &count_chunk_flow,
			.input = &ranges[i],
			.output = &results[i],
			.opts = &opts[i],
		};
	}

	pf_parallel_stats stats;
	int rc = pf_ctx_parallel(ctx, calls, in->chunks, &stats);
	if (rc != 0)
		return pf_ctx_fail(ctx, rc, "%zu of %zu chunks failed: %s",
		    stats.failed, stats.total, pf_strerror(rc));

	uint64_t total = 0;
	for (unsigned i = 0; i < in->chunks; i++) {
		total += results[i].primes;
		in->reports[i].primes = results[i].primes;
		in->reports[i].worker = results[i].worker;
	}
	*out = total;
	return 0;
}
PF_FLOW(count_primes_flow, job, uint64_t, count_primes)

static double
ms_between(int64_t from_ns, int64_t to_ns)
{
	return (double)(to_ns - from_ns) / 1e6;
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct run_result {
	uint64_t primes;
	double wall_ms;
	unsigned threads;
} run_result;

/*
 * Runs the whole job on a scope of `threads` workers (0: the default) and,
 * when print_tree, prints the execution tree.  Returns 0 or a code.
 */
/* --trace FILE: the multi-threaded run records a timeline there. */
static const char *trace_path;

static int
run_job(unsigned threads, uint32_t n, unsigned chunks, bool print_tree,
    run_result *res)
{
	pf_scope_options so = { .threads = threads };
	pf_scope *scope;
	int rc = pf_scope_create(&scope, &so);
	if (rc != 0) {
		fprintf(stderr, "pumped-demo: pf_scope_create: %s\n",
		    pf_strerror(rc));
		return rc;
	}
	res->threads = pf_scope_threads(scope);
	if (print_tree && trace_path != NULL &&
	    (rc = pf_scope_trace_start(scope, trace_path)) != 0) {
		fprintf(stderr, "pumped-demo: cannot trace to %s: %s\n",
		    trace_path, pf_strerror(rc));
		pf_scope_dispose(scope);
		return rc;
	}
	/* Ordered before the workers read it by pf_scope_exec below. */
	atomic_store_explicit(&next_worker, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&run_number, 1, memory_order_relaxed);

	chunk_report reports[MAX_CHUNKS];
	memset(reports, 0, sizeof reports);
	job j = { .n = n, .chunks = chunks, .reports = reports };
	pf_exec_options ro = { .name = "count-primes" };

	double t0 = now_ms();
	pf_exec *root = NULL;
	rc = pf_scope_exec(scope, &count_primes_flow, &j, &ro, &root);
	if (rc == 0)
		rc = pf_exec_wait(root, &res->primes);
	res->wall_ms = now_ms() - t0;

	if (rc != 0) {
		const char *msg = NULL;
		if (root != NULL)
			pf_ctx_error(pf_exec_ctx(root), &msg);
		fprintf(stderr, "pumped-demo: %s (%s)\n", pf_strerror(rc),
		    msg != NULL ? msg : "no message");
	} else if (print_tree) {
		pf_ctx *c = pf_exec_ctx(root);
		int64_t t_start = pf_ctx_started_at(c);
		printf("%s  %s  %-9s  %8.1f ms  (%" PRIu64 " primes below %"
		    PRIu32 ")\n", pf_exec_id(root), pf_ctx_name(c),
		    pf_status_name(pf_exec_status(root)),
		    ms_between(t_start, pf_ctx_completed_at(c)), res->primes,
		    n);
		for (unsigned i = 0; i < chunks; i++) {
			const chunk_report *r = &reports[i];
			printf("%s %s  %-22s %-9s  %8.1f ms  start +%6.1f ms  "
			    "thread %d  %" PRIu64 " primes\n",
			    i + 1 < chunks ? "|-" : "`-", r->id, r->name,
			    pf_status_name(r->status),
			    ms_between(r->started_at, r->completed_at),
			    ms_between(t_start, r->started_at), r->worker,
			    r->primes);
		}
	}
	pf_exec_release(root); /* NULL is ignored */
	pf_scope_dispose(scope);
	return rc;
}

/* pi(10^k) and a few others, to check the answer. */
static int64_t
known_count(uint32_t n)
{
	switch (n) {
	case 1000000: return 78498;
	case 2000000: return 148933;
	case 3000000: return 216816;
	case 4000000: return 283146;
	case 5000000: return 348513;
	case 10000000: return 664579;
	default: return -1;
	}
}

int
main(int argc, char **argv)
{
	uint32_t n = 4000000;
	unsigned chunks = 16;
	if (argc > 2 && strcmp(argv[1], "--trace") == 0) {
		trace_path = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc > 1)
		n = (uint32_t)strtoul(argv[1], NULL, 10);
	if (argc > 2)
		chunks = (unsigned)strtoul(argv[2], NULL, 10);
	if (argc > 3 || n < 2 || chunks < 1 || chunks > MAX_CHUNKS ||
	    chunks > n) {
		fprintf(stderr, "usage: pumped-demo [--trace FILE] [N [CHUNKS]]  "
		    "(2 <= N < 2^32, 1 <= CHUNKS <= %d)\n", MAX_CHUNKS);
		return 1;
	}

	printf("pumped-demo: counting the primes below %" PRIu32
	    " in %u child executions of one root flow\n\n", n, chunks);

	run_result one, all;
	if (run_job(1, n, chunks, false, &one) != 0)
		return 1;
	if (run_job(0, n, chunks, true, &all) != 0)
		return 1;

	printf("\n%u thread%s: %8.1f ms\n", one.threads,
	    one.threads == 1 ? " " : "s", one.wall_ms);
	printf("%u thread%s: %8.1f ms  (default scope: PUMPED_NUM_THREADS, "
	    "else the CPUs this process may use)\n", all.threads,
	    all.threads == 1 ? " " : "s", all.wall_ms);
	printf("speedup:    %8.2fx on %u threads\n", one.wall_ms / all.wall_ms,
	    all.threads);
	if (trace_path != NULL)
		printf("trace:      %s (tools/pumped-trace %s; or open it in "
		    "ui.perfetto.dev)\n", trace_path, trace_path);

	int64_t want = known_count(n);
	if (one.primes != all.primes ||
	    (want >= 0 && all.primes != (uint64_t)want)) {
		fprintf(stderr, "pumped-demo: wrong count: %" PRIu64 " with 1 "
		    "thread, %" PRIu64 " with %u, expected %" PRId64 "\n",
		    one.primes, all.primes, all.threads, want);
		return 1;
	}
	return 0;
}
