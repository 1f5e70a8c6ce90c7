/*
 * fuzz_api.c: a libFuzzer target that turns bytes into libpumped API calls.
 *
 * Each input creates its own scope (1 or 2 workers, with or without a
 * counting extension), runs a sequence of driver operations decoded from
 * the bytes (standalone contexts, root and child executions, aborts, tags,
 * waits, status subscriptions, signal listeners, releases), disposes the
 * scope, and then checks what every execution went through.  Flow handlers
 * read a small program copied into their input (8 bytes) and act on it:
 * set and read tags, start children and wait for them, fn steps, parallel
 * and parallel_settled groups, journal keys, spin until aborted, wait on
 * the signal fd, add and remove signal listeners, fail.
 *
 * A broken invariant calls abort() after printing what broke, so libFuzzer
 * (or tests/fuzz/replay.c under `make check`) reports the input.  Every
 * input releases everything it created: libFuzzer's leak check and ASan
 * see a clean process between inputs.
 *
 * Built by hand with libFuzzer (see docs/RELIABILITY.md), or linked with
 * tests/fuzz/replay.c by `make check` to replay tests/fuzz/corpus/.
 */
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pumped.h"

#define MAX_RECS 256  /* executions one input may create */
#define MAX_EXECS 8   /* handles the driver holds */
#define MAX_CTXS 4    /* standalone contexts the driver holds */
#define MAX_DEPTH 3
#define PROG_LEN 8
#define MAX_SUBS 64   /* pf_exec_on_status subscriptions per input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_api.c:%d: invariant broken: %s\n", \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

/* ------------------------------------------------------------- records */

/* What one execution went through; written by callbacks and handlers on
 * any thread (atomics only), read by the driver after dispose. */
typedef struct rec {
	_Atomic int claimed; /* 1: an exec call was or is being made for it */
	_Atomic int created; /* 1: the exec call returned a handle or 0 */
	_Atomic int refused; /* the refused exec call's code */
	_Atomic int n[5];    /* transitions seen by opts.on_status */
	_Atomic int seq;
	_Atomic int order_bad;
	_Atomic int ran;     /* handler starts */
	_Atomic int term_err; /* pf_ctx_error in the terminal callback */
} rec;

typedef struct fuzz_state {
	rec recs[MAX_RECS];
	_Atomic int next_rec;
	_Atomic long ops[3]; /* extension operations, per pf_target */
	_Atomic long fn_ran;
	_Atomic long listener_runs;
	_Atomic long extra_cb; /* pf_exec_on_status callbacks */
	_Atomic int sub_hits[MAX_SUBS]; /* per subscription */
} fuzz_state;

static fuzz_state F;

typedef struct fin {
	uint32_t id;    /* record index */
	uint32_t depth; /* flow depth, UINT32_MAX when not known */
	uint8_t prog[PROG_LEN];
} fin;

static uint64_t
expected_out(uint32_t id)
{
	return (uint64_t)id * 0x9e3779b97f4a7c15ull ^ 0x5555;
}

static bool
is_abort(int rc)
{
	return rc == PF_ECANCELED || rc == PF_ETIMEDOUT;
}

/*
 * A call that starts work under c may be refused with the abort reason
 * when c is aborted, or with PF_ESHUTDOWN once the scope is disposing
 * (dispose refuses new work first, then aborts).
 */
static bool
refused_ok(const pf_ctx *c, int rc)
{
	return rc == PF_ESHUTDOWN || (is_abort(rc) && pf_ctx_aborted(c));
}

static void
on_status(pf_exec *e, pf_status st, void *data)
{
	rec *r = data;
	int prev = atomic_fetch_add_explicit(&r->seq, 1, memory_order_acq_rel);
	bool ok;
	switch (st) {
	case PF_PENDING:
		ok = prev == 0;
		break;
	case PF_RUNNING:
		ok = prev == 1;
		break;
	case PF_CANCELLED:
		ok = prev == 1 || prev == 2;
		break;
	case PF_COMPLETED:
	case PF_FAILED:
		ok = prev == 2;
		break;
	default:
		ok = false;
	}
	if (!ok)
		atomic_fetch_add_explicit(&r->order_bad, 1,
		    memory_order_relaxed);
	if ((unsigned)st < 5)
		atomic_fetch_add_explicit(&r->n[st], 1, memory_order_relaxed);
	if (st >= PF_COMPLETED) {
		/* The status and error are published before callbacks. */
		if (pf_exec_status(e) != st)
			atomic_fetch_add_explicit(&r->order_bad, 1,
			    memory_order_relaxed);
		atomic_store_explicit(&r->term_err,
		    pf_ctx_error(pf_exec_ctx(e), NULL), memory_order_relaxed);
	}
}

static void
extra_cb(pf_exec *e, pf_status st, void *data)
{
	(void)e;
	(void)st;
	atomic_fetch_add_explicit((_Atomic int *)data, 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&F.extra_cb, 1, memory_order_relaxed);
}

/* A new record, or -1 when the input used them all. */
static int
claim(void)
{
	int id = atomic_fetch_add_explicit(&F.next_rec, 1,
	    memory_order_relaxed);
	if (id >= MAX_RECS)
		return -1;
	atomic_store_explicit(&F.recs[id].claimed, 1, memory_order_relaxed);
	return id;
}

static void
settle(int id, int rc)
{
	if (rc == 0)
		atomic_store_explicit(&F.recs[id].created, 1,
		    memory_order_relaxed);
	else
		atomic_store_explicit(&F.recs[id].refused, rc,
		    memory_order_relaxed);
}

static pf_exec_options
rec_opts(int id, uint64_t timeout_ms)
{
	pf_exec_options o = { .timeout_ms = timeout_ms,
		.on_status = on_status, .on_status_data = &F.recs[id] };
	return o;
}

/* Checks a result returned by a wait (or try) that finished. */
static void
check_result(pf_exec *e, uint32_t id, int rc, uint64_t out)
{
	pf_status st = pf_exec_status(e);
	CHECK(st >= PF_COMPLETED && st <= PF_CANCELLED);
	CHECK(rc == pf_ctx_error(pf_exec_ctx(e), NULL));
	CHECK(pf_ctx_completed_at(pf_exec_ctx(e)) != 0);
	/* The terminal callback returned before the wait did. */
	rec *r = &F.recs[id];
	CHECK(atomic_load(&r->n[PF_COMPLETED]) + atomic_load(&r->n[PF_FAILED]) +
		atomic_load(&r->n[PF_CANCELLED]) == 1);
	switch (st) {
	case PF_COMPLETED:
		CHECK(rc == 0);
		CHECK(out == expected_out(id));
		break;
	case PF_FAILED:
		CHECK(rc <= PF_EUSER);
		break;
	default:
		CHECK(is_abort(rc));
		break;
	}
}

/* --------------------------------------------------------------- flows */

static int fuzz_handler(pf_ctx *c, const void *in, void *out);
static const pf_flow fuzz_flow = { "fuzz", fuzz_handler, sizeof(fin),
	sizeof(uint64_t) };

static const uint32_t tag_default = 7;
static const pf_tag tag_h = { "handler", sizeof(uint32_t), NULL };
static const pf_tag tag_d = { "driver", sizeof(uint32_t), &tag_default };
static const pf_tag tag_big = { "big", 24, NULL };

static fin
child_in(const fin *in, int pos, int id)
{
	fin c = { (uint32_t)id,
		in->depth == UINT32_MAX ? UINT32_MAX : in->depth + 1, { 0 } };
	for (int i = pos + 1, j = 0; i < PROG_LEN; i++, j++)
		c.prog[j] = in->prog[i];
	return c;
}

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct fn_arg {
	int code;
	bool ran;
} fn_arg;

static int
fuzz_fn(pf_ctx *c, void *arg)
{
	fn_arg *a = arg;
	a->ran = true;
	atomic_fetch_add_explicit(&F.fn_ran, 1, memory_order_relaxed);
	uint32_t v = (uint32_t)a->code, got = 0;
	if (pf_ctx_set(c, &tag_h, &v) == 0) {
		CHECK(pf_ctx_get(c, &tag_h, &got) == 0);
		CHECK(got == v);
	}
	CHECK(pf_ctx_started_at(c) != 0);
	return a->code;
}

static void
listener(pf_signal *s, void *data)
{
	CHECK(pf_signal_aborted(s));
	atomic_fetch_add_explicit((_Atomic int *)data, 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&F.listener_runs, 1, memory_order_relaxed);
}

/* Runs a child and checks what came back. */
static void
child_run(pf_ctx *c, const fin *in, int pos, uint8_t arg)
{
	int id = claim();
	if (id < 0)
		return;
	fin ci = child_in(in, pos, id);
	pf_exec_options o = rec_opts(id, arg % 4 == 3 ? arg % 3 : 0);
	pf_exec *e = NULL;
	bool forget = arg % 5 == 4;
	int rc = pf_ctx_exec(c, &fuzz_flow, &ci, &o, forget ? NULL : &e);
	settle(id, rc);
	if (rc != 0) {
		CHECK(refused_ok(c, rc));
		CHECK(e == NULL);
		return;
	}
	if (forget)
		return;
	if (arg & 8)
		pf_exec_abort(e);
	uint64_t out = 0;
	rc = pf_exec_wait(e, &out);
	check_result(e, ci.id, rc, out);
	pf_exec_release(e);
}

static void
parallel_op(pf_ctx *c, const fin *in, uint8_t arg)
{
	size_t n = 1 + arg % 3;
	bool settled = arg & 4;
	pf_call calls[3];
	uint64_t outs[3] = { 0 };
	pf_exec_options opts[3];
	fin ins[3];
	int ids[3];
	for (size_t i = 0; i < n; i++) {
		ids[i] = claim();
		if (ids[i] < 0)
			return;
		/* Leaves: a program of one byte, failing or not. */
		fin ci = { (uint32_t)ids[i],
			in->depth == UINT32_MAX ? UINT32_MAX : in->depth + 1,
			{ (uint8_t)((arg >> (3 + i)) & 1 ? 7 : 0) } };
		ins[i] = ci;
		opts[i] = rec_opts(ids[i], (arg >> 6) == 3 ? 1 : 0);
		calls[i] = (pf_call){ &fuzz_flow, &ins[i], &outs[i], &opts[i],
			12345, PF_PENDING, NULL };
	}
	pf_parallel_stats st = { 99, 99, 99, 99 };
	int rc = settled ? pf_ctx_parallel_settled(c, calls, n, &st) :
			   pf_ctx_parallel(c, calls, n, &st);
	if (rc != 0 && refused_ok(c, rc) &&
	    atomic_load(&F.recs[ids[0]].n[PF_PENDING]) == 0)
		return; /* refused: the group ran nothing */
	if (rc == PF_ESHUTDOWN)
		return; /* disposing: what ran is checked from the records */
	CHECK(st.total == n);
	CHECK(st.succeeded + st.failed == st.total);
	size_t ok = 0;
	bool rc_seen = rc == 0;
	for (size_t i = 0; i < n; i++) {
		CHECK(calls[i].status >= PF_COMPLETED &&
		    calls[i].status <= PF_CANCELLED);
		CHECK((calls[i].result == 0) ==
		    (calls[i].status == PF_COMPLETED));
		if (calls[i].status == PF_COMPLETED) {
			ok++;
			CHECK(outs[i] == expected_out(ins[i].id));
		}
		if (calls[i].result == rc)
			rc_seen = true;
	}
	CHECK(ok == st.succeeded);
	if (settled)
		CHECK(rc == 0 || is_abort(rc));
	else
		CHECK((rc == 0) == (ok == n));
	CHECK(rc_seen || is_abort(rc));
}

static void
journal_op(pf_ctx *c, const fin *in, int pos, uint8_t arg)
{
	char key[16];
	snprintf(key, sizeof(key), "k%d.%d", pos, arg & 1);
	int id1 = claim(), id2 = claim();
	if (id1 < 0 || id2 < 0)
		return;
	fin c1 = child_in(in, pos, id1), c2 = child_in(in, pos, id2);
	/* Only leaves, so that a failure is the handler's own. */
	memset(c1.prog, 0, sizeof(c1.prog));
	memset(c2.prog, 0, sizeof(c2.prog));
	c1.prog[0] = c2.prog[0] = arg & 2 ? 7 : 0;
	pf_exec_options o1 = rec_opts(id1, 0), o2 = rec_opts(id2, 0);
	o1.key = o2.key = key;
	if (arg & 4) {
		pf_exec *e1 = NULL, *e2 = NULL;
		int r1 = pf_ctx_exec(c, &fuzz_flow, &c1, &o1, &e1);
		settle(id1, r1);
		int r2 = pf_ctx_exec(c, &fuzz_flow, &c2, &o2, &e2);
		if (r2 != 0)
			atomic_store(&F.recs[id2].refused, r2);
		if (r1 == 0 && r2 != PF_ESHUTDOWN && !pf_ctx_aborted(c)) {
			/* Nothing could cancel e1: the same execution. */
			CHECK(r2 == 0);
			CHECK(strcmp(pf_exec_id(e1), pf_exec_id(e2)) == 0);
		}
		uint64_t out = 0;
		if (e1 != NULL) {
			int rc = pf_exec_wait(e1, &out);
			check_result(e1, (uint32_t)id1, rc, out);
		}
		pf_exec_release(e1);
		pf_exec_release(e2);
		return;
	}
	uint64_t out1 = 0, out2 = 0;
	int r1 = pf_ctx_run(c, &fuzz_flow, &c1, &out1, &o1);
	settle(id1, atomic_load(&F.recs[id1].n[PF_PENDING]) ? 0 : r1);
	int r2 = pf_ctx_run(c, &fuzz_flow, &c2, &out2, &o2);
	if (atomic_load(&F.recs[id2].n[PF_PENDING]) == 0)
		atomic_store(&F.recs[id2].refused, r2 ? r2 : -1);
	if (pf_ctx_aborted(c) || r1 == PF_ESHUTDOWN || r2 == PF_ESHUTDOWN)
		return;
	if (r1 == 0) {
		CHECK(r2 == 0 && out2 == out1);
		CHECK(out1 == expected_out((uint32_t)id1));
	} else if (!is_abort(r1)) {
		CHECK(r2 == r1);
	}
	if (!is_abort(r1))
		CHECK(atomic_load(&F.recs[id2].n[PF_PENDING]) == 0);
}

static int
fuzz_handler(pf_ctx *c, const void *vin, void *vout)
{
	const fin *in = vin;
	rec *r = &F.recs[in->id];
	atomic_fetch_add_explicit(&r->ran, 1, memory_order_relaxed);
	CHECK(pf_ctx_started_at(c) != 0);
	if (in->depth != UINT32_MAX) {
		uint32_t depth = 1234;
		CHECK(pf_ctx_get(c, &pf_flow_depth_tag, &depth) == 0);
		CHECK(depth == in->depth);
	}
	for (int pos = 0; pos < PROG_LEN; pos++) {
		uint8_t op = in->prog[pos] & 15, arg = in->prog[pos] >> 4;
		switch (op) {
		case 0: /* done */
			goto done;
		case 1: { /* own tag */
			uint32_t v = in->id * 31 + arg, got = 0;
			CHECK(pf_ctx_set(c, &tag_h, &v) == 0);
			CHECK(pf_ctx_get(c, &tag_h, &got) == 0);
			CHECK(got == v);
			uint32_t d = 0;
			CHECK(pf_ctx_get(c, &tag_d, &d) == 0);
			break;
		}
		case 2:
		case 3:
			if (in->depth != UINT32_MAX && in->depth >= MAX_DEPTH)
				break;
			child_run(c, in, pos, arg);
			if (op == 3)
				goto done; /* the child used the rest */
			break;
		case 4: { /* fn step */
			fn_arg a = { arg & 1 ? PF_EUSER - arg : 0, false };
			int rc = pf_ctx_exec_fn(c, "step", fuzz_fn, &a);
			if (a.ran)
				CHECK(rc == a.code);
			else
				CHECK(refused_ok(c, rc));
			break;
		}
		case 5:
			if (in->depth == UINT32_MAX || in->depth < MAX_DEPTH)
				parallel_op(c, in, in->prog[pos]);
			break;
		case 6:
			if (in->depth == UINT32_MAX || in->depth < MAX_DEPTH)
				journal_op(c, in, pos, arg);
			break;
		case 7: /* fail */
			return pf_ctx_fail(c, PF_EUSER - arg, "op %d", pos);
		case 8: { /* spin until aborted, at most 2 ms */
			int64_t end = now_us() + 200 * (arg % 10 + 1);
			while (!pf_ctx_aborted(c) && now_us() < end)
				sleep_us(50);
			break;
		}
		case 9: { /* the signal fd */
			int fd = pf_signal_fd(pf_ctx_signal(c));
			CHECK(fd >= 0);
			struct pollfd p = { fd, POLLIN, 0 };
			int n = poll(&p, 1, arg % 3);
			if (n == 1)
				CHECK(pf_ctx_aborted(c));
			break;
		}
		case 10: { /* a listener, added and removed */
			pf_signal_listener l;
			_Atomic int hits = 0;
			pf_signal *s = pf_ctx_signal(c);
			bool was = pf_signal_aborted(s);
			CHECK(pf_signal_add_listener(s, &l, listener,
				  (void *)&hits) == 0);
			if (was)
				CHECK(atomic_load(&hits) == 1);
			if (arg & 1)
				sleep_us(100);
			CHECK(pf_signal_remove_listener(s, &l) == 0);
			int h = atomic_load(&hits);
			CHECK(h <= 1);
			if (pf_signal_aborted(s) && arg & 1)
				sleep_us(10);
			CHECK(atomic_load(&hits) == h);
			break;
		}
		case 11: /* notice an abort */
			if (pf_ctx_throw_if_aborted(c) != 0)
				return pf_ctx_throw_if_aborted(c);
			break;
		case 12: { /* big tag on the parent chain */
			uint8_t v[24], got[24];
			memset(v, arg, sizeof(v));
			CHECK(pf_ctx_set(c, &tag_big, v) == 0);
			CHECK(pf_ctx_get(c, &tag_big, got) == 0);
			CHECK(memcmp(v, got, sizeof(v)) == 0);
			break;
		}
		case 13: /* abort itself */
			if (arg & 1)
				pf_ctx_abort(c);
			CHECK(!(arg & 1) || pf_ctx_aborted(c));
			break;
		default: /* 14, 15: a little work */
			sleep_us(arg * 10);
			break;
		}
	}
done:
	*(uint64_t *)vout = expected_out(in->id);
	return 0;
}

/* ---------------------------------------------------------- extension */

static int
ext_wrap(pf_scope *s, pf_next *next, const pf_operation *op, void *state)
{
	(void)s;
	(void)state;
	if ((unsigned)op->target < 3)
		atomic_fetch_add_explicit(&F.ops[op->target], 1,
		    memory_order_relaxed);
	CHECK(op->context != NULL);
	return pf_next_call(next);
}

static const pf_extension counting_ext = { "counting", NULL, ext_wrap, NULL,
	NULL };

/* -------------------------------------------------------------- driver */

typedef struct reader {
	const uint8_t *p;
	size_t n;
} reader;

static uint8_t
next_byte(reader *rd)
{
	if (rd->n == 0)
		return 0;
	rd->n--;
	return *rd->p++;
}

typedef struct held {
	pf_exec *e;
	uint32_t id;
} held;

/* Waits on a held handle and checks the outcome. */
static void
drive_wait(held *h, int how, uint8_t arg)
{
	uint64_t out = 0;
	int rc;
	switch (how) {
	case 0:
		rc = pf_exec_wait(h->e, &out);
		break;
	case 1:
		rc = pf_exec_wait_for(h->e, &out, arg % 3);
		break;
	default:
		rc = pf_exec_try(h->e, &out);
		break;
	}
	if (rc == PF_EAGAIN)
		return;
	check_result(h->e, h->id, rc, out);
	/* Finished: later calls return the same at once. */
	uint64_t out2 = 0;
	CHECK(pf_exec_try(h->e, &out2) == rc);
	if (rc == 0)
		CHECK(out2 == out);
}

static void
fill_prog(reader *rd, fin *in)
{
	size_t n = next_byte(rd) % (PROG_LEN + 1);
	for (size_t i = 0; i < n; i++)
		in->prog[i] = next_byte(rd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&F, 0, sizeof(F));
	reader rd = { data, size };
	uint8_t head = next_byte(&rd);
	const pf_extension *exts[1] = { &counting_ext };
	uint32_t scope_v = 3;
	pf_tag_value stags[1] = { { &tag_h, &scope_v } };
	pf_scope_options so = { .threads = 1 + (head & 1),
		.extensions = head & 2 ? exts : NULL,
		.n_extensions = head & 2 ? 1 : 0,
		.tags = head & 4 ? stags : NULL, .n_tags = head & 4 ? 1 : 0 };
	pf_scope *s = NULL;
	int rc = pf_scope_create(&s, &so);
	if (rc != 0) {
		CHECK(rc == PF_EAGAIN || rc == PF_ENOMEM);
		return 0;
	}
	bool counted = head & 2;

	held ex[MAX_EXECS];
	int n_ex = 0;
	pf_ctx *ctxs[MAX_CTXS];
	int n_ctx = 0;
	pf_signal_listener lst[MAX_CTXS];
	bool lst_on[MAX_CTXS] = { false };
	_Atomic int lst_hits[MAX_CTXS];
	for (int i = 0; i < MAX_CTXS; i++)
		atomic_init(&lst_hits[i], 0);
	int extra_subscribed = 0;

	int steps = 0;
	while (rd.n > 0 && steps++ < 64) {
		uint8_t b = next_byte(&rd);
		uint8_t op = b & 15, arg = b >> 4;
		switch (op) {
		case 0: { /* standalone context */
			if (n_ctx == MAX_CTXS)
				break;
			uint32_t v = arg;
			pf_tag_value tv = { &tag_d, &v };
			pf_ctx_options co = { .name = "standalone",
				.timeout_ms = arg & 8 ? arg % 4 : 0,
				.tags = &tv, .n_tags = arg & 1 };
			pf_ctx *c = NULL;
			CHECK(pf_scope_create_execution(s, &co, &c) == 0);
			CHECK(pf_ctx_started_at(c) != 0);
			CHECK(pf_ctx_parent(c) == NULL);
			CHECK(pf_ctx_scope(c) == s);
			uint32_t got = 0;
			CHECK(pf_ctx_get(c, &tag_d, &got) == 0);
			CHECK(got == (arg & 1 ? v : tag_default));
			lst_on[n_ctx] = false;
			ctxs[n_ctx++] = c;
			break;
		}
		case 1:   /* root execution */
		case 2: { /* child of a standalone context */
			int id = claim();
			if (id < 0)
				break;
			fin in = { (uint32_t)id, 0, { 0 } };
			fill_prog(&rd, &in);
			pf_exec_options o = rec_opts(id, arg & 4 ? arg % 4 : 0);
			bool keep = n_ex < MAX_EXECS && !(arg & 8);
			pf_exec *e = NULL;
			pf_ctx *parent = NULL;
			if (op == 2 && n_ctx > 0)
				parent = ctxs[arg % n_ctx];
			if (parent != NULL) {
				/* Depth under a standalone context is not
				 * pinned down by API.md. */
				in.depth = UINT32_MAX;
				rc = pf_ctx_exec(parent, &fuzz_flow, &in, &o,
				    keep ? &e : NULL);
			} else {
				rc = pf_scope_exec(s, &fuzz_flow, &in, &o,
				    keep ? &e : NULL);
			}
			settle(id, rc);
			if (rc != 0) {
				CHECK(parent != NULL && is_abort(rc));
				CHECK(pf_ctx_aborted(parent));
				CHECK(e == NULL);
				break;
			}
			CHECK(atomic_load(&F.recs[id].n[PF_PENDING]) == 1);
			if (keep) {
				CHECK(strlen(pf_exec_id(e)) == 36);
				CHECK(strcmp(pf_exec_id(e),
					  pf_ctx_id(pf_exec_ctx(e))) == 0);
				CHECK(pf_ctx_parent(pf_exec_ctx(e)) == parent);
				ex[n_ex++] = (held){ e, (uint32_t)id };
			}
			break;
		}
		case 3: /* abort an execution */
			if (n_ex > 0) {
				pf_exec *e = ex[arg % n_ex].e;
				pf_status before = pf_exec_status(e);
				CHECK(pf_exec_abort(e) == 0);
				if (before < PF_COMPLETED &&
				    pf_exec_status(e) != PF_COMPLETED)
					CHECK(pf_exec_throw_if_aborted(e) != 0 ||
					    pf_exec_status(e) == PF_FAILED);
			}
			break;
		case 4: /* abort a context */
			if (n_ctx > 0 && ctxs[arg % n_ctx] != NULL) {
				pf_ctx *c = ctxs[arg % n_ctx];
				CHECK(pf_ctx_abort(c) == 0);
				CHECK(pf_ctx_aborted(c));
				CHECK(is_abort(pf_ctx_throw_if_aborted(c)));
				CHECK(pf_signal_aborted(pf_ctx_signal(c)));
				int i = arg % n_ctx;
				if (lst_on[i])
					CHECK(atomic_load(&lst_hits[i]) == 1);
			}
			break;
		case 5: /* set and get a tag on a standalone context */
			if (n_ctx > 0 && ctxs[arg % n_ctx] != NULL) {
				pf_ctx *c = ctxs[arg % n_ctx];
				uint32_t v = next_byte(&rd), got = 0;
				CHECK(pf_ctx_set(c, &tag_d, &v) == 0);
				CHECK(pf_ctx_get(c, &tag_d, &got) == 0);
				CHECK(got == v);
				CHECK(pf_ctx_find(c, &tag_d, NULL));
			}
			break;
		case 6: /* read tags of an execution */
			if (n_ex > 0) {
				pf_ctx *c = pf_exec_ctx(ex[arg % n_ex].e);
				const char *name = NULL;
				CHECK(pf_ctx_get(c, &pf_flow_name_tag, &name) ==
				    0);
				CHECK(name != NULL && strcmp(name, "fuzz") == 0);
				uint32_t v = 0;
				rc = pf_ctx_get(c, &tag_big, NULL);
				CHECK(rc == PF_EINVAL || rc == 0 ||
				    rc == PF_ENOENT);
				rc = pf_ctx_get(c, &tag_h, &v);
				CHECK(rc == 0 || (rc == PF_ENOENT && !(head & 4)));
			}
			break;
		case 7:
		case 8:
		case 9: /* wait, wait_for, try */
			if (n_ex > 0)
				drive_wait(&ex[arg % n_ex], op - 7, arg);
			break;
		case 10: /* subscribe */
			if (n_ex > 0) {
				pf_exec *e = ex[arg % n_ex].e;
				if (extra_subscribed == MAX_SUBS)
					break;
				_Atomic int *hits = &F.sub_hits[extra_subscribed++];
				bool done = pf_exec_status(e) >= PF_COMPLETED;
				CHECK(pf_exec_on_status(e, extra_cb,
					  (void *)hits) == 0);
				/* Finished: called once, at once. */
				if (done)
					CHECK(atomic_load(hits) == 1);
			}
			break;
		case 11: /* unsubscribe */
			if (n_ex > 0 && extra_subscribed > 0) {
				void *d = (void *)&F.sub_hits[arg %
				    extra_subscribed];
				rc = pf_exec_off_status(ex[arg % n_ex].e,
				    extra_cb, d);
				CHECK(rc == 0 || rc == PF_ENOENT);
				CHECK(pf_exec_off_status(ex[arg % n_ex].e,
					  extra_cb, NULL) == PF_ENOENT);
			}
			break;
		case 12: /* signal listener on a standalone context */
			if (n_ctx > 0 && ctxs[arg % n_ctx] != NULL) {
				int i = arg % n_ctx;
				pf_signal *sg = pf_ctx_signal(ctxs[i]);
				if (!lst_on[i]) {
					atomic_store(&lst_hits[i], 0);
					bool was = pf_signal_aborted(sg);
					CHECK(pf_signal_add_listener(sg, &lst[i],
						  listener,
						  (void *)&lst_hits[i]) == 0);
					CHECK(!was ||
					    atomic_load(&lst_hits[i]) == 1);
					lst_on[i] = true;
				} else {
					CHECK(pf_signal_remove_listener(sg,
						  &lst[i]) == 0);
					lst_on[i] = false;
				}
			}
			break;
		case 13: /* release something */
			if (arg & 1 && n_ctx > 0) {
				int i = (arg >> 1) % n_ctx;
				if (ctxs[i] == NULL)
					break;
				if (lst_on[i])
					CHECK(pf_signal_remove_listener(
						  pf_ctx_signal(ctxs[i]),
						  &lst[i]) == 0);
				lst_on[i] = false;
				pf_ctx_release(ctxs[i]);
				ctxs[i] = NULL;
			} else if (n_ex > 0) {
				int i = (arg >> 1) % n_ex;
				pf_exec_release(ex[i].e);
				ex[i] = ex[--n_ex];
			}
			break;
		case 14: /* fn step on a standalone context */
			if (n_ctx > 0 && ctxs[arg % n_ctx] != NULL) {
				pf_ctx *c = ctxs[arg % n_ctx];
				fn_arg a = { arg & 2 ? PF_EUSER - 1 : 0, false };
				rc = pf_ctx_exec_fn(c, "driver-step", fuzz_fn,
				    &a);
				if (a.ran)
					CHECK(rc == a.code);
				else
					CHECK(is_abort(rc) && pf_ctx_aborted(c));
			}
			break;
		default: { /* 15: bad arguments, scope_run */
			CHECK(pf_exec_wait(NULL, NULL) == PF_EINVAL);
			CHECK(pf_ctx_abort(NULL) == PF_EINVAL);
			CHECK(pf_ctx_set(NULL, &tag_h, &scope_v) == PF_EINVAL);
			CHECK(pf_scope_exec(s, &fuzz_flow, NULL, NULL, NULL) ==
			    PF_EINVAL);
			CHECK(pf_scope_exec(s, NULL, NULL, NULL, NULL) ==
			    PF_EINVAL);
			if (arg & 1) {
				int id = claim();
				if (id < 0)
					break;
				fin in = { (uint32_t)id, 0, { 0 } };
				fill_prog(&rd, &in);
				pf_exec_options o = rec_opts(id, 0);
				uint64_t out = 0;
				rc = pf_scope_run(s, &fuzz_flow, &in, &out, &o);
				settle(id, 0);
				CHECK(rc != 0 || out == expected_out((uint32_t)id));
				CHECK(rc == 0 || rc <= PF_EUSER || is_abort(rc));
			}
			break;
		}
		}
	}

	/* Dispose with whatever is still held or running. */
	CHECK(pf_scope_dispose(s) == 0);
	for (int i = 0; i < n_ex; i++) {
		pf_status st = pf_exec_status(ex[i].e);
		CHECK(st >= PF_COMPLETED && st <= PF_CANCELLED);
		drive_wait(&ex[i], i % 3, 0);
		uint64_t out = 0;
		CHECK(pf_exec_try(ex[i].e, &out) != PF_EAGAIN);
		pf_exec_release(ex[i].e);
	}
	for (int i = 0; i < n_ctx; i++) {
		if (ctxs[i] == NULL)
			continue;
		CHECK(pf_ctx_aborted(ctxs[i]));
		if (lst_on[i]) {
			CHECK(atomic_load(&lst_hits[i]) == 1);
			CHECK(pf_signal_remove_listener(pf_ctx_signal(ctxs[i]),
				  &lst[i]) == 0);
		}
		pf_ctx_release(ctxs[i]);
	}

	/* Every execution went through one whole life. */
	long running = 0;
	int last = atomic_load(&F.next_rec);
	if (last > MAX_RECS)
		last = MAX_RECS;
	for (int id = 0; id < last; id++) {
		rec *r = &F.recs[id];
		int pend = atomic_load(&r->n[PF_PENDING]);
		int run = atomic_load(&r->n[PF_RUNNING]);
		int terms = atomic_load(&r->n[PF_COMPLETED]) +
		    atomic_load(&r->n[PF_FAILED]) +
		    atomic_load(&r->n[PF_CANCELLED]);
		CHECK(atomic_load(&r->order_bad) == 0);
		CHECK(pend <= 1);
		if (atomic_load(&r->created))
			CHECK(pend == 1);
		if (pend == 0) {
			CHECK(run == 0 && terms == 0);
			CHECK(atomic_load(&r->ran) == 0);
			continue;
		}
		CHECK(terms == 1);
		CHECK(run <= 1);
		CHECK(atomic_load(&r->ran) == run);
		CHECK(atomic_load(&r->seq) == 2 + run);
		int err = atomic_load(&r->term_err);
		if (atomic_load(&r->n[PF_COMPLETED]))
			CHECK(err == 0);
		else if (atomic_load(&r->n[PF_FAILED]))
			CHECK(err <= PF_EUSER);
		else
			CHECK(is_abort(err));
		running += run;
	}
	if (counted) {
		CHECK(atomic_load(&F.ops[PF_TARGET_FLOW]) == running);
		CHECK(atomic_load(&F.ops[PF_TARGET_FN]) ==
		    atomic_load(&F.fn_ran));
	}
	return 0;
}
