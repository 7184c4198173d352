#!/bin/sh
# PID 1 of the Ward test VM (see docs/vm-harness.md). It prepares the mounts
# every test may rely on, loads the 9p modules, mounts the host's shares,
# runs the boot profile's setup and then the job the host wrote, and powers
# off. The host reads the job's exit status from the run share; if this
# script stops early, no status is written and the host fails the run with
# the console tail, which holds the "ward-vm:" lines printed here.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

die() {
	echo "ward-vm: init: $*"
	sync
	poweroff -f
	sleep 60
}

# A profile that runs a container runtime wants a root runc can pivot_root
# out of, which the initramfs's rootfs is not: copy it into a tmpfs and start
# again from there (switch_root empties the old root and execs /init anew).
if [ -e /etc/ward/tmpfs-root ] && [ ! -e /.ward-tmpfs-root ]; then
	echo "ward-vm: copying the root to a tmpfs"
	mkdir -p /newroot
	mount -t tmpfs -o mode=0755 tmpfs /newroot || die "mount the tmpfs root"
	for f in /*; do
		[ "$f" = /newroot ] || cp -a "$f" /newroot/ || die "copy $f to the tmpfs root"
	done
	: >/newroot/.ward-tmpfs-root
	exec switch_root /newroot /init
fi

mount -t proc proc /proc || die "mount proc"
mount -t sysfs sysfs /sys || die "mount sysfs"
mount -t devtmpfs devtmpfs /dev || die "mount devtmpfs"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts || die "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || die "mount /dev/shm"
mount -t tmpfs -o mode=1777 tmpfs /tmp || die "mount /tmp"
mount -t tmpfs -o mode=0755 tmpfs /run || die "mount /run"
mount -t securityfs securityfs /sys/kernel/security || die "mount securityfs"
mount -t bpf bpf /sys/fs/bpf || die "mount bpffs"
mount -t tracefs tracefs /sys/kernel/tracing || die "mount tracefs"
# The unified cgroup hierarchy, as systemd mounts it: container runtimes put
# each container in its own cgroup here, and BPF-LSM keys workloads on its id.
mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "mount cgroup2"
ip link set lo up || die "bring up lo"

while read -r mod; do
	insmod "/lib/modules/$mod" || die "insmod $mod"
done </lib/modules/load.list

mkdir -p /run/ward
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 ward-run /run/ward || die "mount the run share"

# Bench mode (vmrun -bench): no address space randomisation either, so that
# two boots lay processes out alike; tests read WARD_VM_BENCH.
case " $(cat /proc/cmdline) " in
*" ward.bench=1 "*)
	echo 0 >/proc/sys/kernel/randomize_va_space || die "randomize_va_space"
	export WARD_VM_BENCH=1
	;;
esac

# The boot profile's checks and setup (the LSMs it promises, policy loading).
. /etc/ward/profile.sh

# The job: mounts the source share, sets the environment and working
# directory, runs the command and writes its exit status.
echo "ward-vm: start"
. /run/ward/job.sh
echo "ward-vm: done"
sync
poweroff -f
sleep 60
