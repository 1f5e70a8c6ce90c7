/*
 * uuid.h: RFC 9562 UUID version 7, generated without a system call.
 *
 * Layout (RFC 9562 section 5.7, with the "method 1" monotonic counter of
 * section 6.2): 48-bit Unix milliseconds, version 7, 12 bits of rand_a used
 * as the high part of a per-thread counter, variant 10, then 62 bits made of
 * the low counter bits and per-thread random bits.  Each thread seeds itself
 * once from getrandom(2), and again in a fork() child; after that an id
 * costs a few arithmetic operations and no system call.  Ids are unique
 * across threads and processes (the per-thread random part) and strictly
 * increasing per thread.
 *
 * Any thread may call every function here.
 */
#ifndef PF_UUID_H
#define PF_UUID_H

#include <stdint.h>

typedef struct pf__uuid {
	uint8_t b[16]; /* big-endian, as in RFC 9562 */
} pf__uuid;

#define PF__UUID_TEXT_LEN 36
/* Width of the per-thread counter: 12 bits of rand_a, 14 of rand_b. */
#define PF__UUID_COUNTER_BITS 26

/*
 * A new UUIDv7 for the time unix_ns (nanoseconds since the epoch), greater
 * than the calling thread's previous id even when unix_ns is not later.
 */
void pf__uuid_v7(pf__uuid *out, int64_t unix_ns);
/* The id as two big-endian halves (the form the static probes pass). */
static inline uint64_t
pf__uuid_half(const pf__uuid *u, unsigned half)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v = v << 8 | u->b[half * 8 + i];
	return v;
}

/* Lower-case 8-4-4-4-12 text; writes 37 bytes (36 + NUL). */
void pf__uuid_format(const pf__uuid *u, char out[PF__UUID_TEXT_LEN + 1]);

/* Parses 8-4-4-4-12 hex text (either case, nothing after it): 0, or -1
 * for anything else. */
int pf__uuid_parse(const char *text, pf__uuid *out);

#ifdef PF_TESTING
/*
 * Tests only: sets the calling thread's counter (below
 * 2^PF__UUID_COUNTER_BITS) so that a test reaches the overflow path without
 * making 2^26 ids first.
 */
void pf__uuid_set_counter(uint32_t counter);
#endif

#endif /* PF_UUID_H */
