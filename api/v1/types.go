// Package v1 holds the Go types of KubeArmor's policy kinds (group security.kubearmor.com,
// version v1) exactly as users write them. Field names and JSON tags follow KubeArmor's CRDs so
// that existing manifests decode unchanged; meaning (defaults, inheritance, validation) lives in
// internal/policy, not here.
package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Group and Version of every kind in this package.
const (
	Group   = "security.kubearmor.com"
	Version = "v1"
)

// Kind names as they appear in `kind:`.
const (
	KindPolicy        = "KubeArmorPolicy"
	KindClusterPolicy = "KubeArmorClusterPolicy"
	KindHostPolicy    = "KubeArmorHostPolicy"
	// KindNetworkPolicy is recognised so that it can be refused with a clear message: it is
	// KubeArmor's nftables firewall policy, a separate enforcer Ward does not implement.
	KindNetworkPolicy = "KubeArmorNetworkPolicy"
)

// Severity is KubeArmor's 1..10 scale; 0 means "not set here, inherit".
type Severity int

// ActionType is Allow, Audit or Block (KubeArmor's daemon also accepts other letter cases at the
// spec level; internal/policy normalises them).
type ActionType string

// Tags are free-form labels carried into alerts.
type Tags []string

// SMTA are the four optional fields that appear on a spec, a section and a rule item; an item
// inherits each one it lacks from its section, then from the spec.
type SMTA struct {
	Severity Severity   `json:"severity,omitempty"`
	Tags     Tags       `json:"tags,omitempty"`
	Message  string     `json:"message,omitempty"`
	Action   ActionType `json:"action,omitempty"`
}

// MatchSourceType names the acting executable a rule is limited to.
type MatchSourceType struct {
	Path string `json:"path,omitempty"`
}

// ProcessPathType is one entry of process.matchPaths.
type ProcessPathType struct {
	Path        string            `json:"path,omitempty"`
	ExecName    string            `json:"execname,omitempty"`
	AllowedArgs []string          `json:"allowedArgs,omitempty"`
	OwnerOnly   bool              `json:"ownerOnly,omitempty"`
	PTS         *bool             `json:"pts,omitempty"`
	FromSource  []MatchSourceType `json:"fromSource,omitempty"`
	SMTA        `json:",inline"`
}

// ProcessDirectoryType is one entry of process.matchDirectories.
type ProcessDirectoryType struct {
	Directory  string            `json:"dir"`
	Recursive  bool              `json:"recursive,omitempty"`
	OwnerOnly  bool              `json:"ownerOnly,omitempty"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// ProcessPatternType is one entry of process.matchPatterns.
type ProcessPatternType struct {
	Pattern   string `json:"pattern"`
	OwnerOnly bool   `json:"ownerOnly,omitempty"`
	SMTA      `json:",inline"`
}

// ProcessType is the process section.
type ProcessType struct {
	MatchPaths       []ProcessPathType      `json:"matchPaths,omitempty"`
	MatchDirectories []ProcessDirectoryType `json:"matchDirectories,omitempty"`
	MatchPatterns    []ProcessPatternType   `json:"matchPatterns,omitempty"`
	SMTA             `json:",inline"`
}

// FilePathType is one entry of file.matchPaths.
type FilePathType struct {
	Path       string            `json:"path"`
	ReadOnly   bool              `json:"readOnly,omitempty"`
	OwnerOnly  bool              `json:"ownerOnly,omitempty"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// FileDirectoryType is one entry of file.matchDirectories.
type FileDirectoryType struct {
	Directory  string            `json:"dir"`
	Recursive  bool              `json:"recursive,omitempty"`
	ReadOnly   bool              `json:"readOnly,omitempty"`
	OwnerOnly  bool              `json:"ownerOnly,omitempty"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// FilePatternType is one entry of file.matchPatterns.
type FilePatternType struct {
	Pattern   string `json:"pattern"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	OwnerOnly bool   `json:"ownerOnly,omitempty"`
	SMTA      `json:",inline"`
}

// FileType is the file section.
type FileType struct {
	MatchPaths       []FilePathType      `json:"matchPaths,omitempty"`
	MatchDirectories []FileDirectoryType `json:"matchDirectories,omitempty"`
	MatchPatterns    []FilePatternType   `json:"matchPatterns,omitempty"`
	SMTA             `json:",inline"`
}

// NetworkProtocolType is one entry of network.matchProtocols. Protocol may hold a comma list.
type NetworkProtocolType struct {
	Protocol   string            `json:"protocol"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// DNSQueryType is one entry of network.matchDNSQueries. Domain may hold a comma list.
type DNSQueryType struct {
	Domain     string            `json:"domain"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// NetworkType is the network section.
type NetworkType struct {
	MatchProtocols  []NetworkProtocolType `json:"matchProtocols,omitempty"`
	MatchDNSQueries []DNSQueryType        `json:"matchDNSQueries,omitempty"`
	SMTA            `json:",inline"`
}

// CapabilityType is one entry of capabilities.matchCapabilities. Capability may hold a comma list.
type CapabilityType struct {
	Capability string            `json:"capability"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// CapabilitiesType is the capabilities section.
type CapabilitiesType struct {
	MatchCapabilities []CapabilityType `json:"matchCapabilities,omitempty"`
	SMTA              `json:",inline"`
}

// SyscallFromSourceType limits a syscall rule to an executable path or a directory of them.
type SyscallFromSourceType struct {
	Path      string `json:"path,omitempty"`
	Directory string `json:"dir,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// SyscallMatchType is one entry of syscalls.matchSyscalls.
type SyscallMatchType struct {
	Syscalls   []string                `json:"syscall,omitempty"`
	FromSource []SyscallFromSourceType `json:"fromSource,omitempty"`
	Severity   Severity                `json:"severity,omitempty"`
	Tags       Tags                    `json:"tags,omitempty"`
	Message    string                  `json:"message,omitempty"`
}

// SyscallMatchPathType is one entry of syscalls.matchPaths; Path is a file or a directory.
type SyscallMatchPathType struct {
	Path       string                  `json:"path,omitempty"`
	Recursive  bool                    `json:"recursive,omitempty"`
	Syscalls   []string                `json:"syscall,omitempty"`
	FromSource []SyscallFromSourceType `json:"fromSource,omitempty"`
	Severity   Severity                `json:"severity,omitempty"`
	Tags       Tags                    `json:"tags,omitempty"`
	Message    string                  `json:"message,omitempty"`
}

// SyscallsType is the syscalls section. It has no action: syscall rules only ever audit.
type SyscallsType struct {
	MatchSyscalls []SyscallMatchType     `json:"matchSyscalls,omitempty"`
	MatchPaths    []SyscallMatchPathType `json:"matchPaths,omitempty"`
	Severity      Severity               `json:"severity,omitempty"`
	Tags          Tags                   `json:"tags,omitempty"`
	Message       string                 `json:"message,omitempty"`
}

// PresetType switches on one of KubeArmor's canned protections.
type PresetType struct {
	Name   string     `json:"name"`
	Action ActionType `json:"action,omitempty"`
}

// DeviceMatchType is one entry of device.matchDevice (USB devices, host policies only).
type DeviceMatchType struct {
	Class    string `json:"class"`
	SubClass *int32 `json:"subClass,omitempty"`
	Protocol *int32 `json:"protocol,omitempty"`
	Level    *int32 `json:"level,omitempty"`
	SMTA     `json:",inline"`
}

// DeviceType is the device section.
type DeviceType struct {
	MatchDevice []DeviceMatchType `json:"matchDevice,omitempty"`
	SMTA        `json:",inline"`
}

// SelectorRequirement is one matchExpressions entry: Key `label` or `namespace`, Operator `In` or
// `NotIn`, Values such as `app=nginx` (labels) or `prod` (namespaces).
type SelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// SelectorType selects pods (KubeArmorPolicy) or namespaces and pods (KubeArmorClusterPolicy).
type SelectorType struct {
	MatchLabels      map[string]string     `json:"matchLabels,omitempty"`
	MatchExpressions []SelectorRequirement `json:"matchExpressions,omitempty"`
}

// NodeSelectorType selects nodes (KubeArmorHostPolicy).
type NodeSelectorType struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// PolicyStatus is the status subresource every kind has.
type PolicyStatus struct {
	Status string `json:"status,omitempty"`
}

// RuleSpec is everything a spec holds apart from its selector; the three kinds share it.
type RuleSpec struct {
	Process      ProcessType      `json:"process,omitempty"`
	File         FileType         `json:"file,omitempty"`
	Network      NetworkType      `json:"network,omitempty"`
	Capabilities CapabilitiesType `json:"capabilities,omitempty"`
	Syscalls     SyscallsType     `json:"syscalls,omitempty"`
	AppArmor     string           `json:"apparmor,omitempty"`
	SMTA         `json:",inline"`
}

// KubeArmorPolicySpec is the spec of a KubeArmorPolicy.
type KubeArmorPolicySpec struct {
	Selector SelectorType `json:"selector"`
	RuleSpec `json:",inline"`
	Presets  []PresetType `json:"presets,omitempty"`
}

// KubeArmorPolicy (ksp) is namespaced and selects pods by labels.
type KubeArmorPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeArmorPolicySpec `json:"spec"`
	Status            PolicyStatus        `json:"status,omitempty"`
}

// KubeArmorClusterPolicySpec is the spec of a KubeArmorClusterPolicy.
type KubeArmorClusterPolicySpec struct {
	Selector SelectorType `json:"selector,omitempty"`
	RuleSpec `json:",inline"`
	Presets  []PresetType `json:"presets,omitempty"`
}

// KubeArmorClusterPolicy (csp) is cluster-wide and selects namespaces (and labels) by expressions.
type KubeArmorClusterPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeArmorClusterPolicySpec `json:"spec"`
	Status            PolicyStatus               `json:"status,omitempty"`
}

// KubeArmorHostPolicySpec is the spec of a KubeArmorHostPolicy.
type KubeArmorHostPolicySpec struct {
	NodeSelector NodeSelectorType `json:"nodeSelector"`
	RuleSpec     `json:",inline"`
	Device       DeviceType `json:"device,omitempty"`
}

// KubeArmorHostPolicy (hsp) is cluster-wide and selects nodes.
type KubeArmorHostPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeArmorHostPolicySpec `json:"spec"`
	Status            PolicyStatus            `json:"status,omitempty"`
}
