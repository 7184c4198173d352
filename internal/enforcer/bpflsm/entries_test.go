package bpflsm

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeEntries drives workloadEntries as applyOne and removeOne do, over memory of its own,
// with wl_entries and workloads as a slice and a map. It fails the test when an entry is
// written while the map names it, or before a grace period that began after the map last named
// it, and when a slot names an entry other than the one the map names for the slot's key (so a
// slot never names an entry the map does not).
type fakeEntries struct {
	t       *testing.T
	e       *workloadEntries
	entries []wardWlVal
	hash    map[uint64]uint32
	named   map[uint32]bool // the entries hash names
	waits   uint64
	seen    map[uint32]uint64 // entry -> waits when the map last named it
}

func newFakeEntries(t *testing.T) *fakeEntries {
	f := &fakeEntries{t: t, entries: make([]wardWlVal, wlEntries), hash: map[uint64]uint32{},
		named: map[uint32]bool{}, seen: map[uint32]uint64{}}
	f.e = newWorkloadEntries(make([]uint64, slotsSize/8), func(i uint32, v *wardWlVal) error {
		if f.named[i] {
			t.Errorf("entry %d written while named", i)
		}
		if w, ok := f.seen[i]; ok && f.waits == w {
			t.Errorf("entry %d written with no grace period since it was named", i)
		}
		f.entries[i] = *v
		return nil
	}, func() uint64 { return f.waits }, func() error { f.waits++; return nil })
	return f
}

// checkSlot fails the test if key's slot names an entry the map does not name for the slot's
// own key.
func (f *fakeEntries) checkSlot(key uint64) {
	f.t.Helper()
	idx := key & (1<<wlSlotBits - 1)
	w := f.e.slots[idx]
	if w == 0 {
		return
	}
	owner := w>>slotTagShift<<wlSlotBits | idx
	if i, ok := f.hash[owner]; !ok || uint64(i)+1 != w&slotEntryMask {
		f.t.Errorf("slot %d names entry %d for key %d, which the map names as %d (%v)", idx, w&slotEntryMask-1, owner, i, ok)
	}
}

func (f *fakeEntries) apply(key uint64, gen uint32) {
	f.t.Helper()
	prev, had := f.hash[key]
	i, err := f.e.write(&wardWlVal{Gen: gen})
	if err != nil {
		f.t.Fatal(err)
	}
	f.hash[key] = i
	f.named[i] = true
	f.e.name(key, i)
	if had {
		delete(f.named, prev)
		f.seen[prev] = f.waits
		f.e.release(prev)
	}
	f.checkSlot(key)
}

func (f *fakeEntries) remove(key uint64) {
	f.t.Helper()
	f.e.unname(key)
	i := f.hash[key]
	delete(f.hash, key)
	delete(f.named, i)
	f.seen[i] = f.waits
	f.e.release(i)
	f.checkSlot(key)
}

// slot reads the slots as ward.c's slot_entry does for a task in cgroup cg: the generation of
// the entry its slot names, 0 for none.
func (f *fakeEntries) slot(cg uint64) uint32 {
	w := f.e.slots[cg&(1<<wlSlotBits-1)]
	e := w & slotEntryMask
	if e == 0 || w>>slotTagShift != cg>>wlSlotBits {
		return 0
	}
	return f.entries[e-1].Gen
}

func TestWorkloadEntriesSlots(t *testing.T) {
	f := newFakeEntries(t)
	const a = 4242
	f.apply(a, 7)
	if g := f.slot(a); g != 7 {
		t.Errorf("a's slot gives generation %d, want 7", g)
	}
	// Another cgroup of the same slot is not a's: it is looked up.
	sharer := uint64(a + 1<<wlSlotBits)
	if g := f.slot(sharer); g != 0 {
		t.Errorf("cgroup %d read a's slot: generation %d", sharer, g)
	}
	// Registered too, neither keeps the slot; removed, a has it back.
	f.apply(sharer, 8)
	if ga, gs := f.slot(a), f.slot(sharer); ga != 0 || gs != 0 {
		t.Errorf("shared slot: generations %d and %d, want none", ga, gs)
	}
	f.remove(sharer)
	if g := f.slot(a); g != 7 {
		t.Errorf("after the sharer's removal: generation %d, want 7", g)
	}
	// A new generation replaces the old; a removal empties the slot.
	f.apply(a, 9)
	if g := f.slot(a); g != 9 {
		t.Errorf("new generation: %d, want 9", g)
	}
	f.remove(a)
	if w := f.e.load(a & (1<<wlSlotBits - 1)); w != 0 || len(f.e.users) != 0 {
		t.Errorf("removed: slot %#x, %d slots in use", w, len(f.e.users))
	}
	// An id of more than 32 bits has no slot, and its low bits' slot is not its.
	wide := uint64(1)<<32 | a
	f.apply(wide, 10)
	f.apply(a, 11)
	if g := f.slot(wide); g != 0 {
		t.Errorf("wide id: generation %d", g)
	}
	// The host (key 0) is slot 0 with tag 0; cgroup 1 << wlSlotBits shares the slot, not the tag.
	f.apply(HostKey, 12)
	if g := f.slot(HostKey); g != 12 {
		t.Errorf("host: generation %d, want 12", g)
	}
	if g := f.slot(1 << wlSlotBits); g != 0 {
		t.Errorf("cgroup %d read the host's slot: generation %d", 1<<wlSlotBits, g)
	}
	if f.waits != 0 {
		t.Errorf("%d grace periods waited for while entries never named were free", f.waits)
	}
}

// TestWorkloadEntriesReuse: entries come back only after a grace period, and one grace period
// frees every entry let go before it: a workload applied again and again waits about once per
// wlEntries applies, and not at all when the applies' own waits (deleteRetired) came between.
func TestWorkloadEntriesReuse(t *testing.T) {
	f := newFakeEntries(t)
	const applies = 3 * wlEntries
	for gen := uint32(1); gen <= applies; gen++ {
		f.apply(77, gen)
		if g := f.slot(77); g != gen {
			t.Fatalf("apply %d: the slot gives generation %d", gen, g)
		}
	}
	if f.waits < 2 || f.waits > 3 {
		t.Errorf("%d applies waited for %d grace periods, want 2 or 3", applies, f.waits)
	}
	waits := f.waits
	for gen := uint32(applies + 1); gen <= 2*applies; gen++ {
		f.apply(77, gen)
		f.waits++ // an Apply's own wait, for its old keys
	}
	if f.waits != waits+applies {
		t.Errorf("with a wait after every apply, the entries waited for %d more", f.waits-waits-applies)
	}
}

// TestWorkloadEntriesFull: past wlEntries workloads write says why; a removed workload's entry
// serves the next after a grace period.
func TestWorkloadEntriesFull(t *testing.T) {
	f := newFakeEntries(t)
	for k := uint64(1); k <= wlEntries; k++ {
		f.apply(k, uint32(k))
	}
	_, err := f.e.write(&wardWlVal{Gen: 99})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("all %d workload entries are in use", wlEntries)) {
		t.Errorf("workload %d of %d: error %v", wlEntries+1, wlEntries, err)
	}
	f.remove(1)
	f.apply(wlEntries+1, 100)
	if g := f.slot(wlEntries + 1); g != 100 || f.waits != 1 {
		t.Errorf("after a removal: generation %d after %d grace periods, want 100 after 1", g, f.waits)
	}
}

func TestWorkloadEntriesMaps(t *testing.T) {
	spec, err := loadWard()
	if err != nil {
		t.Fatal(err)
	}
	if m := spec.Maps["wl_slots"]; m == nil || m.ValueSize != slotsSize || m.MaxEntries != 1 {
		t.Errorf("wl_slots: %+v, want 1 value of %d bytes", m, slotsSize)
	}
	if m := spec.Maps["outsiders"]; m == nil || m.ValueSize != 8 || m.MaxEntries != 1<<wlSlotBits {
		t.Errorf("outsiders: %+v, want %d values of 8 bytes", m, 1<<wlSlotBits)
	}
	if m := spec.Maps["wl_entries"]; m == nil || m.MaxEntries != wlEntries {
		t.Errorf("wl_entries: %+v, want %d entries", m, wlEntries)
	}
	if m := spec.Maps["workloads"]; m == nil || m.MaxEntries != wlEntries || m.ValueSize != 4 {
		t.Errorf("workloads: %+v, want %d entries of 4 bytes", m, wlEntries)
	}
	if wlEntries > slotEntryMask {
		t.Errorf("%d entries do not fit a slot's %#x", wlEntries, slotEntryMask)
	}
}

// TestWorkloadEntriesRegistered: every key named goes up registered after its slot was stored
// (the kernel's outsiders words read it before they search), a key without a slot too; a
// removal leaves it, since no cgroup found in no workload can be in one after it.
func TestWorkloadEntriesRegistered(t *testing.T) {
	f := newFakeEntries(t)
	steps := []struct {
		step string
		do   func()
		want uint64
	}{
		{"a new key", func() { f.apply(4242, 7) }, 1},
		{"a new generation of it", func() { f.apply(4242, 8) }, 2},
		{"a key of 33 bits", func() { f.apply(1<<32|4242, 9) }, 3},
		{"a removal", func() { f.remove(4242) }, 3},
		{"the host", func() { f.apply(HostKey, 10) }, 4},
	}
	for _, s := range steps {
		s.do()
		if got := atomic.LoadUint64(f.e.registered); got != s.want {
			t.Errorf("%s: registered %d, want %d", s.step, got, s.want)
		}
	}
}
