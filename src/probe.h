/*
 * probe.h: static probes (USDT, provider "pumped"), free until a tracer
 * attaches.
 *
 * Each probe site is a single nop in the code, described in the binary's
 * .note.stapsdt section (bpftrace, perf, SystemTap and GDB read it).  Each
 * probe also has a semaphore, a counter in the .probes section that a
 * tracer increments while it is attached; call sites test it first
 * (PF_PROBE_ON), so arguments that cost something (an id split in two, a
 * clock conversion) are computed only while someone listens:
 *
 *     if (PF_PROBE_ON(exec_started))
 *             PF_PROBE5(exec_started, hi, lo, name, worker, pending_ns);
 *
 * Built without <sys/sdt.h>, or with ./configure --disable-usdt, every
 * PF_PROBE_ON is 0 and the compiler drops the block.  At most six
 * arguments: bpftrace reads no more on x86-64.  The probes and their
 * arguments are listed in docs/probes.md; keep the two in step.
 */
#ifndef PF_PROBE_H
#define PF_PROBE_H

#include "common.h"

#ifdef PF_USDT

#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

/* The semaphores (probe.c): written by the tracer (through ptrace or the
 * kernel's uprobe code), so read as volatile, never cached in a register. */
#define PF__PROBE_SEM(name) pumped_##name##_semaphore
#define PF__PROBE_DECLARE(name) \
	extern volatile unsigned short PF__PROBE_SEM(name)
PF__PROBE_DECLARE(scope_created);
PF__PROBE_DECLARE(scope_disposed);
PF__PROBE_DECLARE(exec_created);
PF__PROBE_DECLARE(exec_started);
PF__PROBE_DECLARE(exec_finished);
PF__PROBE_DECLARE(ctx_aborted);
PF__PROBE_DECLARE(timeout_fired);
PF__PROBE_DECLARE(steal);
PF__PROBE_DECLARE(park);
PF__PROBE_DECLARE(unpark);
PF__PROBE_DECLARE(spare_started);

#define PF_PROBE_ON(name) PF_UNLIKELY(PF__PROBE_SEM(name) != 0)
#define PF_PROBE1(name, a) STAP_PROBE1(pumped, name, a)
#define PF_PROBE2(name, a, b) STAP_PROBE2(pumped, name, a, b)
#define PF_PROBE3(name, a, b, c) STAP_PROBE3(pumped, name, a, b, c)
#define PF_PROBE5(name, a, b, c, d, e) STAP_PROBE5(pumped, name, a, b, c, d, e)
#define PF_PROBE6(name, a, b, c, d, e, f) \
	STAP_PROBE6(pumped, name, a, b, c, d, e, f)

#else /* !PF_USDT */

#define PF_PROBE_ON(name) 0
#define PF_PROBE1(name, ...) ((void)0)
#define PF_PROBE2(name, ...) ((void)0)
#define PF_PROBE3(name, ...) ((void)0)
#define PF_PROBE5(name, ...) ((void)0)
#define PF_PROBE6(name, ...) ((void)0)

#endif /* PF_USDT */

#endif /* PF_PROBE_H */
