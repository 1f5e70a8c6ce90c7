/*
 * journal.h: the journal of a context: child executions by key.
 *
 * A keyed child call (pf_exec_options.key) under a parent runs once: later
 * calls with the same key get the recorded execution (pumped.h, key).  The
 * journal lives in the parent's cold block; each entry holds a reference
 * on its execution, and is dropped when the execution ends cancelled (a
 * new call then runs anew) or when the parent's life ends.
 */
#ifndef PF_JOURNAL_H
#define PF_JOURNAL_H

#include "record.h"

/* The outcome of pf__journal_claim. */
enum pf__journal_claim {
	PF__JOURNAL_HIT = 1,    /* *found: the recorded execution, retained */
	PF__JOURNAL_NEW = 0,    /* *slot: a placeholder to settle           */
	PF__JOURNAL_CLOSED = 2, /* the parent's life ended: run unjournaled */
};

/*
 * Looks key up under parent for flow f.  Returns a pf__journal_claim, or
 * PF_EINVAL (the key is another flow's) or PF_ENOMEM.  A placeholder makes
 * concurrent callers with the same key wait until it is settled.
 */
int pf__journal_claim(pf_ctx *parent, const pf_flow *f, const char *key,
    pf_exec **found, pf__journal_entry **slot);
/* Fills a placeholder with e (retained), or removes it (e NULL, or the
 * journal closed meanwhile). */
void pf__journal_settle(pf_ctx *parent, pf__journal_entry *slot,
    pf_exec *e);
/* e, journaled under its key, ended cancelled: drops its entry. */
void pf__journal_drop(pf_exec *e);
/* The end of c's life: a flow context at its terminal status, an fn step
 * when its fn returns, a standalone context at its last handle's release.
 * Drops the journal's references; later keyed children run unjournaled. */
void pf__ctx_end_life(pf_ctx *c);

#endif /* PF_JOURNAL_H */
