//go:build vm

package apparmor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
	copyTo := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
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
	copyTo(kill, runtimeKill)
	copyTo(kill, otherKill)
	copyTo(cat, runtimeCat)
	copyTo(cat, otherCat)

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

	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Fatal(err)
	}
	if parser, err = filepath.EvalSymlinks(parser); err != nil {
		t.Fatal(err)
	}
	exempt, err := RenderExempt([]string{parser})
	if err != nil {
		t.Fatal(err)
	}
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
