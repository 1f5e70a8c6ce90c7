/*
 * probe.c: the semaphores of the static probes (probe.h).
 *
 * A tracer finds each one through the probe's note (its address is
 * recorded there) and increments it while attached; nothing in the library
 * writes them.  Hidden: they are not part of the ABI, and the note needs
 * no symbol.
 */
#include "config.h"

#include "probe.h"

#ifdef PF_USDT

#define PF__PROBE_DEFINE(name)                                              \
	__attribute__((section(".probes"), used)) volatile unsigned short \
	    PF__PROBE_SEM(name) = 0

PF__PROBE_DEFINE(scope_created);
PF__PROBE_DEFINE(scope_disposed);
PF__PROBE_DEFINE(exec_created);
PF__PROBE_DEFINE(exec_started);
PF__PROBE_DEFINE(exec_finished);
PF__PROBE_DEFINE(ctx_aborted);
PF__PROBE_DEFINE(timeout_fired);
PF__PROBE_DEFINE(steal);
PF__PROBE_DEFINE(park);
PF__PROBE_DEFINE(unpark);
PF__PROBE_DEFINE(spare_started);

#endif /* PF_USDT */
