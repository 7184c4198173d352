package bpflsm

import (
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
)

// A record of an unresolved path is marked FailClosed whether the access was denied (EPERM) or,
// for a workload in audited mode, passed with an alert: attribution then asks what the set
// means for an access no path names, instead of deciding on an empty path.
func TestConvertUnresolved(t *testing.T) {
	b := &Backend{}
	for _, c := range []struct {
		name  string
		errno int32
		flags uint32
	}{
		{"denied", 1, efUnresolved},
		{"audited mode", 0, efUnresolved | uint32(wardEventFlagEF_AUDITED)},
	} {
		ev := b.convert(&wardEvent{Op: uint32(opFile), Errno: c.errno, Flags: c.flags, PathLen: -2})
		if !ev.FailClosed || ev.Access.Op != policy.OpFile || !strings.Contains(ev.Detail, "unresolved path (d_path: -2)") {
			t.Errorf("%s: FailClosed %v, op %q, detail %q; want marked, file, unresolved", c.name, ev.FailClosed, ev.Access.Op, ev.Detail)
		}
	}
	if ev := b.convert(&wardEvent{Op: uint32(opFile), Errno: 1}); ev.FailClosed {
		t.Error("a denial with its path resolved is marked FailClosed")
	}
}
