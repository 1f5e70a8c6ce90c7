/*
 * extension.c: a logging and timing extension.
 *
 * An extension's wrap runs around every operation of its scope, on the
 * thread that runs it: each flow execution (root or child), each fn step
 * (pf_ctx_exec_fn) and each parallel group.  This one prints the target,
 * the name, the depth, the result and the duration of each, and counts
 * them; dispose prints the totals.
 *
 * The program runs an "order" flow: a fn step, a parallel group of two
 * child flows, then a child flow that fails.  Exit status 0 when the
 * extension saw exactly those operations, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <pumped.h>

/* ----------------------------------------------------------- extension */

typedef struct log_state {
	/* Operations seen, per target; wrap runs on several threads. */
	atomic_uint ops[3];
	atomic_uint failed;
	atomic_llong total_ns[3];
	bool disposed;
} log_state;

static const char *const target_names[] = { "flow", "fn", "parallel" };

static long long
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
log_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	log_state *st = state;
	uint32_t depth = 0;
	pf_ctx_get(op->context, &pf_flow_depth_tag, &depth);

	long long t0 = now_ns();
	int rc = pf_next_call(next); /* the inner extensions and the operation */
	long long ns = now_ns() - t0;

	/* The context holds the failure message set with pf_ctx_fail. */
	const char *msg = NULL;
	if (rc != 0 && op->target != PF_TARGET_PARALLEL)
		pf_ctx_error(op->context, &msg);
	printf("[log] %*s%-8s %-10s %8.3f ms  %s%s%s%s\n", (int)depth * 2, "",
	    target_names[op->target], op->name, (double)ns / 1e6,
	    rc == 0 ? "ok" : pf_strerror(rc), msg != NULL ? " (" : "",
	    msg != NULL ? msg : "", msg != NULL ? ")" : "");

	/* Relaxed: plain counters, read after the scope was disposed. */
	atomic_fetch_add_explicit(&st->ops[op->target], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&st->total_ns[op->target], ns,
	    memory_order_relaxed);
	if (rc != 0)
		atomic_fetch_add_explicit(&st->failed, 1, memory_order_relaxed);
	return rc; /* pass the operation's result on unchanged */
}

static void
log_dispose(pf_scope *s, void *state)
{
	(void)s;
	log_state *st = state;
	for (int t = 0; t < 3; t++) {
		unsigned n = atomic_load_explicit(&st->ops[t],
		    memory_order_relaxed);
		long long ns = atomic_load_explicit(&st->total_ns[t],
		    memory_order_relaxed);
		printf("[log] %-8s %u operation%s, %.3f ms in all\n",
		    target_names[t], n, n == 1 ? "" : "s", (double)ns / 1e6);
	}
	st->disposed = true;
}

/* ------------------------------------------------------------ workload */

#define E_OUT_OF_STOCK (PF_EUSER - 1)

typedef struct item {
	int sku;
	int quantity;
} item;

static int
price(pf_ctx *ctx, const item *in, int *out)
{
	(void)ctx;
	*out = in->quantity * (100 + in->sku);
	return 0;
}
PF_FLOW(price_flow, item, int, price)

static int
stock(pf_ctx *ctx, const item *in, int *out)
{
	(void)ctx;
	*out = 1000 - in->quantity;
	return 0;
}
PF_FLOW(stock_flow, item, int, stock)

static int
notify(pf_ctx *ctx, const item *in, int *out)
{
	(void)out;
	return pf_ctx_fail(ctx, E_OUT_OF_STOCK, "sku %d: mail server down",
	    in->sku);
}
PF_FLOW(notify_flow, item, int, notify)

static int
validate(pf_ctx *ctx, void *arg)
{
	const item *it = arg;
	return it->quantity > 0 ? 0 : pf_ctx_fail(ctx, PF_EUSER, "empty");
}

static int
order(pf_ctx *ctx, const item *in, int *out)
{
	int rc = pf_ctx_exec_fn(ctx, "validate", validate, (void *)in);
	if (rc != 0)
		return rc;

	int cost = 0, left = 0;
	pf_call calls[2] = {
		{ .flow = &price_flow, .input = in, .output = &cost },
		{ .flow = &stock_flow, .input = in, .output = &left },
	};
	rc = pf_ctx_parallel(ctx, calls, 2, NULL);
	if (rc != 0)
		return rc;

	/* Best effort: the order goes through even if the mail fails. */
	int ignored;
	if (notify_flow_run(ctx, in, &ignored, NULL) != E_OUT_OF_STOCK)
		return pf_ctx_fail(ctx, PF_EUSER, "notify should fail");
	*out = cost;
	return 0;
}
PF_FLOW(order_flow, item, int, order)

int
main(void)
{
	static log_state st;
	static const pf_extension logger = {
		.name = "logger",
		.wrap = log_wrap,
		.dispose = log_dispose,
		.state = &st,
	};
	const pf_extension *const exts[] = { &logger };
	pf_scope_options so = { .extensions = exts, .n_extensions = 1 };
	pf_scope *scope;
	int rc = pf_scope_create(&scope, &so);
	if (rc != 0) {
		fprintf(stderr, "pf_scope_create: %s\n", pf_strerror(rc));
		return 1;
	}

	item it = { .sku = 7, .quantity = 3 };
	int cost = 0;
	rc = order_flow_scope_run(scope, &it, &cost, NULL);
	pf_scope_dispose(scope); /* runs log_dispose */

	printf("order: %s, cost %d\n", pf_strerror(rc), cost);
	unsigned flows = atomic_load(&st.ops[PF_TARGET_FLOW]);
	unsigned fns = atomic_load(&st.ops[PF_TARGET_FN]);
	unsigned groups = atomic_load(&st.ops[PF_TARGET_PARALLEL]);
	unsigned failed = atomic_load(&st.failed);
	/* order, price, stock, notify; validate; one group; notify failed. */
	if (rc != 0 || cost != 3 * 107 || flows != 4 || fns != 1 ||
	    groups != 1 || failed != 1 || !st.disposed) {
		fprintf(stderr, "extension: unexpected: rc %d cost %d flows %u "
		    "fns %u groups %u failed %u disposed %d\n", rc, cost,
		    flows, fns, groups, failed, st.disposed);
		return 1;
	}
	return 0;
}
