//go:build !vm

package selinux

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
)

// rootedRunner runs semodule against a copy of the store under root (-p) without loading the
// result into the kernel (-n): the host kernel does not run SELinux.
type rootedRunner struct{ root string }

func (r rootedRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, append([]string{"-p", r.root, "-n"}, args...)...).CombinedOutput()
}

// TestSemoduleInstall installs a module with fromSource domains into a temporary copy of the
// reference policy's store with the real semodule, through the Loader, then removes it: the
// store rebuilds the whole policy both times, as on a node.
func TestSemoduleInstall(t *testing.T) {
	if _, err := exec.LookPath("semodule"); err != nil {
		requireTools(t, "semodule")
	}
	root := t.TempDir()
	for _, d := range []string{"/etc/selinux", "/var/lib/selinux"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(d)), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", d, filepath.Join(root, d)).CombinedOutput(); err != nil {
			requireTools(t, "the reference policy ("+d+"): "+strings.TrimSpace(string(out)))
		}
	}
	l, err := NewLoader(t.TempDir(), rootedRunner{root}, &fakeLabeler{labels: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	m := moduleFor(t, hostPolicy("p",
		file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/cat")),
		proc(policy.MatchPath, "/usr/bin/id", allow, from("/usr/bin/bash")),
	))
	ctx := context.Background()
	if err := l.Install(ctx, m); err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(root, "var/lib/selinux/default/active/modules/400/ward/cil")
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("semodule did not store the module: %v", err)
	}
	if err := l.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(installed); err == nil {
		t.Errorf("the module is still in the store after Uninstall")
	}
}
