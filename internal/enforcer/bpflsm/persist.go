package bpflsm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// pin pins every link and map of b in dir, which it creates.
func (b *Backend) pin(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create instance directory: %w", err)
	}
	for name, l := range b.links {
		if err := l.Pin(filepath.Join(dir, "link_"+name)); err != nil {
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

// Uninstall removes every pin under pinDir and pinDir itself, so that the
// programs of every Backend that pinned there detach (once no process holds
// their links open: a Backend still running in some process keeps its own
// attached until it is closed). It loads no programs. A missing pinDir is not
// an error.
func Uninstall(pinDir string) error {
	if !filepath.IsAbs(pinDir) {
		return fmt.Errorf("pin directory %q is not an absolute path", pinDir)
	}
	if _, err := os.Lstat(pinDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := checkBPFFS(pinDir); err != nil {
		return err
	}
	if err := os.RemoveAll(pinDir); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}
