//go:build vm

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestHostPolicyConfinesNewShellAppArmor is a black-box run of `ward run --lsm apparmor` as a
// separate process, with a host policy that blocks a file: a shell started after Ward is up,
// by a process that was never put in a profile, must get EACCES, and Ward must print the
// alert. Ward's own executable stays unconfined, the processes that predate Ward are
// reported, and no event goes unattributed.
func TestHostPolicyConfinesNewShellAppArmor(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	root := t.TempDir()
	secret, public := filepath.Join(root, "secret"), filepath.Join(root, "public")
	for _, f := range []string{secret, public} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policies, state, profiles := filepath.Join(root, "policies"), filepath.Join(root, "state"), filepath.Join(root, "apparmor.d")
	for _, d := range []string{policies, profiles} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hsp := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: block-secret}\nspec:\n  nodeSelector: {matchLabels: {kubearmor.io/hostname: \"*\"}}\n  file:\n    matchPaths:\n    - path: " + secret + "\n  action: Block\n"
	if err := os.WriteFile(filepath.Join(policies, "secret.yaml"), []byte(hsp), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A process that predates Ward, and stays unconfined: it must be reported at start.
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()

	ward := exec.Command(self, "run", "--lsm", "apparmor", "--policies", policies, "--state", state, "--apparmorDir", profiles,
		"--gRPC", "", "--health", "", "--logPath", "stdout", "--k8s", "false", "--host", "vm")
	ward.Env = append(os.Environ(), asWardEnv+"=run")
	stdout, err := ward.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	ward.Stderr = &stderr
	if err := ward.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var alerts []map[string]any
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["PolicyName"] != nil {
				mu.Lock()
				alerts = append(alerts, m)
				mu.Unlock()
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ward.Process.Signal(syscall.SIGTERM)
		ward.Wait()
		<-scanned
	}
	defer func() {
		stop()
		// The host profile attaches to every program: take it away so that later tests run
		// unconfined again.
		uninstall := exec.Command(self, "uninstall", "--state", state, "--apparmorDir", profiles)
		uninstall.Env = append(os.Environ(), asWardEnv+"=run")
		if out, err := uninstall.CombinedOutput(); err != nil {
			t.Errorf("ward uninstall: %v\n%s", err, out)
		}
	}()

	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(stderr.String(), "msg=reconciled") || !loaded("ward-host") {
		if time.Now().After(deadline) {
			t.Fatalf("ward-host not loaded after 2 minutes\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Started now, by this (unconfined) test process, with no aa-exec: the attachment puts it
	// in ward-host.
	sh := func(script string) (string, error) {
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		return string(out), err
	}
	if out, err := sh("cat " + secret); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("a shell started after Ward read the blocked file: err=%v out=%q", err, out)
	}
	if out, err := sh("cat " + public + " && cat /proc/self/attr/current"); err != nil || !strings.Contains(out, "ward-host (enforce)") {
		t.Errorf("a shell started after Ward: err=%v out=%q, want it to run under ward-host", err, out)
	}
	// Its children inherit the profile.
	if out, err := sh("sh -c 'cat " + secret + "'"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("a grandchild read the blocked file: err=%v out=%q", err, out)
	}
	// Ward's own executable is exempt when an unconfined process starts it.
	label := exec.Command(self)
	label.Env = append(os.Environ(), asWardEnv+"=label")
	if out, err := label.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ward-exempt") {
		t.Errorf("Ward's executable started after Ward: label %q (%v), want ward-exempt", out, err)
	}
	var alert map[string]any
	for alert == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no alert for %s\n%s", secret, stderr.String())
		}
		mu.Lock()
		for _, a := range alerts {
			if a["Resource"] == secret {
				alert = a
			}
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("alert: %v", alert)
	if alert["PolicyName"] != "block-secret" || alert["Action"] != "Block" || alert["Enforcer"] != "AppArmor" ||
		alert["Result"] != "Permission denied" || alert["Type"] != "MatchedHostPolicy" {
		t.Errorf("alert = %v", alert)
	}
	stop()
	logs := stderr.String()
	t.Logf("ward's log:\n%s", logs)
	if !strings.Contains(logs, "host processes started before the host profile run unconfined") || !strings.Contains(logs, "sleep (") {
		t.Error("the processes that predate Ward are not reported")
	}
	if strings.Contains(logs, "unknown workload") {
		t.Error("events were not attributed to a workload")
	}
}

// loaded reports whether the kernel holds a profile of that name.
func loaded(name string) bool {
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	return err == nil && bytes.Contains(b, []byte(name+" ("))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
