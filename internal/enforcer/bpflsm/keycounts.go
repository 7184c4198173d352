package bpflsm

import (
	"fmt"
	"io"
	"sync"
)

// keyCountBits is ward.c's KEY_COUNT_BITS: key_counts has 1 << keyCountBits counts.
const keyCountBits = 20

// keyCountMax is where a count stops: it then stays, above the number of keys it counts,
// which only costs the kernel a lookup it could have spared.
const keyCountMax = 0xff

// keyCounts keeps the kernel's key_counts: for each slot (keySlot), at least as many as rules
// holds KIND_NAME and KIND_INODE keys of it, across workloads and generations. A key's count
// goes up before the key is written and down after it is deleted, so that a hook never finds a
// slot at 0 while a key of it is in rules (name_listed and unnamed then skip the lookup).
//
// mem is the map's memory, mapped: a count changes with a store of one byte, which no hook sees
// half done (Go copies two bytes as two stores). mu orders the read-modify-writes of concurrent
// applies.
type keyCounts struct {
	mu  sync.Mutex
	mem interface {
		io.ReaderAt
		io.WriterAt
	}
}

// keySlot is the offset of a key's count in key_counts, as ward.c's NAME_SLOT and INODE_SLOT
// compute it, and whether keys of its kind are counted. A name's hash mixes every byte of it:
// its low bits. An inode's is (dev << 32) ^ ino, numbers given out in sequence: mixed by a
// multiplication, whose top bits depend on every bit of it.
func keySlot(kind uint8, hash uint64) (int64, bool) {
	switch kind {
	case kindName:
		return int64(hash & (1<<keyCountBits - 1)), true
	case kindInode:
		return int64(hash * nameMul >> (64 - keyCountBits)), true
	}
	return 0, false
}

// add counts a key up (up) or down; keys of a kind not counted are left alone.
func (c *keyCounts) add(kind uint8, hash uint64, up bool) error {
	off, counted := keySlot(kind, hash)
	if !counted {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.read(off)
	if err != nil {
		return err
	}
	switch {
	case n == keyCountMax:
		return nil
	case up:
		n++
	case n > 0:
		n--
	default:
		// Never: every key deleted was counted when it was written.
		return fmt.Errorf("key count %d is already 0", off)
	}
	if _, err := c.mem.WriteAt([]byte{n}, off); err != nil {
		return fmt.Errorf("write key count %d: %w", off, err)
	}
	return nil
}

// count is the count of a key's slot (0 for a kind not counted).
func (c *keyCounts) count(kind uint8, hash uint64) (uint8, error) {
	off, counted := keySlot(kind, hash)
	if !counted {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read(off)
}

// read is the count at off; mu is held.
func (c *keyCounts) read(off int64) (uint8, error) {
	var n [1]byte
	if _, err := c.mem.ReadAt(n[:], off); err != nil {
		return 0, fmt.Errorf("read key count %d: %w", off, err)
	}
	return n[0], nil
}
