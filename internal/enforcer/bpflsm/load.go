// Loading: the programs and maps from the compiled object, attached to their hooks.

package bpflsm

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
)

// permissionError is an EPERM with the message the kernel's refusal deserves.
type permissionError string

func (e permissionError) Error() string { return string(e) }
func (e permissionError) Unwrap() error { return unix.EPERM }

// notSupported marks the kernel's refusals (LSM programs not allowed, the
// helpers or map types missing) as enforcer.ErrNotSupported, so that
// selection falls back with the reason.
func notSupported(err error) error {
	if errors.Is(err, unix.EPERM) {
		// cilium/ebpf suggests the memlock limit on any EPERM; New has removed it, so the hint
		// would send the reader the wrong way.
		msg := strings.Replace(err.Error(), " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", "", 1)
		return fmt.Errorf("bpf: %w: the kernel refuses BPF-LSM programs even to this privileged process (lockdown, a security policy or the platform): %w", enforcer.ErrNotSupported, permissionError(msg))
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("bpf: %w: %w", enforcer.ErrNotSupported, err)
	}
	return err
}

// New loads and attaches the programs. With no rules applied they permit
// everything after one map lookup; the first Apply detaches those of the
// operations no workload has rules of (attachFor).
func New(opts Options) (*Backend, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Host == nil {
		opts.Host = OSHost{}
	}
	// A wrong PinDir is refused before the (slow) verification.
	var predecessors []string
	if opts.PinDir != "" {
		mounted, err := MountBPFFS(filepath.Dir(opts.PinDir))
		if err != nil {
			return nil, err
		}
		if mounted {
			opts.Logger.Info("mounted a BPF filesystem for the pins", "path", filepath.Dir(opts.PinDir))
		}
		if predecessors, err = preparePinDir(opts.PinDir); err != nil {
			return nil, err
		}
	}
	spec, err := loadWard()
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	countsAt, err := countersOffset(spec)
	if err != nil {
		return nil, err
	}
	if opts.MaxRules != 0 {
		spec.Maps["rules"].MaxEntries = opts.MaxRules
		spec.Maps["globs"].MaxEntries = opts.MaxRules
	}
	if opts.ZeroSeed {
		for _, m := range spec.Maps {
			if m.Type == ebpf.Hash {
				m.Flags |= unix.BPF_F_ZERO_SEED
			}
		}
	}
	b := &Backend{
		log:     opts.Logger,
		host:    opts.Host,
		ev:      make(chan enforcer.Event, 1024),
		done:    make(chan struct{}),
		applied: map[uint64]*applied{},
		byID:    map[string]*applied{},
		owner:   map[uint64]string{},
		links:   map[string]link.Link{},
		idle:    map[string]time.Time{},

		detachAfter: detachAfter,

		predecessors: predecessors,
		countsAt:     countsAt,
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it. Removing
	// the limit also keeps cilium/ebpf from blaming it when a kernel refuses LSM programs.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			b.log.Error("verifier rejected program", "error", fmt.Sprintf("%+v", verr))
		}
		return nil, notSupported(fmt.Errorf("load programs: %w", err))
	}
	// The Collection names every program and map as the spec does; objs, the typed view the
	// loader writes through, takes them over (and closes them), the names stay here.
	b.progs, b.maps = maps.Clone(coll.Programs), maps.Clone(coll.Maps)
	err = coll.Assign(&b.objs)
	coll.Close() // what objs did not take: nothing after a successful Assign
	if err != nil {
		return nil, fmt.Errorf("load programs: %w", err)
	}
	if b.keyCounts.mem, err = b.objs.KeyCounts.Memory(); err != nil {
		b.closeKernel()
		return nil, fmt.Errorf("map key_counts: %w", err)
	}
	if b.grace, err = newGraceWaiter(); err != nil {
		b.closeKernel()
		return nil, err
	}
	if b.entries, b.unmapEntries, err = mapWorkloadEntries(b.objs.WlSlots, b.objs.WlEntries, b.grace); err != nil {
		b.closeKernel()
		return nil, err
	}
	b.linkMu.Lock()
	err = b.attachFor(allOps)
	b.linkMu.Unlock()
	if err != nil {
		b.closeKernel()
		return nil, notSupported(err)
	}
	if opts.PinDir != "" {
		b.instance = filepath.Join(opts.PinDir, instanceName())
		if err := b.pin(b.instance); err != nil {
			// Nothing of this instance may stay attached: the pins would
			// outlive the failed New.
			err = errors.Join(err, os.RemoveAll(b.instance))
			b.closeKernel()
			return nil, err
		}
	}
	b.rd, err = ringbuf.NewReader(b.objs.Events)
	if err != nil {
		b.closeKernel()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	b.wg.Add(1)
	go b.read()
	return b, nil
}

// progOps says which operations' rules each program decides, as opBits: a program is attached
// only while some workload has rules of one of them (attachFor), because even a program that
// returns at once costs the hook a trampoline: capable() took 1.8x its time with Ward attached
// and no capability rules anywhere (docs/performance.md). The path hooks that invalidate
// per-inode cache entries (unlink, link, rename: moved, ward_epoch; the mount hooks: ward_epoch)
// serve the process operation too: file_open's per-inode cache decides exec opens, and an entry
// must never outlive a rename it did not see. Entries are tied to a workload generation, and a
// generation with file or process rules keeps these hooks attached for its whole life (attachFor
// runs before ward_config names a new operation), so detaching them never leaves a stale entry
// usable. TestProgOpsCoversEveryProgram keeps this table whole.
var progOps = map[string]uint32{
	wardProgWardFileOpen:       opBits(opFile, opProcess),
	wardProgWardFilePermission: opBits(opFile),
	wardProgWardMmapFile:       opBits(opProcess),
	wardProgWardPathUnlink:     opBits(opFile, opProcess),
	wardProgWardPathLink:       opBits(opFile, opProcess),
	wardProgWardPathRename:     opBits(opFile, opProcess),
	wardProgWardSbMount:        opBits(opFile, opProcess),
	wardProgWardMoveMount:      opBits(opFile, opProcess),
	wardProgWardPathChroot:     opBits(opFile, opProcess),
	wardProgWardPathRmdir:      opBits(opFile),
	wardProgWardPathMkdir:      opBits(opFile),
	wardProgWardPathMknod:      opBits(opFile),
	wardProgWardPathSymlink:    opBits(opFile),
	wardProgWardPathChmod:      opBits(opFile),
	wardProgWardPathChown:      opBits(opFile),
	wardProgWardPathTruncate:   opBits(opFile),
	wardProgWardSocketCreate:   opBits(opNetwork),
	wardProgWardSocketConnect:  opBits(opNetwork),
	wardProgWardSocketAccept:   opBits(opNetwork),
	wardProgWardSocketBind:     opBits(opNetwork),
	wardProgWardSocketListen:   opBits(opNetwork),
	wardProgWardSocketSendmsg:  opBits(opNetwork),
	wardProgWardSocketRecvmsg:  opBits(opNetwork),
	wardProgWardCapable:        opBits(opCapabilities),
}

// detachAfter is how long the programs of an operation stay attached once no workload has rules
// of it (attachFor says why they wait).
const detachAfter = 30 * time.Second

// opBits is a set of operations, one bit per op.
func opBits(ops ...uint8) uint32 {
	var bits uint32
	for _, op := range ops {
		bits |= 1 << op
	}
	return bits
}

// allOps is every operation: New attaches every program, which proves that the kernel runs
// them before selection settles on this backend.
var allOps = opBits(opFile, opProcess, opNetwork, opCapabilities)

// usedOps is the set of operations that workload flags (one byte per op) have rules of.
func usedOps(flags uint32) uint32 {
	var bits uint32
	for op := uint8(0); op < numOps; op++ {
		if flags&(uint32(wfRules)<<(8*op)) != 0 {
			bits |= 1 << op
		}
	}
	return bits
}

// opSetNames names the operations of a set of opBits, for logs.
func opSetNames(ops uint32) []string {
	var names []string
	for op, name := range opNames {
		if ops&(1<<op) != 0 {
			names = append(names, name)
		}
	}
	return names
}

// attachFor attaches the programs of the operations in ops and records ops as the operations
// some workload has rules of; called with linkMu held. The programs of an operation no longer in
// ops stay attached for detachAfter (detachIdle): detaching makes the kernel rebuild each hook's
// trampoline, which took 1.5 s for the file programs in the VM, and a policy edit that moves rules
// from one pod to another, applied workload by workload, removes an operation's last rules just
// before it adds them back. A hook without rules of its operation returns at the config check, so
// a program left attached costs its trampoline, not a decision.
func (b *Backend) attachFor(ops uint32) error {
	names, progs := b.programs()
	var added []string
	defer func() {
		if len(added) > 0 {
			b.log.Info("BPF-LSM programs attached for the operations with rules", "operations", opSetNames(ops),
				"attached", added)
		}
	}()
	now := time.Now()
	for i, n := range names {
		if progOps[n]&ops == 0 {
			if _, idle := b.idle[n]; b.links[n] != nil && !idle {
				b.idle[n] = now
			}
			continue
		}
		delete(b.idle, n)
		if b.links[n] != nil {
			continue
		}
		l, err := link.AttachLSM(link.LSMOptions{Program: progs[i]})
		if err != nil {
			return fmt.Errorf("attach %s: %w", n, err)
		}
		if b.instance != "" {
			if err := l.Pin(filepath.Join(b.instance, linkPin+n)); err != nil {
				return errors.Join(fmt.Errorf("pin link %s: %w", n, err), l.Close())
			}
		}
		b.links[n] = l
		added = append(added, n)
	}
	b.ops = ops
	if len(b.idle) > 0 && b.detachTimer == nil {
		b.armDetach(b.detachAfter)
	}
	return nil
}

// armDetach sets detachTimer to detach the programs idle for detachAfter, in d; called with
// linkMu held.
func (b *Backend) armDetach(d time.Duration) {
	b.detachTimer = time.AfterFunc(d, func() { b.detachIdle(false) })
}

// detachIdle detaches the programs that no workload has needed for detachAfter (every idle
// program with all, for tests that need the attachments settled), one at a time so that an Apply
// waits for at most one detach, and arms the timer again for the programs that became idle
// later. It runs on detachTimer.
func (b *Backend) detachIdle(all bool) {
	var removed []string
	var after time.Duration // detachAfter, read under linkMu
	defer func() {
		if len(removed) > 0 {
			b.log.Info("BPF-LSM programs detached: no workload has had rules of their operations for "+after.String(),
				"detached", removed)
		}
	}()
	for {
		b.linkMu.Lock()
		select {
		case <-b.done:
			b.linkMu.Unlock()
			return
		default:
		}
		after = b.detachAfter
		var name string
		var first time.Time
		for n, since := range b.idle {
			if first.IsZero() || since.Before(first) {
				name, first = n, since
			}
		}
		if name == "" || (!all && time.Since(first) < after) {
			if b.detachTimer != nil {
				b.detachTimer.Stop()
				b.detachTimer = nil
			}
			if name != "" {
				b.armDetach(time.Until(first.Add(after)))
			}
			b.linkMu.Unlock()
			return
		}
		delete(b.idle, name)
		if err := b.detachOne(name); err != nil {
			b.log.Warn("BPF-LSM program not detached; it stays attached, deciding nothing", "program", name, "error", err.Error())
		} else {
			removed = append(removed, name)
		}
		b.linkMu.Unlock()
	}
}

// detachOne detaches one program (unpinning it when the Backend pins); called with linkMu held.
func (b *Backend) detachOne(n string) error {
	l := b.links[n]
	if b.instance != "" {
		if err := l.Unpin(); err != nil {
			return fmt.Errorf("unpin link %s: %w", n, err) // still attached, and said so
		}
	}
	delete(b.links, n)
	if err := l.Close(); err != nil {
		return fmt.Errorf("detach %s: %w", n, err)
	}
	return nil
}

// detach closes this process's links, keeping maps and programs: without PinDir the
// programs leave their hooks (the benchmark's no-program baseline); pinned links stay
// attached (Close with PinDir).
func (b *Backend) detach() error {
	b.linkMu.Lock()
	defer b.linkMu.Unlock()
	if b.detachTimer != nil {
		b.detachTimer.Stop()
		b.detachTimer = nil
	}
	var errs []error
	for _, l := range b.links {
		errs = append(errs, l.Close())
	}
	clear(b.links)
	clear(b.idle)
	return errors.Join(errs...)
}

// programs lists the loaded programs by their names in the CollectionSpec, in name order, so
// that a program added to ward.c is attached and pinned without a change here (every program in
// ward.c is an LSM program).
func (b *Backend) programs() ([]string, []*ebpf.Program) {
	names := slices.Sorted(maps.Keys(b.progs))
	progs := make([]*ebpf.Program, len(names))
	for i, n := range names {
		progs[i] = b.progs[n]
	}
	return names, progs
}
