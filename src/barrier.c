/*
 * barrier.c: membarrier(2) behind barrier.h.
 */
#include "config.h"

#include "barrier.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "annotate.h"
#include "atomics.h"
#include "common.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool usable;

static int
membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static void
probe(void)
{
#ifdef PF_UNDER_TSAN
	/* TSan cannot see the kernel's barrier: use the atomics it checks. */
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
	/* Registered in probe(); it cannot fail afterwards except for
	 * arguments, which are constant. */
	int rc = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	pf__assert(rc == 0);
	(void)rc;
}
