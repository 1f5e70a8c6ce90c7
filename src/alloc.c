/*
 * alloc.c: the one door to the heap.
 *
 * When configure finds jemalloc it is linked as the process allocator, so the
 * plain malloc family already reaches it; calling mallocx() directly would
 * buy nothing for the sizes the library allocates and would tie the code to
 * one allocator.
 *
 * Under PF_TESTING every allocating wrapper draws a ticket from a global
 * counter; the one whose ticket equals the armed value fails.  Without
 * PF_TESTING the check compiles to nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

#ifdef PF_TESTING
#include <stdatomic.h>
#include <stdbool.h>

/*
 * Both counters carry no data besides their own value: a ticket is unique
 * because fetch_add is atomic whatever its order, and nothing else is
 * published through them, so relaxed order is enough everywhere.  A test
 * arms the injector before it starts the threads that allocate, and
 * pthread_create orders that store before the threads' loads.
 */
static _Atomic long fail_at;  /* 0 = disarmed; else the failing ticket */
static _Atomic long attempts; /* tickets drawn since the last arming */

void
pf__alloc_fail_at(long n)
{
	/* Relaxed: see the comment on the counters above. */
	atomic_store_explicit(&attempts, 0, memory_order_relaxed);
	atomic_store_explicit(&fail_at, n, memory_order_relaxed);
}

long
pf__alloc_count(void)
{
	/* Relaxed: see the comment on the counters above. */
	return atomic_load_explicit(&attempts, memory_order_relaxed);
}

static bool
injected_failure(void)
{
	/* Relaxed: see the comment on the counters above. */
	long ticket =
	    atomic_fetch_add_explicit(&attempts, 1, memory_order_relaxed) + 1;
	long target = atomic_load_explicit(&fail_at, memory_order_relaxed);
	return target > 0 && ticket == target;
}

#define FAIL_IF_INJECTED()                                                     \
	do {                                                                   \
		if (injected_failure())                                        \
			return NULL;                                           \
	} while (0)
#else
#define FAIL_IF_INJECTED() ((void)0)
#endif

void *
pf__malloc(size_t size)
{
	FAIL_IF_INJECTED();
	return malloc(size);
}

void *
pf__calloc(size_t n, size_t size)
{
	FAIL_IF_INJECTED();
	return calloc(n, size);
}

void *
pf__aligned_alloc(size_t alignment, size_t size)
{
	/*
	 * posix_memalign rather than C11 aligned_alloc: the latter wants size
	 * to be a multiple of alignment, which callers should not have to know.
	 */
	pf__assert(
	    alignment >= sizeof(void *) && (alignment & (alignment - 1)) == 0);
	FAIL_IF_INJECTED();
	void *p;
	if (posix_memalign(&p, alignment, size) != 0)
		return NULL;
	return p;
}

void
pf__free(void *p)
{
	free(p);
}

char *
pf__strdup(const char *s)
{
	/* Through pf__malloc so that fault injection counts it once. */
	size_t len = strlen(s) + 1;
	char *d = pf__malloc(len);
	if (d != NULL)
		memcpy(d, s, len);
	return d;
}
