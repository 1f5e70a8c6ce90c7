/*
 * message.h: a context's error code and message.
 *
 * pf_ctx_fail sets both; a failure without one of its own takes the
 * message of the last child, step or group call that failed under the
 * context with the same code (inherited), else the code's pf_strerror
 * text.  Messages are kept until the record is freed, so a pointer handed
 * out by pf_ctx_error or in a pf_call stays valid as long as the context.
 * The contract: pf_ctx_fail and pf_ctx_error in pumped.h.
 */
#ifndef PF_MESSAGE_H
#define PF_MESSAGE_H

#include "record.h"

/* Keeps a copy of text in c (freed with c); NULL when out of memory. */
const char *pf__ctx_keep_text(pf_ctx *c, const char *text);
/* c failed: if it has a message of its own, its parent inherits it. */
void pf__ctx_pass_message(pf_ctx *c);
/* c's own message for its error (pf_ctx_fail's or inherited), or NULL. */
const char *pf__ctx_own_message(pf_ctx *c);
/* Records c's final code (its runner's, when it ends). */
void pf__ctx_record_error(pf_ctx *c, int code);
/* Frees the messages of a cold block at the end of its record. */
void pf__messages_free(pf__cold *k);

#endif /* PF_MESSAGE_H */
