/*
 * group.h: the failure word of a parallel group.
 *
 * pf_ctx_parallel (parallel.c) fills one slot per call as it starts them;
 * the first call that does not complete (exec.c, at its terminal status)
 * sets the group's failure and aborts every other started call.  The
 * group lives on the stack of the caller, who waits for every call's end
 * before it returns.
 *
 *   starter (pf__group_publish)       failing call (pf__group_failed)
 *   slot[i] := e (seq_cst)            CAS failed 0 -> code (seq_cst)
 *   read failed (seq_cst)             read each slot (seq_cst)
 *   if failed: abort e                abort each call found
 *
 * Either the failing call sees e's slot, or the starter sees the failure:
 * no call started after a failure escapes the abort.
 */
#ifndef PF_GROUP_H
#define PF_GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "record.h"

struct pf__group {
	bool settled;               /* parallel_settled: failures abort nothing */
	atomic_int failed;          /* first failure's code, 0 before */
	size_t n;
	_Atomic(pf_exec *) *execs;  /* n slots, filled as calls start */
};

/* g over n slots at execs (not yet initialised). */
void pf__group_init(pf__group *g, bool settled, _Atomic(pf_exec *) *execs,
    size_t n);
/* Call i started as e: publish it; aborts e if the group already failed. */
void pf__group_publish(pf__group *g, size_t i, pf_exec *e);
/* e, a call of g, ended without completing (its result written). */
void pf__group_failed(pf__group *g, pf_exec *e);
/* The first failure's code, or 0; once every call ended. */
int pf__group_failure(pf__group *g);

#endif /* PF_GROUP_H */
