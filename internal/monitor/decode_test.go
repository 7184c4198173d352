package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
)

func TestNetNames(t *testing.T) {
	for _, c := range []struct {
		family, typ, proto uint64
		f, ty, p           string
	}{
		{unix.AF_INET, unix.SOCK_STREAM, 0, "inet", "stream", "tcp"},
		{unix.AF_INET, unix.SOCK_STREAM, 6, "inet", "stream", "tcp"},
		{unix.AF_INET, unix.SOCK_STREAM, 262, "inet", "stream", "tcp"}, // MPTCP
		{unix.AF_INET6, unix.SOCK_DGRAM, 0, "inet6", "dgram", "udp"},
		{unix.AF_INET, unix.SOCK_DGRAM, 1, "inet", "dgram", "icmp"},
		{unix.AF_INET6, unix.SOCK_RAW, 58, "inet6", "raw", "icmpv6"},
		{unix.AF_INET, unix.SOCK_SEQPACKET, 132, "inet", "seqpacket", "sctp"},
		{unix.AF_UNIX, unix.SOCK_STREAM, 0, "unix", "stream", ""},
		{unix.AF_PACKET, unix.SOCK_RAW, 768, "packet", "raw", ""},
	} {
		f, ty, p := netNames(c.family, c.typ, c.proto)
		if f != c.f || ty != c.ty || p != c.p {
			t.Errorf("netNames(%d, %d, %d) = %s %s %s, want %s %s %s", c.family, c.typ, c.proto, f, ty, p, c.f, c.ty, c.p)
		}
	}
}

func TestOpenFlags(t *testing.T) {
	for _, c := range []struct {
		flags uint64
		write bool
		text  string
	}{
		{unix.O_RDONLY | unix.O_CLOEXEC, false, "O_RDONLY|O_CLOEXEC"},
		{unix.O_WRONLY, true, "O_WRONLY"},
		{unix.O_RDWR, true, "O_RDWR"},
		{unix.O_RDONLY | unix.O_CREAT, true, "O_RDONLY|O_CREAT"},
		{unix.O_RDONLY | unix.O_TRUNC, true, "O_RDONLY|O_TRUNC"},
		{unix.O_RDONLY | unix.O_APPEND, true, "O_RDONLY|O_APPEND"},
		{unix.O_PATH | unix.O_DIRECTORY, false, "O_RDONLY|O_DIRECTORY|O_PATH"},
	} {
		if w := isWrite(c.flags); w != c.write {
			t.Errorf("isWrite(%#o) = %v, want %v", c.flags, w, c.write)
		}
		if s := enforcer.OpenFlags(c.flags); s != c.text {
			t.Errorf("OpenFlags(%#o) = %s, want %s", c.flags, s, c.text)
		}
	}
}

func TestSockaddr(t *testing.T) {
	in4 := []byte{unix.AF_INET, 0, 0x1f, 0x90, 10, 0, 0, 1}
	if got := sockaddr(in4); got != "10.0.0.1:8080" {
		t.Errorf("inet: %s", got)
	}
	in6 := make([]byte, 24)
	in6[0], in6[2], in6[3], in6[23] = unix.AF_INET6, 0, 53, 1
	if got := sockaddr(in6); got != "[::1]:53" {
		t.Errorf("inet6: %s", got)
	}
	un := append([]byte{unix.AF_UNIX, 0}, "/run/x.sock\x00"...)
	if got := sockaddr(un); got != "unix:/run/x.sock" {
		t.Errorf("unix: %s", got)
	}
	if got := sockaddr([]byte{unix.AF_INET, 0, 1}); got != "" {
		t.Errorf("short: %q", got)
	}
}

// record builds a ring buffer record as bpf/monitor.c lays it out.
func record(h monitorEvent, paths ...string) []byte {
	var data []byte
	for i, p := range paths {
		data = append(data, p...)
		data = append(data, 0)
		if i == 0 {
			h.PathLen = uint16(len(p) + 1)
		} else {
			h.Path2Len = uint16(len(p) + 1)
		}
	}
	b := make([]byte, hdrSize, hdrSize+len(data))
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(&h)), hdrSize))
	return append(b, data...)
}

// Records of a process that no longer exists decode from their own fields alone.
func TestDecodeRecord(t *testing.T) {
	const gone = 1<<22 + 7 // above the default pid_max: never a live process
	var d decoder
	h := monitorEvent{Nr: 257, Ret: -int64(unix.EACCES), Tgid: gone, Pid: gone, Ppid: 1, Uid: 1000, Fsuid: 1000, CgroupId: 42}
	h.Args[0] = uint64(uint32(0xffffff9c)) // AT_FDCWD as the kernel passes an int
	h.Args[2] = unix.O_RDWR | unix.O_CLOEXEC
	copy(h.Comm[:], []int8{'c', 'a', 't'})
	ev, ok := d.decode(record(h, "/etc/../etc/shadow"))
	if !ok {
		t.Fatal("record not decoded")
	}
	a := ev.Access
	if ev.PID != gone || ev.UID != 1000 || ev.Comm != "cat" || ev.Errno != int(unix.EACCES) ||
		a.Op != policy.OpFile || a.Path != "/etc/shadow" || !a.Write || a.Syscall != "openat" || a.UID != 1000 {
		t.Errorf("decoded %+v", ev)
	}
	if want := `syscall=SYS_OPENAT flags=O_RDWR|O_CLOEXEC name="/etc/../etc/shadow" cgroup=42`; ev.Detail != want {
		t.Errorf("detail %q, want %q", ev.Detail, want)
	}

	// A relative path of a process that is gone cannot be resolved: no path, counted.
	before := d.unresolved
	ev, _ = d.decode(record(h, "shadow"))
	if ev.Access.Path != "" || d.unresolved != before+1 {
		t.Errorf("relative path of a gone process: %+v, unresolved %d", ev, d.unresolved)
	}

	// A rename reports the old path and names the new one.
	h = monitorEvent{Nr: 82, Tgid: gone, Pid: gone}
	ev, _ = d.decode(record(h, "/tmp/a", "/tmp/b"))
	if ev.Access.Path != "/tmp/a" || !ev.Access.Write || ev.Detail != "syscall=SYS_RENAME newpath=/tmp/b cgroup=0" {
		t.Errorf("rename: %+v", ev)
	}

	// Truncated and unknown records are refused.
	if _, ok := d.decode(make([]byte, hdrSize-1)); ok {
		t.Error("short record decoded")
	}
	if _, ok := d.decode(record(monitorEvent{Nr: 0})); ok {
		t.Error("record of an untraced syscall decoded")
	}
}

func TestRootView(t *testing.T) {
	c := procRoot{path: "/var/lib/c/rootfs"}
	for in, want := range map[string]string{
		"/var/lib/c/rootfs/app/x": "/app/x",
		"/var/lib/c/rootfs":       "/",
		"/var/lib/c/rootfsx/y":    "/var/lib/c/rootfsx/y", // not under the root
		"/etc/passwd":             "/etc/passwd",
	} {
		if got := c.view(in); got != want {
			t.Errorf("view(%s) = %s, want %s", in, got, want)
		}
	}
	if got := (procRoot{same: true}).view("/var/lib/c/rootfs/app"); got != "/var/lib/c/rootfs/app" {
		t.Errorf("same root changed the path: %s", got)
	}
}

// /proc/self and /proc/thread-self are resolved in the acting process's /proc directory, never
// in the monitor's own; when that process is gone the name is reported as given.
func TestResolveProcSelf(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := uint32(cmd.Process.Pid)
	sleep, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	// Start returns once the child's exec is under way, not done: /proc/PID/exe named the test
	// binary for a moment in one run. Wait for the exec to finish.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if exe, _ := filepath.EvalSymlinks(fmt.Sprintf("/proc/%d/exe", pid)); exe == sleep {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/proc/%d/exe is not %s after 10s", pid, sleep)
		}
	}
	same := procRoot{same: true}
	for _, c := range []struct {
		path   string
		follow bool
		want   string
	}{
		{"/proc/self/exe", true, sleep},
		{"/proc/thread-self/exe", true, sleep},
		{"/proc/self/exe", false, fmt.Sprintf("/proc/%d/exe", pid)},
		{"/proc/self/status", true, fmt.Sprintf("/proc/%d/status", pid)},
		{"/proc/selfish", true, "/proc/selfish"},
	} {
		got, ok := resolve(pid, pid, unix.AT_FDCWD, c.path, c.follow, nil, same, &dirCache{})
		if !ok || got != c.want {
			t.Errorf("resolve(%s, follow %v) = %q, %v; want %q", c.path, c.follow, got, ok, c.want)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got, _ := resolve(pid, pid, unix.AT_FDCWD, "/proc/self/exe", true, nil, same, &dirCache{}); got != "/proc/self/exe" {
		t.Errorf("a process that is gone: resolve = %q, want the name as given", got)
	}
}

// Detail's fields are written without fmt; their text is what fmt wrote (%#o, %d).
func TestDecodeDetail(t *testing.T) {
	const gone = 1<<22 + 7 // above the default pid_max: never a live process
	var d decoder
	for _, c := range []struct {
		h     monitorEvent
		paths []string
		want  string
	}{
		{monitorEvent{Nr: 90, Tgid: gone, Pid: gone + 1, Args: [6]uint64{0, 0o644}, CgroupId: 7}, []string{"/tmp/x"}, "syscall=SYS_CHMOD mode=0644 tid=4194312 cgroup=7"},
		{monitorEvent{Nr: 268, Tgid: gone, Pid: gone, Args: [6]uint64{0xffffff9c, 0, 0}}, []string{"/tmp/x"}, "syscall=SYS_FCHMODAT mode=0 cgroup=0"},
		{monitorEvent{Nr: 117, Tgid: gone, Pid: gone, Args: [6]uint64{0xffffffff, 5, 6}}, nil, "syscall=SYS_SETRESUID arg0=-1 arg1=5 arg2=6 cgroup=0"},
		{monitorEvent{Nr: 42, Tgid: gone, Pid: gone, Args: [6]uint64{3}, Flags: flagSock, SockFamily: unix.AF_INET, SockType: unix.SOCK_STREAM, SockProtocol: 6,
			AddrLen: 8, Addr: [28]uint8{unix.AF_INET, 0, 0, 80, 10, 0, 0, 1}}, nil, "syscall=SYS_CONNECT domain=AF_INET type=SOCK_STREAM protocol=TCP fd=3 remote=10.0.0.1:80 cgroup=0"},
		{monitorEvent{Nr: 91, Tgid: gone, Pid: gone, Args: [6]uint64{0xfffffffe}}, nil, "syscall=SYS_FCHMOD fd=-2 cgroup=0"},
	} {
		ev, ok := d.decode(record(c.h, c.paths...))
		if !ok || ev.Detail != c.want {
			t.Errorf("detail %q, want %q", ev.Detail, c.want)
		}
	}
}

// withDentry appends to an open record the dentry the kernel reports for the opened file.
func withDentry(rec []byte, name string, dirIno uint64, dirDev uint32) []byte {
	var h monitorEvent
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), hdrSize), rec)
	h.Flags |= flagName
	h.NameLen = uint16(len(name) + 1)
	h.DirIno, h.DirDev = dirIno, dirDev
	out := make([]byte, hdrSize, len(rec)+len(name)+1)
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(&h)), hdrSize))
	out = append(out, rec[hdrSize:]...)
	out = append(out, name...)
	return append(out, 0)
}

// The owner of a file event is the kernel's when it sent one, else the file's as user space
// finds it; never the caller's fsuid, which is only the fallback when the file is gone.
func TestDecodeOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	dir := realPath(t, t.TempDir())
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const owner, kernelOwner, fsuid = 4242, 4343, 1000
	if err := os.Chown(f, owner, owner); err != nil {
		t.Fatal(err)
	}
	pid := uint32(os.Getpid())
	self := readExe(pid)
	open := monitorEvent{Nr: 257, Tgid: pid, Pid: pid, Ppid: uint32(os.Getppid()), Fsuid: fsuid, ExeIno: self.ino, ExeDev: self.dev}
	open.Args[0] = uint64(uint32(0xffffff9c))
	fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fchmod := monitorEvent{Nr: 91, Tgid: pid, Pid: pid, Fsuid: fsuid, ExeIno: self.ino, ExeDev: self.dev}
	fchmod.Args[0] = uint64(fd)
	var d decoder
	for _, c := range []struct {
		name  string
		h     monitorEvent
		kern  bool
		owner uint32
	}{
		{"open, owner looked up", open, false, owner},
		{"open, owner from the kernel", open, true, kernelOwner},
		{"fchmod, owner looked up", fchmod, false, owner},
		{"fchmod, owner from the kernel", fchmod, true, kernelOwner},
	} {
		h := c.h
		if c.kern {
			h.Flags, h.Owner = flagOwner, kernelOwner
		}
		rec := record(h, f)
		if h.Nr == 91 {
			rec = record(h)
		}
		ev, ok := d.decode(rec)
		if !ok || ev.Access.Path != f || ev.Access.Owner != c.owner {
			t.Errorf("%s: path %q owner %d, want %s and %d", c.name, ev.Access.Path, ev.Access.Owner, f, c.owner)
		}
	}
}

// An open that reached the named directory's entry of the named name did not follow a
// symbolic link there; any other dentry leaves the check to user space. matched says that
// the path found is the entry the call reached (also a link's target).
func TestResolveOpenedDentry(t *testing.T) {
	dir := realPath(t, t.TempDir())
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", link); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	ino, dev := st.Ino, kernelDev(st.Dev)
	pid := uint32(os.Getpid())
	same := procRoot{same: true}
	for _, c := range []struct {
		name    string
		path    string
		opened  *dentry
		want    string
		matched bool
	}{
		{"no dentry", link, nil, target, false},
		{"the target's dentry", link, &dentry{name: []byte("target"), dirIno: ino, dirDev: dev}, target, true},
		{"the link's name in another directory", link, &dentry{name: []byte("link"), dirIno: ino + 1, dirDev: dev}, target, false},
		{"the link's name on another device", link, &dentry{name: []byte("link"), dirIno: ino, dirDev: dev + 1}, target, false},
		{"another file's dentry", link, &dentry{name: []byte("other"), dirIno: ino, dirDev: dev}, target, false},
		{"a plain file's own dentry", target, &dentry{name: []byte("target"), dirIno: ino, dirDev: dev}, target, true},
		// The kernel never reports a link's own dentry for a call that followed it; this one
		// shows that a matching dentry is trusted, without a look at the file.
		{"a matching dentry is trusted", link, &dentry{name: []byte("link"), dirIno: ino, dirDev: dev}, link, true},
	} {
		got, ok := resolve(pid, pid, unix.AT_FDCWD, c.path, true, c.opened, same, &dirCache{})
		if !ok || got != c.want {
			t.Errorf("%s: resolve(%s) = %q, %v; want %q", c.name, c.path, got, ok, c.want)
		}
		if c.opened != nil && c.opened.matched != c.matched {
			t.Errorf("%s: matched %v, want %v", c.name, c.opened.matched, c.matched)
		}
	}
}
