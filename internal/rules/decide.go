package rules

import (
	"strings"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Decide returns what the Set means for one access. The precedence, documented with examples in
// docs/semantics.md, is:
//
//  1. Only rules of the access's operation whose target, fromSource and (for syscalls) syscall
//     match are considered.
//  2. readOnly, ownerOnly, pts and allowedArgs describe the accesses a rule permits. An Allow rule
//     applies to the accesses inside that set. A Block rule applies to the accesses outside it
//     (all of them when it has none of these), and so does an Audit rule: Audit is a dry run of
//     Block, reporting exactly what Block would deny.
//  3. Specific before general: a rule limited by fromSource to the acting executable decides
//     before every rule without fromSource (KubeArmor's BPF-LSM checks the (path, source) rules
//     first, its AppArmor backend leaves the general deny out of a program's own profile). Among
//     rules of equal specificity Block beats Audit beats Allow, whatever their targets.
//  4. Among rules with the same specificity and action the most specific target names the
//     verdict: exact path, then execname, then the deepest directory (direct-children before
//     recursive), then the longest pattern; then the earlier rule.
//  5. When no rule applies and the operation's category is an allow-list (some Allow rule of that
//     operation in the Set, with or without fromSource), the posture decides under the policy
//     name DefaultPosture; otherwise the access is allowed without an alert.
//  6. A workload in audited mode has every Block turned into an alert: "Audit (Block)".
//
// Decide does not allocate and looks only at rules indexed under the access's own path, its
// ancestors, its base name or its protocol, capability or syscall name.
func (s *Set) Decide(a Access) Verdict {
	oi, ok := opIndexOf(a.Op)
	if !ok {
		return Verdict{Action: policy.ActionAllow, DisplayAction: string(policy.ActionAllow)}
	}
	var b best
	x := &s.index[oi]
	switch oi {
	case opProcess, opFile, opSyscall:
		if a.Path != "" {
			s.considerPath(x, &a, oi == opProcess, &b)
		}
		if oi == opSyscall && a.Syscall != "" {
			s.considerAll(x.exact["syscall:"+a.Syscall], &a, &b, levelName)
		}
	case opNetwork:
		if a.Domain != "" {
			s.considerAll(x.exact["dns:"+a.Domain], &a, &b, levelName)
			break
		}
		s.considerAll(x.exact["all"], &a, &b, levelAny)
		if a.Protocol != "" {
			s.considerAll(x.exact[a.Protocol], &a, &b, levelName)
		}
		if a.SockType != "" && a.SockType != a.Protocol {
			s.considerAll(x.exact[a.SockType], &a, &b, levelName)
		}
		if a.Family == "packet" {
			s.considerAll(x.exact["packet"], &a, &b, levelName)
		}
		if a.Family != "" {
			// An address family rule (AF_RDS, normalised to af_rds) matches the socket's domain.
			s.considerAll(x.exact[familyKey(a.Family)], &a, &b, levelName)
		}
	case opCapabilities:
		s.considerAll(x.exact[a.Capability], &a, &b, levelName)
	}

	var v Verdict
	switch {
	case b.rule != nil:
		r := b.rule
		v = Verdict{
			Action: r.Action, Alert: r.Action != policy.ActionAllow,
			Policy: r.PolicyName, PolicyKind: r.PolicyKind, Namespace: r.Namespace,
			Rule: r.Field, RuleID: r.ID,
			Severity: r.Severity, Tags: r.Tags, Message: r.Message,
		}
	case oi != opSyscall && s.allow[oi]:
		v = Verdict{Action: s.Postures.For(a.Op), Alert: true, Policy: DefaultPosturePolicy, Posture: true, RuleID: -1}
	default:
		v = Verdict{Action: policy.ActionAllow, RuleID: -1}
	}
	v.DisplayAction = string(v.Action)
	if v.Action == policy.ActionBlock && s.Workload.Mode == workload.ModeAudited {
		v.Action, v.DisplayAction = policy.ActionAudit, "Audit (Block)"
	}
	return v
}

// Specificity levels of a rule's target (rule 4 of Decide).
const (
	levelAny     = iota // protocol "all"
	levelPattern        // glob
	levelDir            // directory
	levelExec           // execname
	levelName           // exact path, protocol, capability, syscall, domain
)

// best tracks the winning rule so far.
type best struct {
	rule      *Rule
	level     int
	valueLen  int
	scoped    bool
	recursive bool
}

func actionRank(a policy.Action) int {
	switch a {
	case policy.ActionBlock:
		return 3
	case policy.ActionAudit:
		return 2
	case policy.ActionAllow:
		return 1
	}
	return 0
}

// beats reports whether r (at level) should replace the current best.
func (b *best) beats(r *Rule, level int) bool {
	if b.rule == nil {
		return true
	}
	if scoped := len(r.FromSource) > 0; scoped != b.scoped {
		return scoped
	}
	if ra, ba := actionRank(r.Action), actionRank(b.rule.Action); ra != ba {
		return ra > ba
	}
	if level != b.level {
		return level > b.level
	}
	if l := len(r.Value); l != b.valueLen {
		return l > b.valueLen
	}
	if r.Recursive != b.recursive {
		return !r.Recursive
	}
	return r.ID < b.rule.ID
}

func (b *best) offer(r *Rule, level int) {
	if b.beats(r, level) {
		*b = best{rule: r, level: level, valueLen: len(r.Value), scoped: len(r.FromSource) > 0, recursive: r.Recursive}
	}
}

func (s *Set) considerAll(ids []int32, a *Access, b *best, level int) {
	for _, id := range ids {
		r := &s.Rules[id]
		if applies(r, a) {
			b.offer(r, level)
		}
	}
}

// considerPath looks up the path itself, its base name (process execname), every ancestor
// directory and every pattern anchored at an ancestor.
func (s *Set) considerPath(x *opIndex, a *Access, process bool, b *best) {
	p := a.Path
	s.considerAll(x.exact[p], a, b, levelName)
	last := strings.LastIndexByte(p, '/')
	if process && last >= 0 && last < len(p)-1 {
		s.considerAll(x.exact[execKey(p[last+1:])], a, b, levelExec)
	}
	// A directory rule covers the directory itself too (listing or opening a protected
	// directory is an access to it), so directories are also indexed without their slash.
	s.considerDirs(x.dirSelf[p], a, b, true)
	for i := last; i >= 0; i = strings.LastIndexByte(p[:i], '/') {
		dir := p[:i+1]
		if x.dirs != nil {
			s.considerDirs(x.dirs[dir], a, b, i == last)
		}
		for _, id := range x.patterns[dir] {
			r := &s.Rules[id]
			if x.globs[id].Match(p) && applies(r, a) {
				b.offer(r, levelPattern)
			}
		}
		if i == 0 {
			break
		}
	}
}

func (s *Set) considerDirs(ids []int32, a *Access, b *best, direct bool) {
	for _, id := range ids {
		r := &s.Rules[id]
		if (direct || r.Recursive) && applies(r, a) {
			b.offer(r, levelDir)
		}
	}
}

// applies checks everything about a rule apart from its target: fromSource, the syscall, and
// whether the access lies inside or outside the set the rule's modifiers permit (rule 2).
func applies(r *Rule, a *Access) bool {
	if len(r.FromSource) > 0 && !sourceMatches(r.FromSource, a.Source) {
		return false
	}
	if r.Operation == policy.OpSyscall && r.Match != policy.MatchSyscall && !contains(r.Syscalls, a.Syscall) {
		return false
	}
	modified := r.ReadOnly || r.OwnerOnly || r.PTS != nil || len(r.AllowedArgs) > 0
	if !modified {
		return true
	}
	permitted := (!r.ReadOnly || !a.Write) &&
		(!r.OwnerOnly || a.UID == a.Owner) &&
		(r.PTS == nil || *r.PTS == a.TTY) &&
		argsAllowed(r.AllowedArgs, a.Args)
	if r.Action == policy.ActionAllow {
		return permitted
	}
	// Block denies what lies outside the permitted set; Audit reports the same accesses.
	return !permitted
}

func sourceMatches(sources []policy.FromSource, exe string) bool {
	for _, fs := range sources {
		switch {
		case fs.Path != "":
			if fs.Path == exe {
				return true
			}
		case fs.Dir != "":
			if strings.HasPrefix(exe, fs.Dir) && (fs.Recursive || !strings.Contains(exe[len(fs.Dir):], "/")) {
				return true
			}
		}
	}
	return false
}

// argsAllowed: with allowedArgs set, an execution is inside the permitted set only when every
// argument it passes is listed.
func argsAllowed(allowed, args []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, arg := range args {
		if !contains(allowed, arg) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// UnresolvedMessage is the alert message of an access denied because its path could not be
// resolved (Unresolved).
const UnresolvedMessage = "path could not be resolved: denied, fail closed"

// Unresolved returns what the Set means for an access of operation op whose path cannot be
// known (longer than PATH_MAX, or a file opened by its handle with no link to its directory):
// since any rule might name it, it is blocked where some rule of op blocks or op is an
// allow-list (fail closed), and allowed without an alert otherwise. No rule decided, so the
// verdict names no policy.
func (s *Set) Unresolved(op policy.Operation) Verdict {
	v := Verdict{Action: policy.ActionAllow, RuleID: -1}
	oi, ok := opIndexOf(op)
	if ok && oi != opSyscall && (s.allow[oi] || s.blocks(op)) {
		v = Verdict{Action: policy.ActionBlock, Alert: true, RuleID: -1, Message: UnresolvedMessage}
	}
	v.DisplayAction = string(v.Action)
	if v.Action == policy.ActionBlock && s.Workload.Mode == workload.ModeAudited {
		v.Action, v.DisplayAction = policy.ActionAudit, "Audit (Block)"
	}
	return v
}

// blocks reports whether some rule of op blocks.
func (s *Set) blocks(op policy.Operation) bool {
	for _, r := range s.Rules {
		if r.Operation == op && r.Action == policy.ActionBlock {
			return true
		}
	}
	return false
}
