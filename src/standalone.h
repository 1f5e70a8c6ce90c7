/*
 * standalone.h: standalone contexts (pf_scope_create_execution), and the
 * handle calls of any context: pf_ctx_retain, pf_ctx_end, pf_ctx_release.
 *
 * A standalone context counts its user handles apart from its references:
 * the last handle's release ends it (completed_at, its timeout, its
 * journal), while references held by children keep its memory.
 */
#ifndef PF_STANDALONE_H
#define PF_STANDALONE_H

#include "record.h"

/* A standalone context under root (the scope's), with the id given (NULL:
 * a new one): 0, PF_EINVAL, PF_ENOMEM, PF_ESHUTDOWN. */
int pf__standalone_create(pf__engine *g, pf_ctx *root,
    const pf_ctx_options *opts, const pf__uuid *id, pf_ctx **out);

#endif /* PF_STANDALONE_H */
