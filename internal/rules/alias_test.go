package rules

import (
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// A rule named through an alias (a symlink on the way) decides for the aliased path as the rule
// itself, and a fromSource executable matches under either name; the original set is unchanged.
func TestWithAliases(t *testing.T) {
	p := policy.Policy{Kind: policy.KindHostPolicy, Name: "p", Rules: []policy.Rule{
		{Field: "f0", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/bin/x", Action: policy.ActionBlock},
		{Field: "f1", Operation: policy.OpFile, Match: policy.MatchDirectory, Value: "/bin/d/", Action: policy.ActionBlock},
		{Field: "f2", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/secret", Action: policy.ActionBlock,
			FromSource: []policy.FromSource{{Path: "/bin/cat"}}},
		{Field: "f3", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/etc/plain", Action: policy.ActionBlock},
	}}
	set, err := Compile([]policy.Policy{p}, workload.Host("", nil), Postures{})
	if err != nil {
		t.Fatal(err)
	}
	aliases := map[string]string{"/bin/x": "/usr/bin/x", "/bin/d/": "/usr/bin/d/", "/bin/cat": "/usr/bin/cat"}
	got, err := set.WithAliases(func(p string) (string, bool) { a, ok := aliases[p]; return a, ok })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a     Access
		field string
	}{
		{Access{Op: policy.OpFile, Path: "/usr/bin/x"}, "f0"},
		{Access{Op: policy.OpFile, Path: "/bin/x"}, "f0"},
		{Access{Op: policy.OpFile, Path: "/usr/bin/d/y"}, "f1"},
		{Access{Op: policy.OpFile, Path: "/secret", Source: "/usr/bin/cat"}, "f2"},
		{Access{Op: policy.OpFile, Path: "/secret", Source: "/bin/cat"}, "f2"},
		{Access{Op: policy.OpFile, Path: "/etc/plain"}, "f3"},
	} {
		if v := got.Decide(c.a); v.Action != policy.ActionBlock || v.Rule != c.field {
			t.Errorf("%+v: %s by %q, want Block by %s", c.a, v.Action, v.Rule, c.field)
		}
	}
	if v := set.Decide(Access{Op: policy.OpFile, Path: "/usr/bin/x"}); v.Action == policy.ActionBlock {
		t.Errorf("the original set changed: %+v", v)
	}
	if len(set.Rules[2].FromSource) != 1 || len(got.Rules) != 6 {
		t.Errorf("original fromSource %v, aliased rules %d; want 1 and 4+2 twins", set.Rules[2].FromSource, len(got.Rules))
	}
	// Unalias names the access as the original rules do, so that they decide it alike.
	for _, c := range []struct{ in, want Access }{
		{Access{Op: policy.OpFile, Path: "/usr/bin/x"}, Access{Op: policy.OpFile, Path: "/bin/x"}},
		{Access{Op: policy.OpFile, Path: "/usr/bin/d/y/z"}, Access{Op: policy.OpFile, Path: "/bin/d/y/z"}},
		{Access{Op: policy.OpFile, Path: "/secret", Source: "/usr/bin/cat"}, Access{Op: policy.OpFile, Path: "/secret", Source: "/bin/cat"}},
		{Access{Op: policy.OpFile, Path: "/etc/plain", Source: "/usr/bin/env"}, Access{Op: policy.OpFile, Path: "/etc/plain", Source: "/usr/bin/env"}},
	} {
		in, want := c.in, c.want
		if out := got.Unalias(in); out.Path != want.Path || out.Source != want.Source {
			t.Errorf("Unalias(%+v) = %+v, want %+v", in, out, want)
		} else if v, w := got.Decide(in), set.Decide(want); v.Rule != w.Rule || v.Action != w.Action {
			t.Errorf("%+v: the aliased set decides %s %s, the original %s %s", in, v.Action, v.Rule, w.Action, w.Rule)
		}
	}
	// A rule of its own on the alias that decides there keeps the access as reported.
	own := p
	own.Rules = append(append([]policy.Rule(nil), p.Rules...),
		policy.Rule{Field: "f4", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/usr/bin/x", Action: policy.ActionBlock})
	own.Rules[0].Action = policy.ActionAudit
	set2, err := Compile([]policy.Policy{own}, workload.Host("", nil), Postures{})
	if err != nil {
		t.Fatal(err)
	}
	got2, err := set2.WithAliases(func(p string) (string, bool) { a, ok := aliases[p]; return a, ok })
	if err != nil {
		t.Fatal(err)
	}
	in := Access{Op: policy.OpFile, Path: "/usr/bin/x", Write: true}
	if out := got2.Unalias(in); out.Path != in.Path || got2.Decide(in).Rule != "f4" {
		t.Errorf("Unalias changed who decides: %+v -> %+v", in, out)
	}
	if same, _ := set.WithAliases(func(string) (string, bool) { return "", false }); same != set {
		t.Error("no alias: want the set itself")
	}
}
