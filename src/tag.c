/*
 * tag.c: typed tags (tag.h) and the flow tags.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "tag.h"

struct pf__tag_entry {
	const pf_tag *tag;
	pf__tag_entry *next;
	alignas(16) unsigned char value[];
};

static const uint32_t depth_default = 0;
static const bool parallel_default = false;

PF_EXTERN const pf_tag pf_flow_name_tag = { "flow.name", sizeof(const char *),
	NULL };
PF_EXTERN const pf_tag pf_flow_parent_name_tag = { "flow.parentName",
	sizeof(const char *), NULL };
PF_EXTERN const pf_tag pf_flow_depth_tag = { "flow.depth", sizeof(uint32_t),
	&depth_default };
PF_EXTERN const pf_tag pf_flow_is_parallel_tag = { "flow.isParallel",
	sizeof(bool), &parallel_default };

static bool
is_flow_tag(const pf_tag *t)
{
	return t == &pf_flow_name_tag || t == &pf_flow_parent_name_tag ||
	    t == &pf_flow_depth_tag || t == &pf_flow_is_parallel_tag;
}

/* A flow tag as seen from flow context c; false when absent. */
static bool
flow_value(const pf_ctx *c, const pf_tag *t, void *out)
{
	if (t == &pf_flow_name_tag) {
		const char *name = pf__flow_name(c->flow);
		if (out != NULL)
			memcpy(out, &name, sizeof(name));
		return true;
	}
	if (t == &pf_flow_depth_tag) {
		if (out != NULL)
			memcpy(out, &c->depth, sizeof(uint32_t));
		return true;
	}
	if (t == &pf_flow_is_parallel_tag) {
		bool par = c->parallel;
		if (out != NULL)
			memcpy(out, &par, sizeof(par));
		return true;
	}
	for (const pf_ctx *a = c->parent; a != NULL; a = a->parent) {
		if (a->kind == PF__CTX_FLOW) {
			const char *name = pf__flow_name(a->flow);
			if (out != NULL)
				memcpy(out, &name, sizeof(name));
			return true;
		}
	}
	return false;
}

/* Under c's lock, whose cold block is k (not NULL). */
static pf__tag_entry *
own_entry(const pf__cold *k, const pf_tag *t)
{
	for (pf__tag_entry *e = k->tags; e != NULL; e = e->next)
		if (e->tag == t)
			return e;
	return NULL;
}

static int
set_value(pf_ctx *c, const pf_tag *t, const void *value)
{
	pf__cold *k = pf__ctx_cold(c);
	if (k == NULL)
		return PF_ENOMEM;
	pf__spin_lock(&c->lock);
	pf__tag_entry *e = own_entry(k, t);
	if (e != NULL) {
		memcpy(e->value, value, t->size);
		pf__spin_unlock(&c->lock);
		return 0;
	}
	pf__spin_unlock(&c->lock);
	pf__tag_entry *n = pf__malloc(sizeof(*n) + t->size);
	if (n == NULL)
		return PF_ENOMEM;
	n->tag = t;
	memcpy(n->value, value, t->size);
	pf__spin_lock(&c->lock);
	/* Another thread may have added it meanwhile: then update that one. */
	e = own_entry(k, t);
	if (e != NULL) {
		memcpy(e->value, value, t->size);
		pf__spin_unlock(&c->lock);
		pf__free(n);
		return 0;
	}
	n->next = k->tags;
	k->tags = n;
	pf__spin_unlock(&c->lock);
	return 0;
}

/* Whether t is a tag whose values the library can hold. */
static bool
tag_ok(const pf_tag *t)
{
	return t != NULL && t->size != 0 && t->size <= PF__MAX_DATA;
}

int
pf__tags_seed(pf_ctx *c, const pf_tag_value *tags, size_t n)
{
	if (n != 0 && tags == NULL)
		return PF_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!tag_ok(tags[i].tag) || tags[i].value == NULL)
			return PF_EINVAL;
		int rc = set_value(c, tags[i].tag, tags[i].value);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void
pf__tags_free(pf__cold *k)
{
	for (pf__tag_entry *t = k->tags, *n; t != NULL; t = n) {
		n = t->next;
		pf__free(t);
	}
	k->tags = NULL;
}

int
pf_ctx_set(pf_ctx *c, const pf_tag *t, const void *value)
{
	if (c == NULL || !tag_ok(t) || value == NULL)
		return PF_EINVAL;
	return set_value(c, t, value);
}

static bool
lookup(const pf_ctx *from, const pf_tag *t, void *out)
{
	bool flow_tag = is_flow_tag(t);
	for (const pf_ctx *c = from; c != NULL; c = c->parent) {
		pf_ctx *m = (pf_ctx *)c;
		/* No cold block: no tag of its own (one set concurrently may
		 * be missed, as if set just after this read). */
		pf__cold *k = pf__cold_of(c);
		pf__tag_entry *e = NULL;
		if (k != NULL) {
			pf__spin_lock(&m->lock);
			e = own_entry(k, t);
			if (e != NULL && out != NULL)
				memcpy(out, e->value, t->size);
			pf__spin_unlock(&m->lock);
		}
		if (e != NULL)
			return true;
		if (flow_tag && c->kind == PF__CTX_FLOW)
			return flow_value(c, t, out);
	}
	if (t->default_value != NULL) {
		if (out != NULL)
			memcpy(out, t->default_value, t->size);
		return true;
	}
	return false;
}

int
pf_ctx_get(const pf_ctx *c, const pf_tag *t, void *out)
{
	if (c == NULL || !tag_ok(t) || out == NULL)
		return PF_EINVAL;
	return lookup(c, t, out) ? 0 : PF_ENOENT;
}

bool
pf_ctx_find(const pf_ctx *c, const pf_tag *t, void *out)
{
	if (c == NULL || !tag_ok(t))
		return false;
	return lookup(c, t, out);
}
