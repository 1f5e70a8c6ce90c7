/*
 * pumped.h: libpumped, tracked flows on a work-stealing thread pool.
 *
 * A scope owns a pool of worker threads, a timer thread, extensions and
 * scope tags.  A flow (pf_flow) is a handler plus the sizes of its input and
 * output.  Executing a flow creates an execution (pf_exec) with its own
 * context (pf_ctx): an RFC 9562 id, a name, timestamps, a status moved by
 * atomic compare-and-swap, an error, typed tags inherited from its parent,
 * and an abort signal that reaches every descendant.
 *
 * Conventions, for every function below unless its comment says otherwise:
 *   - Return codes: 0 on success or a negative code (PF_E*); out-parameters
 *     are written only on success.  A call that fails started nothing and
 *     took ownership of nothing.
 *   - NULL or out-of-range arguments return PF_EINVAL; they never crash.
 *   - Any thread may call it, concurrently with any other call on the same
 *     objects.
 *   - Strings and option structs passed in are copied during the call;
 *     only `metadata`, `on_status_data`, flow and tag definitions must
 *     outlive their use.
 *   - Misuse the library cannot detect: using a handle after releasing it,
 *     releasing more often than retaining, disposing a scope twice or
 *     using it after dispose returned, removing a signal listener that was
 *     never added.  These are undefined behaviour, as with free().
 *
 * Threads: handlers run on the scope's worker threads, except that a
 * thread that is not a worker and calls pf_exec_wait (no deadline) on an
 * execution nobody has started runs it itself (nested at most 16 deep);
 * fn steps run on the thread that calls pf_ctx_exec_fn.  A status
 * callback runs on the thread making the transition: `pending` on the
 * thread that creates the execution (before pf_scope_exec / pf_ctx_exec
 * returns), `running` and a handler's terminal status on the thread
 * running the handler, `cancelled` of an execution
 * aborted while pending on the aborting thread (the timer thread for a
 * timeout).  Signal listeners run on the aborting thread.
 *
 * Waiting from a worker of another scope blocks that worker; its own pool
 * may start a spare worker meanwhile (PUMPED_MAX_SPARE).
 *
 * Locks and waiting: a handler that waits (pf_exec_wait, pf_ctx_run,
 * parallel) keeps its thread busy by running other queued executions.
 * If it holds a lock that another flow also takes, that other flow may run
 * on this very thread while the lock is held and deadlock.  Helping prefers
 * work from the awaited execution's subtree, but do not wait while holding
 * a lock that flows take.
 */
#ifndef PUMPED_H
#define PUMPED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* FILE, for pf_scope_dump */

#include <pumped/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PF_BUILDING_LIBRARY) && defined(__GNUC__)
#define PF_EXTERN __attribute__((visibility("default")))
#else
#define PF_EXTERN
#endif

#if defined(__GNUC__)
#define PF_PRINTF(f, a) __attribute__((format(printf, f, a)))
/* For the typed wrappers below: a file need not call all of them. */
#define PF__UNUSED __attribute__((unused))
#else
#define PF_PRINTF(f, a)
#define PF__UNUSED
#endif

/* ---------------------------------------------------------------- types */

typedef struct pf_scope pf_scope;  /* worker pool, timer, extensions, tags */
typedef struct pf_ctx pf_ctx;      /* an execution context                 */
typedef struct pf_exec pf_exec;    /* a handle on one flow execution       */
typedef struct pf_flow pf_flow;    /* a flow definition (caller-owned)     */
typedef struct pf_tag pf_tag;      /* a tag key (caller-owned)             */
typedef struct pf_extension pf_extension;
typedef struct pf_signal pf_signal; /* a context's abort signal            */

typedef enum pf_status {
	PF_PENDING,   /* created, handler not started          */
	PF_RUNNING,   /* handler running                       */
	PF_COMPLETED, /* handler returned 0                    */
	PF_FAILED,    /* handler returned an error, not aborted */
	PF_CANCELLED  /* aborted before it started, or returned an error
	                 while aborted (the error is then the abort reason) */
} pf_status;

/* "pending", "running", "completed", "failed", "cancelled"; "unknown"
 * for a value outside the enum.  The string is static. */
PF_EXTERN const char *pf_status_name(pf_status s);

/* --------------------------------------------------------------- errors */

/* Library codes are negative errno values (Linux numbering). */
#define PF_ENOENT (-2)       /* tag not found                              */
#define PF_EAGAIN (-11)      /* not finished yet; or no thread (or stack) left
                                to run the work: see pf_exec_wait         */
#define PF_ENOMEM (-12)      /* allocation failed; nothing started         */
#define PF_EINVAL (-22)      /* bad argument                               */
#define PF_ESHUTDOWN (-108)  /* the scope is disposed or disposing         */
#define PF_ETIMEDOUT (-110)  /* aborted by its timeout                     */
#define PF_ECANCELED (-125)  /* aborted                                    */
/* Flows' own failure codes are at or below PF_EUSER. */
#define PF_EUSER (-10000)

/* A static description of a library code; "user error" for codes at or
 * below PF_EUSER, "success" for 0, "unknown error" otherwise. */
PF_EXTERN const char *pf_strerror(int code);

/* ---------------------------------------------------------------- flows */

/*
 * A flow handler.  Runs on a worker thread, or on a thread waiting for it
 * in pf_exec_wait (with that thread's stack and thread-locals).  input:
 * the copy made at exec time (input_size > 0) or the caller's pointer as
 * is (input_size == 0).
 * output: a buffer of output_size bytes, private to this execution, copied
 * to the waiter only if the handler returns 0 (NULL when output_size is 0).
 * Return 0 for success, or a failure code (your own at or below PF_EUSER).
 */
typedef int (*pf_handler)(pf_ctx *ctx, const void *input, void *output);

struct pf_flow {
	const char *name;   /* NULL: "anonymous" */
	pf_handler handler;
	size_t input_size;  /* >0: input copied at exec time; 0: pointer passed */
	size_t output_size; /* bytes the handler writes to output; 0: none     */
};
/* Sizes above 2^40 bytes (inputs, outputs, tag values) are refused with
 * PF_EINVAL. */

/* ----------------------------------------------------------------- tags */

struct pf_tag {
	const char *label;         /* for humans and traces; identity is &tag */
	size_t size;               /* bytes of a value, > 0                    */
	const void *default_value; /* NULL: no default                         */
};

typedef struct pf_tag_value {
	const pf_tag *tag;
	const void *value; /* tag->size bytes, copied */
} pf_tag_value;

/*
 * Writes a copy of t->size bytes of value into c's own store (never into
 * a parent's).  Thread-safe against concurrent gets on c's descendants.
 * 0, PF_EINVAL, PF_ENOMEM.
 */
PF_EXTERN int pf_ctx_set(pf_ctx *c, const pf_tag *t, const void *value);
/*
 * Copies the value of t seen from c into out (t->size bytes): c's store,
 * then each ancestor's, then the scope tags, then t's default.
 * 0, PF_ENOENT when there is none, PF_EINVAL.
 */
PF_EXTERN int pf_ctx_get(const pf_ctx *c, const pf_tag *t, void *out);
/* As pf_ctx_get, returning false when absent (or on bad arguments).
 * out may be NULL to test presence only. */
PF_EXTERN bool pf_ctx_find(const pf_ctx *c, const pf_tag *t, void *out);

/*
 * Flow metadata tags, answered for every flow context (the C form of
 * flowMeta).  Values: pf_flow_name_tag and pf_flow_parent_name_tag hold a
 * `const char *` valid as long as the flow definition (parent name absent
 * for root flows), pf_flow_depth_tag a `uint32_t` (root 0),
 * pf_flow_is_parallel_tag a `bool` (true for calls of a parallel group).
 * Contexts that are not flow contexts (fn steps, standalone) see their
 * nearest flow ancestor's values.
 */
PF_EXTERN extern const pf_tag pf_flow_name_tag;
PF_EXTERN extern const pf_tag pf_flow_parent_name_tag;
PF_EXTERN extern const pf_tag pf_flow_depth_tag;
PF_EXTERN extern const pf_tag pf_flow_is_parallel_tag;

/* ------------------------------------------------------------ extensions */

typedef enum pf_op_kind { PF_OP_EXECUTION } pf_op_kind;
typedef enum pf_target {
	PF_TARGET_FLOW,    /* a flow execution, root or child  */
	PF_TARGET_FN,      /* a pf_ctx_exec_fn step            */
	PF_TARGET_PARALLEL /* a pf_ctx_parallel(_settled) group */
} pf_target;

typedef struct pf_operation {
	pf_op_kind kind;
	pf_target target;
	pf_ctx *context;     /* the new context (flow, fn); the caller's (parallel) */
	const pf_flow *flow; /* PF_TARGET_FLOW, else NULL                        */
	const char *name;    /* execution name, fn name, or "parallel"           */
	const void *input;
	void *output;
	const char *key;     /* journal key or NULL                              */
	size_t count;        /* PF_TARGET_PARALLEL: number of calls               */
	bool settled;        /* PF_TARGET_PARALLEL: parallel_settled              */
} pf_operation;

typedef struct pf_next pf_next;
/*
 * Runs the inner extensions and the operation; returns the operation's
 * result.  Call it at most once per wrap (PF_EINVAL after that), on the
 * thread that called wrap, before wrap returns.
 */
PF_EXTERN int pf_next_call(pf_next *next);

struct pf_extension {
	const char *name;
	/* Called once by pf_scope_create / pf_scope_use; nonzero refuses it. */
	int (*init)(pf_scope *s, void *state);
	/* Wraps one operation.  Return pf_next_call(next) to run it, or skip it
	 * and return a result of your own (0 completes, else fails). */
	int (*wrap)(pf_scope *s, pf_next *next, const pf_operation *op,
	    void *state);
	/* Called once by pf_scope_dispose after every execution ended. */
	void (*dispose)(pf_scope *s, void *state);
	void *state;
};

/* ---------------------------------------------------------------- scope */

typedef struct pf_scope_options {
	unsigned threads; /* 0: PUMPED_NUM_THREADS, else the CPUs this process
	                     may use (affinity mask, cgroup quota); at most 1024 */
	const pf_extension *const *extensions;
	size_t n_extensions;
	const pf_tag_value *tags; /* scope tags, copied */
	size_t n_tags;
} pf_scope_options;

/*
 * Creates a scope and starts its worker and timer threads.  opts may be
 * NULL for defaults.  Extensions' init run in order; if one fails, the ones
 * already initialised are disposed and its code is returned.
 * 0, PF_EINVAL, PF_ENOMEM, PF_EAGAIN (thread creation failed), or an
 * extension's init code.  Any thread.
 */
PF_EXTERN int pf_scope_create(pf_scope **out, const pf_scope_options *opts);
/*
 * Refuses new work (PF_ESHUTDOWN), cancels pending executions, aborts
 * running ones (PF_ECANCELED) and standalone contexts, waits until every
 * execution has ended, disposes the extensions, joins the threads.  Handles
 * still held stay valid (query, wait, release).  Call it once (a second
 * call may touch freed memory: not detected), from a thread that is not
 * running one of the scope's handlers or fn steps, nor a status callback or
 * signal listener (of any scope, the timer thread's included): PF_EINVAL
 * then.
 */
PF_EXTERN int pf_scope_dispose(pf_scope *s);
/*
 * The number of worker threads (not counting spare threads).  It bounds
 * parallelism: at no instant do more threads than this run the scope's
 * handlers, counting threads that run work while they wait (pf_exec_wait)
 * and not counting threads blocked in a wait that cannot help, which
 * spare threads replace (PUMPED_MAX_SPARE).
 */
PF_EXTERN unsigned pf_scope_threads(const pf_scope *s);
/*
 * The index of the worker thread calling it, in its scope's pool: 0 to
 * threads - 1 for the workers, threads and up for spares; -1 on any other
 * thread (an outside thread running work inline while it waits included).
 * Worker threads are named "pumped-w<index>" and "pumped-spare", the timer
 * thread "pumped-timer" (top -H, gdb, perf show them).
 */
PF_EXTERN int pf_worker_index(void);
/*
 * Hooks run on every worker thread (spares included) of the scopes created
 * from now on: on_start(index, data) as the thread starts, before it runs
 * any work, and on_stop(index, data) as it ends, after its last work (at
 * pf_scope_dispose).  For pinning, NUMA placement or thread-local setup,
 * as oneTBB's task_scheduler_observer or Java's ThreadFactory.  Either may
 * be NULL; NULL for both removes them.  A hook must not call the library
 * on the scope whose thread it runs on (there is no execution yet, or no
 * more), and must return: the scope's start or dispose waits for it.
 * Process-wide, not per scope, so that pf_scope_options keeps its fields;
 * any thread.
 */
PF_EXTERN void pf_set_thread_hooks(void (*on_start)(int index, void *data),
    void (*on_stop)(int index, void *data), void *data);
/*
 * Appends an extension (innermost); it applies to operations that start
 * after this returns.  0, PF_EINVAL, PF_ENOMEM, PF_ESHUTDOWN, or init's code.
 */
PF_EXTERN int pf_scope_use(pf_scope *s, const pf_extension *ext);

/* --------------------------------------------------------------- traces */

/*
 * Records a timeline of the scope's executions from now on, written to
 * path at pf_scope_dispose (and by pf_scope_trace_flush) as Chrome Trace
 * Event JSON, which Perfetto and chrome://tracing open and
 * tools/pumped-trace summarises (docs/trace.md).  Events go to per-thread
 * buffers of PUMPED_TRACE_BUFFER events (default 65536) that keep the
 * newest events (PUMPED_TRACE_KEEP=oldest: stop when full); the file says
 * how many were dropped.  The environment variable PUMPED_TRACE=FILE does
 * this at every pf_scope_create.  0, PF_EINVAL (s or path NULL, already
 * tracing, or path cannot be opened for writing), PF_ENOMEM.  Any thread,
 * before pf_scope_dispose.
 */
PF_EXTERN int pf_scope_trace_start(pf_scope *s, const char *path);
/* Writes the trace file now with the events recorded so far (events
 * recorded meanwhile may be left out).  A regular file is replaced whole
 * (written beside it, then renamed); a symbolic link's target, a device
 * or a FIFO is written in place.  0, or PF_EINVAL (s NULL, not tracing,
 * or the file could not be written: dispose reports that on stderr). */
PF_EXTERN int pf_scope_trace_flush(pf_scope *s);
/*
 * Who the trace file says wrote it, for traces of one job merged into one
 * timeline (tools/pumped-trace --merge): its events carry pid (an MPI
 * rank, say) instead of the process id, the process is named name
 * (truncated to 63 bytes), and otherData.clock_offset_ns records
 * clock_offset_ns, how far this machine's clock is ahead of the job's
 * reference clock.  Applies to the next write.  0 or PF_EINVAL.
 * libpumped-mpi calls it at attach.  (An addition beyond API.md.)
 */
PF_EXTERN int pf_scope_trace_set_process(pf_scope *s, int pid,
    const char *name, int64_t clock_offset_ns);

/* ------------------------------------------------------------ live tree */

#define PF_DUMP_JSON 1u /* one JSON object instead of indented text */

/*
 * Writes the scope's live executions and standalone contexts to out as a
 * tree: per line, id, kind, name, status, age, pending time, the worker
 * running it, its abort reason, and warnings: SLOW (running longer than
 * PUMPED_DUMP_SLOW_MS, default 1000), STARVED (pending longer than
 * PUMPED_DUMP_STARVED_MS, default 1000), IGNORES ABORT (aborted and still
 * running more than PUMPED_DUMP_GRACE_MS, default 100, after it started);
 * then a count.  Finished records that handles still hold are left out.
 * Any thread, while the scope runs (before pf_scope_dispose); it never
 * stops the workers, so each line is a snapshot of its own moment.
 * 0, PF_EINVAL (s or out NULL, unknown flags, or a write error on out),
 * PF_ENOMEM.
 */
PF_EXTERN int pf_scope_dump(pf_scope *s, FILE *out, unsigned flags);

/* ----------------------------------------------------------- statistics */

/* A distribution of durations in nanoseconds: each percentile is within
 * 2% of a recorded value, and never above the exact maximum.  All 0 with
 * no sample. */
typedef struct pf_latency {
	uint64_t count;
	uint64_t p50_ns, p90_ns, p99_ns, max_ns;
} pf_latency;

/* One flow definition's executions (by pf_flow pointer: two definitions
 * with the same name are two entries). */
typedef struct pf_flow_stats {
	const pf_flow *flow;
	const char *name;    /* flow->name, or "anonymous" */
	uint64_t created;    /* started by pf_scope_exec, pf_ctx_exec, ... */
	uint64_t started;    /* handler began */
	uint64_t completed, failed, cancelled; /* terminal statuses */
	uint64_t timed_out;  /* of the cancelled: by a timeout (PF_ETIMEDOUT) */
	pf_latency pending;  /* created -> started, per started execution */
	pf_latency run;      /* started -> finished, per started execution */
} pf_flow_stats;

typedef struct pf_stats {
	bool enabled;        /* false: statistics are off, all else is 0 */
	uint64_t created, started, completed, failed, cancelled, timed_out;
	pf_latency pending, run; /* over every flow */
	uint64_t steals;     /* tasks a worker took from another's deque */
	uint64_t parks;      /* times a worker went to sleep */
	uint64_t injector_pushes; /* submissions by threads not workers */
	unsigned workers;    /* worker threads started, spares included */
	unsigned spares;     /* of which spares */
	size_t n_flows;      /* flows counted (flows[] gets the first
	                        max_flows of them, by name) */
} pf_stats;

/*
 * Makes the scope keep statistics from now on (pf_scope_stats): the
 * executions created, started and finished after this call are counted
 * (one that started before is counted when it finishes only).  A scope
 * created while the environment variable PUMPED_STATS is 1 keeps them from
 * the start.  Idempotent.  0, PF_EINVAL (s NULL), PF_ENOMEM.  Any thread,
 * before pf_scope_dispose.
 */
PF_EXTERN int pf_scope_stats_enable(pf_scope *s);
/*
 * The scope's statistics, when it keeps them: counters and latencies per
 * flow, kept per worker thread and summed here.  Fills *out and flows[0 .. min(n_flows, max_flows)),
 * sorted by name.  Any thread, any time between pf_scope_create and
 * pf_scope_dispose, without stopping the workers: each counter is exact as
 * of a recent moment (a terminal count may run ahead of its created count
 * by the executions finishing meanwhile), and all are exact once the scope
 * is idle.  Records that could not be counted for lack of memory are left
 * out.  0, or PF_EINVAL (s or out NULL, flows NULL with max_flows > 0).
 */
PF_EXTERN int pf_scope_stats(pf_scope *s, pf_stats *out,
    pf_flow_stats *flows, size_t max_flows);

/* ----------------------------------------------------------- executions */

/*
 * A status callback: runs on the thread making the transition (a worker,
 * a waiter, the aborting thread, or the timer thread for a timeout).  It
 * may read anything and abort anything; it must not block, and waiting
 * (pf_exec_wait, pf_exec_wait_for with a timeout, the *_run calls),
 * starting work (pf_scope_exec, pf_ctx_exec, pf_ctx_exec_fn, parallel) and
 * pf_scope_dispose return PF_EINVAL there.  Polling (pf_exec_try,
 * pf_exec_wait_for with 0) is allowed.  The same holds in signal
 * listeners.
 */
typedef void (*pf_status_fn)(pf_exec *e, pf_status status, void *data);

typedef struct pf_exec_options {
	const char *name;          /* NULL: the flow's name                  */
	/* 0: none.  Counted from creation (time pending counts); at the
	 * deadline the execution is aborted with PF_ETIMEDOUT.  Cooperative:
	 * a running handler sees it through its signal and must return; one
	 * that ignores it and returns 0 ends completed.  Listeners of timeouts
	 * run on the scope's one timer thread: one that blocks delays every
	 * other timeout of the scope.  The timer thread keeps whole
	 * milliseconds of CLOCK_MONOTONIC: the abort comes at the first
	 * millisecond boundary at or after the deadline (never early; up to
	 * 1 ms late, plus the thread's wake-up: a loop that creates each
	 * execution right after the last one timed out sees it about 1 ms
	 * late every time). */
	uint64_t timeout_ms;
	pf_status_fn on_status;    /* sees every transition, pending first   */
	void *on_status_data;
	const pf_tag_value *tags;  /* seeded into the new context, copied    */
	size_t n_tags;
	void *metadata;            /* never read by the library              */
	/* Journal key (child executions only): the first call with a key runs;
	 * later calls under the same parent context with an equal key (compared
	 * by content) and the same flow create and run nothing: pf_ctx_exec
	 * hands back the first execution, pf_ctx_run waits for it and returns
	 * its result or error (a failure is recorded like a success).  The
	 * input is not compared.  A key already used by another flow under
	 * that parent: PF_EINVAL, nothing created.  An entry whose execution
	 * ended cancelled is dropped: the next call runs anew. */
	const char *key;
} pf_exec_options;

/*
 * Starts a root execution of f on s's pool.  Never blocks on running work
 * and never runs the handler before returning.  out: a new reference to
 * release with pf_exec_release; NULL for fire and forget.  opts may be
 * NULL.  0, PF_EINVAL (NULL s or f, NULL handler, NULL input with
 * input_size > 0, opts->key set on a root), PF_ENOMEM, PF_ESHUTDOWN.
 */
PF_EXTERN int pf_scope_exec(pf_scope *s, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out);
/* pf_scope_exec + pf_exec_wait + pf_exec_release: the execution's code. */
PF_EXTERN int pf_scope_run(pf_scope *s, const pf_flow *f, const void *input,
    void *output, const pf_exec_options *opts);

/* RFC 9562 UUIDv7 text (36 chars), equal to its context's id; valid while
 * the handle is held.  NULL for NULL. */
PF_EXTERN const char *pf_exec_id(const pf_exec *e);
/* The flow's name ("anonymous" when it has none). */
PF_EXTERN const char *pf_exec_flow_name(const pf_exec *e);
/* The current status (PF_PENDING for NULL). */
PF_EXTERN pf_status pf_exec_status(const pf_exec *e);
/* The execution's context, valid while the handle is held; NULL for NULL. */
PF_EXTERN pf_ctx *pf_exec_ctx(pf_exec *e);
/* Aborts with PF_ECANCELED; nothing changes if it already finished.
 * Signal listeners of the contexts it aborts have run when it returns. */
PF_EXTERN int pf_exec_abort(pf_exec *e);
/* 0, or the abort reason (PF_ECANCELED, PF_ETIMEDOUT); PF_EINVAL for NULL. */
PF_EXTERN int pf_exec_throw_if_aborted(const pf_exec *e);
/*
 * Waits until the execution finished and its terminal status callbacks
 * returned; copies the output (when output is not NULL and it completed).
 * Returns 0 or the execution's error.  Any thread, including handlers.
 *
 * On a worker it runs other work meanwhile (the awaited execution first).
 * Elsewhere it runs the execution itself if nobody has started it and one
 * of the scope's thread slots is free (pf_scope_threads), else sleeps: the
 * handler then runs on the waiting thread, with its stack and
 * thread-locals.  A handler that waits while holding a lock that other
 * flows take can deadlock through this helping.
 *
 * PF_EINVAL: waiting on an execution whose handler runs on this thread's
 * stack (its own, or one it is nested in), or from a status callback or
 * signal listener.  PF_EAGAIN: the wait can neither help (its stack budget
 * is spent) nor get a spare thread, and nothing else could run the awaited
 * execution for a second: the wait fails instead of blocking forever, so
 * the chain unwinds (the awaited execution itself goes on when a thread
 * frees up; the *_run calls and parallel groups abort it instead).
 */
PF_EXTERN int pf_exec_wait(pf_exec *e, void *output);
/* As pf_exec_wait, giving up with PF_EAGAIN after timeout_ms (0: poll).
 * May return late by the length of a task the waiter was helping with.
 * A thread that is not a worker only sleeps here: it never runs the
 * execution itself. */
PF_EXTERN int pf_exec_wait_for(pf_exec *e, void *output, uint64_t timeout_ms);
/* The result if finished, else PF_EAGAIN; never blocks. */
PF_EXTERN int pf_exec_try(pf_exec *e, void *output);
/* A timeout_ms of pf_exec_wait_all / pf_exec_wait_any: no deadline. */
#define PF_FOREVER UINT64_MAX
/*
 * Waits until every one of handles[0 .. n) has finished, or timeout_ms
 * passed (0: poll; PF_FOREVER: no deadline).  0 when all completed; else
 * the code of the lowest-index one that did not (as pf_exec_wait would
 * return it, without its output); PF_EAGAIN when the time ran out first
 * (some are still unfinished).  Waits as pf_exec_wait does on each in
 * turn (a worker helps, an outside thread may run them).  PF_EINVAL:
 * handles NULL, n 0, a NULL handle, a handler waiting on itself, or a
 * timeout other than 0 inside a status callback or signal listener.
 */
PF_EXTERN int pf_exec_wait_all(pf_exec *const *handles, size_t n,
    uint64_t timeout_ms);
/*
 * Waits until at least one of handles[0 .. n) has finished, or timeout_ms
 * passed (0: poll; PF_FOREVER: no deadline), and sets *index to the lowest
 * index of a finished one: 0, or PF_EAGAIN when the time ran out first.
 * It claims none of them to run itself (the thread would be committed to
 * that one while another finished first): a worker of their scope runs
 * other queued work meanwhile, as pf_exec_wait does, and sleeps on all of
 * them at once when there is none; any other thread only sleeps.  With no
 * deadline, when none of the unfinished ones can run any more (every
 * thread of their scope blocked, no spare left) it gives up with
 * PF_EAGAIN after about a second, as pf_exec_wait does.  Read the result
 * with pf_exec_try.  PF_EINVAL: handles or index NULL, n 0, a NULL handle,
 * a handler waiting on itself or on an ancestor running below it, or a
 * timeout other than 0 inside a status callback or signal listener;
 * PF_ENOMEM (more than 8 handles need an allocation).
 */
PF_EXTERN int pf_exec_wait_any(pf_exec *const *handles, size_t n,
    uint64_t timeout_ms, size_t *index);
/*
 * Subscribes fn(e, status, data) to e's later transitions; on a finished
 * execution calls it once at once with the terminal status.
 * 0, PF_EINVAL, PF_ENOMEM.
 */
PF_EXTERN int pf_exec_on_status(pf_exec *e, pf_status_fn fn, void *data);
/* Removes the first subscription equal to (fn, data); PF_ENOENT if none.
 * Once it returns 0, that callback is not running and will not run (called
 * from inside that very callback, or one nested in it, it returns at
 * once).  Any thread, status callbacks included; but from inside a status
 * callback or listener it does not wait for that callback's call in
 * progress on another thread (the two could wait for each other): it
 * returns PF_EAGAIN, the callback removed but possibly still running. */
PF_EXTERN int pf_exec_off_status(pf_exec *e, pf_status_fn fn, void *data);
/* A new reference to e (returns e). */
PF_EXTERN pf_exec *pf_exec_retain(pf_exec *e);
/* Drops a reference; the execution goes on.  NULL is ignored.  Releasing
 * a handle twice is undetectable misuse; debug builds (--enable-debug)
 * abort when they see a record with no reference left. */
PF_EXTERN void pf_exec_release(pf_exec *e);

/* -------------------------------------------------------------- contexts */

typedef struct pf_ctx_options {
	const char *name;
	void *metadata;
	uint64_t timeout_ms; /* 0: none */
	const pf_tag_value *tags;
	size_t n_tags;
} pf_ctx_options;

/*
 * A standalone context under the scope: started at creation; abort,
 * timeout, tags, fn steps and child flows work as in flow contexts.
 * *out is a reference for pf_ctx_release.  opts may be NULL.
 * 0, PF_EINVAL, PF_ENOMEM, PF_ESHUTDOWN.
 */
PF_EXTERN int pf_scope_create_execution(pf_scope *s, const pf_ctx_options *opts,
    pf_ctx **out);
/* A new reference (returns c). */
PF_EXTERN pf_ctx *pf_ctx_retain(pf_ctx *c);
/* Drops a reference from create_execution or retain; ends the context if
 * it has not ended.  NULL is ignored. */
PF_EXTERN void pf_ctx_release(pf_ctx *c);

/* Id text (36 chars), valid while c is referenced.  Formatted on the first
 * call, into memory made then: NULL only if that allocation fails (a later
 * call may succeed). */
PF_EXTERN const char *pf_ctx_id(const pf_ctx *c);
PF_EXTERN const char *pf_ctx_name(const pf_ctx *c);
/* The parent context; NULL for roots and standalone contexts. */
PF_EXTERN pf_ctx *pf_ctx_parent(const pf_ctx *c);
PF_EXTERN pf_scope *pf_ctx_scope(const pf_ctx *c);
PF_EXTERN int64_t pf_ctx_created_at(const pf_ctx *c);   /* ns since epoch */
PF_EXTERN int64_t pf_ctx_started_at(const pf_ctx *c);   /* 0 while pending */
PF_EXTERN int64_t pf_ctx_completed_at(const pf_ctx *c); /* 0 until ended   */
/* 0, or the error code with its message in *message (when not NULL; the
 * text lives as long as the context). */
PF_EXTERN int pf_ctx_error(const pf_ctx *c, const char **message);
PF_EXTERN void *pf_ctx_metadata(const pf_ctx *c);

/* Records completed_at once; aborts nothing.  Idempotent. */
PF_EXTERN int pf_ctx_end(pf_ctx *c);
/* Aborts c and all its descendants with PF_ECANCELED (first abort wins). */
PF_EXTERN int pf_ctx_abort(pf_ctx *c);
/* pf_ctx_abort with the reason given: PF_ECANCELED or PF_ETIMEDOUT (else
 * PF_EINVAL), for a context that stands for an execution elsewhere whose
 * abort there was a timeout.  (An addition beyond API.md.) */
PF_EXTERN int pf_ctx_abort_as(pf_ctx *c, int reason);
PF_EXTERN bool pf_ctx_aborted(const pf_ctx *c);
/* 0, PF_ECANCELED or PF_ETIMEDOUT. */
PF_EXTERN int pf_ctx_throw_if_aborted(const pf_ctx *c);
/*
 * Records code and a printf-style message as c's error; returns code.
 * Return it from the handler: `return pf_ctx_fail(c, MY_ERR, "x=%d", x);`
 * A handler that returns a child's, step's or parallel group's failure
 * code without calling it takes the message of the last one that failed
 * with that code under it, so a message reaches whoever handles it.
 */
PF_EXTERN int pf_ctx_fail(pf_ctx *c, int code, const char *fmt, ...)
    PF_PRINTF(3, 4);

/* A child step run inline on the calling thread in a new child context. */
typedef int (*pf_fn)(pf_ctx *child, void *arg);
/* Returns exactly what fn returned, or the abort reason / PF_EINVAL /
 * PF_ENOMEM / PF_ESHUTDOWN when it could not run it, or PF_EAGAIN when
 * steps nest too deep for the calling thread's stack. */
PF_EXTERN int pf_ctx_exec_fn(pf_ctx *parent, const char *name, pf_fn fn,
    void *arg);

/* A child flow on the pool; as pf_scope_exec, plus opts->key (journal).
 * On an aborted parent: runs nothing, returns the abort reason. */
PF_EXTERN int pf_ctx_exec(pf_ctx *parent, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out);
PF_EXTERN int pf_ctx_run(pf_ctx *parent, const pf_flow *f, const void *input,
    void *output, const pf_exec_options *opts);

/*
 * Deferred executions: an execution whose work happens elsewhere (another
 * process, an I/O completion), created running with no handler run and
 * no task queued; pf_exec_settle ends it.  Everything else is as for any
 * execution: id, name (opts->name or f->name), status callbacks (pending,
 * then running, before the call returns), waiting from any thread (a
 * worker helps meanwhile), abort and timeout (they abort its context and
 * fire its signal, where whoever does the work listens: it ends when it
 * is settled, like a running handler ends when it returns), children (a
 * deferred execution is a context like any other) and the trace.  f gives
 * the name and output_size; its handler is never called and may be NULL.
 * *out is required (a reference: settle, then release).  opts->key:
 * PF_EINVAL.  0, PF_EINVAL, PF_ENOMEM, PF_ESHUTDOWN, or the parent's
 * abort reason.  Never settled, it keeps pf_scope_dispose waiting.
 * (Additions beyond API.md, for companion libraries such as libpumped-mpi.)
 */
PF_EXTERN int pf_ctx_exec_deferred(pf_ctx *parent, const pf_flow *f,
    const pf_exec_options *opts, pf_exec **out);
PF_EXTERN int pf_scope_exec_deferred(pf_scope *s, const pf_flow *f,
    const pf_exec_options *opts, pf_exec **out);
/*
 * Ends a deferred execution: status PF_COMPLETED (code 0; output, when
 * not NULL, gives f->output_size bytes), PF_FAILED (code != 0; once it
 * was aborted this ends it cancelled with the abort reason, as a handler
 * that fails after its abort) or PF_CANCELLED (the code given; with 0,
 * its abort reason, or PF_ECANCELED when it was not aborted).
 * message (copied; NULL: pf_strerror's text) is what pf_ctx_error
 * returns.  0; PF_EINVAL for a bad argument, an execution that is not
 * deferred, one settled before, one cancelled at creation, or one not
 * running yet (from its pending status callback, which runs before the
 * creating call sets it running: that settle is refused and a later one
 * ends it; settle from the running callback or after the call returns).
 * Any thread may settle, a status callback or signal listener too.
 */
PF_EXTERN int pf_exec_settle(pf_exec *e, pf_status status, int code,
    const void *output, const char *message);
/*
 * Cancels e (status cancelled, PF_ECANCELED, its signal fired) only if it
 * is still pending, so that its handler never runs: true; false, doing
 * nothing, once it started or ended (or e is NULL).  A scheduler that
 * moves work elsewhere takes it back this way.
 */
PF_EXTERN bool pf_exec_withdraw(pf_exec *e);
/*
 * pf_scope_create_execution, with the given id (36-character UUID text)
 * instead of a new one: a context that stands for an execution in another
 * process, so that the flows started under it name that execution as
 * their parent.  0, PF_EINVAL (bad id text), PF_ENOMEM, PF_ESHUTDOWN.
 */
PF_EXTERN int pf_scope_create_execution_with_id(pf_scope *s,
    const pf_ctx_options *opts, const char *id, pf_ctx **out);

typedef struct pf_call {
	const pf_flow *flow;
	const void *input;
	void *output;
	const pf_exec_options *opts; /* may be NULL */
	int result;                  /* filled in */
	pf_status status;            /* filled in */
	/* Filled in: NULL when the call completed, else its error message
	 * (its pf_ctx_fail text, one it inherited from its own failed
	 * children, or the code's pf_strerror text); valid while the calling
	 * context lives. */
	const char *message;
} pf_call;

typedef struct pf_parallel_stats {
	size_t total, succeeded, failed;
	size_t cancelled; /* of `failed`, those that ended cancelled */
} pf_parallel_stats;

/* Defined since pf_call.message and pf_parallel_stats.cancelled exist. */
#define PF_HAVE_CALL_MESSAGE 1

/* Runs all calls as children of c; 0 when all succeed, else the first
 * failure's code after aborting the others and waiting for them. */
PF_EXTERN int pf_ctx_parallel(pf_ctx *c, pf_call *calls, size_t n,
    pf_parallel_stats *stats);
/* Runs all calls and waits for all; fails only if it could not run them. */
PF_EXTERN int pf_ctx_parallel_settled(pf_ctx *c, pf_call *calls, size_t n,
    pf_parallel_stats *stats);

/*
 * A parallel loop over [begin, end): the range is split in halves,
 * recursively, into tracked child executions of the flow "parallel_for"
 * down to pieces of at most grain elements (0: eight to sixteen pieces per
 * worker thread), and body(piece_ctx, piece_begin, piece_end, arg) runs
 * once per piece, in its own context, named "for[b,e)".  As
 * pf_ctx_parallel: the first piece that fails (returns non-zero, or the
 * call could not start one) aborts the others, and its code is returned
 * once every piece has ended; 0 when all completed.  Pieces check their
 * abort before calling body; a long body should check pf_ctx_aborted
 * itself.  begin >= end runs nothing (0, or c's abort reason).  PF_EINVAL:
 * c or body NULL, grain < 0, or end - begin overflows.  The scope form
 * runs the loop as a root execution and waits for it.
 */
typedef int (*pf_range_fn)(pf_ctx *c, int64_t begin, int64_t end, void *arg);
PF_EXTERN int pf_ctx_parallel_for(pf_ctx *c, int64_t begin, int64_t end,
    int64_t grain, pf_range_fn body, void *arg);
PF_EXTERN int pf_scope_parallel_for(pf_scope *s, int64_t begin, int64_t end,
    int64_t grain, pf_range_fn body, void *arg);

/* --------------------------------------------------------------- signal */

/* The context's abort signal, valid while the context is referenced. */
PF_EXTERN pf_signal *pf_ctx_signal(pf_ctx *c);
PF_EXTERN bool pf_signal_aborted(const pf_signal *s);
/* 0, PF_ECANCELED or PF_ETIMEDOUT. */
PF_EXTERN int pf_signal_reason(const pf_signal *s);
/*
 * A file descriptor that turns readable when the context is aborted:
 * poll() it with your own I/O.  Created on first call (an eventfd); owned
 * by the context and closed with it.  Returns the fd, PF_EINVAL, PF_ENOMEM,
 * or PF_EAGAIN when the process or system is out of file descriptors.
 */
PF_EXTERN int pf_signal_fd(pf_signal *s);

/* Storage for one listener; the caller allocates it (no malloc). */
typedef struct pf_signal_listener {
	struct pf_signal_listener *_next, *_prev; /* private */
	void (*_fn)(pf_signal *s, void *data);    /* private */
	void *_data;                              /* private */
	int _state;                               /* private */
} pf_signal_listener;

/*
 * Calls fn(s, data) once when s is aborted (at once, on this thread, if it
 * already is).  l must stay valid until removed or until the context is
 * released.  0, PF_EINVAL (NULL, or l already added).
 * fn runs on the aborting thread: the caller of pf_ctx_abort or
 * pf_exec_abort, a worker (a failing parallel call aborts its siblings),
 * dispose's caller, or for a timeout the scope's timer thread, where a
 * listener that blocks delays every other timeout of the scope.  It has
 * the limits of a status callback (pf_status_fn).  A pending execution
 * that is aborted is cancelled before its listeners run: its handler
 * never starts.
 */
PF_EXTERN int pf_signal_add_listener(pf_signal *s, pf_signal_listener *l,
    void (*fn)(pf_signal *s, void *data), void *data);
/* After it returns, fn is not running and will not run.  0 or PF_EINVAL.
 * Must not be called from fn itself for another listener of the same
 * signal while that signal fires, except for l itself (which returns 0). */
PF_EXTERN int pf_signal_remove_listener(pf_signal *s, pf_signal_listener *l);

/* ------------------------------------------------------- typed helpers */

/*
 * PF_FLOW(ident, in_type, out_type, handler) defines `const pf_flow ident`
 * for `int handler(pf_ctx *, const in_type *, out_type *)` (checked at
 * compile time; in_type or out_type may be void: no input / no output)
 * and typed wrappers:
 *   int ident_run(pf_ctx *parent, const in_type *in, out_type *out,
 *                 const pf_exec_options *opts);
 *   int ident_exec(pf_ctx *parent, const in_type *in,
 *                  const pf_exec_options *opts, pf_exec **out);
 *   int ident_scope_run(pf_scope *s, const in_type *in, out_type *out,
 *                       const pf_exec_options *opts);
 * PF_FLOW, PF_FLOW_DECLARE, PF_TAG and PF_TAG_DECLARE end with function
 * definitions, so they need no semicolon (a stray one only draws a
 * -Wpedantic warning); PF_FLOW_DEFINE, PF_TAG_DEFINE and
 * PF_TAG_DEFINE_DEFAULT are declarations and take one.
 * PF_FLOW_DECLARE(ident, in_type, out_type) declares them (in a header, or
 * before a recursive handler); then PF_FLOW_DEFINE(ident, in_type,
 * out_type, handler) defines the flow without defining the wrappers again.
 */
#define PF__FLOW_WRAPPERS(ident, in_type, out_type)                            \
	PF__UNUSED static inline int ident##_run(pf_ctx *parent_, PF__CPTR(in_type) in_,  \
	    out_type *out_, const pf_exec_options *opts_)                      \
	{                                                                      \
		return pf_ctx_run(parent_, &ident, in_, out_, opts_);          \
	}                                                                      \
	PF__UNUSED static inline int ident##_exec(pf_ctx *parent_, PF__CPTR(in_type) in_, \
	    const pf_exec_options *opts_, pf_exec **exec_)                     \
	{                                                                      \
		return pf_ctx_exec(parent_, &ident, in_, opts_, exec_);        \
	}                                                                      \
	PF__UNUSED static inline int ident##_scope_run(pf_scope *s_, PF__CPTR(in_type) in_, \
	    out_type *out_, const pf_exec_options *opts_)                      \
	{                                                                      \
		return pf_scope_run(s_, &ident, in_, out_, opts_);             \
	}

#define PF_FLOW_DECLARE(ident, in_type, out_type)                              \
	extern const pf_flow ident;                                            \
	PF__FLOW_WRAPPERS(ident, in_type, out_type)

#ifndef __cplusplus
/* sizeof, with 0 for void (a flow without input or output). */
#define PF__SIZEOF(type)                                                       \
	_Generic((type *)0, void *: (size_t)0, const void *: (size_t)0,        \
	    default: sizeof(type))
/* handler itself, if its type is exactly the flow's handler type: a
 * handler of another type has no _Generic association (a compile error). */
#define PF__CHECKED(handler, in_type, out_type)                                \
	_Generic(&(handler),                                                   \
	    int (*)(pf_ctx *, in_type const *, out_type *): handler)
/* A definition with external linkage (C++ const objects default to
 * internal linkage). */
#define PF__EXTERN_CONST const
#define PF__CPTR(type) type const *
#else
/* C++: templates give what _Generic gives C.  extern "C++", as a program
 * may include this header inside its own extern "C" block. */
extern "C++" {
template <typename T> struct pf__size_of {
	static constexpr size_t value = sizeof(T);
};
template <> struct pf__size_of<void> {
	static constexpr size_t value = 0;
};
template <> struct pf__size_of<const void> {
	static constexpr size_t value = 0;
};
/* A pointer to const T, also for a T that is const already ("const int
 * const *" is an error in C++, not in C). */
template <typename T> using pf__cptr = const T *;
}
#define PF__SIZEOF(type) (pf__size_of<type>::value)
#define PF__CPTR(type) pf__cptr<type>
/* A static_cast between function pointer types compiles only when they are
 * the same type. */
#define PF__CHECKED(handler, in_type, out_type)                                \
	static_cast<int (*)(pf_ctx *, PF__CPTR(in_type), out_type *)>(&(handler))
#define PF__EXTERN_CONST extern const
#endif

#define PF_FLOW_DEFINE(ident, in_type, out_type, handler)                      \
	static int ident##__thunk(pf_ctx *c_, const void *in_, void *out_)     \
	{                                                                      \
		return PF__CHECKED(handler, in_type, out_type)(                \
		    c_, (PF__CPTR(in_type))in_, (out_type *)out_);             \
	}                                                                      \
	PF__EXTERN_CONST pf_flow ident = { #ident, ident##__thunk,             \
		PF__SIZEOF(in_type), PF__SIZEOF(out_type) }

#define PF_FLOW(ident, in_type, out_type, handler)                             \
	PF_FLOW_DEFINE(ident, in_type, out_type, handler);                     \
	PF__FLOW_WRAPPERS(ident, in_type, out_type)

/*
 * PF_TAG_DECLARE(ident, type) in a header, PF_TAG_DEFINE(ident, type, label)
 * (or PF_TAG_DEFINE_DEFAULT(ident, type, label, default_value)) in one .c
 * file.  They give `ident` and
 *   int  ident_set(pf_ctx *c, type v);
 *   int  ident_get(const pf_ctx *c, type *out);
 *   bool ident_find(const pf_ctx *c, type *out);
 *   pf_tag_value ident_value(type const *v);   (for option arrays)
 * Pointer types work as they are: PF_TAG(user, struct user *, "user")
 * gives user_value(struct user *const *).
 * PF_TAG(ident, type, label) declares and defines a file-local tag.
 */
#define PF__TAG_WRAPPERS(ident, type)                                          \
	PF__UNUSED static inline int ident##_set(pf_ctx *c_, type v_)                     \
	{                                                                      \
		return pf_ctx_set(c_, &ident, &v_);                            \
	}                                                                      \
	PF__UNUSED static inline int ident##_get(const pf_ctx *c_, type *out_)            \
	{                                                                      \
		return pf_ctx_get(c_, &ident, out_);                           \
	}                                                                      \
	PF__UNUSED static inline bool ident##_find(const pf_ctx *c_, type *out_)          \
	{                                                                      \
		return pf_ctx_find(c_, &ident, out_);                          \
	}                                                                      \
	PF__UNUSED static inline pf_tag_value ident##_value(PF__CPTR(type) v_)            \
	{                                                                      \
		pf_tag_value tv_ = { &ident, v_ };                             \
		return tv_;                                                    \
	}

#define PF_TAG_DECLARE(ident, type)                                            \
	extern const pf_tag ident;                                             \
	PF__TAG_WRAPPERS(ident, type)

#define PF_TAG_DEFINE(ident, type, label)                                      \
	PF__EXTERN_CONST pf_tag ident = { label, sizeof(type), NULL }

#define PF_TAG_DEFINE_DEFAULT(ident, type, label, default_value)               \
	static const type ident##__default = default_value;                    \
	PF__EXTERN_CONST pf_tag ident = { label, sizeof(type),                 \
		&ident##__default }

#define PF_TAG(ident, type, label)                                             \
	static const pf_tag ident = { label, sizeof(type), NULL };             \
	PF__TAG_WRAPPERS(ident, type)

#ifdef __cplusplus
}
#endif

#endif /* PUMPED_H */
