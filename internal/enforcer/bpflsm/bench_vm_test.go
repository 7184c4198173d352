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
	sets := map[string]*rules.Set{}
	for _, n := range []int{1, 10000} {
		var sb strings.Builder
		sb.WriteString(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: bench}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
`)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "    - path: /wt/bench/rules/r%d/file%d\n", i%100, i)
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
		sets[strconv.Itoa(n)] = inCgroup(set, cg)
	}
	run := func() float64 {
		cmd := exec.Command("/wt/bench/helper")
		cmd.Env = []string{helperEnv + "=loop:20000:" + target}
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
	variants := []string{"none", "attached", "1", "10000"}
	res := map[string][]float64{}
	for b.Loop() {
		for round := 0; round < 5; round++ {
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
	base := median(res["none"])
	for _, v := range variants {
		m := median(res[v])
		b.Logf("open+close %-9s median %7.0f ns/op  ratio %.3f  rounds %v", v, m, m/base, res[v])
		b.ReportMetric(m/base, "ratio-"+v)
	}
	b.ReportMetric(base, "ns/open-baseline")
}
