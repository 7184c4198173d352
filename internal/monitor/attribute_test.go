package monitor

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Monitor events carry what rules.Decide needs: an access the monitor saw is attributed to
// the policy that covers it, as the daemon does for monitor-mode ("would be blocked") alerts.
func TestAttributeWithDecide(t *testing.T) {
	m := sharedMonitor(t)
	dir := realPath(t, t.TempDir())
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	exe := self(t)
	doc := fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: secret-readonly
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: n1
  file:
    matchPaths:
    - path: %s
      readOnly: true
      fromSource:
      - path: %s
  action: Block
`, secret, exe)
	pols, _, err := policy.Parse("secret.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(pols, workload.Host("n1", map[string]string{"kubernetes.io/hostname": "n1"}), rules.DefaultPostures())
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.OpenFile(secret, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	pid := uint32(os.Getpid())
	w := &want{name: "write", match: func(ev enforcer.Event) bool {
		return ev.PID == pid && ev.Access.Path == secret && ev.Access.Write && ev.Access.Syscall == "openat"
	}}
	rd := &want{name: "read", match: func(ev enforcer.Event) bool {
		return ev.PID == pid && ev.Access.Path == secret && !ev.Access.Write && ev.Access.Syscall == "openat"
	}}
	expect(t, m, nil, w, rd)
	if v := set.Decide(w.got.Access); v.Action != policy.ActionBlock || v.Policy != "secret-readonly" {
		t.Errorf("write %+v: verdict %+v, want Block by secret-readonly", w.got.Access, v)
	}
	if v := set.Decide(rd.got.Access); v.Action == policy.ActionBlock || v.Alert {
		t.Errorf("read %+v: verdict %+v, want allowed without alert", rd.got.Access, v)
	}
}
