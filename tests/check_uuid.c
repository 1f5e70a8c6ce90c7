/*
 * check_uuid.c: UUIDv7 text form, layout, per-thread order, uniqueness
 * across threads and across fork().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "testlib.h"
#include "uuid.h"

#define NS_PER_MS INT64_C(1000000)

static uint64_t
ts_ms(const pf__uuid *u)
{
	uint64_t t = 0;
	for (int i = 0; i < 6; i++)
		t = t << 8 | u->b[i];
	return t;
}

static int
uuid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(pf__uuid));
}

START_TEST(format_known_value)
{
	/* The example of RFC 9562 appendix A.6. */
	static const pf__uuid u = {{0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c,
	    0xc3, 0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f}};
	char text[PF__UUID_TEXT_LEN + 1];
	pf__uuid_format(&u, text);
	ck_assert_str_eq(text, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
}
END_TEST

START_TEST(format_shape)
{
	for (int n = 0; n < 1000; n++) {
		pf__uuid u;
		char text[PF__UUID_TEXT_LEN + 1];
		memset(text, 'Z', sizeof(text));
		pf__uuid_v7(&u, pf__clock_wall_ns());
		pf__uuid_format(&u, text);
		ck_assert_uint_eq(strlen(text), 36);
		for (int i = 0; i < 36; i++) {
			char c = text[i];
			if (i == 8 || i == 13 || i == 18 || i == 23)
				ck_assert_int_eq(c, '-');
			else
				ck_assert((c >= '0' && c <= '9') ||
				          (c >= 'a' && c <= 'f'));
		}
	}
}
END_TEST

START_TEST(version_and_variant)
{
	for (int n = 0; n < 1000; n++) {
		pf__uuid u;
		pf__uuid_v7(&u, pf__clock_wall_ns());
		ck_assert_uint_eq(u.b[6] >> 4, 7);
		ck_assert_uint_eq(u.b[8] >> 6, 2);
	}
}
END_TEST

START_TEST(timestamp_is_given_time)
{
	/* Later than any id this thread made, so it is used as given. */
	int64_t t = pf__clock_wall_ns() + 3600 * 1000 * NS_PER_MS;
	pf__uuid u;
	pf__uuid_v7(&u, t);
	ck_assert_uint_eq(ts_ms(&u), (uint64_t)(t / NS_PER_MS));
}
END_TEST

START_TEST(clock_step_back_keeps_order)
{
	int64_t t = pf__clock_wall_ns() + 7200 * 1000 * NS_PER_MS;
	pf__uuid a, b, c;
	pf__uuid_v7(&a, t);
	pf__uuid_v7(&b, t - 1000 * NS_PER_MS);
	pf__uuid_v7(&c, t);
	ck_assert_int_lt(uuid_cmp(&a, &b), 0);
	ck_assert_int_lt(uuid_cmp(&b, &c), 0);
	ck_assert_uint_eq(ts_ms(&b), (uint64_t)(t / NS_PER_MS));
	ck_assert_uint_eq(ts_ms(&c), (uint64_t)(t / NS_PER_MS));
}
END_TEST

START_TEST(counter_overflow_advances_ms)
{
	/*
	 * The id after the last counter value of a millisecond must move the
	 * millisecond field forward rather than wrap the counter.
	 */
	int64_t t = pf__clock_wall_ns() + 10800 * 1000 * NS_PER_MS;
	uint64_t ms = (uint64_t)(t / NS_PER_MS);
	pf__uuid a, b, c;
	pf__uuid_v7(&a, t);
	pf__uuid_set_counter((UINT32_C(1) << PF__UUID_COUNTER_BITS) - 2);
	pf__uuid_v7(&b, t);
	pf__uuid_v7(&c, t);
	ck_assert_int_lt(uuid_cmp(&a, &b), 0);
	ck_assert_int_lt(uuid_cmp(&b, &c), 0);
	ck_assert_uint_eq(ts_ms(&b), ms);
	ck_assert_uint_eq(ts_ms(&c), ms + 1);
	/* Counter bits all ones in b, all zeros in c. */
	ck_assert_uint_eq(b.b[6] & 0x0f, 0x0f);
	ck_assert_uint_eq(b.b[7], 0xff);
	ck_assert_uint_eq(b.b[8] & 0x3f, 0x3f);
	ck_assert_uint_eq(b.b[9], 0xff);
	ck_assert_uint_eq(c.b[6] & 0x0f, 0);
	ck_assert_uint_eq(c.b[7], 0);
	ck_assert_uint_eq(c.b[8] & 0x3f, 0);
	ck_assert_uint_eq(c.b[9], 0);
}
END_TEST

#define THREADS 4

struct gen_job {
	pf__uuid *ids;
	long n;
	long out_of_order; /* written by the worker, read after join */
};

static void *
gen_worker(void *arg)
{
	struct gen_job *job = arg;
	for (long i = 0; i < job->n; i++) {
		pf__uuid_v7(&job->ids[i], pf__clock_wall_ns());
		if (i > 0 && uuid_cmp(&job->ids[i - 1], &job->ids[i]) >= 0)
			job->out_of_order++;
	}
	return NULL;
}

START_TEST(threads_unique_and_ordered)
{
	long per = pf_test_scale(1000000) / THREADS;
	pf__uuid *ids = malloc(sizeof(*ids) * (size_t)(per * THREADS));
	ck_assert_ptr_nonnull(ids);
	pthread_t th[THREADS];
	struct gen_job job[THREADS];
	for (int i = 0; i < THREADS; i++) {
		job[i] = (struct gen_job){ids + i * per, per, 0};
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, gen_worker, &job[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(job[i].out_of_order, 0);
	}
	qsort(ids, (size_t)(per * THREADS), sizeof(*ids), uuid_cmp);
	for (long i = 1; i < per * THREADS; i++)
		ck_assert_int_ne(uuid_cmp(&ids[i - 1], &ids[i]), 0);
	free(ids);
}
END_TEST

START_TEST(fork_child_reseeds)
{
	/*
	 * Parent and child feed the same time to the same inherited state: a
	 * child that did not reseed would produce exactly the parent's id.
	 */
	int64_t t = pf__clock_wall_ns();
	pf__uuid before, mine, theirs;
	pf__uuid_v7(&before, t);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pf__uuid u;
		pf__uuid_v7(&u, t + NS_PER_MS);
		ssize_t w = write(fds[1], &u, sizeof(u));
		_exit(w == (ssize_t)sizeof(u) ? 0 : 1);
	}
	pf__uuid_v7(&mine, t + NS_PER_MS);
	ssize_t r = read(fds[0], &theirs, sizeof(theirs));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	close(fds[0]);
	close(fds[1]);
	ck_assert_int_eq(r, (ssize_t)sizeof(theirs));
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_ne(uuid_cmp(&mine, &theirs), 0);
	/* The child's thread stays ordered after its own earlier ids. */
	ck_assert_int_lt(uuid_cmp(&before, &theirs), 0);
}
END_TEST

static Suite *
uuid_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "format", .test = format_known_value },
		{ .tcase = "format", .test = format_shape },
		{ .tcase = "layout", .test = version_and_variant },
		{ .tcase = "layout", .test = timestamp_is_given_time },
		{ .tcase = "monotonic", .test = clock_step_back_keeps_order },
		{ .tcase = "monotonic", .test = counter_overflow_advances_ms },
		{ .tcase = "fork", .test = fork_child_reseeds },
		{ .tcase = "stress", .test = threads_unique_and_ordered, .timeout = 120 },
	};
	return pf_test_suite("uuid", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(uuid_suite());
}
