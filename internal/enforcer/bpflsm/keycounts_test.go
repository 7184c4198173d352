package bpflsm

import (
	"bytes"
	"io"
	"testing"
)

// byteMemory stands in for name_counts' mapped memory.
type byteMemory []byte

func (m byteMemory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m)) {
		return 0, io.EOF
	}
	return copy(p, m[off:]), nil
}

func (m byteMemory) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m)) {
		return 0, io.EOF
	}
	return copy(m[off:], p), nil
}

func TestNameCounts(t *testing.T) {
	mem := make(byteMemory, 1<<nameCountBits)
	c := nameCounts{mem: mem}
	a, b := NameHash("passwd"), NameHash("shadow")
	// The same slot by the low bits only: the kernel indexes by them.
	alias := a ^ 1<<nameCountBits
	for _, step := range []struct {
		hash uint64
		up   bool
	}{{a, true}, {alias, true}, {b, true}, {a, false}} {
		if err := c.add(step.hash, step.up); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct {
		hash  uint64
		count uint8
	}{{a, 1}, {alias, 1}, {b, 1}, {NameHash("group"), 0}} {
		if n, err := c.count(want.hash); err != nil || n != want.count {
			t.Errorf("count of %#x = %d, %v; want %d", want.hash, n, err, want.count)
		}
	}
	if err := c.add(b, false); err != nil {
		t.Fatal(err)
	}
	// Counted down below zero: a bookkeeping error, reported, and the count stays.
	if err := c.add(b, false); err == nil {
		t.Error("a count went below 0 without an error")
	}
	if n, _ := c.count(b); n != 0 {
		t.Errorf("count after the error = %d, want 0", n)
	}
	// A count that reached its maximum stays there: it may then be above its keys, never below.
	for range nameCountMax + 3 {
		if err := c.add(b, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.add(b, false); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.count(b); n != nameCountMax {
		t.Errorf("stuck count after one down = %d, want %d", n, nameCountMax)
	}
	// Only the slots named changed.
	want := make([]byte, len(mem))
	want[nameSlot(a)] = 1
	want[nameSlot(b)] = nameCountMax
	if !bytes.Equal(mem, want) {
		t.Error("counts outside the slots of the hashes added changed")
	}
}

// TestNameCountsSize ties nameCountBits to ward.c's NAME_COUNT_BITS: the kernel indexes the
// counts with the hash's low bits, by the map's size.
func TestNameCountsSize(t *testing.T) {
	spec, err := loadWard()
	if err != nil {
		t.Fatal(err)
	}
	m := spec.Maps["name_counts"]
	if m == nil {
		t.Fatal("no map name_counts")
	}
	if m.ValueSize != 1<<nameCountBits || m.MaxEntries != 1 {
		t.Errorf("name_counts: %d entries of %d bytes, want 1 of %d", m.MaxEntries, m.ValueSize, 1<<nameCountBits)
	}
}
