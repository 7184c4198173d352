// Reading: the ring buffer of events and the kernel's counters.

package bpflsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the kernel's counters.
type Stats struct {
	// DroppedEvents were lost because the ring buffer was full.
	DroppedEvents uint64
	// Unresolved counts accesses denied because their path could not be resolved.
	Unresolved uint64
	// ByName counts file opens permitted without resolving the path: neither the file's name
	// nor (with directory rules) an ancestor's is one the workload's rules name.
	ByName uint64
	// DirNames counts the file opens among those (and among the opens resolved for their own
	// name) whose ancestors' names were not tested again: an entry on their directory's inode
	// said that none is one the workload's rules name.
	DirNames uint64
	// DirPaths counts the file opens among ByName whose ancestors were not looked at: an entry
	// on their directory's inode said that no rule applies to the directory or above it by
	// path or inode, for the same workload generation, mount, root and renames.
	DirPaths uint64
}

// counters is how many counters ward.c keeps (COUNTERS), in Stats' order.
const counters = 5

// countersOffset returns the byte offset of the counters (counts) in the scratch map's value,
// from the object's BTF.
func countersOffset(spec *ebpf.CollectionSpec) (int, error) {
	m := spec.Maps["scratch"]
	if m == nil {
		return 0, errors.New("the object has no scratch map")
	}
	st, ok := m.Value.(*btf.Struct)
	if ok {
		for _, f := range st.Members {
			if a, isArray := f.Type.(*btf.Array); isArray && f.Name == "counts" && a.Nelems == counters && f.Offset%64 == 0 {
				return int(f.Offset.Bytes()), nil
			}
		}
	}
	return 0, fmt.Errorf("the scratch map's value has no counts array of %d 64-bit counters", counters)
}

// Stats reads the kernel's counters, summed over CPUs. They are kept in each CPU's scratch
// buffer (ward.c, count), so a read copies every CPU's buffer, about 13 KiB each.
func (b *Backend) Stats() (Stats, error) {
	var st Stats
	raw, err := b.objs.Scratch.LookupBytes(uint32(0))
	if err != nil {
		return st, fmt.Errorf("read stats: %w", err)
	}
	// The kernel copies each CPU's value at a multiple of 8 bytes.
	stride := (int(b.objs.Scratch.ValueSize()) + 7) &^ 7
	dst := [counters]*uint64{&st.DroppedEvents, &st.Unresolved, &st.ByName, &st.DirNames, &st.DirPaths}
	for cpu := 0; cpu+stride <= len(raw); cpu += stride {
		for i, d := range dst {
			*d += binary.LittleEndian.Uint64(raw[cpu+b.countsAt+8*i:])
		}
	}
	return st, nil
}

// The kernel's counters as Prometheus metrics: Backend is a prometheus.Collector that reads
// them at each scrape, so the daemon's /metrics shows what only tests could see before.
var (
	droppedDesc = prometheus.NewDesc("ward_bpf_events_dropped_total",
		"Events the BPF-LSM programs could not queue because the ring buffer was full (the access was still decided).", nil, nil)
	unresolvedDesc = prometheus.NewDesc("ward_bpf_unresolved_paths_total",
		"Accesses the BPF-LSM programs denied because the path could not be resolved (fail closed).", nil, nil)
	byNameDesc = prometheus.NewDesc("ward_bpf_opens_decided_by_name_total",
		"File opens the BPF-LSM programs permitted without resolving the path: no rule names the file's name or, with directory rules, an ancestor's.", nil, nil)
	dirNamesDesc = prometheus.NewDesc("ward_bpf_dir_names_cached_total",
		"File opens under directory rules whose ancestors' names the BPF-LSM programs did not test again: their directory's entry said no rule names one.", nil, nil)
	dirPathsDesc = prometheus.NewDesc("ward_bpf_dir_paths_cached_total",
		"File opens under directory rules that the BPF-LSM programs decided by the file's own name: their directory's entry said no rule applies to the directory or above it.", nil, nil)
)

var _ prometheus.Collector = (*Backend)(nil)

// Describe implements prometheus.Collector.
func (b *Backend) Describe(ch chan<- *prometheus.Desc) {
	ch <- droppedDesc
	ch <- unresolvedDesc
	ch <- byNameDesc
	ch <- dirNamesDesc
	ch <- dirPathsDesc
}

// Collect implements prometheus.Collector: the counters summed over CPUs, none when they cannot
// be read (the backend is closed).
func (b *Backend) Collect(ch chan<- prometheus.Metric) {
	st, err := b.Stats()
	if err != nil {
		b.log.Warn("read BPF-LSM counters for metrics", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(st.DroppedEvents))
	ch <- prometheus.MustNewConstMetric(unresolvedDesc, prometheus.CounterValue, float64(st.Unresolved))
	ch <- prometheus.MustNewConstMetric(byNameDesc, prometheus.CounterValue, float64(st.ByName))
	ch <- prometheus.MustNewConstMetric(dirNamesDesc, prometheus.CounterValue, float64(st.DirNames))
	ch <- prometheus.MustNewConstMetric(dirPathsDesc, prometheus.CounterValue, float64(st.DirPaths))
}

// read turns ring-buffer records into events until Close. One record's buffer is reused
// (ReadInto), so reading allocates nothing per record beyond the Event.
func (b *Backend) read() {
	defer b.wg.Done()
	var rec ringbuf.Record
	for {
		err := b.rd.ReadInto(&rec)
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
