package enforcer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/rules"
)

type fakeBackend struct{ name string }

func (f *fakeBackend) Name() string                              { return f.name }
func (f *fakeBackend) Apply(context.Context, []*rules.Set) error { return nil }
func (f *fakeBackend) Events() <-chan Event                      { return nil }
func (f *fakeBackend) Close() error                              { return nil }

func TestReadLSMs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lsm")
	if err := os.WriteFile(p, []byte("lockdown,capability,landlock,bpf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLSMs(p)
	if err != nil || !reflect.DeepEqual(got, []string{"lockdown", "capability", "landlock", "bpf"}) {
		t.Fatalf("ReadLSMs = %v, %v", got, err)
	}
	if _, err := ReadLSMs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("ReadLSMs of a missing file succeeded")
	}
}

func TestParseOrder(t *testing.T) {
	for in, want := range map[string][]string{
		"":               {"bpf", "apparmor", "selinux"},
		"apparmor,bpf":   {"apparmor", "bpf"},
		" BPF , selinux": {"bpf", "selinux"},
		"bpf,bpf":        {"bpf"},
		"none":           {},
	} {
		got, err := ParseOrder(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseOrder(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"smack", "bpf,none", "apparmor,tomoyo"} {
		if _, err := ParseOrder(bad); err == nil || !strings.Contains(err.Error(), "allowed are") && !strings.Contains(err.Error(), "none cannot") {
			t.Errorf("ParseOrder(%q) = %v, want a precise error", bad, err)
		}
	}
}

func TestSelectFallsBack(t *testing.T) {
	ok := func(name string) Factory {
		return func(context.Context) (Backend, error) { return &fakeBackend{name}, nil }
	}
	refuse := func(context.Context) (Backend, error) {
		return nil, fmt.Errorf("load lsm program: operation not permitted: %w", ErrNotSupported)
	}
	broken := func(context.Context) (Backend, error) { return nil, errors.New("parser crashed") }

	// The host case: bpf listed, programs refused; apparmor not active.
	sel := Select(context.Background(), []string{"lockdown", "capability", "landlock", "bpf"}, DefaultOrder,
		map[string]Factory{BPF: refuse, AppArmor: ok(AppArmor), SELinux: ok(SELinux)})
	if sel.Selected != None || sel.Backend != nil {
		t.Fatalf("selected %s, want none", sel.Selected)
	}
	wantReasons := []string{"load lsm program: operation not permitted: not supported", "not active in this kernel", "not active in this kernel", "monitor mode"}
	if len(sel.Attempts) != 4 {
		t.Fatalf("attempts = %+v", sel.Attempts)
	}
	for i, w := range wantReasons {
		if !strings.Contains(sel.Attempts[i].Reason, w) {
			t.Errorf("attempt %d reason %q, want it to contain %q", i, sel.Attempts[i].Reason, w)
		}
	}

	// The VM case: bpf broken for another reason, apparmor works.
	sel = Select(context.Background(), []string{"apparmor", "bpf"}, DefaultOrder,
		map[string]Factory{BPF: broken, AppArmor: ok(AppArmor)})
	if sel.Selected != AppArmor || sel.Backend.Name() != AppArmor {
		t.Fatalf("selected %s, want apparmor", sel.Selected)
	}
	if sel.Attempts[0].OK || !strings.HasPrefix(sel.Attempts[0].Reason, "probe error: ") || !sel.Attempts[1].OK {
		t.Errorf("attempts = %+v", sel.Attempts)
	}

	// lsm=none.
	sel = Select(context.Background(), []string{"apparmor"}, []string{}, map[string]Factory{AppArmor: ok(AppArmor)})
	if sel.Selected != None || len(sel.Attempts) != 1 || !strings.Contains(sel.Attempts[0].Reason, "disabled") {
		t.Errorf("lsm=none: %+v", sel)
	}

	// A module with no backend in this build.
	sel = Select(context.Background(), []string{"selinux"}, []string{SELinux}, map[string]Factory{})
	if sel.Selected != None || !strings.Contains(sel.Attempts[0].Reason, "no selinux backend") {
		t.Errorf("missing backend: %+v", sel.Attempts)
	}
}

type limitedBackend struct{ fakeBackend }

func (limitedBackend) Limitations() []string { return []string{"hard links made before Ward"} }

// TestSelectRecordsLimitations: what the selected backend cannot close travels with its attempt,
// for ward run's log and ward probe's output.
func TestSelectRecordsLimitations(t *testing.T) {
	sel := Select(context.Background(), []string{"bpf"}, []string{BPF}, map[string]Factory{
		BPF: func(context.Context) (Backend, error) { return &limitedBackend{fakeBackend{BPF}}, nil },
	})
	if len(sel.Attempts) != 1 || !reflect.DeepEqual(sel.Attempts[0].Limitations, []string{"hard links made before Ward"}) {
		t.Errorf("attempts %+v, want the backend's limitations", sel.Attempts)
	}
}

func TestProcPPID(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "42"), 0o755))
	// A comm with a space and a parenthesis, as the kernel writes it.
	must(os.WriteFile(filepath.Join(root, "42", "stat"), []byte("42 (a b) c) S 7 42 42 0 -1\n"), 0o644))
	if got := ProcPPID(root, 42); got != 7 {
		t.Errorf("ProcPPID = %d, want 7", got)
	}
	if got := ProcPPID(root, 43); got != 0 {
		t.Errorf("ProcPPID of a gone process = %d, want 0", got)
	}
	if got := ProcPPID("", os.Getpid()); got != uint32(os.Getppid()) {
		t.Errorf("ProcPPID(self) = %d, want %d", got, os.Getppid())
	}
}
