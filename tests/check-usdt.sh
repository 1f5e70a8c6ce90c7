#!/bin/sh
# The static probes, seen by a real tracer: bpftrace attaches to
# tests/usdt-fib (fib(15) with a tracked child per call: 1973 executions,
# then one execution its 1 ms timeout cancels) and the counts and
# arguments it reports must match the run exactly.
#
# Skips (exit 77) when not root, without bpftrace, or where BPF cannot run
# at all (bpftrace fails on an empty program); any other failure fails.
bin=./tests/usdt-fib
skip() {
	echo "check-usdt: SKIP: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "bpftrace needs root"
command -v bpftrace >/dev/null 2>&1 || skip "bpftrace not installed (Debian package bpftrace)"
bpftrace -e 'BEGIN { exit(); }' >/dev/null 2>&1 || skip "bpftrace cannot load a program here"
[ -x "$bin" ] || { echo "check-usdt: $bin not built" >&2; exit 1; }

out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
# exec_created: id (2 halves), parent id (2 halves), flow, depth;
# exec_started: id, flow, worker (-1: a thread not a worker, running it
# inline), pending ns; exec_finished: id, flow,
# status, error, run ns.
timeout 120 bpftrace -c "$bin" -e "
usdt:$bin:pumped:exec_created {
	@created[str(arg4)] = count();
	if (arg2 == 0 && arg3 == 0) {
		printf(\"root-id %016lx%016lx depth %d\n\", arg0, arg1, arg5);
	}
}
usdt:$bin:pumped:exec_started {
	@started[str(arg2)] = count();
	\$w = (int64)arg3;
	if (\$w < -1 || \$w > 1) { @bad_worker = count(); }
}
usdt:$bin:pumped:exec_finished {
	@finished[str(arg2), arg3, arg4] = count();
	if (arg5 < 0) { @bad_run = count(); }
}
usdt:$bin:pumped:timeout_fired { @timeouts = count(); }
usdt:$bin:pumped:ctx_aborted { @aborted[arg2] = count(); }
usdt:$bin:pumped:scope_created { @scopes[arg1] = count(); }
usdt:$bin:pumped:scope_disposed { @disposed = count(); }
" >"$out" 2>&1
rc=$?
cat "$out"
[ "$rc" -eq 0 ] || { echo "check-usdt: bpftrace exited $rc" >&2; exit 1; }

fail=0
expect() { # pattern, what
	if ! grep -q -- "$1" "$out"; then
		echo "check-usdt: FAIL: $2 (no line matching '$1')" >&2
		fail=1
	fi
}
# The program's own verdict (fib(15) = 610, the timeout) and its root id.
expect '^fib 15 = 610$' "the workload ran"
expect '^slow: ' "the timed-out execution ran"
root=$(sed -n 's/^root //p' "$out" | tr -d '-')
[ -n "$root" ] || { echo "check-usdt: FAIL: no root id printed" >&2; fail=1; }
expect "^root-id $root depth 0\$" "the root's created probe carries its id and no parent"
expect '^@created\[fib\]: 1973$' "1973 fib executions created"
expect '^@started\[fib\]: 1973$' "1973 fib executions started"
# status 2 = PF_COMPLETED, error 0.
expect '^@finished\[fib, 2, 0\]: 1973$' "1973 fib executions completed"
expect '^@created\[slow\]: 1$' "one slow execution"
# status 4 = PF_CANCELLED, error -110 = PF_ETIMEDOUT.
expect '^@finished\[slow, 4, -110\]: 1$' "the slow one cancelled by its timeout"
expect '^@timeouts: 1$' "one timeout fired"
expect '^@aborted\[-110\]: 1$' "one abort by a timeout"
expect '^@scopes\[2\]: 1$' "one scope of 2 threads created"
expect '^@disposed: 1$' "one scope disposed"
if grep -q "^@bad_[a-z]*: [1-9]" "$out"; then
	echo "check-usdt: FAIL: bad probe arguments" >&2
	fail=1
fi
exit $fail
