/*
 * pumped-bench-mpi: pumped-bench's MPI mode (libpumped-mpi), run with two
 * ranks or more:
 *
 *   mpirun -np 2 ./tools/pumped-bench-mpi [--runs R] [rtt] [coarse] [idle]
 *
 * Each figure comes with a baseline measured in the same run:
 *  rtt     a remote round trip from rank 0 to rank 1 (a flow that does
 *          nothing, pf_mpi_run), median and p90 over 2000 after a warm-up,
 *          against a raw MPI ping-pong of one byte between the same ranks
 *          (made before attaching, from the main threads).
 *  coarse  256 tasks of about 10 ms of CPU each, started as
 *          PF_MPI_ANY_RANK children of a root on rank 0 with one thread
 *          per rank, against the same tasks as local children on rank 0
 *          alone (1 rank x 1 thread): the speedup.
 *  idle    the CPU an attached process uses when nothing happens, over
 *          2 s, per rank, in % of one core.
 * Rank 0 prints one line per figure.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <pumped/mpi.h>

static pf_mpi *mpi;
static int my_rank, nranks;

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int
nop_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	return 0;
}
static const pf_flow nop_flow = { "nop", nop_handler, 0, 0 };

/* About 10 ms of CPU: *in iterations of a dependent chain. */
static volatile uint64_t sink;

static uint64_t
spin(uint64_t iters)
{
	uint64_t x = 88172645463325252ull;
	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static int
work_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)out;
	sink = spin(*(const uint64_t *)in);
	return 0;
}
static const pf_flow work_flow = { "work", work_handler, sizeof(uint64_t),
	0 };

typedef struct coarse_in {
	uint64_t iters;
	int tasks;
	int remote; /* ANY_RANK children, else local ones */
} coarse_in;

static int
coarse_root(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	const coarse_in *ci = in;
	pf_exec **e = calloc((size_t)ci->tasks, sizeof(*e));
	if (e == NULL)
		return PF_ENOMEM;
	int rc = 0;
	for (int i = 0; i < ci->tasks; i++) {
		int r = ci->remote ?
		    pf_mpi_exec(mpi, c, PF_MPI_ANY_RANK, &work_flow,
			&ci->iters, NULL, &e[i]) :
		    pf_ctx_exec(c, &work_flow, &ci->iters, NULL, &e[i]);
		if (r != 0)
			return r; /* (a benchmark: no clean-up) */
	}
	for (int i = 0; i < ci->tasks; i++) {
		int r = pf_exec_wait(e[i], NULL);
		if (r != 0)
			rc = r;
		pf_exec_release(e[i]);
	}
	free(e);
	return rc;
}
static const pf_flow coarse_flow = { "coarse", coarse_root,
	sizeof(coarse_in), 0 };

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* A raw MPI ping-pong between ranks 0 and 1: the median in us. */
static double
raw_rtt(int n)
{
	double *t = malloc((size_t)n * sizeof(*t));
	char b = 0;
	for (int i = -100; i < n; i++) {
		double t0 = now_us();
		if (my_rank == 0) {
			MPI_Send(&b, 1, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
			MPI_Recv(&b, 1, MPI_CHAR, 1, 1, MPI_COMM_WORLD,
			    MPI_STATUS_IGNORE);
		} else if (my_rank == 1) {
			MPI_Recv(&b, 1, MPI_CHAR, 0, 1, MPI_COMM_WORLD,
			    MPI_STATUS_IGNORE);
			MPI_Send(&b, 1, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
		}
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	double m = median(t, n);
	free(t);
	return m;
}

static void
bench_rtt(double raw)
{
	enum { N = 2000 };
	double *t = malloc(N * sizeof(*t));
	for (int i = -200; i < N; i++) {
		double t0 = now_us();
		int rc = pf_mpi_run(mpi, NULL, 1, &nop_flow, NULL, NULL, NULL);
		if (rc != 0) {
			fprintf(stderr, "rtt: %s\n", pf_mpi_strerror(rc));
			exit(1);
		}
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	qsort(t, N, sizeof(*t), cmp_double);
	printf("rtt      median %7.1f us  p90 %7.1f us  (raw MPI ping-pong "
	       "%.1f us: %.1fx)\n",
	    t[N / 2], t[N * 9 / 10], raw, t[N / 2] / raw);
	free(t);
}

static void
bench_coarse(pf_scope *s, int runs)
{
	/* Calibrate 10 ms of this CPU. */
	uint64_t iters = 1000000;
	for (;;) {
		double t0 = now_us();
		sink = spin(iters);
		double us = now_us() - t0;
		if (us > 2000) {
			iters = (uint64_t)((double)iters * 10000.0 / us);
			break;
		}
		iters *= 4;
	}
	for (int r = 0; r < runs; r++) {
		coarse_in local = { iters, 256, 0 }, remote = { iters, 256, 1 };
		double t0 = now_us();
		int rc = pf_scope_run(s, &coarse_flow, &local, NULL, NULL);
		double tl = now_us() - t0;
		t0 = now_us();
		if (rc == 0)
			rc = pf_scope_run(s, &coarse_flow, &remote, NULL, NULL);
		double tr = now_us() - t0;
		if (rc != 0) {
			fprintf(stderr, "coarse: %s\n", pf_mpi_strerror(rc));
			exit(1);
		}
		printf("coarse   256 x 10 ms: %d ranks x %u thread %.3f s, "
		       "1 rank x %u thread %.3f s: speedup %.2f\n",
		    nranks, pf_scope_threads(s), tr / 1e6,
		    pf_scope_threads(s), tl / 1e6, tl / tr);
	}
}

static double
cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Every rank measures itself; rank 0 prints them all. */
static void
bench_idle(void)
{
	struct timespec pause = { 0, 300000000 }; /* let back-off settle */
	nanosleep(&pause, NULL);
	double c0 = cpu_s(), t0 = now_us();
	struct timespec two = { 2, 0 };
	nanosleep(&two, NULL);
	double pct = (cpu_s() - c0) / ((now_us() - t0) / 1e6) * 100.0;
	printf("idle     rank %d: %.2f%% of a core (attached, nothing to "
	       "do, 2 s)\n",
	    my_rank, pct);
}

int
main(int argc, char **argv)
{
	int level;
	MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &level);
	MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int runs = 1;
	bool want_rtt = false, want_coarse = false, want_idle = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "rtt") == 0)
			want_rtt = true;
		else if (strcmp(argv[i], "coarse") == 0)
			want_coarse = true;
		else if (strcmp(argv[i], "idle") == 0)
			want_idle = true;
	}
	if (!want_rtt && !want_coarse && !want_idle)
		want_rtt = want_coarse = want_idle = true;
	if (nranks < 2) {
		if (my_rank == 0)
			fprintf(stderr, "pumped-bench-mpi: run it with 2 ranks "
					"or more (mpirun -np 2)\n");
		MPI_Finalize();
		return 2;
	}
	double raw = raw_rtt(2000);
	pf_scope *s;
	pf_scope_options so = { .threads = 1 };
	if (pf_scope_create(&s, &so) != 0 ||
	    pf_mpi_attach(s, MPI_COMM_WORLD, NULL, &mpi) != 0 ||
	    pf_mpi_register(mpi, &nop_flow, NULL) != 0 ||
	    pf_mpi_register(mpi, &work_flow, NULL) != 0 ||
	    pf_mpi_barrier(mpi) != 0) {
		fprintf(stderr, "pumped-bench-mpi: set-up failed\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	if (want_idle)
		bench_idle();
	if (want_idle)
		pf_mpi_barrier(mpi); /* every rank measured before work */
	if (my_rank == 0) {
		for (int r = 0; r < runs && want_rtt; r++)
			bench_rtt(raw);
		if (want_coarse)
			bench_coarse(s, runs);
	}
	pf_mpi_detach(mpi);
	pf_scope_dispose(s);
	MPI_Finalize();
	return 0;
}
