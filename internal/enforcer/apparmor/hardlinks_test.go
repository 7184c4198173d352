package apparmor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// A Block rule's file with another name gets a warning naming it; one with a single name, an
// Audit rule and a container's rule get none.
func TestHardLinked(t *testing.T) {
	dir := t.TempDir()
	secret, single, prog := filepath.Join(dir, "secret"), filepath.Join(dir, "single"), filepath.Join(dir, "prog")
	for _, p := range []string{secret, single, prog} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(secret, filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.Link(prog, filepath.Join(other, "prog2")); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("guard",
		file(policy.MatchPath, secret, block), file(policy.MatchPath, single, block),
		proc(policy.MatchPath, prog, block), file(policy.MatchPath, filepath.Join(dir, "alias"), policy.ActionAudit),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	ws := hardLinked(set)
	if len(ws) != 2 {
		t.Fatalf("warnings %q, want one for %s and one for %s", ws, secret, prog)
	}
	if m := ws[0].Message; ws[0].Policy != "guard" || ws[0].Rule != "spec.file.matchPaths[0]" ||
		!strings.Contains(m, secret+" has 2 hard links (other names: "+filepath.Join(dir, "alias")+")") {
		t.Errorf("file warning %+v", ws[0])
	}
	if m := ws[1].Message; ws[1].Rule != "spec.process.matchPaths[0]" || !strings.Contains(m, prog+" has 2 hard links (other names: none in its directory)") ||
		!strings.Contains(m, "find / -xdev -samefile "+prog) {
		t.Errorf("program warning %+v", ws[1])
	}
	ctr := *set
	ctr.Workload = web
	if ws := hardLinked(&ctr); len(ws) != 0 {
		t.Errorf("container set warned: %q", ws)
	}
}
