#!/bin/sh
# libpumped-mpi under mpirun: tests/mpi with 2, 3 and 4 ranks on this host,
# each run bounded by a timeout.  Skips (77) without mpirun.  As root (CI,
# containers) Open MPI needs its consent variables; oversubscription lets
# 4 ranks share 2 cores; vader's single-copy mechanism is off in containers
# (no ptrace/CMA there).
MPIRUN=${MPIRUN:-$(command -v mpirun)}
if [ -z "$MPIRUN" ] || [ ! -x "$MPIRUN" ]; then
	echo "check-mpi: no mpirun (Debian package openmpi-bin): skipped"
	exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# No network probing: one host.
export OMPI_MCA_btl=self,vader
here=$(dirname "$0")
# Sanitizer builds: Open MPI's own allocations live until exit, some in
# components it unloads; LeakSanitizer skips them by the suppressions
# (found through the full stacks of the slow unwinder), not ours;
# ThreadSanitizer skips Open MPI's uninstrumented transport.
export LSAN_OPTIONS="suppressions=$here/lsan-mpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
if [ -n "${TSAN_OPTIONS:-}" ]; then
	export TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$here/tsan-mpi.supp"
fi
if [ -n "${ASAN_OPTIONS:-}" ]; then
	export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
fi
fwd="-x LSAN_OPTIONS"
for v in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS PF_MPI_TEST_CASE; do
	eval "[ -n \"\${$v:-}\" ]" && fwd="$fwd -x $v"
done
prog=${PF_MPI_TEST_PROG:-./tests/mpi}
[ -x "$prog" ] || prog=$here/mpi
for np in ${PF_MPI_TEST_RANKS:-2 3 4}; do
	echo "check-mpi: $np ranks"
	# shellcheck disable=SC2086 # the -x options are words
	if ! timeout 300 "$MPIRUN" $fwd -np "$np" "$prog"; then
		echo "check-mpi: FAILED with $np ranks"
		exit 1
	fi
done
# A misuse that must not crash: a scope disposed before its detach.
echo "check-mpi: a scope disposed before detach"
# shellcheck disable=SC2086
if ! PF_MPI_TEST_DISPOSE_FIRST=1 timeout 120 "$MPIRUN" $fwd \
	-x PF_MPI_TEST_DISPOSE_FIRST -np 2 "$prog"; then
	echo "check-mpi: FAILED: dispose before detach"
	exit 1
fi
# The first request after a quiet spell: about one idle sleep, not two.
echo "check-mpi: the first request after idle"
# shellcheck disable=SC2086
if ! PF_MPI_TEST_IDLE=1 timeout 120 "$MPIRUN" $fwd -x PF_MPI_TEST_IDLE \
	-np 2 "$prog"; then
	echo "check-mpi: FAILED: first request after idle"
	exit 1
fi
# The example: the prime count over 2 ranks, checked against pi(2e6).
primes=./examples/mpi-primes
[ -x "$primes" ] || primes=$here/../examples/mpi-primes
if [ -x "$primes" ]; then
	echo "check-mpi: examples/mpi-primes on 2 ranks"
	# shellcheck disable=SC2086
	timeout 180 "$MPIRUN" $fwd -np 2 "$primes" 2000000 || {
		echo "check-mpi: FAILED: examples/mpi-primes"
		exit 1
	}
fi
# Traces of one job: one file per rank (the rank as pid, clocks aligned at
# attach), merged by pumped-trace into one timeline with arrows across
# ranks.
trace=./tools/pumped-trace
if [ -x "$primes" ] && [ -x "$trace" ]; then
	echo "check-mpi: traces of 3 ranks, merged"
	tdir=$(mktemp -d) || exit 1
	# shellcheck disable=SC2086
	PUMPED_TRACE="$tdir/job-%p.json" timeout 180 "$MPIRUN" $fwd \
		-x PUMPED_TRACE -np 3 "$primes" 3000000 >/dev/null &&
		"$trace" --merge "$tdir/job.json" "$tdir"/job-*.json &&
		"$trace" "$tdir/job.json" >"$tdir/summary" || {
		echo "check-mpi: FAILED: tracing the job"
		rm -rf "$tdir"
		exit 1
	}
	links=$(sed -n 's/^links across processes: //p' "$tdir/summary")
	procs=$(grep -c '"name":"process_name"' "$tdir/job.json")
	rm -rf "$tdir"
	if [ "$procs" != 3 ] || [ "${links:-0}" -lt 1 ]; then
		echo "check-mpi: FAILED: merged trace has $procs processes," \
			"${links:-no} links across them"
		exit 1
	fi
	echo "check-mpi: merged trace: 3 processes, $links links across them"
fi
exit 0
