/*
 * mpi-primes: the demo's prime count, spread over the ranks of an MPI job
 * with libpumped-mpi.
 *
 *   mpirun -np 2 ./examples/mpi-primes [N]          (one host)
 *   mpirun --hostfile hosts -np 8 ./mpi-primes 200000000   (a cluster)
 *
 * Every rank attaches its scope and registers the chunk flow.  Rank 0
 * runs the root: it starts one PF_MPI_ANY_RANK execution per chunk and
 * waits for all of them; idle ranks take pending chunks from it (work
 * stealing between ranks), so nobody places work by hand.  The other
 * ranks just detach, which serves rank 0 until it is done.  Rank 0 prints
 * the count, the time, and how many chunks each rank ran; it exits 1 if
 * the count is wrong (checked for the N it knows).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pumped/mpi.h>

#define CHUNK 250000u
#define MAX_CHUNKS 65536
#define MAX_RANKS 1024

static pf_mpi *mpi;
static int my_rank;

typedef struct range {
	uint32_t lo, hi; /* count the primes in [lo, hi) */
} range;

typedef struct chunk_result {
	uint64_t primes;
	int32_t rank; /* where it ran */
} chunk_result;

static int
is_prime(uint32_t v)
{
	if (v < 2)
		return 0;
	if (v % 2 == 0)
		return v == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= v; d += 2)
		if (v % d == 0)
			return 0;
	return 1;
}

static int
count_chunk(pf_ctx *c, const void *in, void *out)
{
	const range *r = in;
	chunk_result *res = out;
	res->primes = 0;
	res->rank = my_rank;
	for (uint32_t v = r->lo; v < r->hi; v++) {
		if ((v & 0xffff) == 0 && pf_ctx_aborted(c))
			return pf_ctx_throw_if_aborted(c);
		res->primes += (uint64_t)is_prime(v);
	}
	return 0;
}

static const pf_flow chunk_flow = { "count-chunk", count_chunk,
	sizeof(range), sizeof(chunk_result) };

typedef struct job {
	uint32_t n;
	long *per_rank; /* chunks run on each rank (rank 0's memory) */
} job;

/* The root, on rank 0: one ANY_RANK child per chunk, then the sum. */
static int
count_primes(pf_ctx *c, const void *in, void *out)
{
	const job *j = in;
	size_t n = (j->n + CHUNK - 1) / CHUNK;
	pf_exec **e = calloc(n, sizeof(*e));
	if (e == NULL)
		return pf_ctx_fail(c, PF_ENOMEM, "no memory for %zu chunks", n);
	int rc = 0;
	size_t started = 0;
	for (; started < n && rc == 0; started++) {
		range r = { (uint32_t)(started * CHUNK),
			started * CHUNK + CHUNK > j->n ? j->n :
							 (uint32_t)(started * CHUNK + CHUNK) };
		rc = pf_mpi_exec(mpi, c, PF_MPI_ANY_RANK, &chunk_flow, &r, NULL,
		    &e[started]);
	}
	if (rc != 0)
		started--; /* the one that failed was not created */
	uint64_t total = 0;
	for (size_t i = 0; i < started; i++) {
		chunk_result res;
		int r = pf_exec_wait(e[i], &res);
		if (r == 0) {
			total += res.primes;
			if (res.rank >= 0 && res.rank < MAX_RANKS)
				j->per_rank[res.rank]++;
		} else if (rc == 0) {
			rc = r;
		}
		pf_exec_release(e[i]);
	}
	free(e);
	*(uint64_t *)out = total;
	return rc;
}

static const pf_flow root_flow = { "count-primes", count_primes, sizeof(job),
	sizeof(uint64_t) };

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	int level;
	MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &level);
	int size;
	MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000ul;
	if (n < 1 || n > (unsigned long)CHUNK * MAX_CHUNKS) {
		if (my_rank == 0)
			fprintf(stderr, "mpi-primes: N from 1 to %lu\n",
			    (unsigned long)CHUNK * MAX_CHUNKS);
		MPI_Finalize();
		return 2;
	}
	pf_scope *scope;
	int rc = pf_scope_create(&scope, NULL);
	if (rc == 0)
		rc = pf_mpi_attach(scope, MPI_COMM_WORLD, NULL, &mpi);
	if (rc == 0)
		rc = pf_mpi_register(mpi, &chunk_flow, NULL);
	if (rc == 0)
		rc = pf_mpi_barrier(mpi); /* registered everywhere */
	if (rc != 0) {
		fprintf(stderr, "mpi-primes: rank %d: %s\n", my_rank,
		    pf_mpi_strerror(rc));
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	int status = 0;
	if (my_rank == 0) {
		long *per_rank = calloc((size_t)size, sizeof(long));
		job j = { (uint32_t)n, per_rank };
		uint64_t primes = 0;
		double t0 = now_s();
		rc = pf_scope_run(scope, &root_flow, &j, &primes, NULL);
		double t = now_s() - t0;
		if (rc != 0) {
			fprintf(stderr, "mpi-primes: %s\n", pf_mpi_strerror(rc));
			status = 1;
		} else {
			printf("%" PRIu64 " primes below %lu in %.3f s on %d "
			       "ranks x %u threads; chunks per rank:",
			    primes, n, t, size, pf_scope_threads(scope));
			for (int r = 0; r < size && r < MAX_RANKS; r++)
				printf(" %ld", per_rank[r]);
			printf("\n");
			/* Known counts: pi(10^k). */
			static const struct {
				unsigned long n;
				uint64_t pi;
			} known[] = { { 1000000, 78498 },
				{ 2000000, 148933 }, { 10000000, 664579 },
				{ 100000000, 5761455 } };
			for (size_t i = 0; i < sizeof(known) / sizeof(known[0]);
			     i++)
				if (known[i].n == n && known[i].pi != primes) {
					fprintf(stderr,
					    "mpi-primes: expected %" PRIu64 "\n",
					    known[i].pi);
					status = 1;
				}
		}
		free(per_rank);
	}
	/* Collective: the other ranks serve rank 0 in here until it is done. */
	pf_mpi_detach(mpi);
	pf_scope_dispose(scope);
	MPI_Finalize();
	return status;
}
