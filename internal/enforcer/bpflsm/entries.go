package bpflsm

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The sizes of wl_entries and wl_slots (ward.c's WL_ENTRIES, WL_SLOT_BITS) and a slot's layout.
const (
	wlEntries     = 8192
	wlSlotBits    = 14
	slotsSize     = 8<<wlSlotBits + 8 // the slots, then registered
	slotEntryMask = uint64(wardSlotLayoutSLOT_ENTRY_MASK)
	slotTagShift  = uint(wardSlotLayoutSLOT_TAG_SHIFT)
)

// workloadEntries keeps wl_entries and wl_slots (ward.c; docs/bpflsm.md, "Workload slots"):
// every applied state of a workload is an entry, which the workloads hash map names by the
// workload's key, and so does the key's slot while no other registered key shares it.
//
// An entry is written only while nothing names it and no hook can still be reading it: an
// entry let go goes to the back of free, marked with the grace periods waited for so far, and
// is taken again only after a later one (graceWaiter: one wait frees every entry let go before
// it). A slot changes with one atomic 8-byte store into the mapped memory, so a hook reads
// the old entry's index or the new one's, never a mixture.
type workloadEntries struct {
	mu    sync.Mutex
	slots []uint64
	// registered is wl_slots.registered: bumped after every name, so that the kernel's
	// outsiders words (cgroups it found in no workload) written before no longer hold.
	registered *uint64
	// put writes an entry; waits is the number of grace periods waited for, wait waits for
	// another.
	put   func(i uint32, v *wardWlVal) error
	waits func() uint64
	wait  func() error

	free []freeEntry // entries nothing names, the oldest first
	// users are the registered keys each slot serves, with their entries: nearly always one.
	// A slice, not a map per slot: 1,000 workloads took 153 KB of heap so, 64 KB now.
	users map[uint64][]slotUser
}

type slotUser struct {
	key   uint64
	entry uint32
}

type freeEntry struct {
	i    uint32
	need uint64 // the grace periods waited for once one began after the last name of it went
}

// newWorkloadEntries keeps the entries with wl_slots' memory mem: the slots, then registered.
func newWorkloadEntries(mem []uint64, put func(uint32, *wardWlVal) error, waits func() uint64, wait func() error) *workloadEntries {
	e := &workloadEntries{slots: mem[:1<<wlSlotBits], registered: &mem[1<<wlSlotBits], put: put, waits: waits, wait: wait, users: map[uint64][]slotUser{}}
	for i := range uint32(wlEntries) {
		e.free = append(e.free, freeEntry{i: i}) // never named: free at once
	}
	return e
}

// slotIndex is the slot of a workload key, and whether it has one: the kernel reads a slot
// only for an id of 32 bits, which the index and the tag hold together.
func slotIndex(key uint64) (uint64, bool) {
	return key & (1<<wlSlotBits - 1), key>>32 == 0
}

// slotWord is the slot of key naming entry i.
func slotWord(key uint64, i uint32) uint64 {
	return key>>wlSlotBits<<slotTagShift | uint64(i+1)
}

// write puts v into an entry that nothing names and no hook reads, and returns its index.
func (e *workloadEntries) write(v *wardWlVal) (uint32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.free) == 0 {
		return 0, fmt.Errorf("all %d workload entries are in use", wlEntries)
	}
	// The oldest entry was let go first: if it needs a wait, one frees every other too.
	if e.free[0].need > e.waits() {
		if err := e.wait(); err != nil {
			return 0, fmt.Errorf("wait for the programs to leave a workload entry: %w", err)
		}
	}
	f := e.free[0]
	if err := e.put(f.i, v); err != nil {
		return 0, fmt.Errorf("write workload entry %d: %w", f.i, err)
	}
	e.free = e.free[1:]
	return f.i, nil
}

// name makes key's slot name entry i, which workloads names for key: called after that map
// update, so a slot never names an entry the map has not had. The key may be new in the map:
// registered goes up after it, whether the key has a slot or not.
func (e *workloadEntries) name(key uint64, i uint32) {
	defer atomic.AddUint64(e.registered, 1)
	idx, ok := slotIndex(key)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	us := e.users[idx]
	if j := slices.IndexFunc(us, func(u slotUser) bool { return u.key == key }); j >= 0 {
		us[j].entry = i
	} else {
		e.users[idx] = append(us, slotUser{key, i})
	}
	e.store(idx)
}

// unname takes key out of its slot: called before its workloads entry is deleted.
func (e *workloadEntries) unname(key uint64) {
	idx, ok := slotIndex(key)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	us := slices.DeleteFunc(e.users[idx], func(u slotUser) bool { return u.key == key })
	if len(us) == 0 {
		delete(e.users, idx)
	} else {
		e.users[idx] = us
	}
	e.store(idx)
}

// store writes slot idx: its one key's entry, or none for no key or several.
func (e *workloadEntries) store(idx uint64) {
	var w uint64
	if us := e.users[idx]; len(us) == 1 {
		w = slotWord(us[0].key, us[0].entry)
	}
	atomic.StoreUint64(&e.slots[idx], w)
}

// release frees entry i once neither workloads nor a slot names it.
func (e *workloadEntries) release(i uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// waits blocks while a wait runs: one that began before this is counted.
	e.free = append(e.free, freeEntry{i: i, need: e.waits() + 1})
}

// unwritten frees entry i, which write gave and nothing named.
func (e *workloadEntries) unwritten(i uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.free = append([]freeEntry{{i: i}}, e.free...)
}

// load is slot idx as a hook reads it.
func (e *workloadEntries) load(idx uint64) uint64 {
	return atomic.LoadUint64(&e.slots[idx])
}

// mapWorkloadEntries keeps wl_entries and maps wl_slots' memory; the function it returns unmaps it.
// The mapping is made here rather than with the map's Memory (as key_counts is): a slot must
// change with one 8-byte store. Memory.WriteAt copies, and the runtime's copy of 8 aligned bytes
// is one store today (memmove_amd64.s keeps it so for pointers), but that is the runtime's
// choice, not WriteAt's promise; a pointer into a Memory needs cilium/ebpf's experimental build
// tag. sync/atomic on a mapping of its own says what it needs.
func mapWorkloadEntries(slots, entries *ebpf.Map, g *graceWaiter) (*workloadEntries, func() error, error) {
	size := int(slots.ValueSize())
	if size != slotsSize {
		return nil, nil, fmt.Errorf("map wl_slots: value of %d bytes, want %d", size, slotsSize)
	}
	if entries.MaxEntries() != wlEntries {
		return nil, nil, fmt.Errorf("wl_entries: %d entries, want %d", entries.MaxEntries(), wlEntries)
	}
	b, err := unix.Mmap(slots.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map wl_slots: %w", err)
	}
	e := newWorkloadEntries(unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), size/8),
		func(i uint32, v *wardWlVal) error { return entries.Put(i, v) }, g.count, g.wait)
	return e, func() error { return unix.Munmap(b) }, nil
}
