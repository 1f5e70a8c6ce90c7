/*
 * sig.h: a context's abort signal: listeners and the eventfd.
 *
 * The contract is pf_signal_* in pumped.h.  The signal is the context
 * itself (record.h): aborting it (ctx.c) calls pf__signal_fire once, on
 * the aborting thread, right after the abort word is set.
 */
#ifndef PF_SIG_H
#define PF_SIG_H

#include "record.h"

/* Makes the fd readable and runs every listener added so far. */
void pf__signal_fire(pf_ctx *c);
/* Waits (yielding) until c's signal has no listener left to run: an
 * abort that another thread is firing has run them all.  Only for an
 * aborted c, from a thread that is not running one of its listeners. */
void pf__signal_wait_fired(pf_ctx *c);
/* Closes the fd of a cold block at the end of its record. */
void pf__signal_free(pf__cold *k);

#endif /* PF_SIG_H */
