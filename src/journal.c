/*
 * journal.c: the journal of a context (journal.h).
 *
 * A journal entry holds its execution, and the execution holds its parent:
 * a cycle.  It is broken when the parent's life ends.  Placeholders of
 * creations in progress stay; pf__journal_settle sees the journal closed
 * and drops its own.  The handshake, without a lock on the finishing path:
 *
 *   first keyed child (under c->lock)   end of life
 *   journal_used := 1 (seq_cst)         terminal CAS / life_over := 1
 *   read end of life (seq_cst)          read journal_used (seq_cst)
 *   if over: run unjournaled            if used: close the journal
 *
 * Either the child sees the end and adds nothing, or the end sees the
 * journal used and closes it (under the lock, after the child's entry).
 */
#include "config.h"

#include <sched.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "journal.h"

struct pf__journal_entry {
	pf__journal_entry *next;
	pf_exec *exec; /* NULL while its first caller creates it */
	const pf_flow *flow; /* a key matches only calls of this flow */
	char key[];
};

/* The link that holds key's entry in c's journal, or the link where it
 * would be appended.  Under c->lock; c's cold block exists. */
static pf__journal_entry **
find(pf_ctx *c, const char *key)
{
	pf__assert(pf__spin_held(&c->lock) && pf__cold_of(c) != NULL);
	pf__journal_entry **link = &pf__cold_of(c)->journal;
	for (; *link != NULL; link = &(*link)->next)
		if (strcmp((*link)->key, key) == 0)
			break;
	return link;
}

static bool
life_is_over(pf_ctx *c)
{
	/* Seq_cst: the handshake's load (diagram above). */
	if (c->kind != PF__CTX_FLOW)
		return atomic_load_explicit(&c->life_over, memory_order_seq_cst);
	return pf__exec_ended((pf_exec *)c, memory_order_seq_cst);
}

/* Under c->lock: whether keyed children may still be journaled. */
static bool
journal_open(pf_ctx *c)
{
	pf__assert(pf__spin_held(&c->lock));
	if (pf__cold_of(c)->journal_closed)
		return false;
	/* Relaxed check: it saves the seq_cst store once the flag is set;
	 * the flag only ever goes from false to true. */
	if (!pf__load_relaxed(&c->journal_used))
		atomic_store_explicit(&c->journal_used, true,
		    memory_order_seq_cst);
	return !life_is_over(c);
}

static void
close_journal(pf_ctx *c)
{
	/* journal_used is set only after the cold block was made. */
	pf__cold *k = pf__cold_of(c);
	pf__spin_lock(&c->lock);
	k->journal_closed = true;
	pf__journal_entry *done = NULL;
	for (pf__journal_entry **link = &k->journal; *link != NULL;) {
		pf__journal_entry *j = *link;
		if (j->exec != NULL) {
			*link = j->next;
			j->next = done;
			done = j;
		} else {
			link = &j->next;
		}
	}
	pf__spin_unlock(&c->lock);
	for (pf__journal_entry *j = done, *n; j != NULL; j = n) {
		n = j->next;
		pf__ctx_release(&j->exec->ctx);
		pf__free(j);
	}
}

void
pf__ctx_end_life(pf_ctx *c)
{
	/* Seq_cst store then load: the handshake's end-of-life side. */
	if (c->kind != PF__CTX_FLOW)
		atomic_store_explicit(&c->life_over, true, memory_order_seq_cst);
	if (atomic_load_explicit(&c->journal_used, memory_order_seq_cst))
		close_journal(c);
}

int
pf__journal_claim(pf_ctx *parent, const pf_flow *f, const char *key,
    pf_exec **found, pf__journal_entry **slot)
{
	size_t len = strlen(key);
	pf__journal_entry *fresh = NULL;
	/* The journal lives in the parent's cold block. */
	if (pf__ctx_cold(parent) == NULL)
		return PF_ENOMEM;
	for (;;) {
		pf__spin_lock(&parent->lock);
		if (!journal_open(parent)) {
			pf__spin_unlock(&parent->lock);
			pf__free(fresh);
			return PF__JOURNAL_CLOSED;
		}
		pf__journal_entry **link = find(parent, key);
		pf__journal_entry *j = *link;
		if (j != NULL && j->exec == NULL) {
			/* Its first caller is creating it: wait for that. */
			pf__spin_unlock(&parent->lock);
			sched_yield();
			continue;
		}
		if (j != NULL && pf__status_of(pf__exec_word(j->exec)) ==
		    PF_CANCELLED) {
			/* A cancelled entry is dropped: run anew. */
			*link = j->next;
			pf__spin_unlock(&parent->lock);
			pf__ctx_release(&j->exec->ctx);
			pf__free(j);
			continue;
		}
		if (j != NULL && j->flow != f) {
			/* The key belongs to another flow's call: its result
			 * is not this flow's (pumped.h, key). */
			pf__spin_unlock(&parent->lock);
			pf__free(fresh);
			return PF_EINVAL;
		}
		if (j != NULL) {
			pf__ctx_retain(&j->exec->ctx);
			*found = j->exec;
			pf__spin_unlock(&parent->lock);
			pf__free(fresh);
			return PF__JOURNAL_HIT;
		}
		if (fresh != NULL) {
			fresh->next = NULL;
			fresh->exec = NULL;
			fresh->flow = f;
			*link = fresh;
			pf__spin_unlock(&parent->lock);
			*slot = fresh;
			return PF__JOURNAL_NEW;
		}
		pf__spin_unlock(&parent->lock);
		fresh = pf__malloc(sizeof(*fresh) + len + 1);
		if (fresh == NULL)
			return PF_ENOMEM;
		memcpy(fresh->key, key, len + 1);
	}
}

void
pf__journal_settle(pf_ctx *parent, pf__journal_entry *slot, pf_exec *e)
{
	pf__cold *k = pf__cold_of(parent);
	pf__assert(k != NULL); /* made by pf__journal_claim */
	pf__spin_lock(&parent->lock);
	if (e != NULL && !k->journal_closed) {
		pf__ctx_retain(&e->ctx); /* the journal's reference */
		slot->exec = e;
		pf__spin_unlock(&parent->lock);
		return;
	}
	/* Creation failed, or the journal closed meanwhile: remove the
	 * placeholder. */
	for (pf__journal_entry **link = &k->journal; *link != NULL;
	     link = &(*link)->next) {
		if (*link == slot) {
			*link = slot->next;
			break;
		}
	}
	pf__spin_unlock(&parent->lock);
	pf__free(slot);
}

void
pf__journal_drop(pf_exec *e)
{
	pf_ctx *p = e->ctx.parent;
	pf__spin_lock(&p->lock);
	pf__journal_entry **link = find(p, pf__cold_of(&e->ctx)->key);
	pf__journal_entry *j = *link;
	bool mine = j != NULL && j->exec == e;
	if (mine)
		*link = j->next;
	pf__spin_unlock(&p->lock);
	if (mine) {
		pf__free(j);
		pf__ctx_release(&e->ctx); /* the journal's reference */
	}
}
