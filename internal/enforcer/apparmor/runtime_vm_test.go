//go:build vm

package apparmor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestHostAttachmentLeavesRuntimeUnconfined proves in the kernel what the host profile's
// attachment does to the node's container runtime: a program it leaves out (AttachExcept) runs
// truly unconfined when an unconfined process starts it, so it can still signal a container
// whose profile receives signals only from peer=unconfined (containerd's and docker's default
// profiles), while the same program elsewhere enters the host profile and is refused. On a real
// node, runc in any profile of Ward's could no longer stop such containers.
func TestHostAttachmentLeavesRuntimeUnconfined(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	ctx := context.Background()
	dir := t.TempDir()
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	runtimeKill, runtimeCat := filepath.Join(dir, "rt", "kill"), filepath.Join(dir, "rt", "cat")
	otherKill, otherCat := filepath.Join(dir, "other", "kill"), filepath.Join(dir, "other", "cat")
	copyProgram(t, kill, runtimeKill)
	copyProgram(t, kill, otherKill)
	copyProgram(t, cat, runtimeCat)
	copyProgram(t, cat, otherCat)

	loader := NewLoader(t.TempDir(), nil)
	remove := func(name string) {
		if err := loader.Remove(ctx, name); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	}
	// A container's default profile, as containerd writes it: signals only from unconfined.
	container := Profile{Name: "wardtest-runtime-default", Text: []byte(fmt.Sprintf(HeaderPrefix+`wardtest-runtime-default
abi <%s>,
profile wardtest-runtime-default flags=(attach_disconnected) {
  /** rwlkmix,
  signal (receive) peer=unconfined,
}
`, ABI))}
	if err := loader.Load(ctx, container); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { remove(container.Name) })
	sleeper := exec.Command("aa-exec", "-p", container.Name, "--", "sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	pid := strconv.Itoa(sleeper.Process.Pid)

	exempt := exemptParser(t)
	set := &rules.Set{Workload: host}
	hostProf, _, err := Render(set, Options{Host: ReadHost(DefaultDir), AttachAll: true, AttachExcept: []string{runtimeKill, runtimeCat}})
	if err != nil {
		t.Fatal(err)
	}
	if err := loader.Load(ctx, exempt); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { remove(exempt.Name) }) // after the host profile (cleanups run last first)
	if err := loader.Load(ctx, hostProf); err != nil {
		t.Fatalf("%+v\n%s", err, hostProf.Text)
	}
	t.Cleanup(func() { remove(hostProf.Name) })

	run := func(prog string, args ...string) (string, error) {
		out, err := exec.Command(prog, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(runtimeCat, "/proc/self/attr/current"); err != nil || strings.TrimRight(out, "\x00") != "unconfined" {
		t.Errorf("a left-out program's label: %q (%v), want unconfined", out, err)
	}
	if out, err := run(otherCat, "/proc/self/attr/current"); err != nil || !strings.HasPrefix(out, hostProf.Name+" ") {
		t.Errorf("the same program elsewhere: label %q (%v), want %s", out, err, hostProf.Name)
	}
	if out, err := run(otherKill, "-CONT", pid); err == nil || !strings.Contains(out, "ermission denied") {
		t.Errorf("kill -CONT of the container's process from the host profile: %v %q, want permission denied (the check cannot fail otherwise)", err, out)
	}
	if out, err := run(runtimeKill, "-CONT", pid); err != nil {
		t.Errorf("kill -CONT of the container's process from the left-out runtime: %v %q, want success", err, out)
	}
}

// TestHostSourceStartedUnconfined shows what Limitations says of a fromSource program that a
// process outside Ward's profiles starts (systemd starting a service, a shell that predates
// Ward): the host profile's attachment puts it in ward-host, not in its child profile, so the
// rules limited to it do not apply; nor when it is started in the profile (change_onexec, as a
// runtime starts a container's entrypoint). Started from inside ward-host it enters its child
// and they do. When this test fails because the rule applies, the limitation is gone: remove it.
func TestHostSourceStartedUnconfined(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	src, secret := filepath.Join(dir, "src", "cat"), filepath.Join(dir, "secret")
	copyProgram(t, cat, src)
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	exempt := exemptParser(t)
	set, err := rules.Compile([]policy.Policy{hostPolicy("src", file(policy.MatchPath, secret, block, from(src)))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	hostProf, _, err := Render(set, Options{Host: ReadHost(DefaultDir), AttachAll: true})
	if err != nil {
		t.Fatal(err)
	}
	loader := NewLoader(t.TempDir(), nil)
	for _, p := range []Profile{exempt, hostProf} {
		if err := loader.Load(ctx, p); err != nil {
			t.Fatalf("%+v", err)
		}
		t.Cleanup(func() {
			if err := loader.Remove(ctx, p.Name); err != nil {
				t.Errorf("remove %s: %v", p.Name, err)
			}
		})
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		return strings.TrimRight(strings.TrimSpace(string(out)), "\x00"), err
	}
	// aa-exec's own exec enters the profile directly (change_onexec), as a runtime's does: the
	// shell it starts there executes src by the profile's rules.
	if out, err := run("aa-exec", "-p", hostProf.Name, "--", "sh", "-c", src+" "+secret); err == nil || !strings.Contains(out, "ermission denied") {
		t.Errorf("%s started from inside %s: read %s: %v %q, want permission denied (its child's rule)", src, hostProf.Name, secret, err, out)
	}
	label, err := run(src, "/proc/self/attr/current")
	if err != nil || !strings.HasPrefix(label, hostProf.Name+" ") {
		t.Errorf("%s started unconfined: label %q (%v), want %s by the host profile's attachment", src, label, err, hostProf.Name)
	}
	out, err := run(src, secret)
	if err != nil {
		t.Errorf("%s started unconfined: read %s: %v %q; the rule limited to it applies: remove the limitation", src, secret, err, out)
	}
	// A runtime starts a container's entrypoint the way aa-exec starts src here: in the profile.
	if out, err := run("aa-exec", "-p", hostProf.Name, "--", src, secret); err != nil {
		t.Errorf("%s started by aa-exec in %s: read %s: %v %q; the rule limited to it applies: remove the limitation", src, hostProf.Name, secret, err, out)
	}
	if !slices.ContainsFunc((&Backend{}).Limitations(), func(l string) bool { return strings.Contains(l, "started by a process outside Ward's profiles") }) {
		t.Error("no limitation names a fromSource program started by a process outside Ward's profiles")
	}
	t.Logf("%s started unconfined runs as %q and reads %s: %q", src, label, secret, out)
}

// copyProgram copies the program at src to dst, an executable file.
func copyProgram(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.WriteFile(dst, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// exemptParser is the ward-exempt profile for the guest's apparmor_parser (symlinks resolved):
// loaded before a host profile that attaches to every program, it keeps the parser that loads and
// removes profiles out of it, as the backend does.
func exemptParser(t *testing.T) Profile {
	t.Helper()
	parser, err := exec.LookPath("apparmor_parser")
	if err == nil {
		parser, err = filepath.EvalSymlinks(parser)
	}
	if err != nil {
		t.Fatal(err)
	}
	exempt, err := RenderExempt([]string{parser})
	if err != nil {
		t.Fatal(err)
	}
	return exempt
}
