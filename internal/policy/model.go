// Package policy turns KubeArmor policy documents (YAML or JSON) into normalised policies, or
// into precise errors. It is pure: it reads the bytes it is given and nothing else.
//
// A normalised Policy has every rule flattened into one list in which each rule carries its full
// meaning: the action, severity, tags and message it inherited from its section and spec, one
// value per rule (comma lists are expanded), capability and protocol names in canonical form.
// Everything after this package (rules, enforcers, events) reads only this form.
package policy

import (
	"fmt"
	"strings"
)

// Kind is the policy kind as written in `kind:`.
type Kind string

// The kinds Ward enforces.
const (
	KindPolicy        Kind = "KubeArmorPolicy"
	KindClusterPolicy Kind = "KubeArmorClusterPolicy"
	KindHostPolicy    Kind = "KubeArmorHostPolicy"
)

// Operation is the kind of access a rule is about, with KubeArmor's alert vocabulary.
type Operation string

// Operations.
const (
	OpProcess      Operation = "Process"
	OpFile         Operation = "File"
	OpNetwork      Operation = "Network"
	OpCapabilities Operation = "Capabilities"
	OpSyscall      Operation = "Syscall"
)

// Action is what a rule does with the accesses it covers.
type Action string

// Actions, in KubeArmor's spelling.
const (
	ActionAllow Action = "Allow"
	ActionAudit Action = "Audit"
	ActionBlock Action = "Block"
)

// ParsePosture reads a default posture as KubeArmor spells it in its configuration and
// namespace annotations: "audit" or "block", in any case, with surrounding space ignored.
func ParsePosture(v string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "audit":
		return ActionAudit, nil
	case "block":
		return ActionBlock, nil
	}
	return "", fmt.Errorf("%q is not a posture: allowed are audit, block", v)
}

// MatchKind says how Rule.Value is compared with an access.
type MatchKind string

// Match kinds.
const (
	MatchPath       MatchKind = "path"       // Value is an absolute path, compared exactly
	MatchDirectory  MatchKind = "directory"  // Value ends in "/"; direct children, or all descendants when Recursive
	MatchPattern    MatchKind = "pattern"    // Value is a glob: *, **, ?, [...]
	MatchExecName   MatchKind = "execname"   // Value is a base name of an executable
	MatchProtocol   MatchKind = "protocol"   // Value is a lower-case protocol name (tcp, udp, raw, all, ...)
	MatchDNSQuery   MatchKind = "dns"        // Value is a domain
	MatchCapability MatchKind = "capability" // Value is a lower-case capability name without "cap_"
	MatchSyscall    MatchKind = "syscall"    // no Value; Syscalls lists the calls
)

// Source identifies a policy document: the file it came from, its 1-based index in a
// multi-document file and the line where it starts.
type Source struct {
	File string `json:"file,omitempty"`
	Doc  int    `json:"doc,omitempty"`
	Line int    `json:"line,omitempty"`
}

// FromSource limits a rule to one acting executable (Path) or to the executables in a directory
// (Dir, ending in "/", optionally Recursive; syscall rules only).
type FromSource struct {
	Path      string `json:"path,omitempty"`
	Dir       string `json:"dir,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// Rule is one normalised rule. Field is its place in the policy (for example
// "spec.file.matchDirectories[1]") so that verdicts, alerts and errors can point at it.
type Rule struct {
	Field     string    `json:"field"`
	Line      int       `json:"line,omitempty"`
	Operation Operation `json:"operation"`
	Match     MatchKind `json:"match"`
	Value     string    `json:"value,omitempty"`
	// Syscalls lists the system calls of an OpSyscall rule (with MatchSyscall, MatchPath or
	// MatchDirectory).
	Syscalls    []string     `json:"syscalls,omitempty"`
	Recursive   bool         `json:"recursive,omitempty"`
	ReadOnly    bool         `json:"readOnly,omitempty"`
	OwnerOnly   bool         `json:"ownerOnly,omitempty"`
	PTS         *bool        `json:"pts,omitempty"`
	AllowedArgs []string     `json:"allowedArgs,omitempty"`
	FromSource  []FromSource `json:"fromSource,omitempty"`
	Action      Action       `json:"action"`
	Severity    int          `json:"severity,omitempty"`
	Tags        []string     `json:"tags,omitempty"`
	Message     string       `json:"message,omitempty"`
}

// Expression is one normalised matchExpressions entry. Key is "label" or "namespace"; Operator is
// "In" or "NotIn".
type Expression struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Selector says which workloads a policy covers. Which fields are used depends on the kind:
// KubeArmorPolicy uses MatchLabels, Containers and Expressions (label keys only) within its
// namespace; KubeArmorClusterPolicy uses Expressions (namespace and label keys); KubeArmorHostPolicy
// uses NodeLabels.
type Selector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
	// Containers comes from the kubearmor.io/container.name label ("[a,b]"): when set, only these
	// container names of a selected pod are covered. Outside Kubernetes each entry is a regular
	// expression over container names.
	Containers  []string          `json:"containers,omitempty"`
	Expressions []Expression      `json:"expressions,omitempty"`
	NodeLabels  map[string]string `json:"nodeLabels,omitempty"`
}

// Preset is one entry of spec.presets.
type Preset struct {
	Name   string `json:"name"`
	Action Action `json:"action"`
}

// DeviceRule is one entry of spec.device.matchDevice (host policies).
type DeviceRule struct {
	Field    string   `json:"field"`
	Class    string   `json:"class"`
	SubClass *int32   `json:"subClass,omitempty"`
	Protocol *int32   `json:"protocol,omitempty"`
	Level    *int32   `json:"level,omitempty"`
	Action   Action   `json:"action"`
	Severity int      `json:"severity,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	Message  string   `json:"message,omitempty"`
}

// Policy is one normalised policy.
type Policy struct {
	Kind      Kind         `json:"kind"`
	Name      string       `json:"name"`
	Namespace string       `json:"namespace,omitempty"` // KubeArmorPolicy only
	Source    Source       `json:"source"`
	Selector  Selector     `json:"selector"`
	Rules     []Rule       `json:"rules"`
	Presets   []Preset     `json:"presets,omitempty"`
	Devices   []DeviceRule `json:"devices,omitempty"`
	// AppArmor holds raw AppArmor lines from spec.apparmor; only the AppArmor backend uses them.
	AppArmor string `json:"apparmor,omitempty"`
}

// Key identifies a policy among all others: kind, namespace and name.
func (p *Policy) Key() string {
	if p.Namespace == "" {
		return string(p.Kind) + "/" + p.Name
	}
	return string(p.Kind) + "/" + p.Namespace + "/" + p.Name
}

// DefaultNamespace is the namespace of a KubeArmorPolicy written without metadata.namespace.
// Outside Kubernetes KubeArmor (and Ward's OCI hook, workload.DefaultContainerNamespace) puts
// plain containers in "container_namespace", so that `karmor vm policy add` of a namespace-less
// policy protects them; in Kubernetes the API server always sets the namespace.
const DefaultNamespace = "container_namespace"
