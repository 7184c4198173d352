//go:build vm

package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/events"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestDaemonEnforcesWithAppArmor runs the daemon as `ward run` would in a kernel with AppArmor
// and BPF-LSM: selection falls back from bpf (no BPF-LSM enforcer in this build) to apparmor,
// a policy file dropped into the watched directory is enforced, the denied access returns
// EACCES, and the alert names the policy. A bad edit of the file keeps the rule in force.
func TestDaemonEnforcesWithAppArmor(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	root := t.TempDir()
	secret := filepath.Join(root, "secret")
	public := filepath.Join(root, "public")
	for _, f := range []string{secret, public} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policies, profiles := t.TempDir(), t.TempDir()
	cfg, err := buildConfig(defaults(map[string]string{"policies": policies, "state": t.TempDir(), "gRPC": "", "health": "",
		"logPath": "none", "host": "vm", "apparmorDir": profiles}))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(logs, nil))
	sink := &memorySink{got: make(chan struct{}, 64)}
	ready := make(chan *Daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Logger: log, Sinks: []events.Sink{sink}, Ready: func(d *Daemon) { ready <- d },
			Factories: map[string]enforcer.Factory{
				enforcer.BPF: func(context.Context) (enforcer.Backend, error) {
					return nil, enforcer.ErrNotSupported
				},
				enforcer.AppArmor: apparmor.Factory(apparmor.Config{Dir: profiles, Logger: log}),
			}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var d *Daemon
	select {
	case d = <-ready:
	case err := <-done:
		t.Fatalf("daemon stopped: %v\n%s", err, logs.String())
	case <-time.After(3 * time.Minute):
		// The first round runs apparmor_parser twice (ward-exempt, then ward-host), each up to
		// half a minute under TCG on a loaded machine.
		t.Fatalf("daemon not ready\n%s", logs.String())
	}
	sel := d.Selection()
	if sel.Selected != enforcer.AppArmor || len(sel.Attempts) < 2 || sel.Attempts[0].LSM != enforcer.BPF || sel.Attempts[0].OK {
		t.Fatalf("selection = %+v", sel)
	}
	t.Logf("selection: %+v", sel.Attempts)

	policyFile := filepath.Join(policies, "secret.yaml")
	if err := os.WriteFile(policyFile, []byte(hostPolicyFile("vm-secret", secret)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, logs, "vm-secret in force", func() bool {
		s := d.Sets()["host"]
		return s != nil && len(s.Policies) == 1
	})
	// The reconcile stored the set after Apply returned, so the profile is loaded.
	cat := func(path string) (string, error) {
		out, err := exec.Command("aa-exec", "-p", "ward-host", "--", "cat", path).CombinedOutput()
		return string(out), err
	}
	if out, err := cat(secret); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("cat secret under ward-host: err=%v out=%q, want Permission denied", err, out)
	}
	if out, err := cat(public); err != nil {
		t.Fatalf("cat public under ward-host: %v %s", err, out)
	}
	// A shell started after Ward, as a user would start one: no aa-exec, the host profile's
	// attachment by path confines it (issue 17: a host policy must reach the host's programs).
	if out, err := exec.Command("/bin/sh", "-c", "cat /proc/self/attr/current; cat "+secret).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "ward-host (enforce)") || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("a shell started after Ward: err=%v out=%q, want it in ward-host and denied", err, out)
	}
	alert := waitAlert(t, sink, func(a *feeder.Alert) bool { return a.Resource == secret })
	if alert.PolicyName != "vm-secret" || alert.Action != "Block" || alert.Enforcer != "AppArmor" || alert.Result != "Permission denied" {
		t.Errorf("alert = %+v", alert)
	}

	// A bad edit is refused; the secret stays protected.
	if err := os.WriteFile(policyFile, []byte(strings.Replace(hostPolicyFile("vm-secret", secret), "matchPaths", "matchPath", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, logs, "the rejection's message", func() bool { return sink.hasMessage("Error", "policy rejected") })
	if out, err := cat(secret); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("after a rejected edit: err=%v out=%q, want still denied", err, out)
	}

	// Removing the policy lifts the block.
	if err := os.Remove(policyFile); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, logs, "no policies", func() bool { s := d.Sets()["host"]; return s != nil && len(s.Policies) == 0 })
	if out, err := cat(secret); err != nil {
		t.Fatalf("after removing the policy: %v %s", err, out)
	}
}

func waitAlert(t *testing.T, sink *memorySink, ok func(*feeder.Alert) bool) *feeder.Alert {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		sink.mu.Lock()
		for _, a := range sink.alerts {
			if ok(a) {
				sink.mu.Unlock()
				return a
			}
		}
		sink.mu.Unlock()
		select {
		case <-sink.got:
		case <-deadline:
			t.Fatalf("no matching alert; got %d alerts", len(sink.alerts))
		}
	}
}
