/*
 * check_ctx.c: tags, black box (API.md Semantics item 7): lookup order,
 * own-store writes, live lookup, identity by address, absence, thread
 * safety, the typed tag macros, the flow metadata tags and the tags seeded
 * from options.
 *
 * Handlers and fn steps only record what they see; every assertion runs on
 * the test thread after the work has been waited for.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pumped.h>

#include "annotate.h"
#include "testlib.h"

/* ------------------------------------------------------------ helpers */

static pf_scope *
new_scope_tags(unsigned threads, const pf_tag_value *tags, size_t n_tags)
{
	pf_scope_options o = { threads, NULL, 0, tags, n_tags };
	pf_scope *s = NULL;
	ck_assert_int_eq(pf_scope_create(&s, &o), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static pf_ctx *
new_standalone(pf_scope *s, const pf_tag_value *tags, size_t n_tags)
{
	pf_ctx_options o = { "standalone", NULL, 0, tags, n_tags };
	pf_ctx *c = NULL;
	ck_assert_int_eq(pf_scope_create_execution(s, &o, &c), 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* An fn step that keeps a reference on its own context, so the test can
 * use a child context after the step returned (contexts stay usable after
 * they end: item 1). */
static int
keep_child(pf_ctx *child, void *arg)
{
	*(pf_ctx **)arg = pf_ctx_retain(child);
	return 0;
}

static pf_ctx *
new_child(pf_ctx *parent)
{
	pf_ctx *child = NULL;
	ck_assert_int_eq(pf_ctx_exec_fn(parent, "child", keep_child, &child),
	    0);
	ck_assert_ptr_nonnull(child);
	ck_assert_ptr_eq(pf_ctx_parent(child), parent);
	return child;
}

static void
pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static const int int_default = 1;
static const pf_tag num_tag = { "num", sizeof(int), &int_default };
static const pf_tag plain_tag = { "plain", sizeof(int), NULL };

/* -------------------------------------------------- lookup order (7) */

/* "get/find look in ... then the tag's default." */
START_TEST(default_is_last_resort)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *c = new_standalone(s, NULL, 0);
	int v = -1;
	ck_assert_int_eq(pf_ctx_get(c, &num_tag, &v), 0);
	ck_assert_int_eq(v, int_default);
	v = -1;
	ck_assert(pf_ctx_find(c, &num_tag, &v));
	ck_assert_int_eq(v, int_default);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "... then the scope tags, then the tag's default." */
START_TEST(scope_tags_before_default)
{
	int scoped = 2;
	pf_tag_value tv[] = { { &num_tag, &scoped }, { &plain_tag, &scoped } };
	pf_scope *s = new_scope_tags(2, tv, 2);
	scoped = 99; /* options are copied during the call */
	pf_ctx *c = new_standalone(s, NULL, 0);
	pf_ctx *child = new_child(c);
	int v = -1;
	ck_assert_int_eq(pf_ctx_get(c, &num_tag, &v), 0);
	ck_assert_int_eq(v, 2);
	v = -1;
	ck_assert_int_eq(pf_ctx_get(child, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 2);
	v = -1;
	ck_assert(pf_ctx_find(child, &num_tag, &v));
	ck_assert_int_eq(v, 2);
	pf_ctx_release(child);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "the context's own store, then each ancestor's, then the scope tags" */
START_TEST(own_then_each_ancestor_then_scope)
{
	int scoped = 2;
	pf_tag_value tv[] = { { &num_tag, &scoped } };
	pf_scope *s = new_scope_tags(2, tv, 1);
	pf_ctx *root = new_standalone(s, NULL, 0);
	pf_ctx *mid = new_child(root);
	pf_ctx *leaf = new_child(mid);
	int v = -1;

	ck_assert_int_eq(pf_ctx_get(leaf, &num_tag, &v), 0);
	ck_assert_int_eq(v, 2); /* scope */

	ck_assert_int_eq(pf_ctx_set(root, &num_tag, &(int){ 3 }), 0);
	ck_assert_int_eq(pf_ctx_get(leaf, &num_tag, &v), 0);
	ck_assert_int_eq(v, 3); /* grandparent beats the scope */

	ck_assert_int_eq(pf_ctx_set(mid, &num_tag, &(int){ 4 }), 0);
	ck_assert_int_eq(pf_ctx_get(leaf, &num_tag, &v), 0);
	ck_assert_int_eq(v, 4); /* nearer ancestor first */

	ck_assert_int_eq(pf_ctx_set(leaf, &num_tag, &(int){ 5 }), 0);
	ck_assert_int_eq(pf_ctx_get(leaf, &num_tag, &v), 0);
	ck_assert_int_eq(v, 5); /* own store first */
	v = -1;
	ck_assert(pf_ctx_find(leaf, &num_tag, &v));
	ck_assert_int_eq(v, 5);

	ck_assert_int_eq(pf_ctx_get(mid, &num_tag, &v), 0);
	ck_assert_int_eq(v, 4);
	ck_assert_int_eq(pf_ctx_get(root, &num_tag, &v), 0);
	ck_assert_int_eq(v, 3);
	pf_ctx_release(leaf);
	pf_ctx_release(mid);
	pf_ctx_release(root);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ---------------------------------------------- set writes own (7) */

/* "set writes only the context's own store (a child shadows, never
 * writes through)." */
START_TEST(child_set_shadows_parent)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *parent = new_standalone(s, NULL, 0);
	pf_ctx *a = new_child(parent);
	pf_ctx *b = new_child(parent);
	int v = -1;

	ck_assert_int_eq(pf_ctx_set(parent, &plain_tag, &(int){ 10 }), 0);
	ck_assert_int_eq(pf_ctx_set(a, &plain_tag, &(int){ 20 }), 0);
	ck_assert_int_eq(pf_ctx_get(a, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 20);
	ck_assert_int_eq(pf_ctx_get(parent, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 10); /* parent unchanged */
	ck_assert_int_eq(pf_ctx_get(b, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 10); /* sibling unchanged */

	/* A tag set only in the child stays absent from the parent. */
	const pf_tag only_child = { "only_child", sizeof(int), NULL };
	ck_assert_int_eq(pf_ctx_set(a, &only_child, &(int){ 7 }), 0);
	ck_assert_int_eq(pf_ctx_get(parent, &only_child, &v), PF_ENOENT);
	ck_assert(!pf_ctx_find(b, &only_child, NULL));

	/* Overwriting in the child still never reaches the parent. */
	ck_assert_int_eq(pf_ctx_set(a, &plain_tag, &(int){ 21 }), 0);
	ck_assert_int_eq(pf_ctx_get(parent, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 10);
	pf_ctx_release(b);
	pf_ctx_release(a);
	pf_ctx_release(parent);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "copies t->size bytes": the caller's buffer may change afterwards. */
START_TEST(set_copies_value)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *c = new_standalone(s, NULL, 0);
	int src = 31;
	ck_assert_int_eq(pf_ctx_set(c, &plain_tag, &src), 0);
	src = 32;
	int v = -1;
	ck_assert_int_eq(pf_ctx_get(c, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 31);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ----------------------------------------------------- live lookup (7) */

/* "Lookup is live: values set in a parent after a child was created are
 * visible to the child." */
START_TEST(parent_set_after_child_creation_is_visible)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *parent = new_standalone(s, NULL, 0);
	pf_ctx *child = new_child(parent);
	pf_ctx *grandchild = new_child(child);
	int v = -1;

	ck_assert_int_eq(pf_ctx_get(grandchild, &plain_tag, &v), PF_ENOENT);
	ck_assert_int_eq(pf_ctx_set(parent, &plain_tag, &(int){ 1 }), 0);
	ck_assert_int_eq(pf_ctx_get(child, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(pf_ctx_get(grandchild, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(pf_ctx_set(parent, &plain_tag, &(int){ 2 }), 0);
	ck_assert_int_eq(pf_ctx_get(grandchild, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 2);

	/* Once the child shadows, later parent values stay hidden from it. */
	ck_assert_int_eq(pf_ctx_set(child, &plain_tag, &(int){ 50 }), 0);
	ck_assert_int_eq(pf_ctx_set(parent, &plain_tag, &(int){ 3 }), 0);
	ck_assert_int_eq(pf_ctx_get(grandchild, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 50);
	pf_ctx_release(grandchild);
	pf_ctx_release(child);
	pf_ctx_release(parent);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

struct live_probe {
	atomic_int go;    /* set by the test once the parent value is set */
	atomic_int found; /* the child's read, -1 until done */
	int value;
};

static int
live_handler(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct live_probe *p = (struct live_probe *)input;
	for (int i = 0; i < 100000 &&
	    !atomic_load_explicit(&p->go, memory_order_acquire); i++)
		pause_us(100);
	int v = -1;
	int rc = pf_ctx_get(ctx, &plain_tag, &v);
	p->value = v;
	atomic_store_explicit(&p->found, rc, memory_order_release);
	return 0;
}

static const pf_flow live_flow = { "live", live_handler, 0, 0 };

/* Live lookup from a child flow running on a worker. */
START_TEST(child_flow_sees_later_parent_set)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *parent = new_standalone(s, NULL, 0);
	struct live_probe p = { 0, -1, -1 };
	PF_ATOMIC_OBJ(&p.go); /* the test's flags: see src/annotate.h */
	PF_ATOMIC_OBJ(&p.found);
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_ctx_exec(parent, &live_flow, &p, NULL, &e), 0);
	ck_assert_int_eq(pf_ctx_set(parent, &plain_tag, &(int){ 77 }), 0);
	atomic_store_explicit(&p.go, 1, memory_order_release);
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	ck_assert_int_eq(atomic_load(&p.found), 0);
	ck_assert_int_eq(p.value, 77);
	pf_exec_release(e);
	pf_ctx_release(parent);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ----------------------------------------------- identity, absence (7) */

/* "identity is the address": two tags with one label are two tags. */
START_TEST(same_label_different_tags)
{
	static const pf_tag twin_a = { "twin", sizeof(int), NULL };
	static const pf_tag twin_b = { "twin", sizeof(int), NULL };
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *c = new_standalone(s, NULL, 0);
	int v = -1;
	ck_assert_int_eq(pf_ctx_set(c, &twin_a, &(int){ 5 }), 0);
	ck_assert_int_eq(pf_ctx_get(c, &twin_b, &v), PF_ENOENT);
	ck_assert(!pf_ctx_find(c, &twin_b, &v));
	ck_assert_int_eq(pf_ctx_set(c, &twin_b, &(int){ 6 }), 0);
	ck_assert_int_eq(pf_ctx_get(c, &twin_a, &v), 0);
	ck_assert_int_eq(v, 5);
	ck_assert_int_eq(pf_ctx_get(c, &twin_b, &v), 0);
	ck_assert_int_eq(v, 6);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "PF_ENOENT if absent", "false if absent"; out untouched (out-parameters
 * are written only on success); find with out NULL tests presence. */
START_TEST(absent_tag_enoent_and_false)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *c = new_standalone(s, NULL, 0);
	pf_ctx *child = new_child(c);
	int v = 12345;
	ck_assert_int_eq(pf_ctx_get(c, &plain_tag, &v), PF_ENOENT);
	ck_assert_int_eq(v, 12345);
	ck_assert(!pf_ctx_find(c, &plain_tag, &v));
	ck_assert_int_eq(v, 12345);
	ck_assert_int_eq(pf_ctx_get(child, &plain_tag, &v), PF_ENOENT);
	ck_assert(!pf_ctx_find(child, &plain_tag, NULL));
	ck_assert_int_eq(pf_ctx_set(c, &plain_tag, &(int){ 8 }), 0);
	ck_assert(pf_ctx_find(child, &plain_tag, NULL));
	pf_ctx_release(child);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------------ thread safety (7) */

/* 64 bytes, every field equal: a torn read shows unequal fields. */
typedef struct wide {
	uint64_t f[8];
} wide;

static const pf_tag wide_tag = { "wide", sizeof(wide), NULL };

static void
wide_fill(wide *w, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		w->f[i] = v;
}

static bool
wide_even(const wide *w)
{
	for (int i = 1; i < 8; i++)
		if (w->f[i] != w->f[0])
			return false;
	return true;
}

#define READERS 4

struct race {
	pf_ctx *parent;
	uint64_t last;       /* the highest value the test thread sets */
	atomic_int started;  /* readers inside their child context */
	atomic_int stop;     /* release-set after the last set returned */
};

struct reader {
	struct race *race;
	int step_rc;
	long reads, torn, missing, out_of_range;
	int final_rc;
	uint64_t final_value;
};

static int
reader_fn(pf_ctx *child, void *arg)
{
	struct reader *r = arg;
	struct race *race = r->race;
	atomic_fetch_add_explicit(&race->started, 1, memory_order_release);
	while (!atomic_load_explicit(&race->stop, memory_order_acquire)) {
		wide w;
		int rc = pf_ctx_get(child, &wide_tag, &w);
		r->reads++;
		if (rc != 0)
			r->missing++;
		else if (!wide_even(&w))
			r->torn++;
		else if (w.f[0] < 1 || w.f[0] > race->last)
			r->out_of_range++;
	}
	/* The last set happened before stop: a live lookup must see it. */
	wide w;
	wide_fill(&w, 0);
	r->final_rc = pf_ctx_get(child, &wide_tag, &w);
	r->final_value = wide_even(&w) ? w.f[0] : UINT64_MAX;
	return 0;
}

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	r->step_rc = pf_ctx_exec_fn(r->race->parent, "reader", reader_fn, r);
	return NULL;
}

/* "a parent's set racing its children's get on other threads ... are
 * race-free": every value read is one that was set, never torn. */
START_TEST(parent_set_races_children_get)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	struct race race = { 0 };
	PF_ATOMIC_OBJ(&race.stop); /* the test's flags: see src/annotate.h */
	PF_ATOMIC_OBJ(&race.started);
	race.parent = new_standalone(s, NULL, 0);
	race.last = (uint64_t)pf_test_scale(50000) + 1;
	wide w;
	wide_fill(&w, 1);
	ck_assert_int_eq(pf_ctx_set(race.parent, &wide_tag, &w), 0);

	pthread_t th[READERS];
	struct reader rd[READERS];
	memset(rd, 0, sizeof(rd));
	for (int i = 0; i < READERS; i++) {
		rd[i].race = &race;
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main,
		    &rd[i]), 0);
	}
	for (int i = 0; i < 200000 && atomic_load_explicit(&race.started,
	    memory_order_acquire) < READERS; i++)
		pause_us(50);
	int set_errors = 0;
	for (uint64_t v = 2; v <= race.last; v++) {
		wide_fill(&w, v);
		if (pf_ctx_set(race.parent, &wide_tag, &w) != 0)
			set_errors++;
	}
	atomic_store_explicit(&race.stop, 1, memory_order_release);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);

	ck_assert_int_eq(set_errors, 0);
	for (int i = 0; i < READERS; i++) {
		ck_assert_int_eq(rd[i].step_rc, 0);
		ck_assert_int_gt(rd[i].reads, 0);
		ck_assert_int_eq(rd[i].missing, 0);
		ck_assert_int_eq(rd[i].torn, 0);
		ck_assert_int_eq(rd[i].out_of_range, 0);
		ck_assert_int_eq(rd[i].final_rc, 0);
		ck_assert_uint_eq(rd[i].final_value, race.last);
	}
	pf_ctx_release(race.parent);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

#define SHARERS 4
#define OWN_TAGS 8

static pf_tag own_tags[SHARERS][OWN_TAGS];

struct sharer {
	pf_ctx *ctx;
	int index;
	long iters;
	atomic_int *go;
	long mismatched, torn, errors;
};

static void *
sharer_main(void *arg)
{
	struct sharer *sh = arg;
	while (!atomic_load_explicit(sh->go, memory_order_acquire))
		;
	for (long k = 1; k <= sh->iters; k++) {
		const pf_tag *own = &own_tags[sh->index][k % OWN_TAGS];
		uint64_t mine = (uint64_t)k * 16 + (uint64_t)sh->index, back = 0;
		if (pf_ctx_set(sh->ctx, own, &mine) != 0 ||
		    pf_ctx_get(sh->ctx, own, &back) != 0)
			sh->errors++;
		else if (back != mine)
			sh->mismatched++;
		wide w;
		wide_fill(&w, mine);
		if (pf_ctx_set(sh->ctx, &wide_tag, &w) != 0 ||
		    pf_ctx_get(sh->ctx, &wide_tag, &w) != 0)
			sh->errors++;
		else if (!wide_even(&w))
			sh->torn++;
		if (!pf_ctx_find(sh->ctx, own, NULL))
			sh->errors++;
	}
	return NULL;
}

/* "several threads using one standalone context, are race-free": each
 * thread's own tags read back what it wrote, the shared wide tag is never
 * torn, and new entries added concurrently are all kept. */
START_TEST(threads_share_standalone_context)
{
	for (int i = 0; i < SHARERS; i++)
		for (int j = 0; j < OWN_TAGS; j++)
			own_tags[i][j] = (pf_tag){ "own", sizeof(uint64_t),
				NULL };
	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *c = new_standalone(s, NULL, 0);
	atomic_int go = 0;
	PF_ATOMIC_OBJ(&go); /* the test's flag: see src/annotate.h */
	pthread_t th[SHARERS];
	struct sharer sh[SHARERS];
	long iters = pf_test_scale(20000);
	for (int i = 0; i < SHARERS; i++) {
		sh[i] = (struct sharer){ c, i, iters, &go, 0, 0, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, sharer_main,
		    &sh[i]), 0);
	}
	atomic_store_explicit(&go, 1, memory_order_release);
	for (int i = 0; i < SHARERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SHARERS; i++) {
		ck_assert_int_eq(sh[i].errors, 0);
		ck_assert_int_eq(sh[i].mismatched, 0);
		ck_assert_int_eq(sh[i].torn, 0);
	}
	/* Every thread's last write to each of its tags is there. */
	for (int i = 0; i < SHARERS; i++)
		for (long k = iters - OWN_TAGS + 1; k <= iters; k++) {
			uint64_t v = 0;
			ck_assert_int_eq(pf_ctx_get(c,
			    &own_tags[i][k % OWN_TAGS], &v), 0);
			ck_assert_uint_eq(v, (uint64_t)k * 16 + (uint64_t)i);
		}
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ---------------------------------------------------- typed macros (7) */

PF_TAG(local_tag, int, "local");
PF_TAG_DECLARE(shared_long_tag, long);
PF_TAG_DEFINE(shared_long_tag, long, "shared_long");
PF_TAG_DECLARE(defaulted_tag, int);
PF_TAG_DEFINE_DEFAULT(defaulted_tag, int, "defaulted", 42);

/* PF_TAG / PF_TAG_DECLARE + PF_TAG_DEFINE(_DEFAULT) give ident_set, _get,
 * _find and _value with the right C types. */
START_TEST(typed_tag_macros)
{
	ck_assert_str_eq(local_tag.label, "local");
	ck_assert_uint_eq(local_tag.size, sizeof(int));
	ck_assert_ptr_null(local_tag.default_value);
	ck_assert_str_eq(shared_long_tag.label, "shared_long");
	ck_assert_uint_eq(shared_long_tag.size, sizeof(long));
	ck_assert_uint_eq(defaulted_tag.size, sizeof(int));
	ck_assert_int_eq(*(const int *)defaulted_tag.default_value, 42);

	long seeded = 1234567L;
	pf_tag_value tv[] = { shared_long_tag_value(&seeded) };
	ck_assert_ptr_eq(tv[0].tag, &shared_long_tag);
	ck_assert_ptr_eq(tv[0].value, &seeded);

	pf_scope *s = new_scope_tags(2, NULL, 0);
	pf_ctx *c = new_standalone(s, tv, 1);
	long l = 0;
	ck_assert_int_eq(shared_long_tag_get(c, &l), 0);
	ck_assert_int_eq(l, 1234567L);

	int i = 0;
	ck_assert(!local_tag_find(c, &i));
	ck_assert_int_eq(local_tag_get(c, &i), PF_ENOENT);
	ck_assert_int_eq(local_tag_set(c, -8), 0);
	ck_assert_int_eq(local_tag_get(c, &i), 0);
	ck_assert_int_eq(i, -8);
	i = 0;
	ck_assert(local_tag_find(c, &i));
	ck_assert_int_eq(i, -8);

	ck_assert_int_eq(defaulted_tag_get(c, &i), 0);
	ck_assert_int_eq(i, 42);
	ck_assert_int_eq(defaulted_tag_set(c, 43), 0);
	ck_assert(defaulted_tag_find(c, &i));
	ck_assert_int_eq(i, 43);

	/* The typed wrappers and the generic calls name the same tag. */
	ck_assert_int_eq(pf_ctx_get(c, &local_tag, &i), 0);
	ck_assert_int_eq(i, -8);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* -------------------------------------------- flow metadata tags (7) */

struct meta_rec {
	bool name_found, parent_found, depth_found, par_found;
	int name_rc, parent_rc;
	char name[32], parent[32];
	uint32_t depth;
	bool par;
	pf_ctx *ctx, *ctx_parent;
};

static void
copy_name(char *dst, const char *src)
{
	snprintf(dst, 32, "%s", src != NULL ? src : "(null)");
}

static void
read_meta(pf_ctx *c, struct meta_rec *r)
{
	const char *name = NULL, *parent = NULL;
	r->ctx = c;
	r->ctx_parent = pf_ctx_parent(c);
	r->name_found = pf_ctx_find(c, &pf_flow_name_tag, &name);
	r->name_rc = pf_ctx_get(c, &pf_flow_name_tag, &name);
	copy_name(r->name, name);
	r->parent_found = pf_ctx_find(c, &pf_flow_parent_name_tag, &parent);
	r->parent_rc = pf_ctx_get(c, &pf_flow_parent_name_tag, &parent);
	copy_name(r->parent, parent);
	r->depth = UINT32_MAX;
	r->depth_found = pf_ctx_find(c, &pf_flow_depth_tag, &r->depth);
	r->par = false;
	r->par_found = pf_ctx_find(c, &pf_flow_is_parallel_tag, &r->par);
}

struct meta_test {
	struct meta_rec root, child, par[2], fn, grandchild;
	int child_rc, par_rc, fn_rc;
};

static int
meta_child(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	read_meta(ctx, (struct meta_rec *)input);
	return 0;
}

static const pf_flow meta_child_flow = { "meta_child", meta_child, 0, 0 };

static int
meta_fn(pf_ctx *child, void *arg)
{
	struct meta_test *t = arg;
	read_meta(child, &t->fn);
	/* A flow started from an fn step is a child of the step's context. */
	return pf_ctx_run(child, &meta_child_flow, &t->grandchild, NULL, NULL);
}

static int
meta_root(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct meta_test *t = (struct meta_test *)input;
	read_meta(ctx, &t->root);
	t->child_rc = pf_ctx_run(ctx, &meta_child_flow, &t->child, NULL, NULL);
	pf_call calls[2] = {
		{ &meta_child_flow, &t->par[0], NULL, NULL, 0, PF_PENDING, NULL },
		{ &meta_child_flow, &t->par[1], NULL, NULL, 0, PF_PENDING, NULL },
	};
	t->par_rc = pf_ctx_parallel(ctx, calls, 2, NULL);
	t->fn_rc = pf_ctx_exec_fn(ctx, "meta_step", meta_fn, t);
	return 0;
}

static const pf_flow meta_root_flow = { "meta_root", meta_root, 0, 0 };

/* "pf_flow_name_tag (const char *), pf_flow_parent_name_tag, pf_flow_depth_tag
 * (uint32_t, root 0), pf_flow_is_parallel_tag (bool)", set on every flow
 * context; parent name absent for root flows. */
START_TEST(flow_meta_root_and_child)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	struct meta_test t;
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(pf_scope_run(s, &meta_root_flow, &t, NULL, NULL), 0);
	ck_assert_int_eq(t.child_rc, 0);

	ck_assert(t.root.name_found);
	ck_assert_int_eq(t.root.name_rc, 0);
	ck_assert_str_eq(t.root.name, "meta_root");
	ck_assert(!t.root.parent_found); /* absent on a root */
	ck_assert_int_eq(t.root.parent_rc, PF_ENOENT);
	ck_assert(t.root.depth_found);
	ck_assert_uint_eq(t.root.depth, 0);
	ck_assert(t.root.par_found);
	ck_assert(!t.root.par);

	ck_assert(t.child.name_found);
	ck_assert_str_eq(t.child.name, "meta_child");
	ck_assert(t.child.parent_found);
	ck_assert_int_eq(t.child.parent_rc, 0);
	ck_assert_str_eq(t.child.parent, "meta_root");
	ck_assert(t.child.depth_found);
	ck_assert_uint_eq(t.child.depth, 1);
	ck_assert(t.child.par_found);
	ck_assert(!t.child.par); /* false outside parallel */
	ck_assert_ptr_eq(t.child.ctx_parent, t.root.ctx);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "pf_flow_is_parallel_tag (bool; true for calls of a parallel group)" */
START_TEST(flow_meta_parallel_calls)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	struct meta_test t;
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(pf_scope_run(s, &meta_root_flow, &t, NULL, NULL), 0);
	ck_assert_int_eq(t.par_rc, 0);
	for (int i = 0; i < 2; i++) {
		ck_assert(t.par[i].par_found);
		ck_assert(t.par[i].par);
		ck_assert_uint_eq(t.par[i].depth, 1);
		ck_assert_str_eq(t.par[i].name, "meta_child");
		ck_assert_str_eq(t.par[i].parent, "meta_root");
		ck_assert_ptr_eq(t.par[i].ctx_parent, t.root.ctx);
	}
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* "Contexts that are not flow contexts (fn steps, standalone) see their
 * nearest flow ancestor's values." (pumped.h) */
START_TEST(flow_meta_fn_step_and_standalone)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	struct meta_test t;
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(pf_scope_run(s, &meta_root_flow, &t, NULL, NULL), 0);
	ck_assert_int_eq(t.fn_rc, 0);
	ck_assert(t.fn.name_found);
	ck_assert_str_eq(t.fn.name, "meta_root");
	ck_assert(!t.fn.parent_found);
	ck_assert_uint_eq(t.fn.depth, 0);
	ck_assert(t.fn.par_found);
	ck_assert(!t.fn.par);
	ck_assert_ptr_eq(t.fn.ctx_parent, t.root.ctx);
	/* A flow under the fn step: its parent flow is meta_root. */
	ck_assert_str_eq(t.grandchild.name, "meta_child");
	ck_assert_str_eq(t.grandchild.parent, "meta_root");
	ck_assert_ptr_eq(t.grandchild.ctx_parent, t.fn.ctx);

	/* A standalone context has no flow ancestor: no flow metadata. */
	pf_ctx *c = new_standalone(s, NULL, 0);
	struct meta_rec r;
	memset(&r, 0, sizeof(r));
	read_meta(c, &r);
	ck_assert(!r.name_found);
	ck_assert_int_eq(r.name_rc, PF_ENOENT);
	ck_assert(!r.parent_found);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------- tags from options (7) */

struct seed_probe {
	int rc, value, parent_rc, parent_value;
};

static int
seed_handler(pf_ctx *ctx, const void *input, void *output)
{
	(void)output;
	struct seed_probe *p = (struct seed_probe *)input;
	p->value = -1;
	p->rc = pf_ctx_get(ctx, &plain_tag, &p->value);
	p->parent_value = -1;
	p->parent_rc = pf_ctx_parent(ctx) != NULL ?
	    pf_ctx_get(pf_ctx_parent(ctx), &plain_tag, &p->parent_value) :
	    PF_ENOENT;
	return 0;
}

static const pf_flow seed_flow = { "seed", seed_handler, 0, 0 };

/* pf_exec_options.tags: "seeded into the new context" (copied). */
START_TEST(exec_option_tags_seeded)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	int seed = 7;
	pf_tag_value tv[] = { { &plain_tag, &seed } };
	pf_exec_options o = { 0 };
	o.tags = tv;
	o.n_tags = 1;
	struct seed_probe p;
	memset(&p, 0, sizeof(p));
	pf_exec *e = NULL;
	ck_assert_int_eq(pf_scope_exec(s, &seed_flow, &p, &o, &e), 0);
	seed = 8; /* copied during the call */
	ck_assert_int_eq(pf_exec_wait(e, NULL), 0);
	pf_exec_release(e);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.value, 7);

	/* A child's seeded tag shadows the parent's value and leaves the
	 * parent's store alone. */
	pf_ctx *parent = new_standalone(s, NULL, 0);
	ck_assert_int_eq(pf_ctx_set(parent, &plain_tag, &(int){ 3 }), 0);
	seed = 9;
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(pf_ctx_run(parent, &seed_flow, &p, NULL, &o), 0);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(p.value, 9);
	ck_assert_int_eq(p.parent_rc, 0);
	ck_assert_int_eq(p.parent_value, 3);
	int v = -1;
	ck_assert_int_eq(pf_ctx_get(parent, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 3);
	pf_ctx_release(parent);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* pf_ctx_options.tags seed a standalone context. */
START_TEST(ctx_option_tags_seeded)
{
	pf_scope *s = new_scope_tags(2, NULL, 0);
	int seed = 11;
	pf_tag_value tv[] = { { &plain_tag, &seed } };
	pf_ctx *c = new_standalone(s, tv, 1);
	seed = 12;
	int v = -1;
	ck_assert_int_eq(pf_ctx_get(c, &plain_tag, &v), 0);
	ck_assert_int_eq(v, 11);
	pf_ctx_release(c);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

/* ------------------------------------------------------------- suite */

/* A flow started from a standalone context is not a root: depth 1, as
 * item 8 has it for calls ("depth + 1" of a caller reading 0). */
static int
report_depth(pf_ctx *c, const void *in, void *out)
{
	(void)in;
	uint32_t d = UINT32_MAX;
	int rc = pf_ctx_get(c, &pf_flow_depth_tag, &d);
	memcpy(out, &d, sizeof(d));
	return rc;
}

START_TEST(flow_meta_child_of_standalone_is_depth_1)
{
	static const pf_flow f = { "depth", report_depth, 0, sizeof(uint32_t) };
	pf_scope *s;
	ck_assert_int_eq(pf_scope_create(&s, NULL), 0);
	pf_ctx *sa;
	ck_assert_int_eq(pf_scope_create_execution(s, NULL, &sa), 0);
	uint32_t d = UINT32_MAX;
	ck_assert_int_eq(pf_ctx_get(sa, &pf_flow_depth_tag, &d), 0);
	ck_assert_uint_eq(d, 0);
	ck_assert_int_eq(pf_ctx_run(sa, &f, NULL, &d, NULL), 0);
	ck_assert_uint_eq(d, 1);
	ck_assert_int_eq(pf_scope_run(s, &f, NULL, &d, NULL), 0);
	ck_assert_uint_eq(d, 0);
	pf_ctx_release(sa);
	ck_assert_int_eq(pf_scope_dispose(s), 0);
}
END_TEST

static Suite *
ctx_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "lookup_order", .test = default_is_last_resort },
		{ .tcase = "lookup_order", .test = scope_tags_before_default },
		{ .tcase = "lookup_order", .test = own_then_each_ancestor_then_scope },
		{ .tcase = "set_writes_own_store", .test = child_set_shadows_parent },
		{ .tcase = "set_writes_own_store", .test = set_copies_value },
		{ .tcase = "live_lookup", .test = parent_set_after_child_creation_is_visible, .timeout = 30 },
		{ .tcase = "live_lookup", .test = child_flow_sees_later_parent_set, .timeout = 30 },
		{ .tcase = "identity_by_address", .test = same_label_different_tags },
		{ .tcase = "absent", .test = absent_tag_enoent_and_false },
		{ .tcase = "stress", .test = parent_set_races_children_get, .timeout = 120 },
		{ .tcase = "stress", .test = threads_share_standalone_context, .timeout = 120 },
		{ .tcase = "typed_macros", .test = typed_tag_macros },
		{ .tcase = "flow_metadata", .test = flow_meta_root_and_child, .timeout = 30 },
		{ .tcase = "flow_metadata", .test = flow_meta_parallel_calls, .timeout = 30 },
		{ .tcase = "flow_metadata", .test = flow_meta_fn_step_and_standalone, .timeout = 30 },
		{ .tcase = "flow_metadata", .test = flow_meta_child_of_standalone_is_depth_1, .timeout = 30 },
		{ .tcase = "option_tags", .test = exec_option_tags_seeded },
		{ .tcase = "option_tags", .test = ctx_option_tags_seeded },
	};
	return pf_test_suite("ctx", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(ctx_suite());
}
