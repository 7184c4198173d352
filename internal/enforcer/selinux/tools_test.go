//go:build !vm

package selinux

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// skipToolsEnv lets a machine without the SELinux tools run the other tests; without it, a
// missing tool fails the test (.ci/install-selinux-deps.sh installs them).
const skipToolsEnv = "WARD_SKIP_SELINUX_TOOLS"

func TestMain(m *testing.M) {
	code := m.Run()
	if base.path != "" {
		os.RemoveAll(filepath.Dir(base.path))
	}
	os.Exit(code)
}

var base struct {
	once sync.Once
	path string
	err  error
}

// basePolicy writes the installed store's modules into one CIL file, once per test binary.
func basePolicy(t *testing.T) string {
	t.Helper()
	base.once.Do(func() {
		b, err := StoreCIL(DefaultStore)
		if err != nil {
			base.err = err
			return
		}
		dir, err := os.MkdirTemp("", "ward-selinux-base")
		if err != nil {
			base.err = err
			return
		}
		base.path = filepath.Join(dir, "base.cil")
		base.err = os.WriteFile(base.path, b, 0o644)
	})
	if base.err != nil {
		requireTools(t, "the reference policy store: "+base.err.Error())
	}
	return base.path
}

func requireTools(t *testing.T, what string) {
	t.Helper()
	if os.Getenv(skipToolsEnv) == "1" {
		t.Skipf("%s is missing and %s=1", what, skipToolsEnv)
	}
	t.Fatalf("%s is missing: run .ci/install-selinux-deps.sh (or set %s=1 to skip)", what, skipToolsEnv)
}

// checkModule compiles a module with secilc together with the whole reference policy, which is
// what semodule does when it installs it: every type, attribute, class and permission the module
// names must exist, and the result must be a loadable binary policy.
func checkModule(t *testing.T, text []byte) {
	t.Helper()
	secilc, err := exec.LookPath("secilc")
	if err != nil {
		requireTools(t, "secilc")
	}
	basePath := basePolicy(t)
	dir := t.TempDir()
	mod := filepath.Join(dir, ModuleName+".cil")
	if err := os.WriteFile(mod, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(secilc, "-o", filepath.Join(dir, "policy"), "-f", os.DevNull, basePath, mod).CombinedOutput()
	if err != nil {
		t.Fatalf("secilc refused the module: %v\n%s", err, strings.TrimSpace(string(out)))
	}
	if st, err := os.Stat(filepath.Join(dir, "policy")); err != nil || st.Size() < 1<<20 {
		t.Fatalf("secilc wrote no full policy: %v", err)
	}
}
