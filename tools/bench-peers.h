/*
 * bench-peers.h: the baselines tools/pumped-bench measures libpumped
 * against, each in its own file so that only that file needs the peer's
 * compiler flags.
 *
 *   bench-tbb.cc   oneTBB: task_group fork-join, task_arena::enqueue
 *                  (built only when configure found TBB: HAVE_TBB)
 *   bench-omp.c    OpenMP tasks (compiled with $(OPENMP_CFLAGS); without
 *                  OpenMP it reports itself unavailable)
 *   bench-mpool.c  a plain pool: one mutex+condvar queue, N threads, no
 *                  stealing
 *
 * Every timing function returns elapsed nanoseconds (CLOCK_MONOTONIC) of
 * the measured part only, or -1 when the peer is unavailable or failed.
 * Nothing here is thread-safe: the bench calls it from its main thread.
 */
#ifndef PF_BENCH_PEERS_H
#define PF_BENCH_PEERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The loop body of the pfor workload, the same for every runtime: a few
 * multiplications the compiler cannot fold across iterations. */
static inline uint64_t
pfor_body(uint64_t i)
{
	uint64_t x = i * 0x9E3779B97F4A7C15u;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9u;
	return x ^ (x >> 32);
}

/* oneTBB ------------------------------------------------------------ */
/* 1 when built with TBB, else 0 (the functions then return -1). */
int bench_tbb_available(void);
/* fib(n) with a task_group per call (run n-1, compute n-2, wait) inside
 * a task_arena of `threads` slots; *result gets fib(n). */
int64_t bench_tbb_fib(unsigned threads, int n, long *result);
/* The N-queens solutions of an n x n board, a task_group per board above
 * the last two rows (those are counted serially), the last placement
 * inline; *result gets the count. */
int64_t bench_tbb_nqueens(unsigned threads, int n, long *result);
/* n tasks enqueued from this (outside) thread into an arena of `threads`
 * worker slots, then waited for (last task signals a condvar). */
int64_t bench_tbb_wide(unsigned threads, long n);
/* rounds sequential enqueue + wait from this thread. */
int64_t bench_tbb_rtt(unsigned threads, long rounds);
/* parallel_for over [0, n) with a simple_partitioner of grain `grain`,
 * each chunk adding pfor_body(i) for its elements; *result gets the sum. */
int64_t bench_tbb_pfor(unsigned threads, long n, long grain,
    uint64_t *result);
/* Frees the cached arenas (their threads go back to sleep anyway). */
void bench_tbb_shutdown(void);

/* OpenMP ------------------------------------------------------------ */
int bench_omp_available(void);
/* fib(n) with `omp task` for n-1, n-2 inline, `omp taskwait`, in a
 * parallel region of `threads` threads. */
int64_t bench_omp_fib(unsigned threads, int n, long *result);

/* Mutex+condvar pool -------------------------------------------------- */
typedef struct bench_mpool bench_mpool;
bench_mpool *bench_mpool_create(unsigned threads);
void bench_mpool_destroy(bench_mpool *p);
/* n tasks (each a malloc'd node, as a plain pool's submit does) submitted
 * from this thread, then waited for. */
int64_t bench_mpool_wide(bench_mpool *p, long n);
/* rounds sequential submit + wait (condvar) from this thread. */
int64_t bench_mpool_rtt(bench_mpool *p, long rounds);

#ifdef __cplusplus
}
#endif

#endif /* PF_BENCH_PEERS_H */
