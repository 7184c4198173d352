//go:build vm && vmred

package vmtest

import (
	"fmt"
	"os"
	"testing"
)

// TestDeliberatelyRed fails on purpose. It is built only with the vmred tag,
// by the host-side harness test (harness_vmhost_test.go), which checks that a
// failing guest test fails the host command and that its stdout and stderr
// come back apart.
func TestDeliberatelyRed(t *testing.T) {
	fmt.Fprintln(os.Stdout, "red: to stdout")
	fmt.Fprintln(os.Stderr, "red: to stderr")
	t.Fatal("red: deliberate failure")
}
