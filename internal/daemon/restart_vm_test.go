//go:build vm

package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/events"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// The open-loop helper is the test binary run again with these variables: it opens
// helperPathEnv as fast as it can and keeps "attempts successes" in helperCountsEnv.
const (
	helperEnv       = "WARD_DAEMON_HELPER"
	helperPathEnv   = "WARD_DAEMON_PATH"
	helperCountsEnv = "WARD_DAEMON_COUNTS"
)

func helperOpenLoop() int {
	path := os.Getenv(helperPathEnv)
	out, err := os.OpenFile(os.Getenv(helperCountsEnv), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var attempts, successes uint64
	last := time.Now()
	for {
		// A short pause between opens: still thousands of tries across a restart, but the other
		// vCPU is rarely inside the file_open trampoline when the restart live-patches it.
		// Hammering it without a pause has twice hung multi-threaded TCG in a text_poke/int3
		// livelock (both vCPUs at bpf_lsm_file_open, an RCU stall, CI killed at 31 minutes).
		time.Sleep(50 * time.Microsecond)
		fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
		attempts++
		if err == nil {
			successes++
			syscall.Close(fd)
		}
		if attempts%64 == 0 || err == nil {
			if now := time.Now(); now.Sub(last) > 2*time.Millisecond || err == nil {
				last = now
				// Fixed width, written in place: a reader never sees half a record.
				out.WriteAt([]byte(fmt.Sprintf("%020d %020d\n", attempts, successes)), 0)
			}
		}
	}
}

type counts struct{ attempts, successes uint64 }

func readCounts(t *testing.T, path string) counts {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c counts
	if _, err := fmt.Sscanf(string(b), "%d %d", &c.attempts, &c.successes); err != nil {
		t.Fatalf("counts %q: %v", b, err)
	}
	return c
}

// runningDaemon is one Run of the daemon in the test process.
type runningDaemon struct {
	d      *Daemon
	sink   *memorySink
	logs   *syncWriter
	cancel context.CancelFunc
	done   chan error
}

func runDaemon(t testing.TB, cfg Config, factories func(*slog.Logger) map[string]enforcer.Factory) *runningDaemon {
	t.Helper()
	r := &runningDaemon{sink: &memorySink{got: make(chan struct{}, 1<<16)}, logs: &syncWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	ready := make(chan *Daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- Run(ctx, Options{Config: cfg, Logger: log, Sinks: []events.Sink{r.sink}, Factories: factories(log),
			Ready: func(d *Daemon) { ready <- d }})
	}()
	select {
	case r.d = <-ready:
	case err := <-r.done:
		t.Fatalf("daemon stopped: %v\n%s", err, r.logs.String())
	case <-time.After(10 * time.Minute):
		// BPF-LSM's programs take minutes through the verifier under TCG; past this, stop the
		// daemon before failing so that nothing it loaded outlives the test.
		cancel()
		<-r.done
		t.Fatalf("daemon not ready after 10 minutes\n%s", r.logs.String())
	}
	return r
}

func (r *runningDaemon) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("daemon did not stop\n%s", r.logs.String())
	}
}

// apparmorOnly selects AppArmor as `ward run` would on this kernel if BPF-LSM were refused.
func apparmorOnly(profiles string) func(*slog.Logger) map[string]enforcer.Factory {
	return func(log *slog.Logger) map[string]enforcer.Factory {
		return map[string]enforcer.Factory{enforcer.AppArmor: apparmor.Factory(apparmor.Config{Dir: profiles, Logger: log})}
	}
}

// restartCase says how to run the helper under the backend's host enforcement.
type restartCase struct {
	lsm       string
	factories func(*slog.Logger) map[string]enforcer.Factory
	// wrap returns the command line that runs argv under the host workload's enforcement.
	wrap    func(argv ...string) []string
	enforce string // the alert's Enforcer
	cleanup func(t testing.TB)
	// restarted, if set, checks the restarted daemon's log.
	restarted func(t *testing.T, logs string)
}

// testRestart: a Block rule is in force and a helper opens the blocked file in a tight loop while
// the daemon stops, stays down and starts again on the same state. The loop must never succeed,
// a policy written while the daemon was down is in force after the start, and alerts flow again.
func testRestart(t *testing.T, c restartCase) {
	root := t.TempDir()
	secret, secret2 := filepath.Join(root, "secret"), filepath.Join(root, "secret2")
	for _, f := range []string{secret, secret2} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policies, state, profiles := t.TempDir(), t.TempDir(), t.TempDir()
	cfg, err := buildConfig(defaults(map[string]string{"policies": policies, "state": state, "gRPC": "", "health": "",
		"logPath": "none", "host": "vm", "apparmorDir": profiles, "lsm": c.lsm}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policies, "secret.yaml"), []byte(hostPolicyFile("vm-secret", secret)), 0o644); err != nil {
		t.Fatal(err)
	}
	r1 := runDaemon(t, cfg, c.factories)
	if r1.d.Selection().Selected != c.lsm {
		t.Fatalf("selected %s: %+v", r1.d.Selection().Selected, r1.d.Selection().Attempts)
	}
	if s := r1.d.Sets()["host"]; s == nil || len(s.Policies) != 1 {
		t.Fatalf("the policy is not in force after the first reconcile: %+v\n%s", s, r1.logs.String())
	}
	if c.cleanup != nil {
		defer c.cleanup(t)
	}

	countsFile := filepath.Join(root, "counts")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := c.wrap(self)
	helper := exec.Command(argv[0], argv[1:]...)
	helper.Env = append(os.Environ(), helperEnv+"=openloop", helperPathEnv+"="+secret, helperCountsEnv+"="+countsFile)
	var helperErr bytes.Buffer
	helper.Stderr = &helperErr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, _ := os.ReadFile(countsFile); len(b) > 0 && readCounts(t, countsFile).attempts > 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper made no progress: %s", helperErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitAlert(t, r1.sink, func(a *feeder.Alert) bool { return a.Resource == secret && a.Enforcer == c.enforce })

	c0 := readCounts(t, countsFile)
	stopStart := time.Now()
	r1.stop(t)
	c1 := readCounts(t, countsFile)
	stopTook := time.Since(stopStart)
	// While down, the operator changes the policies: they are applied at the next start.
	if err := os.WriteFile(filepath.Join(policies, "secret2.yaml"), []byte(hostPolicyFile("vm-secret2", secret2)), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	c2 := readCounts(t, countsFile)
	startStart := time.Now()
	r2 := runDaemon(t, cfg, c.factories)
	defer r2.stop(t)
	startTook := time.Since(startStart)
	c3 := readCounts(t, countsFile)
	alert := waitAlert(t, r2.sink, func(a *feeder.Alert) bool { return a.Resource == secret && a.Enforcer == c.enforce })
	c4 := readCounts(t, countsFile)

	t.Logf("%s: attempts while stopping %d (%s), while down %d (2s), while starting %d (%s), until the first alert %d; successes %d",
		c.lsm, c1.attempts-c0.attempts, stopTook.Round(time.Millisecond), c2.attempts-c1.attempts,
		c3.attempts-c2.attempts, startTook.Round(time.Millisecond), c4.attempts-c3.attempts, c4.successes)
	if c4.successes != 0 {
		t.Errorf("the blocked file was opened %d times", c4.successes)
	}
	if c2.attempts-c1.attempts < 100 || c3.attempts-c2.attempts == 0 {
		t.Errorf("the helper did not run throughout: %+v %+v %+v", c1, c2, c3)
	}
	if alert.PolicyName != "vm-secret" || alert.Action != "Block" {
		t.Errorf("alert after restart = %+v", alert)
	}
	if s := r2.d.Sets()["host"]; s == nil || len(s.Policies) != 2 {
		t.Fatalf("after the restart the host set is %+v, want both policies", s)
	}
	if c.restarted != nil {
		c.restarted(t, r2.logs.String())
	}
	argv = c.wrap("cat", secret2)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	// AppArmor denies with EACCES, BPF-LSM with EPERM.
	if err == nil || !strings.Contains(string(out), "Permission denied") && !strings.Contains(string(out), "Operation not permitted") {
		t.Errorf("the policy written while down is not enforced: err=%v out=%q", err, out)
	}
}

func TestDaemonRestartAppArmor(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	profiles := t.TempDir()
	testRestart(t, restartCase{
		lsm:       enforcer.AppArmor,
		factories: apparmorOnly(profiles),
		wrap:      func(argv ...string) []string { return append([]string{"aa-exec", "-p", "ward-host", "--"}, argv...) },
		enforce:   "AppArmor",
		cleanup: func(t testing.TB) {
			if err := (apparmor.Uninstaller{Dir: profiles}).Uninstall(context.Background(), nil); err != nil {
				t.Error(err)
			}
		},
		// The kernel holds the exemption's and the host's profiles as the first daemon wrote
		// them: the restarted one finds both, and loads again only the host's, which the
		// policy written while it was down changed.
		restarted: func(t *testing.T, logs string) {
			if !regexp.MustCompile(`loaded again only if they change" profiles=2\b`).MatchString(logs) {
				t.Errorf("the restarted daemon did not find the 2 profiles the kernel holds:\n%s", logs)
			}
		},
	})
}

func TestDaemonRestartBPFLSM(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor") // the profile whose kernel runs BPF-LSM programs
	pinDir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("ward-test-%d", os.Getpid()))
	testRestart(t, restartCase{
		lsm: enforcer.BPF,
		factories: func(log *slog.Logger) map[string]enforcer.Factory {
			return map[string]enforcer.Factory{enforcer.BPF: bpflsm.Factory(bpflsm.Options{Logger: log, PinDir: pinDir})}
		},
		// BPF-LSM enforces host policies on every process outside a container's cgroup.
		wrap:    func(argv ...string) []string { return argv },
		enforce: "BPFLSM",
		cleanup: func(t testing.TB) {
			if err := (bpflsm.Uninstaller{PinDir: pinDir}).Uninstall(context.Background(), nil); err != nil {
				t.Error(err)
			}
		},
	})
}
