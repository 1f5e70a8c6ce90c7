/*
 * <pumped/mpi.h>: tracked flow executions across the ranks of an MPI job
 * (libpumped-mpi; pkg-config pumped-mpi; built by ./configure --with-mpi).
 *
 * Every rank attaches a scope to a communicator (pf_mpi_attach, collective)
 * and registers the same flows by name (pf_mpi_register).  pf_mpi_exec then
 * starts a flow on another rank and returns a local proxy: a pf_exec like
 * any other (id, status, callbacks, wait / wait_for / try from any thread,
 * abort, timeout, error code and message).  The remote execution is a
 * child of the proxy in the tracking sense: it runs under a context that
 * carries the proxy's id (pf_ctx_id(pf_ctx_parent(c)) in its handler).
 * Aborting the proxy, an ancestor of it, or its timeout aborts the remote
 * execution and everything it started; the remaining timeout travels as a
 * duration.  With PF_MPI_ANY_RANK the execution runs here unless an idle
 * rank takes it first (work stealing between ranks).
 *
 * One communication thread per attachment makes every MPI call of the
 * library.  MPI must provide at least MPI_THREAD_SERIALIZED (the library
 * initialises MPI itself, at that level, when the program has not); with
 * SERIALIZED the program itself must make no MPI call while attached, with
 * MPI_THREAD_MULTIPLE it may.  What happens when a rank dies is MPI's: by
 * default the whole job is aborted (docs/mpi.md).
 */
#ifndef PUMPED_MPI_H
#define PUMPED_MPI_H

#include <stddef.h>

#include <mpi.h>

#include <pumped.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pf_mpi pf_mpi;

/* pf_mpi_exec's rank: here, unless an idle rank takes it while pending. */
#define PF_MPI_ANY_RANK (-1)

/* Codes of libpumped-mpi (pf_mpi_strerror); the library's own codes, as
 * PF_EINVAL or PF_ESHUTDOWN, keep their meaning. */
#define PF_MPI_ENOFLOW (-5001) /* the flow is not registered on that rank */
#define PF_MPI_ECODEC (-5002)  /* a codec failed or the bytes are malformed */
#define PF_MPI_ETHREAD (-5003) /* MPI's thread level is below SERIALIZED  */
#define PF_MPI_EMPI (-5004)    /* an MPI call failed                      */

/* Text of any code: pf_strerror's for the others. */
PF_EXTERN const char *pf_mpi_strerror(int code);

typedef struct pf_mpi_options {
	/* Longest sleep of the idle communication thread, in microseconds:
	 * after 200 us without activity it polls for other ranks' messages
	 * ever less often, up to this (0: 1000), or 100 while answers to
	 * its own requests are due.  So the first request after a quiet
	 * spell waits up to about this long for the other rank to look,
	 * half of it on average, plus the wake-ups of the threads that
	 * answer (with the default: medians 0.2-0.8 ms, at most 1.9 ms on
	 * a 2-vCPU VM).  Local sends wake it at once. */
	unsigned idle_sleep_max_us;
	/* Nonzero: this rank never takes work from others (it still gives). */
	int no_steal;
} pf_mpi_options;

/*
 * Attaches scope s to comm (collective over comm: every rank calls it).
 * The library duplicates comm, so its messages never match the program's.
 * opts may be NULL.  0, PF_EINVAL, PF_ENOMEM, PF_MPI_ETHREAD (MPI was
 * initialised below MPI_THREAD_SERIALIZED), PF_MPI_EMPI.
 */
PF_EXTERN int pf_mpi_attach(pf_scope *s, MPI_Comm comm,
    const pf_mpi_options *opts, pf_mpi **out);
/*
 * Detaches: a collective quiescence point.  It returns once every rank
 * called it and no work of the attachment is left anywhere (no proxy
 * unsettled, nothing running for another rank, no message in transit).
 * Until then this rank goes on as before: it runs what other ranks send
 * it, steals and gives PF_MPI_ANY_RANK work, and its handlers may start
 * more; so ranks with nothing to drive may call it at once and serve
 * until the last one is done.  Work in flight finishes (abort what you do
 * not want to wait for); a remote handler that never returns keeps every
 * rank waiting, as it would keep pf_scope_dispose.  A pf_mpi_exec made
 * while detach runs is served until every rank finished detaching, then
 * refused (PF_ESHUTDOWN); one that was already under way when they
 * finished ends cancelled with PF_ESHUTDOWN (or, for ANY_RANK work, runs
 * here), and detach waits for it.  Once detach returned, m is gone: stop
 * every thread and handler that uses m before that can happen.
 * Finalises MPI when pf_mpi_attach initialised it.  0 or PF_EINVAL (NULL,
 * a detach already in progress, called on a worker thread of any scope,
 * which would wait for its own handler, from a status callback that a
 * pf_mpi_exec / pf_mpi_run under way on this thread delivers, which would
 * wait for that call, or on the communication thread, where a proxy's
 * callbacks run when its answer settles it).  Other status callbacks and
 * signal listeners must not call it either: it blocks.  Call it before
 * pf_scope_dispose; a scope disposed first only makes this rank refuse
 * the requests that still come (they end with PF_ESHUTDOWN).
 */
PF_EXTERN int pf_mpi_detach(pf_mpi *m);

/*
 * A barrier over the attachment's ranks, made by the communication thread
 * (so it is allowed under MPI_THREAD_SERIALIZED): register the flows on
 * every rank, then pf_mpi_barrier, then send work, and no rank can see a
 * request for a flow it has yet to register.  Blocks the caller.  0 or
 * PF_EINVAL (NULL, detaching, called on a worker thread or the
 * communication thread, or from a status callback of a pf_mpi_exec /
 * pf_mpi_run under way on this thread).
 * Collective: every rank calls it as often, before its pf_mpi_detach; a
 * barrier that a rank already detaching never joins waits forever, as
 * MPI_Barrier would.
 */
PF_EXTERN int pf_mpi_barrier(pf_mpi *m);

PF_EXTERN int pf_mpi_rank(const pf_mpi *m);
PF_EXTERN int pf_mpi_size(const pf_mpi *m);
PF_EXTERN pf_scope *pf_mpi_scope(const pf_mpi *m);
/* How far this rank's clock (CLOCK_REALTIME) was ahead of rank 0's at
 * attach, in ns (0 on rank 0), measured by ping-pong.  pf_mpi_attach gives
 * it to the scope's trace with the rank as its pid
 * (pf_scope_trace_set_process), so that tools/pumped-trace --merge puts
 * the ranks' traces on one timeline. */
PF_EXTERN int64_t pf_mpi_clock_offset_ns(const pf_mpi *m);

/*
 * How a flow's input and output cross the wire.  encode_* return 0 with a
 * buffer from malloc in *bytes (the library frees it) and its length, or
 * a nonzero code; decode_* fill the value (input_size / output_size bytes,
 * zeroed first) from len bytes and return 0 or a nonzero code.  free_input
 * (may be NULL) releases what decode_input allocated, once the execution
 * that used it ended.  Any failure ends the proxy failed with
 * PF_MPI_ECODEC and a message naming the step and the rank; nothing
 * crashes on either side.  Every callback may run on any thread.
 */
typedef struct pf_mpi_codec {
	int (*encode_input)(const void *input, void **bytes, size_t *len,
	    void *data);
	int (*decode_input)(const void *bytes, size_t len, void *input,
	    void *data);
	void (*free_input)(void *input, void *data);
	int (*encode_output)(const void *output, void **bytes, size_t *len,
	    void *data);
	int (*decode_output)(const void *bytes, size_t len, void *output,
	    void *data);
	void *data;
} pf_mpi_codec;

/*
 * Registers f under its name (the same flows on every rank, before any
 * rank sends them work: pf_mpi_barrier).  codec NULL: the input_size and output_size
 * bytes are copied as they are (plain data, no pointers); a codec with a
 * NULL member copies that way too.  The codec is copied; f must outlive
 * m.  0, PF_EINVAL (NULL, no name or handler, a name already registered),
 * PF_ENOMEM.
 */
PF_EXTERN int pf_mpi_register(pf_mpi *m, const pf_flow *f,
    const pf_mpi_codec *codec);

/*
 * Registers a tag that travels (on every rank, by its label): a request
 * carries the values of the registered tags that the proxy sees (its own,
 * its ancestors', the scope's; not a default, which the other side has
 * too), and the remote execution inherits them.  Values are copied as
 * bytes: plain data only.  On the receiving side a tag it has not
 * registered with the same label and size is skipped.  0, PF_EINVAL (NULL,
 * no label, a size over 1 MiB, a label or tag already registered),
 * PF_ENOMEM.
 */
PF_EXTERN int pf_mpi_register_tag(pf_mpi *m, const pf_tag *t);

/*
 * Starts f on rank (or PF_MPI_ANY_RANK) as a child of parent (NULL: a
 * root of m's scope) and returns its proxy in *out (NULL: fire and
 * forget).  The input is encoded before it returns.  opts as for
 * pf_ctx_exec, without key.  0, PF_EINVAL (bad rank, NULL f, a key),
 * PF_MPI_ENOFLOW (f not registered here), PF_MPI_ECODEC (the input did
 * not encode, or its bytes are over 2 GiB less 64 KiB; outputs have the
 * same limit), PF_ENOMEM, PF_ESHUTDOWN (the scope is disposing, or every
 * rank finished detaching: a call racing the end of detach is refused,
 * or its proxy ends cancelled with PF_ESHUTDOWN), or the parent's abort
 * reason.  An unregistered flow or a failed codec on the other rank, or
 * its handler's failure, is the proxy's status: failed, with the code and
 * the message.
 */
PF_EXTERN int pf_mpi_exec(pf_mpi *m, pf_ctx *parent, int rank,
    const pf_flow *f, const void *input, const pf_exec_options *opts,
    pf_exec **out);
/* pf_mpi_exec + pf_exec_wait + pf_exec_release. */
PF_EXTERN int pf_mpi_run(pf_mpi *m, pf_ctx *parent, int rank,
    const pf_flow *f, const void *input, void *output,
    const pf_exec_options *opts);

/* What this rank did since attach (pf_mpi_stats). */
typedef struct pf_mpi_stats {
	unsigned long long sent;       /* requests sent to other ranks        */
	unsigned long long hosted;     /* requests run here for other ranks   */
	unsigned long long local_any;  /* PF_MPI_ANY_RANK ones run here        */
	unsigned long long given;      /* ANY_RANK ones taken by other ranks  */
	unsigned long long taken;      /* ANY_RANK ones taken from others     */
	unsigned long long steal_asks; /* steal requests sent                 */
	unsigned long long aborts;     /* aborts sent to other ranks          */
	unsigned long long messages;   /* messages received                   */
} pf_mpi_stats;

PF_EXTERN int pf_mpi_stats_get(pf_mpi *m, pf_mpi_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* PUMPED_MPI_H */
