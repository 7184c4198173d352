package policy

import "testing"

func TestParsePosture(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Action
		ok   bool
	}{
		{"audit", ActionAudit, true}, {" Block ", ActionBlock, true}, {"BLOCK", ActionBlock, true},
		{"allow", "", false}, {"", "", false}, {"blocked", "", false},
	} {
		got, err := ParsePosture(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("ParsePosture(%q) = %q, %v; want %q, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
	if _, err := ParsePosture("allow"); err == nil || err.Error() != `"allow" is not a posture: allowed are audit, block` {
		t.Errorf("error: %v", err)
	}
}
