/*
 * pfor.c: pf_ctx_parallel_for and pf_scope_parallel_for.
 *
 * Built on the public calls only: a flow, "parallel_for", whose execution
 * covers a range.  Above the grain it splits the range in two halves: the
 * lower one a child it starts (pf_ctx_exec, so that a thief can take it),
 * the upper one a child it runs at once (pf_ctx_run), then it waits for
 * the first.  At or below the grain it calls the body with its own
 * context.  Every piece is a tracked execution, and a leaf's name says its
 * range ("for[0,4096)").
 *
 * The first failure wins: it is kept in the loop's shared state and
 * aborts the loop's top execution, which cascades to every piece still
 * pending or running (pieces check their abort before calling the body).
 * The call returns that first code once every piece has ended.
 */
#include "config.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#include "pumped.h"

typedef struct pfor_shared {
	pf_range_fn body;
	void *arg;
	int64_t grain;
	atomic_int first_error;
	/* The loop's top execution's context: aborting it stops the loop.
	 * Written by the top piece before it starts any child (a child's
	 * creation publishes it to the child). */
	pf_ctx *top;
} pfor_shared;

typedef struct pfor_in {
	pfor_shared *sh;
	int64_t begin, end;
	bool top;
} pfor_in;

static int pfor_handler(pf_ctx *c, const void *in, void *out);

static const pf_flow pfor_flow = { "parallel_for", pfor_handler,
	sizeof(pfor_in), 0 };

/* Keeps the first failure and stops the rest of the loop. */
static void
failed(pfor_shared *sh, int rc)
{
	int none = 0;
	if (atomic_compare_exchange_strong(&sh->first_error, &none, rc))
		(void)pf_ctx_abort(sh->top);
}

/* Options naming a leaf by its range; NULL for an inner piece. */
static const pf_exec_options *
leaf_options(const pfor_in *r, pf_exec_options *o, char *name, size_t size)
{
	if (r->end - r->begin > r->sh->grain)
		return NULL;
	snprintf(name, size, "for[%" PRId64 ",%" PRId64 ")", r->begin,
	    r->end);
	*o = (pf_exec_options){ .name = name };
	return o;
}

static int
pfor_handler(pf_ctx *c, const void *in, void *out)
{
	(void)out;
	const pfor_in *r = in;
	pfor_shared *sh = r->sh;
	if (r->top)
		sh->top = c;
	int rc = pf_ctx_throw_if_aborted(c);
	if (rc != 0)
		return rc;
	if (r->end - r->begin <= sh->grain) {
		rc = sh->body(c, r->begin, r->end, sh->arg);
		if (rc != 0)
			failed(sh, rc);
		return rc;
	}
	int64_t mid = r->begin + (r->end - r->begin) / 2;
	pfor_in lo = { sh, r->begin, mid, false };
	pfor_in hi = { sh, mid, r->end, false };
	pf_exec_options olo, ohi;
	char nlo[64], nhi[64];
	pf_exec *e;
	rc = pf_ctx_exec(c, &pfor_flow, &lo,
	    leaf_options(&lo, &olo, nlo, sizeof(nlo)), &e);
	if (rc != 0) {
		failed(sh, rc);
		return rc;
	}
	int rc_hi = pf_ctx_run(c, &pfor_flow, &hi, NULL,
	    leaf_options(&hi, &ohi, nhi, sizeof(nhi)));
	int rc_lo = pf_exec_wait(e, NULL);
	pf_exec_release(e);
	if (rc_lo == PF_EAGAIN || rc_hi == PF_EAGAIN)
		/* No thread could run a piece (nesting or stack spent). */
		failed(sh, PF_EAGAIN);
	return rc_lo != 0 ? rc_lo : rc_hi;
}

static int
check(int64_t begin, int64_t end, int64_t grain, pf_range_fn body)
{
	if (body == NULL || grain < 0)
		return PF_EINVAL;
	/* end - begin must not overflow. */
	if (end > begin && begin < 0 && end > INT64_MAX + begin)
		return PF_EINVAL;
	return 0;
}

/* The grain: as given, or about eight pieces per thread. */
static int64_t
grain_of(int64_t begin, int64_t end, int64_t grain, unsigned threads)
{
	if (grain > 0)
		return grain;
	int64_t g = (end - begin) / (8 * (int64_t)(threads != 0 ? threads : 1));
	return g > 0 ? g : 1;
}

static int
result(pfor_shared *sh, int rc)
{
	int first = atomic_load(&sh->first_error);
	return first != 0 ? first : rc;
}

int
pf_ctx_parallel_for(pf_ctx *c, int64_t begin, int64_t end, int64_t grain,
    pf_range_fn body, void *arg)
{
	int rc = check(begin, end, grain, body);
	if (rc != 0 || c == NULL)
		return rc != 0 ? rc : PF_EINVAL;
	if (begin >= end)
		return pf_ctx_throw_if_aborted(c);
	pfor_shared sh = { body, arg,
		grain_of(begin, end, grain, pf_scope_threads(pf_ctx_scope(c))),
		0, NULL };
	pfor_in top = { &sh, begin, end, true };
	pf_exec_options o;
	char name[64];
	rc = pf_ctx_run(c, &pfor_flow, &top, NULL,
	    leaf_options(&top, &o, name, sizeof(name)));
	return result(&sh, rc);
}

int
pf_scope_parallel_for(pf_scope *s, int64_t begin, int64_t end, int64_t grain,
    pf_range_fn body, void *arg)
{
	int rc = check(begin, end, grain, body);
	if (rc != 0 || s == NULL)
		return rc != 0 ? rc : PF_EINVAL;
	if (begin >= end)
		return 0;
	pfor_shared sh = { body, arg,
		grain_of(begin, end, grain, pf_scope_threads(s)), 0, NULL };
	pfor_in top = { &sh, begin, end, true };
	pf_exec_options o;
	char name[64];
	rc = pf_scope_run(s, &pfor_flow, &top, NULL,
	    leaf_options(&top, &o, name, sizeof(name)));
	return result(&sh, rc);
}
