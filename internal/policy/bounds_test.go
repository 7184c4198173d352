package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// schemaBound is one limit a field carries, as the validator states it and as an OpenAPI schema
// states it (minimum/maximum for integers, maxLength for strings, maxItems for lists).
type schemaBound struct {
	typ                string
	min, max           *int64
	maxLength, maxItem *int64
}

func (b schemaBound) String() string {
	f := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s min=%s max=%s maxLength=%s maxItems=%s", b.typ, f(b.min), f(b.max), f(b.maxLength), f(b.maxItem))
}

func i64(v int) *int64 { x := int64(v); return &x }

// validatorBounds are the validator's limits by field name and type, from its constants. A name
// and type not listed must carry no limit in the CRDs.
var validatorBounds = map[string]schemaBound{
	"severity integer":  {typ: "integer", min: i64(minSeverity), max: i64(maxSeverity)},
	"subClass integer":  {typ: "integer", min: i64(minDeviceNumber), max: i64(maxDeviceNumber)},
	"protocol integer":  {typ: "integer", min: i64(minDeviceNumber), max: i64(maxDeviceNumber)},
	"level integer":     {typ: "integer", min: i64(minDeviceNumber), max: i64(maxDeviceNumber)},
	"path string":       {typ: "string", maxLength: i64(maxPathLen)},
	"allowedArgs array": {typ: "array", maxItem: i64(maxAllowedArgs)},
}

// TestBoundsAgreeWithCRDs walks the schema of every CRD in deploy/crds (generated from api/v1 by
// make generate-crds) beside the validator's limits: every occurrence of a bounded field must
// carry exactly the validator's bound, no other field may carry one, and every bound the
// validator has must appear in the CRDs. The validator and the API server then refuse the same
// out-of-range values.
func TestBoundsAgreeWithCRDs(t *testing.T) {
	files, err := filepath.Glob("../../deploy/crds/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("CRDs not found: %v %v", files, err)
	}
	seen := map[string]int{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd map[string]any
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		versions, _ := dig(crd, "spec", "versions").([]any)
		if len(versions) == 0 {
			t.Fatalf("%s: no versions", file)
		}
		for _, v := range versions {
			schema, _ := dig(v, "schema", "openAPIV3Schema").(map[string]any)
			walkSchema(schema, filepath.Base(file), func(path, name string, s map[string]any) {
				typ, _ := s["type"].(string)
				got := schemaBound{typ: typ, min: num(s["minimum"]), max: num(s["maximum"]),
					maxLength: num(s["maxLength"]), maxItem: num(s["maxItems"])}
				want, listed := validatorBounds[name+" "+typ]
				if !listed {
					if got.min != nil || got.max != nil || got.maxLength != nil || got.maxItem != nil {
						t.Errorf("%s: the CRD bounds it (%s), the validator does not", path, got)
					}
					return
				}
				if strings.Contains(path, ".metadata") {
					return
				}
				seen[name+" "+typ]++
				if got.String() != want.String() {
					t.Errorf("%s: CRD says %s, validator says %s", path, got, want)
				}
			})
		}
	}
	for _, k := range slices.Sorted(mapsKeys(validatorBounds)) {
		if seen[k] == 0 {
			t.Errorf("validator bounds %q, which no CRD field carries", k)
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func num(v any) *int64 {
	switch x := v.(type) {
	case float64:
		return i64(int(x))
	case int64:
		return &x
	case int:
		return i64(x)
	}
	return nil
}

// walkSchema calls fn for every named property (and list item) below s.
func walkSchema(s map[string]any, path string, fn func(path, name string, s map[string]any)) {
	if s == nil {
		return
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for name, p := range props {
			ps, _ := p.(map[string]any)
			fn(path+"."+name, name, ps)
			walkSchema(ps, path+"."+name, fn)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		walkSchema(items, path+"[]", fn)
	}
}
