/*
 * park.c: the parker of park.h, on a futex or a condition variable.
 *
 * State machine (with the futex, the word is the futex):
 *
 *   EMPTY --park--> PARKED --unpark--> NOTIFIED --park returns--> EMPTY
 *   EMPTY --unpark--> NOTIFIED --park (no sleep)--> EMPTY
 *
 * The race that matters, park against unpark:
 *
 *   owner (park)                     other thread (unpark)
 *   CAS EMPTY -> PARKED              old = exchange(NOTIFIED)
 *   futex_wait(word, PARKED)         if old == PARKED: futex_wake
 *
 * If the exchange comes first, the owner's CAS fails (it sees NOTIFIED)
 * and it returns without sleeping; if the CAS comes first, the exchange
 * sees PARKED and wakes it, and futex_wait with the expected value PARKED
 * returns at once if the word already changed.  Either way no wake-up is
 * lost.  The condvar parker gets the same from its lock: the owner checks
 * the word under it before each wait, and a waker that saw PARKED takes it
 * to signal, so the signal cannot fall between the check and the wait.
 */
#include "config.h"

#include "park.h"

#include <errno.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>
#ifndef PF_PARKER_CONDVAR
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "clock.h"
#include "annotate.h"
#include "common.h"

enum { PF__PARK_EMPTY = 0, PF__PARK_PARKED = 1, PF__PARK_NOTIFIED = 2 };

static _Thread_local pf__parker self_parker PF_TLS_MODEL;

#ifndef PF_PARKER_CONDVAR

/* Sleeps while *word == expect, until deadline_ns (CLOCK_MONOTONIC; -1:
 * none).  Errors (EAGAIN: the word changed; EINTR; ETIMEDOUT) all mean
 * "look again", which every caller does. */
static void
sleep_while(pf__parker *p, uint32_t expect, int64_t deadline_ns)
{
	struct timespec rel, *r = NULL;
	if (deadline_ns >= 0) {
		int64_t left = deadline_ns - pf__clock_mono_ns();
		if (left <= 0)
			return;
		rel.tv_sec = (time_t)(left / 1000000000);
		rel.tv_nsec = (long)(left % 1000000000);
		r = &rel;
	}
	syscall(SYS_futex, (uint32_t *)&p->state, FUTEX_WAIT_PRIVATE, expect,
	    r, NULL, 0);
}

static void
wake(pf__parker *p)
{
	syscall(SYS_futex, (uint32_t *)&p->state, FUTEX_WAKE_PRIVATE, 1, NULL,
	    NULL, 0);
}

static void
setup(pf__parker *p)
{
	(void)p;
}

void
pf__parker_fini(pf__parker *p)
{
	(void)p;
}

#else /* PF_PARKER_CONDVAR */

static void
setup(pf__parker *p)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	/* Deadlines are CLOCK_MONOTONIC; where the attribute is missing the
	 * wait below converts them to the realtime clock. */
#ifdef HAVE_PTHREAD_CONDATTR_SETCLOCK
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
#endif
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->ready = true;
}

void
pf__parker_fini(pf__parker *p)
{
	if (!p->ready)
		return;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	p->ready = false;
}

static void
sleep_while(pf__parker *p, uint32_t expect, int64_t deadline_ns)
{
	pthread_mutex_lock(&p->lock);
	/* Checked under the lock that the waker takes to signal: a state
	 * change after this check is followed by a signal we wait for. */
	while (atomic_load_explicit(&p->state, memory_order_relaxed) ==
	    expect) {
		if (deadline_ns < 0) {
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
#ifdef HAVE_PTHREAD_CONDATTR_SETCLOCK
		int64_t at = deadline_ns;
#else
		int64_t at = pf__clock_wall_ns() +
		    (deadline_ns - pf__clock_mono_ns());
#endif
		struct timespec ts = { (time_t)(at / 1000000000),
			(long)(at % 1000000000) };
		if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&p->lock);
}

static void
wake(pf__parker *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

#endif /* PF_PARKER_CONDVAR */

void
pf__parker_init(pf__parker *p)
{
	atomic_init(&p->state, PF__PARK_EMPTY);
	PF_ATOMIC_OBJ(&p->state);
	setup(p);
}

pf__parker *
pf__parker_self(void)
{
	/* Zero-initialised TLS (the EMPTY state), never through
	 * pf__parker_init(); the condvar parker sets up its lock on first
	 * use (owner only, so no race).  Its lock and condition variable are
	 * never destroyed: glibc's hold no resources, and the thread's
	 * exit is the end of their use. */
	PF_ATOMIC_OBJ(&self_parker.state);
#ifdef PF_PARKER_CONDVAR
	if (PF_UNLIKELY(!self_parker.ready))
		setup(&self_parker);
#endif
	return &self_parker;
}

/* Consumes a token if there is one.  Acquire: pairs with the release
 * exchange in pf__parker_unpark, so whatever the unparking thread wrote
 * before unpark is visible after park returns. */
static bool
take_token(pf__parker *p)
{
	uint32_t expect = PF__PARK_NOTIFIED;
	bool taken = atomic_compare_exchange_strong_explicit(&p->state,
	    &expect, PF__PARK_EMPTY, memory_order_acquire, memory_order_relaxed);
	if (taken)
		PF_HB_AFTER(&p->state); /* the unparker's PF_HB_BEFORE */
	return taken;
}

void
pf__parker_park(pf__parker *p)
{
	if (take_token(p))
		return;
	uint32_t expect = PF__PARK_EMPTY;
	/* Relaxed is enough on success: the sleep itself publishes nothing;
	 * the token is taken with acquire below. */
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect,
		PF__PARK_PARKED, memory_order_relaxed, memory_order_relaxed)) {
		/* The only other state is NOTIFIED: a token arrived. */
		take_token(p);
		return;
	}
	for (;;) {
		sleep_while(p, PF__PARK_PARKED, -1);
		if (take_token(p))
			return;
	}
}

bool
pf__parker_park_until(pf__parker *p, int64_t deadline_ns)
{
	if (take_token(p))
		return true;
	uint32_t expect = PF__PARK_EMPTY;
	if (!atomic_compare_exchange_strong_explicit(&p->state, &expect,
		PF__PARK_PARKED, memory_order_relaxed, memory_order_relaxed))
		return take_token(p);
	for (;;) {
		int64_t left = deadline_ns - pf__clock_mono_ns();
		if (left <= 0) {
			/* Leave PARKED; an unpark racing us turns it into
			 * NOTIFIED, and then the token is ours. */
			expect = PF__PARK_PARKED;
			if (atomic_compare_exchange_strong_explicit(&p->state,
				&expect, PF__PARK_EMPTY, memory_order_relaxed,
				memory_order_relaxed))
				return false;
			return take_token(p);
		}
		sleep_while(p, PF__PARK_PARKED, deadline_ns);
		if (take_token(p))
			return true;
	}
}

void
pf__parker_unpark(pf__parker *p)
{
	/* Release: publishes the waker's writes to the owner's acquire in
	 * take_token(). */
	PF_HB_BEFORE(&p->state);
	if (atomic_exchange_explicit(&p->state, PF__PARK_NOTIFIED,
		memory_order_release) == PF__PARK_PARKED)
		wake(p);
}
