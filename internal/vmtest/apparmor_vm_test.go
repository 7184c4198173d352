//go:build vm

package vmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestAppArmorProfileDenies loads a profile with apparmor_parser -r -W, runs
// this binary under it with aa-exec, and checks that the denied file gives
// EACCES, the allowed file opens, and the kernel logs the denial.
func TestAppArmorProfileDenies(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	denied := filepath.Join(dir, "denied")
	for _, p := range []string{allowed, denied} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Unconfined, both open: whatever denies later is the profile.
	for _, p := range []string{allowed, denied} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("open %s unconfined: %v", p, err)
		}
		f.Close()
	}

	name := fmt.Sprintf("ward-vmtest-%d", os.Getpid())
	// "file," lets the Go runtime map and read what it needs; "signal," lets
	// its threads preempt each other with SIGURG, which a profile without
	// signal rules denies. An explicit "deny" is silent by default; "audit
	// deny" is what makes the kernel log the denial.
	profile := fmt.Sprintf("abi <abi/3.0>,\n\nprofile %s flags=(enforce) {\n  file,\n  signal,\n  audit deny %s r,\n}\n", name, denied)
	profilePath := filepath.Join(dir, "profile")
	if err := os.WriteFile(profilePath, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("apparmor_parser", "-r", "-W", profilePath).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser -r -W: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("apparmor_parser", "-R", profilePath).CombinedOutput(); err != nil {
			t.Errorf("apparmor_parser -R: %v\n%s", err, out)
		}
	})
	loaded, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(loaded), name+" (enforce)") {
		t.Fatalf("profile %s not loaded in enforce mode; loaded profiles:\n%s", name, loaded)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("aa-exec", "-p", name, "--", self)
	cmd.Env = append(os.Environ(), helperEnv+"=open", helperFilesEnv+"="+allowed+":"+denied)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aa-exec -p %s: %v\n%s", name, err, out)
	}
	want := []string{
		"label " + name + " (enforce)",
		"open " + allowed + " ok",
		fmt.Sprintf("open %s errno %d", denied, int(syscall.EACCES)),
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("helper under %s printed:\n%s\nwant:\n%s", name, out, strings.Join(want, "\n"))
	}

	// The AppArmor backend reads denials from the kernel's audit records;
	// without auditd they reach the kernel log.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines, err := readKmsg()
		if err != nil {
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		for _, l := range lines {
			if strings.Contains(l, `apparmor="DENIED"`) && strings.Contains(l, `profile="`+name+`"`) && strings.Contains(l, `name="`+denied+`"`) {
				t.Logf("kernel log: %s", l)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no apparmor=\"DENIED\" record for %s in the kernel log; last lines:\n%s", denied, strings.Join(lastN(lines, 20), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readKmsg returns the kernel log records currently buffered.
func readKmsg() ([]string, error) {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var lines []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return lines, nil
		case errors.Is(err, syscall.EPIPE):
			continue // records overwritten while reading: go on with the next
		case err != nil:
			return lines, err
		}
		// Record format: "prio,seq,time,flags;message\n"
		_, msg, _ := strings.Cut(string(buf[:n]), ";")
		lines = append(lines, strings.TrimRight(msg, "\n"))
	}
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
