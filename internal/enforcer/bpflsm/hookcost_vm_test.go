//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/testutil/vmbench"
	"github.com/wardsec/ward/internal/testutil/vmguest"
	"github.com/wardsec/ward/internal/workload"
)

// BenchmarkHookCost explains BenchmarkReport's figures: for every access and variant of the
// report it prints which of Ward's programs ran, how often per access and for how many guest
// ns per run (the kernel's BPF run-time statistics). In a VM booted with `vmrun -bench` guest
// ns count instructions, so a program's figure is its own cost, apart from the trampoline
// around it and the rest of the system call.
func BenchmarkHookCost(b *testing.B) {
	vmguest.RequireGuest(b)
	detachShared(b)
	be, err := New(Options{ZeroSeed: true})
	if err != nil {
		b.Fatalf("%+v", err)
	}
	b.Cleanup(func() { be.Close() }) // after benchWorkloads' cleanup, which uses it
	cgdirs, _, _, sets := benchWorkloads(b, be)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()
	names, progs := be.programs()
	snap := func() []ebpf.ProgramStats {
		var s []ebpf.ProgramStats
		for _, p := range progs {
			st, err := p.Stats()
			if err != nil {
				b.Fatal(err)
			}
			s = append(s, *st)
		}
		return s
	}
	measure := func(g vmbench.Group, v, cgdir string) {
		job := vmbench.Job{Access: g.Access, Arg: g.Arg, N: vmbench.Iterations(g.N), Rounds: vmbench.Rounds, Cgroups: []string{cgdir}}
		before := snap()
		ns, err := vmbench.Run(vmbench.Command(vmbench.HelperAt, job, -1), job)
		if err != nil {
			b.Fatal(err)
		}
		after := snap()
		accesses := float64(job.N * (job.Rounds + 1))
		line := fmt.Sprintf("hookcost\t%s\t%s\t%.0f ns/access:", g.Key, v, ns[0])
		total := 0.0
		for i := range progs {
			runs := after[i].RunCount - before[i].RunCount
			if runs == 0 {
				continue
			}
			rt := float64(after[i].Runtime - before[i].Runtime)
			total += rt / accesses
			line += fmt.Sprintf(" %s %.2f/access %.0f ns/run;", names[i], float64(runs)/accesses, rt/float64(runs))
		}
		fmt.Printf("%s programs %.0f ns/access\n", line, total)
	}
	// A host task outside every workload, in a cgroup two levels below the root (as a system
	// service's or a user session's), while the host has the 1-rule variant's rules and the
	// containers theirs: its hooks look its cgroup and its ancestor up, find no workload, and
	// take the host's (outsiders).
	outsider := testCgroupPath(b, "ward-bench-outside", "ward-bench-outside/service")
	hostSet := *sets[slices.IndexFunc(vmbench.Variants(), func(v vmbench.Variant) bool { return v.Name == "file1" })]
	hostSet.Workload = workload.Host("ward-bench", nil)
	for b.Loop() {
		for _, g := range vmbench.Groups() {
			for _, v := range g.Variants {
				measure(g, v, cgdirs[v])
			}
		}
		if err := be.Apply(context.Background(), append(slices.Clip(sets), &hostSet)); err != nil {
			b.Fatal(err)
		}
		for _, g := range vmbench.Groups() {
			if g.Access == vmbench.Open {
				measure(g, "host-outsider", outsider)
			}
		}
		if err := be.Apply(context.Background(), sets); err != nil {
			b.Fatal(err)
		}
	}
}

// testCgroupPath makes the cgroups of dirs (each below the root of cgroup2, parents first)
// and returns the last one's path.
func testCgroupPath(b *testing.B, dirs ...string) string {
	for _, d := range dirs {
		testCgroup(b, d)
	}
	return "/sys/fs/cgroup/" + dirs[len(dirs)-1]
}
