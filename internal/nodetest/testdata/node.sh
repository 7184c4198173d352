#!/bin/sh
# The node's job in the VM (vmrun -profile node): start containerd and the kubelet with the
# configuration the host test wrote, and run until the host asks to stop.
#
#	node.sh NODE_DIR K8S_BIN CONTAINERD_BIN IMAGES_DIR
#
# NODE_DIR (writable share) holds the host's files: containerd.toml, cni.conflist,
# kubelet.yaml, kubelet.conf, env (API_HOST, API_PORT), ward.tar, the test binary (nodetest.test,
# which serves the API proxy); the node writes its logs to NODE_DIR/log and "ready" when the
# kubelet runs, runs the host's commands from NODE_DIR/cmd, and stops when the host creates
# NODE_DIR/stop.
set -u
node=$1 k8s=$2 ctrd=$3 images=$4
log=$node/log
mkdir -p "$log" /usr/local/bin /opt/cni/bin /etc/cni/net.d /etc/containerd /var/lib/kubelet /etc/kubernetes
fail() {
	echo "node: $*" >&2
	for f in "$log"/*.log; do echo "== $f"; tail -n 30 "$f"; done >&2
	exit 1
}
. "$node/env" || fail "read env"

# containerd copies the node's /etc/hosts into every sandbox.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >/etc/hosts
: >/etc/resolv.conf

# Binaries on the tmpfs root rather than run from 9p: containerd re-executes its shim for every
# container.
cp "$k8s/kubelet" "$ctrd/containerd" "$ctrd/containerd-shim-runc-v2" "$ctrd/ctr" /usr/local/bin/ || fail "copy binaries"
cp "$ctrd/bridge" "$ctrd/host-local" "$ctrd/loopback" /opt/cni/bin/ || fail "copy CNI plugins"
cp "$node/cni.conflist" /etc/cni/net.d/10-ward.conflist || fail "CNI config"
cp "$node/containerd.toml" /etc/containerd/config.toml || fail "containerd config"
cp "$node/kubelet.yaml" "$node/kubelet.conf" /etc/kubernetes/ || fail "kubelet config"
cp "$node/nodetest.test" /usr/local/bin/ || fail "copy the test binary"

# Pods reach the API server as the "kubernetes" Service, 10.96.0.1:443 (the kubelet puts that
# in their environment). No kube-proxy runs here, so the node holds that address itself and the
# test binary relays it to the host's API server.
ip addr add 10.96.0.1/32 dev lo || fail "add the service address"
WARD_NODE_PROXY="10.96.0.1:443=$API_HOST:$API_PORT" /usr/local/bin/nodetest.test >"$log/proxy.log" 2>&1 &

# containerd attaches AppArmor profiles only where it finds the parser at /sbin/apparmor_parser
# (as on a Debian or Ubuntu node with merged /usr); the guest has it in /usr/sbin. Without it,
# containerd ignores RuntimeDefault and refuses every Localhost profile ("apparmor is not
# supported").
[ -e /sbin/apparmor_parser ] || { mkdir -p /sbin && ln -s /usr/sbin/apparmor_parser /sbin/apparmor_parser; } || fail "link apparmor_parser"
[ -d /sys/kernel/security/apparmor ] || fail "securityfs with apparmor not mounted before containerd"

containerd >"$log/containerd.log" 2>&1 &
i=0
until ctr version >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 120 ] || fail "containerd did not answer in 60 s"
	sleep 0.5
done
for img in "$images/pause.tar" "$images/busybox.tar" "$node/ward.tar"; do
	ctr -n k8s.io images import "$img" >>"$log/import.log" 2>&1 || fail "import $img"
done

# The kubelet is the node's largest user of CPU (22 % of the emulated node's busy time over a
# run of the suite, then containerd 18 %, the shims 14 %, Ward 13 %), and the guest is busy
# nearly all the time. cAdvisor reads every container's cgroup files each housekeeping interval
# (10 s by default), and each of those opens is also an event for Ward's system monitor. Nothing
# here uses the statistics (no metrics server; the eviction thresholds are far away): once a
# minute.
kubelet --config=/etc/kubernetes/kubelet.yaml --kubeconfig=/etc/kubernetes/kubelet.conf \
	--hostname-override=localhost --node-ip=10.0.2.15 --housekeeping-interval=1m --v=1 >"$log/kubelet.log" 2>&1 &
: >"$node/ready"

# Commands the host runs on the node, outside any pod (host policies, uninstall checks): the
# host writes cmd/N.sh, the node writes cmd/N.out and then cmd/N.rc, and renames N.sh N.sh.done.
# The wait between looks is a read that times out on a FIFO nobody writes, not a sleep: a
# sleep is a process five times a second, which Ward's system monitor reports as a host exec
# and the container runtime copies into Ward's log, and the emulated node has no CPU to spare.
mkdir -p "$node/cmd"
mkfifo /run/node-tick || fail "mkfifo"
until [ -e "$node/stop" ]; do
	for c in "$node"/cmd/*.sh; do
		[ -e "$c" ] || continue
		n=${c%.sh}
		[ -e "$n.rc" ] && continue
		sh "$c" >"$n.out" 2>&1 </dev/null
		echo $? >"$n.rc.tmp" && mv "$n.rc.tmp" "$n.rc"
		# Out of the glob's way: every look would stat each finished command over 9p again.
		mv "$c" "$c.done"
	done
	read -t 0.2 tick <>/run/node-tick
done
exit 0
