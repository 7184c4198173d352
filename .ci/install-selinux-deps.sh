#!/bin/sh
# Installs what the SELinux backend's host tests and the selinux VM boot
# profile need on a Debian 12 machine, as root. Idempotent: when everything
# is present it returns without touching apt.
#
#   selinux-policy-default  Debian's reference policy, built into
#                           /etc/selinux/default/policy/policy.33 even though
#                           the host kernel does not run SELinux; the VM loads it
#   policycoreutils         semodule (installs Ward's module into a store),
#                           setfiles
#   selinux-utils           getenforce, chcon and friends
#   secilc                  compiles Ward's CIL module against the base policy
#   checkpolicy             checkmodule, and what semodule's store rebuild runs
#   semodule-utils          semodule_unpackage, to inspect modules
# Installing selinux-policy-default does not switch SELinux on for the host:
# the host kernel does not boot with selinux=1.
set -eu
pkgs="selinux-policy-default policycoreutils selinux-utils secilc checkpolicy semodule-utils"

missing=""
for p in $pkgs; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-selinux-deps: all present"
	exit 0
fi

echo "install-selinux-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2086 # a list of package names
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
