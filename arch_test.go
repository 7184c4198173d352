package ward_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces the layering of docs/design (design.md "Rooms"): the pure packages
// stay pure and no backend reaches into another. A new import that breaks a rule fails here
// rather than in review.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/wardsec/ward/"
	forbidden := map[string][]string{
		// Pure packages: no kernel, no Kubernetes client, no processes, no network.
		mod + "internal/policy":   {"github.com/cilium/ebpf", "k8s.io/client-go", "os/exec", "net", mod + "internal/rules", mod + "internal/enforcer", mod + "internal/events", mod + "internal/daemon"},
		mod + "internal/rules":    {"github.com/cilium/ebpf", "k8s.io/client-go", "os/exec", "net", "os", mod + "internal/enforcer", mod + "internal/events", mod + "internal/daemon"},
		mod + "internal/glob":     {"os", "os/exec"},
		mod + "internal/workload": {mod + "internal/rules", mod + "internal/enforcer", mod + "internal/daemon"},
		mod + "api/v1":            {mod},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		for pkg, bans := range forbidden {
			if p.ImportPath != pkg && !strings.HasPrefix(p.ImportPath, pkg+"/") {
				continue
			}
			for _, imp := range p.Imports {
				for _, ban := range bans {
					if imp == ban || strings.HasPrefix(imp, ban+"/") || (strings.HasSuffix(ban, "/") && strings.HasPrefix(imp, ban)) {
						t.Errorf("%s imports %s: not allowed (see design.md)", p.ImportPath, imp)
						break
					}
				}
			}
		}
		// A backend never imports another backend.
		const enf = mod + "internal/enforcer/"
		if strings.HasPrefix(p.ImportPath, enf) {
			own := strings.SplitN(strings.TrimPrefix(p.ImportPath, enf), "/", 2)[0]
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, enf) {
					other := strings.SplitN(strings.TrimPrefix(imp, enf), "/", 2)[0]
					if other != own {
						t.Errorf("%s imports backend %s: backends must not depend on each other", p.ImportPath, imp)
					}
				}
			}
		}
	}
}
