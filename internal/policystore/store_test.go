package policystore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func versionsOf(s *Store) map[string]string {
	m := map[string]string{}
	for _, v := range s.Versioned() {
		m[v.Key] = v.Version
	}
	return m
}

// Only changed files are parsed again; a version changes exactly when a policy may have.
func TestStoreReloadIncremental(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, t.TempDir())
	writePolicy(t, dir, "a.yaml", hostPolicyFile("a", "/a"))
	writePolicy(t, dir, "b.yaml", hostPolicyFile("b", "/b"))
	writePolicy(t, dir, ".hidden.yaml", hostPolicyFile("h", "/h"))
	writePolicy(t, dir, "notes.txt", "not a policy")
	res := s.ReloadDir()
	if len(res.Accepted) != 2 || len(res.Rejected) != 0 {
		t.Fatalf("first reload: %+v", res)
	}
	v1 := versionsOf(s)

	// Unchanged: nothing accepted, same versions.
	if res := s.ReloadDir(); res.Changed || len(res.Accepted) != 0 {
		t.Errorf("unchanged reload: %+v", res)
	}
	// A trailing comment: other bytes, same policies (and lines), same version.
	writePolicy(t, dir, "a.yaml", hostPolicyFile("a", "/a")+"# comment\n")
	if res := s.ReloadDir(); res.Changed {
		t.Errorf("comment-only change reported as a change: %+v", res)
	}
	if got := versionsOf(s); got["KubeArmorHostPolicy/a"] != v1["KubeArmorHostPolicy/a"] {
		t.Error("comment-only change bumped the version")
	}
	// A real change bumps a's version only.
	writePolicy(t, dir, "a.yaml", hostPolicyFile("a", "/a2"))
	if res := s.ReloadDir(); !res.Changed || len(res.Accepted) != 1 {
		t.Errorf("change: %+v", res)
	}
	v2 := versionsOf(s)
	if v2["KubeArmorHostPolicy/a"] == v1["KubeArmorHostPolicy/a"] || v2["KubeArmorHostPolicy/b"] != v1["KubeArmorHostPolicy/b"] {
		t.Errorf("versions %v -> %v", v1, v2)
	}

	// A second definition of b is refused and b stays as it was; once the first file is gone,
	// the second is accepted without being touched.
	writePolicy(t, dir, "c.yaml", hostPolicyFile("b", "/c"))
	res = s.ReloadDir()
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Error(), "defined twice (first in "+filepath.Join(dir, "b.yaml")) {
		t.Fatalf("duplicate: %+v", res.Rejected)
	}
	if res := s.ReloadDir(); len(res.Rejected) != 0 {
		t.Errorf("an unchanged refused file is reported again: %v", res.Rejected)
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	res = s.ReloadDir()
	if len(res.Removed) != 1 || len(res.Accepted) != 1 || res.Accepted[0] != filepath.Join(dir, "c.yaml") {
		t.Errorf("after removing the first definition: %+v", res)
	}
	for _, p := range s.Policies() {
		if p.Name == "b" && p.Rules[0].Value != "/c" {
			t.Errorf("b = %+v, want c.yaml's", p.Rules[0])
		}
	}
}

// ReloadPaths reads only what it is given, and says when only a whole reload can tell.
func TestStoreReloadPaths(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, t.TempDir())
	writePolicy(t, dir, "a.yaml", hostPolicyFile("a", "/a"))
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, "sub/b.yaml", hostPolicyFile("b", "/b"))
	s.ReloadDir()

	// Two files change; only one is reported: only that one is read.
	writePolicy(t, dir, "a.yaml", hostPolicyFile("a", "/a2"))
	writePolicy(t, dir, "sub/b.yaml", hostPolicyFile("b", "/b2"))
	res, ok := s.ReloadPaths([]string{filepath.Join(dir, "a.yaml")})
	if !ok || len(res.Accepted) != 1 || res.Accepted[0] != filepath.Join(dir, "a.yaml") {
		t.Fatalf("ReloadPaths(a) = %+v, %v", res, ok)
	}
	// A directory is walked; its removal removes its files.
	res, ok = s.ReloadPaths([]string{filepath.Join(dir, "sub")})
	if !ok || len(res.Accepted) != 1 {
		t.Fatalf("ReloadPaths(sub) = %+v, %v", res, ok)
	}
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	res, ok = s.ReloadPaths([]string{filepath.Join(dir, "sub")})
	if !ok || len(res.Removed) != 1 || len(s.Policies()) != 1 {
		t.Fatalf("after removing sub: %+v, %v, %d policies", res, ok, len(s.Policies()))
	}
	// A hidden entry (a ConfigMap's ..data link) or the directory itself: only ReloadDir knows.
	for _, p := range []string{filepath.Join(dir, "..data"), dir, filepath.Join(dir, ".x", "c.yaml")} {
		if _, ok := s.ReloadPaths([]string{p}); ok {
			t.Errorf("ReloadPaths(%s) claims to know", p)
		}
	}
	// Not a policy file: nothing read, nothing changed.
	writePolicy(t, dir, "notes.txt", "x")
	if res, ok := s.ReloadPaths([]string{filepath.Join(dir, "notes.txt")}); !ok || res.Changed {
		t.Errorf("notes.txt: %+v, %v", res, ok)
	}
}

// hostPolicyFile is a host policy that blocks path.
func hostPolicyFile(name, path string) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: %s}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
    - path: %s
  action: Block
`, name, path)
}

func writePolicy(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A policy renamed in its file frees its old name for another file, and a file's policies keep
// their names among themselves across a change: what the store remembers of where each policy
// is defined follows every change of the files.
func TestStoreDefinedFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, t.TempDir())
	writePolicy(t, dir, "a.yaml", hostPolicyFile("a", "/a"))
	s.ReloadDir()
	writePolicy(t, dir, "a.yaml", hostPolicyFile("x", "/a")) // renamed: "a" is free
	if res := s.ReloadDir(); len(res.Accepted) != 1 || len(res.Rejected) != 0 {
		t.Fatalf("rename: %+v", res)
	}
	writePolicy(t, dir, "b.yaml", hostPolicyFile("a", "/b"))
	if res := s.ReloadDir(); len(res.Accepted) != 1 || len(res.Rejected) != 0 {
		t.Errorf("a new file with the old name: %+v", res)
	}
	writePolicy(t, dir, "c.yaml", hostPolicyFile("x", "/c")) // x is a.yaml's
	if res := s.ReloadDir(); len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Error(), "defined twice (first in "+filepath.Join(dir, "a.yaml")) {
		t.Errorf("a second x: %+v", res)
	}
	writePolicy(t, dir, "a.yaml", hostPolicyFile("x", "/a2")) // a.yaml changes x, keeps its name
	if res := s.ReloadDir(); len(res.Accepted) != 1 || res.Accepted[0] != filepath.Join(dir, "a.yaml") {
		t.Errorf("a change of x in its own file: %+v", res)
	}
}
