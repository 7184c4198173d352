package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestNewestMatching: the newest package of each kernel line is the highest number, not the
// last name in apt's order nor another line's.
func TestNewestMatching(t *testing.T) {
	apt := strings.Split(`linux-image-6.1.0-9-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-57-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-57-amd64-dbg - Debug symbols for linux-image-6.1.0-57-amd64
linux-image-6.1.0-57-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.12.118+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.12.118+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.99+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.12-amd64 - Linux for 64-bit PCs (meta-package)`, "\n")
	for line, want := range map[string]string{"6.1": "linux-image-6.1.0-57-amd64", "6.12": "linux-image-6.12.118+deb12-amd64"} {
		if got := newestMatching(apt, kernelLines[line]); got != want {
			t.Errorf("line %s: %q, want %q", line, got, want)
		}
	}
	if got := newestMatching(apt[:1], kernelLines["6.12"]); got != "" {
		t.Errorf("6.12 among 6.1 packages: %q", got)
	}
	for pkg, want := range map[string]string{"linux-image-6.1.0-57-amd64": "6.1", "linux-image-6.12.118+deb12-amd64": "6.12", "linux-image-6.12.118+deb12-amd64-unsigned": ""} {
		if line := kernelLineOf(pkg); line != want {
			t.Errorf("kernelLineOf(%s) = %q, want %q", pkg, line, want)
		}
	}
}

// TestModuleClosureBuiltin: a module the kernel has built in (modules.builtin) needs no file;
// without that list the same name is an error, not silently left out.
func TestModuleClosureBuiltin(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := moduleClosure(dir, []string{"virtio_pci"}); err == nil {
		t.Fatal("a module neither present nor built in was not refused")
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := moduleClosure(dir, []string{"virtio-pci"})
	if err != nil || len(got) != 0 {
		t.Fatalf("built-in module: %v, %v; want no file", got, err)
	}
}

// TestReadModuleXZ: a compressed module (6.12's *.ko.xz) is read as its uncompressed bytes,
// which init_module takes, and named without its suffixes.
func TestReadModuleXZ(t *testing.T) {
	dir := t.TempDir()
	want := []byte("\x7fELF not really a module")
	plain := filepath.Join(dir, "a-b.ko")
	if err := os.WriteFile(plain, want, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xz", "-k", plain).CombinedOutput(); err != nil {
		t.Fatalf("xz (.ci/install-vm-deps.sh installs xz-utils): %v: %s", err, out)
	}
	got, err := readModule(plain + ".xz")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("readModule: %q, %v; want %q", got, err, want)
	}
	if name, ok := moduleName("a-b.ko.xz"); !ok || name != "a_b" {
		t.Errorf("moduleName(a-b.ko.xz) = %q, %v", name, ok)
	}
	if _, ok := moduleName("modules.order"); ok {
		t.Error("modules.order taken for a module")
	}
	if _, err := readModule(filepath.Join(dir, "missing.ko.xz")); err == nil {
		t.Error("a missing compressed module read without error")
	}
}
