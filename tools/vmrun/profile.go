package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// bootProfile is one way of booting the test VM: the kernel command line, the
// LSMs that must then be active, and what the guest needs to use them. Adding
// a profile (selinux, say) means adding a value to profiles; nothing else in
// the harness knows about a particular LSM.
type bootProfile struct {
	Name string
	// Cmdline is appended to the harness's own kernel arguments.
	Cmdline []string
	// LSMs must all appear in /sys/kernel/security/lsm, or the guest stops
	// before running the test: a profile that silently boots without its LSM
	// would let every enforcement test pass for the wrong reason.
	LSMs []string
	// Tools are host executables copied into the initramfs at the same path,
	// with the shared libraries ldd reports.
	Tools []string
	// Trees are host files or directories copied in as they are
	// (configuration, policy).
	Trees []string
	// Modules are extra kernel modules to load at boot, by name.
	Modules []string
	// Setup is shell run by the guest's init after the standard mounts and
	// before the test (for example: mount selinuxfs and load a policy).
	Setup string
	// Files builds files on the host (a binary policy, say) and returns them
	// by their path in the archive. cacheDir is vmrun's cache, for results
	// too slow to rebuild on every boot.
	Files func(cacheDir string) (map[string][]byte, error)
	// Service runs on the host while the guest runs, on requests the guest
	// leaves in dir (the run share's service/ directory, $WARD_VM_SERVICE in
	// the guest), until ctx ends: work that gives the same bytes on either
	// side and is many times slower under emulation (selinuxService).
	Service func(ctx context.Context, dir string)
	// TmpfsRoot copies the initramfs into a tmpfs and switch_roots into it
	// before anything else: runc's pivot_root cannot leave an initramfs
	// root, so a guest that runs a container runtime unmodified needs it.
	TmpfsRoot bool
	// Network gives the guest a virtio NIC on qemu's user network (guest
	// 10.0.2.15, host 10.0.2.2) instead of none; vmrun's -hostfwd flags
	// forward host ports into it.
	Network bool
}

// profiles lists the boot profiles.
var profiles = map[string]bootProfile{
	"apparmor": {
		Name:    "apparmor",
		Cmdline: []string{"lsm=landlock,lockdown,yama,apparmor,bpf"},
		LSMs:    []string{"apparmor", "bpf"},
		// runc and crun (Debian's) run containers from a busybox rootfs for the
		// OCI hook tests (docs/containers.md): no image registry is involved.
		// mke2fs makes the ext4 file system whose dentries the file-handle
		// tests evict (tmpfs never drops its own).
		Tools: []string{"/usr/sbin/apparmor_parser", "/usr/bin/aa-exec", "/usr/sbin/runc", "/usr/bin/crun", "/usr/sbin/mke2fs"},
		Trees: apparmorTrees,
		// The bypass suites mount an overlay over a protected directory, and
		// an ext4 image on a loop device.
		Modules: []string{"overlay", "crc32c_generic", "libcrc32c", "ext4", "loop"},
		Setup:   "[ -d /sys/kernel/security/apparmor ] || die 'apparmor: /sys/kernel/security/apparmor is missing'",
	},
	// node boots a Kubernetes node (docs/kubernetes.md, "A real node"): AppArmor
	// and BPF-LSM both active, so one boot serves Ward's lsm=bpf and
	// lsm=apparmor, a writable tmpfs root that runc can pivot_root out of,
	// cgroup v2 with the controllers the kubelet asks for, shared mount
	// propagation, and the modules containerd and the CNI bridge use. The
	// container runtime and the kubelet come from the job (the host test
	// shares them in); runc and apparmor_parser (containerd loads its default
	// profile with it) are Debian's.
	"node": {
		Name:      "node",
		Cmdline:   []string{"lsm=landlock,lockdown,yama,apparmor,bpf", "no_timer_check"},
		LSMs:      []string{"apparmor", "bpf"},
		Tools:     []string{"/usr/sbin/apparmor_parser", "/usr/sbin/runc"},
		Trees:     apparmorTrees,
		Modules:   []string{"virtio_net", "overlay", "veth", "bridge", "br_netfilter"},
		TmpfsRoot: true,
		Network:   true,
		Setup:     nodeSetup,
	},
	// selinux boots SELinux (AppArmor cannot be active beside it) with
	// Debian's reference policy plus Ward's static module, enforcing. See
	// selinuxFiles and docs/selinux.md.
	"selinux": {
		Name:    "selinux",
		Cmdline: []string{"security=selinux", "selinux=1", "enforcing=0", "lsm=landlock,lockdown,yama,selinux,bpf"},
		LSMs:    []string{"selinux", "bpf"},
		Files:   selinuxFiles,
		// The backend's VM tests rebuild the policy when a module has
		// fromSource domains; the host's secilc does it (selinuxService).
		Service: selinuxService,
		// mke2fs, ext4 and loop: the bypass suite's file-handle case (see apparmor).
		Tools:   []string{"/usr/sbin/mke2fs"},
		Modules: []string{"overlay", "crc32c_generic", "libcrc32c", "ext4", "loop"},
		Setup:   selinuxSetup,
	},
}

// apparmorTrees is what apparmor_parser reads besides the profile it is given.
var apparmorTrees = []string{
	"/etc/apparmor",
	// parser.conf pins the policy feature ABI to this file.
	"/usr/share/apparmor-features",
	"/etc/apparmor.d/abi",
	"/etc/apparmor.d/abstractions",
	"/etc/apparmor.d/tunables",
}

// nodeSetup prepares the node profile's guest for containerd and the kubelet.
const nodeSetup = `[ -d /sys/kernel/security/apparmor ] || die 'node: /sys/kernel/security/apparmor is missing'
# The kubelet puts pods under the root cgroup and expects these controllers
# there; a busybox init enables none.
for c in cpuset cpu io memory hugetlb pids; do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || die "node: enable cgroup controller $c"
done
# A busybox init leaves mounts private; the kubelet refuses Bidirectional
# host paths then, and HostToContainer ones see nothing new.
mount --make-rshared / || die 'node: mount --make-rshared /'
ip link set eth0 up || die 'node: no eth0'
ip addr add 10.0.2.15/24 dev eth0 || die 'node: address eth0'
ip route add default via 10.0.2.2 || die 'node: default route'
echo 1 >/proc/sys/net/ipv4/ip_forward || die 'node: ip_forward'
mkdir -p /var/lib /var/log /etc/kubernetes /opt/cni/bin /etc/cni/net.d
`

func lookupProfile(name string) (bootProfile, error) {
	p, ok := profiles[name]
	if !ok {
		names := make([]string, 0, len(profiles))
		for n := range profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		return bootProfile{}, fmt.Errorf("unknown boot profile %q (have: %s)", name, strings.Join(names, ", "))
	}
	return p, nil
}

// guestScript is the profile's part of the guest init: check the LSMs, then
// run Setup.
func (p bootProfile) guestScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export WARD_VM_PROFILE=%s\n", shellQuote(p.Name))
	b.WriteString("lsms=\",$(cat /sys/kernel/security/lsm),\"\n")
	for _, l := range p.LSMs {
		fmt.Fprintf(&b, "case \"$lsms\" in *,%s,*) ;; *) die \"profile %s: LSM %s is not active (lsm=$lsms)\" ;; esac\n", l, p.Name, l)
	}
	if p.Setup != "" {
		b.WriteString(p.Setup)
		b.WriteString("\n")
	}
	return b.String()
}

// shellQuote quotes s for POSIX sh so it stays one word, whatever it holds.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
