//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// BenchmarkOpenClose measures open()+close() of a 7-component path
// (/wt/bench/a/b/c/d/e/f.txt) by a process of the workload.
//
// These machines are shared and TCG is slow, so absolute times drift by tens
// of percent from one second to the next. To compare like with like, every
// variant lives in its own cgroup, all applied at once, and one helper
// process moves itself from cgroup to cgroup, timing 1,000 opens in each, in
// many short rounds; the ratio is taken per round against the round's own
// baseline, and the median of those ratios is reported. Variants:
//   - none: no programs attached (the programs are detached for that run);
//   - attached: programs attached, no rules for the workload (outer check);
//   - 1: one exact rule in the target's directory;
//   - 10000: 9,900 exact rules there and 100 directory rules beside the path;
//   - 10000-deep: as 10000, plus a directory rule at every depth of the path,
//     so every prefix is looked up (the per-inode cache still applies).
func BenchmarkOpenClose(b *testing.B) {
	vmguest.RequireGuest(b)
	if shared != nil {
		// The baseline is the kernel without any Ward program.
		if err := shared.detach(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := shared.attach(); err != nil {
				b.Error(err)
			}
		}()
	}
	be, err := New(Options{})
	if err != nil {
		b.Fatalf("%+v", err)
	}
	defer be.Close()
	target := "/wt/bench/a/b/c/d/e/f.txt"
	mkfile(b, target, 0)
	// A file with two names is never cached per inode: every open of it
	// resolves, hashes and looks up its path, as a first open does.
	uncached := "/wt/bench/a/b/c/d/e/g.txt"
	mkfile(b, uncached, 0)
	if err := os.Link(uncached, "/wt/bench/g-link"); err != nil {
		b.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("cp", self, "/wt/bench/helper").CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	deepDirs := []string{"/zz/", "/wt/zz/", "/wt/bench/zz/", "/wt/bench/a/zz/", "/wt/bench/a/b/zz/",
		"/wt/bench/a/b/c/zz/", "/wt/bench/a/b/c/d/zz/"}
	variants := []string{"attached", "1", "10000", "10000-deep"}
	cgdirs := map[string]string{}
	var sets []*rules.Set
	var startFD int
	for _, v := range variants {
		name := "ward-bench-" + v
		cg, fd := testCgroup(b, name)
		cgdirs[v] = "/sys/fs/cgroup/" + name
		if v == "attached" {
			startFD = fd
			continue
		}
		var sb strings.Builder
		sb.WriteString(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: bench}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
`)
		if v == "1" {
			sb.WriteString("    - path: /wt/bench/a/b/c/d/e/other.txt\n")
		} else {
			for i := 0; i < 9900; i++ {
				fmt.Fprintf(&sb, "    - path: /wt/bench/a/b/c/d/e/file%d\n", i)
			}
			sb.WriteString("    matchDirectories:\n")
			for i := 0; i < 100; i++ {
				fmt.Fprintf(&sb, "    - dir: /wt/bench/d%d/\n      recursive: true\n", i)
			}
			if v == "10000-deep" {
				for _, d := range deepDirs {
					fmt.Fprintf(&sb, "    - dir: %s\n      recursive: true\n", d)
				}
			}
		}
		sb.WriteString("  action: Block\n")
		ps, _, err := policy.Parse("bench.yaml", []byte(sb.String()))
		if err != nil {
			b.Fatal(err)
		}
		set, err := rules.Compile(ps, host, rules.DefaultPostures())
		if err != nil {
			b.Fatal(err)
		}
		set = inCgroup(set, cg)
		set.Workload.ContainerID = "bench-" + v
		sets = append(sets, set)
	}
	if err := be.Apply(context.Background(), sets); err != nil {
		b.Fatal(err)
	}
	defer be.Apply(context.Background(), nil)

	// run starts the helper in the baseline cgroup and returns ns/op per
	// cgroup visited.
	run := func(order []string, target string) []float64 {
		var dirs []string
		for _, v := range order {
			dirs = append(dirs, cgdirs[v])
		}
		cmd := exec.Command("/wt/bench/helper")
		cmd.Env = []string{helperEnv + "=cgloop:1000:" + target + ":" + strings.Join(dirs, ",")}
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: startFD}
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("cgloop: %v %s", err, out)
		}
		var ns []float64
		for _, f := range strings.Fields(string(out)) {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil {
				b.Fatalf("cgloop printed %q", out)
			}
			ns = append(ns, x)
		}
		return ns
	}
	for b.Loop() {
		for _, tc := range []struct{ name, path string }{{"cached", target}, {"uncached", uncached}} {
			measure(b, be, variants, tc.name, func(order []string) []float64 { return run(order, tc.path) })
		}
	}
}

func measure(b *testing.B, be *Backend, variants []string, label string, run func([]string) []float64) {
	ratios := map[string][]float64{}
	abs := map[string][]float64{}
	{
		for round := 0; round < 16; round++ {
			// Rules against the attached baseline, both orders alternating.
			order := []string{"attached", "1", "10000", "10000-deep", "attached"}
			if round%2 == 1 {
				order = []string{"attached", "10000-deep", "10000", "1", "attached"}
			}
			ns := run(order)
			base := (ns[0] + ns[len(ns)-1]) / 2
			for i, v := range order[1 : len(order)-1] {
				ratios[v] = append(ratios[v], ns[i+1]/base)
				abs[v] = append(abs[v], ns[i+1])
			}
			abs["attached"] = append(abs["attached"], base)
			// Attached against no programs, adjacent runs.
			if err := be.detach(); err != nil {
				b.Fatal(err)
			}
			none := run([]string{"attached", "attached"})
			if err := be.attach(); err != nil {
				b.Fatal(err)
			}
			att := run([]string{"attached", "attached"})
			ratios["attached"] = append(ratios["attached"], (att[0]+att[1])/(none[0]+none[1]))
			abs["none"] = append(abs["none"], (none[0]+none[1])/2)
		}
	}
	median := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	b.Logf("%s: open+close none       median %7.0f ns/op", label, median(abs["none"]))
	for _, v := range variants {
		r := median(ratios[v])
		if v != "attached" {
			// Against no programs: rules/attached times attached/none.
			r *= median(ratios["attached"])
		}
		s := append([]float64(nil), ratios[v]...)
		sort.Float64s(s)
		b.Logf("%s: open+close %-10s median %7.0f ns/op; ratio vs no programs %.3f (per-round ratios p25 %.3f p75 %.3f vs its baseline)",
			label, v, median(abs[v]), r, s[len(s)/4], s[3*len(s)/4])
		b.ReportMetric(r, "ratio-"+label+"-"+v)
	}
}
