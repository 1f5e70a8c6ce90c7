/*
 * env.h: tuning variables and the default thread count.
 *
 * The default thread count is min(CPUs in the affinity mask, the cgroup CPU
 * quota rounded up), at least 1.  The quota is read for cgroup v2 (cpu.max)
 * and v1 (cpu.cfs_quota_us / cpu.cfs_period_us), for the process's leaf
 * cgroup and each of its ancestors up to the mount root; the smallest wins.
 * Any thread may call these; they read files and the environment each time.
 */
#ifndef PF_ENV_H
#define PF_ENV_H

#include <stdbool.h>

/* Upper bound on threads the library accepts from any source. */
#define PF__MAX_THREADS 1024u

/*
 * Parses a decimal unsigned value of a tuning variable.  Returns true and
 * stores it in *out when s is a number in [min, max] (surrounding blanks
 * allowed); false for NULL, empty, negative, non-numeric, trailing junk or
 * out of range, so the caller keeps its default.
 */
bool pf__env_parse_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out);

/*
 * getenv(name) parsed as above; def when unset or invalid.  A value that is
 * set but invalid (empty and blank included) prints one warning line to
 * stderr naming the variable, the value (non-printable bytes as '?', cut
 * after 64 bytes) and the value used, e.g.
 *   libpumped: PUMPED_STACK_KB="abc" is not an integer in [64, 1048576];
 *   using 8192
 * (one line), at most once per process per variable, whatever the threads.
 * name must have static storage duration (a string literal): it is kept.
 */
unsigned long pf__env_uint(const char *name, unsigned long min,
    unsigned long max, unsigned long def);

/*
 * CPU limit from cgroups, rounded up; 0 when there is no limit.
 * proc_cgroup: path of a file in the format of /proc/self/cgroup;
 * mountinfo: path of a file in the format of /proc/self/mountinfo;
 * root_prefix: prepended to every cgroup mount point found (tests point
 * these at fixture trees; production passes the real files and "").
 * Missing, unreadable or malformed files count as "no limit".
 */
unsigned pf__cgroup_cpu_limit(const char *proc_cgroup, const char *mountinfo,
    const char *root_prefix);

/* CPUs in this thread's affinity mask, at least 1. */
unsigned pf__affinity_cpus(void);

/*
 * The default thread count: PUMPED_NUM_THREADS when valid (1..PF__MAX_THREADS),
 * else min(affinity, cgroup limit), at least 1.  An invalid value (0
 * included) warns as pf__env_uint does, naming the count computed.
 */
unsigned pf__default_threads(void);

#ifdef PF_TESTING
/*
 * Forgets which variables have warned, so the next invalid value of each
 * warns again.  Not safe against concurrent reads of variables.
 */
void pf__env_reset_warnings(void);
#endif

#endif /* PF_ENV_H */
