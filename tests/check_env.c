/*
 * check_env.c: tuning variable parsing, PUMPED_NUM_THREADS, and the cgroup
 * CPU limit read from fixture trees built in a temporary directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"
#include "testlib.h"

/* ---- pf__env_parse_uint ---- */

static const struct parse_case {
	const char *s;
	unsigned long min, max;
	bool ok;
	unsigned long v;
} parse_cases[] = {
    {"4", 1, 100, true, 4},
    {"1", 1, 100, true, 1},
    {"100", 1, 100, true, 100},
    {" 4 ", 1, 100, true, 4},
    {"\t7\n", 1, 100, true, 7},
    {"007", 1, 100, true, 7},
    {"0", 0, 100, true, 0},
    {"0", 1, 100, false, 0},
    {"101", 1, 100, false, 0},
    {"-3", 0, 100, false, 0},
    {"+3", 0, 100, false, 0},
    {"abc", 0, 100, false, 0},
    {"12abc", 0, 100, false, 0},
    {"1 2", 0, 100, false, 0},
    {"99999999999999999999999", 0, ULONG_MAX, false, 0},
    {"18446744073709551615", 0, ULONG_MAX, true, ULONG_MAX},
    {"", 0, 100, false, 0},
    {"   ", 0, 100, false, 0},
    {NULL, 0, 100, false, 0},
};

START_TEST(parse_uint_table)
{
	const struct parse_case *c = &parse_cases[_i];
	unsigned long v = 12345;
	bool ok = pf__env_parse_uint(c->s, c->min, c->max, &v);
	ck_assert_msg(ok == c->ok, "\"%s\": ok %d", c->s ? c->s : "(null)", ok);
	/* The out-parameter is written only on success. */
	ck_assert_uint_eq(v, c->ok ? c->v : 12345);
}
END_TEST

/* ---- stderr capture ---- */

/*
 * fd 2 goes to a temporary file for the test (each test runs in its own
 * forked process, so the runner's stderr is untouched).
 */
static FILE *capture_file;
static int saved_stderr = -1;
static char captured_buf[16384];

static void
capture_start(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	ck_assert_ptr_nonnull(capture_file);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(capture_file), STDERR_FILENO), 0);
}

static void
capture_stop(void)
{
	if (saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	fclose(capture_file);
	capture_file = NULL;
}

/* Everything written to stderr since capture_start, NUL-terminated. */
static const char *
captured(void)
{
	fflush(stderr);
	ssize_t n = pread(
	    fileno(capture_file), captured_buf, sizeof(captured_buf) - 1, 0);
	ck_assert_int_ge(n, 0);
	captured_buf[n] = '\0';
	return captured_buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* The line pf__env_uint and pf__default_threads print for a bad value. */
static const char *
expected_line(const char *name, const char *value, unsigned long min,
    unsigned long max, unsigned long used)
{
	static char line[512];
	snprintf(line, sizeof(line),
	    "libpumped: %s=\"%s\" is not an integer in [%lu, %lu]; using %lu\n",
	    name, value, min, max, used);
	return line;
}

/* ---- PUMPED_NUM_THREADS ---- */

/* Every tuning variable unset, no variable warned yet, stderr captured. */
static void
warn_setup(void)
{
	unsetenv("PUMPED_NUM_THREADS");
	unsetenv("PUMPED_MAX_SPARE");
	unsetenv("PUMPED_STACK_KB");
	pf__env_reset_warnings();
	capture_start();
}

static void
warn_teardown(void)
{
	capture_stop();
	unsetenv("PUMPED_NUM_THREADS");
	unsetenv("PUMPED_MAX_SPARE");
	unsetenv("PUMPED_STACK_KB");
}

START_TEST(num_threads_valid)
{
	setenv("PUMPED_NUM_THREADS", "3", 1);
	ck_assert_uint_eq(pf__default_threads(), 3);
	setenv("PUMPED_NUM_THREADS", " 4 ", 1);
	ck_assert_uint_eq(pf__default_threads(), 4);
	setenv("PUMPED_NUM_THREADS", "1024", 1);
	ck_assert_uint_eq(pf__default_threads(), PF__MAX_THREADS);
}
END_TEST

START_TEST(num_threads_invalid_falls_back)
{
	static const char *bad[] = {
	    "0", "-3", "x", "4x", "", "1025", "99999999999"};
	unsigned def = pf__default_threads();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("PUMPED_NUM_THREADS", bad[i], 1);
		ck_assert_msg(pf__default_threads() == def, "\"%s\"", bad[i]);
	}
	/* Only the first bad value warned. */
	ck_assert_str_eq(captured(),
	    expected_line("PUMPED_NUM_THREADS", "0", 1, PF__MAX_THREADS, def));
}
END_TEST

/* ---- warnings for invalid tuning variables ---- */

/* The values the issue lists, and more; all invalid for [1, 1024]. */
static const char *const bad_threads[] = {"0", "-1", "abc", "2abc", "3.5",
    "100000", "", "   ", "+3", "1025", "1 2", "0x10"};

START_TEST(warn_num_threads_bad_value)
{
	const char *bad = bad_threads[_i];
	unsigned def = pf__default_threads();
	ck_assert_str_eq(captured(), "");

	ck_assert_int_eq(setenv("PUMPED_NUM_THREADS", bad, 1), 0);
	ck_assert_uint_eq(pf__default_threads(), def);
	const char *want =
	    expected_line("PUMPED_NUM_THREADS", bad, 1, PF__MAX_THREADS, def);
	ck_assert_str_eq(captured(), want);
	ck_assert_uint_eq(count_lines(captured()), 1);

	/* A second read, of the same value or another bad one: no more. */
	ck_assert_uint_eq(pf__default_threads(), def);
	ck_assert_int_eq(setenv("PUMPED_NUM_THREADS", "-7", 1), 0);
	ck_assert_uint_eq(pf__default_threads(), def);
	ck_assert_str_eq(captured(), want);
}
END_TEST

/* The scope's variables, with the limits and defaults scope.c uses. */
static const struct scope_var_case {
	const char *name, *value;
	unsigned long min, max, def;
} scope_var_cases[] = {
    {"PUMPED_MAX_SPARE", "-1", 0, PF__MAX_THREADS, 256},
    {"PUMPED_MAX_SPARE", "1025", 0, PF__MAX_THREADS, 256},
    {"PUMPED_MAX_SPARE", "", 0, PF__MAX_THREADS, 256},
    {"PUMPED_MAX_SPARE", "3.5", 0, PF__MAX_THREADS, 256},
    {"PUMPED_STACK_KB", "32", 64, 1u << 20, 8192},
    {"PUMPED_STACK_KB", "abc", 64, 1u << 20, 8192},
    {"PUMPED_STACK_KB", "2abc", 64, 1u << 20, 8192},
    {"PUMPED_STACK_KB", "99999999999999999999999", 64, 1u << 20, 8192},
};

START_TEST(warn_scope_var_bad_value)
{
	const struct scope_var_case *c = &scope_var_cases[_i];
	ck_assert_int_eq(setenv(c->name, c->value, 1), 0);
	ck_assert_uint_eq(
	    pf__env_uint(c->name, c->min, c->max, c->def), c->def);
	const char *want =
	    expected_line(c->name, c->value, c->min, c->max, c->def);
	ck_assert_str_eq(captured(), want);
	ck_assert_uint_eq(
	    pf__env_uint(c->name, c->min, c->max, c->def), c->def);
	ck_assert_str_eq(captured(), want);
}
END_TEST

START_TEST(warn_once_per_variable)
{
	unsigned def = pf__default_threads();
	char want[1536];
	setenv("PUMPED_NUM_THREADS", "abc", 1);
	setenv("PUMPED_MAX_SPARE", "-1", 1);
	setenv("PUMPED_STACK_KB", "1", 1);
	for (int round = 0; round < 3; round++) {
		ck_assert_uint_eq(pf__default_threads(), def);
		ck_assert_uint_eq(
		    pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 256);
		ck_assert_uint_eq(
		    pf__env_uint("PUMPED_STACK_KB", 64, 1u << 20, 8192), 8192);
	}
	snprintf(want, sizeof(want), "%s",
	    expected_line(
	        "PUMPED_NUM_THREADS", "abc", 1, PF__MAX_THREADS, def));
	strcat(want, expected_line("PUMPED_MAX_SPARE", "-1", 0, 1024, 256));
	strcat(want, expected_line("PUMPED_STACK_KB", "1", 64, 1u << 20, 8192));
	ck_assert_str_eq(captured(), want);

	/* A valid value in between does not re-arm the warning. */
	setenv("PUMPED_MAX_SPARE", "4", 1);
	ck_assert_uint_eq(pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 4);
	setenv("PUMPED_MAX_SPARE", "x", 1);
	ck_assert_uint_eq(pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 256);
	ck_assert_str_eq(captured(), want);

	/* The test hook forgets them: each warns once more. */
	pf__env_reset_warnings();
	ck_assert_uint_eq(pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 256);
	ck_assert_uint_eq(pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 256);
	strcat(want, expected_line("PUMPED_MAX_SPARE", "x", 0, 1024, 256));
	ck_assert_str_eq(captured(), want);
}
END_TEST

START_TEST(warn_valid_is_silent)
{
	static const char *good[] = {"1", "4", " 4 ", "\t7\n", "007", "1024"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		setenv("PUMPED_NUM_THREADS", good[i], 1);
		setenv("PUMPED_MAX_SPARE", good[i], 1);
		ck_assert_uint_eq(
		    pf__default_threads(), strtoul(good[i], NULL, 10));
		ck_assert_uint_eq(
		    pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256),
		    strtoul(good[i], NULL, 10));
	}
	setenv("PUMPED_MAX_SPARE", "0", 1);
	ck_assert_uint_eq(pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 0);
	setenv("PUMPED_STACK_KB", "64", 1);
	ck_assert_uint_eq(
	    pf__env_uint("PUMPED_STACK_KB", 64, 1u << 20, 8192), 64);
	ck_assert_str_eq(captured(), "");

	/* Valid reads did not use up the warning. */
	setenv("PUMPED_NUM_THREADS", "0", 1);
	unsigned def = pf__default_threads();
	ck_assert_str_eq(captured(),
	    expected_line("PUMPED_NUM_THREADS", "0", 1, PF__MAX_THREADS, def));
}
END_TEST

START_TEST(warn_unset_is_silent)
{
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_ge(pf__default_threads(), 1);
		ck_assert_uint_eq(
		    pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 256);
		ck_assert_uint_eq(
		    pf__env_uint("PUMPED_STACK_KB", 64, 1u << 20, 8192), 8192);
	}
	ck_assert_str_eq(captured(), "");
}
END_TEST

START_TEST(warn_value_sanitised)
{
	/* Terminal escapes, line breaks and high bytes become '?'. */
	setenv("PUMPED_MAX_SPARE", "\x1b[2J\r\nevil\x7f\xff\"", 1);
	ck_assert_uint_eq(pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256), 256);
	ck_assert_str_eq(captured(),
	    expected_line("PUMPED_MAX_SPARE", "?[2J??evil??\"", 0, 1024, 256));

	/* A long value is cut after 64 bytes, marked by "...". */
	char big[5001];
	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("PUMPED_STACK_KB", big, 1);
	ck_assert_uint_eq(
	    pf__env_uint("PUMPED_STACK_KB", 64, 1u << 20, 8192), 8192);
	const char *out = captured();
	ck_assert_uint_eq(count_lines(out), 2);
	const char *second = strchr(out, '\n') + 1;
	char want[256];
	snprintf(want, sizeof(want),
	    "libpumped: PUMPED_STACK_KB=\"%.64s\"... is not an integer in "
	    "[64, 1048576]; using 8192\n",
	    big);
	ck_assert_str_eq(second, want);

	/* Exactly 64 bytes is shown whole. */
	char exact[65];
	memcpy(exact, big, 64);
	exact[64] = '\0';
	setenv("PUMPED_NUM_THREADS", exact, 1);
	unsigned def = pf__default_threads();
	out = captured();
	ck_assert_uint_eq(count_lines(out), 3);
	second = strchr(out, '\n') + 1;
	ck_assert_str_eq(
	    strchr(second, '\n') + 1, expected_line("PUMPED_NUM_THREADS", exact,
	                                  1, PF__MAX_THREADS, def));

	/* Nothing but printable ASCII and the line ends. */
	for (const unsigned char *p = (const unsigned char *)captured();
	     *p != '\0'; p++)
		ck_assert_msg(
		    *p == '\n' || (*p >= 0x20 && *p < 0x7f), "byte 0x%02x", *p);
}
END_TEST

#define WARN_THREADS 16
#define WARN_READS 200

static pthread_barrier_t warn_barrier;

static void *
warn_reader(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&warn_barrier);
	for (int i = 0; i < WARN_READS; i++) {
		pf__env_uint("PUMPED_MAX_SPARE", 0, 1024, 256);
		pf__env_uint("PUMPED_STACK_KB", 64, 1u << 20, 8192);
		if (i % 50 == 0)
			pf__default_threads();
	}
	return NULL;
}

START_TEST(warn_concurrent_once)
{
	unsigned def = pf__default_threads();
	setenv("PUMPED_NUM_THREADS", "3.5", 1);
	setenv("PUMPED_MAX_SPARE", "many", 1);
	setenv("PUMPED_STACK_KB", "0", 1);
	pthread_t t[WARN_THREADS];
	ck_assert_int_eq(
	    pthread_barrier_init(&warn_barrier, NULL, WARN_THREADS), 0);
	for (int i = 0; i < WARN_THREADS; i++)
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, warn_reader, NULL), 0);
	for (int i = 0; i < WARN_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&warn_barrier);

	/* One line per variable, in whatever order the threads got there. */
	const char *out = captured();
	ck_assert_uint_eq(count_lines(out), 3);
	const char *want =
	    expected_line("PUMPED_NUM_THREADS", "3.5", 1, PF__MAX_THREADS, def);
	ck_assert_msg(strstr(out, want) != NULL, "missing %s", want);
	want = expected_line("PUMPED_MAX_SPARE", "many", 0, 1024, 256);
	ck_assert_msg(strstr(out, want) != NULL, "missing %s", want);
	want = expected_line("PUMPED_STACK_KB", "0", 64, 1u << 20, 8192);
	ck_assert_msg(strstr(out, want) != NULL, "missing %s", want);
}
END_TEST

START_TEST(default_within_affinity)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	unsigned aff = pf__affinity_cpus();
	unsigned def = pf__default_threads();
	ck_assert_uint_ge(aff, 1);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		ck_assert_uint_eq(aff, (unsigned)CPU_COUNT(&set));
	ck_assert_uint_ge(def, 1);
	ck_assert_uint_le(def, aff);
	/* The real files, whatever this machine has, parse without harm. */
	unsigned cg = pf__cgroup_cpu_limit(
	    "/proc/self/cgroup", "/proc/self/mountinfo", "");
	if (cg != 0)
		ck_assert_uint_le(def, cg);
}
END_TEST

/* ---- cgroup fixtures ---- */

static char base[] = "/tmp/pf_check_env_XXXXXX";
static char cgroup_file[PATH_MAX], mountinfo_file[PATH_MAX], root[PATH_MAX];

static const char v2_mount[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 "
    "- cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

static const char v1_mount[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "34 25 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup "
    "cgroup rw,memory\n"
    "35 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup "
    "cgroup rw,cpu,cpuacct\n";

static void
make_base(void)
{
	strcpy(base, "/tmp/pf_check_env_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(cgroup_file, sizeof(cgroup_file), "%s/cgroup", base);
	snprintf(mountinfo_file, sizeof(mountinfo_file), "%s/mountinfo", base);
	snprintf(root, sizeof(root), "%s/root", base);
}

static int
remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
remove_base(void)
{
	nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes base/rel, creating the directories on the way. */
static void
put(const char *rel, const char *content)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", base, rel);
	for (char *p = path + strlen(base) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	fclose(f);
}

static unsigned
limit(void)
{
	return pf__cgroup_cpu_limit(cgroup_file, mountinfo_file, root);
}

START_TEST(v2_max_is_unlimited)
{
	put("cgroup", "0::/app\n");
	put("mountinfo", v2_mount);
	put("root/sys/fs/cgroup/app/cpu.max", "max 100000\n");
	ck_assert_uint_eq(limit(), 0);
}
END_TEST

START_TEST(v2_quota_rounds_up)
{
	put("cgroup", "0::/app\n");
	put("mountinfo", v2_mount);
	put("root/sys/fs/cgroup/app/cpu.max", "150000 100000\n");
	ck_assert_uint_eq(limit(), 2);
	put("root/sys/fs/cgroup/app/cpu.max", "200000 100000\n");
	ck_assert_uint_eq(limit(), 2);
	put("root/sys/fs/cgroup/app/cpu.max", "5000 100000\n");
	ck_assert_uint_eq(limit(), 1);
}
END_TEST

START_TEST(v2_ancestor_tighter)
{
	put("cgroup", "0::/a/b/c\n");
	put("mountinfo", v2_mount);
	put("root/sys/fs/cgroup/cpu.max", "max 100000\n");
	put("root/sys/fs/cgroup/a/cpu.max", "100000 100000\n");
	put("root/sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
	put("root/sys/fs/cgroup/a/b/c/cpu.max", "400000 100000\n");
	ck_assert_uint_eq(limit(), 1);
}
END_TEST

START_TEST(v2_leaf_tighter)
{
	put("cgroup", "0::/a/b\n");
	put("mountinfo", v2_mount);
	put("root/sys/fs/cgroup/a/cpu.max", "800000 100000\n");
	put("root/sys/fs/cgroup/a/b/cpu.max", "300000 100000\n");
	ck_assert_uint_eq(limit(), 3);
}
END_TEST

START_TEST(v2_mount_point_is_checked)
{
	/* In a cgroup namespace the mount point is the container's cgroup. */
	put("cgroup", "0::/\n");
	put("mountinfo", v2_mount);
	put("root/sys/fs/cgroup/cpu.max", "250000 100000\n");
	ck_assert_uint_eq(limit(), 3);
}
END_TEST

START_TEST(v2_mount_root_is_own_cgroup)
{
	/* No cgroup namespace: the container's cgroup is mounted as root. */
	put("cgroup", "0::/kubepods/pod1/ctr\n");
	put("mountinfo",
	    "30 22 0:26 /kubepods/pod1/ctr /sys/fs/cgroup rw shared:4 - "
	    "cgroup2 cgroup2 rw\n");
	put("root/sys/fs/cgroup/cpu.max", "400000 100000\n");
	ck_assert_uint_eq(limit(), 4);
}
END_TEST

START_TEST(v2_escaped_mount_point)
{
	put("cgroup", "0::/app\n");
	put("mountinfo",
	    "30 22 0:26 / /cg\\040fs rw shared:4 - cgroup2 cgroup2 rw\n");
	put("root/cg fs/app/cpu.max", "100000 100000\n");
	ck_assert_uint_eq(limit(), 1);
}
END_TEST

START_TEST(v1_quota_period)
{
	put("cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n");
	put("mountinfo", v1_mount);
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
	    "250000\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
	    "100000\n");
	ck_assert_uint_eq(limit(), 3);
}
END_TEST

START_TEST(v1_minus_one_is_unlimited)
{
	put("cgroup", "4:cpu,cpuacct:/docker/abc\n");
	put("mountinfo", v1_mount);
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
	    "-1\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
	    "100000\n");
	ck_assert_uint_eq(limit(), 0);
}
END_TEST

START_TEST(v1_ancestor_tighter)
{
	put("cgroup", "4:cpuacct,cpu:/docker/abc\n");
	put("mountinfo", v1_mount);
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us",
	    "50000\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us",
	    "100000\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
	    "-1\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
	    "100000\n");
	ck_assert_uint_eq(limit(), 1);
}
END_TEST

START_TEST(hybrid_smallest_wins)
{
	put("cgroup", "4:cpu,cpuacct:/svc\n0::/svc\n");
	put("mountinfo",
	    "35 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
	    "36 25 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
	put("root/sys/fs/cgroup/cpu/svc/cpu.cfs_quota_us", "600000\n");
	put("root/sys/fs/cgroup/cpu/svc/cpu.cfs_period_us", "100000\n");
	put("root/sys/fs/cgroup/unified/svc/cpu.max", "200000 100000\n");
	ck_assert_uint_eq(limit(), 2);
}
END_TEST

START_TEST(missing_files_are_unlimited)
{
	/* No /proc files at all. */
	ck_assert_uint_eq(limit(), 0);
	/* No mountinfo. */
	put("cgroup", "0::/app\n");
	ck_assert_uint_eq(limit(), 0);
	/* No cgroup mount in mountinfo. */
	put("mountinfo",
	    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
	ck_assert_uint_eq(limit(), 0);
	/* Mounted, but no cpu.max anywhere. */
	put("mountinfo", v2_mount);
	ck_assert_uint_eq(limit(), 0);
	/* v1 with a quota but no period. */
	put("cgroup", "4:cpu,cpuacct:/x\n");
	put("mountinfo", v1_mount);
	put("root/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "100000\n");
	ck_assert_uint_eq(limit(), 0);
}
END_TEST

START_TEST(garbage_is_unlimited)
{
	static const char *bad_cpu_max[] = {"", "garbage", "150000", "150000\n",
	    "-5 100000", "150000 0", "0 100000", "150000 100000 junk", "max",
	    "1x 100000", "\n\n"};
	put("cgroup", "0::/app\n");
	put("mountinfo", v2_mount);
	for (size_t i = 0; i < sizeof(bad_cpu_max) / sizeof(bad_cpu_max[0]);
	     i++) {
		put("root/sys/fs/cgroup/app/cpu.max", bad_cpu_max[i]);
		ck_assert_msg(limit() == 0, "cpu.max \"%s\"", bad_cpu_max[i]);
	}

	/* Malformed /proc/self/cgroup lines are skipped. */
	put("root/sys/fs/cgroup/app/cpu.max", "100000 100000\n");
	put("cgroup", "garbage\n\n::\n0:\n12:cpu\n");
	ck_assert_uint_eq(limit(), 0);

	/* Malformed mountinfo lines are skipped; a good one still counts. */
	put("cgroup", "0::/app\n");
	put("mountinfo",
	    "1 2 3\n"
	    "30 22 0:26 / /sys/fs/cgroup rw shared:4 cgroup2 cgroup2 rw\n"
	    "30 22 0:26 / /sys/fs/cgroup rw -\n");
	ck_assert_uint_eq(limit(), 0);
	put("mountinfo", "x\n- - - - - - - -\n");
	ck_assert_uint_eq(limit(), 0);

	/* A line longer than any buffer is skipped whole. */
	char *long_line = malloc(20000);
	ck_assert_ptr_nonnull(long_line);
	memset(long_line, 'a', 19998);
	long_line[19998] = '\n';
	long_line[19999] = '\0';
	put("mountinfo", long_line);
	free(long_line);
	ck_assert_uint_eq(limit(), 0);

	/* v1 garbage. */
	put("cgroup", "4:cpu,cpuacct:/x\n");
	put("mountinfo", v1_mount);
	put("root/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "lots\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n");
	ck_assert_uint_eq(limit(), 0);
	put("root/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "100000\n");
	put("root/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "0\n");
	ck_assert_uint_eq(limit(), 0);
}
END_TEST

static Suite *
env_suite(void)
{
	const pf_test tests[] = {
		{ .tcase = "parse_uint", .test = parse_uint_table, .loop = (int)(sizeof(parse_cases) / sizeof(parse_cases[0])) },
		{ .tcase = "num_threads", .test = num_threads_valid, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "num_threads", .test = num_threads_invalid_falls_back, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "num_threads", .test = default_within_affinity, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_num_threads_bad_value, .loop = (int)(sizeof(bad_threads) / sizeof(bad_threads[0])), .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_scope_var_bad_value, .loop = (int)(sizeof(scope_var_cases) / sizeof(scope_var_cases[0])), .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_once_per_variable, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_valid_is_silent, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_unset_is_silent, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_value_sanitised, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "warnings", .test = warn_concurrent_once, .setup = warn_setup, .teardown = warn_teardown },
		{ .tcase = "cgroup_v2", .test = v2_max_is_unlimited, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v2", .test = v2_quota_rounds_up, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v2", .test = v2_ancestor_tighter, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v2", .test = v2_leaf_tighter, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v2", .test = v2_mount_point_is_checked, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v2", .test = v2_mount_root_is_own_cgroup, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v2", .test = v2_escaped_mount_point, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v1", .test = v1_quota_period, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v1", .test = v1_minus_one_is_unlimited, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v1", .test = v1_ancestor_tighter, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_v1", .test = hybrid_smallest_wins, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_malformed", .test = missing_files_are_unlimited, .setup = make_base, .teardown = remove_base },
		{ .tcase = "cgroup_malformed", .test = garbage_is_unlimited, .setup = make_base, .teardown = remove_base },
	};
	return pf_test_suite("env", tests, sizeof(tests) / sizeof(tests[0]));
}

int
main(void)
{
	return pf_test_run(env_suite());
}
