package bpflsm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
)

// graceWaiter waits until no program that was running when it was called still runs: a
// program reads a workload entry once and then looks its generation's keys up, so the keys a
// new generation replaced may be deleted only after every program that could have read the old
// entry has returned. Without the wait, a first open that read the old generation just before
// the switch found its keys deleted under it and opened a blocked file (TestSmallUpdatesKeepBlocking).
//
// The kernel waits for a grace period after every update of a map of maps, so that user space
// knows no running program uses what the update replaced (maybe_wait_bpf_programs in
// kernel/bpf/syscall.c): Ward's programs run inside an RCU read-side section (the trampoline
// enters one), which that grace period waits for. The update puts the same inner map each time.
type graceWaiter struct {
	mu    sync.Mutex
	outer *ebpf.Map
	inner *ebpf.Map
	waits uint64 // grace periods waited for
}

func newGraceWaiter() (*graceWaiter, error) {
	spec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	inner, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("grace period map: %w", err)
	}
	outer, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: spec})
	if err != nil {
		inner.Close()
		return nil, fmt.Errorf("grace period map: %w", err)
	}
	return &graceWaiter{outer: outer, inner: inner}, nil
}

// wait returns once every program running when it was called has returned.
func (g *graceWaiter) wait() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.outer.Put(uint32(0), g.inner); err != nil {
		return fmt.Errorf("wait for the running programs: %w", err)
	}
	g.waits++
	return nil
}

// count is the number of grace periods waited for; it waits for one under way.
func (g *graceWaiter) count() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waits
}

func (g *graceWaiter) close() error {
	return errors.Join(g.outer.Close(), g.inner.Close())
}

// retirement collects the keys of generations that no workload entry names any more, for one
// Apply, ApplyWorkload or RemoveWorkload: they are deleted together after one grace period.
type retirement struct {
	keys  []wardRuleKey
	globs []wardGlobKey
}

func (r *retirement) add(a *applied) {
	r.keys = append(r.keys, a.keys...)
	r.globs = append(r.globs, a.globs...)
}

// deleteRetired deletes r's keys once no program can still be looking them up. If the wait
// fails they stay (in rules' capacity and key_counts): deleting them could reopen the race.
func (b *Backend) deleteRetired(r *retirement) {
	if len(r.keys) == 0 && len(r.globs) == 0 {
		return
	}
	if err := b.grace.wait(); err != nil {
		b.log.Warn("old rule entries left in the kernel", "entries", len(r.keys)+len(r.globs), "error", err)
		return
	}
	b.deleteKeys(r.keys, r.globs)
	*r = retirement{}
}
