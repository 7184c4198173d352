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
	names, progs := b.programs()
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
