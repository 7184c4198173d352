//go:build vm

package bpflsm

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestMain makes the test binary the trigger program (package trigger) when
// it runs as one of the acting executables /wt/bin/{reader,writer,other,tool}.
func TestMain(m *testing.M) {
	trigger.Main()
	flag.Parse()
	if vmguest.Profile() != "" && runsShared() {
		// Created before vmguest.Main lists the open BPF objects, so that
		// they count as the package's own and not as a test's leak; the
		// process exit releases them (nothing is pinned).
		shared, sharedErr = New(Options{})
		loadedInTestMain = func() (*Backend, error) { return shared, sharedErr }
	}
	vmguest.Main(m)
}

// The tests that need no fresh Backend share one: loading and verifying the
// programs takes most of the package's time under TCG. TestPersistence
// (pins, closes) and the benchmark (detaches for its baseline) make their own.
var (
	shared      *Backend
	sharedErr   error
	sharedTests = []string{
		"TestConformance", "TestBypasses", "TestWorkloadSlots", "TestOutsiders", "TestSmallUpdatesKeepBlocking", "TestWorkloadKeys", "TestUpdatesKeepBlocking",
		"TestAuditedMode", "TestPTS", "TestWorkloadApplier", "TestNetworkExistingSockets",
		"TestNewOnThisKernel", "TestAlertData", "TestChildCgroupKeepsWorkload", "TestProgramsFollowOperations", "TestContainerRootInodes",
		"TestNamedCodes", "TestIdleProgramsDetachLater", "TestInodeCacheScope", "TestFileNamesFilter", "TestFileNamesLengths", "TestFileNameKeys", "TestDirNamesFilter", "TestWatchedNamesShrink", "TestStackedRoot",
		"TestDirPrefixByName", "TestDirNamesEntry", "TestDisconnectedHandle", "TestInodeCacheConcurrentFills", "TestPassingEntry", "TestMountReuse", "TestDirPathsEntry", "TestDirPathsRace", "TestMovedRoot",
	}
)

// runsShared says whether -test.run selects a test that uses the shared
// Backend (as go test matches top-level names), so that a narrow run of
// another test does not pay for loading it.
func runsShared() bool {
	pat := flag.Lookup("test.run").Value.String()
	if pat == "" {
		return true
	}
	re, err := regexp.Compile(strings.Split(pat, "/")[0])
	if err != nil {
		return true
	}
	for _, name := range sharedTests {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// newBackend returns the shared Backend with no rules applied and no pending
// events; the test's cleanup applies no rules again.
func newBackend(t *testing.T) *Backend {
	t.Helper()
	if shared == nil {
		if sharedErr == nil {
			sharedErr = fmt.Errorf("%s is not listed in sharedTests", t.Name())
		}
		t.Fatalf("shared backend: %+v", sharedErr)
	}
	must(t, shared.Apply(context.Background(), nil))
	drain(shared)
	t.Cleanup(func() {
		if err := shared.Apply(context.Background(), nil); err != nil {
			t.Errorf("reset the shared backend: %v", err)
		}
		drain(shared)
	})
	return shared
}
