//go:build vm

package bpflsm

import (
	"context"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// attach attaches the programs the applied rules need (every program before the first
// apply): the benchmark's way back after detach.
func (b *Backend) attach() error {
	return b.attachFor(b.ops)
}

// attached lists the names of the programs attached by this Backend, sorted.
func (b *Backend) attached() []string {
	return slices.Sorted(maps.Keys(b.links))
}

// programIDs names b's programs by their kernel ids.
func programIDs(t *testing.T, b *Backend) map[ebpf.ProgramID]string {
	t.Helper()
	byID := map[ebpf.ProgramID]string{}
	for name, p := range b.progs {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		byID[id] = name
	}
	return byID
}

// kernelAttached lists, from the kernel's own list of links, the names of b's programs that
// are attached, sorted.
func kernelAttached(t *testing.T, b *Backend) []string {
	t.Helper()
	byID := programIDs(t, b)
	var names []string
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil {
			t.Fatalf("link %d info: %v", it.ID, err)
		}
		if n, ok := byID[info.Program]; ok {
			names = append(names, n)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestProgramsFollowOperations: a program is attached only while some workload has rules of
// an operation it decides (progOps), as the kernel's list of links shows, and a rule of an
// operation no workload had is in force when Apply returns: its access fails with EPERM and
// the alert is attributed to it.
func TestProgramsFollowOperations(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	cg, cgfd := testCgroup(t, "ward-ops")
	b := newBackend(t)
	set := func(spec string) *rules.Set { return hostPolicyInCgroup(t, "ops", spec, cg) }
	fileRule := "  file:\n    matchPaths:\n    - path: /wt/secret\n"
	netRule := "  network:\n    matchProtocols:\n    - protocol: tcp\n"
	expect := func(step string, want ...string) {
		t.Helper()
		var all []string
		for n, ops := range progOps {
			for _, w := range want {
				if ops&opBits(map[string]uint8{"file": opFile, "process": opProcess, "network": opNetwork}[w]) != 0 {
					all = append(all, n)
					break
				}
			}
		}
		slices.Sort(all)
		all = slices.Compact(all)
		if got := kernelAttached(t, b); !slices.Equal(got, all) {
			t.Errorf("%s: attached %v, want %v", step, got, all)
		}
		if got := b.attached(); !slices.Equal(got, all) {
			t.Errorf("%s: the Backend believes %v attached, want %v", step, got, all)
		}
	}
	ctx := context.Background()

	must(t, b.Apply(ctx, []*rules.Set{set(fileRule)}))
	expect("file rules only", "file")
	if got := helperRunFiles(t, cgfd, "/wt/bin/reader", "socket:tcp"); got != "socket:tcp ok" {
		t.Errorf("without network rules, socket:tcp: %q", got)
	}

	// Network rules for a workload whose socket hooks were not attached: in force on return.
	s := set(fileRule + netRule)
	must(t, b.Apply(ctx, []*rules.Set{s}))
	expect("file and network rules", "file", "network")
	drain(b)
	if got := helperRunFiles(t, cgfd, "/wt/bin/reader", "socket:tcp"); got != "socket:tcp errno 1" {
		t.Errorf("with a network rule, socket:tcp: %q, want errno 1", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Op == policy.OpNetwork })
	if !ok {
		t.Error("no network event")
	} else if v := s.Decide(ev.Access); ev.Errno != 1 || v.Policy != "ops" || v.Action != "Block" {
		t.Errorf("event errno %d access %+v, verdict %+v", ev.Errno, ev.Access, v)
	}

	must(t, b.Apply(ctx, []*rules.Set{set(netRule)}))
	expect("network rules only", "network")
	must(t, b.Apply(ctx, nil))
	expect("no rules")
}
