package monitor

import "strings"

// kind says how the monitor reads a syscall's arguments and which operation it reports.
type kind int

const (
	kindOpen     kind = iota // open, creat, openat, openat2: File, Write from the flags
	kindExec                 // execve, execveat: Process
	kindPath                 // a path-changing call: File, Write
	kindFd                   // a change through a descriptor (fchmod, fchown): File, Write
	kindRename               // two paths: File, Write, the old path reported
	kindSocket               // socket: Network
	kindSockCall             // connect, bind, accept, accept4: Network
	kindCred                 // setuid and the like, capset: Syscall
)

type sysInfo struct {
	nr   int32
	name string
	kind kind
	// dirfd is the index of the directory descriptor argument, or -1 when the path is
	// resolved against the working directory.
	dirfd int
	// follow is true when the call follows a symbolic link in the last component (open,
	// exec, chmod); unlink, rename, mkdir and lchown act on the link itself.
	follow bool
}

// syscalls are the x86_64 calls the monitor can trace, in the order they are attached. The
// numbers must agree with the switch in bpf/monitor.c, which reads the path arguments.
var syscalls = []sysInfo{
	{2, "open", kindOpen, -1, true},
	{85, "creat", kindOpen, -1, true},
	{257, "openat", kindOpen, 0, true},
	{437, "openat2", kindOpen, 0, true},
	{59, "execve", kindExec, -1, true},
	{322, "execveat", kindExec, 0, true},
	{87, "unlink", kindPath, -1, false},
	{263, "unlinkat", kindPath, 0, false},
	{82, "rename", kindRename, -1, false},
	{264, "renameat", kindRename, 0, false},
	{316, "renameat2", kindRename, 0, false},
	{83, "mkdir", kindPath, -1, false},
	{258, "mkdirat", kindPath, 0, false},
	{84, "rmdir", kindPath, -1, false},
	{76, "truncate", kindPath, -1, true},
	{90, "chmod", kindPath, -1, true},
	{91, "fchmod", kindFd, -1, true},
	{268, "fchmodat", kindPath, 0, true},
	{452, "fchmodat2", kindPath, 0, true},
	{92, "chown", kindPath, -1, true},
	{93, "fchown", kindFd, -1, true},
	{94, "lchown", kindPath, -1, false},
	{260, "fchownat", kindPath, 0, true},
	{41, "socket", kindSocket, -1, false},
	{42, "connect", kindSockCall, -1, false},
	{49, "bind", kindSockCall, -1, false},
	{43, "accept", kindSockCall, -1, false},
	{288, "accept4", kindSockCall, -1, false},
	{105, "setuid", kindCred, -1, false},
	{106, "setgid", kindCred, -1, false},
	{113, "setreuid", kindCred, -1, false},
	{114, "setregid", kindCred, -1, false},
	{117, "setresuid", kindCred, -1, false},
	{119, "setresgid", kindCred, -1, false},
	{122, "setfsuid", kindCred, -1, false},
	{123, "setfsgid", kindCred, -1, false},
	{126, "capset", kindCred, -1, false},
}

// sysEntry is a traced call as the decoder looks it up.
type sysEntry struct {
	sysInfo
	tag string // how an event's Detail starts: syscall=SYS_OPENAT
}

var byNr = func() map[int32]*sysEntry {
	m := make(map[int32]*sysEntry, len(syscalls))
	for _, s := range syscalls {
		m[s.nr] = &sysEntry{s, "syscall=SYS_" + strings.ToUpper(s.name)}
	}
	return m
}()

// Syscalls lists the names of the calls the monitor can trace.
func Syscalls() []string {
	out := make([]string, len(syscalls))
	for i, s := range syscalls {
		out[i] = s.name
	}
	return out
}
