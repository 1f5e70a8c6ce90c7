/*
 * barrier.c: membarrier(2) behind barrier.h.
 */
#include "config.h"

#include "barrier.h"

#include <pthread.h>
#ifndef PF_PORTABLE
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif
#include <unistd.h>

#include "annotate.h"
#include "atomics.h"
#include "common.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool usable;

#ifndef PF_PORTABLE
static int
membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}
#endif

static void
probe(void)
{
#if defined(PF_UNDER_TSAN) || defined(PF_PORTABLE)
	/* TSan cannot see the kernel's barrier: use the atomics it checks.
	 * A portable build has none: every caller then takes the symmetric
	 * path (a full fence, or a seq_cst RMW, on both sides). */
	return;
#else
	int cmds = membarrier(MEMBARRIER_CMD_QUERY);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
	    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
		return;
	/* Release: pairs with the acquire in pf__barrier_asymmetric(). */
	PF_ATOMIC_OBJ(&usable);
	PF_HB_BEFORE(&usable);
	atomic_store_explicit(&usable, true, memory_order_release);
#endif
}

bool
pf__barrier_init(void)
{
	pthread_once(&once, probe);
	return pf__barrier_asymmetric();
}

bool
pf__barrier_asymmetric(void)
{
	return pf__load_acquire(&usable);
}

void
pf__barrier_heavy(void)
{
#ifdef PF_PORTABLE
	/* Never asymmetric (probe): callers do not come here. */
	atomic_thread_fence(memory_order_seq_cst);
#else
	/* Registered in probe(); it cannot fail afterwards except for
	 * arguments, which are constant. */
	int rc = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	pf__assert(rc == 0);
	(void)rc;
#endif
}
