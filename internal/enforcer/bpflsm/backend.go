// Package bpflsm enforces rule sets with BPF programs on the kernel's LSM hooks
// (file_open, the path hooks, the socket hooks, capable). Translation (rules.Set -> map contents,
// translate.go) is pure; load.go loads and attaches the programs, apply.go fills the maps, read.go
// reads the ring buffer and decode.go turns its records into events; this file holds the Backend.
// docs/bpflsm.md describes the maps, what is enforced and what is not.
package bpflsm

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
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

// MountRoot implements Host with statx's STATX_ATTR_MOUNT_ROOT, following symlinks; true
// where the kernel does not report it (before Linux 5.8).
func (OSHost) MountRoot(p string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, 0, 0, &stx); err != nil {
		return false
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return true
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

// HardLinks implements Host: it walks dir without following symlinks.
func (OSHost) HardLinks(dir string, recursive bool, limit int) ([]string, bool) {
	var out []string
	n := 0
	complete := true
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skipped, as a path the kernel still matches by path
		}
		if n++; n > limit {
			complete = false
			return filepath.SkipAll
		}
		if d.IsDir() {
			if p != dir && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, complete
}

// Backend is the BPF-LSM enforcer.
type Backend struct {
	log  *slog.Logger
	host Host
	objs wardObjects
	// progs and maps are the loaded objects by their names in the CollectionSpec; objs
	// owns them.
	progs map[string]*ebpf.Program
	maps  map[string]*ebpf.Map
	// countsAt is where the counters are in a scratch buffer (countersOffset).
	countsAt int
	// linkMu guards the attachments: links, the attached programs by name; ops, the operations
	// (opBits) some workload had rules of at the last writeConfig; idle, since when each attached
	// program that no operation in ops needs has been so; detachTimer, armed while idle is not
	// empty, to detach them detachAfter later. writeConfig takes it inside mu.
	linkMu      sync.Mutex
	links       map[string]link.Link
	ops         uint32
	idle        map[string]time.Time
	detachTimer *time.Timer
	detachAfter time.Duration
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
	// keyCounts keeps key_counts, the kernel's counts of the name and inode keys in rules.
	keyCounts keyCounts
	// grace waits for the running programs before old generations' keys are deleted.
	grace *graceWaiter
	// entries keeps wl_entries and wl_slots, where the workload entries are; unmapEntries
	// unmaps the slots' memory.
	entries      *workloadEntries
	unmapEntries func() error

	mu      sync.Mutex          // guards everything below; held only briefly
	applied map[uint64]*applied // by workload key, for events
	byID    map[string]*applied
	owner   map[uint64]string // workload key -> id, reserved before writing
	// WarningBook holds what the applied sets do not enforce as written
	// (enforcer.Support), for every workload: it implements enforcer.Warner.
	enforcer.WarningBook
	gen uint32 // the last generation used
	// watched is ward_config.names: the names of the translations' filters, whose
	// directories' renames the kernel counts (ward_epoch[1]). It grows as translations need
	// names, and is cut back to the applied translations' names when a call that changes them
	// ends and no translation is under way (shrinkWatched).
	watched NameFilter
	// translating counts the Apply and ApplyWorkload calls between watching their names and
	// having their translations in byID: shrinkWatched must not drop the names they rely on.
	translating int
}

// applied is what is loaded for one workload.
type applied struct {
	key   uint64
	entry uint32 // its wl_entries entry
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

// Name implements enforcer.Backend.
func (b *Backend) Name() string { return enforcer.BPF }

// Limitations implements enforcer.Limiter: the ways around a path rule that this backend does not
// close (docs/bpflsm.md, "Not enforced"), said at start and by ward probe.
func (b *Backend) Limitations() []string {
	return []string{
		"a hard link made before the policy to a file inside a protected directory is matched only if the apply found it: the first 100000 entries below each directory rule are scanned (a warning names a rule past the bound); new links to protected files are denied",
		"a protected directory is matched by its inode as it was at the last apply (so bind mounts and renamed ancestors are covered); one created after the apply is matched by path only until the next apply, and one renamed away is protected under its new path only until the next apply",
		"an overlay mount over a protected directory reaches its files under another path (mounting needs CAP_SYS_ADMIN: block it with a capabilities rule)",
		"a copy or a memfd of a blocked program runs: rules name paths, not contents",
		"reads, writes and executable mappings of a file already open are checked against Block rules only: an allow-list posture and Audit rules apply when the file is opened",
		"allowedArgs is not enforced: such rules are skipped",
	}
}

// Events implements enforcer.Backend.
func (b *Backend) Events() <-chan enforcer.Event { return b.ev }

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
	err := errors.Join(b.detach(), b.objs.Close())
	if b.unmapEntries != nil {
		err = errors.Join(err, b.unmapEntries())
		b.unmapEntries = nil
	}
	if b.grace != nil {
		err = errors.Join(err, b.grace.close())
		b.grace = nil
	}
	return err
}
