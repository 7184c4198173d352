//go:build vm

package apparmor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
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
// the same accesses under the same rules, each variant a workload with its own profile, against
// the same access unconfined, measured by the same helper processes before they entered the
// profile. Figures mean something only in a VM booted with `vmrun -bench` (make
// bench-vm), where guest time counts instructions.
//
// Compiling the 10,000-rule profiles takes apparmor_parser minutes of guest time, and under
// the instruction-counting clock of `vmrun -bench` tens of minutes of wall time. make bench-vm
// therefore compiles them first in an ordinary boot (BenchmarkPrepare) and this benchmark
// loads the compiled policy (apparmor_parser -r -B) of every profile whose text it has: the
// profile the kernel holds is the same, only the compilation happened elsewhere. A profile
// without a compiled copy is compiled here (binCache).
func BenchmarkReport(b *testing.B) {
	vmguest.RequireProfile(b, "apparmor")
	cache := &binCache{dir: os.Getenv(vmbench.PreparedEnv)}
	be, profiles, labels := benchProfiles(b, cache, func(v vmbench.Variant, err error) {
		// A profile apparmor_parser refuses is a row the backend cannot have: say so on
		// the page instead of failing the report.
		fmt.Println(vmbench.Note{Backend: "apparmor", Text: fmt.Sprintf("%s (%s): not measured, apparmor_parser refuses the profile: %s",
			v.Label, v.Name, parserMessage(err))})
	})
	b.Logf("profiles loaded from BenchmarkPrepare's compiled copies: %d, compiled in this boot: %d", cache.hits.Load(), cache.misses.Load())
	defer be.Apply(context.Background(), nil)

	// A helper measures the access unconfined, then enters a variant's profile and measures
	// it again. The same access, unconfined, took ~12,600 or ~13,900 guest ns per open+close
	// depending on the helper process, and a process's figures all kept to its level: each
	// variant is measured by procs helpers, and every figure is the fastest any of them
	// measured (the unconfined one over all the group's helpers).
	const procs = 3
	measure := func(g vmbench.Group, profile string) (base, ns float64) {
		job := vmbench.Job{Access: g.Access, Arg: g.Arg, N: vmbench.Iterations(g.N), Rounds: vmbench.Rounds,
			Cgroups: []string{"", vmbench.ProfilePrefix + profile}}
		base, ns = math.Inf(1), math.Inf(1)
		for range procs {
			r, err := vmbench.Run(vmbench.Command(vmbench.HelperAt, job, -1), job)
			if err != nil {
				b.Fatal(err)
			}
			base, ns = min(base, r[0]), min(ns, r[1])
		}
		return base, ns
	}
	for b.Loop() {
		for _, g := range vmbench.Groups() {
			base := math.Inf(1)
			var rows []vmbench.Row
			var names []string
			for i, v := range g.Variants {
				if profiles[v] == "" {
					continue // refused by the parser: noted above
				}
				vb, ns := measure(g, profiles[v])
				base = min(base, vb)
				label := labels[v]
				if i == 0 {
					label = vmbench.NoRules
				}
				rows = append(rows, vmbench.Row{Backend: "apparmor", Access: g.Label, Variant: label, NS: ns})
				names = append(names, v)
			}
			fmt.Println(vmbench.Row{Backend: "apparmor", Access: g.Label, Variant: vmbench.Baseline, NS: base, Ratio: 1})
			for i, r := range rows {
				r.Ratio = r.NS / base
				fmt.Println(r)
				b.ReportMetric(r.Ratio, "ratio-"+g.Key+"-"+names[i])
			}
		}
	}
}

// BenchmarkPrepare runs in an ordinary boot before make bench-vm's instruction-counting ones:
// it renders the report's profiles as BenchmarkReport does and compiles each with the guest's
// apparmor_parser into the directory vmbench.PreparedEnv names, under the hash of its text,
// where BenchmarkReport finds them.
func BenchmarkPrepare(b *testing.B) {
	vmguest.RequireProfile(b, "apparmor")
	dir := os.Getenv(vmbench.PreparedEnv)
	if dir == "" {
		dir = b.TempDir() // outside make bench-vm: a check that every profile compiles
	}
	cache := &binCache{dir: dir, compile: true}
	for b.Loop() {
		be, _, _ := benchProfiles(b, cache, func(v vmbench.Variant, err error) {
			b.Logf("%s: apparmor_parser refuses the profile: %s", v.Name, parserMessage(err))
		})
		be.Apply(context.Background(), nil)
	}
	b.Logf("compiled %d profiles into %s", cache.misses.Load(), dir)
}

// benchProfiles makes the report's files, starts a Backend that runs apparmor_parser through
// cache and loads one profile per variant (vmbench.Variants). It returns the backend and each
// variant's profile name and label by variant name; a variant whose profile the parser
// refuses is passed to refused and has no profile name.
func benchProfiles(b *testing.B, cache *binCache, refused func(vmbench.Variant, error)) (be *Backend, profiles, labels map[string]string) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	if err := vmbench.Setup(self); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	be, err = New(ctx, Config{Dir: b.TempDir(), Runner: cache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	profiles, labels = map[string]string{}, map[string]string{}
	for _, v := range vmbench.Variants() {
		set, err := v.Set(workload.Workload{Kind: workload.KindContainer, ContainerID: "bench-" + v.Name})
		if err != nil {
			b.Fatal(err)
		}
		labels[v.Name] = v.Label
		if err := be.ApplyWorkload(ctx, set); err != nil {
			if pe := (*ParseError)(nil); errors.As(err, &pe) {
				refused(v, err)
				continue
			}
			b.Fatalf("%+v", err)
		}
		profiles[v.Name] = ProfileName(set.Workload)
	}
	return be, profiles, labels
}

// parserMessage is the first line apparmor_parser printed about a refused profile.
func parserMessage(err error) string {
	if pe := (*ParseError)(nil); errors.As(err, &pe) {
		if m := firstError(pe.Output); m != "" {
			return m
		}
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// binCache is the benchmark's enforcer.Runner. The Loader loads a profile with
// `apparmor_parser -r -W FILE`; binCache turns that into a load of the policy compiled from the
// same text (`-r -B`) when dir has it, and otherwise runs it as asked. With compile set, it
// compiles FILE into dir instead (no load: nothing is measured in that boot). Every other
// command runs as asked.
type binCache struct {
	dir          string
	compile      bool
	hits, misses atomic.Int64
}

func (c *binCache) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if name == "apparmor_parser" && len(args) == 2 && args[0] == "-R" {
		// apparmor_parser -R parses the whole profile to learn its name, which for the
		// 10,000-rule ones takes as long under the instruction-counting clock as the
		// benchmark itself: the kernel's .remove takes the name.
		prof, ok, err := Managed(args[1])
		if err != nil || !ok {
			return nil, fmt.Errorf("remove %s: not Ward's profile (%v)", args[1], err)
		}
		if err := os.WriteFile(DefaultSecurityFS+"/.remove", []byte(prof), 0); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return []byte("Profile doesn't exist"), err // never loaded (BenchmarkPrepare)
			}
			return nil, err
		}
		return nil, nil
	}
	if c.dir == "" || name != "apparmor_parser" || len(args) != 3 || args[0] != "-r" || args[1] != "-W" {
		return enforcer.ExecRunner{}.Run(ctx, name, args...)
	}
	text, err := os.ReadFile(args[2])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(text)
	bin := filepath.Join(c.dir, hex.EncodeToString(sum[:])+".bin")
	if c.compile {
		c.misses.Add(1)
		// -Q: compile, do not load; -T: no cache; -o: the binary policy. Renamed into place
		// only when complete, so that a refused profile leaves no file behind.
		tmp := bin + ".tmp"
		out, err := exec.CommandContext(ctx, name, "-Q", "-T", "-o", tmp, args[2]).CombinedOutput()
		if err != nil {
			os.Remove(tmp)
			return out, err
		}
		return out, os.Rename(tmp, bin)
	}
	if _, err := os.Stat(bin); err == nil {
		c.hits.Add(1)
		return exec.CommandContext(ctx, name, "-r", "-B", bin).CombinedOutput()
	}
	c.misses.Add(1)
	return enforcer.ExecRunner{}.Run(ctx, name, args...)
}
