//go:build vm

package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// helperEnv makes the test binary act as the access helper instead of running
// tests: copies of it are the acting executables /wt/bin/{reader,writer,other,tool}.
const helperEnv = "WARD_BPFLSM_HELPER"

func TestMain(m *testing.M) {
	op := os.Getenv(helperEnv)
	if op == "" {
		vmguest.Main(m)
		return
	}
	os.Exit(helper(op))
}

// helper performs one access and prints "<op> ok" or "<op> errno N" as its
// last line. Ops: open:P, write:P, exec:P (P runs with the helper op "exit"),
// execfd:P (exec through an O_PATH-free memfd copy), socket:PROTO, chown:P, exit.
func helper(op string) int {
	kind, arg, _ := strings.Cut(op, ":")
	var err error
	switch kind {
	case "exit":
		return 0
	case "open":
		var f *os.File
		if f, err = os.Open(arg); err == nil {
			f.Close()
		}
	case "write":
		var f *os.File
		if f, err = os.OpenFile(arg, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	case "exec":
		err = run(arg, nil)
	case "sh":
		// An interpreter running a script: sh opens the script as a plain file.
		err = run("/bin/sh", []string{arg})
	case "memfd":
		err = execMemfd(arg)
	case "socket":
		a := rules.NetworkAccess(arg)
		fam := map[string]int{"inet": unix.AF_INET, "inet6": unix.AF_INET6, "packet": unix.AF_PACKET}[a.Family]
		typ := map[string]int{"stream": unix.SOCK_STREAM, "dgram": unix.SOCK_DGRAM, "raw": unix.SOCK_RAW, "seqpacket": unix.SOCK_SEQPACKET, "dccp": unix.SOCK_DCCP}[a.SockType]
		proto := map[string]int{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "icmp": unix.IPPROTO_ICMP, "icmpv6": unix.IPPROTO_ICMPV6, "sctp": unix.IPPROTO_SCTP, "dccp": unix.IPPROTO_DCCP}[a.Protocol]
		var fd int
		if fd, err = unix.Socket(fam, typ, proto); err == nil {
			unix.Close(fd)
		}
	case "chown":
		err = os.Chown(arg, 1, 1)
	case "loop":
		// loop:N:PATH opens and closes PATH N times and prints ns per open.
		n, path, _ := strings.Cut(arg, ":")
		count, _ := strconv.Atoi(n)
		start := time.Now()
		for i := 0; i < count && err == nil; i++ {
			var fd int
			if fd, err = unix.Open(path, unix.O_RDONLY, 0); err == nil {
				unix.Close(fd)
			}
		}
		if err == nil {
			fmt.Printf("%d\n", time.Since(start).Nanoseconds()/int64(count))
			return 0
		}
	case "cgloop":
		// cgloop:N:PATH:CG1,CG2,... moves itself into each cgroup in turn
		// and prints, per cgroup, ns per open+close of PATH over N tries.
		parts := strings.SplitN(arg, ":", 3)
		count, _ := strconv.Atoi(parts[0])
		var res []string
		for _, cg := range strings.Split(parts[2], ",") {
			if err := os.WriteFile(cg+"/cgroup.procs", []byte("0"), 0); err != nil {
				fmt.Printf("move to %s: %v\n", cg, err)
				return 1
			}
			start := time.Now()
			for i := 0; i < count; i++ {
				if fd, e := unix.Open(parts[1], unix.O_RDONLY, 0); e == nil {
					unix.Close(fd)
				}
			}
			res = append(res, strconv.FormatInt(time.Since(start).Nanoseconds()/int64(count), 10))
		}
		fmt.Println(strings.Join(res, " "))
		return 0
	case "hammer":
		// hammer:N:PATH opens PATH N times and prints how many opens succeeded.
		n, path, _ := strings.Cut(arg, ":")
		count, _ := strconv.Atoi(n)
		ok := 0
		for i := 0; i < count; i++ {
			if fd, e := unix.Open(path, unix.O_RDONLY, 0); e == nil {
				unix.Close(fd)
				ok++
			}
		}
		fmt.Printf("%d\n", ok)
		return 0
	case "hammeruntil":
		// hammeruntil:PATH:STOP opens PATH until the file STOP exists and
		// prints "<attempts> <successes>".
		path, stop, _ := strings.Cut(arg, ":")
		attempts, ok := 0, 0
		for {
			if _, e := os.Stat(stop); e == nil {
				break
			}
			for i := 0; i < 50; i++ {
				attempts++
				if fd, e := unix.Open(path, unix.O_RDONLY, 0); e == nil {
					unix.Close(fd)
					ok++
				}
			}
		}
		fmt.Printf("%d %d\n", attempts, ok)
		return 0
	case "openrel":
		// openrel:DIR:FILE opens FILE relative to DIR after chdir.
		dir, file, _ := strings.Cut(arg, ":")
		if err = os.Chdir(dir); err == nil {
			var f *os.File
			if f, err = os.Open(file); err == nil {
				f.Close()
			}
		}
	case "create":
		var f *os.File
		if f, err = os.OpenFile(arg, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666); err == nil {
			f.Close()
		}
	case "unlink":
		err = os.Remove(arg)
	case "rename":
		a, b, _ := strings.Cut(arg, ":")
		err = os.Rename(a, b)
	case "link":
		a, b, _ := strings.Cut(arg, ":")
		err = os.Link(a, b)
	case "chmod":
		err = os.Chmod(arg, 0o600)
	case "truncate":
		err = os.Truncate(arg, 0)
	case "openlong":
		// openlong:DIR:NAME:N descends N levels of NAME below DIR with
		// O_PATH (no open check) and opens f.txt there: a path longer than
		// PATH_MAX that no single syscall could name.
		parts := strings.SplitN(arg, ":", 3)
		n, _ := strconv.Atoi(parts[2])
		fd, e := unix.Open(parts[0], unix.O_PATH|unix.O_DIRECTORY, 0)
		for i := 0; e == nil && i < n; i++ {
			var next int
			next, e = unix.Openat(fd, parts[1], unix.O_PATH|unix.O_DIRECTORY, 0)
			unix.Close(fd)
			fd = next
		}
		if e == nil {
			var f int
			if f, e = unix.Openat(fd, "f.txt", unix.O_RDONLY, 0); e == nil {
				unix.Close(f)
			}
		}
		err = e
	default:
		fmt.Printf("unknown op %q\n", op)
		return 2
	}
	report(op, err)
	return 0
}

func run(path string, args []string) error {
	pid, err := syscall.ForkExec(path, append([]string{path}, args...), &syscall.ProcAttr{
		Env:   []string{helperEnv + "=exit"},
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return err
	}
	var ws syscall.WaitStatus
	if _, err = syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if ws.ExitStatus() != 0 {
		return fmt.Errorf("exit %d", ws.ExitStatus())
	}
	return nil
}

// execMemfd copies a binary into a memfd and executes that (fexecve).
func execMemfd(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("copy", 0)
	if err != nil {
		return err
	}
	if _, err := unix.Write(fd, data); err != nil {
		return err
	}
	return run(fmt.Sprintf("/proc/self/fd/%d", fd), nil)
}

func report(op string, err error) {
	if err == nil {
		fmt.Printf("%s ok\n", op)
		return
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		fmt.Printf("%s errno %d\n", op, int(errno))
		return
	}
	fmt.Printf("%s ERROR %v\n", op, err)
}
