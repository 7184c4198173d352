//go:build vmhost

package vmtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run on the host (go test -tags vmhost) and boot VMs through
// the harness to show that it fails when it should: a red guest test, a
// hang, a kernel panic, and a vm-tagged test run without the VM. They need
// qemu and the cached kernel, so they run under `make test-vm`, and fail
// rather than skip when those are missing.

func buildVMRun(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vmrun")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/wardsec/ward/tools/vmrun")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build vmrun: %v\n%s", err, out)
	}
	return bin
}

// buildTest compiles this package's tests with the given tags, statically, as
// go test -exec would.
func buildTest(t *testing.T, tags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vmtest.test")
	cmd := exec.Command("go", "test", "-c", "-tags", tags, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test binary: %v\n%s", err, out)
	}
	return bin
}

type runResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func runCmd(t *testing.T, name string, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("run %s: %v", name, err)
	}
	return res
}

func (r runResult) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout:\n" + r.stdout + "--- stderr:\n" + r.stderr
}

func TestHarnessReturnsStatusAndStreams(t *testing.T) {
	vmrun := buildVMRun(t)
	r := runCmd(t, vmrun, "--", "sh", "-c", `printf '%s|' "$@"; echo; echo to-stderr >&2; exit 7`, "sh", "a b", "it's", "$HOME", "")
	if r.code != 7 {
		t.Errorf("exit code %d, want 7\n%s", r.code, r)
	}
	if want := "a b|it's|$HOME||\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if want := "to-stderr\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

func TestHarnessFailsOnFailingGuestTest(t *testing.T) {
	vmrun := buildVMRun(t)
	bin := buildTest(t, "vm vmred")
	r := runCmd(t, vmrun, bin, "-test.v", "-test.run=^TestDeliberatelyRed$")
	if r.code == 0 {
		t.Fatalf("a failing guest test left the harness exiting 0\n%s", r)
	}
	for _, want := range []string{"--- FAIL: TestDeliberatelyRed", "red: deliberate failure", "red: to stdout"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q\n%s", want, r)
		}
	}
	if !strings.Contains(r.stderr, "red: to stderr") || strings.Contains(r.stdout, "red: to stderr") {
		t.Errorf("the test's stderr did not come back on stderr alone\n%s", r)
	}
}

func TestHarnessTimesOut(t *testing.T) {
	vmrun := buildVMRun(t)
	r := runCmd(t, vmrun, "-timeout", "5s", "--", "sh", "-c", "echo hanging; sleep 3600")
	if r.code != 124 {
		t.Fatalf("exit code %d for a hung command, want 124\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, "guest timed out: the command ran longer than 5s") || !strings.Contains(r.stderr, "guest console") {
		t.Errorf("stderr does not report the time-out with the console tail\n%s", r)
	}
	if r.stdout != "hanging\n" {
		t.Errorf("partial stdout %q, want %q", r.stdout, "hanging\n")
	}
}

// TestHarnessBootTimesOut stands for a guest that hangs before the command
// starts: no TCG boot finishes within a second.
func TestHarnessBootTimesOut(t *testing.T) {
	vmrun := buildVMRun(t)
	r := runCmd(t, vmrun, "-boot-timeout", "1s", "--", "true")
	if r.code != 124 {
		t.Fatalf("exit code %d for a guest that did not boot in time, want 124\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, "did not start the command within 1s") {
		t.Errorf("stderr does not report the boot time-out\n%s", r)
	}
	if r.took > time.Minute {
		t.Errorf("the harness took %s to give up on a 1s boot time-out", r.took)
	}
}

func TestHarnessReportsKernelPanic(t *testing.T) {
	vmrun := buildVMRun(t)
	r := runCmd(t, vmrun, "-timeout", "2m", "--", "sh", "-c", "echo c >/proc/sysrq-trigger; exit 0")
	if r.code != 125 {
		t.Fatalf("exit code %d for a guest panic, want 125\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, "Kernel panic") {
		t.Errorf("stderr does not show the panic from the console\n%s", r)
	}
}

// TestVMTestsFailOnHost runs the vm-tagged tests without the VM: each must
// fail, not skip, and say how to run it.
func TestVMTestsFailOnHost(t *testing.T) {
	bin := buildTest(t, "vm")
	cmd := exec.Command(bin, "-test.v")
	cmd.Env = append(os.Environ(), "WARD_VM_PROFILE=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("vm-tagged tests passed on the host:\n%s", out)
	}
	if strings.Contains(string(out), "--- SKIP") || strings.Contains(string(out), "--- PASS") {
		t.Errorf("vm-tagged tests skipped or passed on the host:\n%s", out)
	}
	if !strings.Contains(string(out), "must run inside the Ward test VM") {
		t.Errorf("the failure does not explain itself:\n%s", out)
	}
}
