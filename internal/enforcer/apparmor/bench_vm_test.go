//go:build vm

package apparmor

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmbench"
	"github.com/wardsec/ward/internal/testutil/vmguest"
	"github.com/wardsec/ward/internal/workload"
)

// A copy of the test binary started with vmbench.JobEnv is the benchmark's workload process:
// it runs before TestMain, so that it needs nothing of the test machinery.
func init() {
	if os.Getenv(vmbench.JobEnv) != "" {
		os.Exit(vmbench.Main())
	}
}

// BenchmarkReport is BPF-LSM's BenchmarkReport (internal/enforcer/bpflsm) for this backend:
// the same accesses under the same rules, each variant a workload with its own profile, the
// helper started in it with aa-exec, against the same access unconfined in the same boot
// (no profile). Figures mean something only in a VM booted with `vmrun -bench` (make
// bench-vm), where guest time counts instructions.
func BenchmarkReport(b *testing.B) {
	vmguest.RequireProfile(b, "apparmor")
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if err := vmbench.Setup(self); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	be, err := New(ctx, Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	profiles := map[string]string{}
	labels := map[string]string{}
	var sets []*rules.Set
	for _, v := range vmbench.Variants() {
		set, err := v.Set(workload.Workload{Kind: workload.KindContainer, ContainerID: "bench-" + v.Name})
		if err != nil {
			b.Fatal(err)
		}
		profiles[v.Name], labels[v.Name] = ProfileName(set.Workload), v.Label
		sets = append(sets, set)
	}
	if err := be.Apply(ctx, sets); err != nil {
		b.Fatalf("%+v", err)
	}
	defer be.Apply(ctx, nil)

	measure := func(g vmbench.Group, wrap ...string) float64 {
		job := vmbench.Job{Access: g.Access, Arg: g.Arg, N: vmbench.Iterations(g.N), Rounds: vmbench.Rounds, Cgroups: []string{""}}
		ns, err := vmbench.Run(vmbench.Command(vmbench.HelperAt, job, -1, wrap...), job)
		if err != nil {
			b.Fatal(err)
		}
		return ns[0]
	}
	for b.Loop() {
		for _, g := range vmbench.Groups() {
			base := measure(g)
			fmt.Println(vmbench.Row{Backend: "apparmor", Access: g.Label, Variant: vmbench.Baseline, NS: base, Ratio: 1})
			for i, v := range g.Variants {
				ns := measure(g, "aa-exec", "-p", profiles[v], "--")
				label := labels[v]
				if i == 0 {
					label = vmbench.NoRules
				}
				r := vmbench.Row{Backend: "apparmor", Access: g.Label, Variant: label, NS: ns, Ratio: ns / base}
				fmt.Println(r)
				b.ReportMetric(r.Ratio, "ratio-"+g.Key+"-"+v)
			}
		}
	}
}
