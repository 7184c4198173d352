//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
	"github.com/wardsec/ward/internal/workload"
)

// ctrSet is a Block set on paths for container id in cgroup cg.
func ctrSet(t *testing.T, id string, cg uint64, paths ...string) *rules.Set {
	t.Helper()
	s := blockSet(t, "guard-"+id, paths...)
	s.Workload = workload.Workload{Kind: workload.KindContainer, ContainerID: id, CgroupID: cg}
	return s
}

// kernelState is the maps' content with generations left out, to compare
// two ways of reaching the same sets.
func kernelState(t *testing.T, b *Backend) []string {
	t.Helper()
	// A workload's entry is wherever workloads names it: the entry's content is the state.
	var out []string
	var key uint64
	var e uint32
	it := b.objs.Workloads.Iterate()
	for it.Next(&key, &e) {
		var v wardWlVal
		must(t, b.objs.WlEntries.Lookup(e, &v))
		v.Gen = 0
		out = append(out, fmt.Sprintf("workload %d %+v", key, v))
	}
	must(t, it.Err())
	out = append(out, mapEntries(t, b.objs.Rules, "rule", func(k *wardRuleKey, _ *wardRuleVal) { k.Gen = 0 })...)
	out = append(out, mapEntries(t, b.objs.Globs, "glob", func(k *wardGlobKey, _ *wardGlobVal) { k.Gen = 0 })...)
	var cfg wardConfig
	must(t, b.objs.WardConfig.Lookup(uint32(0), &cfg))
	out = append(out, fmt.Sprintf("config %+v", cfg))
	sort.Strings(out)
	return out
}

// mapEntries lists m's entries as "label key value", each after noGen has
// cleared its generation.
func mapEntries[K, V any](t *testing.T, m *ebpf.Map, label string, noGen func(*K, *V)) []string {
	t.Helper()
	var out []string
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		noGen(&k, &v)
		out = append(out, fmt.Sprintf("%s %+v %+v", label, k, v))
	}
	must(t, it.Err())
	return out
}

// TestWorkloadApplier: ApplyWorkload and RemoveWorkload change one workload
// and leave the others enforced; concurrent calls for different workloads
// keep every Block rule in force; a workload that moves to a new cgroup
// leaves the old one; and Apply(all) leaves the kernel in the same state as
// applying each workload and removing the others.
func TestWorkloadApplier(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, f := range []string{"a1", "a2", "b1", "c1"} {
		mkfile(t, "/wt/"+f, 0)
	}
	cgA, fdA := testCgroup(t, "ward-wa")
	cgB, fdB := testCgroup(t, "ward-wb")
	cgC, fdC := testCgroup(t, "ward-wc")
	b := newBackend(t)
	ctx := context.Background()
	defer b.Apply(ctx, nil)
	open := func(fd int, f string) string {
		t.Helper()
		got := helperRun(t, fd, "/wt/bin/reader", 0, "open:/wt/"+f)
		return strings.TrimPrefix(got, "open:/wt/"+f+" ")
	}
	expect := func(step string, fd int, want map[string]string) {
		t.Helper()
		for f, w := range want {
			if got := open(fd, f); got != w {
				t.Errorf("%s: open /wt/%s: %q, want %q", step, f, got, w)
			}
		}
	}
	const denied, ok = "errno 1", "ok"

	// Two workloads added concurrently.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*rules.Set{ctrSet(t, "a", cgA, "/wt/a1"), ctrSet(t, "b", cgB, "/wt/b1")} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.ApplyWorkload(ctx, s) }()
	}
	wg.Wait()
	must(t, errs[0])
	must(t, errs[1])
	expect("added", fdA, map[string]string{"a1": denied, "b1": ok})
	expect("added", fdB, map[string]string{"a1": ok, "b1": denied})

	// Replacing a's rules leaves b's alone.
	must(t, b.ApplyWorkload(ctx, ctrSet(t, "a", cgA, "/wt/a2")))
	expect("a replaced", fdA, map[string]string{"a1": ok, "a2": denied})
	expect("a replaced", fdB, map[string]string{"b1": denied})

	// A key already used by another workload is refused and changes nothing.
	if err := b.ApplyWorkload(ctx, ctrSet(t, "x", cgB, "/wt/a1")); err == nil || !strings.Contains(err.Error(), "is b's") {
		t.Errorf("second workload on b's cgroup: %v, want a refusal", err)
	}
	expect("refused", fdB, map[string]string{"a1": ok, "b1": denied})

	// Removing b leaves a; unknown ids are a no-op.
	must(t, b.RemoveWorkload(ctx, "b"))
	must(t, b.RemoveWorkload(ctx, "no-such-workload"))
	expect("b removed", fdB, map[string]string{"b1": ok})
	expect("b removed", fdA, map[string]string{"a2": denied})

	// a moves to c's cgroup (a restarted container): the old key goes.
	must(t, b.ApplyWorkload(ctx, ctrSet(t, "a", cgC, "/wt/c1")))
	expect("a moved", fdC, map[string]string{"c1": denied})
	expect("a moved", fdA, map[string]string{"a2": ok, "c1": ok})
	var e uint32
	if err := b.objs.Workloads.Lookup(cgA, &e); err == nil {
		t.Error("a's old cgroup is still registered")
	}

	// Concurrent replacements of a and b while a's blocked file is opened
	// in a loop in a's cgroup: no open succeeds.
	must(t, b.ApplyWorkload(ctx, ctrSet(t, "a", cgA, "/wt/a1")))
	var out string
	wg.Add(1)
	go func() { defer wg.Done(); out = helperRun(t, fdA, "/wt/bin/reader", 0, "hammer:3000:/wt/a1") }()
	var uw sync.WaitGroup
	uerrs := make([]error, 2)
	for i, id := range []string{"a", "b"} {
		uw.Add(1)
		go func() {
			defer uw.Done()
			cg := map[string]uint64{"a": cgA, "b": cgB}[id]
			for n := 1; n <= 15 && uerrs[i] == nil; n++ {
				paths := []string{"/wt/" + id + "1"}
				for j := 0; j < n*10; j++ {
					paths = append(paths, fmt.Sprintf("/wt/other/%s/%d/%d", id, n, j))
				}
				uerrs[i] = b.ApplyWorkload(ctx, ctrSet(t, id, cg, paths...))
			}
		}()
	}
	uw.Wait()
	wg.Wait()
	must(t, uerrs[0])
	must(t, uerrs[1])
	if out != "0" {
		t.Errorf("%s opens of a's blocked file succeeded during concurrent updates", out)
	}

	// Apply(all) equals applying each workload and removing the others.
	want := []*rules.Set{ctrSet(t, "a", cgA, "/wt/a1", "/wt/a2"), ctrSet(t, "b", cgB, "/wt/b1")}
	must(t, b.Apply(ctx, nil))
	must(t, b.ApplyWorkload(ctx, ctrSet(t, "c", cgC, "/wt/c1")))
	for _, s := range want {
		must(t, b.ApplyWorkload(ctx, s))
	}
	must(t, b.RemoveWorkload(ctx, "c"))
	byParts := kernelState(t, b)
	must(t, b.Apply(ctx, nil))
	if got := kernelState(t, b); len(got) != 1 || !strings.Contains(got[0], "Containers:0 ") {
		t.Errorf("after Apply(nil): %v", got)
	}
	must(t, b.Apply(ctx, []*rules.Set{ctrSet(t, "c", cgC, "/wt/c1")}))
	must(t, b.Apply(ctx, want))
	whole := kernelState(t, b)
	if !reflect.DeepEqual(byParts, whole) {
		t.Errorf("kernel state differs:\nby workload: %v\nby Apply:    %v", byParts, whole)
	}
	if len(whole) < 5 {
		t.Errorf("kernel state suspiciously small: %v", whole)
	}
	expect("apply all", fdA, map[string]string{"a1": denied, "a2": denied})
	expect("apply all", fdB, map[string]string{"b1": denied})
	expect("apply all", fdC, map[string]string{"c1": ok})
}
