/*
 * tag.h: typed tags of a context, inherited down the tree.
 *
 * A context's own values live in its cold block, one entry per tag,
 * protected by the context's lock; a lookup walks from the context up to
 * the scope's root and then falls back to the tag's default.  The flow
 * tags (pf_flow_name_tag, ...) are computed from the nearest flow context
 * rather than stored.
 */
#ifndef PF_TAG_H
#define PF_TAG_H

#include <stddef.h>

#include "record.h"

/* Sets each of n values on c: 0, PF_EINVAL (a bad tag or NULL value) or
 * PF_ENOMEM. */
int pf__tags_seed(pf_ctx *c, const pf_tag_value *tags, size_t n);
/* Frees the entries of a cold block at the end of its record. */
void pf__tags_free(pf__cold *k);

#endif /* PF_TAG_H */
