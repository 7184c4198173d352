package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/events"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Root is where the runner makes every file and acting executable the table names.
const Root = "/wt"

// Executables are the acting executables the runner provides under Root/bin: copies of the test
// binary, which acts as the trigger program (package trigger) when started by the runner.
var Executables = []string{"reader", "writer", "other", "tool"}

// Driver is one backend as the runner sees it, in the shape of Tetragon's policytest: the runner
// owns the table, the files, the accesses and the checks; a driver only enforces and confines.
type Driver interface {
	// Name is the backend's name (enforcer.BPF, enforcer.AppArmor, enforcer.SELinux).
	Name() string
	// Reset runs before a case's files are made: it undoes what the previous case left on them
	// (SELinux labels) and may mount a fresh file system on Root.
	Reset(t *testing.T)
	// Apply makes the backend enforce sets, and only them, through the backend's production
	// entry point (Backend.Apply): one set per workload of the case (the host's, or the
	// containers the case lists). The driver may change a host set's Workload to the workload
	// its accesses run in (a container holding the test's helpers); the runner attributes
	// events with the same sets.
	Apply(t *testing.T, sets []*rules.Set) error
	// Command returns the command that runs exe as a process of the set's workload, as
	// production confines it (in the workload's cgroup, under its profile). The runner adds the
	// trigger's environment and the user.
	Command(t *testing.T, set *rules.Set, exe string) *exec.Cmd
	// Events is the backend's Backend.Events channel.
	Events() <-chan enforcer.Event
	// Errno is what the kernel returns for a denied access of the operation.
	Errno(op policy.Operation) syscall.Errno
}

// Run performs every access of the table under the driver's backend, for real, as the access's
// acting executable and user, and checks the trigger's errno and the backend's event, attributed
// by rules.Decide and made into an alert, against the table. A case with workloads runs each
// access in the container it names; the event must come from that container's set and the
// alert must carry its namespace and container name.
//
// known lists the accesses whose outcome under this backend differs from rules.Decide, keyed
// "case/index", with the reason (the backend's docs page keeps the same list), and the cases the
// backend does not run at all, keyed by the case's name. An unlisted difference fails the test,
// and so does a listed one that no longer differs or that names no access of the table.
func Run(t *testing.T, d Driver, known map[string]string) {
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	self := stageExecutable(t)
	// Cases with fromSource last: SELinux rebuilds its policy for them, which is slow.
	slices.SortStableFunc(cases, func(a, b Case) int {
		return boolCmp(hasSource(a), hasSource(b))
	})
	seen := map[string]bool{}
	for _, c := range cases {
		if reason, ok := known[c.Name]; ok {
			seen[c.Name] = true
			t.Logf("%s: not run under %s: %s", c.Name, d.Name(), reason)
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			ps, postures, err := c.Load()
			if err != nil {
				t.Fatal(err)
			}
			sets, err := c.Compile(ps, postures)
			if err != nil {
				t.Fatal(err)
			}
			d.Reset(t)
			prepareRoot(t, self, c)
			// Applied after the files exist: backends resolve paths (inodes, labels) then.
			if err := d.Apply(t, sets); err != nil {
				t.Fatalf("%+v", err)
			}
			for i, a := range c.Accesses {
				key := fmt.Sprintf("%s/%d", c.Name, i)
				seen[key] = true
				diff := runAccess(t, d, &c, sets, a)
				reason, isKnown := known[key]
				switch {
				case diff != "" && !isKnown:
					t.Errorf("%s (%s): %s differs from rules.Decide: %s", key, a.Describe(), d.Name(), diff)
				case diff == "" && isKnown:
					t.Errorf("%s (%s): listed as a known difference (%s) but %s agrees with Decide now", key, a.Describe(), reason, d.Name())
				case diff != "":
					t.Logf("%s (%s): known difference: %s (%s)", key, a.Describe(), diff, reason)
				default:
					t.Logf("%s (%s): %s as expected", key, a.Describe(), a.Want.Action)
				}
			}
		})
	}
	for k := range known {
		if !seen[k] {
			t.Errorf("known difference %s names no case or access of the table", k)
		}
	}
}

func hasSource(c Case) bool { return strings.Contains(c.Policies, "fromSource") }

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// stageExecutable copies the test binary to memory once and returns the copy. The acting
// executables are copies of it, and the binary the VM harness starts is on a 9p share, where
// reading its 30 MB four times a case took 5 s of each case's 7 under emulation.
func stageExecutable(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "conformance-exe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	staged := filepath.Join(dir, "trigger")
	if out, err := exec.Command("cp", self, staged).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return staged
}

// prepareRoot empties Root and makes the acting executables and every file the accesses name,
// owned by the access's owner and open to everyone, so that only the backend can say no. The
// acting executables are kept from the previous case when they are still the staged binary, as
// a node's programs outlive its policies; a driver's Reset that mounts a fresh Root, or a case
// that wrote over one, gets new copies.
func prepareRoot(t *testing.T, exe string, c Case) {
	t.Helper()
	if err := os.MkdirAll(Root, 0o777); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "bin" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(Root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(Root+"/bin", 0o777); err != nil {
		t.Fatal(err)
	}
	staged, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := os.ReadDir(Root + "/bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bins {
		if !slices.Contains(Executables, e.Name()) {
			if err := os.RemoveAll(filepath.Join(Root, "bin", e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, b := range Executables {
		p := Root + "/bin/" + b
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() || fi.Size() != staged.Size() ||
			!fi.ModTime().Equal(staged.ModTime()) {
			os.RemoveAll(p)
			if out, err := exec.Command("cp", "-p", exe, p).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
		}
		if err := os.Chown(p, 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range c.Accesses {
		if a.Op == "file" {
			MakeFile(t, a.Path, a.Owner)
		}
	}
	MakeFile(t, ChownTarget, 0)
	filepath.Walk(Root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			os.Chmod(p, 0o777)
		}
		return nil
	})
}

// ChownTarget is the file the capability trigger changes the owner of.
const ChownTarget = Root + "/chown-target"

// MakeFile makes a file (and its directories) holding "x", owned by owner and open to everyone.
func MakeFile(t testing.TB, p string, owner uint32) {
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

// TriggerOp is the trigger operation that performs an access.
func (a *AccessCase) TriggerOp() (string, error) {
	switch a.Op {
	case "file":
		if a.Write {
			return "write:" + a.Path, nil
		}
		return "open:" + a.Path, nil
	case "process":
		return "exec:" + a.Path, nil
	case "network":
		return "socket:" + a.Protocol, nil
	case "capabilities":
		if a.Capability != "chown" {
			return "", fmt.Errorf("no trigger for capability %s", a.Capability)
		}
		return "chown:" + ChownTarget, nil
	}
	return "", fmt.Errorf("unknown op %q", a.Op)
}

// runAccess performs one access and returns "" when the errno, the event and the alert agree
// with the table, or what differs.
func runAccess(t *testing.T, d Driver, c *Case, sets []*rules.Set, a AccessCase) string {
	t.Helper()
	op, err := a.TriggerOp()
	if err != nil {
		t.Fatal(err)
	}
	wi, err := c.WorkloadIndex(&a)
	if err != nil {
		t.Fatal(err)
	}
	set := sets[wi]
	ns, ctr, err := c.WantWorkload(&a)
	if err != nil {
		t.Fatal(err)
	}
	source := a.Source
	if source == "" {
		source = DefaultSource
	}
	drain(d.Events())
	cmd := d.Command(t, set, source)
	cmd.Env = append(cmd.Env, trigger.Command(op))
	if a.UID != 0 {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: a.UID, Gid: a.UID}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s: %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	got := lines[len(lines)-1]
	want := op + " ok"
	var errno syscall.Errno
	if a.Want.Action == policy.ActionBlock {
		errno = d.Errno(a.Access().Op)
		want = fmt.Sprintf("%s errno %d", op, int(errno))
	}
	var diffs []string
	if got != want {
		diffs = append(diffs, fmt.Sprintf("trigger printed %q, want %q", got, want))
	}
	return strings.Join(append(diffs, checkEvents(d, sets, set, a, errno, ns, ctr)...), "; ")
}

func drain(ch <-chan enforcer.Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// about says whether an event reports the access.
func about(a AccessCase, ev enforcer.Event) bool {
	acc := a.Access()
	if ev.Access.Op != acc.Op {
		return false
	}
	switch acc.Op {
	case policy.OpFile:
		return ev.Access.Path == acc.Path && ev.Access.Write == acc.Write
	case policy.OpProcess:
		return ev.Access.Path == acc.Path
	case policy.OpNetwork:
		return ev.Access.Protocol == acc.Protocol && ev.Access.SockType == acc.SockType
	case policy.OpCapabilities:
		return ev.Access.Capability == acc.Capability
	}
	return false
}

// checkEvents waits for the backend's events about an access. Block and Audit need one whose
// errno is the access's and whose alert, attributed by rules.Decide, carries the table's action
// and policy (KubeArmor's Action and PolicyName values) and the namespace and container of the
// access's workload; Allow must produce none. An event names the workload it came from when the
// backend knows it: that workload's set attributes it, as in production.
func checkEvents(d Driver, sets []*rules.Set, set *rules.Set, a AccessCase, errno syscall.Errno, ns, ctr string) []string {
	var diffs []string
	w := a.Want
	wait := 3 * time.Second
	if w.Action == policy.ActionAllow {
		wait = 300 * time.Millisecond
	}
	deadline := time.After(wait)
	for {
		select {
		case ev := <-d.Events():
			if !about(a, ev) {
				continue
			}
			if w.Action == policy.ActionAllow {
				diffs = append(diffs, fmt.Sprintf("unexpected event %+v (%s)", ev.Access, ev.Detail))
				continue
			}
			if diff := checkEvent(eventSet(sets, set, ev), w, ev, errno, ns, ctr); diff != "" {
				diffs = append(diffs, diff)
				continue
			}
			return diffs
		case <-deadline:
			if w.Action != policy.ActionAllow {
				diffs = append(diffs, "no event")
			}
			return diffs
		}
	}
}

// eventSet is the set of the workload an event names, or def when the event names none.
// An event naming a workload the case did not apply gets a set of its own with no rules, so
// that it is reported as coming from elsewhere.
func eventSet(sets []*rules.Set, def *rules.Set, ev enforcer.Event) *rules.Set {
	if ev.Workload == "" {
		return def
	}
	for _, s := range sets {
		if s.Workload.ID() == ev.Workload {
			return s
		}
	}
	return &rules.Set{Workload: workload.Workload{Kind: workload.KindContainer, ContainerID: ev.Workload}}
}

// checkEvent attributes an event as production does and compares the verdict and the alert
// made from it with the table.
func checkEvent(set *rules.Set, w Want, ev enforcer.Event, errno syscall.Errno, ns, ctr string) string {
	v := set.Decide(ev.Access)
	if err := w.Check(v); err != nil {
		return fmt.Sprintf("event %+v (%s): %v", ev.Access, ev.Detail, err)
	}
	if syscall.Errno(ev.Errno) != errno {
		return fmt.Sprintf("event errno %d, want %d (%s)", ev.Errno, int(errno), ev.Detail)
	}
	b := events.Builder{Now: func() time.Time { return time.Unix(0, 0) }}
	alert := b.Alert(&events.Event{Workload: set.Workload, Operation: ev.Access.Op, Errno: syscall.Errno(ev.Errno)}, v)
	if alert.Action != string(w.Action) || alert.PolicyName != w.Policy || alert.Result != events.ResultText(errno) {
		return fmt.Sprintf("alert Action=%q PolicyName=%q Result=%q, want %q %q %q",
			alert.Action, alert.PolicyName, alert.Result, w.Action, w.Policy, events.ResultText(errno))
	}
	if alert.NamespaceName != ns || alert.ContainerName != ctr {
		return fmt.Sprintf("alert NamespaceName=%q ContainerName=%q (workload %q), want %q %q",
			alert.NamespaceName, alert.ContainerName, ev.Workload, ns, ctr)
	}
	return ""
}
