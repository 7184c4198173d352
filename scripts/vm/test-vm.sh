#!/usr/bin/env bash
# Runs the VM suite (docs/vm-harness.md): every package with vm-tagged tests,
# each test binary in its own VM through tools/vmrun, then the host-side
# harness tests (tag vmhost), and prints how long the VMs took. Packages whose
# VM tests carry the selinux tag too run again in a VM booted with the selinux
# profile. Two VMs run at a time, each on one host thread.
#
# The BPF-LSM and AppArmor packages run a second time on the newest 6.12 kernel
# (trixie's line, served to bookworm too), whose verifier checks loop callbacks
# as loops and whose AppArmor ranks attachments without 6.1's wraparound: the
# programs and profiles that work on 6.1 must load and enforce there too
# (docs/vm-harness.md, "Kernels").
#
# Environment: VM_TESTFLAGS (extra go test flags, e.g. -run), WARD_VM_KERNEL
# (a Debian kernel package or line instead of the newest 6.1), VM_NEWER_KERNEL
# (the second kernel, default 6.12; empty: none), WARD_VM_BOOT_PROFILE (the
# profile of the non-SELinux VMs), VM_LANES (VMs at a time, default 2).
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
newer_kernel=""
if [ -n "${VM_NEWER_KERNEL-6.12}" ]; then
	newer_kernel=$(bin/vmrun -prepare -kernel "${VM_NEWER_KERNEL-6.12}")
fi
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
# Every guest runs its CPUs on one host thread (single-threaded TCG). Multi-threaded TCG
# live-locked guests while BPF programs attached (CI: the BPF-LSM package hung for 30 min
# with both vCPUs spinning; docs/vm-harness.md), and a hung package fails the whole run.
# One host thread per VM, so two VMs run at once (VM_LANES) to keep both cores of a CI
# machine busy; each package is its own go test and its own log, printed in order at the end.
export WARD_VM_TCG_SINGLE=1
lanes=${VM_LANES:-2}
logdir=$cache/test-vm.logs
rm -rf "$logdir"
mkdir -p "$logdir"

# Jobs: "kernel profile tags package". The longest first, so the two lanes end close together;
# this is only an order, every package found above runs.
main_profile=${WARD_VM_BOOT_PROFILE:-apparmor}
jobs=()
for p in "${selinux_pkgs[@]}"; do jobs+=("$WARD_VM_KERNEL selinux vm,selinux $p"); done
heavy=(./internal/enforcer/bpflsm ./internal/daemon ./internal/enforcer/apparmor)
on_newer=" ./internal/enforcer/bpflsm ./internal/enforcer/apparmor "
for h in "${heavy[@]}"; do
	for p in "${pkgs[@]}"; do [ "$p" != "$h" ] || jobs+=("$WARD_VM_KERNEL $main_profile vm $p"); done
	if [[ "$on_newer" == *" $h "* ]] && [ -n "$newer_kernel" ]; then
		jobs+=("$newer_kernel $main_profile vm $h")
	fi
done
for p in "${pkgs[@]}"; do
	case " ${heavy[*]} " in *" $p "*) ;; *) jobs+=("$WARD_VM_KERNEL $main_profile vm $p") ;; esac
done

# The in-VM benchmarks (BenchmarkReport, make bench-vm) run once too, after each package's
# tests in the same VM, with 1 % of their iterations: they keep working, and their figures,
# taken without bench mode, are thrown away.
run_job() { # index kernel profile tags package
	local i=$1 kernel=$2 profile=$3 tags=$4 pkg=$5 out rc start
	out=$logdir/$(printf '%02d' "$i")-$(echo "$profile-$pkg-$kernel" | tr -c 'a-zA-Z0-9\n' '-').log
	start=$(now)
	rc=0
	# shellcheck disable=SC2086 # VM_TESTFLAGS is a list of flags
	WARD_VM_KERNEL=$kernel WARD_VM_BOOT_PROFILE=$profile WARD_TEST_BENCH_SCALE=${WARD_TEST_BENCH_SCALE:-0.01} \
		"$GO" test -count=1 -v -timeout 30m -tags "${tags//,/ }" -exec "$root/bin/vmrun" \
		-bench '^BenchmarkReport$' -benchtime 1x ${VM_TESTFLAGS:-} "$pkg" >"$out" 2>&1 || rc=$?
	awk -v s="$start" -v e="$(now)" -v p="$pkg" -v f="$profile" -v k="${kernel#linux-image-}" -v r="$rc" \
		'BEGIN { printf "test-vm: %-32s profile=%-8s kernel=%-20s exit=%d  %.0fs\n", p, f, k, r, e - s }'
	return "$rc"
}
running=0
for i in "${!jobs[@]}"; do
	if [ "$running" -ge "$lanes" ]; then
		wait -n || status=1
		running=$((running - 1))
	fi
	# shellcheck disable=SC2086 # a job is four words
	run_job "$i" ${jobs[$i]} &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || status=1
	running=$((running - 1))
done
cat "$logdir"/*.log >"$log"
cat "$log"
guest_end=$(now)
# The harness's own tests check vmrun's default (multi-threaded) arguments too.
env -u WARD_VM_TCG_SINGLE "$GO" test -count=1 -tags vmhost ./internal/vmtest || status=1
suite_end=$(now)

echo
echo "== VM timings (one line per VM; $WARD_VM_KERNEL${newer_kernel:+, BPF-LSM and AppArmor on $newer_kernel too}, profile ${WARD_VM_BOOT_PROFILE:-apparmor}) =="
column -t -s $'\t' "$WARD_VM_TIMINGS" || cat "$WARD_VM_TIMINGS"
first=$(awk -F'started_unix=' 'NF > 1 && $2 != "-" { print $2 }' "$WARD_VM_TIMINGS" | sort -n | head -n1)
awk -v s="$suite_start" -v f="${first:-}" -v g="$guest_end" -v e="$suite_end" 'BEGIN {
	if (f != "") printf "start of make test-vm to the first guest test: %.1fs\n", f - s
	printf "guest VM suite: %.1fs; with the host-side harness tests: %.1fs\n", g - s, e - s
}'
exit "$status"
