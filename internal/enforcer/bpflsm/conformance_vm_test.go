//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/conformance"
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

// inCgroup re-labels a compiled set as the workload of the test cgroup. The
// policies are host policies (the table's convention); only the key moves.
func inCgroup(set *rules.Set, cg uint64) *rules.Set {
	set.Workload = workload.Workload{Kind: workload.KindContainer, ContainerID: "conformance", CgroupID: cg}
	return set
}

// TestConformance runs the shared case table: every access is performed for
// real by the named acting executable, as the named user, in the test
// workload's cgroup; the errno and the ring-buffer event, attributed by
// rules.Decide, must match the table, apart from knownDifferences.
func TestConformance(t *testing.T) {
	vmguest.RequireGuest(t)
	cases, err := conformance.Cases()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cg, cgfd := testCgroup(t, "ward-conformance")
	b := newBackend(t)
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ps, postures, err := c.Load()
			if err != nil {
				t.Fatal(err)
			}
			set, err := rules.Compile(ps, host, postures)
			if err != nil {
				t.Fatal(err)
			}
			prepareRoot(t, self, c)
			// Translated after /wt exists: symlinks and inodes are resolved then.
			if err := b.Apply(context.Background(), []*rules.Set{inCgroup(set, cg)}); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := b.Apply(context.Background(), nil); err != nil {
					t.Errorf("clear: %v", err)
				}
			}()
			for i, a := range c.Accesses {
				key := fmt.Sprintf("%s/%d", c.Name, i)
				seen[key] = true
				d := runAccess(t, b, set, cgfd, a)
				reason, known := knownDifferences[key]
				switch {
				case d != "" && !known:
					t.Errorf("%s (%s): %s", key, a.Describe(), d)
				case d == "" && known:
					t.Errorf("%s (%s): listed as a known difference (%s) but BPF-LSM agrees with Decide now", key, a.Describe(), reason)
				case d != "":
					t.Logf("%s (%s): known difference: %s (%s)", key, a.Describe(), d, reason)
				default:
					t.Logf("%s (%s): %s as expected", key, a.Describe(), a.Want.Action)
				}
			}
		})
	}
	for k := range knownDifferences {
		if !seen[k] {
			t.Errorf("known difference %s names no access of the table", k)
		}
	}
}

// prepareRoot rebuilds /wt: the helper binaries and every file the accesses
// name, owned by the access's owner and open to everyone.
func prepareRoot(t *testing.T, self string, c conformance.Case) {
	t.Helper()
	if err := os.RemoveAll("/wt"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/wt/bin", 0o777); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"reader", "writer", "other", "tool"} {
		if out, err := exec.Command("cp", self, "/wt/bin/"+b).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		os.Chmod("/wt/bin/"+b, 0o755)
	}
	for _, a := range c.Accesses {
		if a.Op == "file" {
			mkfile(t, a.Path, a.Owner)
		}
	}
	mkfile(t, "/wt/chown-target", 0)
	filepath.Walk("/wt", func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			os.Chmod(p, 0o777)
		}
		return nil
	})
}

func mkfile(t testing.TB, p string, owner uint32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, int(owner), int(owner)); err != nil {
		t.Fatal(err)
	}
}

// helperRun runs an acting executable in the cgroup as uid and returns the
// helper's last line.
func helperRun(t *testing.T, cgfd int, source string, uid uint32, op string) string {
	t.Helper()
	cmd := exec.Command(source)
	cmd.Env = []string{helperEnv + "=" + op}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	if uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: uid}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("run %s: %v: %s", source, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// accessOp is the helper op that performs a table access.
func accessOp(t *testing.T, a conformance.AccessCase) string {
	switch a.Op {
	case "file":
		if a.Write {
			return "write:" + a.Path
		}
		return "open:" + a.Path
	case "process":
		return "exec:" + a.Path
	case "network":
		return "socket:" + a.Protocol
	case "capabilities":
		if a.Capability != "chown" {
			t.Fatalf("no trigger for capability %s", a.Capability)
		}
		return "chown:/wt/chown-target"
	}
	t.Fatalf("unknown op %q", a.Op)
	return ""
}

// matches says whether an event is about the access.
func matches(a conformance.AccessCase, ev enforcer.Event) bool {
	acc := a.Access()
	if ev.Access.Op != acc.Op {
		return false
	}
	switch acc.Op {
	case policy.OpFile, policy.OpProcess:
		return ev.Access.Path == acc.Path
	case policy.OpNetwork:
		return ev.Access.Protocol == acc.Protocol && ev.Access.SockType == acc.SockType
	case policy.OpCapabilities:
		return ev.Access.Capability == acc.Capability
	}
	return false
}

func drain(b *Backend) {
	for {
		select {
		case <-b.Events():
		default:
			return
		}
	}
}

// runAccess performs one access and returns "" when errno and events agree
// with the table, or what differs.
func runAccess(t *testing.T, b *Backend, set *rules.Set, cgfd int, a conformance.AccessCase) string {
	t.Helper()
	source := a.Source
	if source == "" {
		source = conformance.DefaultSource
	}
	op := accessOp(t, a)
	drain(b)
	got := helperRun(t, cgfd, source, a.UID, op)
	want := op + " ok"
	if a.Want.Action == policy.ActionBlock {
		want = fmt.Sprintf("%s errno %d", op, int(syscall.EPERM))
	}
	var diffs []string
	if got != want {
		diffs = append(diffs, fmt.Sprintf("helper printed %q, want %q", got, want))
	}
	diffs = append(diffs, checkEvents(b, set, a, a.Want)...)
	return strings.Join(diffs, "; ")
}

// checkEvents waits for the events about an access: Block and Audit need one
// that rules.Decide attributes as the table says, with the right errno;
// Allow must produce none.
func checkEvents(b *Backend, set *rules.Set, a conformance.AccessCase, w conformance.Want) []string {
	var diffs []string
	wait := 3 * time.Second
	if w.Action == policy.ActionAllow {
		wait = 300 * time.Millisecond
	}
	deadline := time.After(wait)
	found := false
	for !found {
		select {
		case ev := <-b.Events():
			if !matches(a, ev) {
				continue
			}
			if w.Action == policy.ActionAllow {
				diffs = append(diffs, fmt.Sprintf("unexpected event %+v", ev.Access))
				continue
			}
			v := set.Decide(ev.Access)
			if err := w.Check(v); err != nil {
				diffs = append(diffs, fmt.Sprintf("event %+v (%s): %v", ev.Access, ev.Detail, err))
				continue
			}
			wantErrno := 0
			if w.Action == policy.ActionBlock {
				wantErrno = int(syscall.EPERM)
			}
			if ev.Errno != wantErrno {
				diffs = append(diffs, fmt.Sprintf("event errno %d, want %d", ev.Errno, wantErrno))
			}
			found = true
		case <-deadline:
			if w.Action != policy.ActionAllow {
				diffs = append(diffs, "no event")
			}
			return diffs
		}
	}
	return diffs
}
