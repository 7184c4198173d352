package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse holds Parse to its contract on any input: policies or Errors, never both, never a
// panic, and every error placed in the file it was given.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	json, _ := filepath.Glob("testdata/*.json")
	for _, name := range append(files, json...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range validationCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range normaliseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, _, err := Parse("f.yaml", data)
		if err == nil {
			for _, p := range ps {
				if len(p.Rules)+len(p.Presets)+len(p.Devices) == 0 && p.AppArmor == "" {
					t.Fatalf("policy %s without rules accepted", p.Key())
				}
				for _, r := range p.Rules {
					if r.Action == "" || r.Field == "" {
						t.Fatalf("rule without action or field: %+v", r)
					}
				}
			}
			return
		}
		if ps != nil {
			t.Fatalf("policies returned together with an error: %v", err)
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is %T (%v), want non-empty Errors", err, err)
		}
		for _, e := range errs {
			if e.File != "f.yaml" || e.Msg == "" {
				t.Fatalf("malformed error %+v", e)
			}
		}
		_ = err.Error()
	})
}
