package bpflsm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRootHost: paths are resolved inside the root as a task there sees them: an absolute
// symlink from the root, ".." never above it, loops refused; inodes and hard links are the
// root's files, named by the task's paths.
func TestRootHost(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "etc"} {
		check(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	check(t, os.WriteFile(filepath.Join(root, "a/b/f"), []byte("x"), 0o644))
	check(t, os.Link(filepath.Join(root, "a/b/f"), filepath.Join(root, "f-link")))
	check(t, os.WriteFile(filepath.Join(root, "etc/marker"), nil, 0o644))
	for name, target := range map[string]string{
		"abs":  "/a",           // absolute: from the root, not from Ward's
		"a/up": "../a/b",       // relative
		"esc":  "../../../etc", // cannot climb above the root
		"loop": "/loop",
	} {
		check(t, os.Symlink(target, filepath.Join(root, name)))
	}
	h := rootHost{root: root}
	for _, c := range []struct{ in, want string }{
		{"/abs/b", "/a/b"},
		{"/a/up/f", "/a/b/f"},
		{"/esc/marker", "/etc/marker"},
		{"/abs/..", "/"},
		{"/a/b/../b/./f", "/a/b/f"},
	} {
		got, err := h.EvalSymlinks(c.in)
		if err != nil || got != c.want {
			t.Errorf("EvalSymlinks(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := h.EvalSymlinks("/loop/x"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("EvalSymlinks(/loop/x): %v, want ELOOP", err)
	}
	if _, err := h.EvalSymlinks("/missing"); err == nil {
		t.Error("EvalSymlinks(/missing): no error")
	}

	dev, ino, ok := h.Inode("/abs/b/f")
	wdev, wino, _ := OSHost{}.Inode(filepath.Join(root, "a/b/f"))
	if !ok || dev != wdev || ino != wino {
		t.Errorf("Inode(/abs/b/f) = %d:%d %t, want %d:%d", dev, ino, ok, wdev, wino)
	}
	if _, _, ok := h.Inode("/esc/../../missing"); ok {
		t.Error("Inode of a missing file: found")
	}
	got, complete := h.HardLinks("/abs", true, 100)
	if !complete || !slices.Equal(got, []string{"/a/b/f"}) {
		t.Errorf("HardLinks(/abs) = %v %t, want [/a/b/f] true", got, complete)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
