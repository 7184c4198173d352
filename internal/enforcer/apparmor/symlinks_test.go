package apparmor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// A rule path that leads through a symlink of the host (a merged /usr: /bin -> usr/bin) names
// nothing AppArmor sees: each such path gets a warning with the path to write, resolved below
// the host's root (an absolute link too), as far as the path exists.
func TestSymlinkedPaths(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "etc/real"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/cat"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"bin": "usr/bin", "etc/link": "/etc/real"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("sym",
		file(policy.MatchPath, "/bin/cat", block),
		proc(policy.MatchPath, "/usr/bin/cat", block),
		file(policy.MatchPath, "/secret", block, from("/bin/cat"), from("/usr/bin/cat")),
		file(policy.MatchDirectory, "/bin/", block),
		file(policy.MatchPath, "/bin/newfile", block),
		file(policy.MatchDirectory, "/etc/link/", block, recursive),
		file(policy.MatchPath, "/missing/x", block),
		file(policy.MatchPattern, "/bin/*", block),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range symlinked(set, root) {
		got = append(got, w.Rule+": "+strings.SplitN(w.Message, ":", 2)[0])
		if w.What != "symlink" || w.Policy != "sym" {
			t.Errorf("warning %+v: want What symlink, policy sym", w)
		}
	}
	want := []string{
		"spec.file.matchPaths[0]: /bin/cat leads through a symlink to /usr/bin/cat",
		"spec.file.matchPaths[1].fromSource[0]: /bin/cat leads through a symlink to /usr/bin/cat",
		"spec.file.matchDirectories[0]: /bin/ leads through a symlink to /usr/bin/",
		"spec.file.matchPaths[2]: /bin/newfile leads through a symlink to /usr/bin/newfile",
		"spec.file.matchDirectories[1]: /etc/link/ leads through a symlink to /etc/real/",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ws := symlinked(compileSet(t, renderCase{w: web, policies: []policy.Policy{containerPolicy("shop", "c", file(policy.MatchPath, "/bin/cat", block))}}), root); len(ws) != 0 {
		t.Errorf("container workload: %+v, want none (its paths are in its own root)", ws)
	}
}
