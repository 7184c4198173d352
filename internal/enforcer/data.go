package enforcer

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/policy"
)

// SyscallData is an alert's Data for an access made by system call nr (x86_64 numbering) with
// its first three arguments, in KubeArmor's form and names: "syscall=SYS_OPENAT fd=-100
// flags=O_RDONLY", "syscall=SYS_EXECVE", "syscall=SYS_UNLINKAT flags=". It is "" when nr
// names no system call (an access the kernel made for itself).
func SyscallData(nr int64, args [3]uint64) string {
	name, ok := policy.SyscallName(int(nr))
	if !ok || nr < 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("syscall=SYS_" + strings.ToUpper(name))
	fd := func(i int) { b.WriteString(" fd=" + strconv.Itoa(int(int32(args[i])))) }
	switch name {
	case "open":
		b.WriteString(" flags=" + OpenFlags(args[1]))
	case "openat":
		fd(0)
		b.WriteString(" flags=" + OpenFlags(args[2]))
	case "openat2", "execveat", "fchmodat", "fchownat", "mkdirat", "renameat", "renameat2", "linkat", "symlinkat":
		fd(0)
	case "unlinkat":
		b.WriteString(" flags=")
		if args[2]&unix.AT_REMOVEDIR != 0 {
			b.WriteString("AT_REMOVEDIR")
		}
	case "connect", "bind", "accept", "accept4", "listen", "fchmod", "fchown", "ftruncate":
		fd(0)
	}
	return b.String()
}

// OpenFlags names open(2) flags as KubeArmor prints them: the access mode, then the other
// flags that change what the open does, joined by "|" ("O_RDONLY|O_CLOEXEC").
func OpenFlags(flags uint64) string {
	var parts []string
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		parts = append(parts, "O_RDONLY")
	case unix.O_WRONLY:
		parts = append(parts, "O_WRONLY")
	case unix.O_RDWR:
		parts = append(parts, "O_RDWR")
	}
	for _, f := range []struct {
		bit  uint64
		name string
	}{
		{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_TRUNC, "O_TRUNC"},
		{unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"}, {unix.O_DIRECTORY, "O_DIRECTORY"},
		{unix.O_NOFOLLOW, "O_NOFOLLOW"}, {unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_PATH, "O_PATH"},
	} {
		if flags&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, "|")
}
