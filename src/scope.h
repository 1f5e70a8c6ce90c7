/*
 * scope.h: the scope record (layer 4).
 *
 * A scope is its engine (what it runs on) and the root context that root
 * executions and standalone contexts hang from, whose tag store holds the
 * scope tags.  Since every record holds a reference on its parent, the
 * scope's memory lives exactly as long as some record does:
 * pf_scope_dispose drops the scope's own reference, and the root's last
 * release frees the scope (the root's class, installed by scope.c).
 */
#ifndef PF_SCOPE_H
#define PF_SCOPE_H

#include "engine.h"
#include "record.h"

struct pf_scope {
	pf__engine engine;
	pf_ctx root;
};

#endif /* PF_SCOPE_H */
