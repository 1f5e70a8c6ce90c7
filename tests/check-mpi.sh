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
prog=${PF_MPI_TEST_PROG:-./tests/mpi}
[ -x "$prog" ] || prog=$here/mpi
for np in ${PF_MPI_TEST_RANKS:-2 3 4}; do
	echo "check-mpi: $np ranks"
	if ! timeout 180 "$MPIRUN" -np "$np" "$prog"; then
		echo "check-mpi: FAILED with $np ranks"
		exit 1
	fi
done
# The example: the prime count over 2 ranks, checked against pi(2e6).
primes=./examples/mpi-primes
[ -x "$primes" ] || primes=$here/../examples/mpi-primes
if [ -x "$primes" ]; then
	echo "check-mpi: examples/mpi-primes on 2 ranks"
	timeout 180 "$MPIRUN" -np 2 "$primes" 2000000 || {
		echo "check-mpi: FAILED: examples/mpi-primes"
		exit 1
	}
fi
exit 0
