// Package bpflsm enforces rule sets with BPF programs on the kernel's LSM hooks
// (file_open, the path hooks, the socket hooks, capable). Translation (rules.Set -> map contents,
// translate.go) is pure; this file loads, attaches and fills the maps.
// docs/bpflsm.md describes the maps, what is enforced and what is not.
package bpflsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Options configure the backend.
type Options struct {
	Logger *slog.Logger
	// MaxRules is the capacity of the rule map (entries over all workloads,
	// counting an update's old and new generation together). Default 1<<20.
	MaxRules uint32
	// Host answers symlink and inode questions; default OSHost.
	Host Host
	// PinDir, when set, is a directory on a BPF filesystem (the daemon
	// passes <bpffs>/ward) where New pins the links and maps, so that
	// enforcement outlives the process: Close then leaves the programs
	// attached with the last applied rules, and the next Backend with the
	// same PinDir takes over without a gap (persist.go). Uninstall(PinDir)
	// detaches them.
	PinDir string
	// ZeroSeed creates the hash maps with BPF_F_ZERO_SEED: the same keys land in the same
	// buckets on every boot, so that a lookup costs the same from one benchmark run to the
	// next (make bench-vm). For benchmarks only: a known seed lets whoever chooses paths aim
	// them at one bucket.
	ZeroSeed bool
}

// OSHost is the real filesystem.
type OSHost struct{}

// EvalSymlinks implements Host.
func (OSHost) EvalSymlinks(p string) (string, error) { return filepath.EvalSymlinks(p) }

// Inode implements Host.
func (OSHost) Inode(p string) (uint32, uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return 0, 0, false
	}
	// The kernel encodes devices as major<<20|minor, userspace differently.
	return unix.Major(st.Dev)<<20 | unix.Minor(st.Dev), st.Ino, true
}

// Backend is the BPF-LSM enforcer.
type Backend struct {
	log   *slog.Logger
	host  Host
	objs  wardObjects
	links []link.Link // in namedPrograms' order
	// instance is this Backend's pin directory ("" without PinDir);
	// predecessors are the older instances it retires after its first
	// successful Apply.
	instance     string
	predecessors []string
	rd           *ringbuf.Reader
	ev           chan enforcer.Event
	done         chan struct{}
	wg           sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	applyMu sync.Mutex             // serializes Apply calls
	locks   enforcer.WorkloadLocks // serializes the operations on one workload ID

	mu      sync.Mutex          // guards everything below; held only briefly
	applied map[uint64]*applied // by workload key, for events
	byID    map[string]*applied
	owner   map[uint64]string // workload key -> id, reserved before writing
	// WarningBook holds what the applied sets do not enforce as written
	// (enforcer.Support), for every workload: it implements enforcer.Warner.
	enforcer.WarningBook
	gen uint32 // the last generation used
}

// applied is what is loaded for one workload.
type applied struct {
	key   uint64
	keys  []wardRuleKey
	globs []wardGlobKey
	tr    *Translation
	id    string
}

var (
	_ enforcer.Backend         = (*Backend)(nil)
	_ enforcer.WorkloadApplier = (*Backend)(nil)
)

// Factory returns the enforcer.Factory that LSM selection calls.
func Factory(opts Options) enforcer.Factory {
	return func(ctx context.Context) (enforcer.Backend, error) { return New(opts) }
}

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
// everything after one map lookup.
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

		predecessors: predecessors,
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it. Removing
	// the limit also keeps cilium/ebpf from blaming it when a kernel refuses LSM programs.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	if err := spec.LoadAndAssign(&b.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			b.log.Error("verifier rejected program", "error", fmt.Sprintf("%+v", verr))
		}
		return nil, notSupported(fmt.Errorf("load programs: %w", err))
	}
	if err := b.attach(); err != nil {
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

// attach attaches every program to its hook.
func (b *Backend) attach() error {
	names, progs := namedPrograms(&b.objs.wardPrograms)
	for i, p := range progs {
		l, err := link.AttachLSM(link.LSMOptions{Program: p})
		if err != nil {
			return fmt.Errorf("attach %s: %w", names[i], err)
		}
		b.links = append(b.links, l)
	}
	return nil
}

// detach removes the programs from their hooks, keeping maps and programs;
// the benchmark uses it for its no-program baseline.
func (b *Backend) detach() error {
	var errs []error
	for _, l := range b.links {
		errs = append(errs, l.Close())
	}
	b.links = nil
	return errors.Join(errs...)
}

// Name implements enforcer.Backend.
func (b *Backend) Name() string { return enforcer.BPF }

// Limitations implements enforcer.Limiter: the ways around a path rule that this backend does not
// close (docs/bpflsm.md, "Not enforced"), said at start and by ward probe.
func (b *Backend) Limitations() []string {
	return []string{
		"rules name paths: a hard link made before the policy to a file inside a protected directory reaches it by its other name (exact path rules are matched by inode as well, directory rules are not)",
		"renaming a directory above a protected directory, one no rule names, moves the protected files out of the rule's path",
		"a bind mount or an overlay mount of a protected directory reaches its files under another path (mounting needs CAP_SYS_ADMIN: block it with a capabilities rule)",
		"a copy or a memfd of a blocked program runs: rules name paths, not contents",
		"reads, writes and executable mappings of a file already open are checked against Block rules only: an allow-list posture and Audit rules apply when the file is opened",
		"allowedArgs is not enforced: such rules are skipped",
	}
}

// Events implements enforcer.Backend.
func (b *Backend) Events() <-chan enforcer.Event { return b.ev }

// Apply implements enforcer.Backend. Every set is translated before the kernel
// is touched (an error changes nothing); then each workload is replaced as by
// ApplyWorkload and the workloads absent from sets are removed as by
// RemoveWorkload. At no moment is a workload without its rules. Calls to
// Apply are serialized; an ApplyWorkload running meanwhile for a workload
// absent from sets may be undone by it (Apply states everything).
func (b *Backend) Apply(ctx context.Context, sets []*rules.Set) error {
	type one struct {
		id    string
		tr    *Translation
		warns []enforcer.Warning
	}
	all := make([]one, 0, len(sets))
	keys := make(map[uint64]string, len(sets))
	ids := make(map[string]bool, len(sets))
	for _, s := range sets {
		if awaitingCgroup(&s.Workload) {
			continue
		}
		id := s.Workload.ID()
		tr, warns, err := b.translate(s)
		if err != nil {
			return err
		}
		if other, dup := keys[tr.Workload]; dup {
			return fmt.Errorf("workload %s: workload key %d is also %s's", id, tr.Workload, other)
		}
		if ids[id] {
			return fmt.Errorf("workload %s: two sets", id)
		}
		keys[tr.Workload] = id
		ids[id] = true
		all = append(all, one{id, tr, warns})
	}
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	for _, o := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.applyOne(o.id, o.tr, o.warns); err != nil {
			return err
		}
	}
	b.mu.Lock()
	var gone []string
	for id := range b.byID {
		if !ids[id] {
			gone = append(gone, id)
		}
	}
	b.mu.Unlock()
	for _, id := range gone {
		if err := b.removeOne(id); err != nil {
			return err
		}
	}
	// This instance now enforces the complete state: older pinned
	// instances may go. Before this point they kept enforcing theirs.
	if len(b.predecessors) > 0 {
		if err := b.retire(); err != nil {
			return fmt.Errorf("rules applied, but: %w", err)
		}
	}
	return nil
}

// ApplyWorkload implements enforcer.WorkloadApplier: it adds or replaces
// set.Workload's rules with the same guarantees as Apply, leaving the other
// workloads alone. Calls for different workloads run concurrently (the map
// writes, the bulk of the work, take no shared lock); calls for the same
// workload are serialized.
func (b *Backend) ApplyWorkload(ctx context.Context, set *rules.Set) error {
	if awaitingCgroup(&set.Workload) {
		return nil
	}
	tr, warns, err := b.translate(set)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.applyOne(set.Workload.ID(), tr, warns)
}

// RemoveWorkload implements enforcer.WorkloadApplier: the workload's rules
// are removed (its tasks then fall back to the host workload's rules, as
// any task outside a registered container). Unknown ids are a no-op.
func (b *Backend) RemoveWorkload(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.removeOne(id)
}

// awaitingCgroup reports a container registered before the runtime created it (NRI's
// CreateContainer): it has no cgroup, so no process of it can run and there is nothing to load
// yet. Its rules go in when the registration with its cgroup arrives (StartContainer), which the
// runtime waits for before the first instruction. Refusing it instead failed every pod's
// CreateContainer on a real node.
func awaitingCgroup(w *workload.Workload) bool {
	return w.Kind == workload.KindContainer && w.CgroupID == 0
}

func (b *Backend) translate(s *rules.Set) (*Translation, []enforcer.Warning, error) {
	tr, err := Translate(s, b.host)
	if err != nil {
		return nil, nil, fmt.Errorf("workload %s: %w", s.Workload.ID(), err)
	}
	return tr, tr.Warnings, nil
}

// applyOne writes a new generation of the workload's entries, switches its
// workload entry to it in one map update and deletes the old generation. A
// workload whose key changed (a container in a new cgroup) gets the new key
// before the old one is removed.
func (b *Backend) applyOne(id string, tr *Translation, warns []enforcer.Warning) error {
	defer b.locks.Lock(id)()
	wk := tr.Workload
	b.mu.Lock()
	if owner, taken := b.owner[wk]; taken && owner != id {
		b.mu.Unlock()
		return fmt.Errorf("workload %s: workload key %d is %s's", id, wk, owner)
	}
	b.owner[wk] = id
	old := b.byID[id]
	// Generations are never reused, not even by a workload removed and
	// added again, so per-inode cache entries of an old state never match.
	b.gen++
	gen := b.gen
	b.mu.Unlock()

	a, err := b.write(wk, gen, tr)
	if err != nil {
		b.mu.Lock()
		if old == nil || old.key != wk {
			delete(b.owner, wk)
		}
		b.mu.Unlock()
		return fmt.Errorf("workload %s: %w", id, err)
	}
	a.id = id
	a.key = wk
	var errs []error
	if old != nil {
		if old.key != wk {
			if err := b.objs.Workloads.Delete(old.key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, fmt.Errorf("workload %s: remove old key %d: %w", id, old.key, err))
			}
		}
		b.deleteKeys(old.keys, old.globs)
	}
	b.mu.Lock()
	if old != nil && old.key != wk {
		delete(b.applied, old.key)
		delete(b.owner, old.key)
	}
	b.applied[wk] = a
	b.byID[id] = a
	b.SetWarnings(id, warns)
	err = b.writeConfig()
	b.mu.Unlock()
	return errors.Join(append(errs, err)...)
}

// removeOne deletes the workload entry first (the hooks stop using the
// workload), then its rule entries.
func (b *Backend) removeOne(id string) error {
	defer b.locks.Lock(id)()
	b.mu.Lock()
	a := b.byID[id]
	b.mu.Unlock()
	if a == nil {
		return nil
	}
	if err := b.objs.Workloads.Delete(a.key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("workload %s: remove: %w", id, err)
	}
	b.deleteKeys(a.keys, a.globs)
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.applied, a.key)
	delete(b.byID, id)
	delete(b.owner, a.key)
	b.DropWarnings(id)
	return b.writeConfig()
}

// writeConfig writes ward_config: the number of registered containers, the
// operations some workload has rules of and the host workload's flags;
// called with b.mu held, after the workload entries exist (or are gone), so
// that the writes happen in the order of the changes. Hooks look a task's
// cgroup up only while some container is registered, return at once for an
// operation no workload has rules of, and look the host entry up only when
// it has rules of the hook's operation.
func (b *Backend) writeConfig() error {
	var cfg wardConfig
	for wk, a := range b.applied {
		if wk != HostKey {
			cfg.Containers++
		} else {
			cfg.HostFlags = a.tr.Flags
		}
		cfg.Ops |= a.tr.Flags & (uint32(wfRules) * 0x01010101)
	}
	if err := b.objs.WardConfig.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// write puts generation gen of a workload's entries and then switches its
// workload entry to it. On error it removes what it wrote; the workload
// entry then still names the previous generation.
func (b *Backend) write(wk uint64, gen uint32, tr *Translation) (*applied, error) {
	keys := make([]wardRuleKey, 0, len(tr.Entries))
	for _, k := range tr.SortedKeys() {
		v := tr.Entries[k]
		mk := wardRuleKey{Cgroup: k.Workload, Hash: k.Hash, Src: k.Src, Gen: gen, Op: k.Op, Kind: k.Kind}
		mv := wardRuleVal{Exact: v.Exact, Direct: v.Direct, Recursive: v.Recursive}
		if err := b.objs.Rules.Put(&mk, &mv); err != nil {
			b.deleteKeys(keys, nil)
			return nil, fmt.Errorf("write rule entry %d of %d: %w", len(keys)+1, len(tr.Entries), err)
		}
		keys = append(keys, mk)
	}
	var globs []wardGlobKey
	for k, v := range tr.Globs {
		mk := wardGlobKey{Cgroup: k.Workload, Gen: gen, State: k.State, Op: k.Op, Byte: k.Byte}
		mv := wardGlobVal{Next: v.Next, Accept: v.Accept}
		if err := b.objs.Globs.Put(&mk, &mv); err != nil {
			b.deleteKeys(keys, globs)
			return nil, fmt.Errorf("write pattern transition %d of %d: %w", len(globs)+1, len(tr.Globs), err)
		}
		globs = append(globs, mk)
	}
	audited := uint32(0)
	if tr.Audited {
		audited = 1
	}
	wv := wardWlVal{Gen: gen, Flags: tr.Flags, Audited: audited, DirDepths: tr.DirDepths, ExactDepths: tr.ExactDepths, Codes: tr.Codes}
	if err := b.objs.Workloads.Put(wk, &wv); err != nil {
		b.deleteKeys(keys, globs)
		return nil, fmt.Errorf("switch generation: %w", err)
	}
	return &applied{keys: keys, globs: globs, tr: tr}, nil
}

func (b *Backend) deleteKeys(keys []wardRuleKey, globs []wardGlobKey) {
	for i := range keys {
		if err := b.objs.Rules.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			b.log.Warn("delete rule entry", "error", err)
		}
	}
	for i := range globs {
		if err := b.objs.Globs.Delete(&globs[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			b.log.Warn("delete pattern transition", "error", err)
		}
	}
}

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

// Close implements enforcer.Backend. Without PinDir it detaches the
// programs. With PinDir it only releases this process's handles: the pinned
// links stay attached and the maps keep the last applied rules. Calls after
// the first return the first's result.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		var err error
		if b.rd != nil {
			err = b.rd.Close()
		}
		b.wg.Wait()
		close(b.ev)
		b.closeErr = errors.Join(err, b.closeKernel())
	})
	return b.closeErr
}

func (b *Backend) closeKernel() error {
	return errors.Join(b.detach(), b.objs.Close())
}

// Event flags (bpf/ward.c enum event_flag).
const (
	efWrite      = uint32(wardEventFlagEF_WRITE)
	efTTY        = uint32(wardEventFlagEF_TTY)
	efUnresolved = uint32(wardEventFlagEF_UNRESOLVED)
	efInode      = uint32(wardEventFlagEF_INODE)
	efNoSource   = uint32(wardEventFlagEF_NO_SOURCE)
)

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

func cstr(b []int8) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(b[i])
	}
	return string(out)
}

// convert turns a kernel record into an Event whose Access rules.Decide can
// attribute.
func (b *Backend) convert(e *wardEvent) enforcer.Event {
	b.mu.Lock()
	a := b.applied[e.Cgroup]
	b.mu.Unlock()
	ev := enforcer.Event{
		Backend: enforcer.BPF,
		PID:     e.Tgid,
		PPID:    e.Ppid,
		UID:     e.Uid,
		Comm:    cstr(e.Comm[:]),
		Errno:   int(e.Errno),
	}
	if a != nil {
		ev.Workload = a.id
	}
	acc := rules.Access{
		UID:    e.Uid,
		Owner:  e.Owner,
		Write:  e.Flags&efWrite != 0,
		TTY:    e.Flags&efTTY != 0,
		Source: cstr(e.Source[:]),
	}
	if acc.Source == "" && a != nil {
		acc.Source = a.tr.Sources[e.Src]
	}
	if acc.Source == "" {
		acc.Source = enforcer.Executable(e.Tgid)
	}
	// KubeArmor's Data names the system call and its flags; what Ward adds follows.
	detail := enforcer.SyscallData(e.Syscall, e.Args)
	switch uint8(e.Op) {
	case opFile, opProcess:
		acc.Op = policy.OpFile
		if uint8(e.Op) == opProcess {
			acc.Op = policy.OpProcess
		}
		acc.Path = cstr(e.Path[:])
		if e.Flags&efUnresolved != 0 {
			detail += fmt.Sprintf(" unresolved path (d_path: %d): denied, fail closed", e.PathLen)
		}
		if a != nil {
			if alias := a.tr.Alias(acc.Path); alias != acc.Path {
				detail += " opened=" + acc.Path
				acc.Path = alias
			}
		}
		if e.Flags&efInode != 0 && a != nil {
			// Decided by inode: attribute to the rule's path, keep the opened one.
			detail += " opened=" + acc.Path
			for _, p := range a.tr.Inodes {
				if st, err := os.Stat(acc.Path); err == nil {
					if st2, err := os.Stat(p); err == nil && os.SameFile(st, st2) {
						acc.Path = p
						break
					}
				}
			}
		}
	case opNetwork:
		acc.Op = policy.OpNetwork
		acc.Family = familyName(e.Family)
		acc.SockType = typeName(e.Type)
		acc.Protocol = protoName(e.Family, e.Type, e.Protocol)
		if name, ok := socketHooks[wardSocketHook(e.Hook)]; ok {
			detail += " hook=" + name
		}
	case opCapabilities:
		acc.Op = policy.OpCapabilities
		acc.Capability = policy.CapabilityName(int(e.Cap))
	}
	if e.Flags&efNoSource != 0 {
		detail += " source unresolved"
	}
	ev.Access = acc
	ev.Detail = strings.TrimSpace(detail)
	return ev
}

// socketHooks names bpf/ward.c's socket hooks (event.hook).
var socketHooks = map[wardSocketHook]string{
	wardSocketHookHOOK_CREATE:  "socket_create",
	wardSocketHookHOOK_CONNECT: "socket_connect",
	wardSocketHookHOOK_ACCEPT:  "socket_accept",
	wardSocketHookHOOK_BIND:    "socket_bind",
	wardSocketHookHOOK_LISTEN:  "socket_listen",
	wardSocketHookHOOK_SENDMSG: "socket_sendmsg",
	wardSocketHookHOOK_RECVMSG: "socket_recvmsg",
}

func familyName(f int32) string { return policy.AddressFamilyName(int(f)) }

func typeName(t int32) string {
	for k, v := range sockTypes {
		if int32(v) == t && k != "dccp" {
			return k
		}
	}
	if t == 6 {
		return "dccp"
	}
	return strconv.Itoa(int(t))
}

func protoName(family, typ, proto int32) string {
	if proto == 0 && (family == unix.AF_INET || family == unix.AF_INET6) {
		switch typ {
		case 1:
			return "tcp"
		case 2:
			return "udp"
		}
	}
	for k, v := range protoNumbers {
		if int32(v) == proto {
			return k
		}
	}
	return ""
}
