//go:build vm

package bpflsm

import (
	"os"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// stackedRootScript runs in a mount namespace of its own. It lays out the roots real systems
// have, which the VM's own root (the initramfs, the namespace's root mount itself) is not:
//   - "host": a tmpfs moved onto / and chrooted into, as an initramfs's switch_root leaves
//     every process of a Debian system: the task's root is a mount stacked on the namespace's
//     root mount;
//   - "container": from there a tmpfs pivot_root'ed into, as runc leaves every container's
//     processes (runc then detaches the old root; here it stays, at /old);
//   - "oldroot": a chroot to /old, the host stage's root, now mounted below the container's;
//   - "jail": a chroot into a directory of the container's root, which is a chroot;
//   - "twice": from the container, a tmpfs moved onto / and chrooted into, as a switch_root
//     run inside a container leaves it: the task's root is stacked two mounts deep, on the
//     container's root, itself on the namespace's root mount's root;
//   - "thrice", "four" and "five": the same again from the stage before, three, four and five
//     mounts deep (nest).
//
// In each but oldroot it opens 20 fresh files no rule names (fresh: no per-inode cache entry)
// and /data/seen and /data/secret; in oldroot /data/seen, which the host stage opened; it prints
// rc=1 when the shell could not open the last file (rc=0 when it could), and waits for a line on
// standard input before the next stage is laid out: the next stage's copies open files in this
// stage's root, and the kernel's by-name counter is read after rc= (a jail stage read 5 opens that
// way, a run of 20 opens 31).
const stackedRootScript = `set -e
# mkroot DIR: busybox, the stage script and /data/secret in DIR.
mkroot() {
	mkdir -p "$1/bin" "$1/data"
	cp /bin/busybox "$1/bin/busybox"
	for a in sh cat echo mkdir mount umount pivot_root chroot seq cp; do
		ln -sf busybox "$1/bin/$a"
	done
	printf '%s\n' '#!/bin/sh' 'echo "$1"' 'read go' \
		'for i in $(seq 1 20); do echo x >"/data/$1-$i"; done' \
		'for i in $(seq 1 20); do read x <"/data/$1-$i"; done' \
		'read x </data/seen' \
		'if read x </data/secret; then echo rc=0; else echo rc=1; fi' 'read done' >"$1/bin/stage"
	chmod 755 "$1/bin/stage"
	# nest DIR NAME [DIR NAME]...: stack a tmpfs holding a copy of DIR on this root, enter
	# it, run stage NAME there, and nest the rest from there.
	cat >"$1/bin/nest" <<'NEST'
#!/bin/sh
set -e
[ $# -gt 0 ] || { read done; exit 0; }
mount -t tmpfs "$1" /t
cp -a "/$1/." /t/
cd /t
mount --move . /
name=$2
shift 2
exec chroot . /bin/sh -c 'stage "$0"; exec nest "$@"' "$name" "$@"
NEST
	chmod 755 "$1/bin/nest"
	mkdir -p "$1/t"
	echo secret >"$1/data/secret"
	echo seen >"$1/data/seen"
}
mount -t tmpfs host /wt/sr
mkroot /wt/sr
printf '%s\n' '#!/bin/sh' 'echo oldroot' 'read go' \
	'if read x </data/seen; then echo rc=0; else echo rc=1; fi' 'read done' >/wt/sr/bin/oldstage
chmod 755 /wt/sr/bin/oldstage
mkroot /wt/sr/ctr
mkroot /wt/sr/ctr/jail
mkroot /wt/sr/ctr/two
mkroot /wt/sr/ctr/two/three
mkroot /wt/sr/ctr/two/three/four
mkroot /wt/sr/ctr/two/three/four/five
mkdir -p /wt/sr/c
cd /wt/sr
mount --move . /
exec chroot . /bin/sh -c '
set -e
stage host
mount -t tmpfs ctr /c
cp -a /ctr/. /c/
mkdir -p /c/old
cd /c
pivot_root . old
exec /bin/sh -c "
set -e
stage container
chroot /old /bin/oldstage
chroot /jail /bin/stage jail
exec nest two twice three thrice four four five five
"
'
`

// TestStackedRoot: the per-inode cache and the names filter (docs/bpflsm.md, "Names before
// paths") serve processes whose root is stacked on their namespace's root mount, which is
// every process of a real system (the VM's initramfs root is the one exception), and a
// chroot into a directory is still decided by the path from the namespace's root:
//   - as a host's and as a container's processes, 20 first opens of files no rule names are
//     decided by name (the kernel's counter moves by at least 20), and opening /data/secret
//     under a Block rule on it fails with EPERM and an event naming /data/secret;
//   - chrooted to /old, the file the process calls /data/seen is /old/data/seen, which a
//     rule blocks: the per-inode cache entry of the host stage's open, under the same root,
//     must not permit it (the chroot to a mount's root empties the cache);
//   - chrooted into /jail, the file the process calls /data/secret is /jail/data/secret: it is
//     read (the rule names another file), and no open is decided by name there;
//   - stacked two, three and four mounts deep, the root is still the namespace's (at_ns_root
//     follows the mounts up to ROOT_STACK, 4): as for host and container, 20 first opens are
//     decided by name and /data/secret is denied;
//   - stacked five deep, beyond ROOT_STACK, the root counts as a chroot's: no open is decided
//     by name, and the path built from the mount tree still names /data/secret, denied.
func TestStackedRoot(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt/sr"))
	must(t, os.MkdirAll("/wt/sr", 0o755))
	cg, cgfd := testCgroup(t, "ward-stacked")
	b := newBackend(t)

	sh := startNSShell(t, cgfd, stackedRootScript)
	sh.next("host")
	mntns := sh.mountNS()
	set := hostPolicyInCgroup(t, "stacked", "  file:\n    matchPaths:\n    - path: /data/secret\n    - path: /old/data/seen\n", cg)
	set.Workload.MntNS = mntns
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	tr := b.byID[set.Workload.ID()].tr
	requireUnnamed(t, tr, "host-1", "container-1", "jail-1", "twice-1", "thrice-1", "four-1", "five-1", "data", "/")
	for _, stage := range []struct {
		name   string
		byName int // the least the by-name counter must move by, or -1: not checked
		rc     string
		path   string // the denied file's path in the event
	}{
		{"host", 20, "rc=1", "/data/secret"},
		{"container", 20, "rc=1", "/data/secret"},
		{"oldroot", -1, "rc=1", "/old/data/seen"},
		{"jail", 0, "rc=0", ""},
		{"twice", 20, "rc=1", "/data/secret"},
		{"thrice", 20, "rc=1", "/data/secret"},
		{"four", 20, "rc=1", "/data/secret"},
		{"five", 0, "rc=1", "/data/secret"},
	} {
		if stage.name != "host" {
			sh.send("next")
			sh.next(stage.name)
		}
		drain(b)
		before := byNameOpens(t, b)
		sh.send("go")
		rc := sh.next("rc=")
		moved := byNameOpens(t, b) - before
		t.Logf("%s: %d opens decided by name, the last open: %s", stage.name, moved, rc)
		if stage.byName > 0 && moved < uint64(stage.byName) {
			t.Errorf("%s: 20 first opens of files no rule names moved the by-name counter by %d, want at least %d (output %q)", stage.name, moved, stage.byName, sh.seen)
		}
		if stage.byName == 0 && moved != 0 {
			t.Errorf("%s: %d opens were decided by name where the root counts as a chroot's: its paths are not the namespace's", stage.name, moved)
		}
		if rc != stage.rc {
			t.Errorf("%s: the last open: %s, want %s (output %q)", stage.name, rc, stage.rc, sh.seen)
		}
		if stage.rc != "rc=1" {
			continue
		}
		ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Op == policy.OpFile })
		if !ok {
			t.Errorf("%s: no event for the denied read", stage.name)
			continue
		}
		if v := set.Decide(ev.Access); ev.Errno != 1 || ev.Access.Path != stage.path || v.Policy != "stacked" || v.Action != "Block" {
			t.Errorf("%s: event errno %d path %s detail %q, verdict %+v", stage.name, ev.Errno, ev.Access.Path, ev.Detail, v)
		}
	}
}

// movedRootScript runs in a mount namespace of its own, pinned to one CPU. A (the shell, then
// chrooted) has as its root a tmpfs stacked on the namespace's root, as a booted host's
// processes; B, a child that keeps the namespace's root, moves that tmpfs to /wt/nr/x when A
// writes to the FIFO /move in it. A's root mount stays the same mount, no longer at the
// namespace's root: its paths from there are /wt/nr/x/... .
const movedRootScript = `set -e
taskset -p 1 $$ >/dev/null
mount -t tmpfs r /wt/nr/r
mkdir -p /wt/nr/r/bin /wt/nr/r/data
cp /bin/busybox /wt/nr/r/bin/busybox
for a in sh cat echo; do ln -sf busybox /wt/nr/r/bin/$a; done
echo secret >/wt/nr/r/data/secret
mkfifo /wt/nr/r/move
( until [ -p /proc/$$/root/move ]; do sleep 0.1; done
  read x </proc/$$/root/move
  if mount --move /proc/$$/root /wt/nr/x; then echo moved; else echo movefailed; fi ) &
cd /wt/nr/r
mount --move . /
exec chroot . /bin/sh -c '
echo ready
read go
if read x </data/secret; then echo before=0; else echo before=1; fi
echo go >/move
read go
if read x </data/secret; then echo after=0; else echo after=1; fi
read done'
`

// TestMovedRoot: whether a task's root is its namespace's (at_ns_root, a few helper reads) is
// remembered per CPU for the root mount and the mount table (at_ns_root_now). A task's root
// mount moved away from the namespace's root stays the same mount: the move changes the table,
// and the task's next open must see its root as a chroot's. The file it calls /data/secret is
// then /wt/nr/x/data/secret, which the rule blocks: denied, with an event naming that path.
// With the table's event left out of the remembered key, the open was permitted: its path was
// taken from the task's root, as before the move.
func TestMovedRoot(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt/nr"))
	must(t, os.MkdirAll("/wt/nr/r", 0o755))
	must(t, os.MkdirAll("/wt/nr/x", 0o755))
	cg, cgfd := testCgroup(t, "ward-moved-root")
	b := newBackend(t)
	sh := startNSShell(t, cgfd, movedRootScript)
	sh.next("ready")
	set := hostPolicyInCgroup(t, "movedroot", "  file:\n    matchPaths:\n    - path: /wt/nr/x/data/secret\n", cg)
	set.Workload.MntNS = sh.mountNS()
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	sh.send("go")
	if got := sh.next("before="); got != "before=0" {
		t.Fatalf("before the move, /data/secret is /data/secret: %q, want before=0 (output %q)", got, sh.seen)
	}
	if got := sh.next("move"); got != "moved" {
		t.Fatalf("moving the root's mount: %q (output %q)", got, sh.seen)
	}
	drain(b)
	sh.send("go")
	if got := sh.next("after="); got != "after=1" {
		t.Errorf("after the move, /data/secret is /wt/nr/x/data/secret, which the rule blocks: %q, want after=1", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Op == policy.OpFile })
	if !ok {
		t.Fatal("no event for the denied read")
	}
	if v := set.Decide(ev.Access); ev.Errno != 1 || ev.Access.Path != "/wt/nr/x/data/secret" || v.Policy != "movedroot" || v.Action != "Block" {
		t.Errorf("event errno %d path %s, verdict %+v", ev.Errno, ev.Access.Path, v)
	}
	sh.send("done")
}
