/*
 * uuid.c: RFC 9562 UUIDv7 without a system call per id.
 *
 * Bit layout (big-endian, 128 bits):
 *
 *   48  unix_ts_ms     milliseconds since the epoch
 *    4  ver            0111
 *   12  counter[25:14] rand_a: the high part of the counter
 *    2  var            10
 *   14  counter[13:0]  top of rand_b: the low part of the counter
 *   48  node           per-thread random, fixed until the next fork
 *
 * Per thread, (unix_ts_ms, counter) strictly increases (RFC 9562 section
 * 6.2, method 1, with a 26-bit counter): a newer millisecond resets the
 * counter to 0; an equal or older one (a burst, or the wall clock stepping
 * back) keeps the last millisecond and increments the counter; a counter
 * overflow moves the millisecond field one ahead of the clock.  Across
 * threads and processes ids differ by the 48-bit node, drawn from
 * getrandom(2) when a thread makes its first id.
 *
 * Concurrency: all state is thread-local, so any thread may call anything.
 * The only shared variable is fork_gen, see below.
 *
 * Fork: a child inherits the forking thread's state, node included, and
 * would repeat the parent's next ids.  An atfork child handler bumps fork_gen;
 * each id compares it to the generation its thread seeded under, so the
 * child reseeds on its first id and the parent pays one load per id.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config.h"

#include "uuid.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#if defined(HAVE_GETRANDOM) && !defined(PF_PORTABLE)
#include <sys/random.h>
#endif
#include <unistd.h>

#include "clock.h"
#include "common.h"

#define COUNTER_MAX ((UINT32_C(1) << PF__UUID_COUNTER_BITS) - 1)
#define NODE_MASK ((UINT64_C(1) << 48) - 1)

struct uuid_state {
	uint64_t gen; /* fork_gen this thread seeded under; 0 = not seeded */
	uint64_t last_ms; /* millisecond field of the last id */
	uint32_t counter; /* counter field of the last id */
	uint64_t node;    /* 48 random bits */
};

static _Thread_local struct uuid_state tls PF_TLS_MODEL;

/*
 * Starts at 1 so that a zeroed thread state reads as "not seeded".  Written
 * only by the atfork child handler, which runs while the child has a single
 * thread; threads the child creates later see the new value through
 * pthread_create.  No data is published through it, so relaxed is enough
 * for both the increment and the per-id load.
 */
static _Atomic uint64_t fork_gen = 1;

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Written once inside pthread_once, which orders it before every reader. */
static bool atfork_ok;

static void
on_fork_child(void)
{
	/* Relaxed: see fork_gen. */
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void
register_atfork(void)
{
	atfork_ok = pthread_atfork(NULL, NULL, on_fork_child) == 0;
}

static uint64_t
splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t
random_u64(void)
{
	uint64_t v;

	/*
	 * GRND_NONBLOCK: an early-boot caller must not hang on entropy; it
	 * falls through to /dev/urandom, which never blocks.
	 */
#if defined(HAVE_GETRANDOM) && !defined(PF_PORTABLE)
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
#endif
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, &v, sizeof(v));
		close(fd);
		if (n == (ssize_t)sizeof(v))
			return v;
	}
	/*
	 * No kernel randomness at all (seccomp, no /dev): mix what tells this
	 * thread apart from every other one, here and in other processes.
	 */
	/* The thread's own address space slot tells threads apart;
	 * the clocks and the process id tell processes apart. */
	static _Thread_local int here;
	uint64_t tid = (uint64_t)(uintptr_t)&here ^ (uint64_t)getpid();
	uint64_t mix = (uint64_t)pf__clock_mono_ns() ^
	               ((uint64_t)pf__clock_wall_ns() << 1) ^ (tid << 32) ^
	               (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&tls;
	return splitmix64(mix);
}

static void
seed(struct uuid_state *s, uint64_t gen)
{
	pthread_once(&atfork_once, register_atfork);
	s->node = random_u64() & NODE_MASK;
	/*
	 * If the handler could not be registered (ENOMEM), a fork would go
	 * unnoticed; leaving the state unseeded draws a fresh node for every id
	 * instead, slower but still unique.  last_ms and counter are kept, so
	 * ids stay increasing in this thread, across a fork too.
	 */
	s->gen = atfork_ok ? gen : 0;
}

void
pf__uuid_v7(pf__uuid *out, int64_t unix_ns)
{
	struct uuid_state *s = &tls;

	/* Relaxed: see fork_gen. */
	uint64_t gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
	if (PF_UNLIKELY(s->gen != gen))
		seed(s, gen);

	uint64_t ms = unix_ns > 0 ? (uint64_t)unix_ns / 1000000 : 0;
	if (ms > s->last_ms) {
		s->last_ms = ms;
		s->counter = 0;
	} else if (s->counter < COUNTER_MAX) {
		s->counter++;
	} else {
		s->last_ms++;
		s->counter = 0;
	}

	/* Two big-endian 64-bit words: ms(48) ver(4) c[25:14](12) and
	 * var(2) c[13:0](14) node(48). */
	uint64_t c = s->counter;
	uint64_t hi = s->last_ms << 16 | 0x7000 | ((c >> 14) & 0x0fff);
	uint64_t lo = (uint64_t)0x8000 << 48 | (c & 0x3fff) << 48 |
	    (s->node & NODE_MASK);
	hi = __builtin_bswap64(hi);
	lo = __builtin_bswap64(lo);
	memcpy(out->b, &hi, sizeof(hi));
	memcpy(out->b + 8, &lo, sizeof(lo));
}

#ifdef PF_TESTING
void
pf__uuid_set_counter(uint32_t counter)
{
	pf__assert(counter <= COUNTER_MAX);
	tls.counter = counter;
}
#endif

void
pf__uuid_format(const pf__uuid *u, char out[PF__UUID_TEXT_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->b[i] >> 4];
		*p++ = hex[u->b[i] & 0x0f];
	}
	*p = '\0';
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pf__uuid_parse(const char *text, pf__uuid *out)
{
	const char *p = text;
	for (int i = 0; i < 16; i++) {
		if ((i == 4 || i == 6 || i == 8 || i == 10) && *p++ != '-')
			return -1;
		int hi = hex_digit(p[0]);
		int lo = hi < 0 ? -1 : hex_digit(p[1]);
		if (lo < 0)
			return -1;
		out->b[i] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	return *p == '\0' ? 0 : -1;
}
