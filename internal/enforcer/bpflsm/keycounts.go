package bpflsm

import (
	"fmt"
	"io"
	"sync"
)

// nameCountBits is ward.c's NAME_COUNT_BITS: name_counts has a count per value of a KIND_NAME
// key hash's low nameCountBits bits.
const nameCountBits = 20

// nameCountMax is where a count stops: it then stays, above the number of keys it counts,
// which only costs the kernel a lookup it could have spared.
const nameCountMax = 0xff

// nameCounts keeps the kernel's name_counts: for each slot, at least as many as rules holds
// KIND_NAME keys whose hash falls in it, across workloads and generations. A key's count goes up
// before the key is written and down after it is deleted, so that a hook never finds a slot at
// 0 while a key of it is in rules (name_listed then skips the lookup).
//
// mem is the map's memory, mapped: a count changes with a store of one byte, which no hook sees
// half done. mu orders the read-modify-writes of concurrent applies.
type nameCounts struct {
	mu  sync.Mutex
	mem interface {
		io.ReaderAt
		io.WriterAt
	}
}

// nameSlot is the offset of hash's count in name_counts.
func nameSlot(hash uint64) int64 {
	return int64(hash & (1<<nameCountBits - 1))
}

// add counts a KIND_NAME key of hash up (up) or down.
func (c *nameCounts) add(hash uint64, up bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n [1]byte
	off := nameSlot(hash)
	if _, err := c.mem.ReadAt(n[:], off); err != nil {
		return fmt.Errorf("read name count %d: %w", off, err)
	}
	switch {
	case n[0] == nameCountMax:
		return nil
	case up:
		n[0]++
	case n[0] > 0:
		n[0]--
	default:
		// Never: every key deleted was counted when it was written.
		return fmt.Errorf("name count %d is already 0", off)
	}
	if _, err := c.mem.WriteAt(n[:], off); err != nil {
		return fmt.Errorf("write name count %d: %w", off, err)
	}
	return nil
}

// count is the count of hash's slot.
func (c *nameCounts) count(hash uint64) (uint8, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n [1]byte
	if _, err := c.mem.ReadAt(n[:], nameSlot(hash)); err != nil {
		return 0, err
	}
	return n[0], nil
}
