// Package rules is the single meaning of a policy. Compile turns the policies that cover one
// workload into a Set, the intermediate form every backend translates; Decide says, for one access,
// what that Set means: allow, audit or block, and which policy and rule decided. Backends must make
// the kernel reach the same verdict, and the conformance suite checks that they do.
//
// The package is pure: no I/O, no kernel, no clock.
package rules

import (
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Postures are the default actions for accesses that no rule covers, once a category is an
// allow-list. The file posture covers process and file rules, as in KubeArmor.
type Postures struct {
	File         policy.Action `json:"file"`
	Network      policy.Action `json:"network"`
	Capabilities policy.Action `json:"capabilities"`
}

// DefaultPostures are KubeArmor's defaults: audit everywhere.
func DefaultPostures() Postures {
	return Postures{File: policy.ActionAudit, Network: policy.ActionAudit, Capabilities: policy.ActionAudit}
}

// For returns the posture that governs an operation.
func (p Postures) For(op policy.Operation) policy.Action {
	var a policy.Action
	switch op {
	case policy.OpProcess, policy.OpFile:
		a = p.File
	case policy.OpNetwork:
		a = p.Network
	case policy.OpCapabilities:
		a = p.Capabilities
	default:
		return policy.ActionAudit
	}
	if a == "" {
		return policy.ActionAudit
	}
	return a
}

// DefaultPosturePolicy is the policy name alerts carry when a posture decided.
const DefaultPosturePolicy = "DefaultPosture"

// Rule is a normalised policy rule together with the policy it came from.
type Rule struct {
	policy.Rule
	// ID is the rule's index in Set.Rules.
	ID         int         `json:"id"`
	PolicyName string      `json:"policyName"`
	PolicyKind policy.Kind `json:"policyKind"`
	Namespace  string      `json:"namespace,omitempty"`
}

// Set is everything that applies to one workload. Rules are in a stable order (policies sorted by
// kind, namespace and name; rules in policy order) so that translations are byte-stable.
type Set struct {
	Workload workload.Workload `json:"workload"`
	Postures Postures          `json:"postures"`
	// Policies lists the keys of the policies that cover the workload.
	Policies []string `json:"policies"`
	Rules    []Rule   `json:"rules"`
	Presets  []Preset `json:"presets,omitempty"`
	Devices  []Device `json:"devices,omitempty"`
	// AppArmor holds each covering policy's raw spec.apparmor text, for the AppArmor backend.
	AppArmor []RawAppArmor `json:"apparmor,omitempty"`
	// Aliases maps each other name of a rule's path or fromSource executable to the name the
	// rule wrote (WithAliases); nil in a set compiled from policies.
	Aliases map[string]string `json:"aliases,omitempty"`

	allow [numOps]bool
	index [numOps]opIndex
}

// Preset is a preset switched on by a covering policy.
type Preset struct {
	policy.Preset
	PolicyName string `json:"policyName"`
}

// Device is a device rule of a covering host policy.
type Device struct {
	policy.DeviceRule
	PolicyName string `json:"policyName"`
}

// RawAppArmor is one policy's spec.apparmor text.
type RawAppArmor struct {
	PolicyName string `json:"policyName"`
	Text       string `json:"text"`
}

// AllowList reports whether an operation category is an allow-list, where the posture replaces
// the default "permit" for accesses no rule covers. Any Allow rule of the operation makes it one
// for every acting executable of the workload, also when the rule is limited by fromSource
// (KubeArmor does the same), so global is the whole answer and sources is always empty; it is kept
// for the backends that still read it.
func (s *Set) AllowList(op policy.Operation) (global bool, sources []string) {
	i, ok := opIndexOf(op)
	if !ok {
		return false, nil
	}
	return s.allow[i], nil
}

// RulesFor returns the rules of one operation, in Set order.
func (s *Set) RulesFor(op policy.Operation) []Rule {
	var out []Rule
	for _, r := range s.Rules {
		if r.Operation == op {
			out = append(out, r)
		}
	}
	return out
}

// Access is one attempt by a process to do something, as a backend or `ward simulate` sees it.
// Paths are absolute and clean.
type Access struct {
	Op policy.Operation `json:"op"`
	// Path is the file opened, or the program executed (OpProcess), or the path a syscall names.
	Path string `json:"path,omitempty"`
	// Source is the acting executable; for OpProcess the program that performs the exec.
	Source string `json:"source,omitempty"`
	// Write is true for any access that changes the target (write, create, delete, rename, chmod...).
	Write bool `json:"write,omitempty"`
	// UID is the process's user; Owner is the target file's owner (for ownerOnly).
	UID   uint32 `json:"uid"`
	Owner uint32 `json:"owner"`
	// TTY is true when the process has a terminal (for pts).
	TTY  bool     `json:"tty,omitempty"`
	Args []string `json:"args,omitempty"`
	// Network: socket family (inet, inet6, unix, packet, ...), type (stream, dgram, raw, seqpacket,
	// rdm) and protocol (tcp, udp, icmp, icmpv6, sctp, dccp, or empty). See NetworkAccess.
	Family   string `json:"family,omitempty"`
	SockType string `json:"sockType,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Domain   string `json:"domain,omitempty"`
	// Capability is a lower-case name without "cap_".
	Capability string `json:"capability,omitempty"`
	Syscall    string `json:"syscall,omitempty"`
}

// Verdict is the meaning of a Set for one access.
type Verdict struct {
	// Action is what happens: Allow and Audit permit, Block denies.
	Action policy.Action `json:"action"`
	// DisplayAction is the alert's Action field: Action, or "Audit (Block)" when a workload in
	// audited mode would have blocked.
	DisplayAction string `json:"displayAction"`
	// Alert is true when the access is reported (Audit, Block, or a posture).
	Alert bool `json:"alert"`
	// Policy and Rule name what decided: a policy name and a rule's field path, or
	// DefaultPosture and "" when the posture decided, or both empty when nothing applied.
	Policy     string      `json:"policy"`
	PolicyKind policy.Kind `json:"policyKind,omitempty"`
	Namespace  string      `json:"namespace,omitempty"`
	Rule       string      `json:"rule"`
	RuleID     int         `json:"ruleID"`
	Posture    bool        `json:"posture"`
	Severity   int         `json:"severity"`
	Tags       []string    `json:"tags"`
	Message    string      `json:"message"`
}
