package vmbench

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/workload"
)

// TestVariantsCompile catches on the host what would fail a bench-vm run minutes into its VM:
// every variant's policy parses and compiles to the rules it is named for.
func TestVariantsCompile(t *testing.T) {
	files := Iterations(9900) + Iterations(100)
	want := map[string]int{"caponly": 1, "fileonly": 1, "file1": 1, "file1dir": 2, "file10k": files, "file10kvaried": files, "file10kmnt": files + 1, "file10kdeep": files + 8,
		"proc1": 1, "proc10k": Iterations(10000), "net100": Iterations(100), "cap1": 1}
	names := map[string]bool{}
	if files != 10000 && os.Getenv("WARD_TEST_BENCH_SCALE") == "" {
		t.Errorf("%d file rules at scale 1, want 10,000", files)
	}
	for _, v := range Variants() {
		names[v.Name] = true
		set, err := v.Set(workload.Workload{Kind: workload.KindContainer, ContainerID: "bench-" + v.Name})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if len(set.Rules) != want[v.Name] {
			t.Errorf("%s: %d rules, want %d", v.Name, len(set.Rules), want[v.Name])
		}
	}
	for _, g := range Groups() {
		for _, v := range g.Variants {
			if !names[v] {
				t.Errorf("group %s names variant %s, which does not exist", g.Key, v)
			}
		}
	}
}

// TestVariedNames: the varied names differ in what BPF-LSM's names filter keys a name by (its
// length, first and last byte) as a file system's do, or the variant would measure the
// similar names' case again.
// TestRulePaths: Setup makes the rules' files and programs, never the accessed files nor the
// network rules' sources.
func TestRulePaths(t *testing.T) {
	paths, err := RulePaths()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range paths {
		got[p] = true
	}
	for _, p := range []string{"/wt/bench/other.txt", "/wt/bench/a/b/c/d/e/other.txt", "/wt/bench/a/b/c/d/e/file0",
		"/wt/bench/a/b/c/d/e/" + VariedNames(1)[0], "/wt/bench/exec/other", "/wt/bench/exec/prog0"} {
		if !got[p] {
			t.Errorf("%s is not among the rule paths", p)
		}
	}
	for _, p := range []string{Cached, Uncached, ExecBin, "/wt/bench/src0"} {
		if got[p] {
			t.Errorf("%s is among the rule paths", p)
		}
	}
	if len(paths) < 2*Iterations(9900) {
		t.Errorf("%d rule paths, want at least %d", len(paths), 2*Iterations(9900))
	}
}

func TestVariedNames(t *testing.T) {
	names := VariedNames(9900)
	keys := map[[3]int]bool{}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] || strings.Contains(n, "/") {
			t.Fatalf("name %q repeated or not a file name", n)
		}
		seen[n] = true
		keys[[3]int{len(n), int(n[0]), int(n[len(n)-1])}] = true
	}
	if len(keys) < 3000 {
		t.Errorf("%d distinct (length, first, last byte) keys among %d names, want at least 3,000", len(keys), len(names))
	}
	t.Logf("%d distinct keys among %d names", len(keys), len(names))
}

func TestJobRoundTrip(t *testing.T) {
	j := Job{Access: Open, Arg: "/a b", N: 3, Rounds: 2, Cgroups: []string{"/sys/fs/cgroup/x", ""}}
	got, err := Decode(j.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Access != j.Access || got.Arg != j.Arg || got.N != j.N || got.Rounds != j.Rounds || len(got.Cgroups) != 2 || got.Cgroups[0] != j.Cgroups[0] || got.Cgroups[1] != "" {
		t.Errorf("round trip: %+v, want %+v", got, j)
	}
	if _, err := Decode("open\x1f0\x1f1\x1f\x1f"); err == nil {
		t.Error("zero iterations accepted")
	}
}

// TestRunPaused: the figures of the measuring steps come back in order, and the callback runs
// while the helper waits at its Pause step (the helper here is a shell standing in for it).
func TestRunPaused(t *testing.T) {
	job := Job{Access: Open, Cgroups: []string{"a", Pause, "b", "c"}}
	marker := t.TempDir() + "/attached"
	cmd := exec.Command("sh", "-c", `echo "5 3 4"; echo `+Pause+`; read x; test -e `+marker+` && echo "7 8" && echo 9`)
	ns, err := RunPaused(cmd, job, func() error { return os.WriteFile(marker, nil, 0o644) })
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 3 || ns[0] != 3 || ns[1] != 7 || ns[2] != 9 {
		t.Errorf("figures %v, want [3 7 9]", ns)
	}
	cmd = exec.Command("sh", "-c", `echo 1; echo `+Pause+`; read x || exit 1; echo 2; echo 3`)
	if _, err := RunPaused(cmd, job, func() error { return errors.New("attach failed") }); err == nil || !strings.Contains(err.Error(), "attach failed") {
		t.Errorf("a failed callback gave %v", err)
	}
}
