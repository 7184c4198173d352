//go:build !vm

package selinux

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// fakeRunner records commands and answers with err.
type fakeRunner struct {
	calls [][]string
	err   error
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, append([]string{name}, args...))
	if f.err != nil {
		return []byte("semodule: Failed!"), f.err
	}
	return nil, nil
}

// fakeLabeler keeps contexts in memory; a file it never labelled has "...:orig_t:s0".
type fakeLabeler struct {
	labels map[string]string
	sets   int
	failOn string
}

func (f *fakeLabeler) Get(p string) (string, error) {
	if c, ok := f.labels[p]; ok {
		return c, nil
	}
	return "system_u:object_r:orig_t:s0", nil
}

func (f *fakeLabeler) Set(p, c string) error {
	if p == f.failOn {
		return errors.New("label " + p + ": permission denied")
	}
	f.sets++
	f.labels[p] = c
	return nil
}

func moduleFor(t *testing.T, ps ...policy.Policy) *Module {
	t.Helper()
	set, err := rules.Compile(ps, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Render(set, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mkfiles(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(root, n)
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlanWalksTargets(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "secret", "flat/a", "flat/sub/b", "deep/a", "deep/sub/b", "other")
	if err := os.Symlink(filepath.Join(root, "other"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	m := moduleFor(t, hostPolicy("p",
		file(policy.MatchPath, root+"/secret", block),
		file(policy.MatchDirectory, root+"/flat/", block),
		file(policy.MatchDirectory, root+"/deep/", block, recursive),
		file(policy.MatchPath, root+"/link", block, readOnly),
		file(policy.MatchPath, root+"/missing", block),
	))
	want, warns := Plan(m, nil)
	bbb, aba := Label("ward_bbb_t"), Label("ward_aba_t")
	expect := map[string]string{
		root + "/secret": bbb, root + "/flat": bbb, root + "/flat/a": bbb, root + "/flat/sub": bbb,
		root + "/deep": bbb, root + "/deep/a": bbb, root + "/deep/sub": bbb, root + "/deep/sub/b": bbb,
		// The rule names the link; the kernel checks the file it points to.
		root + "/other": aba,
	}
	for p, c := range expect {
		if want[p] != c {
			t.Errorf("plan[%s] = %q, want %q", p, want[p], c)
		}
	}
	for p := range want {
		if _, ok := expect[p]; !ok {
			t.Errorf("plan labels %s, which no rule covers", p)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0].Message, root+"/missing does not exist") {
		t.Errorf("warnings %v, want one about the missing path", warns)
	}
}

func TestLabelRememberAndRestore(t *testing.T) {
	root := t.TempDir()
	state := t.TempDir()
	mkfiles(t, root, "a", "b")
	lb := &fakeLabeler{labels: map[string]string{root + "/b": "system_u:object_r:etc_t:s0"}}
	l, err := NewLoader(state, &fakeRunner{}, lb)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{root + "/a": Label("ward_bbb_t"), root + "/b": Label("ward_aba_t")}
	if err := l.Label(want); err != nil {
		t.Fatal(err)
	}
	if lb.labels[root+"/a"] != Label("ward_bbb_t") || lb.labels[root+"/b"] != Label("ward_aba_t") {
		t.Fatalf("labels %v", lb.labels)
	}
	// Applying the same again changes nothing.
	sets := lb.sets
	if err := l.Label(want); err != nil {
		t.Fatal(err)
	}
	if lb.sets != sets {
		t.Errorf("a second identical Label wrote %d labels", lb.sets-sets)
	}
	if k := l.Labels()[root+"/a"].Kind; k != "file" {
		t.Errorf("state keeps class %q for a, want file", k)
	}
	// A state an older Ward wrote has no class: the next Label fills it in, without relabelling.
	old := l.Labels()[root+"/a"]
	old.Kind = ""
	l.st.Labels[root+"/a"] = old
	if err := l.Label(want); err != nil {
		t.Fatal(err)
	}
	if k := l.Labels()[root+"/a"].Kind; k != "file" || lb.sets != sets {
		t.Errorf("after a Label over a state without classes: class %q, %d labels written; want file, none", k, lb.sets-sets)
	}

	// A restart (a new loader on the same state) still knows the originals and restores them
	// when the policy goes away.
	l2, err := NewLoader(state, &fakeRunner{}, lb)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Labels()[root+"/b"].Original; got != "system_u:object_r:etc_t:s0" {
		t.Fatalf("state remembers %q as b's original", got)
	}
	if err := l2.Label(map[string]string{root + "/a": Label("ward_bbb_t")}); err != nil {
		t.Fatal(err)
	}
	if got := lb.labels[root+"/b"]; got != "system_u:object_r:etc_t:s0" {
		t.Errorf("b was not restored: %q", got)
	}
	if err := l2.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := lb.labels[root+"/a"]; got != "system_u:object_r:orig_t:s0" {
		t.Errorf("a was not restored: %q", got)
	}
	if n := len(l2.Labels()); n != 0 {
		t.Errorf("state still holds %d labels after Restore", n)
	}
}

// TestStateWrittenBeforeLabel: when labelling fails half way (a crash, a refusal), the state
// already names every file whose label may have changed.
func TestStateWrittenBeforeLabel(t *testing.T) {
	root := t.TempDir()
	state := t.TempDir()
	mkfiles(t, root, "a", "b")
	lb := &fakeLabeler{labels: map[string]string{}, failOn: root + "/b"}
	l, err := NewLoader(state, nil, lb)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Label(map[string]string{root + "/a": Label("ward_bbb_t"), root + "/b": Label("ward_bbb_t")})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Label = %v, want the labeler's error", err)
	}
	l2, err := NewLoader(state, nil, lb)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l2.Labels()[root+"/a"]; !ok {
		t.Errorf("state lost a: %v", l2.Labels())
	}
}

// TestRestoreLeavesReplacedAndRelabelledFiles: a file replaced since, or relabelled by someone
// else, keeps its current label.
func TestRestoreLeavesReplacedAndRelabelledFiles(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "replaced", "chconed")
	lb := &fakeLabeler{labels: map[string]string{}}
	l, err := NewLoader(t.TempDir(), nil, lb)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Label(map[string]string{root + "/replaced": Label("ward_bbb_t"), root + "/chconed": Label("ward_bbb_t")}); err != nil {
		t.Fatal(err)
	}
	os.Remove(root + "/replaced")
	mkfiles(t, root, "keep-inode-busy", "replaced")
	lb.labels[root+"/replaced"] = "system_u:object_r:new_t:s0"
	lb.labels[root+"/chconed"] = "system_u:object_r:admin_t:s0"
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := lb.labels[root+"/replaced"]; got != "system_u:object_r:new_t:s0" {
		t.Errorf("replaced file got %q", got)
	}
	if got := lb.labels[root+"/chconed"]; got != "system_u:object_r:admin_t:s0" {
		t.Errorf("relabelled file got %q", got)
	}
}

func TestInstallOnlyWhenChanged(t *testing.T) {
	r := &fakeRunner{}
	l, err := NewLoader(t.TempDir(), r, &fakeLabeler{labels: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := moduleFor(t, hostPolicy("p", file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/cat"))))
	for range 2 {
		if err := l.Install(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.calls) != 1 || !slices.Equal(r.calls[0][:2], []string{"semodule", "-i"}) || filepath.Base(r.calls[0][2]) != "ward.cil" {
		t.Fatalf("calls %v, want one semodule -i .../ward.cil", r.calls)
	}
	r.err = errors.New("exit status 1")
	m2 := moduleFor(t, hostPolicy("p", file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/less"))))
	if err := l.Install(ctx, m2); err == nil || !strings.Contains(err.Error(), "semodule -i") {
		t.Fatalf("Install with a failing semodule = %v", err)
	}
	if string(l.Installed()) != string(m.Text) {
		t.Errorf("a refused module was recorded as installed")
	}
	r.err = nil
	if err := l.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if last := r.calls[len(r.calls)-1]; !slices.Equal(last, []string{"semodule", "-r", "ward"}) {
		t.Errorf("last call %v", last)
	}
}

// TestXattrLabelerRoundTrip uses the real extended attribute where the file system allows it.
// Without SELinux in the kernel, security.* attributes are still stored by tmpfs and ext4.
func TestXattrLabelerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	mkfiles(t, dir, "f")
	var lb XattrLabeler
	orig, err := lb.Get(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Set(p, Label("ward_bbb_t")); err != nil {
		t.Fatalf("%v (this test needs root and a file system with security xattrs)", err)
	}
	if got, _ := lb.Get(p); got != Label("ward_bbb_t") {
		t.Errorf("Get after Set = %q", got)
	}
	if err := lb.Set(p, orig); err != nil {
		t.Fatal(err)
	}
	if got, _ := lb.Get(p); got != orig {
		t.Errorf("Get after restore = %q, want %q", got, orig)
	}
}

// TestPlanKeepsWhatItCannotList: a protected directory Ward cannot list (before the module let
// Ward's domain list its types, every labelled tree was one) keeps the labels Ward gave its
// files; without this, the next apply restored them all (issue 17).
func TestPlanKeepsWhatItCannotList(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "tree/a", "tree/sub/b", "flat/c")
	m := moduleFor(t, hostPolicy("p",
		file(policy.MatchDirectory, root+"/tree/", block, recursive),
		file(policy.MatchDirectory, root+"/flat/", block),
	))
	known := []string{root + "/tree/a", root + "/tree/sub", root + "/tree/sub/b", root + "/tree/gone", root + "/flat/c", root + "/flat/old"}
	// Listing fails as it does for a directory whose type Ward's domain may not read.
	denied := &fs.PathError{Op: "open", Err: syscall.EACCES}
	walkDir = func(root string, fn fs.WalkDirFunc) error {
		denied.Path = root
		return fn(root, nil, denied)
	}
	readDir = func(string) ([]os.DirEntry, error) { return nil, denied }
	t.Cleanup(func() { walkDir, readDir = filepath.WalkDir, os.ReadDir })
	want, warns := Plan(m, known)
	bbb := Label("ward_bbb_t")
	for _, p := range known {
		if want[p] != bbb {
			t.Errorf("plan[%s] = %q, want %q (labelled before, below a directory Ward cannot list)", p, want[p], bbb)
		}
	}
	n := 0
	for _, w := range warns {
		if strings.Contains(w.Message, "cannot list") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("warnings %v, want one 'cannot list' per directory", warns)
	}
}

// TestInheritedLabelRestoredToParentOriginal: a file created in a directory Ward labelled
// inherits the directory's Ward type. Restoring that would keep it protected for ever; it gets
// the directory's original label instead.
func TestInheritedLabelRestoredToParentOriginal(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "tree/a")
	lb := &fakeLabeler{labels: map[string]string{root + "/tree": "system_u:object_r:dir_t:s0"}}
	l, err := NewLoader(t.TempDir(), &fakeRunner{}, lb)
	if err != nil {
		t.Fatal(err)
	}
	bbb := Label("ward_bbb_t")
	if err := l.Label(map[string]string{root + "/tree": bbb}); err != nil {
		t.Fatal(err)
	}
	// Created after labelling: the kernel gave it the directory's type.
	mkfiles(t, root, "tree/new")
	lb.labels[root+"/tree/new"] = bbb
	if err := l.Label(map[string]string{root + "/tree": bbb, root + "/tree/new": bbb}); err != nil {
		t.Fatal(err)
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := lb.labels[root+"/tree/new"]; got != "system_u:object_r:dir_t:s0" {
		t.Errorf("new file restored to %q, want the directory's original label", got)
	}
	if got := lb.labels[root+"/tree"]; got != "system_u:object_r:dir_t:s0" {
		t.Errorf("directory restored to %q", got)
	}
}

// TestLabelFollowsRenamedFile: a directory above a protected tree is renamed. The labels went
// with the files, and the rule keeps them (renaming an ancestor is no way around a Block);
// removing the policy finds the files where they are now and gives their labels back. Before,
// the next apply forgot them, and the moved files stayed locked for ever.
func TestLabelFollowsRenamedFile(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "top/blocked/a", "top/blocked/sub/b")
	if _, _, err := unix.NameToHandleAt(unix.AT_FDCWD, root+"/top/blocked/a", 0); err != nil {
		t.Fatalf("name_to_handle_at on %s: %v: this test needs a file system with file handles", root, err)
	}
	m := moduleFor(t, hostPolicy("p", file(policy.MatchDirectory, root+"/top/blocked/", block, recursive)))
	lb := &fakeLabeler{labels: map[string]string{}}
	l, err := NewLoader(t.TempDir(), nil, lb)
	if err != nil {
		t.Fatal(err)
	}
	known := func() []string { return slices.Sorted(maps.Keys(l.Labels())) }
	want, _ := Plan(m, known())
	if err := l.Label(want); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root+"/top", root+"/top2"); err != nil {
		t.Fatal(err)
	}
	bbb := Label("ward_bbb_t")
	want, warns := Plan(m, known())
	if len(want) != 4 || !slices.ContainsFunc(warns, func(w enforcer.Warning) bool { return strings.Contains(w.Message, "gone from its path") }) {
		t.Fatalf("plan after the rename: %v, warnings %v", want, warns)
	}
	if err := l.Label(want); err != nil {
		t.Fatalf("apply after the rename: %v", err)
	}
	for _, p := range []string{"/top2/blocked", "/top2/blocked/a", "/top2/blocked/sub/b"} {
		if got := lb.labels[root+p]; got != bbb {
			t.Errorf("%s is labelled %q, want %q", p, got, bbb)
		}
	}
	if len(l.Labels()) != 4 {
		t.Errorf("the state forgot moved files: %v", l.Labels())
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/top2/blocked", "/top2/blocked/a", "/top2/blocked/sub/b"} {
		if got := lb.labels[root+p]; got != "system_u:object_r:orig_t:s0" {
			t.Errorf("after removing the policy %s is labelled %q", p, got)
		}
	}
}
