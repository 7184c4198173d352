// Package trigger is the one program that performs accesses for the kernel tests of every
// backend, as Tetragon's contrib/tester-progs are for its sensors. A VM test binary becomes the
// trigger when Env is set (Main, called first in TestMain), so the guest needs no other binary:
// tests copy the test binary to the acting executables a case names (/wt/bin/reader, ...).
//
// The grammar is one list of operations separated by ";". Each operation prints one line: "OP
// ok", "OP errno N" (the errno the kernel returned) or "OP error TEXT"; the counting operations
// (hammer, hammeruntil) print their figures instead. Benchmarks have their own helper
// (internal/testutil/vmbench).
//
//	label                 print "label " and the task's LSM label (/proc/self/attr/current)
//	exit                  do nothing (the program an exec runs)
//	open:P                open P for reading
//	write:P               open P for writing
//	create:P              create P (O_CREAT|O_EXCL)
//	unlink:P, chmod:P, truncate:P, chown:P (to uid and gid 1)
//	rename:A:B, link:A:B
//	mapexec:P             open P for reading and map it executable, as the dynamic loader
//	                      does with the program of "ld.so P"
//	readfd:N, writefd:N   read or write a byte through the inherited descriptor N
//	chroot:DIR            chroot to DIR (the later operations run inside it)
//	relabel:P:CONTEXT     set P's SELinux context (what chcon does)
//	openrel:DIR:FILE      chdir to DIR, open FILE
//	openlong:DIR:NAME:N   descend N levels of NAME below DIR with O_PATH, open f.txt there
//	exec:P                execute P (with Env=exit); a non-zero exit is "error exit N"
//	sh:P                  run /bin/sh P (an interpreter reading a script)
//	memfd:P               copy P into a memfd and execute that
//	ldso:P                run P through the dynamic loader: /lib64/ld-linux-x86-64.so.2 P --version,
//	                      its standard output discarded
//	spawn:P:OPS           execute P (a trigger, or a script whose #! names one) with OPS, whose
//	                      operations are separated by ","; its lines are printed prefixed "P: "
//	opentree:DIR:FILE     clone DIR as a detached mount (open_tree OPEN_TREE_CLONE, no mount(2))
//	                      and open FILE, relative to it, through the clone
//	movetree:DIR:TO       clone DIR as a detached mount and attach it at TO (move_mount)
//	openhandle:DIR:H      open for reading, by its handle (open_by_handle_at), the file whose
//	                      handle H (Handle's text) name_to_handle_at gave on the mount of DIR
//	openhandle:DIR:H:F    open the directory of handle H so, and open F for reading in it
//	socket:PROTO          create a socket as a policy's protocol names it (tcp, udp, icmp, raw, ...)
//	udpsend:FD, send:FD, connect:FD:PORT, accept:FD, recvfd:FD   use an inherited socket
//	cgroup:NAME           move into the cgroup NAME (a relative path, made if missing) below the
//	                      task's own cgroup v2, as a container's process may
//	child                 run this program again with the operations in ChildEnv, its lines
//	                      prefixed "child: "
//	hammer:N:P            open P N times, print the successes
//	hammeruntil:P:STOP    open P until STOP exists, print "attempts successes"
//	hold                  read standard input to its end: the process stays alive after the
//	                      operations before, until the test closes the pipe
package trigger

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// Env holds the operations; a process started with it set is the trigger.
const Env = "WARD_TRIGGER"

// ChildEnv holds the operations of the "child" operation.
const ChildEnv = "WARD_TRIGGER_CHILD"

// Main runs the operations in Env and exits, when Env is set; otherwise it returns.
func Main() {
	if ops := os.Getenv(Env); ops != "" {
		os.Exit(Run(ops))
	}
}

// Command returns the environment entry that makes a trigger perform ops.
func Command(ops ...string) string { return Env + "=" + strings.Join(ops, ";") }

// Run performs the operations and returns the exit status: 2 for an operation it does not know.
func Run(ops string) int {
	for _, op := range strings.Split(ops, ";") {
		if st := one(op); st >= 0 {
			return st
		}
	}
	return 0
}

// one performs one operation; it returns -1 to go on, or an exit status to stop with.
func one(op string) int {
	kind, arg, _ := strings.Cut(op, ":")
	var err error
	switch kind {
	case "exit":
		return -1
	case "label":
		b, _ := os.ReadFile("/proc/self/attr/current")
		fmt.Printf("label %s\n", strings.TrimRight(string(b), "\x00\n"))
		return -1
	// open, write and create open as Go's os.Open and os.OpenFile do (O_CLOEXEC): the alert
	// Data tests compare the flags with KubeArmor's for a Go program.
	case "open":
		err = closeFD(unix.Open(arg, unix.O_RDONLY|unix.O_CLOEXEC, 0))
	case "write":
		err = closeFD(unix.Open(arg, unix.O_WRONLY|unix.O_CLOEXEC, 0))
	case "create":
		err = closeFD(unix.Open(arg, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o666))
	case "unlink":
		err = os.Remove(arg)
	case "chmod":
		err = os.Chmod(arg, 0o600)
	case "truncate":
		err = os.Truncate(arg, 0)
	case "chown":
		err = os.Chown(arg, 1, 1)
	case "rename":
		a, b, _ := strings.Cut(arg, ":")
		err = os.Rename(a, b)
	case "link":
		a, b, _ := strings.Cut(arg, ":")
		err = os.Link(a, b)
	case "mapexec":
		err = mapExec(arg)
	case "readfd":
		n, _ := strconv.Atoi(arg)
		var b [1]byte
		_, err = unix.Read(n, b[:])
	case "writefd":
		n, _ := strconv.Atoi(arg)
		_, err = unix.Write(n, []byte("x"))
	case "chroot":
		if err = unix.Chroot(arg); err == nil {
			err = unix.Chdir("/")
		}
	case "relabel":
		p, ctx, _ := strings.Cut(arg, ":")
		err = unix.Lsetxattr(p, "security.selinux", []byte(ctx), 0)
	case "openrel":
		dir, file, _ := strings.Cut(arg, ":")
		if err = os.Chdir(dir); err == nil {
			err = closeFD(unix.Open(file, unix.O_RDONLY, 0))
		}
	case "openlong":
		err = openLong(arg)
	case "exec":
		err = run(arg, nil)
	case "sh":
		err = run("/bin/sh", []string{arg})
	case "memfd":
		err = execMemfd(arg)
	case "ldso":
		err = runQuiet(LDSO, []string{arg, "--version"})
	case "spawn":
		err = spawn(arg)
	case "opentree":
		err = openTree(arg)
	case "movetree":
		err = moveTree(arg)
	case "openhandle":
		err = openHandle(arg)
	case "socket":
		err = socket(arg)
	case "udpsend", "send", "connect", "accept", "recvfd":
		err = useSocket(kind, arg)
	case "cgroup":
		err = moveCgroup(arg)
	case "child":
		err = child()
	case "hammer", "hammeruntil":
		return count(kind, arg)
	case "hold":
		_, err = io.Copy(io.Discard, os.Stdin)
	default:
		fmt.Printf("%s unknown\n", op)
		return 2
	}
	report(op, err)
	return -1
}

// mapExec maps the first page of path executable, as ld.so maps a program.
func mapExec(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	return unix.Munmap(b)
}

// moveCgroup moves the task into the cgroup name below its own (cgroup v2).
func moveCgroup(name string) error {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	own, ok := strings.CutPrefix(strings.TrimSpace(string(self)), "0::")
	if !ok {
		return fmt.Errorf("own cgroup %q: not cgroup v2", self)
	}
	dir := "/sys/fs/cgroup" + own + "/" + name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(dir+"/cgroup.procs", []byte("0"), 0)
}

func closeFD(fd int, err error) error {
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func report(op string, err error) {
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Printf("%s ok\n", op)
	case errors.As(err, &errno):
		fmt.Printf("%s errno %d\n", op, int(errno))
	default:
		fmt.Printf("%s error %v\n", op, err)
	}
}

// run executes path as a trigger that does nothing and waits for it.
func run(path string, args []string) error {
	pid, err := syscall.ForkExec(path, append([]string{path}, args...), &syscall.ProcAttr{
		Env:   []string{Env + "=exit"},
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return err
	}
	var ws syscall.WaitStatus
	if _, err = syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if ws.Signaled() {
		return fmt.Errorf("signal %v", ws.Signal())
	}
	if ws.ExitStatus() != 0 {
		return fmt.Errorf("exit %d", ws.ExitStatus())
	}
	return nil
}

// runQuiet is run with the program's standard output discarded (its errors still show).
func runQuiet(path string, args []string) error {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := exec.Command(path, args...)
	cmd.Env = []string{Env + "=exit"}
	cmd.Stdout, cmd.Stderr = null, os.Stdout
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return fmt.Errorf("exit %d", ee.ExitCode())
		}
		return err
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

// socket creates a socket of the family, type and protocol a policy's protocol name means.
func socket(proto string) error {
	a := rules.NetworkAccess(proto)
	fam, _ := policy.AddressFamily(a.Family)
	typ := map[string]int{"stream": unix.SOCK_STREAM, "dgram": unix.SOCK_DGRAM, "raw": unix.SOCK_RAW, "seqpacket": unix.SOCK_SEQPACKET, "dccp": unix.SOCK_DCCP}[a.SockType]
	num := map[string]int{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "icmp": unix.IPPROTO_ICMP, "icmpv6": unix.IPPROTO_ICMPV6, "sctp": unix.IPPROTO_SCTP, "dccp": unix.IPPROTO_DCCP}[a.Protocol]
	return closeFD(unix.Socket(fam, typ, num))
}

// useSocket uses an inherited socket (fd N, or for recvfd one received over the inherited unix
// socket N): udpsend sends a datagram to 127.0.0.1:9, send writes to a connected socket,
// connect:N:PORT connects to 127.0.0.1:PORT, accept accepts a pending connection.
func useSocket(kind, arg string) error {
	fdArg, port, _ := strings.Cut(arg, ":")
	fd, _ := strconv.Atoi(fdArg)
	lo := [4]byte{127, 0, 0, 1}
	switch kind {
	case "udpsend":
		return unix.Sendto(fd, []byte("x"), 0, &unix.SockaddrInet4{Port: 9, Addr: lo})
	case "send":
		_, err := unix.Write(fd, []byte("x"))
		return err
	case "connect":
		p, _ := strconv.Atoi(port)
		return unix.Connect(fd, &unix.SockaddrInet4{Port: p, Addr: lo})
	case "accept":
		nfd, _, err := unix.Accept(fd)
		return closeFD(nfd, err)
	}
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(fd, make([]byte, 1), oob, 0)
	if err != nil {
		return fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("control message: %v %d", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("rights: %v %d", err, len(fds))
	}
	return unix.Sendto(fds[0], []byte("x"), 0, &unix.SockaddrInet4{Port: 9, Addr: lo})
}

// openLong reaches a path longer than PATH_MAX that no single syscall could name.
func openLong(arg string) error {
	parts := strings.SplitN(arg, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("openlong wants DIR:NAME:N")
	}
	n, _ := strconv.Atoi(parts[2])
	fd, err := unix.Open(parts[0], unix.O_PATH|unix.O_DIRECTORY, 0)
	for i := 0; err == nil && i < n; i++ {
		var next int
		next, err = unix.Openat(fd, parts[1], unix.O_PATH|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		fd = next
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return closeFD(unix.Openat(fd, "f.txt", unix.O_RDONLY, 0))
}

// LDSO is the dynamic loader that the ldso operation runs a program through.
const LDSO = "/lib64/ld-linux-x86-64.so.2"

// spawn executes P with the operations OPS (separated by ","), printing its lines prefixed "P: ".
func spawn(arg string) error {
	p, ops, _ := strings.Cut(arg, ":")
	cmd := exec.Command(p)
	cmd.Env = append(os.Environ(), Env+"="+strings.ReplaceAll(ops, ",", ";"))
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			fmt.Printf("%s: %s\n", p, l)
		}
	}
	return err
}

// openTree clones DIR as a detached mount and opens FILE through it: what the task names is the
// file's path below the clone's root, on no mount that mount(2) made.
func openTree(arg string) error {
	dir, file, _ := strings.Cut(arg, ":")
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return closeFD(unix.Openat(tree, file, unix.O_RDONLY|unix.O_CLOEXEC, 0))
}

// moveTree clones DIR as a detached mount and attaches the clone at TO, without mount(2).
func moveTree(arg string) error {
	dir, to, _ := strings.Cut(arg, ":")
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return unix.MoveMount(tree, "", unix.AT_FDCWD, to, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// Handle returns the text of path's file handle that the openhandle operation takes: the
// handle's type and its bytes in hex, "TYPE.HEX".
func Handle(path string) (string, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err != nil {
		return "", fmt.Errorf("name_to_handle_at %s: %w", path, err)
	}
	return fmt.Sprintf("%d.%s", h.Type(), hex.EncodeToString(h.Bytes())), nil
}

// openHandle opens, through its handle, a file of the mount DIR is on: what the kernel gives is
// the file's dentry, which is linked below its directory only if the dentry cache still has it.
// With a third field it opens a directory so, and the named file in it.
func openHandle(arg string) error {
	dir, text, _ := strings.Cut(arg, ":")
	text, file, inDir := strings.Cut(text, ":")
	typ, hexBytes, _ := strings.Cut(text, ".")
	t, err := strconv.ParseInt(typ, 10, 32)
	if err != nil {
		return fmt.Errorf("handle type %q: %w", typ, err)
	}
	b, err := hex.DecodeString(hexBytes)
	if err != nil {
		return fmt.Errorf("handle bytes: %w", err)
	}
	mnt, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(mnt)
	if !inDir {
		return closeFD(unix.OpenByHandleAt(mnt, unix.NewFileHandle(int32(t), b), unix.O_RDONLY|unix.O_CLOEXEC))
	}
	d, err := unix.OpenByHandleAt(mnt, unix.NewFileHandle(int32(t), b), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open the directory by its handle: %w", err)
	}
	defer unix.Close(d)
	return closeFD(unix.Openat(d, file, unix.O_RDONLY|unix.O_CLOEXEC, 0))
}

// child runs this program again, as a new program, with the operations in ChildEnv.
func child() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), Env+"="+os.Getenv(ChildEnv))
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fmt.Printf("child: %s\n", l)
	}
	return err
}

// count runs the operations that print how many opens succeeded.
func count(kind, arg string) int {
	switch kind {
	case "hammer":
		n, path, _ := strings.Cut(arg, ":")
		count, _ := strconv.Atoi(n)
		ok := 0
		for i := 0; i < count; i++ {
			if closeFD(unix.Open(path, unix.O_RDONLY, 0)) == nil {
				ok++
			}
		}
		fmt.Printf("%d\n", ok)
	case "hammeruntil":
		path, stop, _ := strings.Cut(arg, ":")
		attempts, ok := 0, 0
		for {
			if _, err := os.Stat(stop); err == nil {
				break
			}
			for i := 0; i < 50; i++ {
				attempts++
				if closeFD(unix.Open(path, unix.O_RDONLY, 0)) == nil {
					ok++
				}
			}
		}
		fmt.Printf("%d %d\n", attempts, ok)
	}
	return 0
}
