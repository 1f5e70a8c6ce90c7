/*
 * common.h: compiler helpers shared by every internal module.
 *
 * Self-contained; no dependency on other internal headers.
 */
#ifndef PF_COMMON_H
#define PF_COMMON_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#define PF_LIKELY(x) __builtin_expect(!!(x), 1)
#define PF_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Destructive interference size on every x86-64 and most aarch64 parts. */
#define PF_CACHELINE 64
#define PF_CACHE_ALIGNED alignas(PF_CACHELINE)

#define PF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PF_CONTAINER_OF(p, type, member) \
	((type *)(void *)((char *)(p)-offsetof(type, member)))

/*
 * Internal assertions: active with --enable-debug (PF_DEBUG), free otherwise.
 * A failed assertion is a broken invariant inside the library, never bad user
 * input; user input is answered with an error code.
 */
#ifdef PF_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define pf__assert(cond)                                                    \
	do {                                                                \
		if (PF_UNLIKELY(!(cond))) {                                 \
			fprintf(stderr, "libpumped: %s:%d: assertion '%s' failed\n", \
			    __FILE__, __LINE__, #cond);                         \
			abort();                                            \
		}                                                           \
	} while (0)
#else
#define pf__assert(cond) ((void)0)
#endif

/*
 * ThreadSanitizer does not model atomic_thread_fence, so the usual
 * refcount drop (release decrement, then an acquire fence on the last one)
 * looks like a race to it.  Under TSan the decrement itself is acq_rel,
 * which is equally correct and a little dearer.  GCC and clang spell
 * "built with -fsanitize=thread" differently.
 */
#if defined(__SANITIZE_THREAD__)
#define PF_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PF_UNDER_TSAN 1
#endif
#endif

/*
 * Thread-locals on the hot path use the initial-exec model: in a shared
 * library the default (global-dynamic) model calls __tls_get_addr on each
 * access.  libpumped's few bytes of TLS fit the static TLS surplus glibc
 * keeps for libraries that are dlopen()ed.
 */
#if defined(__GNUC__)
#define PF_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define PF_TLS_MODEL
#endif

/* A hint to the CPU inside spin loops (PAUSE on x86, YIELD on arm). */
static inline void
pf__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* PF_COMMON_H */
