//go:build vm

package apparmor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// AppArmor's part of the bypass suite (issue 17): each technique is performed under Ward's
// profile in the VM. A closed one must be denied with EACCES and give an event that rules.Decide
// attributes to the policy; an open one must behave as docs/apparmor.md says and be named by
// Limitations (so ward run and ward probe print it).
func TestBypasses(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll("/wt"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/wt/bin", "/wt/blocked/a", "/wt/anc/sub", "/wt/other", "/wt/fs", "/wt/mnt"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("tmpfs", "/wt/fs", "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount("/wt/fs", syscall.MNT_DETACH) })
	cp := func(from, to string) {
		if out, err := exec.Command("cp", from, to).CombinedOutput(); err != nil {
			t.Fatalf("cp %s %s: %v %s", from, to, err, out)
		}
	}
	for _, bin := range []string{"reader", "tool", "src", "src2", "src3", "src4"} {
		cp(self, "/wt/bin/"+bin)
	}
	cp("/usr/sbin/apparmor_parser", "/wt/bin/dyn") // a blocked dynamic program
	write := func(p, text string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/wt/secret.txt", "/wt/blocked/a/b.txt", "/wt/anc/sub/secret2", "/wt/fs/secret3"} {
		write(p, "x", 0o644)
	}
	// An ext4 file system, whose dentries drop_caches evicts (tmpfs keeps its own), for a file
	// opened by its handle after its dentry left the cache.
	vmguest.MountExt4(t, "/wt/e.img", "/wt/ext")
	if err := os.MkdirAll("/wt/ext/blocked", 0o755); err != nil {
		t.Fatal(err)
	}
	write("/wt/ext/blocked/secret4", "x", 0o644)
	handle, err := trigger.Handle("/wt/ext/blocked/secret4")
	if err != nil {
		t.Fatal(err)
	}
	evict := func() { vmguest.DropCaches(t, 3) }
	write("/wt/tool.sh", "#!/wt/bin/tool\n", 0o755) // a blocked program as the interpreter
	write("/wt/ok.sh", "#!/wt/bin/reader\n", 0o755) // an allowed one
	// Hard links made before Ward's profile.
	for _, l := range [][2]string{{"/wt/secret.txt", "/wt/hard"}, {"/wt/bin/tool", "/wt/bin/hardtool"}, {"/wt/bin/src", "/wt/bin/srclink"}} {
		if err := os.Link(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}

	pols := []policy.Policy{
		hostPolicy("guard",
			file(policy.MatchPath, "/wt/secret.txt", block),
			file(policy.MatchPath, "/wt/anc/sub/secret2", block),
			file(policy.MatchPath, "/wt/fs/secret3", block),
			file(policy.MatchDirectory, "/wt/blocked/", block, recursive),
			file(policy.MatchDirectory, "/wt/ext/blocked/", block, recursive),
			proc(policy.MatchPath, "/wt/bin/tool", block),
			proc(policy.MatchPath, "/wt/bin/dyn", block),
		),
		hostPolicy("srcnet", netw("udp", block, from("/wt/bin/src"))),
		hostPolicy("src2net", netw("tcp", block, from("/wt/bin/src2"))),
		// One rule limited to two programs: they share one child, named after src3.
		hostPolicy("sharednet", netw("udp", block, from("/wt/bin/src4"), from("/wt/bin/src3"))),
	}
	set, err := rules.Compile(pols, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := New(ctx, Config{Dir: t.TempDir(), HostAttach: HostAttachNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Apply(ctx, []*rules.Set{set}); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { b.Apply(ctx, nil) })
	prof, _ := os.ReadFile(b.loader.dir + "/ward-host")
	t.Logf("profile:\n%s", prof)

	eacces := int(syscall.EACCES)
	const host = "ward-host"
	const child = "ward-host//wt/bin/src"
	const shared = "ward-host//wt/bin/src3"
	type tc struct {
		name  string
		label string // the profile the program starts in
		exe   string
		ops   []string
		want  []string
		// event, when set, is the access the kernel's record must give, attributed to a Block of
		// policy; limit, when set, is a part of a Limitations entry that must name the technique.
		event  string
		policy string
		limit  string
		before func()
		undo   func()
	}
	errno := func(op string) string { return fmt.Sprintf("%s errno %d", op, eacces) }
	cases := []tc{
		{name: "control: open a blocked file", label: host, exe: "/wt/bin/reader", ops: []string{"open:/wt/secret.txt"},
			want: []string{errno("open:/wt/secret.txt")}, event: "/wt/secret.txt", policy: "guard"},
		{name: "control: exec a blocked program", label: host, exe: "/wt/bin/reader", ops: []string{"exec:/wt/bin/tool"},
			want: []string{errno("exec:/wt/bin/tool")}, event: "/wt/bin/tool", policy: "guard"},
		{name: "blocked program mapped executable", label: host, exe: "/wt/bin/reader", ops: []string{"mapexec:/wt/bin/tool"},
			want: []string{errno("mapexec:/wt/bin/tool")}, event: "/wt/bin/tool", policy: "guard"},
		{name: "blocked dynamic program run through ld.so", label: host, exe: "/wt/bin/reader", ops: []string{"ldso:/wt/bin/dyn"},
			want:  []string{"/wt/bin/dyn: error while loading shared libraries: /wt/bin/dyn: failed to map segment from shared object", "ldso:/wt/bin/dyn error exit 127"},
			event: "/wt/bin/dyn", policy: "guard"},
		{name: "allowed dynamic program through ld.so still runs", label: host, exe: "/wt/bin/reader", ops: []string{"ldso:/usr/sbin/apparmor_parser"},
			want: []string{"ldso:/usr/sbin/apparmor_parser ok"}},
		{name: "blocked program as a script's #! interpreter", label: host, exe: "/wt/bin/reader", ops: []string{"spawn:/wt/tool.sh:label"},
			want: []string{"/wt/tool.sh: label ward-host (enforce)", "spawn:/wt/tool.sh:label ok"}, limit: "#!"},
		{name: "allowed program as a script's #! interpreter still runs", label: host, exe: "/wt/bin/reader", ops: []string{"spawn:/wt/ok.sh:label"},
			want: []string{"/wt/ok.sh: label ward-host (enforce)", "spawn:/wt/ok.sh:label ok"}},
		{name: "new hard link to a blocked file", label: host, exe: "/wt/bin/reader", ops: []string{"link:/wt/secret.txt:/wt/hard2"},
			want: []string{errno("link:/wt/secret.txt:/wt/hard2")}, event: "/wt/secret.txt", policy: "guard"},
		{name: "new hard link to a blocked program", label: host, exe: "/wt/bin/reader", ops: []string{"link:/wt/bin/tool:/wt/bin/hardtool2"},
			want: []string{errno("link:/wt/bin/tool:/wt/bin/hardtool2")}, event: "/wt/bin/tool", policy: "guard"},
		{name: "hard link to a blocked file made before Ward", label: host, exe: "/wt/bin/reader", ops: []string{"open:/wt/hard"},
			want: []string{"open:/wt/hard ok"}, limit: "hard link made before"},
		{name: "hard link to a blocked program made before Ward", label: host, exe: "/wt/bin/reader", ops: []string{"exec:/wt/bin/hardtool"},
			want: []string{"exec:/wt/bin/hardtool ok"}, limit: "hard link made before"},
		{name: "detached mount (open_tree) of a blocked file's directory", label: host, exe: "/wt/bin/reader", ops: []string{"opentree:/wt:secret.txt"},
			want: []string{errno("opentree:/wt:secret.txt")}, event: "/wt/secret.txt", policy: "guard"},
		{name: "detached mount (open_tree) of a file system's root", label: host, exe: "/wt/bin/reader", ops: []string{"opentree:/wt/fs:secret3"},
			want: []string{"opentree:/wt/fs:secret3 ok"}, limit: "open_tree"},
		{name: "detached mount attached elsewhere (move_mount)", label: host, exe: "/wt/bin/reader", ops: []string{"movetree:/wt/blocked:/wt/mnt", "open:/wt/mnt/a/b.txt"},
			want: []string{"movetree:/wt/blocked:/wt/mnt ok", "open:/wt/mnt/a/b.txt ok"}, limit: "move_mount",
			undo: func() { syscall.Unmount("/wt/mnt", syscall.MNT_DETACH) }},
		{name: "open by handle (open_by_handle_at), dentry cached", label: host, exe: "/wt/bin/reader", ops: []string{"openhandle:/wt/ext:" + handle},
			want: []string{errno("openhandle:/wt/ext:" + handle)}, event: "/wt/ext/blocked/secret4", policy: "guard"},
		{name: "open by handle (open_by_handle_at) after the dentry was evicted", label: host, exe: "/wt/bin/reader", ops: []string{"openhandle:/wt/ext:" + handle},
			want: []string{"openhandle:/wt/ext:" + handle + " ok"}, limit: "open_by_handle_at", before: evict},
		{name: "the same file by its path after its handle", label: host, exe: "/wt/bin/reader", ops: []string{"open:/wt/ext/blocked/secret4"},
			want: []string{errno("open:/wt/ext/blocked/secret4")}, event: "/wt/ext/blocked/secret4", policy: "guard"},
		{name: "fromSource program execs itself and stays in its child", label: child, exe: "/wt/bin/src",
			ops:  []string{"label", "socket:udp", "spawn:/wt/bin/src:label,socket:udp"},
			want: []string{"label " + child + " (enforce)", errno("socket:udp"), "/wt/bin/src: label " + child + " (enforce)", "/wt/bin/src: " + errno("socket:udp"), "spawn:/wt/bin/src:label,socket:udp ok"}},
		{name: "fromSource program starts another, which enters its own child", label: child, exe: "/wt/bin/src",
			ops:  []string{"spawn:/wt/bin/src2:label,socket:tcp"},
			want: []string{"/wt/bin/src2: label ward-host//wt/bin/src2 (enforce)", "/wt/bin/src2: " + errno("socket:tcp"), "spawn:/wt/bin/src2:label,socket:tcp ok"}},
		{name: "fromSource program starts a program that returns to the workload's profile", label: child, exe: "/wt/bin/src",
			ops:  []string{"spawn:/wt/bin/reader:label"},
			want: []string{"/wt/bin/reader: label ward-host (enforce)", "spawn:/wt/bin/reader:label ok"}},
		{name: "fromSource program started from the workload enters its child", label: host, exe: "/wt/bin/reader",
			ops:  []string{"spawn:/wt/bin/src:label,socket:udp"},
			want: []string{"/wt/bin/src: label " + child + " (enforce)", "/wt/bin/src: " + errno("socket:udp"), "spawn:/wt/bin/src:label,socket:udp ok"}},
		{name: "fromSource program started from the workload enters the child it shares", label: host, exe: "/wt/bin/reader",
			ops:  []string{"spawn:/wt/bin/src4:label,socket:udp"},
			want: []string{"/wt/bin/src4: label " + shared + " (enforce)", "/wt/bin/src4: " + errno("socket:udp"), "spawn:/wt/bin/src4:label,socket:udp ok"}},
		{name: "fromSource program starts one that shares its child, which stays in it", label: shared, exe: "/wt/bin/src4",
			ops: []string{"spawn:/wt/bin/src3:label,socket:udp", "spawn:/wt/bin/src:label"},
			want: []string{"/wt/bin/src3: label " + shared + " (enforce)", "/wt/bin/src3: " + errno("socket:udp"), "spawn:/wt/bin/src3:label,socket:udp ok",
				"/wt/bin/src: label " + child + " (enforce)", "spawn:/wt/bin/src:label ok"}},
		{name: "new hard link to a fromSource program", label: host, exe: "/wt/bin/reader", ops: []string{"link:/wt/bin/src:/wt/bin/srclink2"},
			want: []string{errno("link:/wt/bin/src:/wt/bin/srclink2")}},
		{name: "fromSource program run through a hard link made before Ward", label: host, exe: "/wt/bin/reader",
			ops:  []string{"spawn:/wt/bin/srclink:label,socket:udp"},
			want: []string{"/wt/bin/srclink: label ward-host (enforce)", "/wt/bin/srclink: socket:udp ok", "spawn:/wt/bin/srclink:label,socket:udp ok"}, limit: "fromSource"},
		{name: "create in an ancestor of a blocked file still works", label: host, exe: "/wt/bin/reader", ops: []string{"create:/wt/anc/new.txt"},
			want: []string{"create:/wt/anc/new.txt ok"}},
		{name: "rename a directory that is no ancestor still works", label: host, exe: "/wt/bin/reader", ops: []string{"rename:/wt/other:/wt/other2"},
			want: []string{"rename:/wt/other:/wt/other2 ok"}, undo: func() { os.Rename("/wt/other2", "/wt/other") }},
		{name: "rename the parent of a blocked file", label: host, exe: "/wt/bin/reader", ops: []string{"rename:/wt/anc/sub:/wt/anc/sub2"},
			want: []string{errno("rename:/wt/anc/sub:/wt/anc/sub2")}, event: "/wt/anc/sub/secret2", policy: "guard",
			undo: func() { os.Rename("/wt/anc/sub2", "/wt/anc/sub") }},
		{name: "rename a further ancestor of a blocked file", label: host, exe: "/wt/bin/reader", ops: []string{"rename:/wt/anc:/wt/anc2"},
			want: []string{errno("rename:/wt/anc:/wt/anc2")}, event: "/wt/anc/sub/secret2", policy: "guard",
			undo: func() { os.Rename("/wt/anc2", "/wt/anc") }},
		{name: "rename the parent of a blocked program", label: host, exe: "/wt/bin/reader", ops: []string{"rename:/wt/bin:/wt/bin2"},
			want: []string{errno("rename:/wt/bin:/wt/bin2")}, event: "/wt/bin/tool", policy: "guard",
			undo: func() { os.Rename("/wt/bin2", "/wt/bin") }},
	}
	attributed, withExe, withPPID := 0, 0, 0
	for _, c := range cases {
		drainEvents(b)
		if c.before != nil {
			c.before()
		}
		cmd := exec.Command("aa-exec", "-p", c.label, "--", c.exe)
		cmd.Env = append(os.Environ(), trigger.Command(c.ops...))
		out, err := cmd.CombinedOutput()
		if c.undo != nil {
			c.undo()
		}
		got := strings.TrimSpace(string(out))
		if err != nil || got != strings.Join(c.want, "\n") {
			t.Errorf("%s: %v, printed:\n%s\nwant:\n%s", c.name, err, got, strings.Join(c.want, "\n"))
			time.Sleep(time.Second)
			for len(b.Events()) > 0 {
				ev := <-b.Events()
				t.Logf("%s: event %+v", c.name, ev)
			}
			continue
		}
		if c.event == "" {
			t.Logf("%s: %s", c.name, got)
			continue
		}
		evs, ok := awaitEvent(b, 5*time.Second, func(ev enforcer.Event) bool { return ev.Errno == eacces && ev.Access.Path == c.event })
		if !ok {
			t.Errorf("%s: no EACCES event for %s; events: %+v", c.name, c.event, evs)
			continue
		}
		ev := evs[len(evs)-1]
		_, v := Attribute(set, mustRecord(t, ev.Detail))
		if v.Action != block || v.Policy != c.policy {
			t.Errorf("%s: event %+v attributed to %s %s %s, want a Block of %s", c.name, ev.Access, v.Action, v.Policy, v.Rule, c.policy)
			continue
		}
		if ev.Exe != "" {
			withExe++
		} else if !strings.Contains(ev.Detail, `ward_exe="unknown: the process exited`) {
			t.Errorf("%s: event names no executable and does not say why: %s", c.name, ev.Detail)
		}
		if ev.PPID != 0 {
			withPPID++
		}
		attributed++
		t.Logf("%s: %s; event %s %s by %s %s, exe %q ppid %d (%s)", c.name, got, ev.Access.Op, ev.Access.Path, v.Policy, v.Rule, ev.Exe, ev.PPID, ev.Detail)
	}
	// The readers above exit right after their access, so whether their events name the
	// executable and the parent depends on the scheduler: counted, not required.
	t.Logf("%d attributed events, %d with the executable, %d with the parent", attributed, withExe, withPPID)
	// The record names no executable and no parent: the backend reads them from /proc while the
	// process lives. A reader that stays until its event has arrived must be named exactly.
	checkLiveEnrichment(t, b, host)
	checkSharedSource(t, b, shared)
	// Hard links made before Ward to a blocked file or program: the apply warns about each, in the
	// log and the policy's status, naming the other name when it shares the directory.
	for _, w := range [][2]string{{"/wt/secret.txt", "/wt/hard"}, {"/wt/bin/tool", "/wt/bin/hardtool"}} {
		if !slices.ContainsFunc(b.Warnings(), func(x enforcer.Warning) bool {
			return x.Policy == "guard" && strings.Contains(x.Message, w[0]+" has 2 hard links (other names: "+w[1]+")")
		}) {
			t.Errorf("no hard-link warning for %s (%s): %q", w[0], w[1], b.Warnings())
		}
	}
	// Everything the table leaves open is said at start and by ward probe.
	for _, c := range cases {
		if c.limit != "" && !slices.ContainsFunc(b.Limitations(), func(l string) bool { return strings.Contains(l, c.limit) }) {
			t.Errorf("%s: open, and no limitation names %q: %q", c.name, c.limit, b.Limitations())
		}
	}
	checkHandleWorkaround(t, b, pols, handle, evict)
}

// checkHandleWorkaround proves the fix docs/apparmor.md and Limitations give for a file opened by
// its handle after its dentry left the cache: with a capabilities Block of dac_read_search added,
// open_by_handle_at fails with EPERM, the kernel's record is attributed to that rule, and the
// blocked file is not read.
func checkHandleWorkaround(t *testing.T, b *Backend, pols []policy.Policy, handle string, evict func()) {
	t.Helper()
	set, err := rules.Compile(append(slices.Clone(pols), hostPolicy("nohandle", capa("dac_read_search", block))), host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Apply(ctx, []*rules.Set{set}); err != nil {
		t.Fatalf("%+v", err)
	}
	drainEvents(b)
	evict()
	op := "openhandle:/wt/ext:" + handle
	cmd := exec.Command("aa-exec", "-p", "ward-host", "--", "/wt/bin/reader")
	cmd.Env = append(os.Environ(), trigger.Command(op))
	out, err := cmd.CombinedOutput()
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("%s errno %d", op, int(syscall.EPERM)); err != nil || got != want {
		t.Fatalf("open by handle after eviction with dac_read_search blocked: %v, printed %q, want %q", err, got, want)
	}
	evs, ok := awaitEvent(b, 5*time.Second, func(ev enforcer.Event) bool {
		return ev.Access.Op == policy.OpCapabilities && ev.Access.Capability == "dac_read_search"
	})
	if !ok {
		t.Fatalf("open by handle with dac_read_search blocked: no event for the capability; events: %+v", evs)
	}
	ev := evs[len(evs)-1]
	if _, v := Attribute(set, mustRecord(t, ev.Detail)); v.Action != block || v.Policy != "nohandle" {
		t.Errorf("event %+v attributed to %s %s, want a Block of nohandle", ev.Access, v.Action, v.Policy)
	}
	t.Logf("open by handle with dac_read_search blocked: %s; event %s", out, ev.Detail)
}

// drainEvents discards the events the backend has queued.
func drainEvents(b *Backend) {
	for len(b.Events()) > 0 {
		<-b.Events()
	}
}

// awaitEvent reads the backend's events until one matches or timeout passes: the events read,
// the matching one last, and whether one matched.
func awaitEvent(b *Backend, timeout time.Duration, match func(enforcer.Event) bool) ([]enforcer.Event, bool) {
	var evs []enforcer.Event
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-b.Events():
			evs = append(evs, ev)
			if match(ev) {
				return evs, true
			}
		case <-deadline:
			return evs, false
		}
	}
}

func mustRecord(t *testing.T, line string) Record {
	t.Helper()
	rec, err := ParseRecord(line)
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	return rec
}

// heldEvent runs exe under label with one blocked access (op) and the trigger's hold, which
// keeps the process alive until its event (match, from its pid) has arrived: the backend reads
// what the record lacks from /proc. ev is zero, with the test failed, when none arrived.
func heldEvent(t *testing.T, b *Backend, label, exe, op string, match func(enforcer.Event) bool) (ev enforcer.Event) {
	t.Helper()
	drainEvents(b)
	cmd := exec.Command("aa-exec", "-p", label, "--", exe)
	cmd.Env = append(os.Environ(), trigger.Command(op, "hold"))
	release, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if evs, ok := awaitEvent(b, 20*time.Second, func(ev enforcer.Event) bool {
		return match(ev) && ev.PID == uint32(cmd.Process.Pid)
	}); ok {
		ev = evs[len(evs)-1]
	} else {
		t.Errorf("held %s: no event for %s from pid %d: %+v", exe, op, cmd.Process.Pid, evs)
	}
	release.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("held %s: %v: %s", exe, err, out.String())
	}
	if want := fmt.Sprintf("%s errno %d\nhold ok\n", op, int(syscall.EACCES)); out.String() != want {
		t.Errorf("held %s printed %q, want %q", exe, out.String(), want)
	}
	return ev
}

// checkSharedSource: the kernel's record from a child that two fromSource programs share names
// the child after src3; a src4 held until its event has arrived is named as the source.
func checkSharedSource(t *testing.T, b *Backend, label string) {
	t.Helper()
	ev := heldEvent(t, b, label, "/wt/bin/src4", "socket:udp", func(ev enforcer.Event) bool { return ev.Access.Op == policy.OpNetwork })
	switch {
	case ev.PID == 0:
	case ev.Access.Source != "/wt/bin/src4" || ev.Errno != int(syscall.EACCES):
		t.Errorf("held src4's event in the shared child names source %q (errno %d), want /wt/bin/src4: %+v", ev.Access.Source, ev.Errno, ev)
	default:
		t.Logf("held src4's event in %s: source %s", label, ev.Access.Source)
	}
}

// checkLiveEnrichment has a reader of the workload perform a blocked open and stay alive (the
// trigger's hold) until the event arrives: the event must name the reader's executable and
// parent, which the AppArmor record lacks and the backend reads from /proc.
func checkLiveEnrichment(t *testing.T, b *Backend, label string) {
	t.Helper()
	ev := heldEvent(t, b, label, "/wt/bin/reader", "open:/wt/secret.txt", func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/secret.txt" })
	if ev.PID == 0 {
		return
	}
	if ev.Exe != "/wt/bin/reader" || ev.PPID != uint32(os.Getpid()) {
		t.Errorf("held reader's event names executable %q and parent %d, want /wt/bin/reader and %d: %+v", ev.Exe, ev.PPID, os.Getpid(), ev)
	} else {
		t.Logf("held reader's event: exe %s, ppid %d", ev.Exe, ev.PPID)
	}
}
