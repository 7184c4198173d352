package policy

import (
	"strings"
	"testing"
	"time"
)

// TestHostileInputs feeds inputs meant to exhaust a parser. Each must come back quickly with
// Errors. The first was found by FuzzParse: an anchor inside its own value under a field with a
// JSON unmarshaler recursed without end.
func TestHostileInputs(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for _, c := range "bcdefghi" {
		prev := string(c - 1)
		laughs += string(c) + ": &" + string(c) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
			", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
	}
	header := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: t\n"
	inputs := map[string]string{
		"anchor inside its own value": header + "  creationTimestamp: &a [*a]\nspec: {}\n",
		"billion laughs in a leaf":    header + "  creationTimestamp: &r\n    " + strings.ReplaceAll(strings.TrimSpace(laughs), "\n", "\n    ") + "\n    z: *i\nspec: {}\n",
		"billion laughs as rules": header + "spec:\n  x: &a [{path: /a}, {path: /a}, {path: /a}, {path: /a}, {path: /a}, {path: /a}, {path: /a}, {path: /a}]\n" +
			"  file:\n    matchPaths: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n",
		"deep nesting": header + "  creationTimestamp: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\nspec: {}\n",
		"many errors":  header + "spec:\n  file:\n    matchPaths:\n" + strings.Repeat("    - path: x\n", 1000),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			ps, _, err := Parse("h.yaml", []byte(in))
			if err == nil || ps != nil {
				t.Fatalf("got %d policies, err %v; want only an error", len(ps), err)
			}
			if errs := err.(Errors); len(errs) > maxErrors+1 {
				t.Errorf("%d errors, want at most %d", len(errs), maxErrors+1)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
