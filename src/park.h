/*
 * park.h: a one-token thread parker on a futex.
 *
 * Each thread that may sleep owns one parker.  unpark() leaves a token (at
 * most one is kept); park() consumes it, sleeping until there is one.  A
 * token given before the owner parks is never lost, so "announce, re-check,
 * park" protocols cannot miss a wake-up.  Spurious returns are allowed and
 * callers re-check their condition in a loop.
 *
 * Concurrency contract: park and park_until by the owner thread only;
 * unpark from any thread, concurrently.  unpark makes a system call only
 * when the owner is asleep in the kernel.
 *
 * Two ways to sleep, chosen by ./configure --with-parker: a futex on the
 * state word (Linux, the default there), or a mutex and condition variable
 * per parker (PF_PARKER_CONDVAR: any POSIX system).  The state word and its
 * protocol are the same in both; only the sleep and the wake differ.
 */
#ifndef PF_PARK_H
#define PF_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#ifdef PF_PARKER_CONDVAR
#include <pthread.h>
#endif

typedef struct pf__parker {
	/* PF__PARK_EMPTY, _PARKED (owner sleeping), _NOTIFIED (token). */
	_Atomic(uint32_t) state;
#ifdef PF_PARKER_CONDVAR
	/* The owner sleeps on cond while the state is PARKED, checking it
	 * under lock; a waker that found PARKED signals under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready; /* a thread's own parker is set up on first use */
#endif
} pf__parker;

void pf__parker_init(pf__parker *p);
/* Frees what init made (nothing with the futex parker). */
void pf__parker_fini(pf__parker *p);
/* Owner only.  Returns once a token was consumed (or spuriously). */
void pf__parker_park(pf__parker *p);
/* Owner only.  As park, giving up at deadline_ns (CLOCK_MONOTONIC).
 * True when a token was consumed. */
bool pf__parker_park_until(pf__parker *p, int64_t deadline_ns);
/* Any thread.  Gives the token and wakes the owner if it sleeps. */
void pf__parker_unpark(pf__parker *p);

/* The calling thread's own parker (thread-local, lives as long as the
 * thread). */
pf__parker *pf__parker_self(void);

#endif /* PF_PARK_H */
