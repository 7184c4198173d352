// Package auditlog reads the kernel's audit records, the channel through which AppArmor and
// SELinux report their decisions. The backends that need it parse the lines themselves; this
// package only gets them out of the kernel, from the audit netlink socket or from /dev/kmsg.
package auditlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Source delivers raw audit record lines to emit until ctx ends.
type Source func(ctx context.Context, emit func(line string)) error

// Record types (linux/audit.h).
const (
	TypeAVC     = 1400 // kernel LSM decisions (AUDIT_AVC): AppArmor and SELinux
	TypeUserAVC = 1107 // decisions of user-space mediators such as dbus (AUDIT_USER_AVC)
)

// Audit netlink constants (linux/audit.h, linux/netlink.h).
const (
	netlinkAudit       = 9 // NETLINK_AUDIT
	auditNlgrpReadlog  = 1 // AUDIT_NLGRP_READLOG: a read-only copy of every record
	netlinkRecvBufSize = 1 << 16
)

// Netlink reads the records of the given types from the audit netlink socket's read-only
// multicast group. The kernel sends every record there before it decides whether to hand it to
// auditd or to printk, so this source sees records whether or not auditd runs, and is not
// subject to the printk rate limit that drops records from /dev/kmsg. Joining the group needs
// CAP_AUDIT_READ.
//
// Each line passed to emit is "type=N " followed by the message payload, so that the parser
// knows the record type.
func Netlink(types ...int) Source {
	return func(ctx context.Context, emit func(string)) error {
		f, err := openAuditMulticast()
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { f.Close() })
		defer stop()
		buf := make([]byte, netlinkRecvBufSize)
		for {
			n, err := f.Read(buf)
			switch {
			case errors.Is(err, syscall.ENOBUFS):
				continue // the socket overflowed and records were lost; keep reading
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				f.Close()
				return fmt.Errorf("read audit netlink: %w", err)
			}
			typ, data, ok := Message(buf[:n])
			if !ok {
				continue
			}
			for _, want := range types {
				if typ == want {
					emit("type=" + strconv.Itoa(typ) + " " + string(data))
					break
				}
			}
		}
	}
}

// openAuditMulticast opens a non-blocking audit netlink socket joined to the read-log group,
// wrapped in an os.File so that the runtime poller owns it and Close ends a pending Read.
func openAuditMulticast() (*os.File, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, netlinkAudit)
	if err != nil {
		return nil, fmt.Errorf("open audit netlink: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: 1 << (auditNlgrpReadlog - 1)}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("join audit netlink read-log group (needs CAP_AUDIT_READ): %w", err)
	}
	// A larger buffer rides out bursts of records.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<20)
	return os.NewFile(uintptr(fd), "audit-netlink"), nil
}

// Message reads the one record of an audit multicast datagram. syscall.ParseNetlinkMessage
// cannot: the audit subsystem sets nlmsg_len to the payload's length without the 16-byte
// header (kept for compatibility, see kauditd_send_multicast_skb), so the payload is simply
// everything after the header.
func Message(b []byte) (typ int, data []byte, ok bool) {
	if len(b) < syscall.NLMSG_HDRLEN {
		return 0, nil, false
	}
	typ = int(b[4]) | int(b[5])<<8 // nlmsg_type, little-endian on every platform Ward builds for
	data = b[syscall.NLMSG_HDRLEN:]
	for len(data) > 0 && (data[len(data)-1] == 0 || data[len(data)-1] == '\n') {
		data = data[:len(data)-1]
	}
	return typ, data, true
}

// Kmsg reads records from the kernel log device, starting at its end, and emits the messages
// that contain marker ("apparmor=", "avc:").
//
// Without an audit daemon the kernel prints audit records through printk_ratelimit(), which by
// default passes 10 records in 5 seconds and drops the rest; a busy node loses records here.
// Netlink does not, and is the one to prefer.
func Kmsg(path, marker string) Source {
	return func(ctx context.Context, emit func(string)) error {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		// Non-blocking, so the runtime poller owns it and Close ends a pending Read.
		f := os.NewFile(uintptr(fd), path)
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return fmt.Errorf("seek %s: %w", path, err)
		}
		stop := context.AfterFunc(ctx, func() { f.Close() })
		defer stop()
		buf := make([]byte, 8192)
		for {
			n, err := f.Read(buf)
			switch {
			case errors.Is(err, syscall.EPIPE):
				continue // records were overwritten before we read them
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				f.Close()
				return fmt.Errorf("read %s: %w", path, err)
			}
			// "prio,seq,usec,flags;message\n continuation lines"
			if _, msg, ok := strings.Cut(string(buf[:n]), ";"); ok && strings.Contains(msg, marker) {
				emit(msg)
			}
		}
	}
}

// NetlinkAvailable reports why the audit netlink read-log group cannot be joined (missing
// CAP_AUDIT_READ, a kernel without audit), or nil when Netlink will work.
func NetlinkAvailable() error {
	if err := inHostNetNS("/proc/self/ns/net", "/proc/1/ns/net"); err != nil {
		return err
	}
	f, err := openAuditMulticast()
	if err != nil {
		return err
	}
	return f.Close()
}

// inHostNetNS fails when self's network namespace is not that of pid 1 (the host's init, in a
// pod with hostPID): the kernel sends the read-log group's records to sockets of the initial
// network namespace only, so a socket elsewhere joins the group and then reads nothing. A
// namespace that cannot be read is not held against the socket.
func inHostNetNS(self, host string) error {
	a, err := os.Stat(self)
	if err != nil {
		return nil
	}
	b, err := os.Stat(host)
	if err != nil {
		return nil
	}
	if !os.SameFile(a, b) {
		return errors.New("not in the host's network namespace, where alone the kernel sends audit records to the netlink group (run the pod with hostNetwork, as deploy/daemonset.yaml does)")
	}
	return nil
}
