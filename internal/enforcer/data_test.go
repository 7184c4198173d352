package enforcer

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestSyscallData(t *testing.T) {
	atCWD := uint64(0xffffff9c) // AT_FDCWD (-100) as the kernel passes it in a register
	for _, c := range []struct {
		nr   int64
		args [3]uint64
		want string
	}{
		{257, [3]uint64{atCWD, 0, unix.O_RDONLY | unix.O_CLOEXEC}, "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY|O_CLOEXEC"},
		{2, [3]uint64{0, unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC}, "syscall=SYS_OPEN flags=O_WRONLY|O_CREAT|O_TRUNC"},
		{59, [3]uint64{}, "syscall=SYS_EXECVE"},
		{263, [3]uint64{atCWD, 0, 0}, "syscall=SYS_UNLINKAT flags="},
		{263, [3]uint64{atCWD, 0, unix.AT_REMOVEDIR}, "syscall=SYS_UNLINKAT flags=AT_REMOVEDIR"},
		{42, [3]uint64{3}, "syscall=SYS_CONNECT fd=3"},
		{41, [3]uint64{2, 1, 0}, "syscall=SYS_SOCKET"},
		{-1, [3]uint64{}, ""},
		{100000, [3]uint64{}, ""},
	} {
		if got := SyscallData(c.nr, c.args); got != c.want {
			t.Errorf("SyscallData(%d, %v) = %q, want %q", c.nr, c.args, got, c.want)
		}
	}
}
