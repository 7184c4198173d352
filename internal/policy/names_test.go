package policy

import "testing"

// TestCapabilityNumbersRoundTrip: every name the validator accepts maps to one number and back,
// and a number newer than the table is named cap_N rather than dropped.
func TestCapabilityNumbersRoundTrip(t *testing.T) {
	seen := map[int]string{}
	for name := range capabilityNumbers {
		n, ok := CapabilityNumber(name)
		if !ok {
			t.Fatalf("CapabilityNumber(%q) not found", name)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("capability %d named twice: %s and %s", n, other, name)
		}
		seen[n] = name
		if got := CapabilityName(n); got != name {
			t.Errorf("CapabilityName(%d) = %q, want %q", n, got, name)
		}
	}
	if n, _ := CapabilityNumber("net_raw"); n != 13 {
		t.Errorf("net_raw = %d, want 13 (linux/capability.h)", n)
	}
	if got := CapabilityName(63); got != "cap_63" {
		t.Errorf("CapabilityName(63) = %q, want cap_63", got)
	}
}
