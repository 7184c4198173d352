//go:build vm

package bpflsm

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestDisconnectedHandle: a file opened by its handle (open_by_handle_at, which needs
// CAP_DAC_READ_SEARCH) after its dentry left the cache gets a dentry of its own, not linked
// below its directory, so neither its path nor its ancestors say which rules apply. Such an
// open is denied as an unresolved path (fail closed) where a Block rule could apply, and
// nothing about it is cached: once a no-rules entry decided the file's later opens by path, and
// a file of a blocked directory was read by anyone who had its handle.
//
// The file system is ext4 on a loop device: the dentries of tmpfs, the guest's own root, are
// never evicted, so it cannot make a disconnected dentry.
//
//   - While the dentry is cached the handle gives the connected one: denied, attributed to the
//     policy (this checks the operation and the handle), and the per-inode cache has the file.
//   - After drop_caches, three opens by handle, each denied with EPERM and an event that says
//     the path was unresolved, and the unresolved counter moves by three: that file with only
//     its dentry evicted (its inode, and so its cache entry, usually stays); another file of the
//     blocked directory never opened before, with its inode evicted too; a file outside the
//     blocked directory (without its directory nothing tells that no rule names it). After each,
//     the file by its path: denied, attributed to the policy, in the blocked directory;
//     permitted outside it.
//   - A file opened relative to a directory opened by its handle after eviction: the kernel
//     reconnects the directory first, opening its disconnected parents to read their entries
//     (permitted: denying them failed every such open with ESTALE), so the path is known: in
//     the blocked directory denied and attributed to the policy, outside it permitted.
//   - A pipe reopened through /proc/self/fd is its own parent too, but not disconnected:
//     permitted.
func TestDisconnectedHandle(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	vmguest.MountExt4(t, "/wt/e.img", "/wt/e")
	handles := map[string]string{}
	for _, p := range []string{"/wt/e/prot/secret", "/wt/e/prot/cold", "/wt/e/free/f"} {
		mkfile(t, p, 0)
		h, err := trigger.Handle(p)
		must(t, err)
		handles[p] = h
	}

	cg, cgfd := testCgroup(t, "ward-handle")
	b := newBackend(t)
	set := hostPolicyInCgroup(t, "handles", "  file:\n    matchDirectories:\n    - dir: /wt/e/prot/\n      recursive: true\n", cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))

	deniedWithEvent(t, b, cgfd, "by handle, dentry cached", "openhandle:/wt/e:"+handles["/wt/e/prot/secret"], policy.OpFile, set, "handles")

	st0, err := b.Stats()
	must(t, err)
	for _, c := range []struct {
		name, path string
		drop       int
		blocked    bool
	}{
		{"its dentry evicted", "/wt/e/prot/secret", 2, true},
		{"never opened, its inode evicted", "/wt/e/prot/cold", 3, true},
		{"outside the blocked directory", "/wt/e/free/f", 3, false},
	} {
		// What drop_caches evicts is what no one holds: nothing here keeps these files open.
		vmguest.DropCaches(t, c.drop)
		op := "openhandle:/wt/e:" + handles[c.path]
		drain(b)
		got, pid := helperRunPID(t, cgfd, "/wt/bin/reader", 0, op)
		if got != op+" errno 1" {
			t.Errorf("by handle, %s: helper printed %q, want errno 1", c.name, got)
		}
		ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return fromHelper(ev, pid) && ev.Errno == int(syscall.EPERM) })
		switch {
		case !ok:
			t.Errorf("by handle, %s: no EPERM event", c.name)
		case !ev.FailClosed || !strings.Contains(ev.Detail, "unresolved"):
			t.Errorf("by handle, %s: event %+v (%s), want it marked fail closed, unresolved", c.name, ev.Access, ev.Detail)
		}
		// At once: the next eviction would take a cache entry the open left with the inode.
		if c.blocked {
			deniedWithEvent(t, b, cgfd, "by path after the handle, "+c.name, "open:"+c.path, policy.OpFile, set, "handles")
		} else if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+c.path); got != "open:"+c.path+" ok" {
			t.Errorf("by path after the handle, %s: %q, want ok", c.name, got)
		}
	}
	if st, err := b.Stats(); err != nil || st.Unresolved-st0.Unresolved != 3 {
		t.Errorf("unresolved counter moved by %d (%v), want 3", st.Unresolved-st0.Unresolved, err)
	}

	// A directory opened by its handle is reconnected by the kernel (exportfs_decode_fh walks
	// up to the file system's root for directories), so a file opened in it has its path.
	mkfile(t, "/wt/e/prot/sub/deep", 0)
	subHandle, err := trigger.Handle("/wt/e/prot/sub")
	must(t, err)
	vmguest.DropCaches(t, 3)
	deniedWithEvent(t, b, cgfd, "a file in a directory opened by its handle after eviction", "openhandle:/wt/e:"+subHandle+":deep", policy.OpFile, set, "handles")
	mkfile(t, "/wt/e/free/x/g", 0)
	freeHandle, err := trigger.Handle("/wt/e/free/x")
	must(t, err)
	vmguest.DropCaches(t, 3)
	op := "openhandle:/wt/e:" + freeHandle + ":g"
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, op); got != op+" ok" {
		t.Errorf("a file outside the blocked directory, in a directory opened by its handle after eviction: %q, want ok", got)
	}

	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	_, err = w.WriteString("x")
	must(t, err)
	w.Close()
	if got, _ := helperRunFilesPID(t, cgfd, "/wt/bin/reader", "open:/proc/self/fd/3", r); got != "open:/proc/self/fd/3 ok" {
		t.Errorf("a pipe reopened through /proc/self/fd: %q, want ok", got)
	}
}
