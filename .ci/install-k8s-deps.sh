#!/bin/sh
# Installs what the Kubernetes tests (make test-kube, docs/kubernetes.md) need on a Debian 12
# machine, as root. Idempotent: when everything is present it returns without touching apt.
#
#   etcd-server   etcd 3.4, the store kube-apiserver runs against on loopback
#
# kube-apiserver itself is not a package: make test-kube builds it from the k8s.io/kubernetes Go
# module (tools/kube-apiserver) into ~/.cache/ward/k8s (outside the clone, so CI's fresh clones
# reuse it; docs/kubernetes.md). kubectl is optional: TestKubectlDryRun uses it when it is on the
# PATH and client-go's server-side dry run otherwise.
set -eu
pkgs="etcd-server"

missing=""
for p in $pkgs; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-k8s-deps: all present"
	exit 0
fi

echo "install-k8s-deps: installing$missing"
# Another apt may be running (unattended upgrades, a parallel job): wait
# for the lock instead of failing.
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2086 # a list of package names
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
# Debian's package starts a system etcd on 2379; the tests start their own on random loopback
# ports and need no service running.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q etcd 2>/dev/null; then
	systemctl disable --now etcd || true
fi
