package monitor

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// Event flags, as bpf/monitor.c sets them.
const (
	flagOwner     = 1
	flagTTY       = 2
	flagSock      = 4
	flagPathFault = 8
	flagExec      = 16
	flagName      = 32
)

const hdrSize = int(unsafe.Sizeof(monitorEvent{}))

// decoder turns ring buffer records into events. It is used by one goroutine only.
type decoder struct {
	exes     exeCache
	dirs     dirCache
	workload func(cgroupID uint64, pid uint32) string
	// Counters of what could not be known for sure, for Stats.
	unresolved, unverified uint64
}

// decode turns one record into an Event; ok is false for a record it does not understand.
func (d *decoder) decode(raw []byte) (ev enforcer.Event, ok bool) {
	if len(raw) < hdrSize {
		return ev, false
	}
	var h monitorEvent
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), hdrSize), raw)
	data := raw[hdrSize:]
	paths := int(h.PathLen) + int(h.Path2Len)
	if paths > len(data) {
		return ev, false
	}
	path1 := cstring(data[:h.PathLen])
	path2 := cstring(data[h.PathLen:paths])
	var opened *dentry
	if h.Flags&flagName != 0 && paths+int(h.NameLen) <= len(data) {
		name := data[paths : paths+int(h.NameLen)]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		opened = &dentry{name: name, dirIno: h.DirIno, dirDev: h.DirDev}
	}
	sc := byNr[h.Nr]
	if sc == nil {
		return ev, false
	}

	ev = enforcer.Event{
		Backend: Name,
		PID:     h.Tgid,
		PPID:    h.Ppid,
		UID:     h.Uid,
		Comm:    commString(h.Comm),
	}
	if d.workload != nil {
		ev.Workload = d.workload(h.CgroupId, h.Tgid)
	}
	if h.Ret < 0 && h.Ret >= -4095 {
		ev.Errno = int(-h.Ret)
	}
	a := rules.Access{Syscall: sc.name, UID: h.Fsuid, Owner: h.Fsuid, TTY: h.Flags&flagTTY != 0}

	var detail strings.Builder
	detail.Grow(160)
	detail.WriteString(sc.tag)

	isExec := sc.kind == kindExec
	srcIno, srcDev := h.ExeIno, h.ExeDev
	if isExec {
		srcIno, srcDev = h.SrcIno, h.SrcDev
	}
	src, verified := d.exes.source(h.Tgid, h.Ppid, srcIno, srcDev, isExec)
	if !verified {
		d.unverified++
	}
	if isExec {
		// A process often changes root (chroot, pivot_root) just before exec.
		delete(d.exes.roots, h.Tgid)
	}
	root := d.exes.root(h.Tgid, h.Ppid)
	a.Source = root.view(src)

	dirfd := int32(unix.AT_FDCWD)
	if sc.dirfd >= 0 {
		dirfd = int32(h.Args[sc.dirfd])
	}
	named := path1
	// opened is the dentry the call reached, where the kernel sent one (nil otherwise).
	resolvePath := func(p string, follow bool, opened *dentry) string {
		r, ok := resolve(h.Tgid, h.Pid, dirfd, p, follow, opened, root, &d.dirs)
		if !ok {
			d.unresolved++
		}
		return r
	}

	knownOwner := h.Flags&flagOwner != 0
	switch sc.kind {
	case kindOpen:
		var flags uint64
		switch sc.name {
		case "open":
			flags = h.Args[1]
		case "creat":
			flags = unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC
		case "openat":
			flags = h.Args[2]
		case "openat2":
			flags = h.Aux
		}
		a.Op = policy.OpFile
		a.Path = resolvePath(path1, flags&unix.O_NOFOLLOW == 0, opened)
		a.Write = isWrite(flags)
		detail.WriteString(" flags=")
		detail.WriteString(enforcer.OpenFlags(flags))
	case kindExec:
		a.Op = policy.OpProcess
		// The program is the file the caller named (a script, not its interpreter); the
		// process's executable from now on is what the kernel mapped, which for a script is
		// the interpreter. Both are known only from /proc for fexecve's /dev/fd/N names.
		// When the kernel's dentry of the mapped program is the named entry (not a script),
		// the program is the named file, and the owner the kernel sent is its owner.
		var now exe
		byName := !strings.HasPrefix(path1, "/dev/fd/") && path1 != ""
		if byName {
			a.Path = resolvePath(path1, true, opened)
		}
		if opened != nil && opened.matched && h.Flags&flagExec != 0 {
			now, knownOwner = exe{path: a.Path, ino: h.ExeIno, dev: h.ExeDev}, true
		} else if h.Flags&flagExec != 0 {
			if e := readExe(h.Tgid); e.is(h.ExeIno, h.ExeDev) {
				now = e
			}
		}
		if !byName {
			a.Path = root.view(now.path)
			if a.Path == "" {
				d.unresolved++
			}
		}
		if h.Flags&flagExec != 0 {
			if now.path == "" && a.Path != "" {
				now = exe{path: a.Path, ino: h.ExeIno, dev: h.ExeDev}
			}
			if now.path != "" {
				d.exes.put(h.Tgid, now)
			}
			if v := root.view(now.path); v != "" && v != a.Path {
				detail.WriteString(" interpreter=")
				detail.WriteString(v)
			}
		}
	case kindPath:
		a.Op, a.Write = policy.OpFile, true
		a.Path = resolvePath(path1, sc.follow, nil)
		if sc.name == "unlinkat" && h.Args[2]&unix.AT_REMOVEDIR != 0 {
			detail.WriteString(" flags=AT_REMOVEDIR")
		}
		switch sc.name {
		case "chmod", "fchmodat", "fchmodat2", "mkdir", "mkdirat":
			detail.WriteString(" mode=0") // as %#o
			if m := h.Args[sc.dirfd+2]; m != 0 {
				writeUint(&detail, m, 8)
			}
		}
	case kindFd:
		a.Op, a.Write = policy.OpFile, true
		if p, err := fdPath(h.Tgid, int32(h.Args[0])); err == nil {
			a.Path = root.view(p)
		} else {
			d.unresolved++
		}
		detail.WriteString(" fd=")
		writeInt(&detail, int32(h.Args[0]))
	case kindRename:
		a.Op, a.Write = policy.OpFile, true
		a.Path = resolvePath(path1, false, nil)
		newDirfd := int32(unix.AT_FDCWD)
		if sc.dirfd >= 0 {
			newDirfd = int32(h.Args[2])
		}
		np, ok := resolve(h.Tgid, h.Pid, newDirfd, path2, false, nil, root, &d.dirs)
		if !ok {
			d.unresolved++
		}
		detail.WriteString(" newpath=")
		detail.WriteString(np)
	case kindSocket, kindSockCall:
		a.Op = policy.OpNetwork
		family, typ, proto := h.Args[0], h.Args[1]&0xf, h.Args[2]
		if h.Flags&flagSock != 0 {
			family, typ, proto = uint64(h.SockFamily), uint64(h.SockType), uint64(h.SockProtocol)
		} else if sc.kind == kindSockCall {
			family, typ, proto = 0, 0, 0
		}
		a.Family, a.SockType, a.Protocol = netNames(family, typ, proto)
		detail.WriteString(" domain=")
		detail.WriteString(familyConst(family))
		detail.WriteString(" type=")
		detail.WriteString(typeConst(typ))
		detail.WriteString(" protocol=")
		detail.WriteString(protocolConst(proto, a.Protocol))
		if sc.kind == kindSockCall {
			detail.WriteString(" fd=")
			writeInt(&detail, int32(h.Args[0]))
			if addr := sockaddr(h.Addr[:h.AddrLen]); addr != "" {
				if sc.name == "bind" {
					detail.WriteString(" local=")
				} else {
					detail.WriteString(" remote=")
				}
				detail.WriteString(addr)
			}
		}
	case kindCred:
		a.Op = policy.OpSyscall
		n := 1
		switch sc.name {
		case "setreuid", "setregid":
			n = 2
		case "setresuid", "setresgid":
			n = 3
		case "capset":
			n = 0
		}
		for i := range n {
			detail.WriteString(" arg")
			detail.WriteByte('0' + byte(i))
			detail.WriteByte('=')
			writeInt(&detail, int32(h.Args[i]))
		}
	}

	if a.Op == policy.OpFile || a.Op == policy.OpProcess {
		if knownOwner {
			a.Owner = h.Owner
		} else if a.Path != "" && root.same {
			var st unix.Stat_t
			if unix.Lstat(a.Path, &st) == nil {
				a.Owner = st.Uid
			}
		}
		if h.Flags&flagPathFault != 0 {
			detail.WriteString(" path=unreadable")
			d.unresolved++
		} else if named != "" && named != a.Path {
			detail.WriteString(" name=")
			var buf [256]byte
			detail.Write(strconv.AppendQuote(buf[:0], named))
		}
	}
	if h.Pid != h.Tgid {
		detail.WriteString(" tid=")
		writeUint(&detail, uint64(h.Pid), 10)
	}
	detail.WriteString(" cgroup=")
	writeUint(&detail, h.CgroupId, 10)
	ev.Access = a
	ev.Detail = detail.String()
	return ev, true
}

func writeUint(b *strings.Builder, v uint64, base int) {
	var buf [24]byte
	b.Write(strconv.AppendUint(buf[:0], v, base))
}

func writeInt(b *strings.Builder, v int32) {
	var buf [12]byte
	b.Write(strconv.AppendInt(buf[:0], int64(v), 10))
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func commString(c [16]int8) string {
	b := make([]byte, 0, len(c))
	for _, x := range c {
		if x == 0 {
			break
		}
		b = append(b, byte(x))
	}
	return string(b)
}

// isWrite reports whether open flags allow changing the file.
func isWrite(flags uint64) bool {
	return flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND) != 0
}

// protocolNames maps inet protocol numbers to rules.Access names. MPTCP (262) is TCP to a
// policy: Go 1.24 and later listen with it by default, and its subflows are TCP.
var protocolNames = map[uint64]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmpv6", 132: "sctp", 262: "tcp"}

func protocolConst(proto uint64, name string) string {
	if proto == 262 {
		return "MPTCP"
	}
	if name == "" {
		return strconv.FormatUint(proto, 10)
	}
	return strings.ToUpper(name)
}

// netNames gives a socket's family, type and protocol in rules.Access's vocabulary.
func netNames(family, typ, proto uint64) (string, string, string) {
	var f, t, p string
	switch family {
	case unix.AF_UNIX:
		f = "unix"
	case unix.AF_INET:
		f = "inet"
	case unix.AF_INET6:
		f = "inet6"
	case unix.AF_NETLINK:
		f = "netlink"
	case unix.AF_PACKET:
		f = "packet"
	case 0:
	default:
		f = policy.AddressFamilyName(int(family))
	}
	switch typ {
	case unix.SOCK_STREAM:
		t = "stream"
	case unix.SOCK_DGRAM:
		t = "dgram"
	case unix.SOCK_RAW:
		t = "raw"
	case unix.SOCK_RDM:
		t = "rdm"
	case unix.SOCK_SEQPACKET:
		t = "seqpacket"
	case unix.SOCK_DCCP:
		t = "dccp"
	}
	if f == "inet" || f == "inet6" {
		p = protocolNames[proto]
		if proto == 0 {
			// Protocol 0 is the family's default for the type.
			switch t {
			case "stream":
				p = "tcp"
			case "dgram":
				p = "udp"
			}
		}
	}
	return f, t, p
}

func familyConst(f uint64) string {
	switch f {
	case unix.AF_UNIX:
		return "AF_UNIX"
	case unix.AF_INET:
		return "AF_INET"
	case unix.AF_INET6:
		return "AF_INET6"
	case unix.AF_NETLINK:
		return "AF_NETLINK"
	case unix.AF_PACKET:
		return "AF_PACKET"
	}
	if name := policy.AddressFamilyName(int(f)); name != strconv.FormatUint(f, 10) {
		return "AF_" + strings.ToUpper(name) // AF_RDS, as KubeArmor's Resource reads
	}
	return strconv.FormatUint(f, 10)
}

func typeConst(t uint64) string {
	switch t {
	case unix.SOCK_STREAM:
		return "SOCK_STREAM"
	case unix.SOCK_DGRAM:
		return "SOCK_DGRAM"
	case unix.SOCK_RAW:
		return "SOCK_RAW"
	case unix.SOCK_RDM:
		return "SOCK_RDM"
	case unix.SOCK_SEQPACKET:
		return "SOCK_SEQPACKET"
	case unix.SOCK_DCCP:
		return "SOCK_DCCP"
	}
	return strconv.FormatUint(t, 10)
}

// sockaddr formats an inet or unix socket address copied from the caller.
func sockaddr(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			ip := netip.AddrFrom4([4]byte(b[4:8]))
			return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2:4])).String()
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			ip := netip.AddrFrom16([16]byte(b[8:24]))
			return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2:4])).String()
		}
	case unix.AF_UNIX:
		return "unix:" + cstring(b[2:])
	}
	return ""
}
