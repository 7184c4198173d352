package selinux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Audit netlink constants (linux/audit.h, linux/netlink.h).
const (
	netlinkAudit       = 9 // NETLINK_AUDIT
	auditNlgrpReadlog  = 1 // AUDIT_NLGRP_READLOG: a read-only copy of every record
	netlinkRecvBufSize = 1 << 16
)

// NetlinkSource reads audit records from the audit netlink socket's read-only multicast group.
// The kernel sends every record there before it decides whether to hand it to auditd or to
// printk, so this source sees records whether or not auditd runs, and is not subject to the
// printk rate limit that drops records from /dev/kmsg. Joining the group needs CAP_AUDIT_READ.
//
// Each line passed to emit is "type=N " followed by the message payload, so that ParseRecord
// knows the record type.
func NetlinkSource() RecordSource {
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
			if typ, data, ok := auditMessage(buf[:n]); ok && typ == TypeAVC {
				emit("type=" + strconv.Itoa(typ) + " " + string(data))
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

func trimNUL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

// auditMessage reads the one record of an audit multicast datagram. syscall.ParseNetlinkMessage
// cannot: the audit subsystem sets nlmsg_len to the payload's length without the 16-byte
// header (kept for compatibility, see kauditd_send_multicast_skb), so the payload is simply
// everything after the header.
func auditMessage(b []byte) (typ int, data []byte, ok bool) {
	if len(b) < syscall.NLMSG_HDRLEN {
		return 0, nil, false
	}
	typ = int(b[4]) | int(b[5])<<8 // nlmsg_type, little-endian on every platform Ward builds for
	return typ, trimNUL(b[syscall.NLMSG_HDRLEN:]), true
}
