package bpflsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
)

// loadedInTestMain, when set (by the VM tests' TestMain), returns what its
// New(Options{}) returned.
var loadedInTestMain func() (*Backend, error)

// TestNewOnThisKernel: the development hosts list bpf but refuse LSM
// programs (reference/machines.md); New must say so with ErrNotSupported so
// that selection falls back. On a kernel that allows them, New must work.
func TestNewOnThisKernel(t *testing.T) {
	var b *Backend
	var err error
	if loadedInTestMain != nil {
		// The VM tests' TestMain already called New on this kernel; loading
		// the programs again would only cost a minute of verifier time.
		b, err = loadedInTestMain()
	} else {
		b, err = New(Options{})
		if err == nil {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err == nil {
		if b == nil || b.Name() != enforcer.BPF {
			t.Fatalf("New returned %v and no error", b)
		}
		t.Log("this kernel runs BPF-LSM programs")
		return
	}
	if !errors.Is(err, enforcer.ErrNotSupported) {
		t.Fatalf("New: %v, want an error wrapping ErrNotSupported", err)
	}
	t.Logf("refused as expected: %v", err)
}

// TestPinDirRefusals: Uninstall must never remove a tree that is not on a BPF
// filesystem (a wrong path in a config), and New refuses such a PinDir
// before loading anything.
func TestPinDirRefusals(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Uninstall(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "not on a BPF filesystem") {
		t.Errorf("Uninstall(%s): %v, want a refusal", dir, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Uninstall removed files: %v", err)
	}
	if err := Uninstall(context.Background(), "relative/dir"); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("Uninstall of a relative path: %v", err)
	}
	if err := Uninstall(context.Background(), filepath.Join(dir, "missing")); err != nil {
		t.Errorf("Uninstall of a missing directory: %v", err)
	}
	sub := filepath.Join(dir, "ward")
	if _, err := New(Options{PinDir: sub}); err == nil || !strings.Contains(err.Error(), "not on a BPF filesystem") {
		t.Errorf("New with PinDir on %s: %v, want a refusal", sub, err)
	}
	if _, err := os.Stat(sub); !os.IsNotExist(err) {
		t.Errorf("New created %s: %v", sub, err)
	}
}

// TestMountBPFFS: an empty or missing directory gets a BPF filesystem (as /sys/fs/bpf on a host
// that did not mount it at boot); one already mounted, or a directory with files, is left alone.
func TestMountBPFFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bpf")
	mounted, err := MountBPFFS(dir)
	if err != nil || !mounted {
		t.Fatalf("MountBPFFS(%s) = %v, %v; want a mount", dir, mounted, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Error(err)
		}
	})
	if err := checkBPFFS(dir); err != nil {
		t.Fatal(err)
	}
	if again, err := MountBPFFS(dir); err != nil || again {
		t.Errorf("second MountBPFFS = %v, %v; want nothing to do", again, err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := MountBPFFS(full); err != nil || m {
		t.Errorf("MountBPFFS over files = %v, %v; want it left alone", m, err)
	}
}

// TestProgOpsCoversEveryProgram: a program missing from progOps would never be attached, a
// hook silently left out; one named there but gone from ward.c would be a stale entry.
func TestProgOpsCoversEveryProgram(t *testing.T) {
	spec, err := loadWard()
	if err != nil {
		t.Fatal(err)
	}
	for name := range spec.Programs {
		if progOps[name] == 0 {
			t.Errorf("program %s has no operations in progOps: it would never be attached", name)
		}
	}
	for name := range progOps {
		if spec.Programs[name] == nil {
			t.Errorf("progOps names %s, which ward.c does not define", name)
		}
	}
	if got := usedOps(uint32(wfRules)<<8 | uint32(wfRules)<<24); got != opBits(opProcess, opCapabilities) {
		t.Errorf("usedOps(process and capability rules) = %b, want %b", got, opBits(opProcess, opCapabilities))
	}
}

// TestCountersOffset: Stats finds the counters in the scratch buffer by the object's BTF, and
// refuses an object whose scratch value has none rather than read other bytes as counters.
func TestCountersOffset(t *testing.T) {
	spec, err := loadWard()
	if err != nil {
		t.Fatal(err)
	}
	at, err := countersOffset(spec)
	if err != nil {
		t.Fatal(err)
	}
	if size := int(spec.Maps["scratch"].ValueSize); at <= 0 || at%8 != 0 || at+8*counters > size {
		t.Errorf("counters at byte %d of a %d-byte scratch value", at, size)
	}
	spec.Maps["scratch"].Value = &btf.Int{Name: "u64", Size: 8}
	if _, err := countersOffset(spec); err == nil {
		t.Error("countersOffset found counters in a scratch value without them")
	}
}
