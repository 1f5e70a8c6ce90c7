/*
 * dump.c: pf_scope_dump (dump.h).
 *
 * The walk (pf__ctx_walk) holds a reference on each record it visits and a
 * node's lock only while it looks for the next child, so workers never
 * wait for the output.  Every field is read with the ordering its owner
 * publishes it with (status: acquire; timestamps: acquire/relaxed), so a
 * line is a consistent-enough snapshot of a record that keeps moving.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ctx.h"
#include "dump.h"
#include "env.h"
#include "exec.h"

/* Warning thresholds, in ms (PUMPED_DUMP_*_MS). */
typedef struct limits {
	int64_t slow_ns, starved_ns, grace_ns;
} limits;

typedef struct dump_state {
	FILE *out;
	unsigned flags;
	unsigned threads;
	int64_t now;
	limits lim;
	/* Printed ancestors per tree depth: finished records are skipped,
	 * their live descendants indented under the nearest printed one. */
	unsigned *shown;
	unsigned shown_cap;
	bool oom;
	size_t lines, warnings;
	bool first_json;
} dump_state;

enum { W_SLOW = 1, W_IGNORES_ABORT = 2, W_STARVED = 4 };

/* Text lines indent at most this many levels. */
#define MAX_INDENT 32u

static const char *
kind_text(const pf_ctx *c)
{
	switch (c->kind) {
	case PF__CTX_FLOW:
		return "flow";
	case PF__CTX_FN:
		return "fn";
	case PF__CTX_STANDALONE:
		return "context";
	default:
		return "root";
	}
}

static void
json_text(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Text lines keep names printable: control bytes become '?'. */
static void
plain_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

static double
ms(int64_t ns)
{
	return (double)ns / 1e6;
}

static void
visit(pf_ctx *c, unsigned depth, void *arg)
{
	dump_state *d = arg;
	if (depth + 1 > d->shown_cap) {
		unsigned cap = d->shown_cap != 0 ? 2 * d->shown_cap : 64;
		while (cap < depth + 1)
			cap *= 2;
		unsigned *t = realloc(d->shown, cap * sizeof(*t));
		if (t == NULL) {
			d->oom = true;
			return;
		}
		/* Zeroed: index 0 (the root, never shown) is read as such. */
		memset(t + d->shown_cap, 0, (cap - d->shown_cap) * sizeof(*t));
		d->shown = t;
		d->shown_cap = cap;
	}
	unsigned above = depth > 0 ? d->shown[depth - 1] : 0;
	d->shown[depth] = above;

	const char *status;
	bool running = false, pending = false;
	int64_t started = pf__load_acquire(&c->started_at);
	unsigned worker = 0; /* index + 1; 0: not a worker, or unknown */
	if (c->kind == PF__CTX_FLOW) {
		pf_exec *e = (pf_exec *)c;
		uint32_t st = pf__status_of(pf__exec_word(e));
		if (st >= PF_COMPLETED)
			return; /* finished, held by a handle */
		status = st == PF_PENDING ? "pending" : "running";
		running = st == PF_RUNNING;
		pending = st == PF_PENDING;
		worker = pf__load_relaxed(&c->where);
		if (pending)
			started = 0;
	} else {
		if (pf__load_acquire(&c->completed_at) != 0)
			return;
		status = "running";
		running = true;
	}
	d->shown[depth] = above + 1;
	int64_t age = pf__clock_raw_span_ns(c->created_at, d->now);
	int64_t wait = pending ? age :
	    started != 0 ? pf__clock_raw_span_ns(c->created_at, started) : 0;
	int64_t run = running && started != 0 ?
	    pf__clock_raw_span_ns(started, d->now) : 0;
	int reason = pf__ctx_abort_reason(c);
	unsigned w = 0;
	if (running && run > d->lim.slow_ns)
		w |= W_SLOW;
	/* The abort's own time is not kept: measured from the start, a
	 * handler that ran past the grace period since it started and is
	 * still running while aborted has at least not returned promptly. */
	if (running && reason != 0 && run > d->lim.grace_ns)
		w |= W_IGNORES_ABORT;
	if (pending && age > d->lim.starved_ns)
		w |= W_STARVED;
	if (w != 0)
		d->warnings++;
	d->lines++;
	char id[PF__UUID_TEXT_LEN + 1];
	pf__uuid_format(&c->id, id);
	const char *name = pf__ctx_name(c);
	FILE *f = d->out;
	if (d->flags & PF_DUMP_JSON) {
		fputs(d->first_json ? "\n" : ",\n", f);
		d->first_json = false;
		const pf_ctx *p = c->parent;
		char pid[PF__UUID_TEXT_LEN + 1];
		fprintf(f, "{\"id\":\"%s\",\"parent\":", id);
		if (p != NULL && p->kind != PF__CTX_ROOT) {
			pf__uuid_format(&p->id, pid);
			fprintf(f, "\"%s\"", pid);
		} else {
			fputs("null", f);
		}
		fprintf(f, ",\"depth\":%u,\"kind\":\"%s\",\"name\":", above,
		    kind_text(c));
		json_text(f, name != NULL ? name : "");
		fprintf(f, ",\"status\":\"%s\",\"age_ms\":%.3f,"
			   "\"pending_ms\":%.3f,\"running_ms\":%.3f,"
			   "\"worker\":%d,\"abort_reason\":%d,\"warnings\":[",
		    status, ms(age), ms(wait), ms(run),
		    worker != 0 ? (int)worker - 1 : -1, reason);
		const char *sep = "";
		if (w & W_SLOW)
			fprintf(f, "%s\"slow\"", sep), sep = ",";
		if (w & W_IGNORES_ABORT)
			fprintf(f, "%s\"ignores_abort\"", sep), sep = ",";
		if (w & W_STARVED)
			fprintf(f, "%s\"starved\"", sep);
		fputs("]}", f);
		return;
	}
	/* Indented up to MAX_INDENT levels, so a deep chain's dump grows
	 * linearly; deeper lines say their depth instead. */
	for (unsigned i = 0; i < above && i < MAX_INDENT; i++)
		fputs("  ", f);
	if (above > MAX_INDENT)
		fprintf(f, "[depth %u] ", above);
	fprintf(f, "- %s %s ", id, kind_text(c));
	plain_text(f, name != NULL ? name : "");
	fprintf(f, " %s age %.3f ms", status, ms(age));
	if (!pending)
		fprintf(f, " pending %.3f ms", ms(wait));
	else
		fprintf(f, " (pending)");
	if (running && c->kind == PF__CTX_FLOW) {
		if (worker != 0)
			fprintf(f, " on %s %u", worker - 1 < d->threads ?
			    "worker" : "spare", worker - 1);
		else
			fputs(" on a thread not a worker", f);
	}
	if (reason != 0)
		fprintf(f, " aborted (%s)", pf_strerror(reason));
	if (w & W_SLOW)
		fprintf(f, " [SLOW: running %.3f ms]", ms(run));
	if (w & W_IGNORES_ABORT)
		fputs(" [IGNORES ABORT: still running]", f);
	if (w & W_STARVED)
		fprintf(f, " [STARVED: pending %.3f ms]", ms(age));
	fputc('\n', f);
}

int
pf__dump(pf_ctx *root, unsigned threads, FILE *out, unsigned flags)
{
	dump_state d;
	memset(&d, 0, sizeof(d));
	d.out = out;
	d.flags = flags;
	d.threads = threads;
	d.first_json = true;
	d.lim.slow_ns = (int64_t)pf__env_uint("PUMPED_DUMP_SLOW_MS", 0,
	    86400000, 1000) * 1000000;
	d.lim.starved_ns = (int64_t)pf__env_uint("PUMPED_DUMP_STARVED_MS", 0,
	    86400000, 1000) * 1000000;
	d.lim.grace_ns = (int64_t)pf__env_uint("PUMPED_DUMP_GRACE_MS", 0,
	    86400000, 100) * 1000000;
	d.now = pf__clock_raw();
	if (flags & PF_DUMP_JSON)
		fputs("{\"executions\":[", out);
	pf__ctx_walk(root, visit, &d);
	if (flags & PF_DUMP_JSON)
		fprintf(out, "%s],\"count\":%zu,\"warnings\":%zu}\n",
		    d.first_json ? "" : "\n", d.lines, d.warnings);
	else
		fprintf(out, "%zu live, %zu with warnings\n", d.lines,
		    d.warnings);
	free(d.shown);
	fflush(out);
	if (d.oom)
		return PF_ENOMEM;
	return ferror(out) ? PF_EINVAL : 0;
}
