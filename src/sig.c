/*
 * sig.c: listeners and the eventfd of a context's abort signal.
 *
 * Against the abort.  A listener is added, and the fd made, under the
 * context's lock, after reading the abort word there; pf__signal_fire
 * takes the same lock after the abort word was set.  So either the adder
 * sees the abort (and calls the listener itself, or writes the fd), or
 * the firing sees the listener (or the fd).  Never both, never neither.
 *
 * Removal against a running listener.  The listener being run is kept in
 * `firing` (under the lock) while it runs without the lock; a removal from
 * another thread waits until it returned, and a removal from inside that
 * very call (this thread's frames say so) only marks it, so that the
 * firing loop does not touch it again.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#ifndef PF_SIGNAL_PIPE
#include <sys/eventfd.h>
#endif
#include <unistd.h>

#include "frame.h"
#include "sig.h"

enum { L_IDLE, L_QUEUED, L_RUNNING };

static pf_ctx *
signal_ctx(const pf_signal *s)
{
	return PF_CONTAINER_OF(s, pf_ctx, signal);
}

#ifndef PF_SIGNAL_PIPE
/* Makes the eventfd readable; cannot fail for a counter below 2^64 - 1. */
static void
poke(pf__cold *k)
{
	uint64_t one = 1;
	ssize_t w = write(k->fd, &one, sizeof(one));
	(void)w;
}

/* 0, or PF_ENOMEM / PF_EAGAIN. */
static int
make_fd(pf__cold *k)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return errno == ENOMEM ? PF_ENOMEM : PF_EAGAIN;
	k->fd = fd;
	return 0;
}
#else
/* A pipe instead (portable builds): the read end is the signal's fd, one
 * byte in the write end makes it readable (the abort fires once, so the
 * pipe never fills). */
static void
poke(pf__cold *k)
{
	char one = 1;
	ssize_t w = write(k->fd_w, &one, 1);
	(void)w;
}

static int
make_fd(pf__cold *k)
{
	int fds[2];
	if (pipe(fds) != 0)
		return errno == ENOMEM ? PF_ENOMEM : PF_EAGAIN;
	for (int i = 0; i < 2; i++) {
		(void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
		(void)fcntl(fds[i], F_SETFL,
		    fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	k->fd = fds[0];
	k->fd_w = fds[1];
	return 0;
}
#endif

void
pf__signal_fire(pf_ctx *c)
{
	pf_signal *s = &c->signal;
	pf__spin_lock(&c->lock);
	/* Read under the lock: pf_signal_fd makes the cold block before it
	 * takes the lock and checks the abort word, so either we see the
	 * block here or it sees the abort. */
	pf__cold *k = pf__cold_of(c);
	if (k != NULL && k->fd >= 0)
		poke(k);
	while (c->listeners != NULL) {
		pf_signal_listener *l = c->listeners;
		c->listeners = l->_next;
		if (c->listeners != NULL)
			c->listeners->_prev = NULL;
		l->_next = l->_prev = NULL;
		l->_state = L_RUNNING;
		c->firing = l;
		c->firing_removed = false;
		pf__spin_unlock(&c->lock);
		pf__frame frame;
		pf__frame_push(&frame, PF__FRAME_LISTENER, l);
		l->_fn(s, l->_data);
		pf__frame_pop(&frame);
		pf__spin_lock(&c->lock);
		/* After this, remove_listener stops waiting and the caller may
		 * reuse l: do not touch it again.  A listener that removed
		 * itself may already be gone: only clear `firing`. */
		if (!c->firing_removed)
			l->_state = L_IDLE;
		c->firing = NULL;
	}
	pf__spin_unlock(&c->lock);
}

void
pf__signal_wait_fired(pf_ctx *c)
{
	pf__spin_lock(&c->lock);
	while (c->listeners != NULL || c->firing != NULL) {
		pf__spin_unlock(&c->lock);
		sched_yield();
		pf__spin_lock(&c->lock);
	}
	pf__spin_unlock(&c->lock);
}

void
pf__signal_free(pf__cold *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
#ifdef PF_SIGNAL_PIPE
	if (k->fd_w >= 0)
		close(k->fd_w);
	k->fd_w = -1;
#endif
}

pf_signal *
pf_ctx_signal(pf_ctx *c)
{
	return c != NULL ? &c->signal : NULL;
}

bool
pf_signal_aborted(const pf_signal *s)
{
	return s != NULL && pf__ctx_abort_reason(signal_ctx(s)) != 0;
}

int
pf_signal_reason(const pf_signal *s)
{
	if (s == NULL)
		return PF_EINVAL;
	return pf__ctx_abort_reason(signal_ctx(s));
}

int
pf_signal_fd(pf_signal *s)
{
	if (s == NULL)
		return PF_EINVAL;
	pf_ctx *c = signal_ctx(s);
	pf__cold *k = pf__ctx_cold(c); /* the fd lives in the cold block */
	if (k == NULL)
		return PF_ENOMEM;
	pf__spin_lock(&c->lock);
	if (k->fd < 0) {
		int rc = make_fd(k);
		if (rc != 0) {
			pf__spin_unlock(&c->lock);
			return rc;
		}
		/* Already aborted: the fd must be readable now.  Under the
		 * lock, so the firing cannot write a second time unseen. */
		if (pf__ctx_abort_reason(c) != 0)
			poke(k);
	}
	int fd = k->fd;
	pf__spin_unlock(&c->lock);
	return fd;
}

int
pf_signal_add_listener(pf_signal *s, pf_signal_listener *l,
    void (*fn)(pf_signal *s, void *data), void *data)
{
	if (s == NULL || l == NULL || fn == NULL)
		return PF_EINVAL;
	pf_ctx *c = signal_ctx(s);
	pf__spin_lock(&c->lock);
	/* Adding a queued or running listener again would corrupt the list. */
	bool present = c->firing == l;
	for (pf_signal_listener *q = c->listeners; q != NULL && !present;
	     q = q->_next)
		present = q == l;
	if (present) {
		pf__spin_unlock(&c->lock);
		return PF_EINVAL;
	}
	l->_fn = fn;
	l->_data = data;
	/* Checked under the lock: see the top of this file. */
	if (pf__ctx_abort_reason(c) != 0) {
		l->_state = L_IDLE;
		l->_next = l->_prev = NULL;
		pf__spin_unlock(&c->lock);
		pf__in_callback++;
		fn(s, data);
		pf__in_callback--;
		return 0;
	}
	l->_state = L_QUEUED;
	l->_prev = NULL;
	l->_next = c->listeners;
	if (c->listeners != NULL)
		c->listeners->_prev = l;
	c->listeners = l;
	pf__spin_unlock(&c->lock);
	return 0;
}

int
pf_signal_remove_listener(pf_signal *s, pf_signal_listener *l)
{
	if (s == NULL || l == NULL)
		return PF_EINVAL;
	pf_ctx *c = signal_ctx(s);
	pf__spin_lock(&c->lock);
	if (l->_state == L_QUEUED) {
		/* The public struct's own links (pumped.h fixes its layout). */
		if (l->_prev != NULL)
			l->_prev->_next = l->_next;
		else
			c->listeners = l->_next;
		if (l->_next != NULL)
			l->_next->_prev = l->_prev;
		l->_next = l->_prev = NULL;
		l->_state = L_IDLE;
	} else if (c->firing == l &&
	    !pf__frame_here(PF__FRAME_LISTENER, l)) {
		/* It runs on another thread now: wait until it returned. */
		while (c->firing == l) {
			pf__spin_unlock(&c->lock);
			sched_yield();
			pf__spin_lock(&c->lock);
		}
	} else if (c->firing == l) {
		/* Removing itself from inside its own call (perhaps from a
		 * listener it set off): nothing to wait for.  It stays
		 * `firing` until it returns, so a removal from another thread
		 * still waits; the firing loop will not touch it. */
		c->firing_removed = true;
		l->_state = L_IDLE;
	}
	pf__spin_unlock(&c->lock);
	return 0;
}
