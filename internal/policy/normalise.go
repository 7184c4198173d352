package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/wardsec/ward/api/v1"
)

// smta is the inherited part of a rule: what an item does not say, its section says, and what
// the section does not say, the spec says.
type smta struct {
	severity int
	tags     []string
	message  string
	action   Action
}

func fromSMTA(s v1.SMTA) smta {
	a, _ := parseAction(string(s.Action)) // validated already; "" stays unset
	return smta{severity: int(s.Severity), tags: s.Tags, message: s.Message, action: a}
}

// under fills what s lacks from its parent.
func (s smta) under(parent smta) smta {
	if s.severity == 0 {
		s.severity = parent.severity
	}
	if len(s.tags) == 0 {
		s.tags = parent.tags
	}
	if s.message == "" {
		s.message = parent.message
	}
	if s.action == "" {
		s.action = parent.action
	}
	return s
}

func (s smta) apply(r *Rule) {
	r.Severity, r.Tags, r.Message, r.Action = s.severity, slices.Clone(s.tags), s.message, s.action
}

func fromSources(srcs []v1.MatchSourceType) []FromSource {
	if len(srcs) == 0 {
		return nil
	}
	out := make([]FromSource, len(srcs))
	for i, s := range srcs {
		out[i] = FromSource{Path: s.Path}
	}
	return out
}

func syscallSources(srcs []v1.SyscallFromSourceType) []FromSource {
	if len(srcs) == 0 {
		return nil
	}
	out := make([]FromSource, len(srcs))
	for i, s := range srcs {
		out[i] = FromSource{Path: s.Path, Dir: s.Directory, Recursive: s.Recursive && s.Directory != ""}
	}
	return out
}

// normalise turns a checked document into a Policy (§4 of the compatibility notes). It assumes
// validate passed, so it does not check again.
func (d *docState) normalise(v *view) *Policy {
	p := &Policy{
		Kind:     v.kind,
		Name:     v.meta.Name,
		Source:   Source{File: d.file, Doc: d.doc, Line: v.line},
		AppArmor: v.spec.AppArmor,
	}
	spec := fromSMTA(v.spec.SMTA)
	if spec.action == "" {
		spec.action = ActionBlock // KubeArmor's default
	}
	switch v.kind {
	case KindPolicy:
		p.Namespace = v.meta.Namespace
		if p.Namespace == "" {
			p.Namespace = DefaultNamespace
		}
		p.Selector = d.selector(v.selector, true)
	case KindClusterPolicy:
		p.Selector = d.selector(v.selector, false)
	case KindHostPolicy:
		if len(v.nodeSel.MatchLabels) > 0 {
			p.Selector.NodeLabels = maps.Clone(v.nodeSel.MatchLabels)
		}
	}
	p.Rules = d.rules(v.spec, spec)
	for _, ps := range v.presets {
		a, _ := parseAction(string(ps.Action))
		if a == "" {
			a = spec.action
		}
		p.Presets = append(p.Presets, Preset{Name: ps.Name, Action: a})
	}
	if v.device != nil {
		sec := fromSMTA(v.device.SMTA).under(spec)
		for i, m := range v.device.MatchDevice {
			s := fromSMTA(m.SMTA).under(sec)
			class, _ := canonicalUSBClass(m.Class)
			p.Devices = append(p.Devices, DeviceRule{
				Field: fmt.Sprintf("spec.device.matchDevice[%d]", i), Class: class,
				SubClass: m.SubClass, Protocol: m.Protocol, Level: m.Level,
				Action: s.action, Severity: s.severity, Tags: slices.Clone(s.tags), Message: s.message,
			})
		}
	}
	return p
}

func (d *docState) selector(sel *v1.SelectorType, ksp bool) Selector {
	var out Selector
	for _, k := range sortedKeys(sel.MatchLabels) {
		val := sel.MatchLabels[k]
		if ksp && k == containerNameLabel {
			out.Containers = containerNames(val)
			continue
		}
		if out.MatchLabels == nil {
			out.MatchLabels = map[string]string{}
		}
		out.MatchLabels[k] = val
	}
	for _, e := range sel.MatchExpressions {
		out.Expressions = append(out.Expressions, Expression{Key: e.Key, Operator: e.Operator, Values: slices.Clone(e.Values)})
	}
	return out
}

// rules flattens the sections in the order internal/rules relies on for stable output.
func (d *docState) rules(s *v1.RuleSpec, spec smta) []Rule {
	var out []Rule
	add := func(field string, r Rule, s smta) {
		r.Field, r.Line = field, d.lineOf(field)
		s.apply(&r)
		out = append(out, r)
	}

	proc := fromSMTA(s.Process.SMTA).under(spec)
	for i, m := range s.Process.MatchPaths {
		r := Rule{Operation: OpProcess, Match: MatchPath, Value: m.Path, OwnerOnly: m.OwnerOnly, PTS: m.PTS,
			AllowedArgs: slices.Clone(m.AllowedArgs), FromSource: fromSources(m.FromSource)}
		if m.ExecName != "" {
			r.Match, r.Value = MatchExecName, m.ExecName
		}
		add(fmt.Sprintf("spec.process.matchPaths[%d]", i), r, fromSMTA(m.SMTA).under(proc))
	}
	for i, m := range s.Process.MatchDirectories {
		add(fmt.Sprintf("spec.process.matchDirectories[%d]", i), Rule{Operation: OpProcess, Match: MatchDirectory,
			Value: m.Directory, Recursive: m.Recursive, OwnerOnly: m.OwnerOnly, PTS: m.PTS,
			FromSource: fromSources(m.FromSource)}, fromSMTA(m.SMTA).under(proc))
	}
	for i, m := range s.Process.MatchPatterns {
		add(fmt.Sprintf("spec.process.matchPatterns[%d]", i), Rule{Operation: OpProcess, Match: MatchPattern,
			Value: m.Pattern, OwnerOnly: m.OwnerOnly}, fromSMTA(m.SMTA).under(proc))
	}

	file := fromSMTA(s.File.SMTA).under(spec)
	for i, m := range s.File.MatchPaths {
		add(fmt.Sprintf("spec.file.matchPaths[%d]", i), Rule{Operation: OpFile, Match: MatchPath, Value: m.Path,
			ReadOnly: m.ReadOnly, OwnerOnly: m.OwnerOnly, PTS: m.PTS, FromSource: fromSources(m.FromSource)},
			fromSMTA(m.SMTA).under(file))
	}
	for i, m := range s.File.MatchDirectories {
		add(fmt.Sprintf("spec.file.matchDirectories[%d]", i), Rule{Operation: OpFile, Match: MatchDirectory,
			Value: m.Directory, Recursive: m.Recursive, ReadOnly: m.ReadOnly, OwnerOnly: m.OwnerOnly, PTS: m.PTS,
			FromSource: fromSources(m.FromSource)}, fromSMTA(m.SMTA).under(file))
	}
	for i, m := range s.File.MatchPatterns {
		add(fmt.Sprintf("spec.file.matchPatterns[%d]", i), Rule{Operation: OpFile, Match: MatchPattern,
			Value: m.Pattern, ReadOnly: m.ReadOnly, OwnerOnly: m.OwnerOnly}, fromSMTA(m.SMTA).under(file))
	}

	net := fromSMTA(s.Network.SMTA).under(spec)
	for i, m := range s.Network.MatchProtocols {
		f := fmt.Sprintf("spec.network.matchProtocols[%d]", i)
		vals, _ := splitList(m.Protocol)
		for _, p := range vals {
			add(f, Rule{Operation: OpNetwork, Match: MatchProtocol, Value: protocolValue(p), PTS: m.PTS,
				FromSource: fromSources(m.FromSource)}, fromSMTA(m.SMTA).under(net))
		}
	}
	for i, m := range s.Network.MatchDNSQueries {
		f := fmt.Sprintf("spec.network.matchDNSQueries[%d]", i)
		vals, _ := splitList(m.Domain)
		for _, dom := range vals {
			add(f, Rule{Operation: OpNetwork, Match: MatchDNSQuery, Value: dom,
				FromSource: fromSources(m.FromSource)}, fromSMTA(m.SMTA).under(net))
		}
	}

	caps := fromSMTA(s.Capabilities.SMTA).under(spec)
	for i, m := range s.Capabilities.MatchCapabilities {
		f := fmt.Sprintf("spec.capabilities.matchCapabilities[%d]", i)
		vals, _ := splitList(m.Capability)
		for _, c := range vals {
			name, _ := canonicalCapability(c)
			if c != name {
				d.warnf(f+".capability", c, "%q read as %q: KubeArmor's CRD accepts only lower-case names without \"cap_\"", c, name)
			}
			add(f, Rule{Operation: OpCapabilities, Match: MatchCapability, Value: name,
				FromSource: fromSources(m.FromSource)}, fromSMTA(m.SMTA).under(caps))
		}
	}

	// Syscall rules only ever audit: KubeArmor's syscalls section has no action.
	sys := smta{severity: int(s.Syscalls.Severity), tags: s.Syscalls.Tags, message: s.Syscalls.Message}.under(spec)
	sys.action = ActionAudit
	for i, m := range s.Syscalls.MatchSyscalls {
		add(fmt.Sprintf("spec.syscalls.matchSyscalls[%d]", i), Rule{Operation: OpSyscall, Match: MatchSyscall,
			Syscalls: slices.Clone(m.Syscalls), FromSource: syscallSources(m.FromSource)},
			smta{severity: int(m.Severity), tags: m.Tags, message: m.Message}.under(sys))
	}
	for i, m := range s.Syscalls.MatchPaths {
		r := Rule{Operation: OpSyscall, Match: MatchPath, Value: m.Path, Syscalls: slices.Clone(m.Syscalls),
			FromSource: syscallSources(m.FromSource)}
		if strings.HasSuffix(m.Path, "/") {
			r.Match, r.Recursive = MatchDirectory, m.Recursive
		}
		add(fmt.Sprintf("spec.syscalls.matchPaths[%d]", i), r,
			smta{severity: int(m.Severity), tags: m.Tags, message: m.Message}.under(sys))
	}
	return out
}

// protocolValue is a validated matchProtocols value as rules spell it (tcp, af_rds).
func protocolValue(p string) string {
	if v, ok := canonicalProtocol(p); ok {
		return v
	}
	return strings.ToLower(p)
}
