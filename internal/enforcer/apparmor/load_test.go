package apparmor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// fakeRunner records commands and answers with canned output.
type fakeRunner struct {
	mu     sync.Mutex // Apply loads profiles side by side
	calls  [][]string
	answer func(args []string) ([]byte, error)
	// seen holds the text of the file each -r call loaded, as the kernel would have read it.
	seen []string
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]string{name}, args...))
	if len(args) == 3 && args[0] == "-r" {
		b, err := os.ReadFile(args[2])
		if err != nil {
			return nil, err
		}
		f.seen = append(f.seen, string(b))
	}
	if f.answer != nil {
		return f.answer(args)
	}
	return nil, nil
}

func renderFor(t *testing.T, ps ...policy.Policy) Profile {
	t.Helper()
	set, err := rules.Compile(ps, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := Render(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadWritesAfterParserAccepts(t *testing.T) {
	dir := t.TempDir()
	r := &fakeRunner{}
	l := NewLoader(dir, r)
	p := renderFor(t, hostPolicy("p", file(policy.MatchPath, "/etc/shadow", block)))
	if err := l.Load(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "ward-host"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(p.Text) {
		t.Error("file on disk differs from the rendered profile")
	}
	if len(r.calls) != 1 || r.calls[0][0] != "apparmor_parser" || r.calls[0][1] != "-r" || r.calls[0][2] != "-W" {
		t.Fatalf("calls = %q, want one apparmor_parser -r -W", r.calls)
	}
	if tmp := r.calls[0][3]; tmp == filepath.Join(dir, "ward-host") || filepath.Base(tmp) != "ward-host" {
		// The parser names its cache entry after the file's base name.
		t.Errorf("parser ran on %s, want a temporary file named ward-host outside the final place", tmp)
	}
	if r.seen[0] != string(p.Text) {
		t.Error("parser saw different text")
	}
	assertOnlyFiles(t, dir, "ward-host")
}

func TestLoadRejectedKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	old := renderFor(t, hostPolicy("p", file(policy.MatchPath, "/etc/shadow", block)))
	l := NewLoader(dir, &fakeRunner{})
	if err := l.Load(context.Background(), old); err != nil {
		t.Fatal(err)
	}

	next := renderFor(t, hostPolicy("p", file(policy.MatchPath, "/etc/shadow", block), file(policy.MatchPath, "/etc/hosts", block)))
	line := 0
	for i, o := range next.Lines {
		if o.Rule == "spec.file.matchPaths[1]" {
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatal("no line for the second rule")
	}
	r := &fakeRunner{answer: func(args []string) ([]byte, error) {
		return []byte(fmt.Sprintf("AppArmor parser error for %s in profile %s at line %d: syntax error\n", args[2], args[2], line)), errors.New("exit status 1")
	}}
	l = NewLoader(dir, r)
	err := l.Load(context.Background(), next)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Load = %v, want a ParseError", err)
	}
	if pe.Line != line || pe.Origin.Policy != "p" || pe.Origin.Rule != "spec.file.matchPaths[1]" {
		t.Errorf("ParseError = %+v, want line %d of policy p, spec.file.matchPaths[1]", pe, line)
	}
	if !strings.Contains(err.Error(), "policy p, spec.file.matchPaths[1]") {
		t.Errorf("error %q does not name the rule", err)
	}
	if full := fmt.Sprintf("%+v", pe); !strings.Contains(full, "syntax error") {
		t.Errorf("%%+v = %q, want the parser output", full)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "ward-host"))
	if string(got) != string(old.Text) {
		t.Error("a rejected profile replaced the previous file")
	}
	assertOnlyFiles(t, dir, "ward-host")
}

// TestLoadRealParserErrorMapsToPolicy runs the real apparmor_parser (compiling only, as the host
// kernel has no AppArmor) on a profile whose raw spec.apparmor text is wrong, and checks that the
// error names that policy.
func TestLoadRealParserErrorMapsToPolicy(t *testing.T) {
	parser := parserPath(t)
	set, err := rules.Compile([]policy.Policy{hostPolicy("good", file(policy.MatchPath, "/etc/shadow", block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	set.AppArmor = []rules.RawAppArmor{{PolicyName: "typo", Text: "/etc/x rwz,"}}
	p, _, err := Render(set, Options{Host: fixtureHost})
	if err != nil {
		t.Fatal(err)
	}
	compileOnly := runnerFunc(func(ctx context.Context, _ string, args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, parser, "-Q", "-K", args[len(args)-1]).CombinedOutput()
	})
	err = NewLoader(t.TempDir(), compileOnly).Load(context.Background(), p)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Load = %v, want a ParseError", err)
	}
	t.Logf("%v", err)
	if pe.Origin.Policy != "typo" || pe.Origin.Kind != OriginRaw {
		t.Errorf("error %v maps to %+v, want the raw text of policy typo", err, pe.Origin)
	}
}

// TestSourceLimit runs the real apparmor_parser on host profiles with MaxChildren child
// profiles, which it compiles, and with one more, which it refuses: the error then names the
// rules behind the fromSource executables and the limit, not only the parser's message. Sources
// that the same rules are limited to share a child, so thirty of them in one rule fit.
func TestSourceLimit(t *testing.T) {
	parser := parserPath(t)
	compileOnly := runnerFunc(func(ctx context.Context, _ string, args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, parser, "-Q", "-K", args[len(args)-1]).CombinedOutput()
	})
	tool := func(i int) string { return fmt.Sprintf("/usr/bin/tool%02d", i) }
	// own gives each of n sources a rule of its own, from the source numbered first on.
	own := func(first, n int) []policy.Rule {
		var rs []policy.Rule
		for i := first; i < first+n; i++ {
			rs = append(rs, file(policy.MatchPath, "/etc/shadow", block, from(tool(i))))
		}
		return rs
	}
	// one limits one rule to n sources, from the source numbered first on.
	one := func(first, n int) policy.Rule {
		var opts []ruleOpt
		for i := first; i < first+n; i++ {
			opts = append(opts, from(tool(i)))
		}
		return file(policy.MatchPath, "/etc/gshadow", block, opts...)
	}
	load := func(rs []policy.Rule) (Profile, error) {
		set, err := rules.Compile([]policy.Policy{hostPolicy("sources", rs...)}, host, rules.Postures{})
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := Render(set, Options{Host: fixtureHost})
		if err != nil {
			t.Fatal(err)
		}
		return p, NewLoader(t.TempDir(), compileOnly).Load(context.Background(), p)
	}
	for _, c := range []struct {
		name              string
		rules             []policy.Rule
		sources, children int
	}{
		{"a child each", own(0, MaxChildren), MaxChildren, MaxChildren},
		{"thirty in one rule", []policy.Rule{one(0, 30)}, 30, 1},
		{"thirty in one rule beside children of their own", append(own(30, MaxChildren-1), one(0, 30)), 30 + MaxChildren - 1, MaxChildren},
	} {
		p, err := load(c.rules)
		if err != nil {
			t.Errorf("%s: %+v", c.name, err)
		}
		if len(p.Sources) != c.sources || p.Children != c.children {
			t.Errorf("%s: %d sources in %d children, want %d in %d", c.name, len(p.Sources), p.Children, c.sources, c.children)
		}
	}

	p, err := load(own(0, MaxChildren+1))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%d child profiles: Load = %v, want the parser's refusal", MaxChildren+1, err)
	}
	t.Logf("%v", err)
	msg := err.Error()
	for _, want := range []string{transitionsRefused, fmt.Sprintf("%d fromSource executables", MaxChildren+1),
		"/usr/bin/tool00 from policy sources, spec.file.matchPaths[0].fromSource[0]", "and 9 more",
		fmt.Sprintf("in %d child profiles", MaxChildren+1), fmt.Sprintf("at most %d child profiles", MaxChildren)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if first := p.Sources[0]; first.Source != tool(0) || first.Policy != "sources" || first.Rule != "spec.file.matchPaths[0].fromSource[0]" {
		t.Errorf("first source %+v", first)
	}
}

// TestCheckSources: ward validate's warning starts at the policy's source that makes child
// MaxChildren+1, counts a source named twice once, and sources the same rules are limited to
// as one.
func TestCheckSources(t *testing.T) {
	for _, n := range []int{MaxChildren, MaxChildren + 1} {
		rs := []policy.Rule{file(policy.MatchPath, "/etc/passwd", block, from("/usr/bin/tool00"))}
		for i := range n {
			rs = append(rs, file(policy.MatchPath, "/etc/shadow", block, from(fmt.Sprintf("/usr/bin/tool%02d", i))))
		}
		p := hostPolicy("sources", rs...)
		ws := CheckSources(&p)
		switch {
		case n == MaxChildren && len(ws) != 0:
			t.Errorf("%d executables: %v, want no warning", n, ws)
		case n > MaxChildren && (len(ws) != 1 || ws[0].Rule != fmt.Sprintf("spec.file.matchPaths[%d].fromSource[0]", n)):
			t.Errorf("%d executables: %v, want one warning on spec.file.matchPaths[%d].fromSource[0]", n, ws, n)
		}
	}
	var opts []ruleOpt
	for i := range 30 {
		opts = append(opts, from(fmt.Sprintf("/usr/bin/tool%02d", i)))
	}
	p := hostPolicy("shared", file(policy.MatchPath, "/etc/shadow", block, opts...))
	if ws := CheckSources(&p); len(ws) != 0 {
		t.Errorf("30 executables of one rule: %v, want no warning", ws)
	}
}

type runnerFunc func(ctx context.Context, name string, args ...string) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return f(ctx, name, args...)
}

func TestPruneRemovesOnlyStaleWardProfiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ward-host", HeaderPrefix+"ward-host\nprofile ward-host {}\n")
	write("ward-old_pod_c", HeaderPrefix+"ward-old_pod_c\nprofile ward-old_pod_c {}\n")
	write("usr.bin.man", "# Last Modified: ...\nprofile man {}\n")
	write("ward-lookalike", "# Managed by someone else\nprofile ward-lookalike {}\n")
	write("ward-renamed", HeaderPrefix+"ward-other\nprofile ward-other {}\n")
	if err := os.MkdirAll(filepath.Join(dir, ".ward-tmp-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(".ward-tmp-123/ward-host", HeaderPrefix+"ward-host\n")
	if err := os.Mkdir(filepath.Join(dir, "abstractions"), 0o755); err != nil {
		t.Fatal(err)
	}

	r := &fakeRunner{}
	removed, err := NewLoader(dir, r).Prune(context.Background(), []string{"ward-host"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"ward-old_pod_c"}) {
		t.Errorf("removed %q, want [ward-old_pod_c]", removed)
	}
	if len(r.calls) != 1 || !slices.Equal(r.calls[0], []string{"apparmor_parser", "-R", filepath.Join(dir, "ward-old_pod_c")}) {
		t.Errorf("calls = %q, want one apparmor_parser -R of the stale profile", r.calls)
	}
	assertOnlyFiles(t, dir, "abstractions", "usr.bin.man", "ward-host", "ward-lookalike", "ward-renamed")
}

func TestRemoveRefusesForeignProfile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ward-x"), []byte("profile ward-x {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{}
	err := NewLoader(dir, r).Remove(context.Background(), "ward-x")
	if !errors.Is(err, ErrNotManaged) {
		t.Errorf("Remove = %v, want ErrNotManaged", err)
	}
	if len(r.calls) != 0 {
		t.Errorf("ran %q on a foreign profile", r.calls)
	}
	if err := NewLoader(dir, r).Remove(context.Background(), "../etc/passwd"); err == nil {
		t.Error("Remove accepted a path as a name")
	}
}

func TestRemoveKeepsFileWhenUnloadFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ward-host")
	if err := os.WriteFile(path, []byte(HeaderPrefix+"ward-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{answer: func([]string) ([]byte, error) { return []byte("Permission denied\n"), errors.New("exit status 1") }}
	if err := NewLoader(dir, r).Remove(context.Background(), "ward-host"); err == nil {
		t.Fatal("Remove succeeded although unloading failed")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file gone after a failed unload: %v", err)
	}
}

func TestReadHost(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tunables"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tunables", "global"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := ReadHost(dir)
	if !h.has("tunables/global") || h.has("abi/3.0") {
		t.Errorf("ReadHost: tunables/global=%v abi/3.0=%v, want true false", h.has("tunables/global"), h.has("abi/3.0"))
	}
}

func assertOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}
