//go:build vm

package bpflsm

import (
	"context"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// attach attaches the programs the applied rules need (every program before the first
// apply) and no other: the benchmark's way back after detach.
func (b *Backend) attach() error {
	b.linkMu.Lock()
	err := b.attachFor(b.ops)
	b.linkMu.Unlock()
	if err != nil {
		return err
	}
	b.settle()
	return nil
}

// settle detaches now the programs that no workload needs, which the timer would detachAfter
// later.
func (b *Backend) settle() {
	b.detachIdle(true)
}

// attached lists the names of the programs attached by this Backend, sorted.
func (b *Backend) attached() []string {
	b.linkMu.Lock()
	defer b.linkMu.Unlock()
	return slices.Sorted(maps.Keys(b.links))
}

// linkIDs gives the kernel id of each of b's attached programs' links, by program name.
func linkIDs(t *testing.T, b *Backend) map[string]link.ID {
	t.Helper()
	b.linkMu.Lock()
	defer b.linkMu.Unlock()
	ids := map[string]link.ID{}
	for n, l := range b.links {
		info, err := l.Info()
		if err != nil {
			t.Fatalf("link of %s: %v", n, err)
		}
		ids[n] = info.ID
	}
	return ids
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

// deniedWithEvent runs the reader's op in the cgroup and wants EPERM, and an event of operation
// op that set attributes to a Block of the policy named name.
func deniedWithEvent(t *testing.T, b *Backend, cgfd int, step, op string, kind policy.Operation, set *rules.Set, name string) {
	t.Helper()
	drain(b)
	got, pid := helperRunFilesPID(t, cgfd, "/wt/bin/reader", op)
	if got != op+" errno 1" {
		t.Errorf("%s: %q, want errno 1", step, got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return fromHelper(ev, pid) && ev.Access.Op == kind })
	if !ok {
		t.Errorf("%s: no %s event", step, kind)
	} else if v := set.Decide(ev.Access); ev.Errno != 1 || v.Policy != name || v.Action != "Block" {
		t.Errorf("%s: event errno %d access %+v, verdict %+v", step, ev.Errno, ev.Access, v)
	}
}

// TestProgramsFollowOperations: once the idle programs are detached (settle, which the timer
// does detachAfter later), a program is attached only while some workload has rules of an
// operation it decides (progOps), as the kernel's list of links shows, and a rule of an
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
	b.settle()
	expect("file rules only", "file")
	if got := helperRunFiles(t, cgfd, "/wt/bin/reader", "socket:tcp"); got != "socket:tcp ok" {
		t.Errorf("without network rules, socket:tcp: %q", got)
	}

	// Network rules for a workload whose socket hooks were not attached: in force on return.
	s := set(fileRule + netRule)
	must(t, b.Apply(ctx, []*rules.Set{s}))
	expect("file and network rules", "file", "network")
	deniedWithEvent(t, b, cgfd, "with a network rule", "socket:tcp", policy.OpNetwork, s, "ops")

	must(t, b.Apply(ctx, []*rules.Set{set(netRule)}))
	expect("network rules only, before the idle programs go", "file", "network")
	b.settle()
	expect("network rules only", "network")
	must(t, b.Apply(ctx, nil))
	b.settle()
	expect("no rules")
}

// TestIdleProgramsDetachLater: the programs of an operation whose last rules go stay attached
// for detachAfter, so that rules coming back meanwhile (a policy moved from one pod to another,
// applied workload by workload) find them attached: the same kernel links, no detach and
// re-attach, and the rules are in force on return (EPERM and an attributed event). Once
// detachAfter has passed with no rules, the timer detaches them.
func TestIdleProgramsDetachLater(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/secret", 0)
	cg, cgfd := testCgroup(t, "ward-idle")
	b := newBackend(t)
	b.settle()
	const after = 3 * time.Second
	b.linkMu.Lock()
	b.detachAfter = after
	b.linkMu.Unlock()
	t.Cleanup(func() {
		b.linkMu.Lock()
		b.detachAfter = detachAfter
		b.linkMu.Unlock()
	})
	ctx := context.Background()
	s := hostPolicyInCgroup(t, "idle", "  file:\n    matchPaths:\n    - path: /wt/secret\n", cg)
	timed := func(step string, sets ...*rules.Set) {
		t.Helper()
		start := time.Now()
		must(t, b.Apply(ctx, sets))
		t.Logf("%s: Apply took %v", step, time.Since(start))
	}

	timed("file rules, programs attached", s)
	before := linkIDs(t, b)
	if before[wardProgWardFileOpen] == 0 {
		t.Fatalf("file_open not attached with a file rule: %v", before)
	}
	timed("rules removed")
	timed("rules back", s)
	if now := linkIDs(t, b); !maps.Equal(now, before) {
		t.Errorf("links changed across a removal and a re-apply within detachAfter: %v, then %v", before, now)
	}
	deniedWithEvent(t, b, cgfd, "rules back", "open:/wt/secret", policy.OpFile, s, "idle")

	removed := time.Now()
	timed("rules removed again")
	if got := kernelAttached(t, b); !slices.Contains(got, wardProgWardFileOpen) {
		t.Errorf("file_open detached at once: attached %v", got)
	}
	var firstGone time.Duration
	for {
		got := kernelAttached(t, b)
		if firstGone == 0 && !slices.Contains(got, wardProgWardFileOpen) {
			firstGone = time.Since(removed)
		}
		if len(got) == 0 {
			break
		}
		if time.Since(removed) > after+30*time.Second {
			t.Fatalf("still attached %v after the rules went (detachAfter %v): %v", time.Since(removed), after, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if firstGone < after {
		t.Errorf("file_open detached %v after the rules went, before detachAfter %v", firstGone, after)
	}
	t.Logf("file_open detached %v after the rules went, the last program %v", firstGone, time.Since(removed))
	if got := b.attached(); len(got) != 0 {
		t.Errorf("the Backend believes %v attached with no rules after detachAfter", got)
	}
	if got := helperRunFiles(t, cgfd, "/wt/bin/reader", "open:/wt/secret"); got != "open:/wt/secret ok" {
		t.Errorf("no rules: open %q, want ok", got)
	}
}
