package bpflsm

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/conformance"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// render prints a translation in a stable, reviewable form.
func render(tr *Translation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload %d audited=%v\n", tr.Workload, tr.Audited)
	if tr.Codes != 0 {
		fmt.Fprintf(&b, "codes=%#08x\n", tr.Codes)
	}
	for o := uint8(0); o < numOps; o++ {
		f := uint8(tr.Flags >> (8 * o))
		if f == 0 && tr.DirDepths[o] == 0 && tr.ExactDepths[o] == 0 {
			continue
		}
		fmt.Fprintf(&b, "op %s flags=%#02x dirDepths=%#x exactDepths=%#x\n", opNames[o], f, tr.DirDepths[o], tr.ExactDepths[o])
	}
	writeFilter(&b, "names", &tr.Names)
	writeFilter(&b, "dirnames", &tr.DirNames)
	kinds := map[uint8]string{kindPath: "path", kindExecName: "execname", kindCode: "code", kindSrcAllow: "srcallow", kindInode: "inode", kindDirInode: "dirinode", kindName: "name"}
	for _, k := range tr.SortedKeys() {
		v := tr.Entries[k]
		fmt.Fprintf(&b, "%s %s hash=%#016x src=%#016x exact=%#x direct=%#x recursive=%#x\n",
			opNames[k.Op], kinds[k.Kind], k.Hash, k.Src, v.Exact, v.Direct, v.Recursive)
	}
	var gl []string
	for k, v := range tr.Globs {
		gl = append(gl, fmt.Sprintf("glob %s %d %q -> %d accept=%#x", opNames[k.Op], k.State, k.Byte, v.Next, v.Accept))
	}
	sort.Strings(gl)
	if len(gl) > 0 {
		fmt.Fprintf(&b, "%d glob transitions\n", len(gl))
	}
	for _, w := range tr.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// writeFilter writes a names filter's set bits, "all" for a full one, nothing for an empty one.
func writeFilter(b *strings.Builder, label string, f *NameFilter) {
	switch {
	case f.Full():
		fmt.Fprintf(b, "%s=all\n", label)
	case *f != NameFilter{}:
		var bits []string
		for i := range uint(nameBits) {
			if f[i/64]&(1<<(i%64)) != 0 {
				bits = append(bits, fmt.Sprint(i))
			}
		}
		fmt.Fprintf(b, "%s=%s\n", label, strings.Join(bits, ","))
	}
}

// TestGolden pins the map contents of every conformance case.
func TestGolden(t *testing.T) {
	cases, err := conformance.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		ps, post, err := c.Load()
		if err != nil {
			t.Fatal(err)
		}
		sets, err := caseSets(&c, ps, post)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, set := range sets {
			tr, err := Translate(set, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(sets) > 1 {
				got += fmt.Sprintf("== workload %s\n", set.Workload.ID())
			}
			got += render(tr)
		}
		path := filepath.Join("testdata", c.Name+".golden")
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s: translation changed:\n%s\nwant:\n%s", c.Name, got, want)
		}
	}
}

// caseSets compiles a conformance case's sets; a container gets a cgroup id of its own, as the
// VM driver gives it a cgroup.
func caseSets(c *conformance.Case, ps []policy.Policy, post rules.Postures) ([]*rules.Set, error) {
	sets, err := c.Compile(ps, post)
	if err != nil {
		return nil, err
	}
	for i, set := range sets {
		if set.Workload.Kind == workload.KindContainer {
			set.Workload.CgroupID = uint64(1000 + i)
		}
	}
	return sets, nil
}
