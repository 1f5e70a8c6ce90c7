/*
 * alloc.h: the one door to the heap.
 *
 * Every allocation in the library goes through these wrappers so that a test
 * build (PF_TESTING) can make the N-th allocation fail and prove that every
 * caller reports PF_ENOMEM and leaks nothing.  The wrappers call jemalloc
 * when configure found it (it is linked as the process allocator), else the
 * system malloc.  Any thread may call them.
 */
#ifndef PF_ALLOC_H
#define PF_ALLOC_H

#include <stddef.h>

void *pf__malloc(size_t size);
void *pf__calloc(size_t n, size_t size);
/* alignment: a power of two >= sizeof(void *); size: any. Free with pf__free. */
void *pf__aligned_alloc(size_t alignment, size_t size);
void pf__free(void *p);
/* s must not be NULL. */
char *pf__strdup(const char *s);

#ifdef PF_TESTING
/*
 * Fault injection, tests only.  pf__alloc_fail_at(n): the n-th allocation
 * from now fails (1 = the next one); 0 disables.  pf__alloc_count(): the
 * number of allocations attempted since the last pf__alloc_fail_at() call,
 * so a test can first count the allocations of a path, then fail each one.
 */
void pf__alloc_fail_at(long n);
long pf__alloc_count(void);
#endif

#endif /* PF_ALLOC_H */
