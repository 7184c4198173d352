package bpflsm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Pinning (docs/bpflsm.md, "Persistence"). Each Backend started with a
// PinDir pins its links and maps in a directory of its own under PinDir, an
// "instance". A pinned link stays attached after the process exits, so the
// kernel keeps enforcing the instance's last applied state while no daemon
// runs. A new Backend never reuses an older instance's maps: it attaches a
// fresh instance next to the older ones, and only after its first
// successful Apply has filled its maps does it remove the older instances
// (their links detach when their pins go). Until then both run and an access
// is denied if either denies. This needs no compatibility between the two
// programs' map layouts, so an upgrade works the same way as a restart.

// objectVersion names the compiled programs, so that an instance directory
// says which version pinned it (for people and tools; takeover does not
// depend on it).
func objectVersion() string {
	sum := sha256.Sum256(_WardBytes)
	return hex.EncodeToString(sum[:6])
}

// instanceName is unique per Backend: the programs' version and the start
// time; the pid tells two Backends started in the same nanosecond apart.
func instanceName() string {
	return fmt.Sprintf("%s-%d-%d", objectVersion(), time.Now().UnixNano(), os.Getpid())
}

// checkBPFFS refuses a directory that is not on a BPF filesystem: pins can
// only live there, and Uninstall must never remove a tree elsewhere because
// of a wrong path.
func checkBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin directory %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)", dir)
	}
	return nil
}

// MountBPFFS mounts a BPF filesystem at dir, creating dir, unless one is there already: a
// node agent mounts what it needs, as Cilium and KubeArmor do, instead of failing on a host
// that did not mount /sys/fs/bpf at boot. A directory that holds anything is left alone (a
// wrong path in a config must not hide a tree), and checkBPFFS then refuses it. It reports
// whether it mounted one.
func MountBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && uint32(st.Type) == unix.BPF_FS_MAGIC {
		return false, nil
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("mount bpf filesystem: %w", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return false, fmt.Errorf("mount -t bpf bpf %s: %w", dir, err)
	}
	return true, nil
}

// preparePinDir creates pinDir (on a BPF filesystem) and returns the
// instances already pinned there, oldest first.
func preparePinDir(pinDir string) ([]string, error) {
	if !filepath.IsAbs(pinDir) {
		return nil, fmt.Errorf("pin directory %q is not an absolute path", pinDir)
	}
	if err := checkBPFFS(filepath.Dir(pinDir)); err != nil {
		return nil, err
	}
	if err := os.Mkdir(pinDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create pin directory: %w", err)
	}
	if err := checkBPFFS(pinDir); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(pinDir)
	if err != nil {
		return nil, fmt.Errorf("list pin directory: %w", err)
	}
	var old []string
	for _, e := range ents {
		old = append(old, filepath.Join(pinDir, e.Name()))
	}
	sort.Strings(old)
	return old, nil
}

// linkPin begins the name of a link's pin in an instance directory (a map's is "map_").
const linkPin = "link_"

// pin pins every link and map of b in dir, which it creates.
func (b *Backend) pin(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create instance directory: %w", err)
	}
	for name, l := range b.links {
		if err := l.Pin(filepath.Join(dir, linkPin+name)); err != nil {
			return fmt.Errorf("pin link %s: %w", name, err)
		}
	}
	for name, m := range b.maps {
		if strings.HasPrefix(name, ".") {
			continue // a data section (.bss: the pointers that keep ward.c's types in BTF)
		}
		if err := m.Pin(filepath.Join(dir, "map_"+name)); err != nil {
			return fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	return nil
}

// retire removes older instances: their links detach, so only this
// Backend's programs decide from now on.
func (b *Backend) retire() error {
	var errs []error
	for _, dir := range b.predecessors {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove older instance %s: %w", dir, err))
			continue
		}
		b.log.Info("older BPF-LSM instance removed", "dir", dir)
	}
	b.predecessors = nil
	return errors.Join(errs...)
}

// detachWait bounds how long Uninstall waits for the programs of the links it unpinned to
// detach. Unloaded, 6.12 detaches about 250 ms after the pins go; a guest under load in CI
// took more than 5 s.
const detachWait = 30 * time.Second

// Uninstall removes every pin under pinDir and pinDir itself, so that the
// programs of every Backend that pinned there detach, and returns once they
// have: the kernel releases a link whose last pin went from a work item (from
// 6.12 on, also when no RCU callback was involved), so the pins' removal alone
// does not mean an access is decided without Ward yet. A program some process
// still holds (a Backend still running keeps its own links attached until it is
// closed) is an error after detachWait, or when ctx ends. It loads no programs.
// A missing pinDir is not an error.
func Uninstall(ctx context.Context, pinDir string) error {
	if !filepath.IsAbs(pinDir) {
		return fmt.Errorf("pin directory %q is not an absolute path", pinDir)
	}
	if _, err := os.Lstat(pinDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := checkBPFFS(pinDir); err != nil {
		return err
	}
	progs, readErr := pinnedPrograms(pinDir)
	if err := os.RemoveAll(pinDir); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, detachWait)
	defer cancel()
	return errors.Join(readErr, awaitUnloaded(ctx, progs))
}

// pinnedPrograms returns the IDs of the programs that the links pinned under dir run. A pin
// it cannot read is an error, after the others are listed: Uninstall still removes it, but
// cannot wait for its program.
func pinnedPrograms(dir string) ([]ebpf.ProgramID, error) {
	var ids []ebpf.ProgramID
	var errs []error
	walkErr := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), linkPin) {
			return err
		}
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("pinned link %s: %w", path, err))
			return nil
		}
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			errs = append(errs, fmt.Errorf("pinned link %s: %w", path, err))
			return nil
		}
		ids = append(ids, info.Program)
		return nil
	})
	return ids, errors.Join(append(errs, walkErr)...)
}

// awaitUnloaded returns once no program in ids is loaded. The kernel detaches a link's
// program before it drops its reference to the program, and a program's ID goes with its
// last reference, so an ID that is gone is a program that no longer runs. (A link's own ID
// goes before the detach, so the list of links cannot tell.)
func awaitUnloaded(ctx context.Context, ids []ebpf.ProgramID) error {
	start := time.Now()
	for {
		var left []ebpf.ProgramID
		for _, id := range ids {
			p, err := ebpf.NewProgramFromID(id)
			switch {
			case errors.Is(err, os.ErrNotExist):
				continue
			case err != nil:
				return fmt.Errorf("uninstall: program %d: %w", id, err)
			}
			p.Close()
			left = append(left, id)
		}
		if len(left) == 0 {
			return nil
		}
		ids = left
		select {
		case <-ctx.Done():
			return fmt.Errorf("uninstall: pins removed, but %d programs (IDs %v) still loaded %v later: a process holds them (a Ward daemon still running?)",
				len(ids), ids, time.Since(start).Round(time.Millisecond))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
