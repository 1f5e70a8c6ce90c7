/*
 * standalone.c: standalone contexts and the handle calls (standalone.h).
 */
#include "config.h"

#include "clock.h"
#include "ctx.h"
#include "engine.h"
#include "journal.h"
#include "standalone.h"
#include "tag.h"

int
pf__standalone_create(pf__engine *g, pf_ctx *root, const pf_ctx_options *opts,
    const pf__uuid *id, pf_ctx **out)
{
	if (opts != NULL && opts->n_tags != 0 && opts->tags == NULL)
		return PF_EINVAL;
	/* Counted as unfinished while it is being built, so that dispose
	 * cannot stop the timer wheel under it. */
	int rc = pf__engine_enter(g);
	if (rc != 0)
		return rc;
	pf_ctx *c;
	rc = pf__ctx_new(g, root, PF__CTX_STANDALONE,
	    opts != NULL ? opts->name : NULL, "execution", &c);
	if (rc != 0) {
		pf__engine_finished(g);
		return rc;
	}
	atomic_init(&c->handles, 1);
	if (id != NULL)
		c->id = *id; /* nobody else can see it yet */
	if (opts != NULL) {
		rc = pf__tags_seed(c, opts->tags, opts->n_tags);
		/* Metadata and a timeout's timer node live in the cold block. */
		pf__cold *k = NULL;
		if (rc == 0 && (opts->timeout_ms != 0 ||
			opts->metadata != NULL) &&
		    (k = pf__ctx_cold(c)) == NULL)
			rc = PF_ENOMEM;
		if (k != NULL)
			k->metadata = opts->metadata;
		if (rc != 0) {
			pf__ctx_discard(c);
			pf__engine_finished(g);
			return rc;
		}
	}
	/* Armed before it is linked: an abort at link time then finds the
	 * timer and cancels it.  An armed timer keeps the count taken above
	 * until its callback gives it back (ctx.c, timer_fired): a cancel
	 * from pf_ctx_end, pf_ctx_release or an abort on any thread then
	 * always finds the wheel alive, since dispose waits for the count. */
	bool armed = opts != NULL && opts->timeout_ms != 0;
	if (armed)
		pf__ctx_arm_timeout(c, opts->timeout_ms);
	pf__ctx_link(c);
	if (!armed)
		pf__engine_finished(g);
	*out = c;
	return 0;
}

pf_ctx *
pf_ctx_retain(pf_ctx *c)
{
	if (c == NULL)
		return NULL;
	if (c->kind == PF__CTX_STANDALONE)
		/* Relaxed: like a reference increment. */
		atomic_fetch_add_explicit(&c->handles, 1, memory_order_relaxed);
	pf__ctx_retain(c);
	return c;
}

int
pf_ctx_end(pf_ctx *c)
{
	if (c == NULL || c->kind == PF__CTX_ROOT)
		return PF_EINVAL;
	pf__ctx_end_at(c, pf__clock_raw());
	/* A standalone context is unfinished until it ends: its timeout no
	 * longer applies after that.  Flow contexts keep theirs until the
	 * execution finishes. */
	if (c->kind == PF__CTX_STANDALONE)
		pf__ctx_cancel_timeout(c);
	return 0;
}

void
pf_ctx_release(pf_ctx *c)
{
	if (c == NULL)
		return;
	/* Acq_rel: the last handle's release sees the others' writes before
	 * it ends the context. */
	PF_HB_BEFORE(&c->handles);
	if (c->kind == PF__CTX_STANDALONE &&
	    atomic_fetch_sub_explicit(&c->handles, 1, memory_order_acq_rel) ==
		1) {
		PF_HB_AFTER(&c->handles);
		pf_ctx_end(c);
		pf__ctx_end_life(c);
	}
	pf__ctx_release(c);
}
