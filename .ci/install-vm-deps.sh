#!/bin/sh
# Installs what the VM suite (make test-vm, docs/vm-harness.md) needs on a
# Debian 12 machine, as root. Idempotent: when everything is present it
# returns without touching apt.
#
#   qemu-system-x86  qemu-system-x86_64 (TCG) boots the test kernel
#   busybox-static   the guest's init, shell and tools
#   cpio             checks vmrun's initramfs writer (tools/vmrun tests)
#   apparmor         apparmor_parser and aa-exec, copied into the guest
#   runc crun        container runtimes copied into the guest (OCI hook tests)
#   clang-14 llvm-14 bpf2go's compiler and llvm-strip (make generate-vmtest)
#   libbpf-dev       bpf_helpers.h and friends for BPF C
#   bpftool          vmlinux.h from BTF (make update-vmlinux-h)
#   bsdextrautils    column, for the timing table
#   e2fsprogs        mke2fs, copied into the guest (file-handle tests on ext4)
#   xz-utils         xz, which unpacks the 6.12 kernel's modules (*.ko.xz) for the initramfs
# The kernel itself is not installed: vmrun fetches it with apt-get download
# into .cache/vm.
set -eu
pkgs="qemu-system-x86 busybox-static cpio apparmor runc crun clang-14 llvm-14 libbpf-dev bpftool bsdextrautils e2fsprogs xz-utils"

missing=""
for p in $pkgs; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-vm-deps: all present"
	exit 0
fi

echo "install-vm-deps: installing$missing"
# Another apt may be running (unattended upgrades, a parallel job): wait
# for the lock instead of failing.
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2086 # a list of package names
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
