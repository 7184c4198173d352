//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/conformance"
	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
	"github.com/wardsec/ward/internal/workload"
)

var host = workload.Host("ward-vm", nil)

// testCgroup makes a cgroup for the accesses of a test, so that enforcement
// keyed on it reaches the helpers and never the test binary itself (a file
// allow-list with posture block on the whole VM would deny the test its own
// files). It returns the cgroup's id and an open fd for clone3.
func testCgroup(t testing.TB, name string) (uint64, int) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		if err := os.MkdirAll("/sys/fs/cgroup", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, ""); err != nil {
			t.Fatalf("mount cgroup2: %v", err)
		}
	}
	dir := "/sys/fs/cgroup/" + name
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return st.Ino, fd
}

// hostPolicyInCgroup compiles a KubeArmorHostPolicy named name, Block, with the given spec
// lines (indented two spaces, as under spec:), as the set of the test cgroup cg.
func hostPolicyInCgroup(t *testing.T, name, spec string, cg uint64) *rules.Set {
	t.Helper()
	return hostPolicyWith(t, name, spec, policy.ActionBlock, rules.DefaultPostures(), cg)
}

// hostPolicyWith is hostPolicyInCgroup with the policy's action and the default postures given.
func hostPolicyWith(t *testing.T, name, spec string, action policy.Action, postures rules.Postures, cg uint64) *rules.Set {
	t.Helper()
	ps, _, err := policy.Parse(name+".yaml", []byte("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\n"+
		"metadata: {name: "+name+"}\nspec:\n  nodeSelector: {matchLabels: {kubearmor.io/hostname: \"*\"}}\n"+spec+"  action: "+string(action)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(ps, host, postures)
	if err != nil {
		t.Fatal(err)
	}
	return inCgroup(set, cg)
}

// inCgroup re-labels a compiled set as the workload of the test cgroup. The
// policies are host policies (the table's convention); only the key moves.
func inCgroup(set *rules.Set, cg uint64) *rules.Set {
	set.Workload = workload.Workload{Kind: workload.KindContainer, ContainerID: "conformance", CgroupID: cg}
	return set
}

// TestConformance runs the shared case table through the conformance runner:
// every access is performed for real by the named acting executable, as the
// named user, in the test workload's cgroup; the errno and the ring-buffer
// event, attributed by rules.Decide, must match the table.
func TestConformance(t *testing.T) {
	vmguest.RequireGuest(t)
	cg, cgfd := testCgroup(t, "ward-conformance")
	conformance.Run(t, &driver{b: newBackend(t), cg: cg, cgfd: cgfd}, knownDifferences)
}

// driver is the BPF-LSM backend as the conformance runner sees it: a host set
// applied to the test cgroup, a container set to a cgroup of its own, each
// access started in its workload's cgroup.
type driver struct {
	b    *Backend
	cg   uint64
	cgfd int
	// fds holds the cgroup of each container workload of the running case.
	fds map[string]int
}

func (d *driver) Name() string                         { return enforcer.BPF }
func (d *driver) Reset(*testing.T)                     {}
func (d *driver) Events() <-chan enforcer.Event        { return d.b.Events() }
func (d *driver) Errno(policy.Operation) syscall.Errno { return syscall.EPERM }

func (d *driver) Apply(t *testing.T, sets []*rules.Set) error {
	t.Cleanup(func() {
		if err := d.b.Apply(context.Background(), nil); err != nil {
			t.Errorf("clear: %v", err)
		}
	})
	d.fds = map[string]int{}
	for _, set := range sets {
		if set.Workload.Kind == workload.KindHost {
			inCgroup(set, d.cg)
			continue
		}
		// A container keeps its identity (namespace, pod, container, labels: what
		// selected its policies and what its alerts carry) and gets a cgroup, as
		// the OCI hook and NRI register one.
		cg, fd := testCgroup(t, "ward-conformance-"+set.Workload.ContainerID)
		set.Workload.CgroupID = cg
		d.fds[set.Workload.ID()] = fd
	}
	return d.b.Apply(context.Background(), sets)
}

func (d *driver) Command(_ *testing.T, set *rules.Set, exe string) *exec.Cmd {
	fd := d.cgfd
	if f, ok := d.fds[set.Workload.ID()]; ok {
		fd = f
	}
	cmd := exec.Command(exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	return cmd
}

func mkfile(t testing.TB, p string, owner uint32) { conformance.MakeFile(t, p, owner) }

// helperRun runs an acting executable in the cgroup as uid and returns the
// helper's last line.
func helperRun(t *testing.T, cgfd int, source string, uid uint32, op string) string {
	t.Helper()
	out, _ := helperRunPID(t, cgfd, source, uid, op)
	return out
}

// helperRunPID is helperRun that also returns the helper's PID, so that a test can wait for
// that process's own event (fromHelper) and not a late one of an earlier case.
func helperRunPID(t *testing.T, cgfd int, source string, uid uint32, op string) (string, uint32) {
	t.Helper()
	cmd := exec.Command(source)
	cmd.Env = []string{trigger.Command(op)}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	if uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: uid}
	}
	return helperOutput(cmd)
}

// helperOutput runs a helper and returns its last line and PID.
func helperOutput(cmd *exec.Cmd) (string, uint32) {
	out, err := cmd.CombinedOutput()
	var pid uint32
	if cmd.Process != nil {
		pid = uint32(cmd.Process.Pid)
	}
	if err != nil {
		return fmt.Sprintf("run %s: %v: %s", cmd.Path, err, out), pid
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], pid
}

// fromHelper reports whether ev was raised by the helper pid or by a child it started (exec:,
// sh:).
func fromHelper(ev enforcer.Event, pid uint32) bool { return ev.PID == pid || ev.PPID == pid }

func drain(b *Backend) {
	for {
		select {
		case <-b.Events():
		default:
			return
		}
	}
}
