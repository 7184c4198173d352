package apparmor

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/wardsec/ward/internal/auditlog"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// ErrNotAppArmor is returned by ParseRecord for a line that is not an AppArmor audit record, so
// that readers of a shared log can skip it.
var ErrNotAppArmor = errors.New("not an AppArmor audit record")

// Audit record types AppArmor uses.
const (
	TypeAVC     = 1400 // kernel AppArmor decisions (AUDIT_AVC)
	TypeUserAVC = 1107 // AppArmor decisions of user-space mediators such as dbus
)

// Record is one AppArmor audit record, as the kernel writes it to the audit netlink socket,
// auditd's log or the kernel log (/dev/kmsg).
type Record struct {
	// Type is the audit type (1400); 0 when the line did not say (a netlink payload, whose type
	// is in the message header).
	Type   int
	Time   time.Time
	Serial uint64
	// Apparmor is the outcome: DENIED, AUDIT, ALLOWED (complain mode), KILLED, STATUS, HINT.
	Apparmor  string
	Operation string
	Class     string
	// Profile is the label of the confined task: NAME, or NAME//CHILD inside a child profile.
	Profile string
	Name    string // the file, or the program executed
	Target  string // the profile an exec transitions to
	Comm    string
	PID     int
	// RequestedMask and DeniedMask are AppArmor's permission letters (r w a c d x m l k ...),
	// or the socket operation for network records.
	RequestedMask string
	DeniedMask    string
	FSUID, OUID   uint32
	HasOwner      bool // fsuid and ouid were present
	Capability    int
	CapName       string
	Family        string
	SockType      string
	Protocol      int
	Peer          string
	Info          string
	Error         int
}

// hexFields are the string fields the audit subsystem writes as hex when they hold a space, a
// quote or a control character (audit_log_untrustedstring).
var hexFields = map[string]bool{"name": true, "name2": true, "comm": true, "profile": true, "target": true,
	"peer": true, "label": true, "peer_label": true, "exe": true, "srcname": true, "fstype": true, "info": true}

// ParseRecord parses one AppArmor audit record in any of the forms the kernel produces:
//
//	6,1234,5678901,-;audit: type=1400 audit(1700000000.123:45): apparmor="DENIED" ...   (/dev/kmsg)
//	[   12.345678] audit: type=1400 audit(1700000000.123:45): apparmor="DENIED" ...      (dmesg, syslog)
//	type=AVC msg=audit(1700000000.123:45): apparmor="DENIED" ...                         (auditd's log)
//	audit(1700000000.123:45): apparmor="DENIED" ...                                      (audit netlink payload)
func ParseRecord(line string) (Record, error) {
	var rec Record
	line = strings.TrimRight(line, "\r\n")
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i] // /dev/kmsg continuation lines (" SUBSYSTEM=...") carry nothing for us
	}
	start := strings.Index(line, "audit(")
	if start < 0 || !strings.Contains(line, "apparmor=") {
		return rec, ErrNotAppArmor
	}
	if t := strings.LastIndex(line[:start], "type="); t >= 0 {
		v, _, _ := strings.Cut(line[t+len("type="):], " ")
		switch v {
		case "AVC":
			rec.Type = TypeAVC
		case "USER_AVC":
			rec.Type = TypeUserAVC
		default:
			n, err := strconv.Atoi(v)
			if err != nil {
				return rec, fmt.Errorf("parse audit record: type %q", v)
			}
			rec.Type = n
		}
	}
	var rest string
	var err error
	if rec.Time, rec.Serial, rest, err = auditlog.Stamp(line[start+len("audit("):]); err != nil {
		return rec, fmt.Errorf("parse audit record: %w", err)
	}
	fields, err := auditlog.Fields(rest, hexFields)
	if err != nil {
		return rec, fmt.Errorf("parse audit record: %w", err)
	}
	for _, f := range fields {
		if strings.ContainsAny(f[0], " \"") {
			return rec, fmt.Errorf("parse audit record: malformed field %q", f[0])
		}
	}
	var fsuid, ouid bool
	for _, f := range fields {
		k, v := f[0], f[1]
		num := func() int { n, _ := strconv.Atoi(v); return n }
		switch k {
		case "apparmor":
			rec.Apparmor = v
		case "operation":
			rec.Operation = v
		case "class":
			rec.Class = v
		case "profile":
			rec.Profile = v
		case "name":
			rec.Name = v
		case "target":
			rec.Target = v
		case "comm":
			rec.Comm = v
		case "pid":
			rec.PID = num()
		case "requested_mask":
			rec.RequestedMask = v
		case "denied_mask":
			rec.DeniedMask = v
		case "fsuid":
			rec.FSUID, fsuid = uint32(num()), true
		case "ouid":
			rec.OUID, ouid = uint32(num()), true
		case "capability":
			rec.Capability = num()
		case "capname":
			rec.CapName = v
		case "family":
			rec.Family = v
		case "sock_type":
			rec.SockType = v
		case "protocol":
			rec.Protocol = num()
		case "peer":
			rec.Peer = v
		case "info":
			rec.Info = v
		case "error":
			rec.Error = num()
		}
	}
	rec.HasOwner = fsuid && ouid
	if rec.Apparmor == "" {
		return rec, ErrNotAppArmor
	}
	return rec, nil
}

// Source returns the fromSource executable whose child profile, or its entry profile, produced
// the record, or "" for the workload's own profile. The child is named by the executable's path
// without its leading "/" (childName); a profile loaded by an older Ward has the path itself.
func (r Record) Source() string {
	if _, child := SplitLabel(r.Profile); child != "" {
		if !strings.HasPrefix(child, "/") {
			child = "/" + child
		}
		return child
	}
	return ""
}

// protocols maps IANA protocol numbers to the names policies use.
var protocols = map[int]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmpv6", 132: "sctp"}

// Attribute turns a record into the access it describes and asks rules.Decide what the workload's
// policies mean for it: the verdict names the policy and rule that made the kernel deny or audit.
// A record of an operation no policy category covers (signal, ptrace, mount, ...) gives an
// Access with an empty Op and a verdict without a policy.
//
// The kernel sees neither terminals nor arguments, so the access has TTY false and no Args; for
// rules with pts or allowedArgs the verdict may differ from what happened (docs/apparmor.md).
func Attribute(set *rules.Set, rec Record) (rules.Access, rules.Verdict) {
	a := rules.Access{Source: rec.Source(), UID: rec.FSUID, Owner: rec.OUID}
	if !rec.HasOwner {
		a.Owner = a.UID
	}
	mask := rec.RequestedMask
	if rec.Apparmor == "DENIED" && rec.DeniedMask != "" {
		mask = rec.DeniedMask
	}
	switch {
	case rec.Operation == "capable" || rec.CapName != "" && rec.Class == "cap":
		a.Op, a.Capability = policy.OpCapabilities, rec.CapName
	case rec.Family != "" || rec.Class == "net":
		a.Op, a.Family, a.SockType = policy.OpNetwork, rec.Family, rec.SockType
		a.Protocol = protocols[rec.Protocol]
		if rec.Protocol == 0 {
			// Protocol 0 is the family's default for the type.
			switch {
			case (a.Family == "inet" || a.Family == "inet6") && a.SockType == "stream":
				a.Protocol = "tcp"
			case (a.Family == "inet" || a.Family == "inet6") && a.SockType == "dgram":
				a.Protocol = "udp"
			}
		}
	case rec.Operation == "exec" || strings.Contains(mask, "x") && rec.Name != "":
		a.Op, a.Path = policy.OpProcess, cleanPath(rec.Name)
	case rec.Name != "" && strings.HasPrefix(rec.Name, "/"):
		a.Op, a.Path = policy.OpFile, cleanPath(rec.Name)
		a.Write = strings.ContainsAny(mask, "wacdl") || strings.HasPrefix(rec.Operation, "rename") ||
			rec.Operation == "unlink" || rec.Operation == "rmdir" || rec.Operation == "mkdir" ||
			rec.Operation == "mknod" || rec.Operation == "truncate" || rec.Operation == "chmod" || rec.Operation == "chown"
	default:
		return rules.Access{}, rules.Verdict{RuleID: -1}
	}
	v := set.Decide(a)
	if a.Op == policy.OpFile && strings.Contains(mask, "m") && v.Action != policy.ActionBlock {
		// A Block process rule also denies mapping its program executable (the ld.so bypass).
		pa := a
		pa.Op, pa.Write = policy.OpProcess, false
		if pv := set.Decide(pa); pv.Action == policy.ActionBlock {
			return pa, pv
		}
	}
	if rec.Operation == "link" && strings.HasPrefix(rec.Target, "/") && v.Action != policy.ActionBlock {
		// A hard link is denied for what its target may not get (AppArmor's link pair rule): a
		// new name for a blocked file, or for a blocked program. The alert names the target.
		for _, op := range []policy.Operation{policy.OpFile, policy.OpProcess} {
			ta := a
			ta.Op, ta.Path, ta.Write = op, cleanPath(rec.Target), op == policy.OpFile
			if tv := set.Decide(ta); tv.Action == policy.ActionBlock {
				return ta, tv
			}
		}
	}
	if a.Op == policy.OpFile && a.Write && v.Action != policy.ActionBlock && strings.HasSuffix(rec.Name, "/") {
		// A directory above a blocked path may not be renamed (docs/apparmor.md, "Renaming a
		// directory above a rule's path").
		if ra, rv, ok := ancestorVerdict(set, a, rec.Name); ok {
			return ra, rv
		}
	}
	return a, v
}

// shapeRecord attributes a record with the first of sets (the profile's loaded set, the one
// being loaded, the one the last load replaced; nil when there is none) that explains it: for a
// denial, the first whose verdict is a Block, else the first set. What a record is about depends
// on the set (a denied mapping is a process access when a process rule blocks the program, the
// ld.so case in Attribute), and a denial read while a profile is replaced can come from either
// side of the replacement. It returns a nil set for a profile that is none of Ward's.
func shapeRecord(rec Record, sets ...*rules.Set) (*rules.Set, rules.Access) {
	var first *rules.Set
	var firstAccess rules.Access
	for _, s := range sets {
		if s == nil {
			continue
		}
		a, v := Attribute(s, rec)
		if rec.Apparmor != "DENIED" || v.Action == policy.ActionBlock {
			return s, a
		}
		if first == nil {
			first, firstAccess = s, a
		}
	}
	return first, firstAccess
}

func cleanPath(p string) string {
	if p == "" {
		return p
	}
	return path.Clean(p)
}
