//go:build vm

package bpflsm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
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
	if op := os.Getenv(helperEnv); op != "" {
		os.Exit(helper(op))
	}
	flag.Parse()
	if vmguest.Profile() != "" && runsShared() {
		// Created before vmguest.Main lists the open BPF objects, so that
		// they count as the package's own and not as a test's leak; the
		// process exit releases them (nothing is pinned).
		shared, sharedErr = New(Options{})
		loadedInTestMain = func() (*Backend, error) { return shared, sharedErr }
	}
	vmguest.Main(m)
}

// The tests that need no fresh Backend share one: loading and verifying the
// programs takes most of the package's time under TCG. TestPersistence
// (pins, closes) and the benchmark (detaches for its baseline) make their own.
var (
	shared      *Backend
	sharedErr   error
	sharedTests = []string{
		"TestConformance", "TestBypasses", "TestWorkloadKeys", "TestUpdatesKeepBlocking",
		"TestAuditedMode", "TestPTS", "TestWorkloadApplier", "TestNetworkExistingSockets",
		"TestNewOnThisKernel", "TestAlertData",
	}
)

// runsShared says whether -test.run selects a test that uses the shared
// Backend (as go test matches top-level names), so that a narrow run of
// another test does not pay for loading it.
func runsShared() bool {
	pat := flag.Lookup("test.run").Value.String()
	if pat == "" {
		return true
	}
	re, err := regexp.Compile(strings.Split(pat, "/")[0])
	if err != nil {
		return true
	}
	for _, name := range sharedTests {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// newBackend returns the shared Backend with no rules applied and no pending
// events; the test's cleanup applies no rules again.
func newBackend(t *testing.T) *Backend {
	t.Helper()
	if shared == nil {
		if sharedErr == nil {
			sharedErr = fmt.Errorf("%s is not listed in sharedTests", t.Name())
		}
		t.Fatalf("shared backend: %+v", sharedErr)
	}
	must(t, shared.Apply(context.Background(), nil))
	drain(shared)
	t.Cleanup(func() {
		if err := shared.Apply(context.Background(), nil); err != nil {
			t.Errorf("reset the shared backend: %v", err)
		}
		drain(shared)
	})
	return shared
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
	case "udpsend", "send", "connect", "accept", "recvfd":
		// Uses of an inherited socket (fd N, or for recvfd one received
		// over the inherited unix socket N): udpsend:N sends a datagram to
		// 127.0.0.1:9, send:N writes to a connected socket, connect:N:PORT
		// connects to 127.0.0.1:PORT, accept:N accepts a pending connection.
		fdArg, port, _ := strings.Cut(arg, ":")
		fd, _ := strconv.Atoi(fdArg)
		lo := [4]byte{127, 0, 0, 1}
		switch kind {
		case "udpsend":
			err = unix.Sendto(fd, []byte("x"), 0, &unix.SockaddrInet4{Port: 9, Addr: lo})
		case "send":
			_, err = unix.Write(fd, []byte("x"))
		case "connect":
			p, _ := strconv.Atoi(port)
			err = unix.Connect(fd, &unix.SockaddrInet4{Port: p, Addr: lo})
		case "accept":
			var nfd int
			if nfd, _, err = unix.Accept(fd); err == nil {
				unix.Close(nfd)
			}
		case "recvfd":
			oob := make([]byte, unix.CmsgSpace(4))
			var oobn int
			if _, oobn, _, _, err = unix.Recvmsg(fd, make([]byte, 1), oob, 0); err != nil {
				fmt.Printf("recvmsg: %v\n", err)
				return 1
			}
			msgs, e := unix.ParseSocketControlMessage(oob[:oobn])
			if e != nil || len(msgs) != 1 {
				fmt.Printf("control message: %v %d\n", e, len(msgs))
				return 1
			}
			fds, e := unix.ParseUnixRights(&msgs[0])
			if e != nil || len(fds) != 1 {
				fmt.Printf("rights: %v %d\n", e, len(fds))
				return 1
			}
			err = unix.Sendto(fds[0], []byte("x"), 0, &unix.SockaddrInet4{Port: 9, Addr: lo})
		}
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
