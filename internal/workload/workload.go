// Package workload says what a workload is: the host, or a container (usually in a pod). It holds
// the identity that selectors match (namespace, labels, container name, host name) and the kernel
// identity that enforcement is keyed on. Sources that discover workloads live beside it.
package workload

import "maps"

// Kind is what sort of workload this is.
type Kind string

// Kinds.
const (
	KindHost      Kind = "host"
	KindContainer Kind = "container"
)

// Mode is the per-workload switch KubeArmor users set with the `kubearmor-policy` annotation.
type Mode string

// Modes. The zero value means Enabled.
const (
	ModeEnabled  Mode = ""
	ModeAudited  Mode = "audited"  // enforcement turns into alerts: Block becomes "Audit (Block)"
	ModeDisabled Mode = "disabled" // no policy applies
)

// ParseMode reads the value of the kubearmor-policy annotation. Unknown values mean enabled, as in
// KubeArmor, and are reported by ok=false so callers can warn.
func ParseMode(annotation string) (m Mode, ok bool) {
	switch annotation {
	case "", "enabled":
		return ModeEnabled, true
	case "audited":
		return ModeAudited, true
	case "disabled":
		return ModeDisabled, true
	}
	return ModeEnabled, false
}

// AnnotationAppArmorPrefix names the pod annotation apparmor.ward.io/<container>, which holds the
// Ward AppArmor profile the container runs under. Ward's admission webhook sets it beside
// securityContext.appArmorProfile (internal/workload/attach), because the runtime tells NRI
// plugins a pod's annotations but not a container's AppArmor profile.
const AnnotationAppArmorPrefix = "apparmor.ward.io/"

// Workload is one thing policies can cover.
type Workload struct {
	Kind Kind `json:"kind"`
	// Hostname is the node's name: the host workload's identity for host policies, and the node a
	// container runs on.
	Hostname string `json:"hostname,omitempty"`
	// Namespace, Pod and Container are empty for the host. Outside Kubernetes a container's
	// namespace is "container_namespace" as in KubeArmor, unless its labels say otherwise.
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	// PodUID tells a pod from a later one of the same name (a StatefulSet's, say).
	PodUID      string `json:"podUID,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	Image       string `json:"image,omitempty"`
	// Labels are the pod's labels for a container, and the node's labels for the host.
	Labels map[string]string `json:"labels,omitempty"`
	Mode   Mode              `json:"mode,omitempty"`
	// AppArmorProfile is the AppArmor profile the runtime attaches to the container when it is
	// one of Ward's (a "ward-" name the pod chose, usually through Ward's admission webhook):
	// the AppArmor backend then loads the workload's rules under this name. Empty means the
	// backend names the profile itself (ProfileName), and the container is confined only if
	// something attaches it.
	AppArmorProfile string `json:"apparmorProfile,omitempty"`
	// Owner is the object that owns the container's pod (a Deployment for a ReplicaSet's pod), as
	// the pod informer reports it; alerts carry it. Nil outside Kubernetes.
	Owner *Owner `json:"owner,omitempty"`
	// Kernel identity, filled by the workload sources; enforcement is keyed on it.
	CgroupID uint64 `json:"cgroupID,omitempty"`
	PidNS    uint32 `json:"pidns,omitempty"`
	MntNS    uint32 `json:"mntns,omitempty"`
}

// Owner is a pod's owning object, as KubeArmor's alerts name it (Owner.Ref, Name, Namespace).
type Owner struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// Host returns the host workload for a node.
func Host(hostname string, labels map[string]string) Workload {
	return Workload{Kind: KindHost, Hostname: hostname, Labels: labels}
}

// Equal says whether two workloads are the same in every field (labels by content, owners by
// value; no labels and empty labels are the same). The reconcile compares every workload with
// the one it last compiled at every round: reflect.DeepEqual there boxed both on the heap, 1,000
// workloads' worth of garbage per policy edit. TestEqualSeesEveryField fails when a field is
// added to Workload and not here.
func (w *Workload) Equal(o *Workload) bool {
	return w.Kind == o.Kind && w.Hostname == o.Hostname && w.Namespace == o.Namespace && w.Pod == o.Pod &&
		w.Container == o.Container && w.PodUID == o.PodUID && w.ContainerID == o.ContainerID &&
		w.Image == o.Image && maps.Equal(w.Labels, o.Labels) && w.Mode == o.Mode &&
		w.AppArmorProfile == o.AppArmorProfile &&
		(w.Owner == o.Owner || w.Owner != nil && o.Owner != nil && *w.Owner == *o.Owner) &&
		w.CgroupID == o.CgroupID && w.PidNS == o.PidNS && w.MntNS == o.MntNS
}

// ID is a stable key for the workload among all others on a node.
func (w *Workload) ID() string {
	if w.Kind == KindHost {
		return "host"
	}
	if w.ContainerID != "" {
		return w.ContainerID
	}
	return w.Namespace + "/" + w.Pod + "/" + w.Container
}
