//go:build vm

package bpflsm

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestAlertData: an event's Detail (the alert's Data) names the system call and its flags as
// KubeArmor's do: "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY|O_CLOEXEC" for Go's os.Open.
func TestAlertData(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	copySelf(t, "/wt/bin/tool")
	mkfile(t, "/wt/read.txt", 0)
	mkfile(t, "/wt/write.txt", 0)
	cg, cgfd := testCgroup(t, "ward-data")
	b := newBackend(t)
	ps, _, err := policy.Parse("data.yaml", []byte(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: data}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
    - path: /wt/read.txt
    - path: /wt/write.txt
      readOnly: true
  process:
    matchPaths:
    - path: /wt/bin/tool
  action: Block
`))
	must(t, err)
	set, err := rules.Compile(ps, host, rules.DefaultPostures())
	must(t, err)
	must(t, b.Apply(context.Background(), []*rules.Set{inCgroup(set, cg)}))
	defer b.Apply(context.Background(), nil)

	for _, c := range []struct {
		op, path, data string
	}{
		{"open:/wt/read.txt", "/wt/read.txt", "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY|O_CLOEXEC"},
		{"write:/wt/write.txt", "/wt/write.txt", "syscall=SYS_OPENAT fd=-100 flags=O_WRONLY|O_CLOEXEC"},
		{"exec:/wt/bin/tool", "/wt/bin/tool", "syscall=SYS_EXECVE"},
	} {
		drain(b)
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, c.op); got != c.op+" errno 1" {
			t.Errorf("%s: helper printed %q, want it blocked", c.op, got)
		}
		ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == c.path })
		if !ok {
			t.Errorf("%s: no event", c.op)
			continue
		}
		if ev.Detail != c.data && !strings.HasPrefix(ev.Detail, c.data+" ") {
			t.Errorf("%s: Data %q, want %q (KubeArmor's form)", c.op, ev.Detail, c.data)
		}
	}
}
