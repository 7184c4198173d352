package enforcer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Warning says that one backend does not enforce part of a policy as written: what, where in
// the policy, and why (with what happens instead). Backends return them from their
// translations; Check returns the ones the support table knows.
type Warning struct {
	Backend string `json:"backend"`
	// Workload is the ID of the workload whose translation produced the warning, or "" for
	// Check, which looks at a policy alone.
	Workload   string      `json:"workload,omitempty"`
	Policy     string      `json:"policy"`
	PolicyKind policy.Kind `json:"policyKind,omitempty"`
	Namespace  string      `json:"namespace,omitempty"`
	// Rule is the field path of the part: a rule (spec.file.matchPaths[0]), one of its fields
	// (spec.process.matchPaths[1].allowedArgs), spec.presets[0], spec.device.matchDevice[0],
	// spec.apparmor, or spec for the whole policy. Empty when the warning is about the
	// workload rather than a policy.
	Rule string `json:"rule"`
	// RuleID is the rule's index in the rules.Set, or -1.
	RuleID int `json:"ruleID"`
	// What names the part that is not enforced ("allowedArgs", "preset protectEnv").
	What string `json:"what,omitempty"`
	// Message says why, and what the backend does instead.
	Message string `json:"message"`
}

func (w Warning) String() string {
	var b strings.Builder
	if w.Policy != "" {
		fmt.Fprintf(&b, "policy %s: ", w.Policy)
	}
	if w.Rule != "" {
		b.WriteString(w.Rule + ": ")
	}
	if w.What != "" {
		fmt.Fprintf(&b, "%s is not enforced by %s: ", w.What, AlertName(w.Backend))
	}
	b.WriteString(w.Message)
	return b.String()
}

// PolicyKey is the key (kind, namespace, name) of the policy the warning is about, as
// policy.Policy.Key spells it, or "" when the warning names no policy.
func (w Warning) PolicyKey() string {
	if w.Policy == "" {
		return ""
	}
	p := policy.Policy{Kind: w.PolicyKind, Namespace: w.Namespace, Name: w.Policy}
	return p.Key()
}

// Feature is a part of a policy that some backend cannot enforce as written.
type Feature string

// The features of the support table.
const (
	FeaturePresets      Feature = "presets"
	FeatureDevice       Feature = "device"
	FeatureRawAppArmor  Feature = "apparmor"
	FeatureSyscalls     Feature = "syscalls"
	FeatureDNSQueries   Feature = "matchDNSQueries"
	FeatureNetwork      Feature = "network"
	FeatureCapabilities Feature = "capabilities"
	FeatureAllowedArgs  Feature = "allowedArgs"
	FeaturePTS          Feature = "pts"
	FeatureOwnerOnly    Feature = "ownerOnly"
	FeaturePatterns     Feature = "matchPatterns"
	FeatureExecName     Feature = "execname"
	FeatureSourceDir    Feature = "fromSource.dir"
	// FeatureAllowList is a file or process Allow rule: it makes its category an allow-list
	// for every executable of the workload, where the posture decides what no rule names.
	FeatureAllowList Feature = "allow-list"
	// FeatureContainers is every policy of a container or pod workload (a KubeArmorPolicy or
	// KubeArmorClusterPolicy).
	FeatureContainers Feature = "containers"
	// FeatureBlocking is denying an access at all: Block rules, and allow-lists whose posture
	// is block.
	FeatureBlocking Feature = "blocking"
)

// Support is the single list of what each backend does not enforce as written, derived from
// what each translator does (bpflsm.Translate, apparmor.Render, selinux.Render) and from what
// the system monitor sees. A feature a backend has no entry for is enforced exactly as
// rules.Decide means it. Each text says why and what happens instead; docs/semantics.md
// prints the table.
var Support = map[string]map[Feature]string{
	BPF: {
		FeaturePresets:     "presets have no BPF-LSM translation; nothing is enforced for them",
		FeatureDevice:      "device (USB) rules have no BPF-LSM translation; nothing is enforced for them",
		FeatureRawAppArmor: "raw AppArmor lines apply to the AppArmor backend only; they are ignored",
		FeatureSyscalls:    "syscall rules are audit-only: the system monitor reports the calls it traces; no LSM hook sees them",
		FeatureDNSQueries:  "an LSM hook does not see DNS queries; nothing is enforced for them",
		FeatureAllowedArgs: "BPF-LSM does not see a program's arguments: the rule is skipped (a Block with allowedArgs denies nothing; an Allow leaves the program to the default posture)",
	},
	AppArmor: {
		FeaturePresets:    "presets have no AppArmor translation; nothing is enforced for them",
		FeatureDevice:     "device (USB) rules have no AppArmor translation; nothing is enforced for them",
		FeatureSyscalls:   "syscall rules are audit-only: the system monitor reports the calls it traces; the profile has no line for them",
		FeatureDNSQueries: "AppArmor does not see DNS queries; nothing is enforced for them",
		FeaturePTS:        "AppArmor does not see whether a process has a terminal: a Block applies whatever it is (denying more), an Allow is left out (the posture decides), an Audit reports every access",
		FeatureAllowedArgs: "AppArmor does not see a program's arguments: a Block applies whatever they are (denying more), " +
			"an Allow is left out (the posture decides), an Audit reports every run",
	},
	SELinux: {
		FeatureContainers:   "the SELinux backend enforces host policies only (labels are per file, not per container); nothing of this policy is enforced",
		FeaturePresets:      "presets have no SELinux translation; nothing is enforced for them",
		FeatureDevice:       "device (USB) rules have no SELinux translation; nothing is enforced for them",
		FeatureRawAppArmor:  "raw AppArmor lines apply to the AppArmor backend only; they are ignored",
		FeatureSyscalls:     "syscall rules are audit-only: the system monitor reports the calls it traces",
		FeatureDNSQueries:   "SELinux does not see DNS queries; nothing is enforced for them",
		FeatureNetwork:      "the SELinux backend enforces file and process rules only; use the bpf backend for network rules",
		FeatureCapabilities: "the SELinux backend enforces file and process rules only; use the bpf backend for capability rules",
		FeatureOwnerOnly: "SELinux cannot compare the file's owner with the process's user: the rule is enforced as if every " +
			"access came from another user (a Block denies the owner too, an Allow does not permit the owner, an Audit reports everyone)",
		FeaturePTS:         "SELinux does not see whether a process has a terminal: the rule applies to every process",
		FeatureAllowedArgs: "SELinux does not see a program's arguments: a Block denies every run, an Allow permits none under an allow-list",
		FeaturePatterns:    "SELinux labels files, not patterns: the pattern is enforced only on paths another rule of the workload labels",
		FeatureExecName:    "SELinux labels files, not names: the name is enforced only on paths another rule of the workload labels",
		FeatureSourceDir:   "a directory of executables cannot be labelled as one domain; only fromSource paths are",
		FeatureAllowList: "the Allow rule makes its category an allow-list for every executable, but SELinux applies the posture " +
			"only to the paths Ward labels (files and programs no rule names keep their access), and a fromSource program " +
			"that the file posture keeps others from reading stays readable by every program that may run it (the kernel " +
			"checks read on the program an exec runs)",
	},
	None: {
		FeatureBlocking: "no security module enforces on this node: Block rules and block postures are reported as alerts " +
			"by the system monitor, not denied",
		FeaturePresets:      "presets are not enforced or reported without a security module",
		FeatureDevice:       "device (USB) rules are not enforced or reported without a security module",
		FeatureRawAppArmor:  "raw AppArmor lines apply to the AppArmor backend only; they are ignored",
		FeatureDNSQueries:   "the system monitor does not see DNS queries; nothing is reported for them",
		FeatureCapabilities: "the system monitor does not see capability checks; nothing is reported for them",
		FeatureAllowedArgs:  "the system monitor does not read a program's arguments: the rule is decided as if they did not match",
	},
}

// featureWhat names a feature in a warning.
var featureWhat = map[Feature]string{
	FeatureSyscalls:     "the syscall rule",
	FeatureDNSQueries:   "the DNS rule",
	FeatureNetwork:      "the network rule",
	FeatureCapabilities: "the capability rule",
	FeatureAllowedArgs:  "allowedArgs",
	FeaturePTS:          "pts",
	FeatureOwnerOnly:    "ownerOnly",
	FeaturePatterns:     "the pattern",
	FeatureExecName:     "the execname",
	FeatureSourceDir:    "fromSource dir",
	FeatureAllowList:    "the allow-list",
}

// ruleFeatures lists the features of one rule, with the field path that holds each.
func ruleFeatures(r *policy.Rule) []struct {
	f     Feature
	field string
} {
	type ff = struct {
		f     Feature
		field string
	}
	var out []ff
	switch {
	case r.Operation == policy.OpSyscall:
		out = append(out, ff{FeatureSyscalls, r.Field})
	case r.Match == policy.MatchDNSQuery:
		out = append(out, ff{FeatureDNSQueries, r.Field})
	case r.Operation == policy.OpNetwork:
		out = append(out, ff{FeatureNetwork, r.Field})
	case r.Operation == policy.OpCapabilities:
		out = append(out, ff{FeatureCapabilities, r.Field})
	case r.Match == policy.MatchPattern:
		out = append(out, ff{FeaturePatterns, r.Field})
	case r.Match == policy.MatchExecName:
		out = append(out, ff{FeatureExecName, r.Field})
	}
	if r.Action == policy.ActionAllow && (r.Operation == policy.OpFile || r.Operation == policy.OpProcess) {
		out = append(out, ff{FeatureAllowList, r.Field})
	}
	if len(r.AllowedArgs) > 0 {
		out = append(out, ff{FeatureAllowedArgs, r.Field + ".allowedArgs"})
	}
	if r.PTS != nil {
		out = append(out, ff{FeaturePTS, r.Field + ".pts"})
	}
	if r.OwnerOnly {
		out = append(out, ff{FeatureOwnerOnly, r.Field + ".ownerOnly"})
	}
	for i, fs := range r.FromSource {
		if fs.Dir != "" {
			out = append(out, ff{FeatureSourceDir, fmt.Sprintf("%s.fromSource[%d].dir", r.Field, i)})
		}
	}
	return out
}

// checker collects the warnings of one backend.
type checker struct {
	backend string
	table   map[Feature]string
	out     []Warning
}

func (c *checker) add(f Feature, w Warning) bool {
	why, ok := c.table[f]
	if !ok {
		return false
	}
	w.Backend, w.Message = c.backend, why
	if w.What == "" {
		w.What = featureWhat[f]
	}
	c.out = append(c.out, w)
	return true
}

// Check returns what backend does not enforce of one policy, in the policy's order: one
// Warning per policy and field path. A backend name the table does not know gets none.
func Check(backend string, p *policy.Policy) []Warning {
	c := &checker{backend: backend, table: Support[backend]}
	if len(c.table) == 0 {
		return nil
	}
	base := Warning{Policy: p.Name, PolicyKind: p.Kind, Namespace: p.Namespace, RuleID: -1}
	if p.Kind != policy.KindHostPolicy {
		w := base
		w.Rule, w.What = "spec", "the policy"
		if c.add(FeatureContainers, w) {
			return c.out
		}
	}
	if blocks(p.Rules) {
		w := base
		w.Rule, w.What = "spec", "blocking"
		c.add(FeatureBlocking, w)
	}
	for i := range p.Rules {
		c.rule(base, &p.Rules[i], -1)
	}
	c.extras(base, p.Presets, p.Devices, p.AppArmor != "")
	return c.out
}

// CheckSet returns what backend does not enforce of the policies in one workload's set: Check
// for each policy that covers it, with RuleID set, and for a container workload under a
// host-only backend one warning per policy.
func CheckSet(backend string, s *rules.Set) []Warning {
	c := &checker{backend: backend, table: Support[backend]}
	if len(c.table) == 0 || s == nil {
		return nil
	}
	type pol struct {
		base    Warning
		rules   []int
		presets []policy.Preset
		devices []policy.DeviceRule
		raw     bool
	}
	// The set's policy keys name the kind and namespace of presets, devices and raw text,
	// which carry only a policy name.
	keys := map[string][2]string{}
	for _, k := range s.Policies {
		parts := strings.Split(k, "/")
		switch len(parts) {
		case 2:
			keys[parts[1]] = [2]string{parts[0], ""}
		case 3:
			keys[parts[2]] = [2]string{parts[0], parts[1]}
		}
	}
	var order []string
	byName := map[string]*pol{}
	get := func(name string, kind policy.Kind, ns string) *pol {
		if p, ok := byName[name]; ok {
			return p
		}
		if kind == "" {
			kind, ns = policy.Kind(keys[name][0]), keys[name][1]
		}
		p := &pol{base: Warning{Workload: s.Workload.ID(), Policy: name, PolicyKind: kind, Namespace: ns, RuleID: -1}}
		byName[name] = p
		order = append(order, name)
		return p
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		p := get(r.PolicyName, r.PolicyKind, r.Namespace)
		p.rules = append(p.rules, i)
	}
	for _, pr := range s.Presets {
		p := get(pr.PolicyName, "", "")
		p.presets = append(p.presets, pr.Preset)
	}
	for _, d := range s.Devices {
		p := get(d.PolicyName, "", "")
		p.devices = append(p.devices, d.DeviceRule)
	}
	for _, ra := range s.AppArmor {
		get(ra.PolicyName, "", "").raw = true
	}
	container := s.Workload.Kind != workload.KindHost
	for _, name := range order {
		p := byName[name]
		if container {
			w := p.base
			w.Rule, w.What = "spec", "the policy"
			if c.add(FeatureContainers, w) {
				continue
			}
		}
		var rs []policy.Rule
		for _, i := range p.rules {
			rs = append(rs, s.Rules[i].Rule)
		}
		if blocks(rs) || (s.Postures.File == policy.ActionBlock || s.Postures.Network == policy.ActionBlock ||
			s.Postures.Capabilities == policy.ActionBlock) && allows(rs) {
			w := p.base
			w.Rule, w.What = "spec", "blocking"
			c.add(FeatureBlocking, w)
		}
		for _, i := range p.rules {
			c.rule(p.base, &s.Rules[i].Rule, s.Rules[i].ID)
		}
		c.extras(p.base, p.presets, p.devices, p.raw)
	}
	return c.out
}

func blocks(rs []policy.Rule) bool {
	return slices.ContainsFunc(rs, func(r policy.Rule) bool { return r.Action == policy.ActionBlock })
}

func allows(rs []policy.Rule) bool {
	return slices.ContainsFunc(rs, func(r policy.Rule) bool { return r.Action == policy.ActionAllow })
}

func (c *checker) rule(base Warning, r *policy.Rule, id int) {
	for _, f := range ruleFeatures(r) {
		w := base
		w.Rule, w.RuleID = f.field, id
		c.add(f.f, w)
	}
}

func (c *checker) extras(base Warning, presets []policy.Preset, devices []policy.DeviceRule, raw bool) {
	for i, pr := range presets {
		w := base
		w.Rule, w.What = fmt.Sprintf("spec.presets[%d]", i), "preset "+pr.Name
		c.add(FeaturePresets, w)
	}
	for _, d := range devices {
		w := base
		w.Rule, w.What = d.Field, "device rule"
		c.add(FeatureDevice, w)
	}
	if raw {
		w := base
		w.Rule, w.What = "spec.apparmor", "spec.apparmor"
		c.add(FeatureRawAppArmor, w)
	}
}

// Warner is implemented by backends whose translations report what they do not enforce as
// written: the support table's entries (CheckSet) and the translation's own approximations.
type Warner interface {
	// Warnings returns the warnings of every workload currently applied.
	Warnings() []Warning
	// WorkloadWarnings returns the warnings of one workload's applied set.
	WorkloadWarnings(id string) []Warning
}

// WarningBook holds a backend's warnings by workload and implements Warner; backends embed it.
// It is safe for concurrent use. The zero value is empty and ready.
type WarningBook struct {
	mu         sync.Mutex
	byWorkload map[string][]Warning
}

var _ Warner = (*WarningBook)(nil)

// Warnings implements Warner: every workload's warnings, in workload order.
func (w *WarningBook) Warnings() []Warning {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Warning
	for _, id := range slices.Sorted(maps.Keys(w.byWorkload)) {
		out = append(out, w.byWorkload[id]...)
	}
	return out
}

// WorkloadWarnings implements Warner for one workload.
func (w *WarningBook) WorkloadWarnings(id string) []Warning {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.byWorkload[id])
}

// SetWarnings replaces one workload's warnings.
func (w *WarningBook) SetWarnings(id string, ws []Warning) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byWorkload == nil {
		w.byWorkload = map[string][]Warning{}
	}
	w.byWorkload[id] = ws
}

// DropWarnings forgets one workload's warnings.
func (w *WarningBook) DropWarnings(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byWorkload, id)
}

// ReplaceWarnings replaces every workload's warnings (after an Apply of the whole state).
func (w *WarningBook) ReplaceWarnings(byWorkload map[string][]Warning) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byWorkload = byWorkload
}
