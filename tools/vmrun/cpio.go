package main

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// cpioArchive builds an initramfs in the "newc" format the kernel unpacks.
// It is written here rather than by the cpio tool so the archive is
// byte-for-byte a function of its contents (fixed mtimes, owners and inode
// numbers), which lets the cache be keyed by a hash of the archive, and so
// device nodes such as /dev/console can be created without being root.
type cpioArchive struct {
	entries map[string]cpioEntry
}

type cpioEntry struct {
	mode         uint32 // type and permission bits, as in st_mode
	data         []byte // file contents or symlink target
	major, minor uint32 // device numbers for character devices
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

func newCPIO() *cpioArchive {
	return &cpioArchive{entries: map[string]cpioEntry{}}
}

func (a *cpioArchive) add(name string, e cpioEntry) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		return
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if _, ok := a.entries[dir]; !ok {
			a.entries[dir] = cpioEntry{mode: modeDir | 0o755}
		}
	}
	a.entries[name] = e
}

// Dir adds a directory (and its parents).
func (a *cpioArchive) Dir(name string, perm uint32) {
	a.add(name, cpioEntry{mode: modeDir | perm})
}

// File adds a regular file (and its parent directories).
func (a *cpioArchive) File(name string, perm uint32, data []byte) {
	a.add(name, cpioEntry{mode: modeFile | perm, data: data})
}

// Symlink adds a symbolic link pointing at target.
func (a *cpioArchive) Symlink(name, target string) {
	a.add(name, cpioEntry{mode: modeSymlink | 0o777, data: []byte(target)})
}

// CharDev adds a character device node.
func (a *cpioArchive) CharDev(name string, perm, major, minor uint32) {
	a.add(name, cpioEntry{mode: modeCharDev | perm, major: major, minor: minor})
}

// WriteTo writes the archive. Entries are sorted so parents precede children
// and the output does not depend on the order of the calls that built it.
func (a *cpioArchive) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for i, n := range names {
		writeCPIOEntry(&buf, uint32(i+1), n, a.entries[n])
	}
	writeCPIOEntry(&buf, 0, "TRAILER!!!", cpioEntry{})
	return buf.WriteTo(w)
}

func writeCPIOEntry(buf *bytes.Buffer, ino uint32, name string, e cpioEntry) {
	nlink := uint32(1)
	if e.mode&0o170000 == modeDir {
		nlink = 2
	}
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	fmt.Fprintf(buf, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.major, e.minor, len(name)+1, 0)
	buf.WriteString(name)
	buf.WriteByte(0)
	pad4(buf)
	buf.Write(e.data)
	pad4(buf)
}

func pad4(buf *bytes.Buffer) {
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
}
