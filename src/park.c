/*
 * park.c: the futex parker of park.h.
 *
 * State machine (the word is the futex):
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
 * lost.
 */
#include "config.h"

#include "park.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "annotate.h"
#include "common.h"

enum { PF__PARK_EMPTY = 0, PF__PARK_PARKED = 1, PF__PARK_NOTIFIED = 2 };

static _Thread_local pf__parker self_parker PF_TLS_MODEL;

static void
futex_wait(_Atomic(uint32_t) *word, uint32_t expect, const struct timespec *rel)
{
	/* Errors (EAGAIN: the word changed; EINTR; ETIMEDOUT) all mean "look
	 * again", which every caller does. */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expect, rel,
	    NULL, 0);
}

static void
futex_wake(_Atomic(uint32_t) *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
	    0);
}

void
pf__parker_init(pf__parker *p)
{
	atomic_init(&p->state, PF__PARK_EMPTY);
	PF_ATOMIC_OBJ(&p->state);
}

pf__parker *
pf__parker_self(void)
{
	/* Zero-initialised TLS, never through pf__parker_init(). */
	PF_ATOMIC_OBJ(&self_parker.state);
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
		futex_wait(&p->state, PF__PARK_PARKED, NULL);
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
		struct timespec rel = { (time_t)(left / 1000000000),
			(long)(left % 1000000000) };
		futex_wait(&p->state, PF__PARK_PARKED, &rel);
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
		futex_wake(&p->state);
}
