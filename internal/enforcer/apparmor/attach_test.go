package apparmor

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestUnconfined(t *testing.T) {
	root := t.TempDir()
	proc := func(pid, comm, cmdline, label string, stacked bool) {
		t.Helper()
		dir := filepath.Join(root, pid)
		attr := filepath.Join(dir, "attr")
		if stacked {
			attr = filepath.Join(attr, "apparmor")
		}
		if err := os.MkdirAll(attr, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{"comm": comm + "\n", "cmdline": cmdline, filepath.Join(attr[len(dir)+1:], "current"): label} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	proc("1", "init", "/sbin/init\x00", "unconfined\n", true)
	proc("2", "kthreadd", "", "unconfined\n", true)                // kernel thread
	proc("10", "sshd", "sshd\x00", "unconfined\n", false)          // older kernel: attr/current
	proc("11", "sshd", "sshd\x00", "unconfined\n", true)           //
	proc("12", "bash", "-bash\x00", "ward-host (enforce)\n", true) // started after Ward
	proc("13", "ward", "ward\x00run\x00", "unconfined\n", true)    // Ward itself
	proc("14", "cupsd", "cupsd\x00", "/usr/sbin/cupsd (enforce)\n", true)
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	total, byName, err := Unconfined(root, 13)
	if err != nil {
		t.Fatal(err)
	}
	want := []NameCount{{"sshd", 2}, {"init", 1}}
	if total != 3 || !reflect.DeepEqual(byName, want) {
		t.Errorf("Unconfined = %d %v, want 3 %v", total, byName, want)
	}
}

func TestRuntimeExecutables(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/local/bin", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte("#!"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/runc")
	write("usr/local/bin/containerd-shim-runc-v2")
	write("usr/bin/cat") // not a runtime
	// /usr/sbin/runc -> ../bin/runc, and an absolute link resolved inside root, not here.
	if err := os.Symlink("../bin/runc", filepath.Join(root, "usr/sbin/runc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/local/bin/containerd-shim-runc-v2", filepath.Join(root, "usr/bin/containerd-shim-runc-v2")); err != nil {
		t.Fatal(err)
	}
	got := runtimeExecutables(root)
	slices.Sort(got)
	got = slices.Compact(got)
	want := []string{"/usr/bin/runc", "/usr/local/bin/containerd-shim-runc-v2"}
	if !slices.Equal(got, want) {
		t.Errorf("runtimeExecutables = %v, want %v", got, want)
	}
}
