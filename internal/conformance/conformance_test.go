package conformance

import (
	"testing"
)

// TestDecide runs the shared table through rules.Decide: the reference every backend matches.
func TestDecide(t *testing.T) {
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("only %d cases loaded; the table is broken", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ps, post, err := c.Load()
			if err != nil {
				t.Fatal(err)
			}
			sets, err := c.Compile(ps, post)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Accesses) == 0 {
				t.Fatal("case has no accesses")
			}
			for _, a := range c.Accesses {
				i, err := c.WorkloadIndex(&a)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Want.Check(sets[i].Decide(a.Access())); err != nil {
					t.Errorf("%s: %v", a.Describe(), err)
				}
			}
		})
	}
}
