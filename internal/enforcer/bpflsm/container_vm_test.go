//go:build vm

package bpflsm

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// nsShell is a shell started in a mount namespace of its own and a workload's cgroup, talked to
// through its standard input and output (stderr joined): a container without a runtime.
type nsShell struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
	seen  []string // every line read so far
}

// startNSShell starts script under /bin/sh -c; the test's cleanup closes its input and waits.
func startNSShell(t *testing.T, cgfd int, script string) *nsShell {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, UseCgroupFD: true, CgroupFD: cgfd}
	in, err := cmd.StdinPipe()
	must(t, err)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return &nsShell{t: t, cmd: cmd, in: in, lines: bufio.NewScanner(out)}
}

// next reads lines until one starts with prefix and returns it, failing the test at the end of
// the output.
func (s *nsShell) next(prefix string) string {
	s.t.Helper()
	for s.lines.Scan() {
		s.seen = append(s.seen, s.lines.Text())
		if strings.HasPrefix(s.lines.Text(), prefix) {
			return s.lines.Text()
		}
	}
	s.t.Fatalf("the shell did not print %q: %q", prefix, s.seen)
	return ""
}

// send writes a line to the shell's standard input.
func (s *nsShell) send(line string) {
	s.t.Helper()
	_, err := io.WriteString(s.in, line+"\n")
	must(s.t, err)
}

// mountNS returns the shell's mount namespace, failing the test when it is Ward's.
func (s *nsShell) mountNS() uint32 {
	s.t.Helper()
	mntns, ok := enforcer.MountNS(strconv.Itoa(s.cmd.Process.Pid))
	if own, _ := enforcer.MountNS("self"); !ok || mntns == own {
		s.t.Fatalf("the shell's mount namespace %d is not its own (Ward's %d)", mntns, own)
	}
	return mntns
}

// TestContainerRootInodes: a container's files are not Ward's. Its process runs in a mount
// namespace of its own, where a tmpfs holds /wt/ctr/app/secret; in Ward's namespace /wt/ctr
// is empty. A directory rule on /wt/ctr/app/secret/ must still hold after the container
// renames /wt/ctr/app, which only the directory's inode key can do, so that key must come from
// the container's root: reading the file through the new name fails with EPERM, and the alert
// names the file under the rule's directory.
func TestContainerRootInodes(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt/ctr"))
	must(t, os.MkdirAll("/wt/ctr", 0o755))
	cg, cgfd := testCgroup(t, "ward-ctr")
	b := newBackend(t)

	// The container: a shell in its own mount namespace and the workload's cgroup, which
	// makes its files, then renames the rule's parent and reads the file when told to.
	sh := startNSShell(t, cgfd, `mount -t tmpfs ctr /wt/ctr && mkdir -p /wt/ctr/app/secret &&
echo secret > /wt/ctr/app/secret/f && echo ready || exit 1
read go; mv /wt/ctr/app /wt/ctr/app2 && cat /wt/ctr/app2/secret/f; echo "rc=$?"
read done`)
	sh.next("ready")
	if _, err := os.Stat("/wt/ctr/app"); err == nil {
		t.Fatal("the container's files are visible in Ward's mount namespace: the test proves nothing")
	}
	mntns := sh.mountNS()

	set := hostPolicyInCgroup(t, "ctr-secret", "  file:\n    matchDirectories:\n    - dir: /wt/ctr/app/secret/\n      recursive: true\n", cg)
	set.Workload.MntNS = mntns
	must(t, b.Apply(context.Background(), []*rules.Set{set}))
	drain(b)

	sh.send("go")
	if rc := sh.next("rc="); rc != "rc=1" {
		t.Errorf("reading the protected file after renaming its ancestor in the container: %s, want rc=1 (output %q)", rc, sh.seen)
	}
	if !strings.Contains(strings.Join(sh.seen, "\n"), "not permitted") {
		t.Errorf("cat did not fail with EPERM: %q", sh.seen)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Op == policy.OpFile })
	if !ok {
		t.Fatal("no file event")
	}
	v := set.Decide(ev.Access)
	if ev.Errno != 1 || ev.Access.Path != "/wt/ctr/app/secret/f" || v.Policy != "ctr-secret" || v.Action != "Block" {
		t.Errorf("event errno %d path %s detail %q, verdict %+v", ev.Errno, ev.Access.Path, ev.Detail, v)
	}
}
