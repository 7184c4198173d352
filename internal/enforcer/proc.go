package enforcer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ExeLink is the /proc link to the executable of process pid.
func ExeLink(pid uint32) string {
	return "/proc/" + strconv.FormatUint(uint64(pid), 10) + "/exe"
}

// Executable returns the path of the program process pid runs, or "" when it cannot be read
// (the process has exited, or it is a kernel thread). The backends name the acting executable
// of an event with it when the kernel's record does not.
func Executable(pid uint32) string {
	exe, _ := os.Readlink(ExeLink(pid))
	return exe
}

// ProcPPID reads the parent of process pid from procRoot (/proc when ""), for the backends whose
// kernel records carry no parent (AppArmor's and SELinux's audit records): 0 when the process is
// gone. Read when the record arrives, it names the parent the process had then.
func ProcPPID(procRoot string, pid int) uint32 {
	if procRoot == "" {
		procRoot = "/proc"
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
