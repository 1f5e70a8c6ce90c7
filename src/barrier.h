/*
 * barrier.h: asymmetric memory barriers.
 *
 * Some protocols need a StoreLoad barrier on both sides, but one side runs
 * once per execution and the other once per scope.  The frequent side then
 * uses pf__barrier_light() (a compiler barrier only) and the rare side
 * pf__barrier_heavy(), which makes every running thread of the process
 * execute a full memory barrier (Linux membarrier(2),
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED).  After pf__barrier_heavy() returns,
 * every store another thread made before its light barrier is visible, and
 * every load it makes after its light barrier sees what the heavy side
 * stored before calling it.
 *
 * pf__barrier_asymmetric() says whether the pair is available (kernel
 * 4.14+, not forbidden by seccomp, not under ThreadSanitizer, which cannot
 * see it); callers fall back to seq_cst atomics when it is not.  Any
 * thread may call these.
 */
#ifndef PF_BARRIER_H
#define PF_BARRIER_H

#include <stdatomic.h>
#include <stdbool.h>

/* Registers the process once; true when the heavy barrier works. */
bool pf__barrier_init(void);
bool pf__barrier_asymmetric(void);

static inline void
pf__barrier_light(void)
{
	/* Only the compiler may not move accesses across it; the CPU is
	 * fenced from the heavy side. */
	atomic_signal_fence(memory_order_seq_cst);
}

/* Requires pf__barrier_asymmetric(). */
void pf__barrier_heavy(void);

#endif /* PF_BARRIER_H */
