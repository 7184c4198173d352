package vmguest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder stands in for *testing.T so the tests can observe a failure
// without failing themselves.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

func TestRequireGuestFailsOnHost(t *testing.T) {
	t.Setenv(ProfileEnv, "")
	r := &recorder{TB: t}
	RequireGuest(r)
	if !r.failed {
		t.Fatal("RequireGuest did not fail outside the VM")
	}
	if !strings.Contains(r.msg, "make test-vm") {
		t.Errorf("failure message does not say how to run the test: %q", r.msg)
	}
}

func TestRequireGuestPassesInGuest(t *testing.T) {
	t.Setenv(ProfileEnv, "apparmor")
	r := &recorder{TB: t}
	if got := RequireGuest(r); got != "apparmor" || r.failed {
		t.Fatalf("RequireGuest = %q, failed=%v (%s); want apparmor, no failure", got, r.failed, r.msg)
	}
}

func TestRequireProfileWrongProfile(t *testing.T) {
	t.Setenv(ProfileEnv, "apparmor")
	r := &recorder{TB: t}
	RequireProfile(r, "selinux")
	if !r.failed || !strings.Contains(r.msg, `"selinux"`) {
		t.Fatalf("RequireProfile(selinux) in an apparmor VM: failed=%v msg=%q", r.failed, r.msg)
	}
}
