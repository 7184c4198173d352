package enforcer

import (
	"sync"

	"golang.org/x/sys/unix"
)

// MountNS returns the mount namespace (the inode of /proc/<pid>/ns/mnt, as
// workload.ReadKernelIdentity reads it) of a process; pid "self" is Ward's.
func MountNS(pid string) (uint32, bool) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+pid+"/ns/mnt", &st); err != nil {
		return 0, false
	}
	return uint32(st.Ino), true
}

// ProcessNamespaces returns Ward's own mount namespace and pid 1's, read once: neither changes
// while Ward runs, and the backends ask at every apply. init is 0 when pid 1's is not readable;
// ok is false when Ward's own is not.
func ProcessNamespaces() (own, init uint32, ok bool) {
	ns := processNamespaces()
	return ns.own, ns.init, ns.ok
}

var processNamespaces = sync.OnceValue(func() (ns struct {
	own, init uint32
	ok        bool
}) {
	ns.own, ns.ok = MountNS("self")
	ns.init, _ = MountNS("1")
	return ns
})

// HostRoot is the directory below which Ward reads the host's files as the host's processes see
// them: pid 1's root (/proc/1/root) when Ward runs in another mount namespace than pid 1 (a pod
// with hostPID, deploy/daemonset.yaml), and "/" when it runs in the host's, or cannot tell (a
// sandbox whose pid 1 it may not inspect: /proc/1/root is then unreadable, and "/" is the
// nearest answer).
func HostRoot() string {
	own, init, ok := ProcessNamespaces()
	if ok && init != 0 && init != own {
		return "/proc/1/root"
	}
	return "/"
}
