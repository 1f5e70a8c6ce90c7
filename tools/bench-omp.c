/*
 * bench-omp.c: OpenMP tasks fib, a baseline for tools/pumped-bench.
 *
 * Compiled with $(OPENMP_CFLAGS) from AC_OPENMP; without OpenMP support
 * the pragmas are ignored and bench_omp_available() says 0.
 */
#include "config.h"

#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench-peers.h"

#ifdef _OPENMP
static long
ofib(int n)
{
	if (n < 2)
		return n;
	long a, b;
#pragma omp task shared(a) firstprivate(n)
	a = ofib(n - 1);
	b = ofib(n - 2);
#pragma omp taskwait
	return a + b;
}
#endif

int
bench_omp_available(void)
{
#ifdef _OPENMP
	return 1;
#else
	return 0;
#endif
}

int64_t
bench_omp_fib(unsigned threads, int n, long *result)
{
#ifdef _OPENMP
	struct timespec a, b;
	long r = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
#pragma omp parallel num_threads(threads)
#pragma omp single
	r = ofib(n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*result = r;
	return (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 +
	    (b.tv_nsec - a.tv_nsec);
#else
	(void)threads;
	(void)n;
	(void)result;
	return -1;
#endif
}
