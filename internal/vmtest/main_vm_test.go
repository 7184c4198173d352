//go:build vm

package vmtest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// helperEnv makes the test binary act as a helper process instead of running
// tests, so the guest needs no other executables: a test re-executes itself
// (for example under aa-exec) with helperEnv=open and the files to open in
// helperFilesEnv.
const (
	helperEnv      = "WARD_VMTEST_HELPER"
	helperFilesEnv = "WARD_VMTEST_FILES"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		vmguest.Main(m)
	case "open":
		os.Exit(helperOpen())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperOpen prints its AppArmor confinement, then, for each file, "ok" or
// the errno of opening it for reading, one line per file.
func helperOpen() int {
	label, err := os.ReadFile("/proc/self/attr/current")
	if err != nil {
		fmt.Printf("label ERROR %v\n", err)
	} else {
		fmt.Printf("label %s\n", strings.TrimSpace(string(label)))
	}
	for _, p := range strings.Split(os.Getenv(helperFilesEnv), ":") {
		f, err := os.Open(p)
		if err == nil {
			f.Close()
			fmt.Printf("open %s ok\n", p)
			continue
		}
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			fmt.Printf("open %s ERROR %v\n", p, err)
			continue
		}
		fmt.Printf("open %s errno %d\n", p, int(errno))
	}
	return 0
}
