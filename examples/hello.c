/*
 * hello.c: the smallest libpumped program.  A typed flow, run on a scope's
 * pool twice: once with pf_scope_run (exec + wait + release in one call),
 * once through an execution handle, to look at what the library tracked.
 *
 * Build against an installed libpumped:
 *   cc -std=c11 hello.c $(pkg-config --cflags --libs pumped)
 * It is also valid C++ (CI compiles it with c++ -std=c++17).
 */
#include <stdio.h>
#include <string.h>

#include <pumped.h>

typedef struct greet_in {
	char who[32];
} greet_in;

typedef struct greeting {
	char text[64];
} greeting;

/* A handler: runs on a worker thread; writes its output and returns 0. */
static int
greet(pf_ctx *ctx, const greet_in *in, greeting *out)
{
	(void)ctx;
	snprintf(out->text, sizeof out->text, "hello, %s", in->who);
	return 0;
}

/* Defines `greet_flow` (named "greet_flow") and typed wrappers such as
 * greet_flow_scope_run(); a handler of the wrong type does not compile. */
PF_FLOW(greet_flow, greet_in, greeting, greet)

int
main(void)
{
	pf_scope *scope;
	int rc = pf_scope_create(&scope, NULL); /* NULL: default options */
	if (rc != 0) {
		fprintf(stderr, "pf_scope_create: %s\n", pf_strerror(rc));
		return 1;
	}

	/* 1. The one-liner: the input is copied, the output written on
	 * success. */
	greet_in in = { "world" };
	greeting out;
	rc = greet_flow_scope_run(scope, &in, &out, NULL);
	if (rc != 0 || strcmp(out.text, "hello, world") != 0) {
		fprintf(stderr, "hello: run returned %s\n", pf_strerror(rc));
		return 1;
	}
	printf("%s (on %u threads)\n", out.text, pf_scope_threads(scope));

	/* 2. The same through a handle: an id, a status, timestamps. */
	greet_in in2 = { "libpumped" };
	pf_exec_options opts;
	memset(&opts, 0, sizeof opts); /* (not { .name = ... }: C++ too) */
	opts.name = "greet-again";
	pf_exec *e;
	rc = pf_scope_exec(scope, &greet_flow, &in2, &opts, &e);
	if (rc != 0) {
		fprintf(stderr, "pf_scope_exec: %s\n", pf_strerror(rc));
		return 1;
	}
	rc = pf_exec_wait(e, &out);
	pf_ctx *c = pf_exec_ctx(e);
	printf("%s: %s, execution %s (%s of flow %s) took %.3f ms\n",
	    out.text, pf_status_name(pf_exec_status(e)), pf_exec_id(e),
	    pf_ctx_name(c), pf_exec_flow_name(e),
	    (double)(pf_ctx_completed_at(c) - pf_ctx_started_at(c)) / 1e6);
	bool ok = rc == 0 && pf_exec_status(e) == PF_COMPLETED &&
	    strcmp(out.text, "hello, libpumped") == 0 &&
	    strlen(pf_exec_id(e)) == 36 &&
	    strcmp(pf_ctx_name(c), "greet-again") == 0 &&
	    strcmp(pf_exec_flow_name(e), "greet_flow") == 0 &&
	    pf_ctx_completed_at(c) >= pf_ctx_started_at(c) &&
	    pf_ctx_started_at(c) >= pf_ctx_created_at(c);
	pf_exec_release(e);

	pf_scope_dispose(scope);
	if (!ok) {
		fprintf(stderr, "hello: unexpected result\n");
		return 1;
	}
	return 0;
}
