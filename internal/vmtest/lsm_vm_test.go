//go:build vm

package vmtest

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

func TestActiveLSMs(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	data, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		t.Fatalf("read the LSM list: %v", err)
	}
	active := strings.Split(strings.TrimSpace(string(data)), ",")
	for _, want := range []string{"apparmor", "bpf"} {
		found := false
		for _, a := range active {
			found = found || a == want
		}
		if !found {
			t.Errorf("LSM %q is not active; /sys/kernel/security/lsm = %q", want, data)
		}
	}
}

// TestGuestMounts checks the mounts the harness promises every VM test.
func TestGuestMounts(t *testing.T) {
	vmguest.RequireGuest(t)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mounted := map[string]string{} // mount point -> fs type
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Fields: id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			t.Fatalf("bad mountinfo line %q", sc.Text())
		}
		mounted[strings.Fields(pre)[4]] = strings.Fields(post)[0]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/proc":                "proc",
		"/sys":                 "sysfs",
		"/dev":                 "devtmpfs",
		"/tmp":                 "tmpfs",
		"/sys/kernel/security": "securityfs",
		"/sys/fs/bpf":          "bpf",
		"/sys/kernel/tracing":  "tracefs",
	}
	for mp, fstype := range want {
		if got := mounted[mp]; got != fstype {
			t.Errorf("%s: mounted as %q, want %q", mp, got, fstype)
		}
	}
	for _, tool := range []string{"apparmor_parser", "aa-exec"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Errorf("%s is not in the guest: %v", tool, err)
		}
	}
}
