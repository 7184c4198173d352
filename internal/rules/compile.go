package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/wardsec/ward/internal/glob"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Compile builds the Set for one workload from all known policies: it keeps the policies that
// cover the workload, orders them, and indexes their rules for Decide. A workload whose mode is
// disabled gets an empty Set.
//
// Patterns were validated by the policy parser; one that still fails to compile is an error
// rather than a rule silently dropped.
func Compile(policies []policy.Policy, w workload.Workload, postures Postures) (*Set, error) {
	return CompileFrom(pointers(policies), w, postures)
}

// pointers returns a pointer to each of ps.
func pointers(ps []policy.Policy) []*policy.Policy {
	out := make([]*policy.Policy, len(ps))
	for i := range ps {
		out[i] = &ps[i]
	}
	return out
}

// CompileFrom is Compile for policies held by pointer, as the daemon holds the accepted ones
// (a copy of each policy per round made most of a policy edit's garbage).
func CompileFrom(policies []*policy.Policy, w workload.Workload, postures Postures) (*Set, error) {
	var covering []*policy.Policy
	for _, p := range policies {
		if Covers(p, &w) {
			covering = append(covering, p)
		}
	}
	return compileCovering(covering, w, postures)
}

// compileCovering builds the Set of w from the policies that cover it, given in the order of
// the policies slice they come from; it puts them in Set order (by key, stable).
func compileCovering(covering []*policy.Policy, w workload.Workload, postures Postures) (*Set, error) {
	sort.SliceStable(covering, func(i, j int) bool { return covering[i].Key() < covering[j].Key() })
	set := &Set{Workload: w, Postures: postures}
	if set.Postures.File == "" {
		set.Postures.File = policy.ActionAudit
	}
	if set.Postures.Network == "" {
		set.Postures.Network = policy.ActionAudit
	}
	if set.Postures.Capabilities == "" {
		set.Postures.Capabilities = policy.ActionAudit
	}

	for _, p := range covering {
		set.Policies = append(set.Policies, p.Key())
		for _, r := range p.Rules {
			set.Rules = append(set.Rules, Rule{
				Rule:       r,
				ID:         len(set.Rules),
				PolicyName: p.Name,
				PolicyKind: p.Kind,
				Namespace:  p.Namespace,
			})
		}
		for _, pr := range p.Presets {
			set.Presets = append(set.Presets, Preset{Preset: pr, PolicyName: p.Name})
		}
		for _, d := range p.Devices {
			set.Devices = append(set.Devices, Device{DeviceRule: d, PolicyName: p.Name})
		}
		if p.AppArmor != "" {
			set.AppArmor = append(set.AppArmor, RawAppArmor{PolicyName: p.Name, Text: p.AppArmor})
		}
	}
	if err := set.build(); err != nil {
		return nil, err
	}
	return set, nil
}

// build fills the indexes and allow-list flags from set.Rules.
func (s *Set) build() error {
	for i := range s.index {
		s.index[i] = opIndex{}
		s.allow[i] = false
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		oi, ok := opIndexOf(r.Operation)
		if !ok {
			return fmt.Errorf("policy %s: %s: unknown operation %q", r.PolicyName, r.Field, r.Operation)
		}
		if err := s.index[oi].add(r); err != nil {
			return fmt.Errorf("policy %s: %s: %w", r.PolicyName, r.Field, err)
		}
		// Any Allow rule, with or without fromSource, turns its operation into an allow-list
		// for the whole workload, as KubeArmor's AppArmor and BPF-LSM backends do.
		if r.Action == policy.ActionAllow && r.Operation != policy.OpSyscall {
			s.allow[oi] = true
		}
	}
	return nil
}

// Operations that Decide knows, as dense indexes.
const (
	opProcess = iota
	opFile
	opNetwork
	opCapabilities
	opSyscall
	numOps
)

func opIndexOf(op policy.Operation) (int, bool) {
	switch op {
	case policy.OpProcess:
		return opProcess, true
	case policy.OpFile:
		return opFile, true
	case policy.OpNetwork:
		return opNetwork, true
	case policy.OpCapabilities:
		return opCapabilities, true
	case policy.OpSyscall:
		return opSyscall, true
	}
	return 0, false
}

// opIndex finds the rules that can match an access of one operation without scanning the others:
// exact values in maps, directories and patterns by directory so that a path lookup walks its own
// ancestors (O(depth)) whatever the number of rules.
type opIndex struct {
	exact    map[string][]int32 // paths, execnames (prefixed), protocols, capabilities, domains, syscalls
	dirs     map[string][]int32 // directory (with trailing "/") -> rules
	dirSelf  map[string][]int32 // the same directory without its slash ("/" stays "/")
	patterns map[string][]int32 // literal directory of a pattern -> rules
	globs    map[int32]*glob.Glob
}

// execKey keeps execname entries apart from paths in the exact map (a path always starts with
// "/", an execname never contains one).
func execKey(name string) string { return "exec:" + name }

func (x *opIndex) add(r *Rule) error {
	id := int32(r.ID)
	put := func(m *map[string][]int32, k string) {
		if *m == nil {
			*m = map[string][]int32{}
		}
		(*m)[k] = append((*m)[k], id)
	}
	switch r.Match {
	case policy.MatchPath:
		put(&x.exact, r.Value)
	case policy.MatchExecName:
		put(&x.exact, execKey(r.Value))
	case policy.MatchDirectory:
		put(&x.dirs, r.Value)
		if r.Value == "/" {
			put(&x.dirSelf, "/")
		} else {
			put(&x.dirSelf, strings.TrimSuffix(r.Value, "/"))
		}
	case policy.MatchPattern:
		g, err := glob.Compile(r.Value)
		if err != nil {
			return err
		}
		if x.globs == nil {
			x.globs = map[int32]*glob.Glob{}
		}
		x.globs[id] = g
		put(&x.patterns, glob.LiteralDir(r.Value))
	case policy.MatchProtocol, policy.MatchCapability:
		put(&x.exact, r.Value)
	case policy.MatchDNSQuery:
		put(&x.exact, "dns:"+r.Value)
	case policy.MatchSyscall:
		for _, sc := range r.Syscalls {
			put(&x.exact, "syscall:"+sc)
		}
	default:
		return fmt.Errorf("unknown match kind %q", r.Match)
	}
	return nil
}
