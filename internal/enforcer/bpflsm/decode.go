// Decoding: a kernel event record into an enforcer.Event.

package bpflsm

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// Event flags (bpf/ward.c enum event_flag).
const (
	efWrite      = uint32(wardEventFlagEF_WRITE)
	efTTY        = uint32(wardEventFlagEF_TTY)
	efUnresolved = uint32(wardEventFlagEF_UNRESOLVED)
	efInode      = uint32(wardEventFlagEF_INODE)
	efNoSource   = uint32(wardEventFlagEF_NO_SOURCE)
	efDirInode   = uint32(wardEventFlagEF_DIRINODE)
)

func cstr(b []int8) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(b[i])
	}
	return string(out)
}

// convert turns a kernel record into an Event whose Access rules.Decide can
// attribute.
func (b *Backend) convert(e *wardEvent) enforcer.Event {
	b.mu.Lock()
	a := b.applied[e.Cgroup]
	b.mu.Unlock()
	ev := enforcer.Event{
		Backend: enforcer.BPF,
		PID:     e.Tgid,
		PPID:    e.Ppid,
		UID:     e.Uid,
		Comm:    cstr(e.Comm[:]),
		Errno:   int(e.Errno),
	}
	if a != nil {
		ev.Workload = a.id
	}
	acc := rules.Access{
		UID:    e.Uid,
		Owner:  e.Owner,
		Write:  e.Flags&efWrite != 0,
		TTY:    e.Flags&efTTY != 0,
		Source: cstr(e.Source[:]),
	}
	if acc.Source == "" && a != nil {
		acc.Source = a.tr.Sources[e.Src]
	}
	if acc.Source == "" {
		acc.Source = enforcer.Executable(e.Tgid)
	}
	// KubeArmor's Data names the system call and its flags; what Ward adds follows.
	detail := enforcer.SyscallData(e.Syscall, e.Args)
	switch uint8(e.Op) {
	case opFile, opProcess:
		acc.Op = policy.OpFile
		if uint8(e.Op) == opProcess {
			acc.Op = policy.OpProcess
		}
		acc.Path = cstr(e.Path[:])
		if e.Flags&efUnresolved != 0 {
			ev.FailClosed = true
			detail += fmt.Sprintf(" unresolved path (d_path: %d): denied, fail closed", e.PathLen)
		}
		if a != nil {
			if alias := a.tr.Alias(acc.Path); alias != acc.Path {
				detail += " opened=" + acc.Path
				acc.Path = alias
			}
		}
		if e.Flags&efDirInode != 0 && a != nil {
			// Decided by an ancestor directory's inode: attribute to the
			// same file below the rule's directory, keep the opened path.
			if p := a.tr.DirAlias(a.tr.host, acc.Path); p != acc.Path {
				detail += " opened=" + acc.Path
				acc.Path = p
			}
		}
		if e.Flags&efInode != 0 && a != nil {
			// Decided by inode: attribute to the rule's path, keep the opened one.
			detail += " opened=" + acc.Path
			// One stat of the opened path, then a map lookup: directory
			// rules key every hard-linked file below them (MaxLinkScan).
			if h, ok := inodeHash(a.tr.host, acc.Path); ok {
				if p, ok := a.tr.Inodes[h]; ok {
					acc.Path = p
				}
			}
		}
	case opNetwork:
		acc.Op = policy.OpNetwork
		acc.Family = familyName(e.Family)
		acc.SockType = typeName(e.Type)
		acc.Protocol = protoName(e.Family, e.Type, e.Protocol)
		if name, ok := socketHooks[wardSocketHook(e.Hook)]; ok {
			detail += " hook=" + name
		}
	case opCapabilities:
		acc.Op = policy.OpCapabilities
		acc.Capability = policy.CapabilityName(int(e.Cap))
	}
	if e.Flags&efNoSource != 0 {
		detail += " source unresolved"
	}
	ev.Access = acc
	ev.Detail = strings.TrimSpace(detail)
	return ev
}

// socketHooks names bpf/ward.c's socket hooks (event.hook).
var socketHooks = map[wardSocketHook]string{
	wardSocketHookHOOK_CREATE:  "socket_create",
	wardSocketHookHOOK_CONNECT: "socket_connect",
	wardSocketHookHOOK_ACCEPT:  "socket_accept",
	wardSocketHookHOOK_BIND:    "socket_bind",
	wardSocketHookHOOK_LISTEN:  "socket_listen",
	wardSocketHookHOOK_SENDMSG: "socket_sendmsg",
	wardSocketHookHOOK_RECVMSG: "socket_recvmsg",
}

func familyName(f int32) string { return policy.AddressFamilyName(int(f)) }

func typeName(t int32) string {
	for k, v := range sockTypes {
		if int32(v) == t && k != "dccp" {
			return k
		}
	}
	if t == 6 {
		return "dccp"
	}
	return strconv.Itoa(int(t))
}

func protoName(family, typ, proto int32) string {
	if proto == 0 && (family == unix.AF_INET || family == unix.AF_INET6) {
		switch typ {
		case 1:
			return "tcp"
		case 2:
			return "udp"
		}
	}
	for k, v := range protoNumbers {
		if int32(v) == proto {
			return k
		}
	}
	return ""
}
