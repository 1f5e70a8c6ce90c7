/*
 * record.h: the records of the tracking layer (contexts and executions),
 * their memory, and the reads every tracking module makes of them.
 *
 * One record per context.  A flow execution's record is a pf_exec whose
 * first member is its pf_ctx, so the execution and its context share one
 * id, one reference count and one allocation.  Standalone contexts and fn
 * step contexts are bare pf_ctx records.  Each scope embeds an internal
 * root context (scope.h): root executions and standalone contexts are its
 * children, and since every record holds a reference on its parent, the
 * scope's memory lives exactly as long as some record does.
 *
 * This header only defines the data; each concern has its module above
 * it: ctx (tree, lifetime, abort, timeouts), tag, message, signal, sub
 * (status subscribers), waiter, journal, group, exec (status machine),
 * wait.  Which fields each module owns is said at the field.
 *
 * Reference counts (pf_ctx.refs) are held by: each user handle (exec out,
 * create_execution, retain), a queued task (dropped when the task runs or
 * is found stale), an armed timer, a journal entry, and each child record
 * (on its parent).  Links from a parent to its children are weak: a child
 * unlinks itself when freed.
 */
#ifndef PF_RECORD_H
#define PF_RECORD_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "atomics.h"
#include "common.h"
#include "list.h"
#include "pool.h"
#include "pumped.h"
#include "spin.h"
#include "task.h"
#include "timer.h"
#include "uuid.h"

typedef struct pf__engine pf__engine;
typedef struct pf__tag_entry pf__tag_entry;
typedef struct pf__journal_entry pf__journal_entry;
typedef struct pf__message pf__message;
typedef struct pf__sub pf__sub;
typedef struct pf__group pf__group;

enum pf__ctx_kind {
	PF__CTX_ROOT,       /* a scope's internal root                  */
	PF__CTX_FLOW,       /* a flow execution's context (in pf_exec)  */
	PF__CTX_FN,         /* a pf_ctx_exec_fn step                    */
	PF__CTX_STANDALONE, /* pf_scope_create_execution                */
	PF__CTX_KINDS
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
 * the context from it.  Its state (eventfd, listeners) lives in the
 * record and its cold block (signal.c).
 */
struct pf_signal {
	uint8_t unused;
};

/*
 * The cold block of a context: what most contexts never use, made on first
 * need by pf__ctx_cold() and installed once by CAS.  Keeping it out of the
 * record makes a pending execution with no data fit in 176 bytes.  Fields
 * are protected by the context's lock unless noted; the module that owns
 * each is named.
 */
typedef struct pf__cold {
	pf_ctx *owner;                 /* immutable */
	uint8_t mem;                   /* enum pf__cold_mem; immutable */
	bool journal_closed;           /* journal */
	/* Id text, formatted on first read: 0 none, 1 formatting, 2 ready
	 * (ctx). */
	_Atomic(uint8_t) id_state;
	/* eventfd made on first pf_signal_fd; -1 before; closed when the
	 * record is freed (signal).  With PF_SIGNAL_PIPE, a pipe's read end,
	 * and fd_w its write end. */
	int fd;
#ifdef PF_SIGNAL_PIPE
	int fd_w;
#endif
	pf__tag_entry *tags;           /* tag */
	pf__journal_entry *journal;    /* journal: empty when freed */
	pf__message *messages;         /* message: texts kept until freed */
	/* message: the message of the last child, step or group call that
	 * failed under this context with a message of its own, with its
	 * code, taken as the context's when it fails with that code. */
	pf__message *inherited;
	/* message: pf_ctx_fail's message for the current error; NULL: the
	 * code's pf_strerror text. */
	const char *error_message;
	void *metadata;                /* immutable once published */
	/* Executions only: dynamic subscribers (sub) and the journal key (an
	 * owned copy, immutable once started). */
	pf__sub *subs;
	const char *key;
	/* Executions only: the creator's status callback (exec.c; sub.h),
	 * immutable once created; the status word's ON_STATUS flag says it
	 * is set, without a look here. */
	pf_status_fn on_status;
	void *on_status_data;
	/* Flow contexts: the name given in the options (owned, immutable
	 * once created); see pf_ctx.flow. */
	const char *name;
	/* Timeout: armed with one reference held; protected by the wheel
	 * (ctx). */
	pf__timer_node timer;
	char id_text[PF__UUID_TEXT_LEN + 1]; /* written once, see id_state */
} pf__cold;

/* Where a cold block's memory came from. */
enum pf__cold_mem {
	PF__COLD_HEAP,   /* pf__malloc                                    */
	PF__COLD_SLAB,   /* the making worker's record slab               */
	PF__COLD_INLINE, /* the tail of its record's own allocation, made
	                    with the record when creation already needs it
	                    (timeout, key, metadata, tags): one allocation */
};

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
	union {
		/* Standalone contexts: user handles; the last release ends
		 * it (standalone.c). */
		_Atomic(uint32_t) handles;
		/* Flow contexts: a hint for helpers (relaxed), the index + 1
		 * of a worker of the scope's pool, 0 for none (the injector):
		 * while pending, the worker whose deque the task was pushed
		 * to, written before the push publishes the task; once
		 * running, the worker running the handler (exec.c,
		 * await.c). */
		_Atomic(uint32_t) where;
	};
	uint32_t depth;        /* flows above and including this one, minus 1 */
	/* 0, or the abort reason; written once by CAS (first abort wins). */
	atomic_int abort_reason;
	atomic_int error;              /* written under lock; relaxed reads */
	/* The journal-closing handshake (journal.c): set by the first keyed
	 * child, and by the end of the context's life (non-flow contexts;
	 * a flow context's life ends with its terminal status). */
	atomic_bool journal_used;
	atomic_bool life_over;
	bool name_owned;
	pf_signal signal;              /* the signal's address; see above */
	/* The firing listener removed itself: it stays `firing` (so removal
	 * from another thread still waits for it) but the signal no longer
	 * touches it once it returns (its owner may have freed it). */
	bool firing_removed;           /* protected by lock */
	/* Executions started for their creator to run at once (exec.c): the
	 * creation's clock read is their start too.  Immutable once
	 * started. */
	bool start_is_creation;
	pf_ctx *parent;        /* holds a reference; NULL for the root only */
	pf__engine *engine;    /* what the scope runs on (engine.h) */
	/* Children, protected by this context's lock; each child's sibling
	 * node is protected by its parent's lock. */
	pf__hlist children;
	pf__hnode sibling;
	union {
		/* Other contexts: immutable; owned when name_owned. */
		const char *name;
		/* Flow contexts: immutable.  Their name is the flow's, or an
		 * owned copy in the cold block (name_owned): pf__ctx_name. */
		const pf_flow *flow;
	};
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

/* Status word of an execution (exec.c): the status in the low bits, then
 * flags. */
#define PF__ST_MASK 0x7u
#define PF__ST_CANCELLING 0x7u /* claimed for cancel; reads as pending */
#define PF__F_SUBS 0x8u        /* dynamic subscribers were added       */
#define PF__F_WAITERS 0x10u    /* a waiter is registered               */
#define PF__F_DONE 0x20u       /* terminal callbacks returned          */
#define PF__F_ON_STATUS 0x40u  /* the cold block has an on_status;
                                  immutable once created               */
#define PF__F_INPUT_PTR 0x80u  /* a flow without input data was given an
                                  input pointer: it is in data[];
                                  immutable once created               */
#define PF__F_TIMER_INLINE 0x100u /* the timeout's timer node follows the
                                  data (pf__exec_inline_timer), not in
                                  the cold block; immutable once
                                  created                              */
#define PF__F_DEFERRED 0x200u  /* a deferred execution not yet settled:
                                  set at creation, cleared by the one
                                  pf_exec_settle that ends it          */
#define PF__F_WAS_DEFERRED 0x400u /* created deferred; immutable      */

struct pf_exec {
	pf_ctx ctx; /* first: a pf_exec is also its context */
	pf__task task;
	_Atomic(uint32_t) state;   /* the status word, above */
	int result;                /* written before the terminal CAS */
	pf__hlist waiters;         /* waiter.c; protected by ctx.lock */
	pf__group *group;          /* parallel group, or NULL */
	/* The input: input_size bytes, or for a flow with none the caller's
	 * pointer when it gave one (INPUT_PTR), rounded up to 16; then
	 * output_size bytes.  See pf__exec_input. */
	alignas(16) unsigned char data[];
};

/* A pending execution of a flow with no data is one 176-byte slab object
 * (record.c; README, "Numbers": at most 192 bytes resident per pending
 * execution). */
_Static_assert(sizeof(pf_exec) <= 176, "pf_exec grew past 176 bytes");

/* ------------------------------------------------------------- reads */

/* The cold block, or NULL when none was made yet (acquire: pairs with the
 * installing CAS in pf__ctx_cold). */
static inline pf__cold *
pf__cold_of(const pf_ctx *c)
{
	return pf__load_acquire(&((pf_ctx *)c)->cold);
}

/* The abort reason, or 0 (acquire: pairs with the abort CAS in ctx.c). */
static inline int
pf__ctx_abort_reason(const pf_ctx *c)
{
	return pf__load_acquire(&((pf_ctx *)c)->abort_reason);
}

/* The status a status word reads as: a claimed cancel is still pending. */
static inline uint32_t
pf__status_of(uint32_t word)
{
	uint32_t st = word & PF__ST_MASK;
	return st == PF__ST_CANCELLING ? PF_PENDING : st;
}

/* The status word (acquire: pairs with the status CASes in exec.c). */
static inline uint32_t
pf__exec_word(const pf_exec *e)
{
	return pf__load_acquire(&((pf_exec *)e)->state);
}

/* Whether a flow context's execution reached a terminal status (the
 * cancel of a claimed one is not published yet).  Order: as given. */
static inline bool
pf__exec_ended(const pf_exec *e, memory_order mo)
{
	uint32_t st = atomic_load_explicit(&((pf_exec *)e)->state, mo) &
	    PF__ST_MASK;
	return st >= PF_COMPLETED && st != PF__ST_CANCELLING;
}

/* The bytes of data[] before the output: the input (rounded up to 16),
 * the input pointer's 16, or none.  Relaxed: the flag is immutable. */
static inline size_t
pf__exec_input_room(const pf_exec *e)
{
	size_t n = e->ctx.flow->input_size;
	if (n > 0)
		return (n + 15) & ~(size_t)15;
	return pf__load_relaxed(&((pf_exec *)e)->state) & PF__F_INPUT_PTR ?
	    16 : 0;
}

/* The input the handler gets: the copy in data[], the caller's pointer,
 * or NULL. */
static inline const void *
pf__exec_input(const pf_exec *e)
{
	if (e->ctx.flow->input_size > 0)
		return e->data;
	if (pf__load_relaxed(&((pf_exec *)e)->state) & PF__F_INPUT_PTR) {
		const void *p;
		memcpy(&p, e->data, sizeof(p));
		return p;
	}
	return NULL;
}

/*
 * The timer of an execution whose only option needing the cold block is
 * a timeout: it follows the data in the record (TIMER_INLINE), with its
 * owner, so that such an execution costs one 256-byte slab object and no
 * cold block (timer_fired finds the owner from the node).
 */
typedef struct pf__inline_timer {
	pf_ctx *owner;
	pf__timer_node node;
} pf__inline_timer;

/* Where e's inline timer is (TIMER_INLINE): after the input room and the
 * output, aligned; exec.c sizes the record the same way. */
static inline pf__inline_timer *
pf__exec_inline_timer(pf_exec *e)
{
	size_t at = pf__exec_input_room(e) + e->ctx.flow->output_size;
	at = (at + alignof(pf__inline_timer) - 1) &
	    ~(alignof(pf__inline_timer) - 1);
	return (pf__inline_timer *)(void *)(e->data + at);
}

/* The output buffer of e in data[], or NULL when the flow has none. */
static inline void *
pf__exec_output(pf_exec *e)
{
	return e->ctx.flow->output_size > 0 ?
	    e->data + pf__exec_input_room(e) : NULL;
}

/* A flow's name as the API reports it. */
static inline const char *
pf__flow_name(const pf_flow *f)
{
	return f->name != NULL ? f->name : "anonymous";
}

/* A context's name (pf_ctx_name).  A flow context's name_owned and cold
 * block were set before anyone could see it. */
static inline const char *
pf__ctx_name(const pf_ctx *c)
{
	if (c->kind != PF__CTX_FLOW)
		return c->name;
	if (c->name_owned)
		return pf__cold_of(c)->name;
	return pf__flow_name(c->flow);
}

/* ------------------------------------------------------------ memory */

/* Record memory: the calling thread's slab of the smallest size class
 * that fits (record.c), else the heap.  *from_slab tells pf__record_free
 * which. */
#define PF__RECORD_SLAB_MAX 384
void *pf__record_alloc(size_t size, bool *from_slab);
void pf__record_free(void *p, bool from_slab);
#ifdef PF_TESTING
/* Records this thread makes from now on come from the heap (on) or its
 * slab (off, the default): for tests that count or fail allocations. */
void pf__record_heap_only(bool on);
#endif
/* Pool start/stop hooks: each worker owns its record slabs. */
void pf__record_worker_start(pf__worker *w, void *arg);
void pf__record_worker_stop(pf__worker *w, void *arg);

/* The cold block, made if needed; NULL when out of memory. */
pf__cold *pf__ctx_cold(pf_ctx *c);
/* Initialises k as c's cold block, to be installed by the caller (with
 * atomic_init while nobody else can see c). */
void pf__cold_init(pf__cold *k, pf_ctx *c, uint8_t mem);
/* Frees k's own memory (not what its fields point to: their modules free
 * that first). */
void pf__cold_free(pf__cold *k);

#endif /* PF_RECORD_H */
