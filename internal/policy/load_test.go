package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	good := ksp(fileRule...)
	other := strings.Replace(good, "name: t", "name: u", 1)
	dir := writeFiles(t, map[string]string{
		"b.yaml":              good,
		"a/c.yml":             other,
		"d.json":              `{"apiVersion":"security.kubearmor.com/v1","kind":"KubeArmorClusterPolicy","metadata":{"name":"j"},"spec":{"file":{"matchPaths":[{"path":"/x"}]}}}`,
		"notes.txt":           "not a policy",
		"..2024_01_01/b.yaml": good, // a ConfigMap volume's hidden copy
	})
	ps, ws, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Key())
	}
	if got := strings.Join(names, " "); got != "KubeArmorPolicy/container_namespace/u KubeArmorPolicy/container_namespace/t KubeArmorClusterPolicy/j" {
		t.Errorf("policies in order: %s", got)
	}
	if len(ws) != 0 {
		t.Errorf("warnings: %v", ws)
	}

	// One bad file: Load returns nothing; LoadFiles keeps the good files.
	bad := writeFiles(t, map[string]string{"a.yaml": good, "b.yaml": strings.Replace(good, "/etc/passwd", "etc/passwd", 1)})
	ps, _, err = Load(bad)
	if ps != nil || err == nil || err.Error() != filepath.Join(bad, "b.yaml")+`:8: doc 1: spec.file.matchPaths[0].path: "etc/passwd" is not an absolute path: must start with "/" and not end with "/"` {
		t.Errorf("Load with a bad file: %d policies, %v", len(ps), err)
	}
	rs := LoadFiles(bad)
	if len(rs) != 2 || rs[0].Err != nil || len(rs[0].Policies) != 1 || rs[1].Err == nil || rs[1].Policies != nil {
		t.Errorf("LoadFiles: %+v", rs)
	}

	// The same policy in two files is an error in the second.
	dup := writeFiles(t, map[string]string{"a.yaml": good, "b.yaml": good})
	_, _, err = Load(dup)
	want := filepath.Join(dup, "b.yaml") + ":1: doc 1: metadata.name: policy KubeArmorPolicy/container_namespace/t is defined twice (first in " + filepath.Join(dup, "a.yaml") + ":1)"
	if err == nil || err.Error() != want {
		t.Errorf("duplicate across files: %v\nwant %s", err, want)
	}

	// Missing paths and empty directories.
	_, _, err = Load(filepath.Join(dir, "nope.yaml"))
	if err == nil || err.Error() != filepath.Join(dir, "nope.yaml")+": no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	_, ws, err = Load(t.TempDir())
	if err != nil || len(ws) != 1 || !strings.Contains(ws[0].String(), "no policy files") {
		t.Errorf("empty directory: %v %v", ws, err)
	}
}

func TestEmptyDocuments(t *testing.T) {
	ps, ws, err := Parse("e.yaml", []byte("# nothing\n---\n---\n"))
	if err != nil || len(ps) != 0 || len(ws) != 1 || ws[0].String() != "e.yaml: warning: no policies in this file" {
		t.Errorf("got %v %v %v", ps, ws, err)
	}
	ps, _, err = Parse("e.yaml", []byte("---\n"+ksp(fileRule...)+"---\n"))
	if err != nil || len(ps) != 1 || ps[0].Source != (Source{File: "e.yaml", Doc: 1, Line: 2}) {
		t.Errorf("got %+v %v", ps, err)
	}
}
