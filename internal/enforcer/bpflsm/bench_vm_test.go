//go:build vm

package bpflsm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

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
	cgdirs, labels, startFD, sets := benchWorkloads(b, be)
	floor := floorPrograms(b)
	ctx := context.Background()

	// One helper per access measures it with no Ward program attached (in the first
	// variant's cgroup), then with the floor's programs in their place (floorPrograms), then
	// with Ward's attached while no workload has rules of the
	// operations the access's program decides (so that program is not attached), then, with
	// every variant's rules applied, in every variant's cgroup: the ratios are of figures of
	// one process, so that what differs between processes does not enter them.
	measure := func(g vmbench.Group, cgroups []string) []float64 {
		prog := groupProgram[g.Key]
		var others []*rules.Set
		for _, s := range sets {
			if usedOps(be.byID[s.Workload.ID()].tr.Flags)&progOps[prog] == 0 {
				others = append(others, s)
			}
		}
		if err := be.Apply(ctx, others); err != nil {
			b.Fatal(err)
		}
		if err := be.detach(); err != nil {
			b.Fatal(err)
		}
		job := vmbench.Job{Access: g.Access, Arg: g.Arg, N: vmbench.Iterations(g.N), Rounds: vmbench.Rounds,
			Cgroups: append([]string{cgroups[0], vmbench.Pause, cgroups[0], vmbench.Pause, cgroups[0], vmbench.Pause}, cgroups...)}
		pauses := 0
		var floorLinks []link.Link
		defer func() { closeLinks(floorLinks) }()
		ns, err := vmbench.RunPaused(vmbench.Command(vmbench.HelperAt, job, startFD), job, func() error {
			pauses++
			switch pauses {
			case 1:
				var err error
				floorLinks, err = attachAll(floor)
				return err
			case 2:
				err := closeLinks(floorLinks)
				floorLinks = nil
				if err != nil {
					return fmt.Errorf("detach the floor's programs: %w", err)
				}
				if err := be.attach(); err != nil {
					return err
				}
				if be.links[prog] != nil {
					return fmt.Errorf("%s is attached while no workload has rules of its operations", prog)
				}
				return nil
			}
			if err := be.Apply(ctx, sets); err != nil {
				return err
			}
			if be.links[prog] == nil {
				return fmt.Errorf("%s is not attached with every variant's rules applied", prog)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
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
			r := vmbench.Row{Backend: "bpflsm", Access: g.Label, Variant: vmbench.Floor, NS: ns[1], Ratio: ns[1] / base}
			fmt.Println(r)
			b.ReportMetric(r.Ratio, "ratio-"+g.Key+"-floor")
			r = vmbench.Row{Backend: "bpflsm", Access: g.Label, Variant: vmbench.Unattached, NS: ns[2], Ratio: ns[2] / base}
			fmt.Println(r)
			b.ReportMetric(r.Ratio, "ratio-"+g.Key+"-unattached")
			for i, ns := range ns[3:] {
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

// floorPrograms loads, for every hook Ward's programs attach to, a program that returns 0 at
// once. Attached in place of Ward's, they cost each hook run what any BPF-LSM program there
// costs (the trampoline, the call and the return): the report's floor row, the least an
// enforcer on these hooks can add whatever its programs decide.
func floorPrograms(b *testing.B) []*ebpf.Program {
	spec, err := loadWard()
	if err != nil {
		b.Fatal(err)
	}
	var progs []*ebpf.Program
	for _, name := range slices.Sorted(maps.Keys(spec.Programs)) {
		ps := spec.Programs[name]
		if ps.Type != ebpf.LSM {
			b.Fatalf("%s is a %s program: the floor knows LSM programs only", name, ps.Type)
		}
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "ward_floor", Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: ps.AttachTo,
			License: "GPL", Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		})
		if err != nil {
			b.Fatalf("floor program for %s: %v", ps.AttachTo, err)
		}
		b.Cleanup(func() { p.Close() })
		progs = append(progs, p)
	}
	return progs
}

// attachAll attaches every program to its LSM hook; on error it detaches those it attached.
func attachAll(progs []*ebpf.Program) ([]link.Link, error) {
	var links []link.Link
	for _, p := range progs {
		l, err := link.AttachLSM(link.LSMOptions{Program: p})
		if err != nil {
			closeLinks(links)
			return nil, err
		}
		links = append(links, l)
	}
	return links, nil
}

// closeLinks detaches every link: a floor program left attached would count in the next rows.
func closeLinks(links []link.Link) error {
	var errs []error
	for _, l := range links {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// groupProgram names, per access of the report (vmbench.Group.Key), the program whose hook
// the access runs through and that the "not attached" row leaves out.
var groupProgram = map[string]string{
	"open-cached": wardProgWardFileOpen,
	"open-first":  wardProgWardFileOpen,
	"exec":        wardProgWardFileOpen,
	"sendrecv":    wardProgWardSocketSendmsg,
	"capable":     wardProgWardCapable,
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
// variant's cgroup directory and label by name, a descriptor of the first cgroup, where the
// helper starts, and the sets.
func benchWorkloads(b *testing.B, be *Backend) (cgdirs, labels map[string]string, startFD int, sets []*rules.Set) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if err := vmbench.Setup(self); err != nil {
		b.Fatal(err)
	}
	cgdirs, labels, startFD = map[string]string{}, map[string]string{}, -1
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
	return cgdirs, labels, startFD, sets
}
