package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
)

// proc is where the monitor reads other processes' state.
const proc = "/proc"

// procRoot is a process's root directory as the monitor sees it.
type procRoot struct {
	same bool   // the monitor's own root
	path string // the root as a path in the monitor's view, when not the same
}

// exe is one process's executable: its path and the inode the kernel reported, so that a
// cached or freshly read path is used only when it is the file the event names.
type exe struct {
	path string
	ino  uint64
	dev  uint32 // kernel encoding, as the BPF program reads it
}

func (e exe) is(ino uint64, dev uint32) bool { return e.path != "" && e.ino == ino && e.dev == dev }

// maxCache bounds the executable cache; it is emptied when full rather than tracking exits,
// which would cost a tracepoint on every process exit.
const maxCache = 1 << 15

// exeCache maps a tgid to its executable. It is filled at the first event of a process (from
// /proc/PID/exe) and updated by exec events. Only the reader goroutine uses it.
type exeCache struct {
	m     map[uint32]exe
	roots map[uint32]procRoot
	self  unix.Stat_t // the monitor's own root directory
}

func kernelDev(dev uint64) uint32 { return unix.Major(dev)<<20 | unix.Minor(dev) }

func readExe(pid uint32) exe {
	p := enforcer.ExeLink(pid)
	target, err := os.Readlink(p)
	if err != nil {
		return exe{}
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return exe{}
	}
	return exe{path: target, ino: st.Ino, dev: kernelDev(st.Dev)}
}

func (c *exeCache) put(pid uint32, e exe) {
	if c.m == nil || len(c.m) >= maxCache {
		c.m = make(map[uint32]exe)
	}
	c.m[pid] = e
}

// source returns the path of the executable with inode (ino, dev) that process tgid ran (for
// exec: before the exec). It tries the cache, the process itself, then its parent (a forked
// child that has not exec'd yet runs its parent's program). verified is false when no
// candidate had that inode; the path is then the process's current executable, or for exec
// the parent's (the process already runs the new program).
func (c *exeCache) source(tgid, ppid uint32, ino uint64, dev uint32, isExec bool) (path string, verified bool) {
	if ino == 0 {
		return "", true // a kernel thread or a process without memory
	}
	if e, ok := c.m[tgid]; ok && e.is(ino, dev) {
		return e.path, true
	}
	self := readExe(tgid)
	if self.is(ino, dev) {
		c.put(tgid, self)
		return self.path, true
	}
	parent, ok := c.m[ppid]
	if !ok || !parent.is(ino, dev) {
		parent = readExe(ppid)
		if parent.path != "" {
			c.put(ppid, parent)
		}
	}
	if parent.is(ino, dev) {
		c.put(tgid, parent)
		return parent.path, true
	}
	if isExec || self.path == "" {
		return parent.path, false
	}
	return self.path, false
}

// resolve makes a path argument absolute and clean, as the process named it: relative paths
// are joined to the thread's working directory (dirfd is AT_FDCWD) or to the directory
// dirfd refers to, read from /proc at the time the event is decoded. When the process runs
// in the monitor's own root, symbolic links are resolved as the call did (the last
// component only when follow is set), so the path matches what an LSM sees; a process in
// another root (a container) keeps its lexical path, which is what its policies name.
// ok is false when a relative path could not be resolved (the process or descriptor is gone).
// opened, when not nil, is the dentry a successful open reached, as the kernel reported it.
func resolve(tgid, tid uint32, dirfd int32, p string, follow bool, opened *dentry, root procRoot, dirs *dirCache) (string, bool) {
	if p == "" {
		return "", false
	}
	if !strings.HasPrefix(p, "/") {
		base, err := dirOf(tgid, tid, dirfd)
		if err != nil {
			return "", false
		}
		p = root.view(base) + "/" + p
	}
	p = filepath.Clean(p)
	if !root.same || p == "/" {
		return p, true
	}
	// /proc/self and /proc/thread-self name whoever reads them: read here they would be the
	// monitor's own (a busybox applet re-executing /proc/self/exe would run Ward). They are
	// resolved in the acting process's /proc directory, or reported as named when it is gone.
	if own, ok := procSelf(p, tgid, tid); ok {
		r, err := filepath.EvalSymlinks(own)
		if !follow {
			dir, name := filepath.Split(own)
			if r, err = filepath.EvalSymlinks(dir); err == nil {
				r = filepath.Join(r, name)
			}
		}
		if err != nil {
			return p, true
		}
		return r, true
	}
	dir, name := filepath.Split(p)
	if follow {
		// When the call reached the entry name of the directory dir names, the last
		// component was not a symbolic link: a link's target is another entry.
		if r, ok := opened.is(dir, name, dirs); ok {
			return r, true
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				// The link's target may be the entry the call reached.
				rdir, rname := filepath.Split(r)
				opened.is(rdir, rname, dirs)
				return r, true
			}
		}
	}
	if d, ok := dirs.lookup(dir); ok {
		return join(d.path, name), true
	}
	return p, true
}

// dentry is what the kernel reported of the file a call reached (an open's file, an exec's
// mapped program): the name of its directory entry and that directory's inode.
type dentry struct {
	name   []byte
	dirIno uint64
	dirDev uint32 // kernel encoding
	// matched is set by resolve when the dentry was the named entry: the call reached
	// the file the path names, with no symbolic link at its end.
	matched bool
}

// is reports whether the dentry is the entry name of directory dir, and that entry's path
// without symbolic links; it records a match in o.matched. A nil dentry is nothing.
func (o *dentry) is(dir, name string, dirs *dirCache) (string, bool) {
	if o == nil || string(o.name) != name {
		return "", false
	}
	d, ok := dirs.lookup(dir)
	if !ok || d.ino != o.dirIno || d.dev != o.dirDev {
		return "", false
	}
	o.matched = true
	return join(d.path, name), true
}

// join appends a single clean component to a clean absolute directory.
func join(dir, name string) string {
	if dir == "/" {
		return dir + name
	}
	return dir + "/" + name
}

// procSelf rewrites a path under /proc/self or /proc/thread-self to the same path under the
// /proc directory of process tgid (thread tid); ok is false for any other path.
func procSelf(p string, tgid, tid uint32) (string, bool) {
	if !strings.HasPrefix(p, "/proc/") {
		return "", false
	}
	pid := proc + "/" + strconv.FormatUint(uint64(tgid), 10)
	for _, link := range []struct{ name, dir string }{
		{"/proc/self", pid},
		{"/proc/thread-self", pid + "/task/" + strconv.FormatUint(uint64(tid), 10)},
	} {
		if rest, ok := strings.CutPrefix(p, link.name); ok && (rest == "" || rest[0] == '/') {
			return link.dir + rest, true
		}
	}
	return "", false
}

// dirCache remembers resolved directories for a second: resolving every component of every
// path costs one lstat per component, which dominated the monitor's user-space cost. A
// directory replaced by a symbolic link is seen at most a second late.
type dirCache struct {
	m    map[string]dirEntry
	born time.Time
}

// dirEntry is a directory resolved: its path without symbolic links, and its inode.
type dirEntry struct {
	path string
	ino  uint64
	dev  uint32 // kernel encoding
}

const (
	dirCacheTTL = time.Second
	dirCacheMax = 4096
)

func (c *dirCache) lookup(dir string) (dirEntry, bool) {
	if now := time.Now(); c.m == nil || len(c.m) >= dirCacheMax || now.Sub(c.born) > dirCacheTTL {
		c.m, c.born = make(map[string]dirEntry), now
	}
	if d, ok := c.m[dir]; ok {
		return d, true
	}
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return dirEntry{}, false
	}
	d := dirEntry{path: r}
	var st unix.Stat_t
	if unix.Stat(r, &st) == nil {
		d.ino, d.dev = st.Ino, kernelDev(st.Dev)
	}
	c.m[dir] = d
	return d, true
}

func dirOf(tgid, tid uint32, dirfd int32) (string, error) {
	pid := proc + "/" + strconv.FormatUint(uint64(tgid), 10)
	if dirfd == unix.AT_FDCWD {
		// Threads may have their own working directory (unshare(CLONE_FS)).
		if d, err := os.Readlink(pid + "/task/" + strconv.FormatUint(uint64(tid), 10) + "/cwd"); err == nil {
			return d, nil
		}
		return os.Readlink(pid + "/cwd")
	}
	return fdPath(tgid, dirfd)
}

func fdPath(tgid uint32, fd int32) (string, error) {
	return os.Readlink(proc + "/" + strconv.FormatUint(uint64(tgid), 10) + "/fd/" + strconv.FormatInt(int64(fd), 10))
}

// root returns process tgid's root directory, remembered per process (a chroot after the
// first event is missed, and documented). A process that is already gone is taken to share
// its parent's root: short-lived programs (cat, true) often exit before their events are
// decoded, and their parent, usually a shell in the same root, is still there.
func (c *exeCache) root(tgid, ppid uint32) procRoot {
	if r, ok := c.roots[tgid]; ok {
		return r
	}
	r, ok := c.lookRoot(tgid)
	if !ok {
		if r, ok = c.roots[ppid]; !ok {
			r, _ = c.lookRoot(ppid)
		}
		return r
	}
	return r
}

// lookRoot reads a live process's root; ok is false when the process is gone.
func (c *exeCache) lookRoot(tgid uint32) (procRoot, bool) {
	if c.self.Ino == 0 {
		if unix.Stat("/", &c.self) != nil {
			return procRoot{same: true}, true
		}
	}
	dir := proc + "/" + strconv.FormatUint(uint64(tgid), 10) + "/root"
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return procRoot{same: true}, false
	}
	r := procRoot{same: c.self.Dev == st.Dev && c.self.Ino == st.Ino}
	if !r.same {
		r.path, _ = os.Readlink(dir)
	}
	if c.roots == nil || len(c.roots) >= maxCache {
		c.roots = make(map[uint32]procRoot)
	}
	c.roots[tgid] = r
	return r, true
}

// view turns a path in the monitor's view (read from /proc) into the process's view.
func (r procRoot) view(p string) string {
	if r.same || r.path == "" || r.path == "/" {
		return p
	}
	if rest, ok := strings.CutPrefix(p, r.path); ok && (rest == "" || rest[0] == '/') {
		return "/" + strings.TrimPrefix(rest, "/")
	}
	return p
}
