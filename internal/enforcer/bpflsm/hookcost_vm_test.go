//go:build vm

package bpflsm

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/testutil/vmbench"
	"github.com/wardsec/ward/internal/testutil/vmguest"
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
	cgdirs, _, _, _ := benchWorkloads(b, be)
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
	for b.Loop() {
		for _, g := range vmbench.Groups() {
			for _, v := range g.Variants {
				job := vmbench.Job{Access: g.Access, Arg: g.Arg, N: vmbench.Iterations(g.N), Rounds: vmbench.Rounds, Cgroups: []string{cgdirs[v]}}
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
		}
	}
}
