// Reading: the ring buffer of events and the kernel's counters.

package bpflsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf/ringbuf"
)

// Stats are the kernel's counters.
type Stats struct {
	// DroppedEvents were lost because the ring buffer was full.
	DroppedEvents uint64
	// Unresolved counts accesses denied because their path could not be resolved.
	Unresolved uint64
}

// Stats reads the kernel's counters, summed over CPUs.
func (b *Backend) Stats() (Stats, error) {
	var st Stats
	for i, dst := range []*uint64{&st.DroppedEvents, &st.Unresolved} {
		var per []uint64
		if err := b.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return st, fmt.Errorf("read stats: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return st, nil
}

func (b *Backend) read() {
	defer b.wg.Done()
	for {
		rec, err := b.rd.Read()
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			b.log.Warn("read ring buffer", "error", err)
			continue
		}
		var e wardEvent
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &e); err != nil {
			b.log.Warn("decode event", "error", err)
			continue
		}
		ev := b.convert(&e)
		select {
		case b.ev <- ev:
		case <-b.done:
			return
		}
	}
}
