#!/usr/bin/env bash
# Runs the in-VM benchmarks and writes docs/performance.md (make bench-vm). Every package with a
# BenchmarkReport in a vm-tagged test file runs it in a VM booted with `vmrun -bench` (one CPU,
# guest clock counting instructions: figures independent of the host's load), BENCH_VM_RUNS
# times, each run its own boots, all side by side; tools/benchreport then writes the page from
# the runs' report lines, the first run's figures with the others' differences beside them.
#
# Environment: BENCH_VM_RUNS (default 2), BENCH_VM_JOBS (VMs at a time, default 0: all),
# WARD_TEST_BENCH_SCALE (iterations, default 1),
# BENCH_VM_OUT (default docs/performance.md), BENCH_VM_PKGS (the packages, default every one
# with a BenchmarkReport), WARD_VM_KERNEL.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
GO=${GO:-go}
export CGO_ENABLED=0
runs=${BENCH_VM_RUNS:-2}
out=${BENCH_VM_OUT:-docs/performance.md}

"$GO" build -o bin/vmrun ./tools/vmrun
WARD_VM_KERNEL=$(bin/vmrun -prepare)
export WARD_VM_KERNEL WARD_VM_BENCH=1
cache=${WARD_VM_CACHE:-$root/.cache/vm}
mkdir -p "$cache"
# This run's files live in a directory of their own, so that two runs sharing the cache (two
# worktrees, say) do not delete or mix each other's outputs.
work=$(mktemp -d "$cache/bench-vm.XXXXXX")
echo "bench-vm: outputs in $work"

mapfile -t pkgs < <(grep -rlE --include='*_test.go' --exclude-dir=.cache --exclude-dir=.git --exclude-dir=testdata \
	'^func BenchmarkReport\(' . | xargs -r grep -lE '^//go:build (.*[^!])?\bvm\b' | xargs -r -n1 dirname | sort -u)
if [ -n "${BENCH_VM_PKGS:-}" ]; then
	read -r -a pkgs <<<"$BENCH_VM_PKGS"
fi
if [ "${#pkgs[@]}" -eq 0 ]; then
	echo "bench-vm: no vm-tagged BenchmarkReport found" >&2
	exit 1
fi
# Work a package's benchmarks need but do not measure, and that is slow under the
# instruction-counting clock (compiling the AppArmor profiles), runs first in an ordinary boot:
# its BenchmarkPrepare writes into $prepared, which the BenchmarkReport boots read.
prepared=$work/prepared
mkdir -p "$prepared"
export WARD_TEST_BENCH_PREPARED=$prepared
for p in "${pkgs[@]}"; do
	if grep -qE '^func BenchmarkPrepare\(' "$p"/*_test.go; then
		f=$work/prepare-$(echo "${p#./}" | tr / -).txt
		echo "bench-vm: prepare $p (output: $f)"
		if ! WARD_VM_BENCH='' "$GO" test -count=1 -timeout 30m -tags vm -exec "$root/bin/vmrun -share $prepared:rw" \
			-run '^$' -bench '^BenchmarkPrepare$' -benchtime 1x -v "$p" >"$f" 2>&1; then
			cat "$f"
			echo "bench-vm: $f failed" >&2
			exit 1
		fi
	fi
done
# Every (run, package) pair is its own go test, BENCH_VM_JOBS of them at a time (default: all
# side by side; one go test runs the benchmarks of its packages one after the other): guest
# time does not depend on what else the host runs, which the page's comparison of the runs
# then shows too.
jobs=${BENCH_VM_JOBS:-0}
outs=()
for i in $(seq 1 "$runs"); do
	for p in "${pkgs[@]}"; do
		f=$work/run-$i-$(echo "${p#./}" | tr / -).txt
		outs+=("$f")
		while [ "$jobs" -gt 0 ] && [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
			wait -n || true
		done
		echo "bench-vm: run $i of $runs, $p (output: $f)"
		(
			rc=0
			"$GO" test -count=1 -timeout 60m -tags vm -exec "$root/bin/vmrun -share $prepared" -run '^$' -bench '^BenchmarkReport$' -benchtime 1x -v \
				"$p" >"$f" 2>&1 || rc=$?
			echo "$rc" >"$f.rc"
		) &
	done
done
wait
for f in "${outs[@]}"; do
	if [ "$(cat "$f.rc" 2>/dev/null)" != 0 ]; then
		cat "$f"
		echo "bench-vm: $f failed" >&2
		exit 1
	fi
done
files=()
for i in $(seq 1 "$runs"); do
	cat "$work"/run-"$i"-*.txt >"$work/run-$i.txt"
	files+=("$work/run-$i.txt")
done
command="make bench-vm"
if [ -n "${BENCH_VM_PKGS:-}" ]; then
	command="BENCH_VM_PKGS='$BENCH_VM_PKGS' $command"
fi
"$GO" run ./tools/benchreport -o "$out" -command "$command" -kernel "$WARD_VM_KERNEL" "${files[@]}"
echo "bench-vm: wrote $out"
