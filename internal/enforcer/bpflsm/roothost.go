package bpflsm

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/workload"
)

// A workload in another mount namespace than Ward's sees other files under the same paths: a
// container's root, or the node's when Ward itself runs in a pod. The inode keys that make a
// rule hold however a file is reached (exact paths, directory rules, hard links) and the inode
// identity of a fromSource executable must name the workload's files, so the questions of
// Translate are answered in the workload's root, as one of its tasks sees it
// (/proc/<pid>/root). Path keys need none of this: bpf_d_path gives the path in the task's root.

// WorkloadHost is a Host that can answer for one workload's files rather than its own. OSHost
// is one; the fakes of the tests are not and answer for every workload.
type WorkloadHost interface {
	Host
	For(w *workload.Workload) Host
}

// For implements WorkloadHost: OSHost for a workload in Ward's own mount namespace; for
// another, its root through a task of it (for the host workload pid 1, which a DaemonSet with
// hostPID sees); noHost when no task of it is found, so that its rules match by path only
// rather than by the inodes of Ward's files.
func (OSHost) For(w *workload.Workload) Host {
	own, _, ok := enforcer.ProcessNamespaces()
	if !ok {
		return OSHost{}
	}
	if w.Kind != workload.KindContainer {
		if root := enforcer.HostRoot(); root != "/" {
			return rootHost{root: root}
		}
		return OSHost{}
	}
	if w.MntNS == 0 || w.MntNS == own {
		return OSHost{}
	}
	if pid, ok := mountNSTasks.find(w.MntNS); ok {
		return rootHost{root: "/proc/" + strconv.Itoa(pid) + "/root"}
	}
	return noHost{}
}

// mountNSTasks remembers one task per mount namespace: a full Apply asks for every container,
// and one scan of /proc answers them all.
var mountNSTasks = &nsIndex{pids: map[uint32]int{}}

type nsIndex struct {
	mu   sync.Mutex
	pids map[uint32]int
}

// find returns a task in mount namespace ns: the one remembered if it is still there, else the
// first a new scan of /proc finds.
func (x *nsIndex) find(ns uint32) (int, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if pid, ok := x.pids[ns]; ok {
		if got, ok := enforcer.MountNS(strconv.Itoa(pid)); ok && got == ns {
			return pid, true
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	clear(x.pids)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if got, ok := enforcer.MountNS(e.Name()); ok {
			if _, seen := x.pids[got]; !seen {
				x.pids[got] = pid
			}
		}
	}
	pid, ok := x.pids[ns]
	return pid, ok
}

// rootHost answers inside root, another task's root directory (/proc/<pid>/root): paths are
// the task's, and symlinks resolve as they do for it, an absolute target from its root.
type rootHost struct{ root string }

// EvalSymlinks implements Host (enforcer.EvalSymlinksIn).
func (h rootHost) EvalSymlinks(p string) (string, error) { return enforcer.EvalSymlinksIn(h.root, p) }

// Inode implements Host.
func (h rootHost) Inode(p string) (uint32, uint64, bool) {
	r, err := h.EvalSymlinks(p)
	if err != nil {
		return 0, 0, false
	}
	return OSHost{}.Inode(h.root + r)
}

// MountRoot implements Host: the mounts are the task's.
func (h rootHost) MountRoot(p string) bool {
	r, err := h.EvalSymlinks(p)
	if err != nil {
		return false
	}
	return OSHost{}.MountRoot(h.root + r)
}

// HardLinks implements Host: the paths are the task's.
func (h rootHost) HardLinks(dir string, recursive bool, limit int) ([]string, bool) {
	r, err := h.EvalSymlinks(dir)
	if err != nil {
		return nil, true
	}
	paths, complete := OSHost{}.HardLinks(h.root+r, recursive, limit)
	for i, p := range paths {
		paths[i] = "/" + strings.TrimPrefix(strings.TrimPrefix(p, h.root), "/")
	}
	return paths, complete
}

// noHost knows no file: a workload whose root Ward cannot reach is matched by path only.
type noHost struct{}

var errNoRoot = errors.New("the workload's root is not reachable")

func (noHost) EvalSymlinks(string) (string, error)          { return "", errNoRoot }
func (noHost) Inode(string) (uint32, uint64, bool)          { return 0, 0, false }
func (noHost) HardLinks(string, bool, int) ([]string, bool) { return nil, true }
func (noHost) MountRoot(string) bool                        { return false }
