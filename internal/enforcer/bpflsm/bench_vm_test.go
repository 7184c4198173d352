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

// BenchmarkOpenClose measures open()+close() of a 7-component path by a
// process of the workload, in interleaved rounds: no programs attached,
// programs attached with no rules for the workload, 1 rule, 10,000 rules.
// It reports each variant's median ns/op and its ratio to the no-program
// baseline of the same run (reference/machines.md: TCG is noisy, absolute
// numbers are ~30x bare metal).
func BenchmarkOpenClose(b *testing.B) {
	vmguest.RequireGuest(b)
	cg, cgfd := testCgroup(b, "ward-bench")
	be, err := New(Options{})
	if err != nil {
		b.Fatalf("%+v", err)
	}
	defer be.Close()
	target := "/wt/bench/a/b/c/d/e/f.txt"
	mkfile(b, target, 0)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("cp", self, "/wt/bench/helper").CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	// The rules sit where the target's lookups go, so that they cost what
	// they can: "1" is one exact path in the target's directory; "10000" is
	// 9,900 exact paths there and 100 directories beside /wt/bench/a/;
	// "10000-deep" adds a directory rule at every depth of the target's
	// path, so every prefix is looked up.
	deepDirs := []string{"/zz/", "/wt/zz/", "/wt/bench/zz/", "/wt/bench/a/zz/", "/wt/bench/a/b/zz/",
		"/wt/bench/a/b/c/zz/", "/wt/bench/a/b/c/d/zz/"}
	sets := map[string]*rules.Set{}
	for _, v := range []string{"1", "10000", "10000-deep"} {
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
		sets[v] = inCgroup(set, cg)
	}
	run := func() float64 {
		cmd := exec.Command("/wt/bench/helper")
		cmd.Env = []string{helperEnv + "=loop:10000:" + target}
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("loop: %v %s", err, out)
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			b.Fatalf("loop printed %q", out)
		}
		return ns
	}
	variants := []string{"none", "attached", "1", "10000", "10000-deep"}
	res := map[string][]float64{}
	for b.Loop() {
		for round := 0; round < 7; round++ {
			for _, v := range variants {
				ctx := context.Background()
				switch v {
				case "none":
					if err := be.detach(); err != nil {
						b.Fatal(err)
					}
				case "attached":
					if err := be.Apply(ctx, nil); err != nil {
						b.Fatal(err)
					}
					if err := be.attach(); err != nil {
						b.Fatal(err)
					}
				default:
					if err := be.Apply(ctx, []*rules.Set{sets[v]}); err != nil {
						b.Fatal(err)
					}
				}
				res[v] = append(res[v], run())
			}
		}
	}
	median := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	lowest := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[0]
	}
	base, baseMin := median(res["none"]), lowest(res["none"])
	for _, v := range variants {
		m := median(res[v])
		b.Logf("open+close %-10s median %7.0f ns/op ratio %.3f | min %7.0f ratio %.3f | rounds %v",
			v, m, m/base, lowest(res[v]), lowest(res[v])/baseMin, res[v])
		b.ReportMetric(m/base, "ratio-"+v)
	}
	b.ReportMetric(base, "ns/open-baseline")
}
