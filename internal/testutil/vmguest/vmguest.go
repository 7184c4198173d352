// Package vmguest lets kernel tests insist on running inside Ward's test VM
// (tools/vmrun, docs/vm-harness.md).
//
// Tests that need the VM live in *_vm_test.go files behind the `vm` build
// tag and call RequireGuest first. Built with the tag but run on a host, they
// fail instead of skipping: a kernel test that quietly skips has not shown
// that anything is enforced.
package vmguest

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// ProfileEnv is set by the harness's guest init to the boot profile's name
// (for example "apparmor"). Outside the VM it is absent.
const ProfileEnv = "WARD_VM_PROFILE"

// Profile returns the boot profile of the VM this process runs in, or "" on
// a host.
func Profile() string { return os.Getenv(ProfileEnv) }

// RequireGuest fails the test unless it runs inside the test VM, and returns
// the boot profile.
func RequireGuest(t testing.TB) string {
	t.Helper()
	p := Profile()
	if p == "" {
		t.Fatalf("this test must run inside the Ward test VM (%s is not set): run `make test-vm`, "+
			"or `go test -tags vm -exec $PWD/bin/vmrun`, not plain `go test -tags vm`", ProfileEnv)
	}
	return p
}

// RequireProfile fails the test unless it runs inside the test VM booted
// with the named profile.
func RequireProfile(t testing.TB, name string) {
	t.Helper()
	if p := RequireGuest(t); p != name {
		t.Fatalf("this test needs the %q boot profile, the VM was booted with %q: run it with vmrun -profile %s", name, p, name)
	}
}

// UnlimitKmsg lifts printk's rate limit for the test, and puts it back after. Without an audit
// daemon the kernel prints audit records (AppArmor's, SELinux's AVCs) through
// printk_ratelimit(), which passes 10 records per 5 seconds and drops the rest: a reader of
// /dev/kmsg loses records (the reason Ward's reader uses the audit netlink socket when no auditd
// runs).
func UnlimitKmsg(t testing.TB) {
	t.Helper()
	const knob = "/proc/sys/kernel/printk_ratelimit_burst"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knob, []byte("100000"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(knob, old, 0o644); err != nil {
			t.Errorf("restore %s: %v", knob, err)
		}
	})
}

// MountExt4 makes an 8 MiB ext4 file system in the image file img and mounts it on dir (made
// if missing) through a loop device, until the test ends. Unlike tmpfs, the guest's own root,
// ext4 lets drop_caches evict its dentries, as file-handle tests need. The apparmor and
// selinux boot profiles provide mke2fs and the ext4 and loop modules.
func MountExt4(t testing.TB, img, dir string) {
	t.Helper()
	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-F", img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs %s (the boot profile copies it in): %v\n%s", img, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount %s on %s (modules ext4 and loop): %v\n%s", img, dir, err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// DropCaches writes what (1: page cache, 2: dentries and inodes, 3: both) to
// /proc/sys/vm/drop_caches after a sync: the kernel then evicts what no one holds, as
// memory pressure would.
func DropCaches(t testing.TB, what int) {
	t.Helper()
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte(strconv.Itoa(what)), 0); err != nil {
		t.Fatal(err)
	}
}
