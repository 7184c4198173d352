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

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestPTS: `pts: false` on a Block rule permits the access without a
// terminal and blocks it from a process whose session has a controlling
// terminal (current->signal->tty).
func TestPTS(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/secret.txt", 0)
	cg, cgfd := testCgroup(t, "ward-pts")
	b := newBackend(t)
	ps, _, err := policy.Parse("pts.yaml", []byte(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: no-tty}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
    - path: /wt/secret.txt
      pts: false
  action: Block
`))
	must(t, err)
	set, err := rules.Compile(ps, host, rules.DefaultPostures())
	must(t, err)
	must(t, b.Apply(context.Background(), []*rules.Set{inCgroup(set, cg)}))
	defer b.Apply(context.Background(), nil)

	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/secret.txt"); got != "open:/wt/secret.txt ok" {
		t.Errorf("without a terminal: %q", got)
	}

	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	must(t, err)
	defer ptmx.Close()
	must(t, unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	must(t, err)
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	must(t, err)
	defer pts.Close()
	cmd := exec.Command("/wt/bin/reader")
	cmd.Env = []string{trigger.Command("open:/wt/secret.txt")}
	cmd.Stdin = pts
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd, Setsid: true, Setctty: true, Ctty: 0}
	out, err := cmd.CombinedOutput()
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if got := lines[len(lines)-1]; got != "open:/wt/secret.txt errno 1" {
		t.Errorf("with a terminal: %q", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/secret.txt" })
	if !ok {
		t.Fatal("no event")
	}
	if v := set.Decide(ev.Access); !ev.Access.TTY || v.Action != policy.ActionBlock || v.Policy != "no-tty" {
		t.Errorf("event %+v: %+v", ev.Access, v)
	}
}
