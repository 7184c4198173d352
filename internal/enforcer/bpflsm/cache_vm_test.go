//go:build vm

package bpflsm

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// epochNow reads ward_epoch's files count, which only a directory's rename bumps.
func epochNow(t *testing.T, b *Backend) uint32 {
	t.Helper()
	var e wardEpochs
	must(t, b.objs.WardEpoch.Lookup(uint32(0), &e))
	return e.Files
}

// cacheEntry reads the per-inode cache entry of the file at p (an inode storage map takes a
// descriptor of the file as its key).
func cacheEntry(t *testing.T, b *Backend, p string) (wardIcache, bool) {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	var c wardIcache
	if err := b.objs.Icache.Lookup(int32(f.Fd()), &c); err != nil {
		return c, false
	}
	return c, true
}

// TestInodeCacheScope: the per-inode cache of file_open is invalidated for the inodes whose
// names change, not for the whole node. Renames, links and unlinks of regular files (temporary
// files, atomic replaces) leave ward_epoch and a cached file's entry valid; a directory's rename
// bumps ward_epoch, since it changes the paths below it. Both keep the decisions right: a cached,
// permitted file moved into the blocked directory by its directory's rename, by an exchange of
// two names (RENAME_EXCHANGE) or by a hard link whose old name is then removed is denied (EPERM)
// on its next open.
func TestInodeCacheScope(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/c/blocked/x.txt", "/wt/c/a.txt", "/wt/c/free-x.txt", "/wt/c/free-l.txt", "/wt/c/d/f.txt", "/wt/c/churn/keep"} {
		mkfile(t, p, 0)
	}
	cg, cgfd := testCgroup(t, "ward-cache")
	b := newBackend(t)
	set := hostPolicyInCgroup(t, "cache", "  file:\n    matchDirectories:\n    - dir: /wt/c/blocked/\n      recursive: true\n", cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	open := func(p, want string) {
		t.Helper()
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+p); got != "open:"+p+" "+want {
			t.Errorf("open %s: %q, want %q", p, got, want)
		}
	}
	valid := func(step, p string, epoch uint32) {
		t.Helper()
		c, ok := cacheEntry(t, b, p)
		switch {
		case !ok:
			t.Errorf("%s: no cache entry for %s", step, p)
		case c.Cgroup != cg || c.Epoch != epoch || c.Stamp != c.Moves:
			t.Errorf("%s: the entry of %s is not valid: cgroup %d (want %d), epoch %d (now %d), stamp %d, moves %d",
				step, p, c.Cgroup, cg, c.Epoch, epoch, c.Stamp, c.Moves)
		}
	}

	open("/wt/c/a.txt", "ok")
	e0 := epochNow(t, b)
	valid("after the open", "/wt/c/a.txt", e0)

	// Churn of regular files by another process: write a temporary file and rename it over
	// another, link and unlink, exchange two names.
	for i := range 20 {
		must(t, os.WriteFile("/wt/c/churn/tmp", []byte{byte(i)}, 0o644))
		must(t, os.Rename("/wt/c/churn/tmp", "/wt/c/churn/keep"))
		must(t, os.Link("/wt/c/churn/keep", "/wt/c/churn/link"))
		must(t, os.Remove("/wt/c/churn/link"))
	}
	must(t, os.WriteFile("/wt/c/churn/other", nil, 0o644))
	must(t, unix.Renameat2(unix.AT_FDCWD, "/wt/c/churn/keep", unix.AT_FDCWD, "/wt/c/churn/other", unix.RENAME_EXCHANGE))
	if e := epochNow(t, b); e != e0 {
		t.Errorf("renames, links and unlinks of regular files moved ward_epoch from %d to %d", e0, e)
	}
	valid("after other files' renames, links and unlinks", "/wt/c/a.txt", e0)

	// A cached file exchanged with a blocked one: its entry goes, ward_epoch stays.
	open("/wt/c/free-x.txt", "ok")
	must(t, unix.Renameat2(unix.AT_FDCWD, "/wt/c/free-x.txt", unix.AT_FDCWD, "/wt/c/blocked/x.txt", unix.RENAME_EXCHANGE))
	if e := epochNow(t, b); e != e0 {
		t.Errorf("RENAME_EXCHANGE of two files moved ward_epoch from %d to %d", e0, e)
	}
	open("/wt/c/blocked/x.txt", "errno 1")
	open("/wt/c/free-x.txt", "ok")

	// A cached file linked into the blocked directory, then its old name removed: one name
	// again (i_nlink 1), the blocked one.
	open("/wt/c/free-l.txt", "ok")
	must(t, os.Link("/wt/c/free-l.txt", "/wt/c/blocked/l.txt"))
	must(t, os.Remove("/wt/c/free-l.txt"))
	open("/wt/c/blocked/l.txt", "errno 1")

	// A cached file's directory renamed into the blocked directory.
	open("/wt/c/d/f.txt", "ok")
	must(t, os.Rename("/wt/c/d", "/wt/c/blocked/d"))
	if e := epochNow(t, b); e == e0 {
		t.Errorf("a directory's rename left ward_epoch at %d", e)
	}
	open("/wt/c/blocked/d/f.txt", "errno 1")

	// A cached file's mount moved into the blocked directory (MS_MOVE): the same vfsmount under
	// another path. The move's source must not sit under a shared mount: /wt/m is private.
	must(t, os.MkdirAll("/wt/m", 0o755))
	must(t, unix.Mount("ward-m", "/wt/m", "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount("/wt/m", unix.MNT_DETACH) })
	must(t, unix.Mount("", "/wt/m", "", unix.MS_PRIVATE, ""))
	must(t, os.MkdirAll("/wt/m/data", 0o755))
	must(t, unix.Mount("ward-data", "/wt/m/data", "tmpfs", 0, ""))
	mkfile(t, "/wt/m/data/f.txt", 0)
	must(t, os.MkdirAll("/wt/c/blocked/data", 0o755))
	open("/wt/m/data/f.txt", "ok")
	e1 := epochNow(t, b)
	must(t, unix.Mount("/wt/m/data", "/wt/c/blocked/data", "", unix.MS_MOVE, ""))
	t.Cleanup(func() { unix.Unmount("/wt/c/blocked/data", unix.MNT_DETACH) })
	if e := epochNow(t, b); e == e1 {
		t.Errorf("a mount's move left ward_epoch at %d", e)
	}
	open("/wt/c/blocked/data/f.txt", "errno 1")
}

// TestInodeCacheConcurrentFills: two workloads open one file at once, again and again, while
// the test renames a directory in a loop, which makes every cache entry stale, so that both
// fill the file's one entry over and over, often at the same moment on the two CPUs. One
// workload may open the file, the other is denied it by a Block rule: every open of the first
// must succeed and none of the second. An entry written by both at once, without the writers'
// lock, held one's key with the other's bits and decided its next opens from them: in two runs
// of 10 s, the blocked workload opened the file 31 and 20 times, and the other was denied it 21
// and 18 times.
func TestInodeCacheConcurrentFills(t *testing.T) {
	vmguest.RequireGuest(t)
	if runtime.NumCPU() < 2 {
		t.Fatalf("%d CPUs: the fills cannot overlap", runtime.NumCPU())
	}
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/race/d/f", 0)
	must(t, os.MkdirAll("/wt/race/spin0", 0o755))
	cgFree, fdFree := testCgroup(t, "ward-race-free")
	cgBlocked, fdBlocked := testCgroup(t, "ward-race-blocked")
	b := newBackend(t)
	free := hostPolicyInCgroup(t, "race-free", "  file:\n    matchPaths:\n    - path: /wt/race/other\n", cgFree)
	free.Workload.ContainerID = "race-free"
	blocked := hostPolicyInCgroup(t, "race-blocked", "  file:\n    matchPaths:\n    - path: /wt/race/d/f\n", cgBlocked)
	must(t, b.Apply(t.Context(), []*rules.Set{free, blocked}))

	const stop = "/wt/race/stop"
	freeHammer := startHammer(t, fdFree, "/wt/race/d/f", stop)
	blockedHammer := startHammer(t, fdBlocked, "/wt/race/d/f", stop)
	e0 := epochNow(t, b)
	renames := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); renames++ {
		must(t, os.Rename(fmt.Sprintf("/wt/race/spin%d", renames%2), fmt.Sprintf("/wt/race/spin%d", (renames+1)%2)))
	}
	mkfile(t, stop, 0)
	freeN, freeOK := freeHammer.wait(t, "the permitted workload's helper")
	blockedN, blockedOK := blockedHammer.wait(t, "the blocked workload's helper")
	drain(b)
	t.Logf("%d renames (epoch +%d); permitted workload: %d of %d opens; blocked workload: %d of %d",
		renames, epochNow(t, b)-e0, freeOK, freeN, blockedOK, blockedN)
	if blockedOK != 0 {
		t.Errorf("the blocked workload opened the file %d times in %d", blockedOK, blockedN)
	}
	if freeOK != freeN {
		t.Errorf("the permitted workload was denied the file %d times in %d", freeN-freeOK, freeN)
	}
	if freeN < 1000 || blockedN < 1000 {
		t.Errorf("%d and %d opens: the race was not run", freeN, blockedN)
	}
}

// hammer is a helper process that opens one file in a loop until another file exists.
type hammer struct {
	cmd *exec.Cmd
	out *strings.Builder
}

// startHammer starts a helper in the cgroup cgfd that opens p in a loop until stop exists.
func startHammer(t *testing.T, cgfd int, p, stop string) *hammer {
	t.Helper()
	cmd := exec.Command("/wt/bin/reader")
	cmd.Env = []string{trigger.Command("hammeruntil:" + p + ":" + stop)}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	must(t, cmd.Start())
	return &hammer{cmd: cmd, out: out}
}

// wait waits for the helper to stop and returns how many opens it made and how many of
// them succeeded.
func (h *hammer) wait(t *testing.T, who string) (n, ok int) {
	t.Helper()
	err := h.cmd.Wait()
	if _, serr := fmt.Sscanf(h.out.String(), "%d %d", &n, &ok); serr != nil || err != nil {
		t.Fatalf("%s: %v %v: %q", who, serr, err, h.out.String())
	}
	return n, ok
}

// TestPassingEntry: a cache entry whose bits name no rule (Pass) decides its workload's next
// opens before the rest of file_open (ward.c, passes), and only those: another workload with
// a Block rule on the file, and the same workload after a policy change that blocks it, are
// denied (EPERM) on their next open.
func TestPassingEntry(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/p/f.txt", 0)
	cgA, fdA := testCgroup(t, "ward-pass-a")
	cgB, fdB := testCgroup(t, "ward-pass-b")
	b := newBackend(t)
	elsewhere := "  file:\n    matchDirectories:\n    - dir: /wt/p/blocked/\n      recursive: true\n"
	blockFile := "  file:\n    matchPaths:\n    - path: /wt/p/f.txt\n"
	sets := func(specA string) []*rules.Set {
		a, b := hostPolicyInCgroup(t, "pass-a", specA, cgA), hostPolicyInCgroup(t, "pass-b", blockFile, cgB)
		a.Workload.ContainerID, b.Workload.ContainerID = "pass-a", "pass-b"
		return []*rules.Set{a, b}
	}
	must(t, b.Apply(t.Context(), sets(elsewhere)))
	// A denied open must also be reported, by the workload whose rule denied it.
	open := func(fd int, who, want string) {
		t.Helper()
		drain(b)
		if got := helperRun(t, fd, "/wt/bin/reader", 0, "open:/wt/p/f.txt"); got != "open:/wt/p/f.txt "+want {
			t.Errorf("%s: open: %q, want %q", who, got, want)
		}
		if want != "errno 1" {
			return
		}
		workload := map[int]string{fdA: "pass-a", fdB: "pass-b"}[fd]
		if _, ok := waitEvent(b, func(ev enforcer.Event) bool {
			return ev.Errno == int(syscall.EPERM) && ev.Access.Path == "/wt/p/f.txt" && strings.Contains(ev.Workload, workload)
		}); !ok {
			t.Errorf("%s: no EPERM event of %s for /wt/p/f.txt", who, workload)
		}
	}
	open(fdA, "workload A, first open", "ok")
	open(fdA, "workload A, cached", "ok")
	if c, ok := cacheEntry(t, b, "/wt/p/f.txt"); !ok || c.Pass != 1 || c.Cgroup != cgA {
		t.Fatalf("after A's opens: entry %+v (found %v), want a passing entry of cgroup %d", c, ok, cgA)
	}
	open(fdB, "workload B, Block rule on the file", "errno 1")
	open(fdA, "workload A after B", "ok")
	open(fdA, "workload A, cached again", "ok")
	must(t, b.Apply(t.Context(), sets(blockFile)))
	open(fdA, "workload A, its policy now blocks the file", "errno 1")
	// Its entry now holds the Block rule's bits: not a passing one.
	open(fdA, "workload A, blocked and cached", "errno 1")

	// file_permission: a valid entry that does not pass still decides a write through a
	// descriptor opened before the policy. A's read-only open of g.txt caches the readOnly
	// rule's bits; the write through the older read-write descriptor must be denied.
	mkfile(t, "/wt/p/g.txt", 0)
	rw, err := os.OpenFile("/wt/p/g.txt", os.O_RDWR, 0)
	must(t, err)
	defer rw.Close()
	must(t, b.Apply(t.Context(), sets("  file:\n    matchPaths:\n    - path: /wt/p/g.txt\n      readOnly: true\n")))
	if got := helperRun(t, fdA, "/wt/bin/reader", 0, "open:/wt/p/g.txt"); got != "open:/wt/p/g.txt ok" {
		t.Fatalf("workload A, read-only open of g.txt: %q", got)
	}
	if c, ok := cacheEntry(t, b, "/wt/p/g.txt"); !ok || c.Pass != 0 || c.Cgroup != cgA {
		t.Fatalf("after A's read-only open: entry %+v (found %v), want one of cgroup %d that does not pass", c, ok, cgA)
	}
	drain(b)
	if got, _ := helperRunFilesPID(t, fdA, "/wt/bin/reader", "writefd:3", rw); got != "writefd:3 errno 1" {
		t.Errorf("workload A, write through a descriptor opened before the policy: %q, want errno 1", got)
	}
	if _, ok := waitEvent(b, func(ev enforcer.Event) bool {
		return ev.Errno == int(syscall.EPERM) && ev.Access.Path == "/wt/p/g.txt" && ev.Access.Write
	}); !ok {
		t.Errorf("no EPERM event for the write to /wt/p/g.txt")
	}
}

// TestMountReuse: a per-inode cache entry names the file's mount by its address, and the
// kernel gives a freed mount's address to the next mount. A file opened through a bind mount
// on /wt/m/a (a passing entry), unmounted, and mounted again on the protected /wt/prot must be
// denied there, with its event: the entry names the mount table it was written under, and the
// unmount changed it. Without that, every round's open was permitted (20 of 20, the thread
// pinned to one CPU so that the freed mount is the next one handed out).
func TestMountReuse(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/data/f.txt", 0)
	must(t, os.MkdirAll("/wt/m/a", 0o755))
	must(t, os.MkdirAll("/wt/prot", 0o755))
	cg, fd := testCgroup(t, "ward-mount-reuse")
	b := newBackend(t)
	set := hostPolicyInCgroup(t, "mount-reuse", "  file:\n    matchDirectories:\n    - dir: /wt/prot/\n      recursive: true\n", cg)
	set.Workload.ContainerID = "mount-reuse"
	must(t, b.Apply(t.Context(), []*rules.Set{set}))

	// A mount's memory is freed after an RCU grace period on the CPU that unmounted it, and
	// that CPU's next mount takes it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu0 unix.CPUSet
	cpu0.Set(0)
	must(t, unix.SchedSetaffinity(0, &cpu0))
	t.Cleanup(func() {
		_ = unix.Unmount("/wt/m/a", unix.MNT_DETACH)
		_ = unix.Unmount("/wt/prot", unix.MNT_DETACH)
	})
	const rounds = 5
	reused := 0
	for i := range rounds {
		must(t, unix.Mount("/wt/data", "/wt/m/a", "", unix.MS_BIND, ""))
		for range 2 {
			if got := helperRun(t, fd, "/wt/bin/reader", 0, "open:/wt/m/a/f.txt"); got != "open:/wt/m/a/f.txt ok" {
				t.Fatalf("round %d: open through /wt/m/a: %q", i, got)
			}
		}
		before, ok := cacheEntry(t, b, "/wt/m/a/f.txt")
		if !ok || before.Pass != 1 {
			t.Fatalf("round %d: entry %+v (found %v), want a passing one", i, before, ok)
		}
		must(t, unix.Unmount("/wt/m/a", 0))
		time.Sleep(100 * time.Millisecond)
		must(t, unix.Mount("/wt/data", "/wt/prot", "", unix.MS_BIND, ""))
		drain(b)
		if got := helperRun(t, fd, "/wt/bin/reader", 0, "open:/wt/prot/f.txt"); got != "open:/wt/prot/f.txt errno 1" {
			t.Errorf("round %d: open through the new mount on /wt/prot: %q, want errno 1", i, got)
		} else if _, ok := waitEvent(b, func(ev enforcer.Event) bool {
			return ev.Errno == int(syscall.EPERM) && ev.Access.Path == "/wt/prot/f.txt"
		}); !ok {
			t.Errorf("round %d: no EPERM event for /wt/prot/f.txt", i)
		}
		// The denied open wrote the entry again, with the new mount's address.
		if after, _ := cacheEntry(t, b, "/wt/prot/f.txt"); after.Mnt == before.Mnt {
			reused++
		}
		must(t, unix.Unmount("/wt/prot", 0))
	}
	if reused == 0 {
		t.Fatalf("no round's new mount took the old one's address: the test proved nothing")
	}
	t.Logf("%d of %d rounds reused the unmounted mount's address", reused, rounds)
}
