package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
)

// TestProbePrintsLimitations: ward probe prints what the selected module cannot close.
func TestProbePrintsLimitations(t *testing.T) {
	var b bytes.Buffer
	sel := enforcer.Selection{LSMs: []string{"selinux"}, Selected: enforcer.SELinux, Attempts: []enforcer.Attempt{
		{LSM: enforcer.SELinux, OK: true, Reason: "initialised", Limitations: []string{"only Ward's domain (kernel_t) may relabel"}},
	}}
	if err := printSelection(&b, sel, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Limitations of selinux") || !strings.Contains(b.String(), "  - only Ward's domain (kernel_t) may relabel") {
		t.Errorf("probe output:\n%s", b.String())
	}
}
