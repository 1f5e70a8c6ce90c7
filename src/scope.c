/*
 * scope.c: the API layer: creates and disposes scopes, and forwards the
 * scope's calls to the tracking layer.
 */
#include "config.h"

#include <pthread.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "await.h"
#include "child.h"
#include "clock.h"
#include "ctx.h"
#include "dump.h"
#include "env.h"
#include "exec.h"
#include "frame.h"
#include "probe.h"
#include "scope.h"
#include "standalone.h"
#include "tag.h"

static void
scope_free(pf_ctx *root)
{
	pf_scope *s = PF_CONTAINER_OF(root, pf_scope, root);
	pf__engine_fini(&s->engine);
	pf__free(s);
}

static const pf__ctx_class root_class = {
	.free = scope_free,
};

static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

/* The kinds above the context tree, installed once per process (ctx.h). */
static void
install_classes(void)
{
	pf__ctx_set_class(PF__CTX_ROOT, &root_class);
	pf__ctx_set_class(PF__CTX_FLOW, &pf__exec_class);
}

static int
check_options(const pf_scope_options *opts)
{
	if ((opts->n_extensions != 0 && opts->extensions == NULL) ||
	    (opts->n_tags != 0 && opts->tags == NULL) ||
	    opts->threads > PF__MAX_THREADS)
		return PF_EINVAL;
	for (size_t i = 0; i < opts->n_extensions; i++)
		if (opts->extensions[i] == NULL)
			return PF_EINVAL;
	return 0;
}

/*
 * PUMPED_TRACE=FILE: the first scope of the process traced this way writes
 * FILE, the next ones FILE.2, FILE.3, ...; "%p" in FILE stands for the
 * process id.  A file that cannot be written is reported on stderr and the
 * scope runs untraced.
 */
static void
trace_from_environment(pf__engine *g)
{
	static atomic_uint traced;
	const char *v = getenv("PUMPED_TRACE");
	if (v == NULL || v[0] == '\0')
		return;
	char path[4096];
	size_t n = 0;
	for (const char *p = v; *p != '\0' && n + 24 < sizeof(path); p++) {
		if (p[0] == '%' && p[1] == 'p') {
			n += (size_t)snprintf(path + n, sizeof(path) - n, "%ld",
			    (long)getpid());
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			path[n++] = '%';
			p++;
		} else {
			path[n++] = *p;
		}
	}
	path[n] = '\0';
	unsigned k = atomic_fetch_add_explicit(&traced, 1,
	    memory_order_relaxed) + 1;
	if (k > 1)
		snprintf(path + n, sizeof(path) - n, ".%u", k);
	errno = 0;
	int rc = pf__engine_trace_start(g, path);
	if (rc != 0)
		fprintf(stderr, "libpumped: PUMPED_TRACE: cannot trace to %s "
				"(%s); running untraced\n",
		    path, rc == PF_ENOMEM ? pf_strerror(rc) :
		    errno != 0 ? strerror(errno) : "already tracing");
}

int
pf_scope_create(pf_scope **out, const pf_scope_options *opts)
{
	pf_scope_options none = { 0 };
	if (out == NULL)
		return PF_EINVAL;
	if (opts == NULL)
		opts = &none;
	int rc = check_options(opts);
	if (rc != 0)
		return rc;
	pthread_once(&classes_once, install_classes);

	pf_scope *s = pf__aligned_alloc(PF_CACHELINE, sizeof(*s));
	if (s == NULL)
		return PF_ENOMEM;
	memset(s, 0, sizeof(*s));
	pf__engine_init(&s->engine, s);
	pf__ctx_init(&s->root, &s->engine, NULL, PF__CTX_ROOT, pf__clock_raw());
	s->root.name = "scope";
	/* From here on, the root's last reference frees s. */
	rc = pf__tags_seed(&s->root, opts->tags, opts->n_tags);
	if (rc != 0)
		goto release_root;
	rc = pf__engine_start(&s->engine, opts->threads != 0 ? opts->threads :
	    pf__default_threads(), pf__exec_task_run,
	    pf__env_uint("PUMPED_STATS", 0, 1, 0) == 1);
	if (rc != 0)
		goto release_root;
	trace_from_environment(&s->engine);
	for (size_t i = 0; i < opts->n_extensions; i++) {
		rc = pf__ext_add(&s->engine.exts, opts->extensions[i]);
		if (rc != 0)
			goto dispose_extensions;
	}
	if (PF_PROBE_ON(scope_created))
		PF_PROBE2(scope_created, s, s->engine.threads);
	*out = s;
	return 0;

dispose_extensions:
	pf__ext_dispose_all(&s->engine.exts);
	pf__engine_stop(&s->engine);
release_root:
	pf__ctx_release(&s->root);
	return rc;
}

int
pf_scope_dispose(pf_scope *s)
{
	/* From one of the scope's own handlers or fn steps it would wait
	 * for itself; from a status callback or signal listener it may wait
	 * for the very transition (or timer) that runs it. */
	if (s == NULL || pf__pool_current(s->engine.pool) != NULL ||
	    pf__frame_caller_here(&s->engine) || pf__in_user_callback())
		return PF_EINVAL;
	int rc = pf__engine_close(&s->engine);
	if (rc != 0)
		return rc;
	/* Cancels every pending execution and aborts every running one and
	 * every standalone context: they all descend from the root. */
	pf__ctx_abort(&s->root, PF_ECANCELED);
	pf__engine_wait_idle(&s->engine);
	pf__ext_dispose_all(&s->engine.exts);
	pf__engine_stop(&s->engine);
	/* Every worker stopped: the trace is complete. */
	if (pf__engine_trace(&s->engine) != NULL)
		(void)pf__engine_trace_write(&s->engine);
	if (PF_PROBE_ON(scope_disposed))
		PF_PROBE1(scope_disposed, s);
	/* The scope's own reference; records still held keep the memory. */
	pf__ctx_release(&s->root);
	return 0;
}

int
pf_scope_dump(pf_scope *s, FILE *out, unsigned flags)
{
	if (s == NULL || out == NULL || (flags & ~PF_DUMP_JSON) != 0)
		return PF_EINVAL;
	return pf__dump(&s->root, s->engine.threads, out, flags);
}

int
pf_scope_trace_start(pf_scope *s, const char *path)
{
	if (s == NULL || path == NULL)
		return PF_EINVAL;
	return pf__engine_trace_start(&s->engine, path);
}

int
pf_scope_trace_flush(pf_scope *s)
{
	return s != NULL ? pf__engine_trace_write(&s->engine) : PF_EINVAL;
}

int
pf_scope_trace_set_process(pf_scope *s, int pid, const char *name,
    int64_t clock_offset_ns)
{
	if (s == NULL || name == NULL)
		return PF_EINVAL;
	pf__engine *g = &s->engine;
	pthread_mutex_lock(&g->lock);
	g->trace_proc.pid = pid;
	g->trace_proc.clock_offset_ns = clock_offset_ns;
	snprintf(g->trace_proc.name, sizeof(g->trace_proc.name), "%s", name);
	g->trace_proc_set = true;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

int
pf_scope_stats_enable(pf_scope *s)
{
	return s != NULL ? pf__engine_stats_enable(&s->engine) : PF_EINVAL;
}

int
pf_scope_stats(pf_scope *s, pf_stats *out, pf_flow_stats *flows,
    size_t max_flows)
{
	if (s == NULL || out == NULL || (flows == NULL && max_flows > 0))
		return PF_EINVAL;
	memset(out, 0, sizeof(*out));
	pf__engine *g = &s->engine;
	pf__stats *st = pf__engine_stats(g);
	if (st == NULL)
		return 0;
	out->enabled = true;
	pf__stats_read(st, out, flows, max_flows);
	pf__pool_stats ps;
	pf__pool_stats_read(g->pool, &ps);
	out->steals = ps.steal;
	out->parks = ps.park;
	out->injector_pushes = ps.inject;
	out->workers = ps.workers;
	out->spares = ps.workers > g->threads ? ps.workers - g->threads : 0;
	return 0;
}

pf_scope *
pf_ctx_scope(const pf_ctx *c)
{
	return c != NULL ? PF_CONTAINER_OF(c->engine, pf_scope, engine) : NULL;
}

unsigned
pf_scope_threads(const pf_scope *s)
{
	return s != NULL ? s->engine.threads : 0;
}

int
pf_scope_use(pf_scope *s, const pf_extension *ext)
{
	if (s == NULL || ext == NULL)
		return PF_EINVAL;
	int rc = pf__engine_open(&s->engine);
	return rc != 0 ? rc : pf__ext_add(&s->engine.exts, ext);
}

/* The checks of a root execution: 0, PF_EINVAL or PF_ESHUTDOWN. */
static int
check_root_exec(pf_scope *s, const pf_flow *f, const void *input,
    const pf_exec_options *opts)
{
	if (s == NULL)
		return PF_EINVAL;
	int rc = pf__check_flow(f, input, opts);
	if (rc == 0 && opts != NULL && opts->key != NULL)
		rc = PF_EINVAL; /* journal keys belong to child executions */
	return rc != 0 ? rc : pf__engine_open(&s->engine);
}

int
pf_scope_exec(pf_scope *s, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out)
{
	int rc = check_root_exec(s, f, input, opts);
	if (rc != 0)
		return rc;
	return pf__exec_create(&s->engine, &s->root, f, input, opts, NULL,
	    out);
}

int
pf_scope_exec_deferred(pf_scope *s, const pf_flow *f,
    const pf_exec_options *opts, pf_exec **out)
{
	int rc = s == NULL ? PF_EINVAL : pf__check_deferred(f, opts, out);
	if (rc == 0)
		rc = pf__engine_open(&s->engine);
	return rc != 0 ? rc :
	    pf__exec_defer(&s->engine, &s->root, f, opts, out);
}

/*
 * pf_scope_run on a thread that is not a worker: it would wait for the
 * execution, and a waiter that finds it pending runs it itself when a run
 * slot is free.  So take the slot first and run it at once, without a
 * queue entry: no push, no wake-up, and no stale entry left in the queue
 * to keep the finished record (and its signal fd) alive until a worker
 * pops it.  PF_EAGAIN when no slot is free now: then it is queued.
 */
static int
run_at_once(pf_scope *s, const pf_flow *f, const void *input,
    const pf_exec_options *opts, pf_exec **out)
{
	pf__engine *g = &s->engine;
	if (pf__worker_self() != NULL || pf__engine_enter(g) != 0)
		return PF_EAGAIN;
	pf__frame frame;
	int rc = PF_EAGAIN;
	if (pf__inline_begin(g, &frame)) {
		rc = pf__exec_prepare(g, &s->root, f, input, opts, NULL, out);
		if (rc == 0) {
			pf__exec_start(*out, opts, out, false);
			pf__exec_run_here(*out, NULL);
		}
		pf__inline_end(&frame);
	}
	/* Counted until here: the slot's pool outlives its give. */
	pf__engine_finished(g);
	return rc;
}

int
pf_scope_run(pf_scope *s, const pf_flow *f, const void *input, void *output,
    const pf_exec_options *opts)
{
	pf_exec *e;
	int rc = check_root_exec(s, f, input, opts);
	if (rc == 0 && (rc = run_at_once(s, f, input, opts, &e)) == PF_EAGAIN)
		rc = pf__exec_create(&s->engine, &s->root, f, input, opts,
		    NULL, &e);
	if (rc != 0)
		return rc;
	rc = pf__exec_wait_end(e, output);
	pf_exec_release(e);
	return rc;
}

int
pf_scope_create_execution(pf_scope *s, const pf_ctx_options *opts,
    pf_ctx **out)
{
	if (s == NULL || out == NULL)
		return PF_EINVAL;
	return pf__standalone_create(&s->engine, &s->root, opts, NULL, out);
}

int
pf_scope_create_execution_with_id(pf_scope *s, const pf_ctx_options *opts,
    const char *id, pf_ctx **out)
{
	pf__uuid u;
	if (s == NULL || out == NULL || id == NULL ||
	    pf__uuid_parse(id, &u) != 0)
		return PF_EINVAL;
	return pf__standalone_create(&s->engine, &s->root, opts, &u, out);
}
