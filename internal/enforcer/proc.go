package enforcer

import (
	"os"
	"strconv"
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
