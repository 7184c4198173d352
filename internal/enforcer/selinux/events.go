package selinux

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardsec/ward/internal/auditlog"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// ErrNotAVC is returned by ParseAVC for a line that is not an SELinux AVC record, so that readers
// of a shared log can skip it.
var ErrNotAVC = errors.New("not an SELinux AVC record")

// TypeAVC is the audit record type of kernel AVC decisions (AUDIT_AVC).
const TypeAVC = 1400

// AVC is one SELinux access vector cache record: a denial, or a grant that auditallow asked for.
type AVC struct {
	Time   time.Time
	Serial uint64
	// Denied is true for "avc: denied", false for "avc: granted".
	Denied bool
	Perms  []string
	PID    int
	Comm   string
	// Name is the file's base name (inode checks); Path its full path (checks on an open
	// file). Either may be empty.
	Name string
	Path string
	Dev  string
	Ino  uint64
	// SContext is the acting process's context, TContext the target's.
	SContext   string
	TContext   string
	TClass     string
	Permissive bool
}

// SourceType and TargetType are the type fields of the contexts.
func (a AVC) SourceType() string { return typeOfContext(a.SContext) }

// TargetType is the type of the target's context.
func (a AVC) TargetType() string { return typeOfContext(a.TContext) }

// hexFields are the strings the audit subsystem writes as hex when they hold a space, a quote or
// a control character (audit_log_untrustedstring).
var hexFields = map[string]bool{"comm": true, "name": true, "path": true}

// ParseAVC parses one AVC record in any of the forms the kernel produces:
//
//	6,1234,5678901,-;audit: type=1400 audit(1700000000.123:45): avc:  denied  { read } for ...   (/dev/kmsg)
//	type=AVC msg=audit(1700000000.123:45): avc:  denied  { read } for ...                        (auditd's log)
//	audit(1700000000.123:45): avc:  granted  { read } for ...                                    (audit netlink)
func ParseAVC(line string) (AVC, error) {
	var rec AVC
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	start := strings.Index(line, "audit(")
	avc := strings.Index(line, "avc:")
	if start < 0 || avc < start {
		return rec, ErrNotAVC
	}
	var err error
	if rec.Time, rec.Serial, _, err = auditlog.Stamp(line[start+len("audit("):]); err != nil {
		return rec, fmt.Errorf("parse avc record: %w", err)
	}

	rest := strings.TrimLeft(line[avc+len("avc:"):], " ")
	switch {
	case strings.HasPrefix(rest, "denied"):
		rec.Denied = true
	case strings.HasPrefix(rest, "granted"):
	default:
		return rec, ErrNotAVC // "avc: received policyload notice" and the like
	}
	lb, rb := strings.IndexByte(rest, '{'), strings.IndexByte(rest, '}')
	if lb < 0 || rb < lb {
		return rec, fmt.Errorf("parse avc record: no permission list in %q", line)
	}
	rec.Perms = strings.Fields(rest[lb+1 : rb])
	rest = strings.TrimPrefix(strings.TrimLeft(rest[rb+1:], " "), "for")
	// An unterminated quote keeps the rest of the line as the last value.
	fields, _ := auditlog.Fields(rest, hexFields)
	for _, f := range fields {
		k, v := f[0], f[1]
		switch k {
		case "pid":
			rec.PID, _ = strconv.Atoi(v)
		case "comm":
			rec.Comm = v
		case "name":
			rec.Name = v
		case "path":
			rec.Path = v
		case "dev":
			rec.Dev = v
		case "ino":
			rec.Ino, _ = strconv.ParseUint(v, 10, 64)
		case "scontext":
			rec.SContext = v
		case "tcontext":
			rec.TContext = v
		case "tclass":
			rec.TClass = v
		case "permissive":
			rec.Permissive = v == "1"
		}
	}
	if rec.SContext == "" || rec.TClass == "" {
		return rec, fmt.Errorf("parse avc record: no scontext or tclass in %q", line)
	}
	return rec, nil
}

// execPerms are the permissions of running a program.
var execPerms = []string{"execute", "execute_no_trans", "entrypoint"}

// Resolver tells Attribute what an AVC record leaves out.
type Resolver struct {
	// PathsOf returns the labelled files with an inode number: more than one when file
	// systems' numbers collide.
	PathsOf func(ino uint64) []Labelled
	// SourceOf returns the fromSource executable of a Ward domain type, or "".
	SourceOf func(domain string) string
	// Exe returns the acting process's executable (from /proc/PID/exe), or "".
	Exe func(pid int) string
}

// Attribute turns an AVC record into the access it describes and asks rules.Decide what the
// host's policies mean for it. A record that is not about a file or a program (a socket, a
// capability) gives an Access with an empty Op.
//
// SELinux records neither the file owner nor the terminal: the access has UID and Owner 0 and
// TTY false unless another of those explains the record (a non-owner for a denial under an
// ownerOnly rule, docs/selinux.md).
func Attribute(set *rules.Set, rec AVC, res Resolver) (rules.Access, rules.Verdict) {
	switch rec.TClass {
	case "file", "dir", "lnk_file":
	default:
		return rules.Access{}, rules.Verdict{RuleID: -1}
	}
	// The path the record names is the one the process used: through a bind mount, a chroot,
	// another hard link or a renamed ancestor it is not the rule's. The label is the rule's,
	// and the inode names the file Ward labelled, so that path is tried next.
	var paths []string
	if strings.HasPrefix(rec.Path, "/") {
		paths = append(paths, path.Clean(rec.Path))
	}
	if res.PathsOf != nil {
		// Files of several file systems may share the number: those of the record's class
		// are tried first, and among them those with the record's base name (a file with
		// several names may be recorded under another).
		name := rec.Name
		if name == "" && rec.Path != "" {
			name = path.Base(rec.Path)
		}
		score := func(l Labelled) int {
			n := 0
			if l.Kind == "" || l.Kind == rec.TClass {
				n += 2
			}
			if name != "" && path.Base(l.Path) == name {
				n++
			}
			return n
		}
		byIno := res.PathsOf(rec.Ino)
		slices.SortStableFunc(byIno, func(a, b Labelled) int { return score(b) - score(a) })
		for _, l := range byIno {
			if !slices.Contains(paths, l.Path) {
				paths = append(paths, l.Path)
			}
		}
	}
	if len(paths) == 0 {
		paths = append(paths, rec.Name)
	}
	a := rules.Access{Op: policy.OpFile}
	if res.SourceOf != nil {
		a.Source = res.SourceOf(rec.SourceType())
	}
	if a.Source == "" && res.Exe != nil {
		a.Source = res.Exe(rec.PID)
	}
	for _, p := range rec.Perms {
		if slices.Contains(execPerms, p) {
			a.Op = policy.OpProcess
		}
		if writePerms[p] {
			a.Write = true
		}
	}
	if a.Op == policy.OpProcess {
		a.Write = false
	}
	// The record does not say who owns the file or whether the process has a terminal. The
	// module was built from the strictest verdict over those (see decide), so the variant that
	// explains the record is the one whose verdict matches it: Block for a denial, Audit for a
	// grant. The access is returned as that variant so that Decide on it names the same rule.
	want := policy.ActionAudit
	if rec.Denied {
		want = policy.ActionBlock
	}
	for _, p := range paths {
		va := a
		va.Path = p
		if ea, v, ok := explain(set, va, want); ok {
			return ea, v
		}
	}
	a.Path = paths[0]
	return a, set.Decide(a)
}

// explain finds the variant of a (owner, terminal) whose verdict is want.
func explain(set *rules.Set, a rules.Access, want policy.Action) (rules.Access, rules.Verdict, bool) {
	if v := set.Decide(a); v.Action == want {
		return a, v, true
	}
	for _, uid := range []uint32{0, 1} {
		for _, tty := range []bool{false, true} {
			va := a
			va.UID, va.Owner, va.TTY = uid, 0, tty
			if v := set.Decide(va); v.Action == want {
				return va, v, true
			}
		}
	}
	return a, rules.Verdict{}, false
}
