#!/usr/bin/env bash
# Runs the VM suite (docs/vm-harness.md): every package with vm-tagged tests,
# each test binary in its own VM through tools/vmrun, then the host-side
# harness tests (tag vmhost), and prints how long the VMs took. Packages whose
# VM tests carry the selinux tag too run in a second pass booted with the
# selinux profile.
#
# Environment: VM_TESTFLAGS (extra go test flags, e.g. -run), WARD_VM_KERNEL
# (a Debian kernel package instead of the newest), WARD_VM_BOOT_PROFILE.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
GO=${GO:-go}
export CGO_ENABLED=0 # static test binaries: the guest has no Go toolchain's libc

now() { date +%s.%N; }
suite_start=$(now)

"$GO" build -o bin/vmrun ./tools/vmrun
# Resolve and fetch the kernel and build the initramfs once, so the VMs
# below neither ask apt nor race to unpack the same package.
WARD_VM_KERNEL=$(bin/vmrun -prepare)
export WARD_VM_KERNEL
cache=${WARD_VM_CACHE:-$root/.cache/vm}
export WARD_VM_TIMINGS=$cache/timings.txt
log=$cache/test-vm.log
: >"$WARD_VM_TIMINGS"

# Packages with tests behind the vm build tag, found from the build lines
# rather than from file names so a mis-named file is not silently left out.
# Files that also need the selinux tag run in a second pass, below, in a VM
# booted with the selinux profile (SELinux and AppArmor cannot both be active).
mapfile -t pkgs < <(grep -rlE --include='*_test.go' --exclude-dir=.cache --exclude-dir=.git --exclude-dir=testdata \
	'^//go:build (.*[^!])?\bvm\b' . | xargs -r grep -LE '^//go:build .*\bselinux\b' | xargs -r -n1 dirname | sort -u)
mapfile -t selinux_pkgs < <(grep -rlE --include='*_test.go' --exclude-dir=.cache --exclude-dir=.git --exclude-dir=testdata \
	'^//go:build (.*[^!])?\bvm\b' . | xargs -r grep -lE '^//go:build .*\bselinux\b' | xargs -r -n1 dirname | sort -u)
if [ "${#pkgs[@]}" -eq 0 ]; then
	echo "test-vm: no packages with vm-tagged tests found" >&2
	exit 1
fi

status=0
# The in-VM benchmarks (BenchmarkReport, make bench-vm) run once too, after each package's
# tests in the same VM, with 1 % of their iterations: they keep working, and their figures,
# taken without bench mode, are thrown away.
# shellcheck disable=SC2086 # VM_TESTFLAGS is a list of flags
WARD_TEST_BENCH_SCALE=${WARD_TEST_BENCH_SCALE:-0.01} "$GO" test -count=1 -v -timeout 30m -tags vm -exec "$root/bin/vmrun" \
	-bench '^BenchmarkReport$' -benchtime 1x ${VM_TESTFLAGS:-} "${pkgs[@]}" 2>&1 | tee "$log" || status=1
if [ "${#selinux_pkgs[@]}" -gt 0 ]; then
	# shellcheck disable=SC2086 # VM_TESTFLAGS is a list of flags
	WARD_VM_BOOT_PROFILE=selinux "$GO" test -count=1 -v -timeout 30m -tags 'vm selinux' -exec "$root/bin/vmrun" ${VM_TESTFLAGS:-} \
		"${selinux_pkgs[@]}" 2>&1 | tee -a "$log" || status=1
fi
# A skipped kernel test has shown nothing: the VM suite does not skip.
if grep -E -- '--- SKIP' "$log"; then
	echo "test-vm: the tests above skipped inside the VM; VM tests must pass or fail" >&2
	status=1
fi
guest_end=$(now)
"$GO" test -count=1 -tags vmhost ./internal/vmtest || status=1
suite_end=$(now)

echo
echo "== VM timings (one line per VM; $WARD_VM_KERNEL, profile ${WARD_VM_BOOT_PROFILE:-apparmor}) =="
column -t -s $'\t' "$WARD_VM_TIMINGS" || cat "$WARD_VM_TIMINGS"
first=$(awk -F'started_unix=' 'NF > 1 && $2 != "-" { print $2 }' "$WARD_VM_TIMINGS" | sort -n | head -n1)
awk -v s="$suite_start" -v f="${first:-}" -v g="$guest_end" -v e="$suite_end" 'BEGIN {
	if (f != "") printf "start of make test-vm to the first guest test: %.1fs\n", f - s
	printf "guest VM suite: %.1fs; with the host-side harness tests: %.1fs\n", g - s, e - s
}'
exit "$status"
