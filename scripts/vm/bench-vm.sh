#!/usr/bin/env bash
# Runs the in-VM benchmarks and writes docs/performance.md (make bench-vm). Every package with a
# BenchmarkReport in a vm-tagged test file runs it in a VM booted with `vmrun -bench` (one CPU,
# guest clock counting instructions: figures independent of the host's load), BENCH_VM_RUNS
# times, each run its own boots, all side by side; tools/benchreport then writes the page from
# the runs' report lines, the first run's figures with the others' differences beside them.
#
# Environment: BENCH_VM_RUNS (default 2), WARD_TEST_BENCH_SCALE (iterations, default 1),
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

mapfile -t pkgs < <(grep -rlE --include='*_test.go' --exclude-dir=.cache --exclude-dir=.git --exclude-dir=testdata \
	'^func BenchmarkReport\(' . | xargs -r grep -lE '^//go:build (.*[^!])?\bvm\b' | xargs -r -n1 dirname | sort -u)
if [ -n "${BENCH_VM_PKGS:-}" ]; then
	read -r -a pkgs <<<"$BENCH_VM_PKGS"
fi
if [ "${#pkgs[@]}" -eq 0 ]; then
	echo "bench-vm: no vm-tagged BenchmarkReport found" >&2
	exit 1
fi
# Every (run, package) pair is its own go test, all side by side (one go test runs the
# benchmarks of its packages one after the other): guest time does not depend on what else the
# host runs, which the page's comparison of the runs then shows too.
rm -f "$cache"/bench-vm-*.txt
pids=()
outs=()
for i in $(seq 1 "$runs"); do
	for p in "${pkgs[@]}"; do
		f=$cache/bench-vm-$i-$(echo "${p#./}" | tr / -).txt
		outs+=("$f")
		echo "bench-vm: run $i of $runs, $p (output: $f)"
		"$GO" test -count=1 -timeout 60m -tags vm -exec "$root/bin/vmrun" -run '^$' -bench '^BenchmarkReport$' -benchtime 1x -v \
			"$p" >"$f" 2>&1 &
		pids+=($!)
	done
done
for j in "${!pids[@]}"; do
	if ! wait "${pids[$j]}"; then
		cat "${outs[$j]}"
		echo "bench-vm: ${outs[$j]} failed" >&2
		exit 1
	fi
done
files=()
for i in $(seq 1 "$runs"); do
	cat "$cache"/bench-vm-"$i"-*.txt >"$cache/bench-vm-$i.txt"
	files+=("$cache/bench-vm-$i.txt")
done
"$GO" run ./tools/benchreport -o "$out" -command "make bench-vm" -kernel "$WARD_VM_KERNEL" "${files[@]}"
echo "bench-vm: wrote $out"
