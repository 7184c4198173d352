package apparmor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// A rule path that leads through a symlink of the host (a merged /usr: /bin -> usr/bin) is also
// written where it leads, resolved below the host's root (an absolute link too) as far as the
// path exists, and records of the resolved path are attributed to the rule.
func TestHostAlias(t *testing.T) {
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
	alias := hostAlias(root)
	for p, want := range map[string]string{"/bin/cat": "/usr/bin/cat", "/bin/": "/usr/bin/", "/bin/newfile": "/usr/bin/newfile",
		"/etc/link/": "/etc/real/", "/etc/link/x/y": "/etc/real/x/y", "/usr/bin/cat": "", "/missing/x": "", "/": "", "/etc/": ""} {
		if got, ok := alias(p); got != want && (ok || want != "") {
			t.Errorf("alias(%s) = %q, %v; want %q", p, got, ok, want)
		}
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("sym",
		file(policy.MatchPath, "/bin/cat", block),
		file(policy.MatchPath, "/secret", block, from("/bin/cat")),
		file(policy.MatchDirectory, "/etc/link/", block, recursive),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	aliased, err := set.WithAliases(alias)
	if err != nil {
		t.Fatal(err)
	}
	prof, _, err := Render(aliased, Options{Host: fixtureHost, AttachAll: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"audit deny /bin/cat{,/} rwlkm,", "audit deny /usr/bin/cat{,/} rwlkm,", "audit deny /etc/real/{,**} rwlkm,",
		"/usr/bin/cat px -> ward-host//bin/cat,", "\nprofile /usr/bin/cat flags="} {
		if !strings.Contains(string(prof.Text), want) {
			t.Errorf("profile lacks %q:\n%s", want, prof.Text)
		}
	}
	rec := Record{Apparmor: "DENIED", Operation: "open", Class: "file", Profile: "ward-host", Name: "/etc/real/k", RequestedMask: "r", DeniedMask: "r"}
	if _, v := Attribute(aliased, rec); v.Action != block || v.Policy != "sym" || v.Rule != "spec.file.matchDirectories[0]" {
		t.Errorf("record of /etc/real/k attributed to %s %s %s, want the Block of /etc/link/", v.Action, v.Policy, v.Rule)
	}
	rec.Name, rec.Profile = "/secret", EntryName("ward-host", "/usr/bin/cat")
	if _, v := Attribute(aliased, rec); v.Action != block || v.Rule != "spec.file.matchPaths[1]" {
		t.Errorf("record of /usr/bin/cat's entry attributed to %s %s, want the Block limited to /bin/cat", v.Action, v.Rule)
	}
}
