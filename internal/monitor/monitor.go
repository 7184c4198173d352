// Package monitor is Ward's system monitor: BPF programs on syscall tracepoints that report
// process, file and network activity, with each call's result, as enforcer.Events. The daemon
// attributes them with rules.Decide exactly as it does a backend's events, which gives the
// Audit alerts and, where no LSM can enforce, the alerts of what would have been blocked.
//
// The monitor observes; it never changes the outcome of a call. It works wherever syscall
// tracepoints do, which includes kernels that refuse LSM and fentry programs (docs/monitor.md).
package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
)

// Name is the Backend field of the monitor's events.
const Name = "monitor"

// Options configure a Monitor. The zero value traces every supported syscall of every process.
type Options struct {
	// Logger receives load and attach diagnostics; nil discards them.
	Logger *slog.Logger
	// Syscalls names the calls to trace (see Syscalls); empty means all. An untraced call
	// costs nothing: its tracepoint is not attached.
	Syscalls []string
	// IgnoreSelf drops the calls of the calling process (the daemon), whose own reads of
	// /proc and policy files would otherwise feed the monitor.
	IgnoreSelf bool
	// IgnorePIDs drops the calls of these processes (tgids).
	IgnorePIDs []uint32
	// RingBufferBytes is the size of the kernel ring buffer, a power of two multiple of the
	// page size; 0 means 4 MiB. Records that do not fit are counted in Stats.Lost.
	RingBufferBytes int
	// FlushInterval bounds how long a few events may wait in the ring buffer before the
	// reader collects them; 0 means 50ms. The kernel wakes the reader early once 64 KiB (or a
	// quarter of the ring) are waiting, so a busy machine is read in batches and a quiet one
	// with this delay at most. Negative wakes the reader for every record (costly).
	FlushInterval time.Duration
	// Buffer is the capacity of the Events channel; 0 means 1024. When the reader of
	// Events falls behind, the ring buffer fills and the kernel drops (and counts) records.
	Buffer int
	// Workload names the workload of an event from its cgroup id and pid, for Event.Workload.
	// It is called for every event, from the monitor's reader goroutine: it must be quick and
	// safe to call concurrently with the caller's own goroutines.
	Workload func(cgroupID uint64, pid uint32) string
	// NoMount stops New from mounting tracefs at /sys/kernel/tracing when it is absent.
	NoMount bool
}

// Stats counts what the monitor delivered and what it lost.
type Stats struct {
	// Events is the number of events sent on the Events channel.
	Events uint64
	// Lost is the number of records the kernel dropped because the ring buffer was full.
	Lost uint64
	// Unresolved counts paths that could not be read from the caller or made absolute
	// (the process or descriptor was gone when the event was decoded).
	Unresolved uint64
	// Unverified counts events whose acting executable could not be confirmed by inode.
	Unverified uint64
}

// Monitor is a loaded and attached system monitor.
type Monitor struct {
	log     *slog.Logger
	objs    monitorObjects
	links   []link.Link
	enabled []sysInfo // what is attached
	missing []string  // requested syscalls whose tracepoints this kernel lacks
	flush   time.Duration
	rd      *ringbuf.Reader
	events  chan enforcer.Event
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	dec     decoder

	// discard makes the reader drop records undecoded, so that the overhead benchmark can
	// tell the kernel's share from the decoder's.
	discard atomic.Bool

	sent                   atomic.Uint64
	unresolved, unverified atomic.Uint64
}

// New loads the monitor's programs and attaches them to the syscall tracepoints. It returns
// an error wrapping enforcer.ErrNotSupported when the kernel offers no tracepoints or refuses
// the programs.
func New(opts Options) (*Monitor, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	want, err := selectSyscalls(opts.Syscalls)
	if err != nil {
		return nil, err
	}
	if err := ensureTracefs(opts.NoMount); err != nil {
		return nil, err
	}

	spec, err := loadMonitor()
	if err != nil {
		return nil, fmt.Errorf("load monitor spec: %w", err)
	}
	size := opts.RingBufferBytes
	if size == 0 {
		size = 4 << 20
	}
	spec.Maps[monitorMapEvents].MaxEntries = uint32(size)
	flush := opts.FlushInterval
	if flush == 0 {
		flush = 50 * time.Millisecond
	}
	var wakeup uint64
	if flush > 0 {
		wakeup = min(64<<10, uint64(size)/4)
	}
	if err := spec.Variables["wakeup_bytes"].Set(wakeup); err != nil {
		return nil, fmt.Errorf("set wakeup threshold: %w", err)
	}

	m := &Monitor{log: log, done: make(chan struct{}), flush: flush}
	if err := spec.LoadAndAssign(&m.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			log.Error("monitor program rejected by the verifier", "error", fmt.Sprintf("%+v", ve))
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("load monitor: %w: %w", enforcer.ErrNotSupported, err)
		}
		return nil, fmt.Errorf("load monitor: %w", err)
	}
	if err := m.setup(opts, want); err != nil {
		m.closeKernel()
		return nil, err
	}

	buf := opts.Buffer
	if buf == 0 {
		buf = 1024
	}
	m.events = make(chan enforcer.Event, buf)
	m.dec.workload = opts.Workload
	m.wg.Add(1)
	go m.read()
	return m, nil
}

func selectSyscalls(names []string) ([]sysInfo, error) {
	if len(names) == 0 {
		return slices.Clone(syscalls), nil
	}
	var out []sysInfo
	for _, n := range names {
		i := slices.IndexFunc(syscalls, func(s sysInfo) bool { return s.name == n })
		if i < 0 {
			return nil, fmt.Errorf("monitor syscall %q: not supported (supported: %v)", n, Syscalls())
		}
		out = append(out, syscalls[i])
	}
	return out, nil
}

// ensureTracefs makes the tracepoints' ids readable: tracefs is not mounted at boot on every
// machine (ours among them).
func ensureTracefs(noMount bool) error {
	for _, p := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
	}
	if noMount {
		return fmt.Errorf("tracefs is not mounted: %w", enforcer.ErrNotSupported)
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mount tracefs: %w: %w", enforcer.ErrNotSupported, err)
	}
	return nil
}

func (m *Monitor) setup(opts Options, want []sysInfo) error {
	var ignore []uint32
	if opts.IgnoreSelf {
		ignore = append(ignore, uint32(os.Getpid()))
	}
	ignore = append(ignore, opts.IgnorePIDs...)
	for _, pid := range ignore {
		if err := m.objs.Ignored.Put(pid, uint8(1)); err != nil {
			return fmt.Errorf("ignore pid %d: %w", pid, err)
		}
	}
	for _, s := range want {
		if err := m.objs.Enabled.Put(uint32(s.nr), uint8(1)); err != nil {
			return fmt.Errorf("enable %s: %w", s.name, err)
		}
	}
	if err := m.attachAll(want); err != nil {
		return err
	}
	if len(m.enabled) == 0 {
		return fmt.Errorf("attach monitor: no syscall tracepoint of %v exists: %w", m.missing, enforcer.ErrNotSupported)
	}
	rd, err := ringbuf.NewReader(m.objs.Events)
	if err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	m.rd = rd
	return nil
}

// attachAll attaches the programs to the tracepoints of the wanted syscalls, recording those
// this kernel lacks.
func (m *Monitor) attachAll(want []sysInfo) error {
	m.enabled, m.missing = nil, nil
	// Exec events of successful calls come from sched_process_exec.
	if slices.ContainsFunc(want, func(s sysInfo) bool { return s.kind == kindExec }) {
		l, err := link.Tracepoint("sched", "sched_process_exec", m.objs.SchedExec, nil)
		if err != nil {
			return fmt.Errorf("attach sched_process_exec: %w", notSupported(err))
		}
		m.links = append(m.links, l)
	}
	for _, s := range want {
		if err := m.attach(s); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// Newer calls (fchmodat2) are absent from older kernels.
				m.missing = append(m.missing, s.name)
				m.log.Debug("syscall tracepoint absent", "syscall", s.name)
				continue
			}
			return fmt.Errorf("attach %s: %w", s.name, notSupported(err))
		}
		m.enabled = append(m.enabled, s)
	}
	return nil
}

func (m *Monitor) attach(s sysInfo) error {
	enter, err := link.Tracepoint("syscalls", "sys_enter_"+s.name, m.objs.SysEnter, nil)
	if err != nil {
		return err
	}
	exit, err := link.Tracepoint("syscalls", "sys_exit_"+s.name, m.objs.SysExit, nil)
	if err != nil {
		enter.Close()
		return err
	}
	m.links = append(m.links, enter, exit)
	return nil
}

// detach and reattach remove and restore the tracepoint links, for the overhead benchmark.
func (m *Monitor) detach() {
	closeLinks(m.links)
	m.links = nil
}

func (m *Monitor) reattach() error {
	return m.attachAll(slices.Clone(m.enabled))
}

func notSupported(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w: %w", enforcer.ErrNotSupported, err)
	}
	return err
}

// Ignore stops reporting the calls of process pid (a tgid) from now on, such as a helper the
// daemon starts.
func (m *Monitor) Ignore(pid uint32) error {
	if err := m.objs.Ignored.Put(pid, uint8(1)); err != nil {
		return fmt.Errorf("ignore pid %d: %w", pid, err)
	}
	return nil
}

// Traced returns the syscalls whose tracepoints are attached, and those requested but absent
// from this kernel.
func (m *Monitor) Traced() (attached, missing []string) {
	for _, s := range m.enabled {
		attached = append(attached, s.name)
	}
	return attached, slices.Clone(m.missing)
}

// Events delivers the monitor's events. It is closed by Close.
func (m *Monitor) Events() <-chan enforcer.Event { return m.events }

func (m *Monitor) read() {
	defer m.wg.Done()
	defer close(m.events)
	var rec ringbuf.Record
	for {
		if m.flush > 0 {
			m.rd.SetDeadline(time.Now().Add(m.flush))
		}
		if err := m.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // records below the wakeup threshold were read; wait again
			}
			if !errors.Is(err, ringbuf.ErrClosed) {
				m.log.Error("read monitor ring buffer", "error", err)
			}
			return
		}
		if m.discard.Load() {
			continue
		}
		ev, ok := m.dec.decode(rec.RawSample)
		m.unresolved.Store(m.dec.unresolved)
		m.unverified.Store(m.dec.unverified)
		if !ok {
			continue
		}
		select {
		case m.events <- ev:
			m.sent.Add(1)
		case <-m.done:
			return
		}
	}
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() (Stats, error) {
	s := Stats{Events: m.sent.Load(), Unresolved: m.unresolved.Load(), Unverified: m.unverified.Load()}
	var perCPU []uint64
	if err := m.objs.Lost.Lookup(uint32(0), &perCPU); err != nil {
		return s, fmt.Errorf("read lost counter: %w", err)
	}
	for _, n := range perCPU {
		s.Lost += n
	}
	return s, nil
}

// Close detaches the programs, stops the reader and closes Events. It is safe to call twice.
func (m *Monitor) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		if m.rd != nil {
			err = m.rd.Close()
		}
		m.wg.Wait()
		if cerr := m.closeKernel(); err == nil {
			err = cerr
		}
	})
	return err
}

func (m *Monitor) closeKernel() error {
	errs := closeLinks(m.links)
	m.links = nil
	if m.rd != nil && m.events == nil {
		errs = append(errs, m.rd.Close())
	}
	errs = append(errs, m.objs.Close())
	return errors.Join(errs...)
}

// closeLinks closes links concurrently: each detach from a syscall tracepoint waits for a
// grace period (tens of milliseconds on kernels whose syscall tracepoints may fault), and
// one after another they took about 5 s for the full set.
func closeLinks(links []link.Link) []error {
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Go(func() { errs[i] = l.Close() })
	}
	wg.Wait()
	return errs
}
