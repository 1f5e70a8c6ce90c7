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

/* getenv(name) parsed as above; def when unset or invalid. */
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
 * else min(affinity, cgroup limit), at least 1.
 */
unsigned pf__default_threads(void);

#endif /* PF_ENV_H */
