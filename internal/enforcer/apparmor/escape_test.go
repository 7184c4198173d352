package apparmor

import (
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

func TestEscapeLiteral(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/etc/shadow", "/etc/shadow"},
		{"/a b", "/a b"},
		{"/x/{a,b}", `/x/\{a\,b\}`},
		{"/x/[1]*?", `/x/\[1\]\*\?`},
		{`/q"\^`, `/q\"\\\^`},
		{"/@{HOME}", `/\@\{HOME\}`},
		{"/#!", `/\#\!`},
	} {
		if got := escapeLiteral(c.in); got != c.want {
			t.Errorf("escapeLiteral(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/etc/shadow{,/}", "/etc/shadow{,/}"},
		{"/a b", `"/a b"`},
		{`/a\,b`, `"/a\,b"`},
		{"ward-host///usr/bin/cat", "ward-host///usr/bin/cat"},
	} {
		if got := quote(c.in); got != c.want {
			t.Errorf("quote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestGlobAARE(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/etc/*.conf", "/etc/*.conf"},
		{"/var/**/x", "/var/**/x"},
		{"/var/***", "/var/**"},
		{"/a/?", "/a/?"},
		{"/a/[abc]", "/a/[abc]"},
		{"/a/[!abc]", "/a/[^/abc]"},
		{"/a/[^a-z]", "/a/[^/a-z]"},
		{"/a/[]x]", `/a/[\]x]`},
		{"/a/{x,y}", `/a/\{x\,y\}`},
		{"/a b/*", "/a b/*"},
	} {
		got, err := globAARE(c.in)
		if err != nil {
			t.Errorf("globAARE(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("globAARE(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"/a/[abc", "/a/\nb"} {
		if _, err := globAARE(bad); err == nil {
			t.Errorf("globAARE(%q) accepted", bad)
		}
	}
}

func TestProfileName(t *testing.T) {
	names := map[string]bool{}
	for _, c := range []struct {
		w    workload.Workload
		want string
	}{
		{workload.Host("n", nil), "ward-host"},
		{workload.Workload{Kind: workload.KindContainer, Namespace: "shop", Pod: "web-1", Container: "nginx"}, "ward-shop_web-1_nginx"},
		// Characters Kubernetes names cannot hold are replaced and the name gets a hash, so
		// these two do not collide.
		{workload.Workload{Kind: workload.KindContainer, Namespace: "a_b", Pod: "c", Container: "d"}, "ward-a_b_c_d-"},
		{workload.Workload{Kind: workload.KindContainer, Namespace: "a", Pod: "b_c", Container: "d"}, "ward-a_b_c_d-"},
		{workload.Workload{Kind: workload.KindContainer, Namespace: "container_namespace", ContainerID: "abc123"}, "ward-container_namespace_-_abc123-"},
	} {
		got := ProfileName(c.w)
		if len(got) < len(c.want) || got[:len(c.want)] != c.want {
			t.Errorf("ProfileName(%+v) = %q, want prefix %q", c.w, got, c.want)
		}
		if names[got] {
			t.Errorf("ProfileName(%+v) = %q collides", c.w, got)
		}
		names[got] = true
		for i := 0; i < len(got); i++ {
			ch := got[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
				t.Errorf("ProfileName %q holds %q", got, ch)
			}
		}
	}
}

// TestLineOrigins checks the line map that turns a parser error into a policy and rule.
func TestLineOrigins(t *testing.T) {
	set, err := rules.Compile([]policy.Policy{hostPolicy("p",
		file(policy.MatchPath, "/etc/hosts", allow),
		file(policy.MatchPath, "/etc/shadow", block, readOnly, ownerOnly),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	set.AppArmor = []rules.RawAppArmor{{PolicyName: "p", Text: "rlimit nofile <= 1024,"}}
	prof, _, err := Render(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]Origin{}
	for i, l := range splitLines(string(prof.Text)) {
		o, ok := prof.Origin(i + 1)
		if !ok {
			t.Fatalf("no origin for line %d", i+1)
		}
		found[l] = o
	}
	for line, want := range map[string]Origin{
		"  audit deny /etc/shadow{,/} wl,":        {Kind: OriginRule, Policy: "p", Rule: "spec.file.matchPaths[1]", RuleID: 1},
		"  audit deny other /etc/shadow{,/} rkm,": {Kind: OriginRule, Policy: "p", Rule: "spec.file.matchPaths[1]", RuleID: 1},
		"  rlimit nofile <= 1024,":                {Kind: OriginRaw, Policy: "p", Rule: "spec.apparmor", RuleID: -1},
		"  signal,":                               {Kind: OriginBaseline, RuleID: -1},
	} {
		got, ok := found[line]
		if !ok {
			t.Errorf("profile has no line %q:\n%s", line, prof.Text)
			continue
		}
		if got != want {
			t.Errorf("origin of %q = %+v, want %+v", line, got, want)
		}
	}
	if _, ok := prof.Origin(len(prof.Lines) + 1); ok {
		t.Error("origin past the end")
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func TestRenderErrors(t *testing.T) {
	if _, _, err := Render(nil, Options{}); err == nil {
		t.Error("Render(nil) succeeded")
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("p", file(policy.MatchPath, "/etc/shadow", block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	set.AppArmor = []rules.RawAppArmor{{PolicyName: "p", Text: "}\nprofile evil {"}}
	if _, _, err := Render(set, Options{}); err == nil {
		t.Error("raw text that reopens the profile was accepted")
	}
	set.AppArmor = nil
	if _, _, err := Render(set, Options{Name: "../x"}); err == nil {
		t.Error("a name with a slash was accepted")
	}
	if p, _, err := Render(set, Options{Name: "ward-shop_web_nginx"}); err != nil || p.Name != "ward-shop_web_nginx" || !strings.Contains(string(p.Text), "profile ward-shop_web_nginx ") {
		t.Errorf("Options.Name: %v, profile %q", err, p.Name)
	}
	if _, _, err := Render(set, Options{Attach: []string{"relative/path"}}); err == nil {
		t.Error("a relative attachment was accepted")
	}
}
