/*
 * sub.h: status callbacks of an execution: the creator's on_status and
 * the subscribers of pf_exec_on_status.
 *
 * Subscribers use the status word (record.h): pf_exec_on_status sets SUBS
 * under the context's lock and reads the status from that same RMW; a
 * finisher whose CAS saw SUBS delivers to the list, each node remembering
 * the last status it was given, so nobody is told twice or misses one.
 */
#ifndef PF_SUB_H
#define PF_SUB_H

#include "frame.h"
#include "record.h"

/* Delivers st to the subscribers that have not seen it (sub.c). */
void pf__subs_deliver(pf_exec *e, uint32_t st);
/* Frees the subscribers of a cold block at the end of its record. */
void pf__subs_free(pf__cold *k);

/* Calls e's on_status (the status word has ON_STATUS) with st, counted
 * as a callback on this thread. */
static inline void
pf__status_call(pf_exec *e, uint32_t st)
{
	const pf__cold *k = pf__cold_of(&e->ctx);
	pf__in_callback++;
	k->on_status(e, (pf_status)st, k->on_status_data);
	pf__in_callback--;
}

/* Delivers st to on_status (flags has ON_STATUS), then (flags has SUBS)
 * to the subscribers. */
static inline void
pf__status_deliver(pf_exec *e, uint32_t st, uint32_t flags)
{
	if (flags & PF__F_ON_STATUS)
		pf__status_call(e, st);
	if (flags & PF__F_SUBS)
		pf__subs_deliver(e, st);
}

#endif /* PF_SUB_H */
