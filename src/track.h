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
	char key[];
};

struct pf_signal {
	/* eventfd made on first pf_signal_fd; -1 before.  Protected by the
	 * context's lock; closed when the record is freed. */
	int fd;
	/* Listeners not yet run, protected by the context's lock. */
	pf_signal_listener *listeners;
	/* The listener being run now, and the thread running it, so that
	 * remove_listener can wait for it (protected by the lock). */
	pf_signal_listener *firing;
	pthread_t firing_thread;
	/* The firing listener removed itself: stays `firing` (so removal from
	 * another thread still waits for it) but fire_signal no longer
	 * touches it once it returns (its owner may have freed it). */
	bool firing_removed;
};

struct pf_ctx {
	_Atomic(uint32_t) refs;
	uint8_t kind;          /* enum pf__ctx_kind; immutable */
	bool from_slab;        /* allocated by pf__record_alloc from a slab */
	bool parallel;         /* flow started by parallel; immutable */
	/* Standalone contexts only: user handles; the last release ends it. */
	_Atomic(uint32_t) handles;
	uint32_t depth;        /* flows above and including this one, minus 1 */
	/* 0, or the abort reason; written once by CAS (first abort wins). */
	atomic_int abort_reason;
	pf__spin lock;         /* children, tags, journal, signal, error,
	                          and for executions subscribers and waiters */
	pf_ctx *parent;        /* holds a reference; NULL for the root only */
	pf_scope *scope;
	/* Children list, protected by this context's lock; each child's
	 * sibling links are protected by its parent's lock. */
	pf_ctx *children;
	pf_ctx *sib_next, *sib_prev;
	pf__tag_entry *tags;           /* protected by lock */
	pf__journal_entry *journal;    /* protected by lock */
	bool journal_closed;           /* protected by lock */
	/* The journal-closing handshake (ctx.c): set by the first keyed
	 * child, and by the end of the context's life (non-flow contexts;
	 * a flow context's life ends with its terminal status). */
	atomic_bool journal_used;
	atomic_bool life_over;
	pf__message *messages;         /* protected by lock */
	atomic_int error;              /* written under lock; relaxed reads */
	const char *error_message;     /* protected by lock */
	const char *name;              /* immutable; owned when name_owned */
	bool name_owned;
	void *metadata;
	const pf_flow *flow;           /* flow contexts: immutable */
	int64_t created_at;
	_Atomic(int64_t) started_at;
	_Atomic(int64_t) completed_at;
	pf__uuid id;
	/* Id text, formatted on first read: 0 none, 1 formatting, 2 ready. */
	_Atomic(uint8_t) id_state;
	char id_text[PF__UUID_TEXT_LEN + 1];
	pf_signal signal;
	/* Timeout: armed with one reference held; protected by the wheel. */
	pf__timer_node timer;
	atomic_bool timer_armed;
};

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
	pf__sub *subs;             /* protected by ctx.lock */
	pf__waiter *waiters;       /* protected by ctx.lock */
	pf__group *group;          /* parallel group, or NULL */
	/* The worker whose deque the task was pushed to (NULL: injector);
	 * written before the push publishes the task. */
	pf__worker *home;
	/* The worker running the handler: a hint for helpers (relaxed). */
	_Atomic(pf__worker *) runner;
	const void *input;         /* the copy in data[], or the caller's */
	void *output;              /* output_size bytes in data[], or NULL */
	const char *key;           /* journal key (owned copy) or NULL */
	alignas(16) unsigned char data[];
};

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
#define PF__RECORD_SLAB_SIZE 512
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

/* exec.c */
void pf__exec_on_abort(pf_exec *e, int reason);
/*
 * Creation in two phases, so that a group of executions can be built
 * completely (every allocation done) before any of them starts:
 * pf__exec_prepare allocates and fills a record that nobody can see yet
 * (0, PF_ENOMEM, PF_ESHUTDOWN); pf__exec_start (which cannot fail) delivers
 * pending, arms the timeout, links and submits it; pf__exec_discard drops
 * a prepared record that will not start, running nothing and calling no
 * callback.  pf__exec_create does both phases.
 */
int pf__exec_prepare(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *g,
    pf_exec **out);
void pf__exec_start(pf_exec *e, const pf_exec_options *opts, pf_exec **out);
void pf__exec_discard(pf_exec *e);
int pf__exec_create(pf_scope *s, pf_ctx *parent, const pf_flow *f,
    const void *input, const pf_exec_options *opts, pf__group *g,
    pf_exec **out);
int pf__exec_wait(pf_exec *e, void *output, int64_t deadline_ns);
void pf__exec_free(pf_exec *e);

/* scope.c */
int pf__ext_run(pf_scope *s, const pf_operation *op, int (*run)(void *),
    void *arg);
/* Counts one more unfinished execution unless the scope is closing:
 * 0 or PF_ESHUTDOWN.  Balanced by pf__scope_exec_finished. */
int pf__scope_enter(pf_scope *s);
void pf__scope_exec_finished(pf_scope *s);

#endif /* PF_TRACK_H */
