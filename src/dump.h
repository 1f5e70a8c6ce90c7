/*
 * dump.h: the live tree of a scope (pf_scope_dump), as text or JSON, with
 * warnings for executions that run long, ignore an abort, or starve.
 */
#ifndef PF_DUMP_H
#define PF_DUMP_H

#include <stdio.h>

#include "record.h"

/* Writes the tree below root (a scope's root context) to out. */
int pf__dump(pf_ctx *root, unsigned threads, FILE *out, unsigned flags);

#endif /* PF_DUMP_H */
