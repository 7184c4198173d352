//go:build vm

package bpflsm

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

// BenchmarkReport measures the backend's cost for a process of a workload, per access and
// rule variant (vmbench.Groups, vmbench.Variants), against the same access with no Ward
// program attached, measured by the same helper process first, and prints one vmbench.Row per figure for
// tools/benchreport (docs/performance.md). Each variant is a cgroup with its own set, all
// applied at once; the helper moves itself from cgroup to cgroup. Figures mean something only
// in a VM booted with `vmrun -bench` (make bench-vm), where guest time counts instructions.
func BenchmarkReport(b *testing.B) {
	vmguest.RequireGuest(b)
	be := shared
	if os.Getenv("WARD_VM_BENCH") == "" && shared != nil {
		// Inside the functional suite (make test-vm runs this once with tiny iteration
		// counts, so that it keeps working): the figures mean nothing there, and loading
		// a second Backend would only slow the suite down.
		if sharedErr != nil {
			b.Fatalf("shared backend: %+v", sharedErr)
		}
	} else {
		detachShared(b) // the baseline is the kernel without any Ward program
		var err error
		if be, err = New(Options{ZeroSeed: true}); err != nil {
			b.Fatalf("%+v", err)
		}
		own := be
		b.Cleanup(func() { own.Close() }) // after benchWorkloads' cleanup, which uses it
	}
	cgdirs, labels, startFD := benchWorkloads(b, be)

	// One helper per access measures it with no Ward program attached (in the first
	// variant's cgroup), waits while the programs are attached, then measures it in every
	// variant's cgroup: the ratios are of figures of one process, so that what differs
	// between processes does not enter them.
	measure := func(g vmbench.Group, cgroups []string) []float64 {
		job := vmbench.Job{Access: g.Access, Arg: g.Arg, N: vmbench.Iterations(g.N), Rounds: vmbench.Rounds,
			Cgroups: append([]string{cgroups[0], vmbench.Pause}, cgroups...)}
		if err := be.detach(); err != nil {
			b.Fatal(err)
		}
		ns, err := vmbench.RunPaused(vmbench.Command(vmbench.HelperAt, job, startFD), job, be.attach)
		if err != nil {
			b.Fatal(err)
		}
		if len(be.links) == 0 {
			b.Fatal("the programs were not attached again")
		}
		return ns
	}
	for b.Loop() {
		for _, g := range vmbench.Groups() {
			var dirs []string
			for _, v := range g.Variants {
				dirs = append(dirs, cgdirs[v])
			}
			ns := measure(g, dirs)
			base := ns[0]
			fmt.Println(vmbench.Row{Backend: "bpflsm", Access: g.Label, Variant: vmbench.Baseline, NS: base, Ratio: 1})
			for i, ns := range ns[1:] {
				label := labels[g.Variants[i]]
				if i == 0 {
					label = vmbench.NoRules
				}
				r := vmbench.Row{Backend: "bpflsm", Access: g.Label, Variant: label, NS: ns, Ratio: ns / base}
				fmt.Println(r)
				b.ReportMetric(r.Ratio, "ratio-"+g.Key+"-"+g.Variants[i])
			}
		}
	}
}

// detachShared detaches the package's shared Backend (TestMain's) for the benchmark, so that
// the only Ward programs attached are the benchmark's own, and attaches it again after.
func detachShared(b *testing.B) {
	if shared == nil {
		return
	}
	if err := shared.detach(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := shared.attach(); err != nil {
			b.Error(err)
		}
	})
}

// benchWorkloads makes the report's files and one cgroup per variant (vmbench.Variants), and
// applies each variant's set to its cgroup through be until the benchmark ends. It returns each
// variant's cgroup directory and label by name, and a descriptor of the first cgroup, where the
// helper starts.
func benchWorkloads(b *testing.B, be *Backend) (cgdirs, labels map[string]string, startFD int) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if err := vmbench.Setup(self); err != nil {
		b.Fatal(err)
	}
	cgdirs, labels, startFD = map[string]string{}, map[string]string{}, -1
	var sets []*rules.Set
	for _, v := range vmbench.Variants() {
		name := "ward-bench-" + v.Name
		cg, fd := testCgroup(b, name)
		if startFD < 0 {
			startFD = fd
		}
		cgdirs[v.Name], labels[v.Name] = "/sys/fs/cgroup/"+name, v.Label
		set, err := v.Set(workload.Workload{Kind: workload.KindContainer, ContainerID: "bench-" + v.Name, CgroupID: cg})
		if err != nil {
			b.Fatal(err)
		}
		sets = append(sets, set)
	}
	if err := be.Apply(context.Background(), sets); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Apply(context.Background(), nil) })
	return cgdirs, labels, startFD
}
