/*
 * trace.h: a scope's timeline trace (PUMPED_TRACE, pf_scope_trace_start):
 * fixed-size events recorded into per-thread ring buffers, formatted as
 * Chrome Trace Event JSON (docs/trace.md) only when written.
 *
 * Each worker of the scope's pool owns one buffer (by index) and writes it
 * with relaxed stores and no lock; threads that are not its workers share
 * one more buffer under a mutex.  A buffer is allocated by its writer on
 * its first event.  A writer never allocates after that, except the first
 * time it sees a flow (its name is copied, so that the file can be written
 * after the flow's memory is gone).
 *
 * Readers (pf__trace_write) may run while writers record: the ring's
 * protocol in trace.c drops the records a writer may have overwritten
 * during the copy, so a record is either read whole or left out.
 */
#ifndef PF_TRACE_H
#define PF_TRACE_H

#include <stdint.h>

#include "pool.h"
#include "pumped.h"
#include "uuid.h"

typedef struct pf__trace pf__trace;

/* A trace of a pool with max_workers workers (threads of them base
 * workers), written to path; origin is the raw time that is ts 0.  NULL
 * and *rc set on failure: PF_EINVAL (path cannot be opened for writing),
 * PF_ENOMEM. */
pf__trace *pf__trace_new(const char *path, unsigned threads,
    unsigned max_workers, int64_t origin, int *rc);
/* After every recording thread has stopped. */
void pf__trace_free(pf__trace *t);

/* Events, recorded on the calling thread (w: its worker in the scope's
 * pool, or NULL).  parent NULL: a root. */
void pf__trace_created(pf__trace *t, pf__worker *w, const pf__uuid *id,
    const pf__uuid *parent, const pf_flow *f, int64_t created);
void pf__trace_finished(pf__trace *t, pf__worker *w, const pf__uuid *id,
    const pf__uuid *parent, const pf_flow *f, int64_t created,
    int64_t started, int64_t completed, pf_status status, int error,
    bool deferred);
void pf__trace_abort(pf__trace *t, pf__worker *w, const pf__uuid *id,
    int reason, int64_t now);
void pf__trace_timeout(pf__trace *t, pf__worker *w, const pf__uuid *id,
    int64_t now);

/* Who wrote the file (pf_scope_trace_set_process): the pid its events
 * carry, the process's name, and its clock's offset from the job's
 * reference clock (ns). */
typedef struct pf__trace_process {
	int pid;
	int64_t clock_offset_ns;
	char name[64];
} pf__trace_process;

/* Writes the file (replacing it) with the events recorded so far: 0, or
 * PF_EINVAL when it cannot be written (a message goes to stderr).  p:
 * NULL for this process as it is (its pid, "libpumped scope", offset 0). */
int pf__trace_write(pf__trace *t, const pf__trace_process *p);

#endif /* PF_TRACE_H */
