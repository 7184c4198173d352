//go:build vm && !kube

package daemon

import (
	"os"
	"testing"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// The vm suite runs in the guest and the kube suite on the host next to an API server: no run
// builds both. Built together (go vet -tags 'vm kube') the kube suite's TestMain stands, so that
// the package compiles.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "openloop":
		os.Exit(helperOpenLoop())
	case "poll":
		os.Exit(helperPoll())
	}
	vmguest.Main(m)
}
