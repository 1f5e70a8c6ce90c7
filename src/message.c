/*
 * message.c: a context's error code and message (message.h).
 *
 * The code is an atomic int written under the context's lock (a relaxed
 * read sees some code that was set); the message pointer and the kept
 * texts are protected by the lock.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "message.h"

struct pf__message {
	pf__message *next;
	int code; /* inherited messages: the code they came with */
	char text[];
};

/* A message of len bytes (plus the NUL), not yet linked anywhere. */
static pf__message *
message_new(size_t len)
{
	pf__message *m = pf__malloc(sizeof(*m) + len + 1);
	if (m != NULL)
		m->code = 0;
	return m;
}

/* A copy of text, not yet linked anywhere; NULL when out of memory. */
static pf__message *
message_copy(const char *text)
{
	size_t len = strlen(text);
	pf__message *m = message_new(len);
	if (m != NULL)
		memcpy(m->text, text, len + 1);
	return m;
}

/* Links m into k's kept messages (under c's lock) and returns its text. */
static const char *
message_keep(pf_ctx *c, pf__cold *k, pf__message *m)
{
	pf__spin_lock(&c->lock);
	m->next = k->messages;
	k->messages = m;
	pf__spin_unlock(&c->lock);
	return m->text;
}

static const char *
keep_format(pf_ctx *c, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int len = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (len < 0)
		return NULL;
	pf__cold *k = pf__ctx_cold(c);
	if (k == NULL)
		return NULL;
	pf__message *m = message_new((size_t)len);
	if (m == NULL)
		return NULL;
	vsnprintf(m->text, (size_t)len + 1, fmt, ap);
	return message_keep(c, k, m);
}

const char *
pf__ctx_keep_text(pf_ctx *c, const char *text)
{
	pf__cold *k = pf__ctx_cold(c);
	pf__message *m = k != NULL ? message_copy(text) : NULL;
	return m != NULL ? message_keep(c, k, m) : NULL;
}

const char *
pf__ctx_own_message(pf_ctx *c)
{
	pf__cold *k = pf__cold_of(c);
	if (k == NULL)
		return NULL;
	pf__spin_lock(&c->lock);
	const char *msg = k->error_message;
	pf__spin_unlock(&c->lock);
	return msg;
}

void
pf__ctx_pass_message(pf_ctx *c)
{
	pf_ctx *p = c->parent;
	/* Only c's runner writes its error now, so the text stays put.  The
	 * scope's root handles no failure: nothing to pass up to. */
	const char *msg = pf__ctx_own_message(c);
	if (msg == NULL || p == NULL || p->kind == PF__CTX_ROOT)
		return;
	pf__cold *k = pf__ctx_cold(p);
	pf__message *m = k != NULL ? message_copy(msg) : NULL;
	if (m == NULL)
		return; /* the parent falls back to the code's text */
	m->code = pf__load_relaxed(&c->error);
	pf__spin_lock(&p->lock);
	pf__message *old = k->inherited;
	k->inherited = m;
	pf__spin_unlock(&p->lock);
	pf__free(old);
}

void
pf__ctx_record_error(pf_ctx *c, int code)
{
	/* The common case, success with no pf_ctx_fail before, needs no
	 * lock: only this thread (the runner) has written error so far. */
	if (code == 0 && pf__load_relaxed(&c->error) == 0)
		return;
	pf__spin_lock(&c->lock);
	/* The same code as pf_ctx_fail set keeps its message.  Any other
	 * code takes the message of the last failure under c with that code
	 * (moved to the kept messages, so it outlives later failures), else
	 * its pf_strerror text. */
	if (pf__load_relaxed(&c->error) != code) {
		atomic_store_explicit(&c->error, code, memory_order_relaxed);
		pf__cold *k = pf__cold_of(c);
		if (k != NULL) {
			pf__message *m = k->inherited;
			k->error_message = NULL;
			if (m != NULL && m->code == code && code != 0) {
				k->inherited = NULL;
				m->next = k->messages;
				k->messages = m;
				k->error_message = m->text;
			}
		}
	}
	pf__spin_unlock(&c->lock);
}

void
pf__messages_free(pf__cold *k)
{
	for (pf__message *m = k->messages, *n; m != NULL; m = n) {
		n = m->next;
		pf__free(m);
	}
	pf__free(k->inherited);
	k->messages = k->inherited = NULL;
}

int
pf_ctx_fail(pf_ctx *c, int code, const char *fmt, ...)
{
	if (c == NULL)
		return code;
	const char *msg = NULL;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		msg = keep_format(c, fmt, ap);
		va_end(ap);
	}
	pf__spin_lock(&c->lock);
	atomic_store_explicit(&c->error, code, memory_order_relaxed);
	/* No message (none given, or no memory for it): the code's text. */
	pf__cold *k = pf__cold_of(c);
	if (k != NULL)
		k->error_message = msg;
	pf__spin_unlock(&c->lock);
	return code;
}

int
pf_ctx_error(const pf_ctx *c, const char **message)
{
	if (c == NULL)
		return PF_EINVAL;
	pf_ctx *m = (pf_ctx *)c;
	pf__spin_lock(&m->lock);
	int code = pf__load_relaxed(&m->error);
	pf__cold *k = pf__cold_of(m);
	const char *msg = k != NULL ? k->error_message : NULL;
	pf__spin_unlock(&m->lock);
	if (message != NULL)
		*message = code == 0 ? NULL : msg != NULL ? msg :
		    pf_strerror(code);
	return code;
}
