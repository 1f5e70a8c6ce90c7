/*
 * pipeline.c: a parallel pipeline of child flows, with tags, a timeout and
 * cancellation.
 *
 * One root flow, "pipeline", handles a request in four stages:
 *   1. fetch:     four fetches in parallel (pf_ctx_parallel_settled); one of
 *                 them is slow and has a 50 ms timeout, so it ends
 *                 cancelled with PF_ETIMEDOUT while the others complete.
 *   2. sum:       a child flow (pf_ctx_run) adds up what was fetched.
 *   3. validate:  fail-fast parallel (pf_ctx_parallel): one check fails,
 *                 which aborts the slow check still running.
 *   4. watch:     a long child flow started with pf_ctx_exec, then
 *                 aborted with pf_exec_abort.
 * Every child reads the request id (a tag set on the root) and the scale
 * (a scope tag) without anyone passing them down.  Slow work sleeps in
 * poll() on the context's abort signal fd, so an abort wakes it at once.
 *
 * Exit status 0 when every stage ended as described, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* poll() under -std=c11 */

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <pumped.h>

/* Tags: identity is the address; typed accessors come with the macro. */
PF_TAG(request_id_tag, uint32_t, "request.id")
PF_TAG(scale_tag, int, "scale")

#define E_INVALID (PF_EUSER - 1) /* our own failure code */

static int failures;

#define EXPECT(cond)                                                           \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "pipeline: %s:%d: expected %s\n",      \
			    __FILE__, __LINE__, #cond);                        \
			failures++;                                            \
		}                                                              \
	} while (0)

/*
 * Sleeps up to ms, waking early when ctx is aborted; returns 0 or the abort
 * reason (PF_ECANCELED, PF_ETIMEDOUT).
 */
static int
sleep_cancellable(pf_ctx *ctx, int ms)
{
	int fd = pf_signal_fd(pf_ctx_signal(ctx));
	if (fd < 0)
		return fd;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	poll(&p, 1, ms); /* readable: aborted; 0: slept the whole time */
	return pf_ctx_throw_if_aborted(ctx);
}

/* ------------------------------------------------------- stage 1: fetch */

typedef struct fetch_in {
	int item;
	int delay_ms;
} fetch_in;

typedef struct fetch_out {
	int value;
	uint32_t request;
} fetch_out;

static int
fetch(pf_ctx *ctx, const fetch_in *in, fetch_out *out)
{
	int rc = sleep_cancellable(ctx, in->delay_ms);
	if (rc != 0)
		return rc; /* the execution ends cancelled with this reason */
	int scale = 0;
	if (scale_tag_get(ctx, &scale) != 0 ||
	    request_id_tag_get(ctx, &out->request) != 0)
		return pf_ctx_fail(ctx, E_INVALID, "missing tags");
	out->value = in->item * scale;
	return 0;
}
PF_FLOW(fetch_flow, fetch_in, fetch_out, fetch)

/* --------------------------------------------------------- stage 2: sum */

typedef struct sum_in {
	int values[8];
	int n;
} sum_in;

static int
sum(pf_ctx *ctx, const sum_in *in, int *out)
{
	(void)ctx;
	*out = 0;
	for (int i = 0; i < in->n; i++)
		*out += in->values[i];
	return 0;
}
PF_FLOW(sum_flow, sum_in, int, sum)

/* ---------------------------------------------------- stage 3: validate */

typedef struct check_in {
	int value;
	int delay_ms;
} check_in;

static int
check_value(pf_ctx *ctx, const check_in *in, int *out)
{
	int rc = sleep_cancellable(ctx, in->delay_ms);
	if (rc != 0)
		return rc;
	if (in->value < 0)
		return pf_ctx_fail(ctx, E_INVALID, "value %d is negative",
		    in->value);
	*out = in->value;
	return 0;
}
PF_FLOW(check_flow, check_in, int, check_value)

/* ------------------------------------------------------- stage 4: watch */

typedef struct watch_in {
	int seconds;
} watch_in;

static int
watch(pf_ctx *ctx, const watch_in *in, int *out)
{
	int rc = sleep_cancellable(ctx, in->seconds * 1000);
	if (rc != 0)
		return rc;
	*out = 1;
	return 0;
}
PF_FLOW(watch_flow, watch_in, int, watch)

/* ---------------------------------------------------------------- root */

typedef struct request {
	int items[4];
} request;

typedef struct report {
	pf_status fetch_status[4];
	int fetch_result[4];
	int total;
	int validate_rc;
	pf_status check_status[2];
	int watch_rc;
	pf_status watch_status;
} report;

static void
print_calls(const char *stage, const pf_call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("  %-8s call %zu: %-9s %s\n", stage, i,
		    pf_status_name(calls[i].status),
		    pf_strerror(calls[i].result));
}

static int
pipeline(pf_ctx *ctx, const request *in, report *out)
{
	uint32_t id = 0;
	request_id_tag_get(ctx, &id);
	printf("request %" PRIu32 " in execution %s\n", id, pf_ctx_id(ctx));

	/* 1. fetch: item 2 is slow and gets a 50 ms timeout. */
	fetch_in fin[4];
	fetch_out fout[4];
	pf_call calls[4];
	pf_exec_options slow = { .name = "fetch-slow", .timeout_ms = 50 };
	for (int i = 0; i < 4; i++) {
		fin[i] = (fetch_in){ in->items[i], i == 2 ? 10000 : 5 };
		calls[i] = (pf_call){ .flow = &fetch_flow, .input = &fin[i],
			.output = &fout[i], .opts = i == 2 ? &slow : NULL };
	}
	pf_parallel_stats st;
	int rc = pf_ctx_parallel_settled(ctx, calls, 4, &st);
	if (rc != 0)
		return rc; /* could not even start them */
	print_calls("fetch", calls, 4);
	printf("  fetch: %zu of %zu succeeded\n", st.succeeded, st.total);

	sum_in s = { .n = 0 };
	for (int i = 0; i < 4; i++) {
		out->fetch_status[i] = calls[i].status;
		out->fetch_result[i] = calls[i].result;
		if (calls[i].status == PF_COMPLETED) {
			if (fout[i].request != id)
				return pf_ctx_fail(ctx, E_INVALID, "tag lost");
			s.values[s.n++] = fout[i].value;
		}
	}

	/* 2. sum, a child flow run and waited on. */
	rc = sum_flow_run(ctx, &s, &out->total, NULL);
	if (rc != 0)
		return rc;
	printf("  sum: %d\n", out->total);

	/* 3. validate, fail-fast: the negative value fails after 5 ms and
	 * aborts the slow check, which ends cancelled. */
	check_in cin[2] = { { out->total, 10000 }, { -1, 5 } };
	int cout[2];
	pf_call checks[2] = {
		{ .flow = &check_flow, .input = &cin[0], .output = &cout[0] },
		{ .flow = &check_flow, .input = &cin[1], .output = &cout[1] },
	};
	out->validate_rc = pf_ctx_parallel(ctx, checks, 2, &st);
	print_calls("validate", checks, 2);
	printf("  validate: %s\n", pf_strerror(out->validate_rc));
	out->check_status[0] = checks[0].status;
	out->check_status[1] = checks[1].status;

	/* 4. watch: started, then aborted by its parent's code. */
	watch_in w = { 10 };
	pf_exec *e;
	rc = watch_flow_exec(ctx, &w, NULL, &e);
	if (rc != 0)
		return rc;
	pf_exec_abort(e);
	out->watch_rc = pf_exec_wait(e, NULL);
	out->watch_status = pf_exec_status(e);
	printf("  watch: %s (%s)\n", pf_status_name(out->watch_status),
	    pf_strerror(out->watch_rc));
	pf_exec_release(e);
	return 0;
}
PF_FLOW(pipeline_flow, request, report, pipeline)

int
main(void)
{
	/* A scope tag: every execution of the scope sees it. */
	int scale = 10;
	pf_tag_value scope_tags[] = { scale_tag_value(&scale) };
	/* Four workers whatever the machine: the slow stages block their
	 * thread in poll(), and the fail-fast stage needs another thread free
	 * to run the failing check meanwhile. */
	pf_scope_options so = { .threads = 4, .tags = scope_tags, .n_tags = 1 };
	pf_scope *scope;
	int rc = pf_scope_create(&scope, &so);
	if (rc != 0) {
		fprintf(stderr, "pf_scope_create: %s\n", pf_strerror(rc));
		return 1;
	}

	/* A tag seeded into the root's context, inherited by its children. */
	uint32_t id = 42;
	pf_tag_value root_tags[] = { request_id_tag_value(&id) };
	pf_exec_options opts = { .tags = root_tags, .n_tags = 1 };
	request req = { { 1, 2, 3, 4 } };
	report rep;
	rc = pipeline_flow_scope_run(scope, &req, &rep, &opts);
	pf_scope_dispose(scope);

	EXPECT(rc == 0);
	if (rc != 0) {
		fprintf(stderr, "pipeline: %s\n", pf_strerror(rc));
		return 1;
	}
	for (int i = 0; i < 4; i++) {
		EXPECT(rep.fetch_status[i] ==
		    (i == 2 ? PF_CANCELLED : PF_COMPLETED));
		EXPECT(rep.fetch_result[i] == (i == 2 ? PF_ETIMEDOUT : 0));
	}
	EXPECT(rep.total == (1 + 2 + 4) * scale);
	EXPECT(rep.validate_rc == E_INVALID);
	EXPECT(rep.check_status[0] == PF_CANCELLED);
	EXPECT(rep.check_status[1] == PF_FAILED);
	EXPECT(rep.watch_rc == PF_ECANCELED);
	EXPECT(rep.watch_status == PF_CANCELLED);
	return failures == 0 ? 0 : 1;
}
