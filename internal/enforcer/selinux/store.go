package selinux

import (
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// DefaultStore is the module store of Debian's reference policy (selinux-policy-default);
// Fedora and RHEL keep theirs under /var/lib/selinux/targeted.
const DefaultStore = "/var/lib/selinux/default/active/modules"

// StoreCIL returns every enabled module of a module store, decompressed and concatenated: the
// CIL that secilc compiles, with a module of Ward's, into the same binary policy semodule would
// build. The tests and the VM harness use it to build policies without touching the store.
func StoreCIL(store string) ([]byte, error) {
	files, err := filepath.Glob(filepath.Join(store, "[0-9]*", "*", "cil"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read module store %s: no modules (install selinux-policy-default)", store)
	}
	var out bytes.Buffer
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		if _, err := os.Stat(filepath.Join(store, "disabled", name)); err == nil {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read module store: %w", err)
		}
		if bytes.HasPrefix(b, []byte("BZh")) {
			if b, err = io.ReadAll(bzip2.NewReader(bytes.NewReader(b))); err != nil {
				return nil, fmt.Errorf("read module store: %s: %w", f, err)
			}
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// StaticModule is the module of a host without fromSource rules: the same text whatever the
// paths and actions, since such policies change only labels. The VM harness builds it into the
// policy its selinux profile boots with, for Ward running in admin (kernel_t there).
func StaticModule(admin string) []byte {
	m, _, err := Render(&rules.Set{Workload: workload.Workload{Kind: workload.KindHost}}, Options{Admin: admin})
	if err != nil {
		panic(err) // an empty host set with an admin domain always renders
	}
	return m.Text
}
