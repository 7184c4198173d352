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
	cmd := exec.Command("/bin/sh", "-c", `mount -t tmpfs ctr /wt/ctr && mkdir -p /wt/ctr/app/secret &&
echo secret > /wt/ctr/app/secret/f && echo ready || exit 1
read go; mv /wt/ctr/app /wt/ctr/app2 && cat /wt/ctr/app2/secret/f; echo "rc=$?"
read done`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, UseCgroupFD: true, CgroupFD: cgfd}
	in, err := cmd.StdinPipe()
	must(t, err)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	defer func() {
		in.Close()
		cmd.Wait()
	}()
	lines := bufio.NewScanner(out)
	var seen []string
	next := func(prefix string) string {
		t.Helper()
		for lines.Scan() {
			seen = append(seen, lines.Text())
			if strings.HasPrefix(lines.Text(), prefix) {
				return lines.Text()
			}
		}
		t.Fatalf("the container did not print %q: %q", prefix, seen)
		return ""
	}
	next("ready")
	if _, err := os.Stat("/wt/ctr/app"); err == nil {
		t.Fatal("the container's files are visible in Ward's mount namespace: the test proves nothing")
	}
	mntns, ok := mountNS(strconv.Itoa(cmd.Process.Pid))
	if own, _ := mountNS("self"); !ok || mntns == own {
		t.Fatalf("the container's mount namespace %d is not its own (Ward's %d)", mntns, own)
	}

	set := hostPolicyInCgroup(t, "ctr-secret", "  file:\n    matchDirectories:\n    - dir: /wt/ctr/app/secret/\n      recursive: true\n", cg)
	set.Workload.MntNS = mntns
	must(t, b.Apply(context.Background(), []*rules.Set{set}))
	drain(b)

	_, err = io.WriteString(in, "go\n")
	must(t, err)
	if rc := next("rc="); rc != "rc=1" {
		t.Errorf("reading the protected file after renaming its ancestor in the container: %s, want rc=1 (output %q)", rc, seen)
	}
	if !strings.Contains(strings.Join(seen, "\n"), "not permitted") {
		t.Errorf("cat did not fail with EPERM: %q", seen)
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
