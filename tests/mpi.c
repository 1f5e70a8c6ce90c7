/*
 * tests/mpi.c: libpumped-mpi under mpirun (tests/check-mpi.sh runs it with
 * 2, 3 and 4 ranks).  Every rank attaches and registers the same flows;
 * rank 0 drives the cases below while the others, already in
 * pf_mpi_detach, serve it until it detaches too.  A failed
 * check prints the rank and the line and aborts the job (exit 1).
 *
 * Cases: remote echo (the output, the parent id across the wire), remote
 * failure with its message, abort mid-flight (the remote handler sees its
 * signal), remote timeout, the abort of a parent cascading to remote
 * grandchildren, a custom codec carrying pointers, codec failures, an
 * unregistered flow and misuse, 4 MiB inputs, stealing that drains an unbalanced tree over every
 * rank, and detach with work in flight.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pumped/mpi.h>

#define E_BAD (PF_EUSER - 1)
#define MAX_RANKS 16

static pf_mpi *g_m;
static int g_rank, g_size;
static atomic_int g_aborted;     /* wait_abort handlers that saw abort */
static atomic_int g_last_reason; /* the signal's reason they saw */
static atomic_int g_started;     /* wait_abort handlers that began */

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "rank %d: %s:%d: check failed: %s\n", \
			    g_rank, __FILE__, __LINE__, #c);                \
			fflush(stderr);                                     \
			MPI_Abort(MPI_COMM_WORLD, 1);                       \
		}                                                           \
	} while (0)
#define CHECK_EQ(a, b)                                                      \
	do {                                                                \
		long long a_ = (long long)(a), b_ = (long long)(b);         \
		if (a_ != b_) {                                             \
			fprintf(stderr,                                     \
			    "rank %d: %s:%d: %s == %lld, expected %s == %lld\n", \
			    g_rank, __FILE__, __LINE__, #a, a_, #b, b_);    \
			fflush(stderr);                                     \
			MPI_Abort(MPI_COMM_WORLD, 1);                       \
		}                                                           \
	} while (0)

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- flows */

typedef struct echo_out {
	int x;
	int rank;
	char parent[40];
	char self[40];
} echo_out;

static int
echo_handler(pf_ctx *c, const void *in, void *out)
{
	echo_out *o = out;
	o->x = *(const int *)in;
	o->rank = g_rank;
	pf_ctx *p = pf_ctx_parent(c);
	snprintf(o->parent, sizeof(o->parent), "%s", p ? pf_ctx_id(p) : "");
	snprintf(o->self, sizeof(o->self), "%s", pf_ctx_id(c));
	return 0;
}
static const pf_flow echo_flow = { "echo", echo_handler, sizeof(int),
	sizeof(echo_out) };

static int
fail_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	return pf_ctx_fail(c, E_BAD, "bad input %d on rank %d",
	    *(const int *)in, g_rank);
}
static const pf_flow fail_flow = { "fail", fail_handler, sizeof(int), 0 };

/* Waits for its abort (at most 20 s), notes it. */
static int
wait_abort_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	atomic_fetch_add(&g_started, 1);
	int64_t end = mono_ms() + 20000;
	while (!pf_ctx_aborted(c) && mono_ms() < end)
		sleep_ms(1);
	if (pf_ctx_aborted(c)) {
		atomic_store(&g_last_reason,
		    pf_signal_reason(pf_ctx_signal(c)));
		atomic_fetch_add(&g_aborted, 1);
	}
	return pf_ctx_throw_if_aborted(c);
}
static const pf_flow wait_abort_flow = { "wait-abort", wait_abort_handler, 0,
	0 };

/* What this rank noted: aborts seen, the last reason, handlers begun. */
typedef struct counts {
	int aborted, reason, started;
} counts;

static int
counts_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in;
	counts *o = out;
	o->aborted = atomic_load(&g_aborted);
	o->reason = atomic_load(&g_last_reason);
	o->started = atomic_load(&g_started);
	return 0;
}
static const pf_flow counts_flow = { "counts", counts_handler, 0,
	sizeof(counts) };

/* Starts wait-abort on rank *in and waits for it: a remote grandchild. */
static int
mid_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	return pf_mpi_run(g_m, c, *(const int *)in, &wait_abort_flow, NULL,
	    NULL, NULL);
}
static const pf_flow mid_flow = { "mid", mid_handler, sizeof(int), 0 };

/* Sleeps its input's ms; returns it. */
static int
nap_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	int ms = *(const int *)in;
	sleep_ms(ms);
	*(int *)out = ms;
	return 0;
}
static const pf_flow nap_flow = { "nap", nap_handler, sizeof(int),
	sizeof(int) };

/* An unbalanced tree of ANY_RANK executions: depth d has children d-1 and
 * d-2; leaves (d < 2) sleep 2 ms and count where they ran. */
typedef struct tree_out {
	long leaves;
	long on[MAX_RANKS];
} tree_out;

static const pf_flow tree_flow;

static int
tree_handler(pf_ctx *c, const void *in, void *out)
{
	int d = *(const int *)in;
	tree_out *o = out;
	memset(o, 0, sizeof(*o));
	if (d < 2) {
		sleep_ms(2);
		o->leaves = 1;
		o->on[g_rank] = 1;
		return 0;
	}
	int din[2] = { d - 1, d - 2 };
	pf_exec *e[2];
	for (int i = 0; i < 2; i++) {
		int rc = pf_mpi_exec(g_m, c, PF_MPI_ANY_RANK, &tree_flow,
		    &din[i], NULL, &e[i]);
		if (rc != 0)
			return rc;
	}
	int rc = 0;
	for (int i = 0; i < 2; i++) {
		tree_out t;
		int r = pf_exec_wait(e[i], &t);
		pf_exec_release(e[i]);
		if (r != 0) {
			rc = r;
			continue;
		}
		o->leaves += t.leaves;
		for (int k = 0; k < MAX_RANKS; k++)
			o->on[k] += t.on[k];
	}
	return rc;
}
static const pf_flow tree_flow = { "tree", tree_handler, sizeof(int),
	sizeof(tree_out) };

/* Travelling tags: the remote handler reads what the proxy saw. */
static const pf_tag user_tag = { "user", sizeof(int), NULL };
static const pf_tag local_only_tag = { "only-here", sizeof(int), NULL };

static int
tags_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	int *o = out;
	o[0] = -1;
	o[1] = -1;
	(void)pf_ctx_get(c, &user_tag, &o[0]);
	(void)pf_ctx_get(c, &local_only_tag, &o[1]);
	return 0;
}
static const pf_flow tags_flow = { "tags", tags_handler, 0, 2 * sizeof(int) };

/* A codec that says it encoded 10 bytes and gives none, and one that
 * claims 2^40 bytes. */
static int
liar_encode(const void *output, void **bytes, size_t *len, void *data)
{
	(void)output;
	*bytes = NULL;
	*len = data != NULL ? (size_t)1 << 40 : 10;
	return 0;
}
static const pf_flow liar_flow = { "liar", echo_handler, sizeof(int),
	sizeof(echo_out) };
static const pf_flow huge_flow = { "huge", echo_handler, sizeof(int),
	sizeof(echo_out) };

/* Which reason the remote handler's signal gave: waits for its abort. */
static int
reason_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	int64_t end = mono_ms() + 20000;
	while (!pf_ctx_aborted(c) && mono_ms() < end)
		sleep_ms(1);
	atomic_store(&g_last_reason, pf_signal_reason(pf_ctx_signal(c)));
	atomic_fetch_add(&g_aborted, 1);
	return pf_ctx_throw_if_aborted(c);
}
static const pf_flow reason_flow = { "reason", reason_handler, 0, 0 };

/* Misuse from inside a handler: detach and barrier would wait on the
 * handler itself. */
static int
misuse_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c, (void)in, (void)out;
	if (pf_mpi_detach(g_m) != PF_EINVAL)
		return PF_EUSER - 20;
	if (pf_mpi_barrier(g_m) != PF_EINVAL)
		return PF_EUSER - 21;
	return 0;
}
static const pf_flow misuse_flow = { "misuse", misuse_handler, 0, 0 };

/* Misuse from a status callback of a proxy: RUNNING comes while
 * pf_mpi_run creates it on this thread, and detach would wait for that
 * very call; COMPLETED comes on the communication thread, which detach
 * and barrier would wait for.  Both hung. */
static int cb_detach_rc = 1, cb_barrier_rc = 1;
static int cb_done_detach_rc = 1, cb_done_barrier_rc = 1;
static void
detach_in_callback(pf_exec *e, pf_status st, void *data)
{
	(void)e, (void)data;
	if (st == PF_RUNNING) {
		cb_detach_rc = pf_mpi_detach(g_m);
		cb_barrier_rc = pf_mpi_barrier(g_m);
	} else if (st == PF_COMPLETED) {
		cb_done_detach_rc = pf_mpi_detach(g_m);
		cb_done_barrier_rc = pf_mpi_barrier(g_m);
	}
}

/* Big data: 4 MiB in, its checksum out. */
#define BIG_N (1 << 20)
typedef struct big_in {
	uint32_t v[BIG_N];
} big_in;

static int
big_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	const big_in *b = in;
	uint64_t s = 0;
	for (size_t i = 0; i < BIG_N; i++)
		s = s * 31 + b->v[i];
	*(uint64_t *)out = s;
	return 0;
}
static const pf_flow big_flow = { "big", big_handler, sizeof(big_in),
	sizeof(uint64_t) };

/* Pointers across the wire: a custom codec. */
typedef struct vec {
	size_t n;
	int *v;
} vec;

static int
vec_encode(const void *input, void **bytes, size_t *len, void *data)
{
	(void)data;
	const vec *x = input;
	*len = sizeof(uint64_t) + x->n * sizeof(int);
	unsigned char *b = malloc(*len);
	if (b == NULL)
		return -1;
	uint64_t n = x->n;
	memcpy(b, &n, sizeof(n));
	memcpy(b + sizeof(n), x->v, x->n * sizeof(int));
	*bytes = b;
	return 0;
}

static int
vec_decode(const void *bytes, size_t len, void *input, void *data)
{
	(void)data;
	vec *x = input;
	uint64_t n;
	if (len < sizeof(n))
		return -1;
	memcpy(&n, bytes, sizeof(n));
	if (n > (len - sizeof(n)) / sizeof(int) ||
	    len != sizeof(n) + n * sizeof(int))
		return -1;
	x->n = (size_t)n;
	x->v = malloc(n * sizeof(int) + 1);
	if (x->v == NULL)
		return -1;
	memcpy(x->v, (const unsigned char *)bytes + sizeof(n),
	    n * sizeof(int));
	return 0;
}

static atomic_int g_freed;

static void
vec_free(void *input, void *data)
{
	(void)data;
	free(((vec *)input)->v);
	atomic_fetch_add(&g_freed, 1);
}

static int
sum_handler(pf_ctx *c, const void *in, void *out)
{
	(void)c;
	const vec *x = in;
	long s = 0;
	for (size_t i = 0; i < x->n; i++)
		s += x->v[i];
	*(long *)out = s;
	return 0;
}
static const pf_flow sum_flow = { "sum", sum_handler, sizeof(vec),
	sizeof(long) };

/* A codec whose decoding fails on ranks other than 0, and one whose
 * output encoding always fails. */
static int
picky_decode(const void *bytes, size_t len, void *input, void *data)
{
	(void)data;
	if (g_rank != 0 || len != sizeof(int))
		return -1;
	memcpy(input, bytes, sizeof(int));
	return 0;
}

static int
bad_encode(const void *output, void **bytes, size_t *len, void *data)
{
	(void)output, (void)bytes, (void)len, (void)data;
	return -1;
}

static const pf_flow picky_flow = { "picky", echo_handler, sizeof(int),
	sizeof(echo_out) };
static const pf_flow badout_flow = { "badout", echo_handler, sizeof(int),
	sizeof(echo_out) };
/* Registered on rank 0 only. */
static const pf_flow only0_flow = { "only-on-0", echo_handler, sizeof(int),
	sizeof(echo_out) };

/* ------------------------------------------------------------- cases */

static void
remote_echo(void)
{
	for (int r = 0; r < g_size; r++) {
		int x = 100 + r;
		echo_out o;
		pf_exec *e;
		CHECK_EQ(pf_mpi_exec(g_m, NULL, r, &echo_flow, &x, NULL, &e),
		    0);
		CHECK_EQ(pf_exec_wait(e, &o), 0);
		CHECK_EQ(pf_exec_status(e), PF_COMPLETED);
		CHECK_EQ(o.x, x);
		CHECK_EQ(o.rank, r);
		/* The remote execution is a child of the proxy. */
		CHECK(strcmp(o.parent, pf_exec_id(e)) == 0);
		CHECK(strcmp(o.self, pf_exec_id(e)) != 0);
		CHECK(strcmp(pf_exec_flow_name(e), "echo") == 0);
		pf_exec_release(e);
	}
	/* Many in flight at once, from a thread pool's workers too. */
	enum { N = 200 };
	pf_exec *e[N];
	for (int i = 0; i < N; i++)
		CHECK_EQ(pf_mpi_exec(g_m, NULL, i % g_size, &echo_flow, &i,
			     NULL, &e[i]),
		    0);
	for (int i = 0; i < N; i++) {
		echo_out o;
		CHECK_EQ(pf_exec_wait(e[i], &o), 0);
		CHECK_EQ(o.x, i);
		CHECK_EQ(o.rank, i % g_size);
		pf_exec_release(e[i]);
	}
}

static void
remote_failure(void)
{
	int x = 7;
	pf_exec *e;
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &fail_flow, &x, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), E_BAD);
	CHECK_EQ(pf_exec_status(e), PF_FAILED);
	const char *msg = NULL;
	CHECK_EQ(pf_ctx_error(pf_exec_ctx(e), &msg), E_BAD);
	CHECK(msg != NULL && strcmp(msg, "bad input 7 on rank 1") == 0);
	pf_exec_release(e);
}

static counts
counts_of(int rank)
{
	counts c;
	CHECK_EQ(pf_mpi_run(g_m, NULL, rank, &counts_flow, NULL, &c, NULL),
	    0);
	return c;
}

static void
abort_mid_flight(void)
{
	int target = g_size - 1;
	counts before = counts_of(target);
	pf_exec *e;
	CHECK_EQ(pf_mpi_exec(g_m, NULL, target, &wait_abort_flow, NULL, NULL,
		     &e),
	    0);
	/* Until the remote handler runs. */
	for (int i = 0; i < 5000 && counts_of(target).started == before.started;
	     i++)
		sleep_ms(1);
	CHECK_EQ(pf_exec_status(e), PF_RUNNING);
	CHECK_EQ(pf_exec_abort(e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_ECANCELED);
	CHECK_EQ(pf_exec_status(e), PF_CANCELLED);
	pf_exec_release(e);
	counts after = counts_of(target);
	CHECK_EQ(after.aborted, before.aborted + 1); /* it saw its signal */
	CHECK_EQ(after.reason, PF_ECANCELED);
}

static void
remote_timeout(void)
{
	int target = g_size - 1;
	counts before = counts_of(target);
	pf_exec_options o = { .timeout_ms = 150 };
	int64_t t0 = mono_ms();
	pf_exec *e;
	CHECK_EQ(pf_mpi_exec(g_m, NULL, target, &wait_abort_flow, NULL, &o,
		     &e),
	    0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	int64_t took = mono_ms() - t0;
	CHECK(took >= 140 && took < 5000);
	CHECK_EQ(pf_exec_status(e), PF_CANCELLED);
	pf_exec_release(e);
	counts after = counts_of(target);
	CHECK_EQ(after.aborted, before.aborted + 1);
	/* The budget travelled: the remote timed out on its own clock, or
	 * the proxy's timeout reached it first; either way a timeout. */
	CHECK_EQ(after.reason, PF_ETIMEDOUT);
	/* Many times: whichever side's timer fires first, the handler sees
	 * a timeout and the proxy says so in code and message. */
	for (int i = 0; i < 20; i++) {
		pf_exec_options q = { .timeout_ms = 30 + (uint64_t)(i % 5) };
		CHECK_EQ(pf_mpi_exec(g_m, NULL, target, &reason_flow, NULL, &q,
			     &e),
		    0);
		CHECK_EQ(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
		const char *msg = NULL;
		CHECK_EQ(pf_ctx_error(pf_exec_ctx(e), &msg), PF_ETIMEDOUT);
		CHECK(msg != NULL &&
		    strcmp(msg, pf_strerror(PF_ETIMEDOUT)) == 0);
		pf_exec_release(e);
		CHECK_EQ(counts_of(target).reason, PF_ETIMEDOUT);
	}
	/* A deadline already past when it would be sent: never runs. */
	pf_exec_options tiny = { .timeout_ms = 1 };
	CHECK_EQ(pf_mpi_exec(g_m, NULL, target, &wait_abort_flow, NULL, &tiny,
		     &e),
	    0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_ETIMEDOUT);
	pf_exec_release(e);
}

/* A local parent runs mid on rank 1, which runs wait-abort on rank 2 (or
 * 0): aborting the local parent reaches the remote grandchild. */
static int
parent_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	return pf_mpi_run(g_m, c, 1, &mid_flow, in, NULL, NULL);
}
static const pf_flow parent_flow = { "parent", parent_handler, sizeof(int),
	0 };

static void
cascade(void)
{
	int leaf = g_size > 2 ? 2 : 0;
	counts before = counts_of(leaf);
	pf_exec *e;
	CHECK_EQ(pf_scope_exec(pf_mpi_scope(g_m), &parent_flow, &leaf, NULL,
		     &e),
	    0);
	for (int i = 0; i < 5000 && counts_of(leaf).started == before.started;
	     i++)
		sleep_ms(1);
	CHECK_EQ(pf_exec_abort(e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_ECANCELED);
	pf_exec_release(e);
	counts after = counts_of(leaf);
	CHECK_EQ(after.aborted, before.aborted + 1);
}

static void
codecs(void)
{
	int v[1000];
	long want = 0;
	for (int i = 0; i < 1000; i++)
		want += v[i] = i * 3 - 7;
	vec x = { 1000, v };
	long got = 0;
	CHECK_EQ(pf_mpi_run(g_m, NULL, 1, &sum_flow, &x, &got, NULL), 0);
	CHECK_EQ(got, want);
	/* ANY_RANK with a codec, here or elsewhere: the same. */
	got = 0;
	CHECK_EQ(pf_mpi_run(g_m, NULL, PF_MPI_ANY_RANK, &sum_flow, &x, &got,
		     NULL),
	    0);
	CHECK_EQ(got, want);
	/* The remote decoder refuses: failed, PF_MPI_ECODEC, a message. */
	int one = 1;
	pf_exec *e;
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &picky_flow, &one, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_MPI_ECODEC);
	const char *msg = NULL;
	pf_ctx_error(pf_exec_ctx(e), &msg);
	CHECK(msg != NULL && strstr(msg, "decoding the input of picky") != NULL);
	pf_exec_release(e);
	/* Codecs that lie about their bytes: failed, never a crash. */
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &liar_flow, &one, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_MPI_ECODEC);
	pf_exec_release(e);
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 0, &liar_flow, &one, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_MPI_ECODEC);
	pf_exec_release(e);
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &huge_flow, &one, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_MPI_ECODEC);
	pf_exec_release(e);
	/* The remote output does not encode. */
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &badout_flow, &one, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_MPI_ECODEC);
	CHECK_EQ(pf_exec_status(e), PF_FAILED);
	pf_exec_release(e);
}

static void
unregistered(void)
{
	int x = 1;
	pf_exec *e;
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &only0_flow, &x, NULL, &e), 0);
	CHECK_EQ(pf_exec_wait(e, NULL), PF_MPI_ENOFLOW);
	CHECK_EQ(pf_exec_status(e), PF_FAILED);
	const char *msg = NULL;
	pf_ctx_error(pf_exec_ctx(e), &msg);
	CHECK(msg != NULL &&
	    strcmp(msg, "flow 'only-on-0' is not registered on rank 1") == 0);
	pf_exec_release(e);
	/* Not registered here at all: refused at once. */
	static const pf_flow nowhere = { "nowhere", echo_handler, sizeof(int),
		0 };
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &nowhere, &x, NULL, &e),
	    PF_MPI_ENOFLOW);
	CHECK(e == NULL);
	/* Misuse. */
	CHECK_EQ(pf_mpi_exec(g_m, NULL, g_size, &echo_flow, &x, NULL, &e),
	    PF_EINVAL);
	CHECK_EQ(pf_mpi_exec(g_m, NULL, -2, &echo_flow, &x, NULL, &e),
	    PF_EINVAL);
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &echo_flow, NULL, NULL, &e),
	    PF_EINVAL);
	CHECK_EQ(pf_mpi_exec(NULL, NULL, 1, &echo_flow, &x, NULL, &e),
	    PF_EINVAL);
	pf_exec_options keyed = { .key = "k" };
	CHECK_EQ(pf_mpi_exec(g_m, NULL, 1, &echo_flow, &x, &keyed, &e),
	    PF_EINVAL);
	CHECK_EQ(pf_mpi_register(g_m, &echo_flow, NULL), PF_EINVAL);
	CHECK_EQ(pf_mpi_run(g_m, NULL, 1, &misuse_flow, NULL, NULL, NULL), 0);
	pf_exec_options cbo = { .on_status = detach_in_callback };
	echo_out y;
	CHECK_EQ(pf_mpi_run(g_m, NULL, 1, &echo_flow, &x, &y, &cbo), 0);
	CHECK_EQ(y.x, x);
	CHECK_EQ(cb_detach_rc, PF_EINVAL);
	CHECK_EQ(cb_barrier_rc, PF_EINVAL);
	CHECK_EQ(cb_done_detach_rc, PF_EINVAL);
	CHECK_EQ(cb_done_barrier_rc, PF_EINVAL);
	CHECK_EQ(pf_mpi_detach(NULL), PF_EINVAL);
	CHECK_EQ(pf_mpi_barrier(NULL), PF_EINVAL);
}

static void
tags_travel(void)
{
	pf_ctx *c;
	int v = 4242, w = 77;
	pf_tag_value tv[] = { { &user_tag, &v }, { &local_only_tag, &w } };
	pf_ctx_options co = { .name = "with-tags", .tags = tv, .n_tags = 2 };
	CHECK_EQ(pf_scope_create_execution(pf_mpi_scope(g_m), &co, &c), 0);
	for (int r = 0; r < g_size; r++) {
		int o[2];
		CHECK_EQ(pf_mpi_run(g_m, c, r, &tags_flow, NULL, o, NULL), 0);
		CHECK_EQ(o[0], 4242);
		/* Registered on rank 0 only: it reaches rank 0's own
		 * requests, no other rank. */
		CHECK_EQ(o[1], r == 0 ? 77 : -1);
	}
	/* ANY_RANK, here or stolen: the same view. */
	int o[2];
	CHECK_EQ(pf_mpi_run(g_m, c, PF_MPI_ANY_RANK, &tags_flow, NULL, o,
		     NULL),
	    0);
	CHECK_EQ(o[0], 4242);
	pf_ctx_release(c);
	/* No tag set: the remote sees none. */
	CHECK_EQ(pf_mpi_run(g_m, NULL, 1, &tags_flow, NULL, o, NULL), 0);
	CHECK_EQ(o[0], -1);
	CHECK_EQ(pf_mpi_register_tag(g_m, &user_tag), PF_EINVAL);
	static const pf_tag unnamed = { NULL, sizeof(int), NULL };
	CHECK_EQ(pf_mpi_register_tag(g_m, &unnamed), PF_EINVAL);
}

/* ANY_RANK work with idle workers here runs here: not given to a rank
 * that waits on its lifelines (and may be asleep). */
static void
any_stays_when_idle(void)
{
	pf_mpi_stats s0, s1;
	sleep_ms(50); /* the others are idle, waiting on their lifelines */
	pf_mpi_stats_get(g_m, &s0);
	for (int i = 0; i < 300; i++) {
		int x = i;
		echo_out o;
		CHECK_EQ(pf_mpi_run(g_m, NULL, PF_MPI_ANY_RANK, &echo_flow, &x,
			     &o, NULL),
		    0);
		CHECK_EQ(o.x, i);
		CHECK_EQ(o.rank, 0);
	}
	pf_mpi_stats_get(g_m, &s1);
	CHECK_EQ(s1.given - s0.given, 0);
	CHECK_EQ(s1.local_any - s0.local_any, 300);
}

static void
big_data(void)
{
	big_in *b = malloc(sizeof(*b));
	CHECK(b != NULL);
	uint64_t want = 0;
	for (size_t i = 0; i < BIG_N; i++) {
		b->v[i] = (uint32_t)(i * 2654435761u);
		want = want * 31 + b->v[i];
	}
	for (int r = 0; r < g_size; r++) {
		uint64_t got = 0;
		CHECK_EQ(pf_mpi_run(g_m, NULL, r, &big_flow, b, &got, NULL), 0);
		CHECK(got == want);
	}
	free(b);
}

static void
stealing(void)
{
	pf_mpi_stats s0;
	pf_mpi_stats_get(g_m, &s0);
	int depth = 12; /* fib(13) = 233 leaves of 2 ms */
	tree_out o;
	int64_t t0 = mono_ms();
	CHECK_EQ(pf_mpi_run(g_m, NULL, PF_MPI_ANY_RANK, &tree_flow, &depth, &o,
		     NULL),
	    0);
	int64_t took = mono_ms() - t0;
	CHECK_EQ(o.leaves, 233);
	int ranks_used = 0;
	for (int r = 0; r < g_size; r++)
		ranks_used += o.on[r] > 0;
	pf_mpi_stats s1;
	pf_mpi_stats_get(g_m, &s1);
	printf("stealing: %ld leaves in %lld ms, on", o.leaves,
	    (long long)took);
	for (int r = 0; r < g_size; r++)
		printf(" %ld", o.on[r]);
	printf(" (rank 0 gave %llu)\n", s1.given - s0.given);
	CHECK_EQ(ranks_used, g_size);
}

/* Work in flight when rank 0 detaches: detach waits for it (a quiescence
 * point), aborted work ends cancelled, ANY_RANK work runs somewhere. */
enum { IN_FLIGHT = 12 };

/* The racy paths many times over: replies racing aborts and timeouts,
 * thieves racing local starts and aborts.  Every execution ends once,
 * completed with the right output or cancelled. */
static void
storm(void)
{
	int n = getenv("CI") != NULL ? 6000 : 20000;
	pf_exec **e = calloc((size_t)n, sizeof(*e));
	CHECK(e != NULL);
	unsigned seed = 12345;
	int completed = 0, cancelled = 0;
	for (int round = 0; round < n; round += 1000) {
		int end = round + 1000 < n ? round + 1000 : n;
		for (int i = round; i < end; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned r = seed >> 16;
			int rank = r % 3 == 0 ? PF_MPI_ANY_RANK :
			    (int)(r % (unsigned)g_size);
			pf_exec_options o = { .timeout_ms = r % 8 == 1 ? 1 : 0 };
			int ms = r % 16 == 0 ? 1 : 0;
			CHECK_EQ(pf_mpi_exec(g_m, NULL, rank, &nap_flow, &ms,
				     &o, &e[i]),
			    0);
			if (r % 4 == 2)
				pf_exec_abort(e[i]);
		}
		for (int i = round; i < end; i++) {
			int out = -1;
			int rc = pf_exec_wait(e[i], &out);
			pf_status st = pf_exec_status(e[i]);
			if (rc == 0) {
				CHECK_EQ(st, PF_COMPLETED);
				CHECK(out == 0 || out == 1);
				completed++;
			} else {
				CHECK(rc == PF_ECANCELED || rc == PF_ETIMEDOUT);
				CHECK_EQ(st, PF_CANCELLED);
				cancelled++;
			}
			pf_exec_release(e[i]);
		}
	}
	free(e);
	printf("storm: %d executions, %d completed, %d cancelled\n", n,
	    completed, cancelled);
	CHECK(completed > n / 4 && cancelled > n / 8);
}

static void
detach_in_flight(pf_exec **e)
{
	for (int i = 0; i < IN_FLIGHT; i++) {
		int ms = 200 + 10 * i;
		int rank = i % 3 == 2 ? PF_MPI_ANY_RANK : i % g_size;
		CHECK_EQ(pf_mpi_exec(g_m, NULL, rank, i % 4 == 3 ?
			     &wait_abort_flow : &nap_flow,
			     &ms, NULL, &e[i]),
		    0);
	}
	sleep_ms(20);
	for (int i = 0; i < IN_FLIGHT; i++)
		if (i % 4 == 3)
			pf_exec_abort(e[i]);
}

static void
after_detach(pf_exec **e)
{
	for (int i = 0; i < IN_FLIGHT; i++) {
		int ms = 0;
		CHECK(pf_exec_status(e[i]) >= PF_COMPLETED);
		int rc = pf_exec_try(e[i], &ms);
		if (i % 4 == 3) {
			CHECK_EQ(rc, PF_ECANCELED);
			CHECK_EQ(pf_exec_status(e[i]), PF_CANCELLED);
		} else {
			CHECK_EQ(rc, 0);
			CHECK_EQ(ms, 200 + 10 * i);
		}
		pf_exec_release(e[i]);
	}
}

/*
 * A misuse that must not crash: rank 1 disposes its scope before it
 * detaches while rank 0 keeps sending it work.  Each request completes
 * (before the dispose) or ends with PF_ESHUTDOWN; detach still ends.
 */
static int
dispose_first(pf_scope *s)
{
	int ended = 0, refused = 0;
	if (g_rank == 1) {
		sleep_ms(20);
		CHECK_EQ(pf_scope_dispose(s), 0);
	} else if (g_rank == 0) {
		for (int i = 0; i < 200; i++) {
			echo_out o;
			int rc = pf_mpi_run(g_m, NULL, 1, &echo_flow, &i, &o,
			    NULL);
			if (rc == 0) {
				CHECK_EQ(o.x, i);
				ended++;
			} else {
				CHECK_EQ(rc, PF_ESHUTDOWN);
				refused++;
			}
			sleep_ms(i < 10 ? 1 : 0);
		}
		printf("dispose first: %d answered, %d refused\n", ended,
		    refused);
		CHECK(refused > 0);
	}
	CHECK_EQ(pf_mpi_detach(g_m), 0);
	if (g_rank != 1)
		CHECK_EQ(pf_scope_dispose(s), 0);
	MPI_Finalize();
	return 0;
}

/*
 * The first request after a quiet spell (PF_MPI_TEST_IDLE: every rank
 * attached with idle_sleep_max_us 20000) waits at most about one of the
 * remote's idle sleeps.  Open MPI's probe progresses the transport after
 * looking, so a request that came during a sleep used to wait for the
 * next one too: never under 20 ms, up to 40.  Ten requests, each after
 * 60 ms of quiet: the quickest must take under 15 ms (each one lands at
 * a random point of a 20 ms sleep).
 */
static int
first_after_idle(pf_scope *s)
{
	if (g_rank == 0) {
		int64_t best = INT64_MAX;
		for (int i = 0; i < 10; i++) {
			sleep_ms(60);
			echo_out o;
			int64_t t0 = mono_ms();
			CHECK_EQ(pf_mpi_run(g_m, NULL, 1, &echo_flow, &i, &o,
			    NULL), 0);
			int64_t took = mono_ms() - t0;
			CHECK_EQ(o.x, i);
			best = took < best ? took : best;
		}
		printf("first request after idle: quickest of 10 %lld ms\n",
		    (long long)best);
		CHECK(best < 15);
	}
	CHECK_EQ(pf_mpi_detach(g_m), 0);
	CHECK_EQ(pf_scope_dispose(s), 0);
	MPI_Finalize();
	return 0;
}

int
main(int argc, char **argv)
{
	int level;
	MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &level);
	MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &g_size);
	setvbuf(stdout, NULL, _IONBF, 0);
	if (g_size < 2 || g_size > MAX_RANKS) {
		if (g_rank == 0)
			fprintf(stderr, "tests/mpi: run with 2 to %d ranks\n",
			    MAX_RANKS);
		MPI_Finalize();
		return 77;
	}
	pf_scope *s;
	pf_scope_options so = { .threads = 2 };
	CHECK_EQ(pf_scope_create(&s, &so), 0);
	bool idle_test = getenv("PF_MPI_TEST_IDLE") != NULL;
	pf_mpi_options mo = { .idle_sleep_max_us = idle_test ? 20000 : 0 };
	CHECK_EQ(pf_mpi_attach(s, MPI_COMM_WORLD, &mo, &g_m), 0);
	CHECK_EQ(pf_mpi_rank(g_m), g_rank);
	CHECK_EQ(pf_mpi_size(g_m), g_size);
	const pf_flow *flows[] = { &echo_flow, &fail_flow, &wait_abort_flow,
		&counts_flow, &mid_flow, &tree_flow, &nap_flow, &misuse_flow, &big_flow, &tags_flow, &reason_flow, NULL };
	for (int i = 0; flows[i] != NULL; i++)
		CHECK_EQ(pf_mpi_register(g_m, flows[i], NULL), 0);
	pf_mpi_codec vc = { vec_encode, vec_decode, vec_free, NULL, NULL,
		NULL };
	CHECK_EQ(pf_mpi_register(g_m, &sum_flow, &vc), 0);
	pf_mpi_codec pc = { NULL, picky_decode, NULL, NULL, NULL, NULL };
	CHECK_EQ(pf_mpi_register(g_m, &picky_flow, &pc), 0);
	pf_mpi_codec bc = { NULL, NULL, NULL, bad_encode, NULL, NULL };
	CHECK_EQ(pf_mpi_register(g_m, &badout_flow, &bc), 0);
	pf_mpi_codec lc = { NULL, NULL, NULL, liar_encode, NULL, NULL };
	CHECK_EQ(pf_mpi_register(g_m, &liar_flow, &lc), 0);
	pf_mpi_codec hc = { NULL, NULL, NULL, liar_encode, NULL, &hc };
	CHECK_EQ(pf_mpi_register(g_m, &huge_flow, &hc), 0);
	CHECK_EQ(pf_mpi_register_tag(g_m, &user_tag), 0);
	if (g_rank == 0)
		CHECK_EQ(pf_mpi_register_tag(g_m, &local_only_tag), 0);
	if (g_rank == 0)
		CHECK_EQ(pf_mpi_register(g_m, &only0_flow, NULL), 0);
	/* Registration is done everywhere before work is sent. */
	CHECK_EQ(pf_mpi_barrier(g_m), 0);
	if (getenv("PF_MPI_TEST_DISPOSE_FIRST") != NULL)
		return dispose_first(s);
	if (idle_test)
		return first_after_idle(s);
	pf_exec *left[IN_FLIGHT];
	if (g_rank == 0) {
		const char *only = getenv("PF_MPI_TEST_CASE");
		struct {
			const char *name;
			void (*fn)(void);
		} cases[] = {
			{ "echo", remote_echo },
			{ "failure", remote_failure },
			{ "abort", abort_mid_flight },
			{ "timeout", remote_timeout },
			{ "cascade", cascade },
			{ "codecs", codecs },
			{ "unregistered", unregistered },
			{ "tags", tags_travel },
			{ "any-stays", any_stays_when_idle },
			{ "stealing", stealing },
			{ "big", big_data },
			{ "storm", storm },
		};
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (only != NULL && strcmp(only, cases[i].name) != 0)
				continue;
			int64_t t0 = mono_ms();
			cases[i].fn();
			printf("ok %s (%d ranks, %lld ms)\n", cases[i].name,
			    g_size, (long long)(mono_ms() - t0));
		}
		detach_in_flight(left);
	}
	/* The other ranks detach at once and serve rank 0 meanwhile. */
	int64_t t0 = mono_ms();
	CHECK_EQ(pf_mpi_detach(g_m), 0);
	if (g_rank == 0) {
		after_detach(left);
		printf("ok detach with work in flight (%lld ms)\n",
		    (long long)(mono_ms() - t0));
	}
	CHECK_EQ(pf_scope_dispose(s), 0);
	MPI_Finalize();
	return 0;
}
