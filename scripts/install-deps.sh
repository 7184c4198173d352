#!/bin/sh
# Installs everything Ward's build and tests need on a fresh Debian 12 machine, as root, and is
# quick when everything is there already. Go itself is expected at /usr/local/go or on PATH.
#
#   apparmor           apparmor_parser: every generated profile is compiled by the real parser
#   protobuf-compiler  protoc, to check that the generated gRPC code is current
#   make, git          the build entry points
# plus the VM suite's packages (.ci/install-vm-deps.sh: qemu, busybox, clang, libbpf, ...), the
# SELinux tools and reference policy (.ci/install-selinux-deps.sh) and etcd for the real API server
# tests (.ci/install-k8s-deps.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkgs="apparmor protobuf-compiler make git"
missing=""
for p in $pkgs; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -q
	# shellcheck disable=SC2086 # a list of package names
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
fi
sh "$here/../.ci/install-vm-deps.sh"
sh "$here/../.ci/install-selinux-deps.sh"
sh "$here/../.ci/install-k8s-deps.sh"
