package glob

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/etc/*.conf", "/etc/a.conf", true},
		{"/etc/*.conf", "/etc/sub/a.conf", false},
		{"/etc/**.conf", "/etc/sub/a.conf", true},
		{"/etc/**", "/etc/a/b/c", true},
		{"/etc/**", "/etc", false},
		{"/**/shadow", "/etc/shadow", true},
		{"/**/shadow", "/etc/x/shadow", true},
		{"/**/shadow", "/etc/shadowx", false},
		{"/tmp/?", "/tmp/a", true},
		{"/tmp/?", "/tmp/ab", false},
		{"/tmp/?", "/tmp//", false},
		{"/dev/sd[a-c]", "/dev/sdb", true},
		{"/dev/sd[a-c]", "/dev/sdd", false},
		{"/dev/sd[!a-c]", "/dev/sdd", true},
		{"/dev/sd[!a-c]", "/dev/sda", false},
		{"/dev/sd[^a]", "/dev/sd/", false},
		{"/a.b", "/aXb", false}, // regexp meta characters are literal
		{"/a+(b)", "/a+(b)", true},
		{"/x[]]", "/x]", true},
	}
	for _, c := range cases {
		g, err := Compile(c.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.pattern, err)
		}
		if got := g.Match(c.path); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, p := range []string{"/a[", "/a[b", "/a[]"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", p)
		}
	}
}

func TestLiteralDir(t *testing.T) {
	cases := map[string]string{
		"/etc/*.conf":      "/etc/",
		"/**/shadow":       "/",
		"/home/*/secret":   "/home/",
		"/var/log/a?.log":  "/var/log/",
		"/plain/path":      "/plain/",
		"relative*":        "",
		"/a/b/c[0-9]/d/**": "/a/b/",
	}
	for p, want := range cases {
		if got := LiteralDir(p); got != want {
			t.Errorf("LiteralDir(%q) = %q, want %q", p, got, want)
		}
	}
}
