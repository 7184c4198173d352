//go:build vm

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/daemon"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// asWardEnv makes the test binary act as the ward binary ("run": its main) or report the
// AppArmor label it runs under ("label"), for black-box tests that start Ward as a process.
const asWardEnv = "WARD_TEST_AS_WARD"

func TestMain(m *testing.M) {
	switch os.Getenv(asWardEnv) {
	case "run":
		main()
		os.Exit(0)
	case "label":
		b, err := os.ReadFile("/proc/self/attr/current")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
		os.Exit(0)
	}
	vmguest.Main(m)
}

// runDaemonOnce runs `ward run`'s daemon with the binary's own backends until its first
// reconcile has put the policies in force, then stops it: what stays behind is what uninstall
// must remove.
func runDaemonOnce(t *testing.T, args ...string) {
	t.Helper()
	cmd := newRunCmd()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.LoadConfig(cmd.Flags(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: log, Stdout: io.Discard,
			Factories: backendFactories(cfg.AppArmorDir, cfg.State, bpfPinDir(cfg), log),
			Ready:     func(d *daemon.Daemon) { ready <- d.Selection().Selected }})
	}()
	select {
	case sel := <-ready:
		t.Logf("daemon enforced with %s", sel)
	case err := <-done:
		t.Fatalf("daemon: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Minute):
		// BPF-LSM's programs take minutes through the verifier under TCG.
		cancel()
		<-done
		t.Fatalf("daemon not ready after 10 minutes\n%s", logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
}

func openErrno(path string) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err == nil {
		syscall.Close(fd)
	}
	return err
}

// TestUninstallVM: after a daemon ran with BPF-LSM and one with AppArmor, both keep enforcing
// once stopped; ward uninstall --purge lifts both, and a second run finds nothing.
func TestUninstallVM(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	root := t.TempDir()
	secret := filepath.Join(root, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	policies, state, profiles := filepath.Join(root, "policies"), filepath.Join(root, "state"), filepath.Join(root, "apparmor.d")
	for _, d := range []string{policies, profiles} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hsp := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: secret}\nspec:\n  nodeSelector: {matchLabels: {kubearmor.io/hostname: \"*\"}}\n  file:\n    matchPaths:\n    - path: " + secret + "\n  action: Block\n"
	if err := os.WriteFile(filepath.Join(policies, "secret.yaml"), []byte(hsp), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--policies", policies, "--state", state, "--apparmorDir", profiles, "--gRPC", "", "--health", "",
		"--logPath", "none", "--systemMonitor", "false", "--k8s", "false"}
	runDaemonOnce(t, append(common, "--lsm", "bpf")...)
	if err := openErrno(secret); !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
		t.Fatalf("with the BPF-LSM daemon stopped, open = %v, want still denied", err)
	}
	runDaemonOnce(t, append(common, "--lsm", "apparmor", "--state", filepath.Join(root, "state2"))...)
	aaCat := func() (string, error) {
		out, err := exec.Command("aa-exec", "-p", "ward-host", "--", "cat", secret).CombinedOutput()
		return string(out), err
	}
	if out, err := aaCat(); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("with the AppArmor daemon stopped: %v %q, want still denied", err, out)
	}

	uninstall := func(stateDir string) (int, string) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"uninstall", "--state", stateDir, "--apparmorDir", profiles, "--purge"})
		if err := root.Execute(); err != nil {
			var e exitError
			if errors.As(err, &e) {
				return e.code, out.String()
			}
			t.Fatal(err)
		}
		return 0, out.String()
	}
	code, out := uninstall(state)
	t.Logf("ward uninstall:\n%s", out)
	if code != 0 || !strings.Contains(out, "removed AppArmor profile ward-host") || !strings.Contains(out, "removed BPF-LSM pins /sys/fs/bpf/ward") ||
		!strings.Contains(out, "removed state directory "+state) {
		t.Fatalf("uninstall exit %d:\n%s", code, out)
	}
	if err := openErrno(secret); err != nil {
		t.Errorf("after uninstall, open = %v, want allowed", err)
	}
	if profs, _ := os.ReadFile("/sys/kernel/security/apparmor/profiles"); strings.Contains(string(profs), "ward-") {
		t.Errorf("Ward profiles still loaded:\n%s", profs)
	}
	if _, err := aaCat(); err == nil {
		t.Error("aa-exec -p ward-host still works: the profile is loaded")
	}
	code, out = uninstall(filepath.Join(root, "state2"))
	if code != 0 || !strings.Contains(out, "removed state directory") {
		t.Errorf("uninstall of the second state: exit %d:\n%s", code, out)
	}
	code, out = uninstall(state)
	if code != 0 || strings.TrimSpace(out) != "nothing to remove" {
		t.Errorf("second uninstall: exit %d:\n%s", code, out)
	}
}
