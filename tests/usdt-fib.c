/*
 * usdt-fib: the workload tests/check-usdt.sh traces with bpftrace.
 *
 * fib(15) with a tracked child execution per call (1973 executions, the
 * root included), then one execution that its 1 ms timeout cancels.  It
 * prints the root's id and the result, which the script checks against
 * what the probes saw.  Linked statically (tests/Makefile.inc), so that
 * the probes are in the executable that bpftrace -c starts.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pumped.h"

static int fib_handler(pf_ctx *c, const void *in, void *out);

static const pf_flow fib_flow = { "fib", fib_handler, sizeof(int),
	sizeof(long) };

static int
fib_handler(pf_ctx *c, const void *in, void *out)
{
	int n = *(const int *)in;
	if (n < 2) {
		*(long *)out = n;
		return 0;
	}
	int n1 = n - 1, n2 = n - 2;
	long a = 0, b = 0;
	pf_exec *e;
	int rc = pf_ctx_exec(c, &fib_flow, &n1, NULL, &e);
	if (rc != 0)
		return rc;
	int rc2 = pf_ctx_run(c, &fib_flow, &n2, &b, NULL);
	rc = pf_exec_wait(e, &a);
	pf_exec_release(e);
	if (rc != 0 || rc2 != 0)
		return rc != 0 ? rc : rc2;
	*(long *)out = a + b;
	return 0;
}

/* Runs until aborted (its timeout). */
static int
slow_handler(pf_ctx *c, const void *in, void *out)
{
	(void)in, (void)out;
	struct timespec ms = { 0, 1000000 };
	while (!pf_ctx_aborted(c))
		nanosleep(&ms, NULL);
	return pf_ctx_throw_if_aborted(c);
}

static const pf_flow slow_flow = { "slow", slow_handler, 0, 0 };

int
main(void)
{
	pf_scope_options o;
	memset(&o, 0, sizeof(o));
	o.threads = 2;
	pf_scope *s;
	int rc = pf_scope_create(&s, &o);
	if (rc != 0) {
		fprintf(stderr, "usdt-fib: pf_scope_create: %s\n",
		    pf_strerror(rc));
		return 1;
	}
	int n = 15;
	long r = 0;
	pf_exec *e;
	rc = pf_scope_exec(s, &fib_flow, &n, NULL, &e);
	if (rc == 0) {
		printf("root %s\n", pf_exec_id(e));
		rc = pf_exec_wait(e, &r);
		pf_exec_release(e);
	}
	printf("fib %d = %ld\n", n, r);
	pf_exec_options t;
	memset(&t, 0, sizeof(t));
	t.timeout_ms = 1;
	int rc2 = pf_scope_run(s, &slow_flow, NULL, NULL, &t);
	printf("slow: %s\n", pf_strerror(rc2));
	pf_scope_dispose(s);
	return rc == 0 && r == 610 && rc2 == PF_ETIMEDOUT ? 0 : 1;
}
