//go:build vm && selinux

// The SELinux VM suite. It needs the selinux boot profile (tools/vmrun): run it with
// `make test-vm`, which runs packages with these tags in a second pass booted with
// WARD_VM_BOOT_PROFILE=selinux, or with
// `WARD_VM_BOOT_PROFILE=selinux go test -tags 'vm selinux' -exec $PWD/bin/vmrun ./internal/enforcer/selinux`.

package selinux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestMain makes the test binary the trigger program (package trigger) when it runs as an
// acting executable.
func TestMain(m *testing.M) {
	trigger.Main()
	vmguest.Main(m)
}

// guestSemodule stands in for semodule in the guest, which has no module store. semodule -i
// compiles the module together with every other one into a binary policy and loads it with one
// write; here the compiling is done by the VM harness's selinux service on the host (tools/vmrun,
// selinuxService), with the reference policy the guest booted with and the same secilc, because
// under emulation secilc spends most of a minute on the reference policy's 22 MB of CIL. The
// guest's kernel loads the result, as it would semodule's. It is only called for modules with
// fromSource domains; the static module is in the boot policy.
type guestSemodule struct {
	t     *testing.T
	calls int
}

// semoduleRequests names the requests of every guestSemodule in the test binary apart.
var semoduleRequests atomic.Int64

func (g *guestSemodule) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	g.calls++
	if name != "semodule" || len(args) != 2 || args[0] != "-i" {
		return nil, fmt.Errorf("guestSemodule: unexpected %s %v", name, args)
	}
	dir := os.Getenv("WARD_VM_SERVICE")
	if dir == "" {
		return nil, errors.New("guestSemodule: WARD_VM_SERVICE is unset: run the test under tools/vmrun with the selinux boot profile, whose host service compiles the policy")
	}
	module, err := os.ReadFile(args[1])
	if err != nil {
		return nil, err
	}
	req := filepath.Join(dir, fmt.Sprintf("%d-%d", os.Getpid(), semoduleRequests.Add(1)))
	if err := os.WriteFile(req+".cil.tmp", module, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(req+".cil.tmp", req+".cil"); err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var policyBytes []byte
	for {
		if b, err := os.ReadFile(req + ".err"); err == nil {
			return b, fmt.Errorf("the host's secilc refused the module: %s", b)
		}
		if b, err := os.ReadFile(req + ".policy"); err == nil {
			policyBytes = b
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("guestSemodule: no answer from the host's selinux service in %s: %w", time.Since(start).Round(time.Second), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	g.t.Logf("the host's secilc rebuilt the policy in %s", time.Since(start).Round(time.Millisecond))
	// One write: the kernel rejects a policy written in chunks.
	f, err := os.OpenFile("/sys/fs/selinux/load", os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Write(policyBytes)
	if err == nil && n != len(policyBytes) {
		err = fmt.Errorf("short write to /sys/fs/selinux/load: %d of %d", n, len(policyBytes))
	}
	return nil, err
}

// eventLog collects a backend's events, and passes them on to ch for the conformance runner.
type eventLog struct {
	mu  sync.Mutex
	evs []enforcer.Event
	ch  chan enforcer.Event
}

func collect(b *Backend) *eventLog {
	l := &eventLog{ch: make(chan enforcer.Event, 1024)}
	go func() {
		for ev := range b.Events() {
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
			select {
			case l.ch <- ev:
			default:
			}
		}
	}()
	return l
}

func (l *eventLog) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ev := range l.evs {
		fmt.Fprintf(&b, "\n  %+v", ev)
	}
	return b.String()
}

// avcLog returns the kernel log's AVC lines, for failure messages.
func avcLog() string {
	out, _ := exec.Command("dmesg").CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "avc:") {
			lines = append(lines, l)
		}
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

func (l *eventLog) reset() {
	l.mu.Lock()
	l.evs = nil
	l.mu.Unlock()
}

// wait returns the events about path once one satisfies ok, or all of them after the timeout.
func (l *eventLog) wait(path string, timeout time.Duration, ok func(enforcer.Event) bool) ([]enforcer.Event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		var out []enforcer.Event
		found := false
		for _, ev := range l.evs {
			if ev.Access.Path == path {
				out = append(out, ev)
				if ok(ev) {
					found = true
				}
			}
		}
		l.mu.Unlock()
		if found || time.Now().After(deadline) {
			return out, found
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newBackend(t *testing.T) (*Backend, *eventLog, *guestSemodule) {
	t.Helper()
	vmguest.RequireProfile(t, "selinux")
	if b, err := os.ReadFile("/sys/fs/selinux/enforce"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("SELinux is not enforcing: %q %v", b, err)
	}
	// The profile records the static module where the loader keeps the installed one.
	state := t.TempDir()
	mod, err := os.ReadFile(filepath.Join(DefaultStateDir, ModuleName+".cil"))
	if err != nil {
		t.Fatalf("the selinux profile did not record Ward's module: %v", err)
	}
	if err := os.WriteFile(filepath.Join(state, ModuleName+".cil"), mod, 0o600); err != nil {
		t.Fatal(err)
	}
	vmguest.UnlimitKmsg(t)
	g := &guestSemodule{t: t}
	// Records chosen as in production: the audit netlink group, or /dev/kmsg where it cannot be
	// joined. In the VM it cannot: refpolicy denies kernel_t the audit_read capability.
	b, err := New(context.Background(), Config{StateDir: state, Runner: g})
	if err != nil {
		t.Fatal(err)
	}
	log := collect(b)
	t.Cleanup(func() {
		if err := b.Apply(context.Background(), nil); err != nil {
			t.Errorf("restore labels: %v", err)
		}
		if n := len(b.Loader().Labels()); n != 0 {
			t.Errorf("%d labels left after removing every policy", n)
		}
		b.Close()
	})
	return b, log, g
}

// run performs operations through a copy of this binary at exe, as uid, and returns the
// helper's result line for each operation.
func run(t *testing.T, exe string, uid uint32, ops ...string) []string {
	t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), trigger.Command(append([]string{"label"}, ops...)...))
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", exe, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(ops)+1 {
		t.Fatalf("%s printed %q", exe, out)
	}
	t.Logf("%s ran as %s", exe, strings.TrimPrefix(lines[0], "label "))
	return lines[1:]
}

// helperDir is a new directory holding a copy of this binary (the trigger program) at bin/helper.
func helperDir(t *testing.T) (dir, exe string) {
	t.Helper()
	dir = t.TempDir()
	exe = filepath.Join(dir, "bin", "helper")
	copySelf(t, exe)
	return dir, exe
}

// writeFiles creates each file with one byte that anyone may read and write.
func writeFiles(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.WriteFile(p, []byte("x"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func copySelf(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", self, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

// TestBlockAndReadOnly applies a host policy through the Backend and checks, for real, that a
// blocked read fails with EACCES and is reported by an AVC record attributed to the policy, that
// readOnly blocks writes but not reads, that other files are untouched, and that removing the
// policy gives every file its original label back.
func TestBlockAndReadOnly(t *testing.T) {
	b, log, g := newBackend(t)
	dir, exe := helperDir(t)
	secret, config, public := filepath.Join(dir, "secret"), filepath.Join(dir, "config"), filepath.Join(dir, "public")
	writeFiles(t, secret, config, public)
	lb := XattrLabeler{}
	origSecret, err := lb.Get(secret)
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile([]policy.Policy{
		hostPolicy("block-secret", file(policy.MatchPath, secret, block)),
		hostPolicy("ro-config", file(policy.MatchPath, config, block, readOnly)),
	}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	if g.calls != 0 {
		t.Errorf("Apply rebuilt the policy (%d calls) although the static module is in force", g.calls)
	}
	if got, _ := lb.Get(secret); got != Label("ward_bbb_t") {
		t.Fatalf("secret is labelled %q", got)
	}

	got := run(t, exe, 0, "open:"+secret, "write:"+secret, "open:"+config, "write:"+config, "open:"+public, "write:"+public)
	want := []string{
		fmt.Sprintf("open:%s errno %d", secret, syscall.EACCES),
		fmt.Sprintf("write:%s errno %d", secret, syscall.EACCES),
		"open:" + config + " ok",
		fmt.Sprintf("write:%s errno %d", config, syscall.EACCES),
		"open:" + public + " ok",
		"write:" + public + " ok",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %q, want %q", got[i], want[i])
		}
	}

	for _, c := range []struct {
		path, policy string
		write        bool
	}{{secret, "block-secret", false}, {secret, "block-secret", true}, {config, "ro-config", true}} {
		evs, ok := log.wait(c.path, 5*time.Second, func(ev enforcer.Event) bool {
			return ev.Access.Write == c.write && ev.Errno == int(syscall.EACCES)
		})
		if !ok {
			t.Errorf("no denial event for %s write=%v: %+v\nall events: %s\nkernel log: %s", c.path, c.write, evs, log.dump(), avcLog())
			continue
		}
		for _, ev := range evs {
			if ev.Access.Write != c.write {
				continue
			}
			v := set.Decide(ev.Access)
			if v.Action != block || v.Policy != c.policy || v.Rule != "spec.file.matchPaths[0]" {
				t.Errorf("event %+v attributed to %s %s %s, want Block by %s", ev.Access, v.Action, v.Policy, v.Rule, c.policy)
			}
			t.Logf("AVC: %s", ev.Detail)
		}
	}
	if evs, _ := log.wait(public, 300*time.Millisecond, func(enforcer.Event) bool { return false }); len(evs) != 0 {
		t.Errorf("events about an unprotected file: %+v", evs)
	}

	if err := b.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := lb.Get(secret); got != origSecret {
		t.Errorf("secret's label after removing the policy: %q, want %q", got, origSecret)
	}
	if got := run(t, exe, 0, "open:"+secret); got[0] != "open:"+secret+" ok" {
		t.Errorf("after removing the policy: %s", got[0])
	}
}

// TestAuditGranted checks that an Audit rule lets the access through and that auditallow's
// "avc: granted" record reaches Events, attributed to the policy.
func TestAuditGranted(t *testing.T) {
	b, log, _ := newBackend(t)
	dir, exe := helperDir(t)
	p := filepath.Join(dir, "watched")
	writeFiles(t, p)
	set, err := rules.Compile([]policy.Policy{hostPolicy("audit-it", file(policy.MatchPath, p, audit))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, exe, 0, "open:"+p); got[0] != "open:"+p+" ok" {
		t.Errorf("audited read: %s", got[0])
	}
	evs, ok := log.wait(p, 5*time.Second, func(ev enforcer.Event) bool { return ev.Errno == 0 })
	if !ok {
		t.Fatalf("no granted event: %+v", evs)
	}
	if v := set.Decide(evs[0].Access); v.Action != audit || v.Policy != "audit-it" {
		t.Errorf("granted event attributed to %s %s", v.Action, v.Policy)
	}
}

// TestProcessBlockAndFromSource checks exec denial of a blocked program and a fromSource rule:
// the source runs in its Ward domain (a policy rebuilt in the guest), is denied the file, and
// every other program still reads it.
func TestProcessBlockAndFromSource(t *testing.T) {
	b, log, g := newBackend(t)
	dir := t.TempDir()
	reader, other, tool := filepath.Join(dir, "bin", "reader"), filepath.Join(dir, "bin", "other"), filepath.Join(dir, "bin", "tool")
	for _, p := range []string{reader, other, tool} {
		copySelf(t, p)
	}
	secret := filepath.Join(dir, "secret")
	writeFiles(t, secret)
	set, err := rules.Compile([]policy.Policy{
		hostPolicy("no-tool", proc(policy.MatchPath, tool, block)),
		hostPolicy("other-not-secret", file(policy.MatchPath, secret, block, from(other))),
	}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatalf("%v", err)
	}
	if g.calls != 1 {
		t.Errorf("policy rebuilds: %d, want 1 for the fromSource domain", g.calls)
	}
	if got := run(t, reader, 0, "exec:"+tool); got[0] != fmt.Sprintf("exec:%s errno %d", tool, syscall.EACCES) {
		t.Errorf("blocked exec: %s", got[0])
	}
	if got := run(t, reader, 0, "open:"+secret); got[0] != "open:"+secret+" ok" {
		t.Errorf("reader: %s", got[0])
	}
	if got := run(t, other, 0, "open:"+secret); got[0] != fmt.Sprintf("open:%s errno %d", secret, syscall.EACCES) {
		t.Errorf("other (fromSource): %s", got[0])
	}
	for _, c := range []struct{ path, policy, source string }{{tool, "no-tool", ""}, {secret, "other-not-secret", other}} {
		evs, ok := log.wait(c.path, 5*time.Second, func(ev enforcer.Event) bool { return ev.Errno != 0 })
		if !ok {
			t.Errorf("no denial event for %s: %+v", c.path, evs)
			continue
		}
		for _, ev := range evs {
			if ev.Errno == 0 {
				continue
			}
			if c.source != "" && ev.Access.Source != c.source {
				t.Errorf("event source %q, want %q", ev.Access.Source, c.source)
			}
			if v := set.Decide(ev.Access); v.Action != block || v.Policy != c.policy {
				t.Errorf("event %+v attributed to %s %s, want Block by %s", ev.Access, v.Action, v.Policy, c.policy)
			}
		}
	}
	log.reset()
}

// moduleRemover stands in for `semodule -r` in the guest, which has no module store (the static
// module is in the boot policy): it records the call.
type moduleRemover struct{ calls []string }

func (m *moduleRemover) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	m.calls = append(m.calls, name+" "+strings.Join(args, " "))
	return nil, nil
}

// TestUninstaller: the labels of a Block stay when the daemon stops (the backend is not told);
// the Uninstaller, as ward uninstall runs it from the state alone, gives the file its original
// label back, so the kernel lets the open through again, asks semodule to remove Ward's module,
// and a second run removes nothing.
func TestUninstaller(t *testing.T) {
	b, _, _ := newBackend(t)
	dir, exe := helperDir(t)
	secret := filepath.Join(dir, "secret")
	writeFiles(t, secret)
	lb := XattrLabeler{}
	orig, err := lb.Get(secret)
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("block-secret", file(policy.MatchPath, secret, block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, exe, 0, "open:"+secret); got[0] != fmt.Sprintf("open:%s errno %d", secret, syscall.EACCES) {
		t.Fatalf("with the policy applied: %s", got[0])
	}

	rm := &moduleRemover{}
	var did []string
	u := Uninstaller{State: b.loader.dir, Runner: rm}
	if err := u.Uninstall(context.Background(), func(s string) { did = append(did, s) }); err != nil {
		t.Fatal(err)
	}
	t.Logf("uninstall: %q", did)
	if want := []string{"restored the original SELinux label of 1 files", "removed SELinux module ward"}; strings.Join(did, "; ") != strings.Join(want, "; ") {
		t.Errorf("uninstall did %q, want %q", did, want)
	}
	if got := strings.Join(rm.calls, "; "); got != "semodule -r ward" {
		t.Errorf("semodule calls %q, want one semodule -r ward", got)
	}
	if got, _ := lb.Get(secret); got != orig {
		t.Errorf("secret's label after uninstall: %q, want %q", got, orig)
	}
	if got := run(t, exe, 0, "open:"+secret); got[0] != "open:"+secret+" ok" {
		t.Errorf("after uninstall: %s", got[0])
	}

	did = nil
	if err := u.Uninstall(context.Background(), func(s string) { did = append(did, s) }); err != nil || len(did) != 0 {
		t.Errorf("second uninstall: %q, %v; want nothing, nil", did, err)
	}
}
