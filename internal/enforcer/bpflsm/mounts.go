package bpflsm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mount is one line of a mount table (proc_pid_mountinfo(5)): which directory of which
// filesystem is seen where.
type Mount struct {
	// Dev is the filesystem's device as the kernel encodes it (major<<20|minor), as Host.Inode
	// returns it.
	Dev uint32
	// Root is the mounted directory's path inside its filesystem ("/" for a whole filesystem, a
	// subdirectory's path for a bind mount of it).
	Root string
	// Point is where it is seen, in the task's root.
	Point string
}

// MountLister is a Host that can list the mounts its paths go through. DirAlias uses it to
// name a file reached through a bind mount of a protected directory's subdirectory: dir_walk
// found the protected directory among the file's dentries, above the bind mount's root, where
// no ancestor of the opened path leads.
type MountLister interface {
	Mounts() ([]Mount, error)
}

// mountsOf reads host's mount table; false when host has none or it cannot be read.
func mountsOf(host Host) ([]Mount, bool) {
	lister, ok := host.(MountLister)
	if !ok {
		return nil, false
	}
	mounts, err := lister.Mounts()
	return mounts, err == nil
}

// Mounts implements MountLister: Ward's own mount table.
func (OSHost) Mounts() ([]Mount, error) { return readMountInfo("/proc/self/mountinfo") }

// Mounts implements MountLister: the mount table of the task whose root this is.
func (h rootHost) Mounts() ([]Mount, error) {
	return readMountInfo(strings.TrimSuffix(h.root, "/root") + "/mountinfo")
}

func readMountInfo(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountInfo(f)
}

// parseMountInfo reads proc_pid_mountinfo(5): "ID PARENT MAJOR:MINOR ROOT POINT OPTIONS
// [TAGS...] - TYPE SOURCE SUPER", paths with space, tab, newline and backslash in octal.
func parseMountInfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			return nil, fmt.Errorf("mountinfo line %d: %d fields, want at least 5", n, len(f))
		}
		maj, min, ok := strings.Cut(f[2], ":")
		major, err1 := strconv.ParseUint(maj, 10, 12)
		minor, err2 := strconv.ParseUint(min, 10, 20)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo line %d: device %q, want MAJOR:MINOR", n, f[2])
		}
		out = append(out, Mount{Dev: uint32(major<<20 | minor), Root: unescapeOctal(f[3]), Point: unescapeOctal(f[4])})
	}
	return out, sc.Err()
}

// unescapeOctal undoes the kernel's \ooo escapes of mount paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// below says whether p is dir or inside it (both clean and absolute), and returns the rest.
func below(p, dir string) (string, bool) {
	if dir == "/" {
		return strings.TrimPrefix(p, "/"), true
	}
	if p == dir {
		return "", true
	}
	rest, ok := strings.CutPrefix(p, dir+"/")
	return rest, ok
}

// mountOf returns the mount a clean absolute path lies in: the one with the deepest mount
// point above it, the last listed of those on the same point (it hides the others).
func mountOf(mounts []Mount, p string) (Mount, string, bool) {
	best, rest, found := Mount{}, "", false
	for _, m := range mounts {
		if r, ok := below(p, m.Point); ok && (!found || len(m.Point) >= len(best.Point)) {
			best, rest, found = m, r, true
		}
	}
	return best, rest, found
}

// viewOf returns a path in the task's root that reaches dir, a directory's path inside the
// filesystem dev: through any mount of that filesystem whose root is dir or above it.
func viewOf(mounts []Mount, dev uint32, dir string) []string {
	var out []string
	for _, m := range mounts {
		if m.Dev != dev {
			continue
		}
		if r, ok := below(dir, m.Root); ok {
			out = append(out, filepath.Join(m.Point, r))
		}
	}
	return out
}
