/*
 * env.c: tuning variables and the default thread count.
 *
 * Everything here runs rarely (at pool creation), so it favours robustness
 * over speed: every file may be missing, unreadable, truncated or garbage,
 * and each such case means "no limit", never a crash or an error.
 *
 * Cgroup discovery follows what container runtimes produce:
 *   /proc/self/cgroup   "0::/path" (v2) or "4:cpu,cpuacct:/path" (v1).
 *   /proc/self/mountinfo  "id parent maj:min root mountpoint opts
 *                          [optional...] - fstype source superopts"
 * The cgroup directory is the mount point plus the process's cgroup path
 * made relative to the mount's root (without a cgroup namespace, a container
 * sees its own cgroup mounted at the mount point, and the mount's root
 * equals its path).
 *
 * getenv() is not safe against a concurrent setenv(); like every library,
 * this one assumes the application does not modify its environment while
 * threads run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config.h"

#include "env.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ceiling for the affinity mask size; Linux supports at most 8192 CPUs. */
#define AFFINITY_MAX_CPUS ((size_t)1 << 16)
/* Lines of interest are short; longer ones are skipped, not truncated. */
#define LINE_MAX_LEN 4096
/* Variables that can warn; the library reads three. */
#define WARN_SLOTS 16
/* Bytes of a bad value quoted in a warning; the rest is cut. */
#define WARN_VALUE_MAX 64

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

bool
pf__env_parse_uint(
    const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	if (s == NULL)
		return false;
	while (is_blank(*s))
		s++;
	/* No strtoul: it accepts a sign and silently negates "-3". */
	if (*s < '0' || *s > '9')
		return false;
	unsigned long v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned digit = (unsigned)(*s - '0');
		if (v > (ULONG_MAX - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	while (is_blank(*s))
		s++;
	if (*s != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * Names of the variables that have warned, filled from the front and never
 * emptied (outside tests).  A name is claimed by a compare-and-swap on the
 * first empty slot, so of any threads finding the same variable invalid at
 * once exactly one claims it: a slot never changes once set, hence a name
 * can only ever sit in the first slot a scan finds empty or holding it.
 */
static _Atomic(const char *) warned[WARN_SLOTS];

/* True for the first caller with this name, false for all later ones. */
static bool
claim_warning(const char *name)
{
	for (size_t i = 0; i < WARN_SLOTS; i++) {
		const char *cur =
		    atomic_load_explicit(&warned[i], memory_order_acquire);
		if (cur == NULL &&
		    atomic_compare_exchange_strong_explicit(&warned[i], &cur,
		        name, memory_order_acq_rel, memory_order_acquire))
			return true;
		/* cur now holds the slot's name, ours or another's. */
		if (strcmp(cur, name) == 0)
			return false;
	}
	return true; /* more variables than slots: warn rather than hide */
}

#ifdef PF_TESTING
void
pf__env_reset_warnings(void)
{
	for (size_t i = 0; i < WARN_SLOTS; i++)
		atomic_store_explicit(&warned[i], NULL, memory_order_release);
}
#endif

/*
 * One line, written with a single stdio call so that threads do not
 * interleave within it.  The value is the environment's, so anything may be
 * in it: bytes outside printable ASCII become '?' (no terminal escapes, no
 * line breaks) and only its first WARN_VALUE_MAX bytes are quoted.
 */
static void
warn_invalid(const char *name, const char *value, unsigned long min,
    unsigned long max, unsigned long used)
{
	if (!claim_warning(name))
		return;
	char shown[WARN_VALUE_MAX + 1];
	size_t n = 0;
	for (; n < WARN_VALUE_MAX && value[n] != '\0'; n++) {
		unsigned char c = (unsigned char)value[n];
		shown[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	shown[n] = '\0';
	char line[WARN_VALUE_MAX + 256];
	int len = snprintf(line, sizeof(line),
	    "libpumped: %s=\"%s\"%s is not an integer in [%lu, %lu]; "
	    "using %lu\n",
	    name, shown, value[n] != '\0' ? "..." : "", min, max, used);
	if (len < 0)
		return;
	/* Cut or not, it stays one line. */
	if ((size_t)len >= sizeof(line))
		line[sizeof(line) - 2] = '\n';
	fputs(line, stderr);
}

/*
 * getenv(name) parsed into *out.  Returns false when unset or invalid;
 * *bad is then the invalid value, or NULL when unset.
 */
static bool
env_lookup(const char *name, unsigned long min, unsigned long max,
    unsigned long *out, const char **bad)
{
	const char *s = getenv(name);
	*bad = NULL;
	if (s == NULL)
		return false;
	if (pf__env_parse_uint(s, min, max, out))
		return true;
	*bad = s;
	return false;
}

unsigned long
pf__env_uint(
    const char *name, unsigned long min, unsigned long max, unsigned long def)
{
	unsigned long v;
	const char *bad;
	if (env_lookup(name, min, max, &v, &bad))
		return v;
	if (bad != NULL)
		warn_invalid(name, bad, min, max, def);
	return def;
}

unsigned
pf__affinity_cpus(void)
{
#ifdef HAVE_SCHED_GETAFFINITY
	/*
	 * The kernel rejects a mask smaller than its own with EINVAL, so grow
	 * until it fits; a fixed cpu_set_t stops at 1024 CPUs.
	 */
	for (size_t ncpus = 1024; ncpus <= AFFINITY_MAX_CPUS; ncpus *= 2) {
		cpu_set_t *set = CPU_ALLOC(ncpus);
		if (set == NULL)
			break;
		size_t size = CPU_ALLOC_SIZE(ncpus);
		int rc = sched_getaffinity(0, size, set);
		int err = errno;
		int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
		CPU_FREE(set);
		if (rc == 0)
			return count > 0 ? (unsigned)count : 1;
		if (err != EINVAL)
			break;
	}
#endif
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	return online > 0 ? (unsigned)online : 1;
}

/*
 * Reads one line into buf without its newline.  Returns false at end of
 * file; a line too long for buf is consumed whole and returned empty, so the
 * caller skips it instead of parsing half of it.
 */
static bool
read_line(FILE *f, char *buf, size_t size)
{
	if (fgets(buf, (int)size, f) == NULL)
		return false;
	size_t len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n') {
		buf[len - 1] = '\0';
		return true;
	}
	if (feof(f))
		return true;
	int c;
	while ((c = fgetc(f)) != EOF && c != '\n')
		;
	buf[0] = '\0';
	return true;
}

/* Reads a small file whole into buf, NUL-terminated. */
static bool
read_small_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, size - 1, f);
	bool ok = !ferror(f);
	fclose(f);
	buf[n] = '\0';
	return ok && n > 0;
}

/* ceil(quota / period), or 0 ("no limit") for nonsense values. */
static unsigned
quota_cpus(unsigned long quota, unsigned long period)
{
	if (quota == 0 || period == 0)
		return 0;
	unsigned long cpus = quota / period + (quota % period != 0);
	return cpus > UINT_MAX ? UINT_MAX : (unsigned)cpus;
}

/* cgroup v2 cpu.max: "max PERIOD" or "QUOTA PERIOD". */
static unsigned
v2_limit(const char *dir)
{
	char path[PATH_MAX], buf[128];
	if (snprintf(path, sizeof(path), "%s/cpu.max", dir) >=
	    (int)sizeof(path))
		return 0;
	if (!read_small_file(path, buf, sizeof(buf)))
		return 0;
	char *sp = strchr(buf, ' ');
	if (sp == NULL)
		return 0;
	*sp = '\0';
	unsigned long quota, period;
	if (!pf__env_parse_uint(buf, 1, ULONG_MAX, &quota) ||
	    !pf__env_parse_uint(sp + 1, 1, ULONG_MAX, &period))
		return 0; /* "max" lands here too */
	return quota_cpus(quota, period);
}

/* cgroup v1 cpu.cfs_quota_us ("-1" = none) and cpu.cfs_period_us. */
static unsigned
v1_limit(const char *dir)
{
	char path[PATH_MAX], buf[64];
	unsigned long quota, period;

	if (snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir) >=
	    (int)sizeof(path))
		return 0;
	if (!read_small_file(path, buf, sizeof(buf)) ||
	    !pf__env_parse_uint(buf, 1, ULONG_MAX, &quota))
		return 0; /* "-1" lands here too */
	if (snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir) >=
	    (int)sizeof(path))
		return 0;
	if (!read_small_file(path, buf, sizeof(buf)) ||
	    !pf__env_parse_uint(buf, 1, ULONG_MAX, &period))
		return 0;
	return quota_cpus(quota, period);
}

static unsigned
min_limit(unsigned a, unsigned b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/*
 * Smallest limit from the leaf directory up to and including base_len
 * characters of it (the mount point).  dir is modified.
 */
static unsigned
walk_up(char *dir, size_t base_len, unsigned (*limit)(const char *))
{
	unsigned best = 0;
	for (;;) {
		best = min_limit(best, limit(dir));
		size_t len = strlen(dir);
		if (len <= base_len)
			break;
		while (len > base_len && dir[len - 1] != '/')
			len--;
		/* Drop the slash too, unless that would cut into the base. */
		if (len > base_len)
			len--;
		dir[len] = '\0';
	}
	return best;
}

/* True when list, comma-separated, contains word. */
static bool
has_word(const char *list, const char *word)
{
	size_t wlen = strlen(word);
	for (const char *p = list; p != NULL;) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == wlen && memcmp(p, word, len) == 0)
			return true;
		p = comma != NULL ? comma + 1 : NULL;
	}
	return false;
}

/* Decodes mountinfo's octal escapes (\040 for a space) in place. */
static void
unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r != '\0';) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
		    r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
			              (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/*
 * The limit under one mount: prefix + mount point + the cgroup path made
 * relative to the mount's root, then each ancestor up to the mount point.
 */
static unsigned
mount_limit(const char *prefix, const char *mnt_root, const char *mnt_point,
    const char *cg_path, unsigned (*limit)(const char *))
{
	const char *rel = "";
	size_t rlen = strlen(mnt_root);
	if (strcmp(mnt_root, "/") == 0)
		rel = cg_path;
	else if (strncmp(cg_path, mnt_root, rlen) == 0 &&
	         (cg_path[rlen] == '/' || cg_path[rlen] == '\0'))
		rel = cg_path + rlen;
	/*
	 * Otherwise the process's cgroup lies outside what is mounted; the
	 * mount's root is the closest ancestor visible, so rel stays "".
	 */

	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s%s", prefix, mnt_point);
	if (n < 0 || n >= (int)sizeof(dir))
		return 0;
	size_t base_len = (size_t)n;
	/* "/" as mount point would otherwise give "//path". */
	while (base_len > 0 && dir[base_len - 1] == '/')
		dir[--base_len] = '\0';
	n = snprintf(dir + base_len, sizeof(dir) - base_len, "%s", rel);
	if (n < 0 || (size_t)n >= sizeof(dir) - base_len)
		return 0;
	size_t len = strlen(dir);
	while (len > base_len && dir[len - 1] == '/')
		dir[--len] = '\0';
	return walk_up(dir, base_len, limit);
}

struct cg_paths {
	char v2[PATH_MAX]; /* empty when the process is in no v2 hierarchy */
	char v1[PATH_MAX]; /* path in the v1 hierarchy holding "cpu" */
};

static bool
read_proc_cgroup(const char *file, struct cg_paths *p)
{
	FILE *f = fopen(file, "re");
	if (f == NULL)
		return false;
	char line[LINE_MAX_LEN];
	while (read_line(f, line, sizeof(line))) {
		/* hierarchy-id:controllers:path; the path may contain ':'. */
		char *c1 = strchr(line, ':');
		char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL || c2[1] != '/')
			continue;
		*c1 = *c2 = '\0';
		const char *path = c2 + 1;
		if (strlen(path) >= PATH_MAX)
			continue;
		if (strcmp(line, "0") == 0 && c1[1] == '\0')
			strcpy(p->v2, path);
		else if (has_word(c1 + 1, "cpu"))
			strcpy(p->v1, path);
	}
	fclose(f);
	return p->v2[0] != '\0' || p->v1[0] != '\0';
}

unsigned
pf__cgroup_cpu_limit(
    const char *proc_cgroup, const char *mountinfo, const char *root_prefix)
{
	struct cg_paths paths = {{0}, {0}};
	if (!read_proc_cgroup(proc_cgroup, &paths))
		return 0;
	FILE *f = fopen(mountinfo, "re");
	if (f == NULL)
		return 0;

	/*
	 * A hierarchy may be mounted more than once (bind mounts); the first
	 * mount of each is the one the system set up, so later ones are
	 * ignored.
	 */
	bool v2_done = paths.v2[0] == '\0', v1_done = paths.v1[0] == '\0';
	unsigned best = 0;
	char line[LINE_MAX_LEN];
	while ((!v2_done || !v1_done) && read_line(f, line, sizeof(line))) {
		char *field[6], *save = NULL, *tok;
		int nf = 0;
		for (tok = strtok_r(line, " ", &save); tok != NULL && nf < 6;
		     tok = strtok_r(NULL, " ", &save))
			field[nf++] = tok;
		if (nf < 6)
			continue;
		/* Optional fields run up to a lone "-". */
		while (tok != NULL && strcmp(tok, "-") != 0)
			tok = strtok_r(NULL, " ", &save);
		const char *fstype = strtok_r(NULL, " ", &save);
		(void)strtok_r(NULL, " ", &save); /* the mount source */
		const char *superopts = strtok_r(NULL, " ", &save);
		if (fstype == NULL)
			continue;
		char *root = field[3], *point = field[4];
		unescape(root);
		unescape(point);
		if (!v2_done && strcmp(fstype, "cgroup2") == 0) {
			best = min_limit(best, mount_limit(root_prefix, root,
			                           point, paths.v2, v2_limit));
			v2_done = true;
		} else if (!v1_done && strcmp(fstype, "cgroup") == 0 &&
		           superopts != NULL && has_word(superopts, "cpu")) {
			best = min_limit(best, mount_limit(root_prefix, root,
			                           point, paths.v1, v1_limit));
			v1_done = true;
		}
	}
	fclose(f);
	return best;
}

unsigned
pf__default_threads(void)
{
	static const char name[] = "PUMPED_NUM_THREADS";
	unsigned long env;
	const char *bad;
	if (env_lookup(name, 1, PF__MAX_THREADS, &env, &bad))
		return (unsigned)env;
	unsigned n = pf__affinity_cpus();
#ifndef PF_PORTABLE
	/* Portable builds know no cgroups: affinity and sysconf only. */
	unsigned cg = pf__cgroup_cpu_limit(
	    "/proc/self/cgroup", "/proc/self/mountinfo", "");
	if (cg != 0 && cg < n)
		n = cg;
#endif
	if (n > PF__MAX_THREADS)
		n = PF__MAX_THREADS;
	if (n == 0)
		n = 1;
	/* The warning names the count computed, so it comes last. */
	if (bad != NULL)
		warn_invalid(name, bad, 1, PF__MAX_THREADS, n);
	return n;
}
