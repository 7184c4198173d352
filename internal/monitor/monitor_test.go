package monitor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
)

// TestMain closes the monitor the tests share: attaching is quick, but detaching every syscall
// tracepoint takes seconds on this kernel (docs/monitor.md).
func TestMain(m *testing.M) {
	if benchHelper() || vmHelper != nil && vmHelper() {
		os.Exit(0)
	}
	code := m.Run()
	if shared.m != nil {
		if err := shared.m.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close shared monitor:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var shared struct {
	once sync.Once
	m    *Monitor
	err  error
}

// sharedMonitor is a monitor of every supported syscall, started at its first use. Events the
// previous tests left in it are skipped by expect.
func sharedMonitor(t testing.TB) *Monitor {
	t.Helper()
	shared.once.Do(func() { shared.m, shared.err = New(Options{}) })
	if shared.err != nil {
		loadFailed(t, shared.err)
	}
	return shared.m
}

func loadFailed(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("WARD_NO_TRACEPOINTS") == "1" && errors.Is(err, enforcer.ErrNotSupported) {
		t.Skipf("WARD_NO_TRACEPOINTS=1: %v", err)
	}
	t.Fatalf("the monitor must load on this kernel (set WARD_NO_TRACEPOINTS=1 only where syscall tracepoints are unavailable): %+v", err)
}

// waitLimit bounds every wait for an event; events arrive within milliseconds, the margin is
// for a loaded 2-core machine.
const waitLimit = 15 * time.Second

// newMonitor starts a monitor or fails the test: this kernel allows syscall tracepoints, so a
// monitor that does not load is a bug, unless the environment says tracepoints are absent.
func newMonitor(t testing.TB, opts Options) *Monitor {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		loadFailed(t, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close monitor: %v", err)
		}
	})
	return m
}

// want is one expected event.
type want struct {
	name  string
	match func(enforcer.Event) bool
	got   *enforcer.Event
}

// expect reads events until every want has matched one, or fails after waitLimit. The
// machine is shared, so unrelated events are skipped; avoid, if set, fails the test on sight.
func expect(t *testing.T, m *Monitor, avoid func(enforcer.Event) bool, wants ...*want) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	left := len(wants)
	for left > 0 {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				t.Fatal("events channel closed")
			}
			if avoid != nil && avoid(ev) {
				t.Errorf("unexpected event %+v", ev)
			}
			for _, w := range wants {
				if w.got == nil && w.match(ev) {
					w.got = &ev
					left--
					break
				}
			}
		case <-deadline.C:
			for _, w := range wants {
				if w.got == nil {
					t.Errorf("no event for %s within %v", w.name, waitLimit)
				}
			}
			s, _ := m.Stats()
			t.Fatalf("stats %+v", s)
		}
	}
}

func realPath(t testing.TB, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func self(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return realPath(t, p)
}

func byPath(pid int, sc, path string) func(enforcer.Event) bool {
	return func(ev enforcer.Event) bool {
		return ev.PID == uint32(pid) && ev.Access.Syscall == sc && ev.Access.Path == path
	}
}

// check compares the fields of an event that a test cares about.
func check(t *testing.T, ev *enforcer.Event, op policy.Operation, write bool, errno syscall.Errno, source string) {
	t.Helper()
	if ev.Backend != Name || ev.Access.Op != op || ev.Access.Write != write || ev.Errno != int(errno) || ev.Access.Source != source {
		t.Errorf("event %+v: want op %s write %v errno %d (%v) source %s", ev, op, write, int(errno), errno, source)
	}
	if !strings.HasPrefix(ev.Detail, "syscall=SYS_"+strings.ToUpper(ev.Access.Syscall)) {
		t.Errorf("detail %q does not name syscall %s", ev.Detail, ev.Access.Syscall)
	}
}

func TestFileAccesses(t *testing.T) {
	m := sharedMonitor(t)
	dir := realPath(t, t.TempDir())
	f := filepath.Join(dir, "f")
	pid, exe := os.Getpid(), self(t)

	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil { // openat O_WRONLY|O_CREAT|O_TRUNC
		t.Fatal(err)
	}
	r, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	g := filepath.Join(dir, "g")
	if err := os.Rename(f, g); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// rmdir itself: the libraries call unlinkat(AT_REMOVEDIR).
	subp, err := unix.BytePtrFromString(sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, e := unix.Syscall(unix.SYS_RMDIR, uintptr(unsafe.Pointer(subp)), 0, 0); e != 0 {
		t.Fatal(e)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := os.Open(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open %s: %v", missing, err)
	}

	write := &want{name: "open for write", match: func(ev enforcer.Event) bool {
		return byPath(pid, "openat", f)(ev) && strings.Contains(ev.Detail, "O_WRONLY")
	}}
	read := &want{name: "open for read", match: func(ev enforcer.Event) bool {
		return byPath(pid, "openat", f)(ev) && strings.Contains(ev.Detail, "O_RDONLY")
	}}
	chmod := &want{name: "chmod", match: func(ev enforcer.Event) bool {
		return ev.PID == uint32(pid) && strings.HasPrefix(ev.Access.Syscall, "fchmodat") && ev.Access.Path == f
	}}
	rename := &want{name: "rename", match: byPath(pid, "renameat", f)}
	unlink := &want{name: "unlink", match: byPath(pid, "unlinkat", g)}
	mkdir := &want{name: "mkdir", match: byPath(pid, "mkdirat", sub)}
	rmdir := &want{name: "rmdir", match: byPath(pid, "rmdir", sub)}
	enoent := &want{name: "failed open", match: byPath(pid, "openat", missing)}
	expect(t, m, nil, write, read, chmod, rename, unlink, mkdir, rmdir, enoent)

	check(t, write.got, policy.OpFile, true, 0, exe)
	check(t, read.got, policy.OpFile, false, 0, exe)
	check(t, chmod.got, policy.OpFile, true, 0, exe)
	check(t, rename.got, policy.OpFile, true, 0, exe)
	check(t, unlink.got, policy.OpFile, true, 0, exe)
	check(t, mkdir.got, policy.OpFile, true, 0, exe)
	check(t, rmdir.got, policy.OpFile, true, 0, exe)
	check(t, enoent.got, policy.OpFile, false, unix.ENOENT, exe)
	if !strings.Contains(rename.got.Detail, "newpath="+g) {
		t.Errorf("rename detail %q lacks newpath=%s", rename.got.Detail, g)
	}
	if ev := read.got; ev.Access.Owner != uint32(os.Getuid()) || ev.Access.UID != uint32(os.Getuid()) || ev.PPID != uint32(os.Getppid()) {
		t.Errorf("read event %+v: want uid and owner %d, ppid %d", ev, os.Getuid(), os.Getppid())
	}
}

func TestExec(t *testing.T) {
	m := sharedMonitor(t)
	pid, exe := os.Getpid(), self(t)

	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// A file that is not executable: the exec fails with EACCES in the forked child.
	// syscall.ForkExec, unlike exec.Command, does not check the mode first.
	noexec := filepath.Join(realPath(t, t.TempDir()), "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.ForkExec(noexec, []string{noexec}, nil); !errors.Is(err, unix.EACCES) {
		t.Fatalf("exec %s: %v, want EACCES", noexec, err)
	}

	trueExe := realPath(t, "/bin/true")
	ok := &want{name: "exec /bin/true", match: func(ev enforcer.Event) bool {
		return ev.PID == uint32(cmd.Process.Pid) && ev.Access.Op == policy.OpProcess
	}}
	failed := &want{name: "failed exec", match: func(ev enforcer.Event) bool {
		return ev.PPID == uint32(pid) && ev.Access.Op == policy.OpProcess && ev.Access.Path == noexec
	}}
	expect(t, m, nil, ok, failed)
	check(t, ok.got, policy.OpProcess, false, 0, exe)
	if ok.got.Access.Path != trueExe || ok.got.PPID != uint32(pid) || ok.got.Access.Syscall != "execve" {
		t.Errorf("exec event %+v: want path %s, ppid %d, syscall execve", ok.got, trueExe, pid)
	}
	check(t, failed.got, policy.OpProcess, false, unix.EACCES, exe)
}

// An unprivileged process is refused a root-only file: the event carries its uid, the errno,
// the program and the credential changes of the child that became it.
func TestUnprivilegedEACCES(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test needs root to start a child as another user")
	}
	m := sharedMonitor(t)
	dir, err := os.MkdirTemp("", "ward-monitor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dir = realPath(t, dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	cmd := exec.Command("/bin/cat", secret)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("cat %s as nobody succeeded: %s", secret, out)
	}
	child := uint32(cmd.Process.Pid)

	denied := &want{name: "open refused", match: byPath(int(child), "openat", secret)}
	setuid := &want{name: "setuid", match: func(ev enforcer.Event) bool {
		return ev.PID == child && ev.Access.Syscall == "setuid"
	}}
	setgid := &want{name: "setgid", match: func(ev enforcer.Event) bool {
		return ev.PID == child && ev.Access.Syscall == "setgid"
	}}
	expect(t, m, nil, denied, setuid, setgid)
	check(t, denied.got, policy.OpFile, false, unix.EACCES, realPath(t, "/bin/cat"))
	if ev := denied.got; ev.UID != nobody || ev.Access.UID != nobody || ev.Access.Owner != 0 || ev.PPID != uint32(os.Getpid()) {
		t.Errorf("denied event %+v: want uid %d, owner 0, ppid %d", ev, nobody, os.Getpid())
	}
	check(t, setuid.got, policy.OpSyscall, false, 0, self(t))
	if !strings.Contains(setuid.got.Detail, fmt.Sprintf("arg0=%d", nobody)) {
		t.Errorf("setuid detail %q lacks arg0=%d", setuid.got.Detail, nobody)
	}
}

func TestNetwork(t *testing.T) {
	m := sharedMonitor(t)
	pid := uint32(os.Getpid())

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	fdDetail := fmt.Sprintf(" fd=%d", fd)
	udp := &want{name: "udp socket", match: func(ev enforcer.Event) bool {
		return ev.PID == pid && ev.Access.Syscall == "socket" && ev.Access.Protocol == "udp"
	}}
	conn := &want{name: "udp connect", match: func(ev enforcer.Event) bool {
		return ev.PID == pid && ev.Access.Syscall == "connect" && strings.Contains(ev.Detail, fdDetail)
	}}
	bind := &want{name: "tcp bind", match: func(ev enforcer.Event) bool {
		return ev.PID == pid && ev.Access.Syscall == "bind" && strings.Contains(ev.Detail, "local=127.0.0.1:0")
	}}
	accept := &want{name: "tcp accept", match: func(ev enforcer.Event) bool {
		return ev.PID == pid && ev.Access.Syscall == "accept4" && strings.Contains(ev.Detail, "remote="+c.LocalAddr().String())
	}}
	expect(t, m, nil, udp, conn, bind, accept)
	for _, w := range []*want{udp, conn} {
		a := w.got.Access
		if a.Op != policy.OpNetwork || a.Family != "inet" || a.SockType != "dgram" || a.Protocol != "udp" || w.got.Errno != 0 {
			t.Errorf("%s: %+v, want inet dgram udp", w.name, w.got)
		}
	}
	if !strings.Contains(conn.got.Detail, "remote=127.0.0.1:9") || !strings.Contains(udp.got.Detail, "domain=AF_INET type=SOCK_DGRAM protocol=UDP") {
		t.Errorf("details %q, %q", udp.got.Detail, conn.got.Detail)
	}
	for _, w := range []*want{bind, accept} {
		a := w.got.Access
		if a.Op != policy.OpNetwork || a.Family != "inet" || a.SockType != "stream" || a.Protocol != "tcp" || w.got.Errno != 0 {
			t.Errorf("%s: %+v, want inet stream tcp", w.name, w.got)
		}
	}
}

// Relative paths are made absolute: against a directory descriptor, and against the
// working directory.
func TestRelativePaths(t *testing.T) {
	m := sharedMonitor(t)
	pid := os.Getpid()
	dir := realPath(t, t.TempDir())
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "sub", "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The descriptor stays open until the events are read: the monitor resolves it in /proc.
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, "sub/../sub/f", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if err := unix.Renameat(dfd, "sub/f", dfd, "g"); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	fd, err = unix.Open("g", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)

	g := filepath.Join(dir, "g")
	viaDirfd := &want{name: "openat with dirfd", match: func(ev enforcer.Event) bool {
		return byPath(pid, "openat", f)(ev) && strings.Contains(ev.Detail, `name="sub/../sub/f"`)
	}}
	rename := &want{name: "renameat with dirfds", match: byPath(pid, "renameat", f)}
	viaCwd := &want{name: "open relative to cwd", match: byPath(pid, "openat", g)}
	expect(t, m, nil, viaDirfd, rename, viaCwd)
	if !strings.Contains(rename.got.Detail, "newpath="+g) {
		t.Errorf("rename detail %q lacks newpath=%s", rename.got.Detail, g)
	}
	if !viaCwd.got.Access.Write {
		t.Errorf("open O_WRONLY: %+v, want Write", viaCwd.got)
	}
}

// The in-kernel filters: an ignored process and untraced syscalls produce nothing.
func TestFilters(t *testing.T) {
	m := newMonitor(t, Options{IgnoreSelf: true, Syscalls: []string{"openat", "execve"}})
	if got, _ := m.Traced(); strings.Join(got, ",") != "openat,execve" {
		t.Errorf("traced %v, want openat,execve", got)
	}
	pid := uint32(os.Getpid())
	dir := realPath(t, t.TempDir())
	mine, theirs := filepath.Join(dir, "mine"), filepath.Join(dir, "theirs")
	for _, p := range []string{mine, theirs} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(mine); err != nil { // unlinkat: not traced
		t.Fatal(err)
	}
	if out, err := exec.Command("/bin/cat", theirs).CombinedOutput(); err != nil {
		t.Fatalf("cat: %v: %s", err, out)
	}
	// The child's events come after everything this process did before starting it.
	child := &want{name: "the child's open", match: func(ev enforcer.Event) bool {
		return ev.PPID == pid && ev.Access.Path == theirs
	}}
	expect(t, m, func(ev enforcer.Event) bool {
		return ev.PID == pid || !strings.HasPrefix(ev.Access.Syscall, "open") && ev.Access.Syscall != "execve"
	}, child)
}

// Close releases every kernel object and closes the channel.
func TestCloseReleases(t *testing.T) {
	before := countFDs(t)
	m, err := New(Options{Syscalls: []string{"openat", "execve", "socket"}})
	if err != nil {
		loadFailed(t, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	for range m.Events() {
	}
	if after := countFDs(t); after != before {
		t.Errorf("%d descriptors before New, %d after Close", before, after)
	}
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestUnknownSyscall(t *testing.T) {
	if _, err := New(Options{Syscalls: []string{"openat", "nosuchcall"}}); err == nil || !strings.Contains(err.Error(), "nosuchcall") {
		t.Fatalf("New with an unknown syscall: %v", err)
	}
}

// A process in another root (a chroot here, a container in production) is reported in its
// own view: paths as it names them, its program as its root holds it, relative paths joined
// to its working directory seen from inside.
func TestOtherRoot(t *testing.T) {
	const busybox = "/bin/busybox" // busybox-static, from scripts/install-deps.sh
	m := sharedMonitor(t)
	root := realPath(t, t.TempDir())
	for _, d := range []string{"bin", "etc"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatalf("this test needs a static busybox (install busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, busybox), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "x"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The shell opens x relative to its working directory (the redirection), then waits
	// on stdin so that the directory is still in /proc when the monitor resolves the open.
	cmd := exec.Command(busybox, "sh", "-c", "/bin/busybox cat /etc/x && cd /etc && read a < x && read b; exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("chrooted shell: %v", err)
		}
	}()
	sh := uint32(cmd.Process.Pid)
	mine := func(ev enforcer.Event) bool { return ev.PID == sh || ev.PPID == sh }
	execEv := &want{name: "exec in the chroot", match: func(ev enforcer.Event) bool {
		return ev.PID == sh && ev.Access.Op == policy.OpProcess
	}}
	abs := &want{name: "absolute open", match: func(ev enforcer.Event) bool {
		return mine(ev) && ev.Access.Path == "/etc/x" && !strings.Contains(ev.Detail, "name=")
	}}
	rel := &want{name: "relative open", match: func(ev enforcer.Event) bool {
		return mine(ev) && ev.Access.Path == "/etc/x" && strings.Contains(ev.Detail, `name="x"`)
	}}
	expect(t, m, nil, execEv, abs, rel)
	if ev := execEv.got; ev.Access.Path != busybox || ev.Access.Source != self(t) {
		t.Errorf("exec %+v: want path %s from %s", ev, busybox, self(t))
	}
	for _, w := range []*want{abs, rel} {
		if w.got.Access.Source != busybox {
			t.Errorf("%s: %+v, want source %s", w.name, w.got, busybox)
		}
	}
}

// A program that runs /proc/self/exe runs itself again (busybox applets do): the exec is
// reported as its own program, not as the monitor's, which reads /proc/self as itself.
func TestProcSelfExec(t *testing.T) {
	const busybox = "/bin/busybox" // busybox-static, from scripts/install-deps.sh
	m := sharedMonitor(t)
	// The shell re-executes busybox as the sleep applet, which keeps the process (and its
	// /proc directory) alive while the monitor decodes the exec.
	cmd := exec.Command(busybox, "sh", "-c", "exec -a sleep /proc/self/exe 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	sh := uint32(cmd.Process.Pid)
	reexec := &want{name: "exec of /proc/self/exe", match: func(ev enforcer.Event) bool {
		return ev.PID == sh && ev.Access.Op == policy.OpProcess && strings.Contains(ev.Detail, `name="/proc/self/exe"`)
	}}
	expect(t, m, nil, reexec)
	if ev := reexec.got; ev.Access.Path != realPath(t, busybox) || ev.Access.Source != realPath(t, busybox) {
		t.Errorf("exec %+v (%s): want path and source %s, not the monitor's own program %s", ev.Access, ev.Detail, realPath(t, busybox), self(t))
	}
}

// Records that find the ring buffer full are dropped in the kernel and counted.
func TestLossCounted(t *testing.T) {
	// One page of ring (about 15 records) and a channel of one that nobody reads.
	m := newMonitor(t, Options{Syscalls: []string{"openat"}, RingBufferBytes: os.Getpagesize(), Buffer: 1})
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		for range 100 {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
		}
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Lost > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no loss counted with a full ring: %+v", s)
		}
	}
}

// The owner of an opened or fchmod'ed file is the kernel's, read when the call returned: the
// file changes owner before the records are decoded (the reader is held on a full Events
// channel), and the events must still name the owner the call saw. A path through a symbolic
// link is reported as its target.
func TestOwnerFromKernel(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	m := newMonitor(t, Options{Syscalls: []string{"openat", "fchmod"}, Buffer: 1})
	dir := realPath(t, t.TempDir())
	f, link := filepath.Join(dir, "f"), filepath.Join(dir, "link")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", link); err != nil {
		t.Fatal(err)
	}
	const owner, later = 4242, 5353
	if err := os.Chown(f, owner, owner); err != nil {
		t.Fatal(err)
	}
	holdReader(t, m)
	fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Kept open until the event is decoded: its path is read from /proc/PID/fd.
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, 0o640); err != nil {
		t.Fatal(err)
	}
	lfd, err := unix.Open(link, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(lfd)
	if err := os.Chown(f, later, later); err != nil {
		t.Fatal(err)
	}

	pid := os.Getpid()
	open := &want{name: "open", match: func(ev enforcer.Event) bool {
		return byPath(pid, "openat", f)(ev) && strings.Contains(ev.Detail, "flags=O_RDONLY") && !strings.Contains(ev.Detail, "name=")
	}}
	viaLink := &want{name: "open through the link", match: func(ev enforcer.Event) bool {
		return byPath(pid, "openat", f)(ev) && strings.Contains(ev.Detail, "name="+strconv.Quote(link))
	}}
	fchmod := &want{name: "fchmod", match: byPath(pid, "fchmod", f)}
	expect(t, m, nil, open, viaLink, fchmod)
	for _, w := range []*want{open, viaLink, fchmod} {
		if w.got.Access.Owner != owner {
			t.Errorf("%s: owner %d, want %d (the owner when the call returned): %+v", w.name, w.got.Access.Owner, owner, w.got)
		}
	}
}

// holdReader fills the Events channel of m, which must trace openat: from then on no record
// made later is decoded until the test reads events.
func holdReader(t *testing.T, m *Monitor) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for len(m.Events()) < cap(m.Events()) {
		if time.Now().After(deadline) {
			t.Fatal("the events channel never filled")
		}
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		time.Sleep(time.Millisecond)
	}
}

// An exec's owner is the program's as the exec mapped it, also when the file changes owner
// before the event is decoded; through a link the program is the target; a script is the
// program, with its own owner (looked up: the kernel's is the interpreter's).
func TestExecOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	m := newMonitor(t, Options{Syscalls: []string{"openat", "execve"}, Buffer: 1})
	dir := realPath(t, t.TempDir())
	bin, link, script := filepath.Join(dir, "true"), filepath.Join(dir, "link"), filepath.Join(dir, "script")
	// A copy of /bin/true, run as "true": a busybox applet (the VM's) goes by argv[0].
	prog, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("true", link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const owner, scriptOwner, later = 4242, 4343, 5353
	if err := os.Chown(bin, owner, owner); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(script, scriptOwner, scriptOwner); err != nil {
		t.Fatal(err)
	}
	holdReader(t, m)
	pids := map[string]uint32{}
	for _, p := range []string{bin, link, script} {
		cmd := exec.Command(p)
		cmd.Args[0] = "true"
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		pids[p] = uint32(cmd.Process.Pid)
	}
	if err := os.Chown(bin, later, later); err != nil {
		t.Fatal(err)
	}

	byPID := func(p string) func(enforcer.Event) bool {
		return func(ev enforcer.Event) bool { return ev.PID == pids[p] && ev.Access.Op == policy.OpProcess }
	}
	direct := &want{name: "exec of the program", match: byPID(bin)}
	viaLink := &want{name: "exec through a link", match: byPID(link)}
	scr := &want{name: "exec of a script", match: byPID(script)}
	expect(t, m, nil, direct, viaLink, scr)
	for _, c := range []struct {
		w     *want
		path  string
		owner uint32
	}{{direct, bin, owner}, {viaLink, bin, owner}, {scr, script, scriptOwner}} {
		if a := c.w.got.Access; a.Path != c.path || a.Owner != c.owner {
			t.Errorf("%s: path %s owner %d, want %s and %d: %+v", c.w.name, a.Path, a.Owner, c.path, c.owner, c.w.got)
		}
	}
	// The script's interpreter is not checked: it is read from /proc/PID/exe, and the
	// script has exited before its event is decoded here.
	if strings.Contains(direct.got.Detail, "interpreter=") || strings.Contains(viaLink.got.Detail, "interpreter=") {
		t.Errorf("a program named an interpreter: %q, %q", direct.got.Detail, viaLink.got.Detail)
	}
}
