package bpflsm

import (
	"bytes"
	"io"
	"testing"
)

// byteMemory stands in for key_counts' mapped memory.
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

func TestKeyCounts(t *testing.T) {
	mem := make(byteMemory, 1<<keyCountBits)
	c := keyCounts{mem: mem}
	a, b := NameHash("passwd"), NameHash("shadow")
	// The same slot by the low bits only: the kernel indexes a name by them.
	alias := a ^ 1<<keyCountBits
	// Two inodes of one device, numbered in sequence: slots apart.
	ino1, ino2 := uint64(8)<<32^1000, uint64(8)<<32^1001
	type step struct {
		kind uint8
		hash uint64
		up   bool
	}
	for _, s := range []step{{kindName, a, true}, {kindName, alias, true}, {kindName, b, true}, {kindName, a, false},
		{kindInode, ino1, true}, {kindInode, ino2, true}, {kindInode, ino2, false}, {kindPath, a, true}} {
		if err := c.add(s.kind, s.hash, s.up); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct {
		kind  uint8
		hash  uint64
		count uint8
	}{{kindName, a, 1}, {kindName, alias, 1}, {kindName, b, 1}, {kindName, NameHash("group"), 0}, {kindInode, ino1, 1}, {kindInode, ino2, 0}} {
		if n, err := c.count(want.kind, want.hash); err != nil || n != want.count {
			t.Errorf("count of kind %d %#x = %d, %v; want %d", want.kind, want.hash, n, err, want.count)
		}
	}
	if s1, _ := keySlot(kindInode, ino1); s1 == int64(ino1&(1<<keyCountBits-1)) {
		t.Errorf("inode %#x's slot is its low bits: inodes numbered in sequence would share the array's start", ino1)
	}
	if err := c.add(kindName, b, false); err != nil {
		t.Fatal(err)
	}
	// Counted down below zero: a bookkeeping error, reported, and the count stays.
	if err := c.add(kindName, b, false); err == nil {
		t.Error("a count went below 0 without an error")
	}
	if n, _ := c.count(kindName, b); n != 0 {
		t.Errorf("count after the error = %d, want 0", n)
	}
	// A count that reached its maximum stays there: it may then be above its keys, never below.
	for range keyCountMax + 3 {
		if err := c.add(kindName, b, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.add(kindName, b, false); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.count(kindName, b); n != keyCountMax {
		t.Errorf("stuck count after one down = %d, want %d", n, keyCountMax)
	}
	// Only the slots named changed; a path key is not counted.
	want := make([]byte, len(mem))
	sa, _ := keySlot(kindName, a)
	sb, _ := keySlot(kindName, b)
	si, _ := keySlot(kindInode, ino1)
	want[sa], want[sb], want[si] = 1, keyCountMax, 1
	if !bytes.Equal(mem, want) {
		t.Error("counts outside the slots of the keys added changed")
	}
}

// TestKeyCountsSize ties keyCountBits to ward.c's KEY_COUNT_BITS: the kernel indexes the
// counts by the map's size.
func TestKeyCountsSize(t *testing.T) {
	spec, err := loadWard()
	if err != nil {
		t.Fatal(err)
	}
	m := spec.Maps["key_counts"]
	if m == nil {
		t.Fatal("no map key_counts")
	}
	if m.ValueSize != 1<<keyCountBits || m.MaxEntries != 1 {
		t.Errorf("key_counts: %d entries of %d bytes, want 1 of %d", m.MaxEntries, m.ValueSize, 1<<keyCountBits)
	}
}
