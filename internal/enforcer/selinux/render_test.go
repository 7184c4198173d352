//go:build !vm

// Host tests; the VM suite (selinux_vm_test.go, tags vm and selinux) runs in the guest.

package selinux

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

type renderCase struct {
	name     string
	postures rules.Postures
	policies []policy.Policy
	// warnings must each appear in one warning (substring), and their number must match.
	warnings []string
	// types maps a path to the type TypeFor must give it ("" keeps its label).
	types map[string]string
}

func renderCases() []renderCase {
	return []renderCase{
		{name: "empty"},
		{name: "file_block", policies: []policy.Policy{hostPolicy("files",
			file(policy.MatchPath, "/etc/shadow", block),
			file(policy.MatchPath, "/etc/hosts", block, readOnly),
			file(policy.MatchDirectory, "/etc/ssl/", block),
			file(policy.MatchDirectory, "/var/secret/", block, recursive),
		)}, warnings: []string{"files created later in a subdirectory of /etc/ssl/"},
			types: map[string]string{
				"/etc/shadow": "ward_bbb_t", "/etc/hosts": "ward_aba_t", "/etc/passwd": "",
				"/etc/ssl": "ward_bbb_t", "/etc/ssl/cert.pem": "ward_bbb_t", "/etc/ssl/certs/a.pem": "",
				"/var/secret/a/b/c": "ward_bbb_t",
			}},
		{name: "file_audit", policies: []policy.Policy{hostPolicy("files",
			file(policy.MatchPath, "/etc/passwd", audit),
			file(policy.MatchPath, "/etc/group", audit, readOnly),
			file(policy.MatchDirectory, "/home/", audit, recursive),
		)}, types: map[string]string{"/etc/passwd": "ward_uua_t", "/etc/group": "ward_aua_t", "/home/u/x": "ward_uua_t"}},
		{name: "file_allow_posture_block", postures: blockAll, policies: []policy.Policy{hostPolicy("allowlist",
			file(policy.MatchDirectory, "/srv/data/", allow, recursive),
			file(policy.MatchDirectory, "/srv/conf/", allow, recursive, readOnly),
			file(policy.MatchPath, "/srv/conf/secret", block),
		)}, warnings: []string{"matchDirectories[0]: the allow-list is not enforced", "matchDirectories[1]: the allow-list is not enforced"},
			// Exec is a process access: the process category is no allow-list, so it stays allowed.
			types: map[string]string{"/srv/data/x": "", "/srv/conf/a": "ward_aba_t", "/srv/conf/secret": "ward_bbb_t"}},
		{name: "process_block", policies: []policy.Policy{hostPolicy("procs",
			proc(policy.MatchPath, "/usr/bin/wget", block),
			proc(policy.MatchDirectory, "/opt/tools/", block, recursive),
			proc(policy.MatchPath, "/usr/bin/curl", audit),
		)}, types: map[string]string{"/usr/bin/wget": "ward_aab_t", "/opt/tools/x/y": "ward_aab_t", "/usr/bin/curl": "ward_aau_t"}},
		{name: "from_source", policies: []policy.Policy{hostPolicy("sources",
			file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/cat")),
			file(policy.MatchDirectory, "/etc/ssl/", block, recursive),
			proc(policy.MatchPath, "/usr/bin/nc", block, from("/usr/bin/bash")),
		)}},
		{name: "from_source_allowlist", postures: blockAll, policies: []policy.Policy{hostPolicy("sources",
			file(policy.MatchDirectory, "/srv/app/", allow, recursive, from("/srv/app/bin/server")),
			proc(policy.MatchPath, "/usr/bin/id", allow, from("/srv/app/bin/server")),
			// Allow rules limited by fromSource make both categories allow-lists for every
			// executable (rules.Set.AllowList).
		)}, warnings: []string{"file.matchDirectories[0]: the allow-list is not enforced", "process.matchPaths[0]: the allow-list is not enforced"}},
		// Issue 13: an Allow rule from reader makes files an allow-list for every program, but
		// running reader is a process access, which no rule limits: its entry type must let
		// everyone run it (and so read it, which Render warns about).
		{name: "from_source_file_allowlist", postures: blockAll, policies: []policy.Policy{hostPolicy("reader-data",
			file(policy.MatchDirectory, "/srv/data/", allow, recursive, from("/srv/bin/reader")),
		)}, warnings: []string{"file.matchDirectories[0]: the allow-list is not enforced",
			"SELinux checks read on the program an exec runs: /srv/bin/reader may run"}},
		{name: "unsupported", policies: []policy.Policy{hostPolicy("odd",
			file(policy.MatchPath, "/etc/motd", block, ownerOnly),
			file(policy.MatchPattern, "/etc/*.key", block),
			file(policy.MatchPath, "/etc/issue", block, pts(false)),
			proc(policy.MatchExecName, "nc", block),
			proc(policy.MatchPath, "/usr/bin/find", block, args("-delete")),
			rule(policy.OpNetwork, policy.MatchProtocol, "udp", block),
			rule(policy.OpCapabilities, policy.MatchCapability, "net_raw", block),
			file(policy.MatchDirectory, "/", block, recursive),
		)}, warnings: []string{"matchPaths[0].ownerOnly: ownerOnly is not enforced", "matchPatterns[0]: the pattern is not enforced",
			"matchPaths[1].pts: pts is not enforced", "process.matchPaths[0]: the execname is not enforced",
			"process.matchPaths[1].allowedArgs: allowedArgs is not enforced", "the network rule is not enforced",
			"the capability rule is not enforced", "a rule on / would relabel"},
			// The rule on / is not labelled, but Decide still sees it for every path Ward labels.
			types: map[string]string{"/etc/motd": "ward_bbb_t", "/etc/issue": "ward_bbb_t", "/etc/a.key": "ward_bbb_t", "/usr/bin/find": "ward_bbb_t"}},
	}
}

func compile(t *testing.T, c renderCase) (*Module, []enforcer.Warning) {
	t.Helper()
	set, err := rules.Compile(c.policies, host, c.postures)
	if err != nil {
		t.Fatal(err)
	}
	m, warns, err := Render(set, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	return m, warns
}

// TestRenderGolden compares each module with testdata/<name>.golden (rewrite with -update),
// checks warnings and the types of chosen paths, and compiles every module with secilc against
// the installed reference policy.
func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // secilc takes seconds per module; use every core
			m, warns := compile(t, c)
			golden := filepath.Join("testdata", c.name+".golden")
			var out bytes.Buffer
			out.Write(m.Text)
			fmt.Fprintf(&out, "\n; targets:\n")
			for _, tg := range m.Targets {
				fmt.Fprintf(&out, ";   %s children=%v tree=%v\n", tg.Path, tg.Children, tg.Tree)
			}
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("module differs from %s (run with -update after checking):\n%s", golden, out.String())
			}
			if len(warns) != len(c.warnings) {
				t.Errorf("got %d warnings, want %d: %v", len(warns), len(c.warnings), warns)
			}
			for _, w := range c.warnings {
				if !slices.ContainsFunc(warns, func(x enforcer.Warning) bool { return strings.Contains(x.String(), w) }) {
					t.Errorf("no warning contains %q: %v", w, warns)
				}
			}
			for p, want := range c.types {
				got, ok := m.TypeFor(p)
				if !ok || got != want {
					t.Errorf("TypeFor(%s) = %q, %v; want %q", p, got, ok, want)
				}
			}
			checkModule(t, m.Text)
		})
	}
}

// TestRenderStable renders the same set twice: the module must be byte-identical, or the
// loader would reinstall it (a full policy rebuild) on every reconcile.
func TestRenderStable(t *testing.T) {
	for _, c := range renderCases() {
		a, _ := compile(t, c)
		b, _ := compile(t, c)
		if !bytes.Equal(a.Text, b.Text) {
			t.Errorf("%s: two renders differ", c.name)
		}
	}
}

// TestStaticModule checks that a policy without fromSource leaves the module as it is for no
// policy at all: such changes only relabel files.
func TestStaticModule(t *testing.T) {
	empty, _ := compile(t, renderCase{})
	for _, c := range renderCases() {
		m, _ := compile(t, c)
		if len(m.Sources) == 0 && !bytes.Equal(m.Text, empty.Text) {
			t.Errorf("%s: module differs from the empty one although no rule has fromSource", c.name)
		}
	}
}

func TestRenderRejectsContainers(t *testing.T) {
	set, err := rules.Compile(nil, workload.Workload{Kind: workload.KindContainer, ContainerID: "abc"}, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Render(set, testOpts); err == nil || !strings.Contains(err.Error(), "host policies only") {
		t.Fatalf("Render(container) = %v, want an error about host policies", err)
	}
}

// TestFromSourceTypes checks the types of a fromSource set: the source gets its entry type, the
// protected file a type that differs per source, and unrelated paths keep their labels.
func TestFromSourceTypes(t *testing.T) {
	c := renderCases()[5]
	m, _ := compile(t, c)
	if want := []string{"/usr/bin/bash", "/usr/bin/cat"}; !slices.Equal(m.Sources, want) {
		t.Fatalf("sources %v, want %v", m.Sources, want)
	}
	for _, src := range m.Sources {
		typ, ok := m.TypeFor(src)
		if !ok || typ != entryOf(src) {
			t.Errorf("TypeFor(%s) = %q, %v; want its entry type %s", src, typ, ok, entryOf(src))
		}
	}
	shadow, ok := m.TypeFor("/etc/shadow")
	if !ok || !strings.HasPrefix(shadow, "ward_f_") {
		t.Errorf("TypeFor(/etc/shadow) = %q, %v; want a source-dependent type", shadow, ok)
	}
	if !strings.Contains(string(m.Text), "(typetransition domain "+entryOf("/usr/bin/cat")+" process "+domainOf("/usr/bin/cat")+")") {
		t.Errorf("no transition into cat's domain:\n%s", m.Text)
	}
	if typ, ok := m.TypeFor("/etc/ssl/x"); !ok || typ != "ward_bbb_t" {
		t.Errorf("TypeFor(/etc/ssl/x) = %q, %v; want ward_bbb_t", typ, ok)
	}
}

// TestFromSourceRunsUnderFileAllowList: under a file allow-list made by an Allow rule with
// fromSource, the posture blocks every other program's reads of the fromSource program, yet
// Decide lets them run it (a process access, which no rule limits). SELinux checks read on an
// exec, so the entry type grants the run (with its read) to every domain instead of blocking
// both; without the process allow-list nothing else may block it.
func TestFromSourceRunsUnderFileAllowList(t *testing.T) {
	var c renderCase
	for _, rc := range renderCases() {
		if rc.name == "from_source_file_allowlist" {
			c = rc
		}
	}
	m, _ := compile(t, c)
	x := entryOf("/srv/bin/reader")
	if typ, ok := m.TypeFor("/srv/bin/reader"); !ok || typ != x {
		t.Fatalf("TypeFor(/srv/bin/reader) = %q, %v; want %s", typ, ok, x)
	}
	for _, subject := range []string{"ward_others", domainOf("/srv/bin/reader")} {
		want := "(allow " + subject + " " + x + " (file (" + fileExec + ")))"
		if !strings.Contains(string(m.Text), want) {
			t.Errorf("module lacks %s:\n%s", want, m.Text)
		}
	}
	// A rule's Block of reading the program still blocks running it: only the posture yields.
	c.policies = append(c.policies, hostPolicy("no-read", file(policy.MatchPath, "/srv/bin/reader", block)))
	m, warns := compile(t, c)
	if strings.Contains(string(m.Text), "(allow ward_others "+x+" (file (open") {
		t.Errorf("a Block rule on reading /srv/bin/reader still lets others run it:\n%s", m.Text)
	}
	for _, w := range warns {
		if strings.Contains(w.Message, "may run as the process rules say") {
			t.Errorf("unexpected warning %s", w)
		}
	}
}
