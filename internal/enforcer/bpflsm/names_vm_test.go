//go:build vm

package bpflsm

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// requireUnnamed fails the test when one of names has a bit in the translation's filter: a test
// that opens files of those names would not reach the filter's decision.
func requireUnnamed(t *testing.T, tr *Translation, names ...string) {
	t.Helper()
	for _, name := range names {
		if tr.Names.Has(name) {
			t.Fatalf("the name %q shares a bit with the rules' names: the test would not reach the filter", name)
		}
	}
}

// kernelStats reads the kernel's counters (Stats).
func kernelStats(t *testing.T, b *Backend) Stats {
	t.Helper()
	st, err := b.Stats()
	must(t, err)
	return st
}

// byNameOpens is the kernel's count of opens decided by name (Stats.ByName).
func byNameOpens(t *testing.T, b *Backend) uint64 { return kernelStats(t, b).ByName }

// TestFileNamesFilter: in a workload whose file rules are all exact paths, a file whose name
// ends no rule's path is decided without resolving its path (wl_val.names), and that
// changes no decision:
//   - a hard link, made before the policy, to a blocked file is denied by its inode (EPERM,
//     an event attributed to the rule) under a name the filter does not know;
//   - a file bind-mounted, after the policy, onto a blocked path is denied by that path: its
//     dentry's name is the source file's, not the last component of its path, so the root of a
//     mount is always resolved;
//   - a file the filter permitted is cached as matching no rule, and renamed onto a blocked path
//     that had no file when the policy was applied (so no inode key), it is denied there;
//   - under a file allow-list with the Block posture, a file no rule names is denied with an
//     event that carries its path, resolved for the event.
func TestFileNamesFilter(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/n/secret", "/wt/n/other", "/wt/n/allowed", "/wt/n/mnt/x", "/wt/n/src"} {
		mkfile(t, p, 0)
	}
	must(t, os.Link("/wt/n/secret", "/wt/n/alias"))
	cg, cgfd := testCgroup(t, "ward-names")
	b := newBackend(t)

	spec := "  file:\n    matchPaths:\n    - path: /wt/n/secret\n    - path: /wt/n/mnt/x\n    - path: /wt/n/later\n"
	set := hostPolicyInCgroup(t, "names", spec, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	tr := b.byID[set.Workload.ID()].tr
	requireUnnamed(t, tr, "alias", "src", "other")
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/n/other"); got != "open:/wt/n/other ok" {
		t.Errorf("open of a file no rule names: %q, want ok", got)
	}
	if c, ok := cacheEntry(t, b, "/wt/n/other"); !ok || c.Cgroup != cg || c.Bits != 0 || c.Sbits != 0 || c.Stamp != c.Moves {
		t.Errorf("cache entry of the file the filter permitted: %+v (found %v), want one of this workload with no bits", c, ok)
	}
	must(t, os.Rename("/wt/n/other", "/wt/n/later"))
	deniedWithEvent(t, b, cgfd, "cached unnamed file renamed onto a blocked path", "open:/wt/n/later", policy.OpFile, set, "names")
	must(t, os.Rename("/wt/n/later", "/wt/n/other"))
	deniedWithEvent(t, b, cgfd, "hard link under another name", "open:/wt/n/alias", policy.OpFile, set, "names")
	deniedWithEvent(t, b, cgfd, "blocked file by its own name", "open:/wt/n/secret", policy.OpFile, set, "names")

	must(t, unix.Mount("/wt/n/src", "/wt/n/mnt/x", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/n/mnt/x", unix.MNT_DETACH) })
	deniedWithEvent(t, b, cgfd, "file bind-mounted onto a blocked path", "open:/wt/n/mnt/x", policy.OpFile, set, "names")

	allow := hostPolicyWith(t, "names-allow", "  file:\n    matchPaths:\n    - path: /wt/n/allowed\n", policy.ActionAllow,
		rules.Postures{File: policy.ActionBlock, Network: policy.ActionAudit, Capabilities: policy.ActionAudit}, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{allow}))
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/n/allowed"); got != "open:/wt/n/allowed ok" {
		t.Errorf("open of the allowed file: %q, want ok", got)
	}
	drain(b)
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/n/other"); got != "open:/wt/n/other errno 1" {
		t.Errorf("open of a file outside the allow-list: %q, want errno 1", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/n/other" })
	if !ok {
		t.Fatal("no event with the path /wt/n/other for the open the posture denied")
	}
	if v := allow.Decide(ev.Access); ev.Errno != 1 || v.Action != "Block" {
		t.Errorf("posture event: errno %d access %+v, verdict %+v", ev.Errno, ev.Access, v)
	}
}

// TestFileNamesLengths: the filter reads a name shorter than the dentry's inline buffer (32
// bytes) from the dentry with direct loads, picking its last byte out of one of four words, and
// a longer one with helper calls. A blocked file of every length from 1 to 40 is denied with an
// event, four lengths to a policy so that a name read wrong would seldom hit another rule's bit
// (a bit set by chance would let it through to the path lookup and hide the error). The files
// are made after the policies, so that no inode key names them: the name alone must tell.
func TestFileNamesLengths(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	cg, cgfd := testCgroup(t, "ward-name-lengths")
	b := newBackend(t)
	name := func(n int, last byte) string { // n bytes, the last one given
		if n == 1 {
			return string(last)
		}
		return "f" + strings.Repeat("m", n-2) + string(last)
	}
	for first := 1; first <= 40; first += 4 {
		var spec strings.Builder
		spec.WriteString("  file:\n    matchPaths:\n")
		for n := first; n < first+4; n++ {
			blocked := "/wt/len/" + name(n, 'z')
			fmt.Fprintf(&spec, "    - path: %s\n", blocked)
		}
		policyName := fmt.Sprintf("len%d", first)
		set := hostPolicyInCgroup(t, policyName, spec.String(), cg)
		must(t, b.Apply(t.Context(), []*rules.Set{set}))
		for n := first; n < first+4; n++ {
			blocked, other := "/wt/len/"+name(n, 'z'), "/wt/len/"+name(n, 'y')
			// Made after the policy: a file that exists when it is applied gets an inode
			// key, which would deny it even with its name read wrong.
			mkfile(t, blocked, 0)
			mkfile(t, other, 0)
			deniedWithEvent(t, b, cgfd, fmt.Sprintf("blocked name of %d bytes", n), "open:"+blocked, policy.OpFile, set, policyName)
			if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+other); got != "open:"+other+" ok" {
				t.Errorf("open of %s, a name of %d bytes no rule names: %q, want ok", other, n, got)
			}
		}
	}
}

// TestFileNameKeys: the names filter keys a name by its length, first and last byte, so
// varied names share bits; where a file's name has its bit, the kernel looks its whole name up
// (a KIND_NAME key, name_listed), and it tests the file's ancestors against the directory
// rules' names only (wl_val.dir_names). Neither changes a decision:
//   - a file whose name shares its bit with an exact rule's name (the same length, first and
//     last byte) is decided by its name, where a file of a rule's name elsewhere is resolved
//     (its first open moves the by-name counter by one more): by key_counts, the count of its
//     hash's slot being 0, and again by the keys once another workload's rule has the name;
//   - so is a file below a directory named like an exact rule's file, in a workload with
//     directory rules: an exact path's name says nothing about the directories above a file;
//   - a file made under a longer name after the policy (so no inode key names it) and renamed
//     onto a blocked path, whose dentry keeps the longer name's bytes past the new one's end,
//     is denied by its name, as are the rules' own files and a file below the protected
//     directory;
//   - every name and inode key is counted in key_counts while it is in rules, and once every
//     workload is removed, every count is back to 0.
func TestFileNameKeys(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/nk/sat", "/wt/nk/sbt", "/wt/nk/other/sat", "/wt/nk/kd/plain", "/wt/nk/prot/x", "/wt/nk/warm"} {
		mkfile(t, p, 0)
	}
	cg, cgfd := testCgroup(t, "ward-name-keys")
	b := newBackend(t)
	spec := "  file:\n    matchPaths:\n    - path: /wt/nk/sat\n    - path: /wt/nk/sct\n    - path: /wt/nk/elsewhere/kd\n" +
		"    matchDirectories:\n    - dir: /wt/nk/prot/\n      recursive: true\n"
	set := hostPolicyInCgroup(t, "namekeys", spec, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	tr := b.byID[set.Workload.ID()].tr
	if !tr.Names.Has("sbt") || !tr.Names.Has("kd") {
		t.Fatal("sbt and kd do not have their bits in the names filter: the test would not reach the name keys")
	}
	if tr.DirNames.Has("kd") {
		t.Fatal("kd has its bit among the directories' names: the test would not tell")
	}
	requireUnnamed(t, tr, "plain", "warm", "other", "nk", "wt")
	for _, n := range []string{"kd", "nk", "wt"} {
		if tr.DirNames.Has(n) {
			t.Fatalf("the name %q has its bit among the directories' names: the test would not tell", n)
		}
	}
	byName := func() uint64 { return byNameOpens(t, b) }
	// decidedByName opens path and then a file of a rule's name, which is resolved, and
	// returns how many more opens the first moved the by-name counter by.
	decidedByName := func(path string) int64 {
		t.Helper()
		// The helper's own first opens are cached after one run.
		helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/nk/warm")
		c0 := byName()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+path); got != "open:"+path+" ok" {
			t.Errorf("open of %s: %q, want ok", path, got)
		}
		c1 := byName()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/nk/other/sat"); got != "open:/wt/nk/other/sat ok" {
			t.Errorf("open of /wt/nk/other/sat: %q, want ok", got)
		}
		return int64(c1-c0) - int64(byName()-c1)
	}
	if d := decidedByName("/wt/nk/sbt"); d != 1 {
		t.Errorf("the first open of a file whose name shares its bit with a rule's moved the by-name counter by %d more than a rule's name's, want 1", d)
	}
	if d := decidedByName("/wt/nk/kd/plain"); d != 1 {
		t.Errorf("the first open of a file below a directory named like an exact rule's file moved the by-name counter by %d more than a rule's name's, want 1", d)
	}

	long := "/wt/nk/s" + strings.Repeat("x", 29) + "t" // 31 bytes: in the dentry's inline buffer
	mkfile(t, long, 0)
	must(t, os.Rename(long, "/wt/nk/sct"))
	for _, p := range []string{"/wt/nk/sct", "/wt/nk/sat", "/wt/nk/prot/x"} {
		deniedWithEvent(t, b, cgfd, "blocked", "open:"+p, policy.OpFile, set, "namekeys")
	}

	// Another workload's rule names sbt: its slot counts 1, and this workload's keys decide.
	cg2, _ := testCgroup(t, "ward-name-keys-other")
	other := hostPolicyInCgroup(t, "namekeys-other", "  file:\n    matchPaths:\n    - path: /wt/nk/sbt\n", cg2)
	other.Workload.ContainerID = "name-keys-other"
	must(t, b.Apply(t.Context(), []*rules.Set{set, other}))
	counted := func(kind uint8, hash uint64) uint8 {
		t.Helper()
		n, err := b.keyCounts.count(kind, hash)
		must(t, err)
		return n
	}
	keys := map[uint8]int{}
	for _, id := range []string{set.Workload.ID(), other.Workload.ID()} {
		for k := range b.byID[id].tr.Entries {
			if _, ok := keySlot(k.Kind, k.Hash); ok {
				keys[k.Kind]++
				if counted(k.Kind, k.Hash) == 0 {
					t.Errorf("%s: key %#x of kind %d is in rules with a count of 0", id, k.Hash, k.Kind)
				}
			}
		}
	}
	if keys[kindName] < 4 || keys[kindInode] < 2 || counted(kindName, NameHash("sbt")) != 1 {
		t.Fatalf("%d name keys, %d inode keys, sbt counted %d times: want at least 4, 2 and once",
			keys[kindName], keys[kindInode], counted(kindName, NameHash("sbt")))
	}
	if d := decidedByName("/wt/nk/sbt"); d != 1 {
		t.Errorf("the first open of a file whose name only another workload's rule has moved the by-name counter by %d more than a rule's name's, want 1", d)
	}
	deniedWithEvent(t, b, cgfd, "blocked", "open:/wt/nk/sat", policy.OpFile, set, "namekeys")

	must(t, b.Apply(t.Context(), nil))
	mem, err := b.objs.KeyCounts.Memory()
	must(t, err)
	all := make([]byte, mem.Size())
	if _, err := mem.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	for i, n := range all {
		if n != 0 {
			t.Errorf("with no workload applied, key count %d is %d, want 0", i, n)
		}
	}
}

// TestDirNamesFilter: in a workload with directory rules, a file is decided without its path
// only when neither its name nor any ancestor's is one the rules name (wl_val.names), and that
// changes no decision:
//   - the filter is used: opening a file no rule names moves the by-name counter by one more than
//     opening a file whose own name is a rule directory's (compared so that the helper's own
//     opens cancel out);
//   - files below a protected directory, made before or after the policy, the directory itself
//     and a directory whose name is longer than the dentry's inline buffer are denied;
//   - a subdirectory of a protected directory bind-mounted elsewhere: its files are denied by the
//     inode of the protected directory, which only the walk up to the root of the filesystem (not
//     of the mount, as the path goes) meets;
//   - a file system mounted on a protected directory after the policy: its files are denied, the
//     directory's name being the mount point above their file system's root;
//   - a directory of a name no rule has renamed, or a rename of a protected directory denied:
//     the filter is still used;
//   - a protected directory renamed: its files are denied by its inode, and the filter is not
//     used until the workload's rules are translated again (its names are stale);
//   - directory rules on mount points: the filter holds the mounted roots' names ("/" for a file
//     system's root, a bind mount's source's name) and is still used for the root mount's
//     files; the file system mounted there, mounted again elsewhere, and the bind mount's source
//     are denied by the mounted root's inode.
func TestDirNamesFilter(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	long := "/wt/dn/" + strings.Repeat("l", 40)
	for _, p := range []string{"/wt/dn/prot/sub/x", "/wt/dn/free/prot", "/wt/dn/free/a", long + "/f", "/wt/dn/mp/.keep"} {
		mkfile(t, p, 0)
	}
	cg, cgfd := testCgroup(t, "ward-dir-names")
	b := newBackend(t)
	spec := "  file:\n    matchDirectories:\n    - dir: /wt/dn/prot/\n      recursive: true\n    - dir: /wt/dn/mp/\n      recursive: true\n" +
		"    - dir: " + long + "/\n    matchPaths:\n    - path: /wt/dn/exact\n"
	set := hostPolicyInCgroup(t, "dirnames", spec, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	tr := b.byID[set.Workload.ID()].tr
	requireUnnamed(t, tr, "a", "b", "c", "free", "dn", "wt", "/", "renamed", "sub")
	byName := func() uint64 { return byNameOpens(t, b) }
	// filtered opens a fresh file no rule names and one named like a rule's directory, and
	// returns how many more opens the first moved the counter by.
	fresh := 0
	filtered := func(step string) int64 {
		t.Helper()
		fresh++
		plain, listed := fmt.Sprintf("/wt/dn/free/c%d", fresh), fmt.Sprintf("/wt/dn/free/n%d/prot", fresh)
		mkfile(t, plain, 0)
		mkfile(t, listed, 0)
		// The helper's own first opens (its binary, what its runtime reads) are cached
		// after one run: both measured runs then make the same.
		helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/dn/free/a")
		c0 := byName()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+plain); got != "open:"+plain+" ok" {
			t.Errorf("%s: open of %s: %q, want ok", step, plain, got)
		}
		c1 := byName()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+listed); got != "open:"+listed+" ok" {
			t.Errorf("%s: open of %s: %q, want ok", step, listed, got)
		}
		return int64(c1-c0) - int64(byName()-c1)
	}
	if d := filtered("after the policy"); d != 1 {
		t.Errorf("the first open of a file no rule names moved the by-name counter by %d more than another, want 1", d)
	}
	// A directory of a name no filter holds renamed: the filters still hold.
	must(t, os.MkdirAll("/wt/dn/free/unwatched-1", 0o755))
	if b.watched.Has("unwatched-1") {
		t.Fatal("the name unwatched-1 has a bit among the watched names: the test would not tell")
	}
	must(t, os.Rename("/wt/dn/free/unwatched-1", "/wt/dn/free/unwatched-2"))
	if d := filtered("after a directory of another name was renamed"); d != 1 {
		t.Errorf("after a directory of a name no filter holds was renamed, the first open of a file no rule names moved the by-name counter by %d more than another, want 1", d)
	}

	mkfile(t, "/wt/dn/prot/sub/later", 0)
	for _, p := range []string{"/wt/dn/prot/sub/x", "/wt/dn/prot/sub/later", "/wt/dn/prot", long + "/f"} {
		deniedWithEvent(t, b, cgfd, "below a protected directory", "open:"+p, policy.OpFile, set, "dirnames")
	}

	must(t, os.MkdirAll("/wt/dn/free/b", 0o755))
	must(t, unix.Mount("/wt/dn/prot/sub", "/wt/dn/free/b", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/dn/free/b", unix.MNT_DETACH) })
	// The kernel finds the protected directory among the file's dentries, above the bind
	// mount's root; the event names the file below the rule's directory (DirAlias, through the
	// mount table) and keeps the path as opened.
	drain(b)
	got, pid := helperRunPID(t, cgfd, "/wt/bin/reader", 0, "open:/wt/dn/free/b/x")
	if got != "open:/wt/dn/free/b/x errno 1" {
		t.Errorf("protected subdirectory bind-mounted elsewhere: %q, want errno 1", got)
	}
	if ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return fromHelper(ev, pid) && ev.Errno == 1 }); !ok {
		t.Error("protected subdirectory bind-mounted elsewhere: no event for the denied open")
	} else if v := set.Decide(ev.Access); ev.Access.Path != "/wt/dn/prot/sub/x" || v.Policy != "dirnames" || !strings.Contains(ev.Detail, "opened=/wt/dn/free/b/x") {
		t.Errorf("protected subdirectory bind-mounted elsewhere: event %+v (%s), verdict %+v; want /wt/dn/prot/sub/x, opened=/wt/dn/free/b/x, by dirnames", ev.Access, ev.Detail, v)
	}

	must(t, unix.Mount("tmpfs", "/wt/dn/mp", "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount("/wt/dn/mp", unix.MNT_DETACH) })
	mkfile(t, "/wt/dn/mp/f", 0)
	deniedWithEvent(t, b, cgfd, "file system mounted on a protected directory", "open:/wt/dn/mp/f", policy.OpFile, set, "dirnames")

	// A rename of the protected directory that Ward denies renames nothing: the filters hold.
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "rename:/wt/dn/prot:/wt/dn/free/denied"); got != "rename:/wt/dn/prot:/wt/dn/free/denied errno 1" {
		t.Errorf("rename of the protected directory by the workload: %q, want errno 1", got)
	}
	if d := filtered("after a denied rename of a protected directory"); d != 1 {
		t.Errorf("after a denied rename of a protected directory, the first open of a file no rule names moved the by-name counter by %d more than another, want 1", d)
	}
	must(t, os.Rename("/wt/dn/prot", "/wt/dn/free/renamed"))
	mkfile(t, "/wt/dn/free/renamed/sub/new", 0)
	deniedWithEvent(t, b, cgfd, "renamed protected directory", "open:/wt/dn/free/renamed/sub/new", policy.OpFile, set, "dirnames")
	if d := filtered("after a directory was renamed"); d != 0 {
		t.Errorf("after a directory rename, the filter decided %d opens, want none until the rules are translated again", d)
	}
	// Translated again (with no file system mounted on a rule's directory, see below).
	must(t, unix.Unmount("/wt/dn/mp", unix.MNT_DETACH))
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	if d := filtered("translated again"); d != 1 {
		t.Errorf("translated again, the first open of a file no rule names moved the by-name counter by %d more than another, want 1", d)
	}

	// A directory rule on a mount point: its inode key is the mounted file system's root,
	// named "/"; mounted again elsewhere, nothing on the way up is named like the rule's
	// directory. The filter holds "/", which the kernel tests at the root of a file's file
	// system outside the root mount, and the file is denied by that root's inode. A rule on a
	// bind mount of a directory: its inode key is the source's, named by its source's name,
	// which the filter holds. Files of the root mount are still decided by their names.
	must(t, os.MkdirAll("/wt/dn/vol", 0o755))
	must(t, unix.Mount("tmpfs", "/wt/dn/vol", "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount("/wt/dn/vol", unix.MNT_DETACH) })
	mkfile(t, "/wt/dn/vol/f", 0)
	must(t, os.MkdirAll("/wt/dn/free/view", 0o755))
	must(t, unix.Mount("/wt/dn/vol", "/wt/dn/free/view", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/dn/free/view", unix.MNT_DETACH) })
	mkfile(t, "/wt/dn/free/kube-api-src/f", 0)
	must(t, os.MkdirAll("/wt/dn/bvol", 0o755))
	must(t, unix.Mount("/wt/dn/free/kube-api-src", "/wt/dn/bvol", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/dn/bvol", unix.MNT_DETACH) })
	vol := hostPolicyInCgroup(t, "dirnames", "  file:\n    matchDirectories:\n    - dir: /wt/dn/vol/\n      recursive: true\n"+
		"    - dir: /wt/dn/bvol/\n      recursive: true\n    - dir: /wt/dn/prot/\n      recursive: true\n", cg)
	must(t, b.Apply(t.Context(), []*rules.Set{vol}))
	tr = b.byID[vol.Workload.ID()].tr
	if tr.Names.Full() || !tr.Names.Has("/") || !tr.Names.Has("kube-api-src") {
		t.Errorf("directory rules on mount points: the names filter is full (%v) or lacks the mounted roots' names \"/\" (%v) and \"kube-api-src\" (%v)",
			tr.Names.Full(), tr.Names.Has("/"), tr.Names.Has("kube-api-src"))
	}
	for _, name := range []string{"free", "dn", "wt", "view", "f", fmt.Sprintf("c%d", fresh+1)} {
		if tr.Names.Has(name) {
			t.Fatalf("the name %q shares a bit with the mount points' rules' names: the test would not tell", name)
		}
	}
	for _, p := range []string{"/wt/dn/free/view/f", "/wt/dn/vol/f"} {
		deniedWithEvent(t, b, cgfd, "file system of a protected mount point, at "+p, "open:"+p, policy.OpFile, vol, "dirnames")
	}
	for _, p := range []string{"/wt/dn/free/kube-api-src/f", "/wt/dn/bvol/f"} {
		deniedWithEvent(t, b, cgfd, "bind-mounted protected directory, at "+p, "open:"+p, policy.OpFile, vol, "dirnames")
	}
	if d := filtered("directory rules on mount points"); d != 1 {
		t.Errorf("directory rules on mount points: the first open of a file no rule names moved the by-name counter by %d more than another, want 1", d)
	}
}

// TestWatchedNamesShrink: the names whose directories' renames the kernel counts
// (ward_config.names) are cut back, at the end of an Apply, ApplyWorkload or RemoveWorkload, to
// those of the applied rules, so that a rename of a directory only a removed rule named no
// longer distrusts every filter; not while another call is between watching its names and
// applying its translation.
func TestWatchedNamesShrink(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	for _, p := range []string{"/wt/w/x/alpha-dir/f", "/wt/w/x/beta-dir/f"} {
		mkfile(t, p, 0)
	}
	cg, _ := testCgroup(t, "ward-watched")
	b := newBackend(t)
	dirRule := func(dir string) *rules.Set {
		return hostPolicyInCgroup(t, "watched", "  file:\n    matchDirectories:\n    - dir: /wt/w/"+dir+"/\n      recursive: true\n", cg)
	}
	var a, z NameFilter
	a.add("alpha-dir")
	z.add("beta-dir")
	if a == z {
		t.Fatal("alpha-dir and beta-dir share a bit: the test would not tell")
	}
	inKernel := func() NameFilter {
		var c wardConfig
		must(t, b.objs.WardConfig.Lookup(uint32(0), &c))
		return NameFilter(c.Names)
	}
	namesEpoch := func() uint32 {
		var e wardEpochs
		must(t, b.objs.WardEpoch.Lookup(uint32(0), &e))
		return e.Names
	}
	// renameCounts renames a directory named dir and back, and says whether the kernel counted it.
	renameCounts := func(dir string) bool {
		e := namesEpoch()
		must(t, os.Rename("/wt/w/x/"+dir, "/wt/w/x/"+dir+"-moved"))
		must(t, os.Rename("/wt/w/x/"+dir+"-moved", "/wt/w/x/"+dir))
		return namesEpoch() != e
	}

	must(t, b.Apply(t.Context(), []*rules.Set{dirRule("alpha-dir")}))
	if k := inKernel(); !k.Has("alpha-dir") || !renameCounts("alpha-dir") {
		t.Fatalf("rules on alpha-dir: watched %v; want the name watched and its rename counted", k.Has("alpha-dir"))
	}
	// Another call translating meanwhile: its names may be among the dropped ones.
	done := b.startTranslating()
	must(t, b.Apply(t.Context(), []*rules.Set{dirRule("beta-dir")}))
	if k := inKernel(); !k.Has("alpha-dir") || !k.Has("beta-dir") {
		t.Errorf("Apply with another call translating: watched alpha-dir %v, beta-dir %v; want both", k.Has("alpha-dir"), k.Has("beta-dir"))
	}
	done()
	must(t, b.Apply(t.Context(), []*rules.Set{dirRule("beta-dir")}))
	k := inKernel()
	if k.Has("alpha-dir") || !k.Has("beta-dir") || k != b.watched {
		t.Errorf("rules on beta-dir only: watched alpha-dir %v, beta-dir %v, kernel's as the backend's %v; want false, true, true", k.Has("alpha-dir"), k.Has("beta-dir"), k == b.watched)
	}
	if renameCounts("alpha-dir") {
		t.Error("a rename of alpha-dir, which no rule names any longer, was counted")
	}
	if !renameCounts("beta-dir") {
		t.Error("a rename of beta-dir, which a rule names, was not counted")
	}
	// No rules: nothing watched.
	must(t, b.Apply(t.Context(), nil))
	if k := inKernel(); k != (NameFilter{}) {
		t.Errorf("no rules: %d names watched, want none", ones(k))
	}
	// A workload's rules replaced, then removed, one workload at a time.
	must(t, b.ApplyWorkload(t.Context(), dirRule("alpha-dir")))
	must(t, b.ApplyWorkload(t.Context(), dirRule("beta-dir")))
	if k := inKernel(); k.Has("alpha-dir") || !k.Has("beta-dir") {
		t.Errorf("ApplyWorkload replaced alpha-dir's rule with beta-dir's: watched alpha-dir %v, beta-dir %v; want false, true", k.Has("alpha-dir"), k.Has("beta-dir"))
	}
	must(t, b.RemoveWorkload(t.Context(), dirRule("beta-dir").Workload.ID()))
	if k := inKernel(); k != (NameFilter{}) {
		t.Errorf("RemoveWorkload of the last workload: %d names watched, want none", ones(k))
	}
}

// TestDirPrefixByName: the walk of a resolved path looks a directory prefix up only where the
// prefix's last component has its bit in the names filter (walk_slash_named), and that changes
// no decision. The rules' directories are made after the policy, so that no inode key exists and
// only their paths can decide (dir_walk would otherwise deny by inode what the walk missed):
//   - below a recursive rule, at any depth, and a direct rule's child are denied;
//   - a direct rule's grandchild, and files in directories at the rules' depths but of other
//     names (one differing from a rule's name only in its last byte, one only in its first), are
//     permitted, without their prefixes being looked up.
func TestDirPrefixByName(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	must(t, os.MkdirAll("/wt/dp", 0o755))
	cg, cgfd := testCgroup(t, "ward-dir-prefix")
	b := newBackend(t)
	// Deeper than the prefixes the walk records (bpf/ward.c's PREFIXES, 64): a path below
	// 66 directories named n is hashed again for its lookups (deep_step).
	deep := "/wt/dp" + strings.Repeat("/n", 66)
	spec := "  file:\n    matchDirectories:\n    - dir: /wt/dp/alpha/\n      recursive: true\n" +
		"    - dir: /wt/dp/x/beta/\n    - dir: /wt/dp/y/z/gamma/\n      recursive: true\n" +
		"    - dir: " + deep + "/omega/\n      recursive: true\n" +
		"    matchPaths:\n    - path: /wt/dp/x/exact.txt\n"
	set := hostPolicyInCgroup(t, "dirprefix", spec, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	tr := b.byID[set.Workload.ID()].tr
	if tr.Names.Full() || len(tr.DirInodes) != 0 {
		t.Fatalf("the names filter is full (%v) or directories have inode keys (%v): the test would not reach the walk's lookups", tr.Names.Full(), tr.DirInodes)
	}
	requireUnnamed(t, tr, "wt", "dp", "x", "y", "z", "q", "r", "sub", "alphb", "blpha", "gammx", "f", "n", "omegb",
		"exact.txu")
	for _, p := range []string{"/wt/dp/alpha/q/r/f", "/wt/dp/alpha/f", "/wt/dp/x/beta/f", "/wt/dp/y/z/gamma/sub/f",
		"/wt/dp/x/beta/sub/f", "/wt/dp/alphb/f", "/wt/dp/blpha/f", "/wt/dp/y/z/gammx/f",
		"/wt/dp/x/exact.txt", "/wt/dp/x/exact.txu", "/wt/dp/alpha" + strings.Repeat("/n", 66) + "/f",
		deep + "/omega/f", deep + "/omega/q/f", deep + "/omegb/f", deep + "/f"} {
		mkfile(t, p, 0)
	}
	// The directory itself is its rule's too, looked up only where the opened name has its
	// bit, as an exact path is.
	for _, p := range []string{"/wt/dp/alpha/q/r/f", "/wt/dp/alpha/f", "/wt/dp/x/beta/f", "/wt/dp/y/z/gamma/sub/f",
		"/wt/dp/x/exact.txt", "/wt/dp/x/beta", "/wt/dp/alpha/q",
		"/wt/dp/alpha" + strings.Repeat("/n", 66) + "/f", deep + "/omega/f", deep + "/omega/q/f", deep + "/omega"} {
		deniedWithEvent(t, b, cgfd, "below a directory rule made after the policy", "open:"+p, policy.OpFile, set, "dirprefix")
	}
	for _, p := range []string{"/wt/dp/x/beta/sub/f", "/wt/dp/alphb/f", "/wt/dp/blpha/f", "/wt/dp/y/z/gammx/f",
		"/wt/dp/x/exact.txu", "/wt/dp/alphb", "/wt/dp/x", deep + "/omegb/f", deep + "/f", deep + "/omegb"} {
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+p); got != "open:"+p+" ok" {
			t.Errorf("open of %s, which no rule covers: %q, want ok", p, got)
		}
	}
}

// dirNamesOpens is the kernel's count of opens whose ancestors' names a directory's entry
// vouched for (Stats.DirNames).
func dirNamesOpens(t *testing.T, b *Backend) uint64 { return kernelStats(t, b).DirNames }

// TestDirNamesEntry: the first open of a file in a directory where an earlier first open found
// no ancestor named like a rule's directory tests only the file's own name (dnames, an entry on
// the directory's inode), and that changes no decision:
//   - the entry is used: a first open in such a directory moves the counter by one more than one
//     in a directory never walked (compared so that the helper's own opens cancel out);
//   - a walk that met a rule directory's name leaves no entry: two fresh files directly in a
//     protected directory are denied;
//   - the directory moved, by its parent's rename, below a protected directory whose name the
//     rename does not touch (so the names filter stays trusted): a fresh file in it is denied;
//   - a rule added on an ancestor (a new translation): a fresh file below it is denied;
//   - another workload, whose rules protect an ancestor the first's do not, is denied a fresh
//     file in a directory the first workload's open gave an entry;
//   - a file system mounted on a protected directory and mounted again elsewhere, where no name
//     on the way up but its root's ("/") is one the rules name: a second fresh file in a
//     subdirectory, decided with the entry (its depth unknown), is still denied by the root's
//     inode.
func TestDirNamesEntry(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/de/prot/.keep", "/wt/de/mp/.keep", "/wt/de/free/a/b/f1", "/wt/de/free/c/d/h1", "/wt/de/free/e/x/k1"} {
		mkfile(t, p, 0)
	}
	cg, cgfd := testCgroup(t, "ward-dir-entry")
	cg2, cgfd2 := testCgroup(t, "ward-dir-entry-2")
	b := newBackend(t)
	spec := "  file:\n    matchDirectories:\n    - dir: /wt/de/prot/\n      recursive: true\n    - dir: /wt/de/mp/\n      recursive: true\n"
	set := hostPolicyInCgroup(t, "direntry", spec, cg)
	other := hostPolicyInCgroup(t, "direntry-e", "  file:\n    matchDirectories:\n    - dir: /wt/de/free/e/\n      recursive: true\n", cg2)
	other.Workload.ContainerID = "direntry-other"
	must(t, b.Apply(t.Context(), []*rules.Set{set, other}))
	tr := b.byID[set.Workload.ID()].tr
	requireUnnamed(t, tr, "wt", "de", "free", "a", "b", "c", "d", "e", "x", "s", "moved", "fresh", "f1", "f2", "f3", "h1", "h2", "k1", "k2", "q1", "q2", "g", "z1", "z2")
	if tr.Names.Has("/") {
		t.Fatal("the name \"/\" has a bit before any mount: the test would not tell")
	}
	opened := func(step, p string, cgfd int) {
		t.Helper()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+p); got != "open:"+p+" ok" {
			t.Errorf("%s: open of %s: %q, want ok", step, p, got)
		}
	}

	// The helper's own first opens are cached after one run: both measured runs make the same.
	opened("warm-up", "/wt/de/free/a/b/f1", cgfd)
	mkfile(t, "/wt/de/free/a/b/f2", 0)
	mkfile(t, "/wt/de/free/fresh/g", 0)
	c0 := dirNamesOpens(t, b)
	opened("a directory never walked", "/wt/de/free/fresh/g", cgfd)
	c1 := dirNamesOpens(t, b)
	opened("a directory with an entry", "/wt/de/free/a/b/f2", cgfd)
	if d := int64(dirNamesOpens(t, b)-c1) - int64(c1-c0); d != 1 {
		t.Errorf("a first open in a directory with an entry moved the counter by %d more than one in a directory never walked, want 1", d)
	}

	// A walk that met a name with its bit leaves no entry: the second file directly in the
	// protected directory is found by the walk again.
	for _, p := range []string{"/wt/de/prot/z1", "/wt/de/prot/z2"} {
		mkfile(t, p, 0)
		deniedWithEvent(t, b, cgfd, "a fresh file directly in a protected directory", "open:"+p, policy.OpFile, set, "direntry")
	}

	// "prot" is not renamed: only the files count tells the entry of /wt/de/free/a/b is stale.
	must(t, os.Rename("/wt/de/free/a", "/wt/de/prot/moved"))
	mkfile(t, "/wt/de/prot/moved/b/f3", 0)
	deniedWithEvent(t, b, cgfd, "a directory with an entry moved below a protected one", "open:/wt/de/prot/moved/b/f3", policy.OpFile, set, "direntry")

	opened("before the rule on c", "/wt/de/free/c/d/h1", cgfd)
	withC := hostPolicyInCgroup(t, "direntry", spec+"    - dir: /wt/de/free/c/\n      recursive: true\n", cg)
	must(t, b.Apply(t.Context(), []*rules.Set{withC, other}))
	mkfile(t, "/wt/de/free/c/d/h2", 0)
	deniedWithEvent(t, b, cgfd, "a rule added on an ancestor of a directory with an entry", "open:/wt/de/free/c/d/h2", policy.OpFile, withC, "direntry")

	opened("the first workload, no rule on e", "/wt/de/free/e/x/k1", cgfd)
	mkfile(t, "/wt/de/free/e/x/k2", 0)
	deniedWithEvent(t, b, cgfd2, "another workload's rule on an ancestor", "open:/wt/de/free/e/x/k2", policy.OpFile, other, "direntry-e")

	must(t, unix.Mount("tmpfs", "/wt/de/mp", "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount("/wt/de/mp", unix.MNT_DETACH) })
	mkfile(t, "/wt/de/mp/s/q1", 0)
	mkfile(t, "/wt/de/mp/s/q2", 0)
	must(t, os.MkdirAll("/wt/de/free/view", 0o755))
	must(t, unix.Mount("/wt/de/mp", "/wt/de/free/view", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/de/free/view", unix.MNT_DETACH) })
	// Translated again with the file system mounted: the rule's key is its root, named "/".
	must(t, b.Apply(t.Context(), []*rules.Set{withC, other}))
	if tr := b.byID[withC.Workload.ID()].tr; !tr.Names.Has("/") || tr.Names.Has("s") || tr.Names.Has("view") {
		t.Fatalf("rule on a mount point: the filter has \"/\" %v, \"s\" %v, \"view\" %v; want only the first", tr.Names.Has("/"), tr.Names.Has("s"), tr.Names.Has("view"))
	}
	deniedWithEvent(t, b, cgfd, "mounted again elsewhere, first file", "open:/wt/de/free/view/s/q1", policy.OpFile, withC, "direntry")
	c2 := dirNamesOpens(t, b)
	deniedWithEvent(t, b, cgfd, "mounted again elsewhere, a file decided with the entry", "open:/wt/de/free/view/s/q2", policy.OpFile, withC, "direntry")
	if dirNamesOpens(t, b) == c2 {
		t.Error("the second file in the remounted file system's subdirectory was not decided with its directory's entry: the test did not reach it")
	}
}

func dirPathsOpens(t *testing.T, b *Backend) uint64 { return kernelStats(t, b).DirPaths }

// TestDirPathsEntry: where an ancestor of a file is named like a rule's directory, the first open
// of a file whose own name no rule names, in a directory where an earlier open resolved a path
// and found no rule on the directory or above it, is decided by an entry on the directory's inode
// (dpaths) without its path, and that changes no decision:
//   - the entry is used: such an open moves the counter by one more than one in a directory
//     never resolved (compared so that the helper's own opens cancel out);
//   - a resolution that found a rule leaves no entry: two fresh files in a protected directory
//     below a directory of the watched name are denied;
//   - the file's own name in the filter (an exact rule) and its inode (a hard link, made before
//     the policy, of a protected file) still deny it there;
//   - another workload whose rule protects an ancestor, and a rule added on an ancestor (a new
//     translation), deny a fresh file there;
//   - the directory reached through a bind mount on a protected directory (the entry was written
//     through the root mount), and the directory moved below a protected one by its parent's
//     rename, deny a fresh file there.
func TestDirPathsEntry(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/dp/prot/p1", "/wt/dp/rules/cfg/.keep", "/wt/dp/app/cfg/f1", "/wt/dp/app/cfg/secret",
		"/wt/dp/bound/cfg/b1", "/wt/dp/moved/cfg/r1", "/wt/dp/fresh/cfg/.keep", "/wt/dp/prot/cfg/.keep"} {
		mkfile(t, p, 0)
	}
	must(t, os.Link("/wt/dp/prot/p1", "/wt/dp/app/cfg/hl"))
	must(t, os.MkdirAll("/wt/dp/prot/view", 0o755))
	must(t, unix.Mount("/wt/dp/bound", "/wt/dp/prot/view", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/dp/prot/view", unix.MNT_DETACH) })
	cg, cgfd := testCgroup(t, "ward-dir-paths")
	cg2, cgfd2 := testCgroup(t, "ward-dir-paths-2")
	b := newBackend(t)
	spec := "  file:\n    matchPaths:\n    - path: /wt/dp/app/cfg/secret\n    matchDirectories:\n    - dir: /wt/dp/prot/\n      recursive: true\n    - dir: /wt/dp/rules/cfg/\n      recursive: true\n"
	set := hostPolicyInCgroup(t, "dirpaths", spec, cg)
	other := hostPolicyInCgroup(t, "dirpaths-app", "  file:\n    matchDirectories:\n    - dir: /wt/dp/app/\n      recursive: true\n", cg2)
	other.Workload.ContainerID = "dirpaths-other"
	must(t, b.Apply(t.Context(), []*rules.Set{set, other}))
	tr := b.byID[set.Workload.ID()].tr
	requireUnnamed(t, tr, "wt", "dp", "app", "bound", "moved", "fresh", "view", "f1", "f2", "f3", "f4", "b1", "b2", "r1", "r2", "g", "z1", "z2", "hl", "f5")
	if !tr.Names.Has("cfg") {
		t.Fatal("the name \"cfg\" has no bit: the entry would never be needed")
	}
	opened := func(step, p string) {
		t.Helper()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+p); got != "open:"+p+" ok" {
			t.Errorf("%s: open of %s: %q, want ok", step, p, got)
		}
	}

	// The first open resolves /wt/dp/app/cfg/f1 and writes the directory's entry.
	opened("warm-up", "/wt/dp/app/cfg/f1")
	mkfile(t, "/wt/dp/app/cfg/f2", 0)
	mkfile(t, "/wt/dp/fresh/cfg/g", 0)
	c0 := dirPathsOpens(t, b)
	opened("a directory never resolved", "/wt/dp/fresh/cfg/g")
	c1 := dirPathsOpens(t, b)
	opened("a directory with an entry", "/wt/dp/app/cfg/f2")
	if d := int64(dirPathsOpens(t, b)-c1) - int64(c1-c0); d != 1 {
		t.Errorf("a first open in a directory with a path entry moved the counter by %d more than one in a directory never resolved, want 1", d)
	}

	for _, p := range []string{"/wt/dp/prot/cfg/z1", "/wt/dp/prot/cfg/z2"} {
		mkfile(t, p, 0)
		deniedWithEvent(t, b, cgfd, "a fresh file in a protected directory", "open:"+p, policy.OpFile, set, "dirpaths")
	}
	deniedWithEvent(t, b, cgfd, "an exact rule's file in a directory with an entry", "open:/wt/dp/app/cfg/secret", policy.OpFile, set, "dirpaths")
	deniedWithEvent(t, b, cgfd, "a hard link of a protected file in a directory with an entry", "open:/wt/dp/app/cfg/hl", policy.OpFile, set, "dirpaths")

	mkfile(t, "/wt/dp/app/cfg/f3", 0)
	deniedWithEvent(t, b, cgfd2, "another workload's rule on an ancestor", "open:/wt/dp/app/cfg/f3", policy.OpFile, other, "dirpaths-app")

	opened("through the root mount", "/wt/dp/bound/cfg/b1")
	mkfile(t, "/wt/dp/bound/cfg/b2", 0)
	deniedWithEvent(t, b, cgfd, "a directory with an entry reached through a bind mount on a protected one", "open:/wt/dp/prot/view/cfg/b2", policy.OpFile, set, "dirpaths")

	opened("before the move", "/wt/dp/moved/cfg/r1")
	must(t, os.Rename("/wt/dp/moved", "/wt/dp/prot/moved"))
	mkfile(t, "/wt/dp/prot/moved/cfg/r2", 0)
	deniedWithEvent(t, b, cgfd, "a directory with an entry moved below a protected one", "open:/wt/dp/prot/moved/cfg/r2", policy.OpFile, set, "dirpaths")

	// The rename bumped the files count: the directory's entry is written again first.
	mkfile(t, "/wt/dp/app/cfg/f5", 0)
	opened("after the move", "/wt/dp/app/cfg/f5")
	withApp := hostPolicyInCgroup(t, "dirpaths", spec+"    - dir: /wt/dp/app/\n      recursive: true\n", cg)
	must(t, b.Apply(t.Context(), []*rules.Set{withApp, other}))
	mkfile(t, "/wt/dp/app/cfg/f4", 0)
	deniedWithEvent(t, b, cgfd, "a rule added on an ancestor of a directory with an entry", "open:/wt/dp/app/cfg/f4", policy.OpFile, withApp, "dirpaths")
}

// TestDirPathsRace: a directory's path entry is written from the path an open resolved, after
// the resolution; a file moved to another directory meanwhile must not give that directory the
// entry of the path resolved. While the test moves x between a free directory and a protected
// one (both named cfg, so that neither gets a names entry) and renames a directory elsewhere, which
// makes every path entry stale, one helper of the workload opens x's free path in a loop
// (resolving it, and writing the entries), and another opens a file of the protected directory,
// which must be denied every time. Without dir_fill's checks of the parent and of renames, y was
// opened 2,001 times in 124,550; with the parent's alone it passed (a move away and back within
// one open's resolution, which the rename count is for, is rarer than this test can make).
func TestDirPathsRace(t *testing.T) {
	vmguest.RequireGuest(t)
	if runtime.NumCPU() < 2 {
		t.Fatalf("%d CPUs: the moves cannot overlap the opens", runtime.NumCPU())
	}
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/dr/free/cfg/x", "/wt/dr/prot/cfg/y", "/wt/dr/rules/cfg/.keep"} {
		mkfile(t, p, 0)
	}
	// Second names keep x and y out of the per-inode cache: each open of x resolves its path
	// (its name is an exact rule's) and may write its directory's entry, and each open of y asks
	// for its directory's entry.
	must(t, os.Link("/wt/dr/free/cfg/x", "/wt/dr/x2"))
	must(t, os.MkdirAll("/wt/dr/spin0", 0o755))
	cg, cgfd := testCgroup(t, "ward-dir-race")
	b := newBackend(t)
	set := hostPolicyInCgroup(t, "dirrace", "  file:\n    matchPaths:\n    - path: /wt/dr/rules/x\n    matchDirectories:\n    - dir: /wt/dr/prot/\n      recursive: true\n    - dir: /wt/dr/rules/cfg/\n      recursive: true\n", cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	// y's second name is made after the policy: no inode key decides y, its directory does.
	must(t, os.Link("/wt/dr/prot/cfg/y", "/wt/dr/prot/y2"))
	tr := b.byID[set.Workload.ID()].tr
	requireUnnamed(t, tr, "wt", "dr", "free", "y", "spin0", "spin1")
	if !tr.Names.Has("x") || !tr.Names.Has("cfg") {
		t.Fatal("the names \"x\" and \"cfg\" must have their bits")
	}

	const stop = "/wt/dr/stop"
	p0 := dirPathsOpens(t, b)
	mover := startHammer(t, cgfd, "/wt/dr/free/cfg/x", stop)
	victim := startHammer(t, cgfd, "/wt/dr/prot/cfg/y", stop)
	moves := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); moves++ {
		must(t, os.Rename("/wt/dr/free/cfg/x", "/wt/dr/prot/cfg/x"))
		must(t, os.Rename("/wt/dr/prot/cfg/x", "/wt/dr/free/cfg/x"))
		must(t, os.Rename(fmt.Sprintf("/wt/dr/spin%d", moves%2), fmt.Sprintf("/wt/dr/spin%d", (moves+1)%2)))
	}
	mkfile(t, stop, 0)
	moverN, moverOK := mover.wait(t, "the helper opening x")
	victimN, victimOK := victim.wait(t, "the helper opening y")
	drain(b)
	used := dirPathsOpens(t, b) - p0
	t.Logf("%d rounds of moves; x opened %d times in %d; y %d times in %d; %d opens decided by a path entry",
		moves, moverOK, moverN, victimOK, victimN, used)
	if victimOK != 0 {
		t.Errorf("the protected file was opened %d times in %d", victimOK, victimN)
	}
	if moverOK < 100 || victimN < 1000 {
		t.Errorf("x opened %d times, y tried %d times: the race was not run", moverOK, victimN)
	}
}
