/*
 * track.h: the tracking layer's records (contexts, executions, scope).
 *
 * One record per context.  A flow execution's record is a pf_exec whose
 * first member is its pf_ctx, so the execution and its context share one
 * id, one reference count and one allocation.  Standalone contexts and fn
 * step contexts are bare pf_ctx records.  The scope embeds an internal
 * root context: root executions and standalone contexts are its children,
 * its tag store holds the scope tags, and since every record holds a
 * reference on its parent, the scope's memory lives exactly as long as
 * some record does (pf_scope_dispose drops the scope's own reference).
 *
 * Reference counts (pf_ctx.refs) are held by: each user handle (exec out,
 * create_execution, retain), a queued task (dropped when the task runs or
 * is found stale), an armed timer, a journal entry, and each child record
 * (on its parent).  Links from a parent to its children are weak: a child
 * unlinks itself when freed.
 */
#ifndef PF_TRACK_H
#define PF_TRACK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "annotate.h"
#include "common.h"
#include "pool.h"
#include "pumped.h"
#include "task.h"
#include "timer.h"
#include "uuid.h"

/* ------------------------------------------------------------ spinlock */

/*
 * A byte-sized test-and-test-and-set lock for the short critical sections
 * of a record (list links, a tag copy).  Nothing that can block or call
 * user code runs under it.
 */
typedef struct pf__spin {
	atomic_bool held;
} pf__spin;

void pf__spin_lock_slow(pf__spin *l);

static inline void
pf__spin_lock(pf__spin *l)
{
	/* Acquire: pairs with the release in pf__spin_unlock(). */
	if (PF_LIKELY(!atomic_exchange_explicit(&l->held, true,
		memory_order_acquire))) {
		PF_HB_AFTER(l); /* the previous holder's PF_HB_BEFORE */
		return;
	}
	pf__spin_lock_slow(l);
}

static inline void
pf__spin_unlock(pf__spin *l)
{
	PF_HB_BEFORE(l); /* for the next holder's PF_HB_AFTER */
	atomic_store_explicit(&l->held, false, memory_order_release);
}

/* -------------------------------------------------------------- records */

enum pf__ctx_kind {
	PF__CTX_ROOT,       /* the scope's internal root                */
	PF__CTX_FLOW,       /* a flow execution's context (in pf_exec)  */
	PF__CTX_FN,         /* a pf_ctx_exec_fn step                    */
	PF__CTX_STANDALONE, /* pf_scope_create_execution                */
};

typedef struct pf__tag_entry pf__tag_entry;
typedef struct pf__journal_entry pf__journal_entry;
typedef struct pf__message pf__message;

struct pf__journal_entry {
	pf__journal_entry *next;
	pf_exec *exec; /* NULL while its first caller creates it */
	const pf_flow *flow; /* a key matches only calls of this flow */
	char key[];
};

/*
 * Bytes of input or output a flow may declare, and of a tag value: far
 * above any real use, and low enough that record sizes computed from them
 * cannot overflow.  Larger sizes are refused with PF_EINVAL.
 */
#define PF__MAX_DATA ((size_t)1 << 40)

/*
 * The abort signal of a context is the context itself: pf_ctx_signal hands
 * out the address of this one-byte member, and the signal functions find
 * the context from it.  Its state (eventfd, listeners) lives in the cold
 * block, made when first needed.
 */
struct pf_signal {
	uint8_t unused;
};

/*
 * The cold block of a context: what most contexts never use, made on first
 * need by pf__ctx_cold() and installed once by CAS (acq_rel; readers load
 * the pointer with acquire, so they see it initialised).  Keeping it out of
 * the record makes a pending execution with no data fit in 224 bytes.
 * Fields are protected by the context's lock unless noted.
 */
typedef struct pf__cold {
	pf_ctx *owner;                 /* immutable */
	uint8_t mem;                   /* enum pf__cold_mem; immutable */
	bool journal_closed;
	/* Id text, formatted on first read: 0 none, 1 formatting, 2 ready. */
	_Atomic(uint8_t) id_state;
	/* eventfd made on first pf_signal_fd; -1 before; closed when the
	 * record is freed. */
	int fd;
	pf__tag_entry *tags;
	pf__journal_entry *journal;
	pf__message *messages;
	/* The message of the last child, step or group call that failed under
	 * this context with a message of its own, with its code: taken as the
	 * context's message when it fails with that code without
	 * pf_ctx_fail's (API.md Semantics 1).  Replaced by each such failure. */
	pf__message *inherited;
	/* pf_ctx_fail's message for the current error; NULL: the code's
	 * pf_strerror text. */
	const char *error_message;
	void *metadata;                /* immutable once published */
	/* Executions only: dynamic subscribers (pf_exec_on_status) and the
	 * journal key (an owned copy, immutable once started). */
	struct pf__sub *subs;
	const char *key;
	/* Timeout: armed with one reference held; protected by the wheel. */
	pf__timer_node timer;
	char id_text[PF__UUID_TEXT_LEN + 1]; /* written once, see id_state */
} pf__cold;

struct pf_ctx {
	/* First, so that refs is clear of the 16 bytes a slab overwrites
	 * (free-list link, debug magic) when the record is freed: a release
	 * of a freed record then reads a poisoned count in debug builds
	 * (ctx.c).  Immutable. */
	pf__uuid id;
	_Atomic(uint32_t) refs;
	uint8_t kind;          /* enum pf__ctx_kind; immutable */
	bool from_slab;        /* allocated by pf__record_alloc from a slab */
	bool parallel;         /* flow started by parallel; immutable */
	pf__spin lock;         /* children, cold fields, error, and for
	                          executions subscribers and waiters */
	/* Standalone contexts only: user handles; the last release ends it. */
	_Atomic(uint32_t) handles;
	uint32_t depth;        /* flows above and including this one, minus 1 */
	/* 0, or the abort reason; written once by CAS (first abort wins). */
	atomic_int abort_reason;
	atomic_int error;              /* written under lock; relaxed reads */
	/* The journal-closing handshake (ctx.c): set by the first keyed
	 * child, and by the end of the context's life (non-flow contexts;
	 * a flow context's life ends with its terminal status). */
	atomic_bool journal_used;
	atomic_bool life_over;
	bool name_owned;
	pf_signal signal;              /* the signal's address; see above */
	/* The firing listener removed itself: it stays `firing` (so removal
	 * from another thread still waits for it) but fire_signal no longer
	 * touches it once it returns (its owner may have freed it). */
	bool firing_removed;           /* protected by lock */
	pf_ctx *parent;        /* holds a reference; NULL for the root only */
	pf_scope *scope;
	/* Children list, protected by this context's lock; each child's
	 * sibling links are protected by its parent's lock. */
	pf_ctx *children;
	pf_ctx *sib_next, *sib_prev;
	const char *name;              /* immutable; owned when name_owned */
	const pf_flow *flow;           /* flow contexts: immutable */
	/* Signal listeners not yet run, and the one being run now, so that
	 * remove_listener can wait for it (protected by lock).  Here, not in
	 * the cold block: adding a listener never allocates. */
	pf_signal_listener *listeners;
	pf_signal_listener *firing;
	_Atomic(pf__cold *) cold;      /* NULL until first needed */
	int64_t created_at;
	_Atomic(int64_t) started_at;
	_Atomic(int64_t) completed_at;
};

/* The cold block, or NULL when none was made yet (acquire: pairs with the
 * installing CAS in pf__ctx_cold). */
static inline pf__cold *
pf__cold_of(const pf_ctx *c)
{
	return PF_ACQUIRED(&c->cold, atomic_load_explicit(
	    &((pf_ctx *)c)->cold, memory_order_acquire));
}

/* The cold block, made if needed; NULL when out of memory. */
pf__cold *pf__ctx_cold(pf_ctx *c);

/* Where a cold block's memory came from. */
enum pf__cold_mem {
	PF__COLD_HEAP,   /* pf__malloc                                    */
	PF__COLD_SLAB,   /* the making worker's record slab               */
	PF__COLD_INLINE, /* the tail of its record's own allocation, made
	                    with the record when creation already needs it
	                    (timeout, key, metadata, tags): one allocation */
};
/* Initialises k as c's cold block, to be installed by the caller (with
 * atomic_init while nobody else can see c). */
void pf__cold_init(pf__cold *k, pf_ctx *c, uint8_t mem);

/* Status word of an execution: the status in the low bits, then flags. */
#define PF__ST_MASK 0x7u
#define PF__ST_CANCELLING 0x7u /* claimed for cancel; reads as pending */
#define PF__F_SUBS 0x8u        /* dynamic subscribers were added       */
#define PF__F_WAITERS 0x10u    /* a waiter is registered               */
#define PF__F_DONE 0x20u       /* terminal callbacks returned          */

typedef struct pf__sub pf__sub;
typedef struct pf__waiter pf__waiter;
typedef struct pf__group pf__group;

struct pf_exec {
	pf_ctx ctx; /* first: a pf_exec is also its context */
	pf__task task;
	_Atomic(uint32_t) state;
	int result;                /* written before the terminal CAS */
	pf_status_fn on_status;
	void *on_status_data;
	pf__waiter *waiters;       /* protected by ctx.lock */
	pf__group *group;          /* parallel group, or NULL */
	/* A hint for helpers (relaxed): while pending, the worker whose
	 * deque the task was pushed to (NULL: the injector), written before
	 * the push publishes the task; once running, the worker running the
	 * handler. */
	_Atomic(pf__worker *) where;
	const void *input;         /* the copy in data[], or the caller's */
	/* input (input_size rounded up to 16), then output_size bytes */
	alignas(16) unsigned char data[];
};

/* A pending execution of a flow with no data must fit jemalloc's 224-byte
 * size class (the budget is 256 bytes resident per pending one). */
_Static_assert(sizeof(pf_exec) <= 224, "pf_exec grew past 224 bytes");

/* The output buffer of e in data[], or NULL when the flow has none. */
static inline void *
pf__exec_output(pf_exec *e)
{
	const pf_flow *f = e->ctx.flow;
	return f->output_size > 0 ?
	    e->data + ((f->input_size + 15) & ~(size_t)15) : NULL;
}

struct pf__group {
	bool settled;               /* parallel_settled: failures abort nothing */
	atomic_int failed;          /* first failure's code, 0 before */
	size_t n;
	_Atomic(pf_exec *) *execs;  /* n slots, filled as calls start */
};

typedef struct pf__stripe {
	PF_CACHE_ALIGNED atomic_long n;
} pf__stripe;

typedef struct pf__extlist pf__extlist;
struct pf__extlist {
	size_t n;
	pf__extlist *older; /* retired lists, freed at dispose */
	const pf_extension *v[];
};

struct pf_scope {
	pf_ctx root;                 /* holds the scope tags */
	pf__pool *pool;
	pf__timers *timers;
	unsigned threads;
	/* 0 open, 1 disposing, 2 disposed. */
	atomic_int state;
	/* Executions created and not yet finished, striped per worker (the
	 * last stripe is for threads that are not workers): a creation adds
	 * on its thread's stripe, a finish subtracts on its own, and only the
	 * sum means anything.  Dispose waits for the sum to be 0. */
	pf__stripe *unfinished;
	unsigned n_stripes;
	/* Whether worker stripes use plain stores fenced by membarrier from
	 * dispose (barrier.h); immutable. */
	bool asym;
	_Atomic(pf__extlist *) exts;
	pthread_mutex_t lock; /* extensions list changes; dispose's wait */
	pthread_cond_t idle;
};

/* ctx.c */
/* Record memory: the calling worker's slab when it has one and size fits,
 * else the heap.  *from_slab tells pf__record_free which. */
#define PF__RECORD_SLAB_SIZE 256
void *pf__record_alloc(size_t size, bool *from_slab);
void pf__record_free(void *p, bool from_slab);
/* Worker start/stop hooks: each worker owns a record slab. */
void pf__record_worker_start(pf__worker *w, void *arg);
void pf__record_worker_stop(pf__worker *w, void *arg);
/* Initialises every field of c (no memset needed). */
void pf__ctx_init(pf_ctx *c, pf_scope *s, pf_ctx *parent, uint8_t kind,
    int64_t now);
int pf__ctx_link(pf_ctx *c);  /* 0 or the parent's abort reason */
void pf__ctx_retain(pf_ctx *c);
void pf__ctx_release(pf_ctx *c);
int pf__ctx_set_name(pf_ctx *c, const char *name, const char *fallback);
int pf__ctx_seed_tags(pf_ctx *c, const pf_tag_value *tags, size_t n);
void pf__ctx_abort(pf_ctx *c, int reason);
void pf__ctx_end_at(pf_ctx *c, int64_t now);
void pf__ctx_record_error(pf_ctx *c, int code);
void pf__ctx_arm_timeout(pf_ctx *c, uint64_t timeout_ms);
void pf__ctx_cancel_timeout(pf_ctx *c);
bool pf__ctx_try_retain(pf_ctx *c);
pf__journal_entry **pf__journal_find(pf_ctx *parent, const char *key);
/* The end of a context's life: drops the journal's references (see
 * ctx.c); later keyed children run unjournaled. */
void pf__ctx_end_life(pf_ctx *c);
/* Under c->lock: whether keyed children may still be journaled. */
bool pf__ctx_journal_open(pf_ctx *c);

/* The user callbacks (status callbacks, signal listeners) this thread is
 * inside now; the calls API.md Semantics 2 forbids there check it. */
extern _Thread_local unsigned pf__in_callback PF_TLS_MODEL;

/* ctx.c: messages */
/* Keeps a copy of text in c (freed with c); NULL when out of memory. */
const char *pf__ctx_keep_text(pf_ctx *c, const char *text);
/* c failed: if it has a message of its own, its parent inherits it. */
void pf__ctx_pass_message(pf_ctx *c);
/* c's own message for its error (pf_ctx_fail's or inherited), or NULL. */
const char *pf__ctx_own_message(pf_ctx *c);

/* exec.c */
/* An abort of a pending execution in two steps: claim it (no handler can
 * start after that; false if it started or finished), then, after the
 * context's listeners ran, publish it cancelled. */
bool pf__exec_claim_cancel(pf_exec *e);
void pf__exec_cancel_claimed(pf_exec *e, int reason);
/*
 * Creation in two phases, so that a group of executions can be built
 * completely (every allocation done) before any of them starts:
 * pf__exec_prepare allocates and fills a record that nobody can see yet
 * (0, PF_ENOMEM, PF_ESHUTDOWN); pf__exec_start (which cannot fail) delivers
 * pending, arms the timeout, links and submits it (unless queue is false:
 * then the caller runs it at once with pf__exec_run_here); pf__exec_discard drops
 * a prepared record that will not start, running nothing and calling no
 * callback.  pf__exec_create does both phases.
 */
int pf__exec_prepare(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *g,
    pf_exec **out);
void pf__exec_start(pf_exec *e, const pf_exec_options *opts, pf_exec **out,
    bool queue);
/* Claims a pending execution and runs it on this thread (worker w, or
 * NULL): true; false, doing nothing, if it started or finished.  With
 * pf__exec_start's queue false, the caller must call it (nobody else
 * would run it).  The one place an execution is claimed and run. */
bool pf__exec_run_here(pf_exec *e, pf__worker *w);
void pf__exec_discard(pf_exec *e);
int pf__exec_create(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *g,
    pf_exec **out);
int pf__exec_wait(pf_exec *e, void *output, int64_t deadline_ns);
/* Waits for e's end, whatever happens: when the wait fails with PF_EAGAIN
 * (nothing can run e), aborts e, waits until it ended and returns
 * PF_EAGAIN.  For callers whose frame e refers to (parallel groups) or
 * that hand out no handle (the *_run calls). */
int pf__exec_wait_end(pf_exec *e, void *output);
void pf__exec_free(pf_exec *e);
/* Frees a list of subscribers (the cold block's, at the end of life). */
void pf__subs_free(pf__sub *s);

/* scope.c */
/*
 * The work this thread runs for a scope as a caller rather than as one of
 * the scope's workers, innermost first: fn steps, and executions a waiter
 * runs itself (API.md Semantics 5).  pf_scope_dispose refuses from inside
 * any of them (it would wait for itself); waiter_runs bounds how deep
 * waiters nest such runs.  A per-thread chain of frames on the stack.
 */
typedef struct pf__running {
	pf_scope *scope;
	unsigned waiter_runs; /* executions run by waiters, this frame's too */
	bool slot;            /* this frame took one of the scope's run slots */
	struct pf__running *outer;
} pf__running;
void pf__running_enter(pf__running *r, pf_scope *s, bool waiter_run,
    bool slot);
void pf__running_leave(pf__running *r);
/* Executions this thread runs as a waiter now, nested. */
unsigned pf__running_waiter_runs(void);
/* Whether a frame of this thread holds a run slot of s. */
bool pf__running_holds_slot(const pf_scope *s);
/* Gives back every run slot this thread's frames hold (before it sleeps
 * in a wait), and takes them back as a resumer. */
void pf__running_slots_give(void);
void pf__running_slots_resume(void);
int pf__ext_run(pf_scope *s, const pf_operation *op, int (*run)(void *),
    void *arg);
/* Counts one more unfinished execution unless the scope is closing:
 * 0 or PF_ESHUTDOWN.  Balanced by pf__scope_exec_finished. */
int pf__scope_enter(pf_scope *s);
void pf__scope_exec_finished(pf_scope *s);
/* Counts one more unfinished piece of work, never refused: only while the
 * caller's own count (an execution not yet visible) keeps dispose waiting.
 * Balanced by pf__scope_exec_finished. */
void pf__scope_hold(pf_scope *s);

#endif /* PF_TRACK_H */
