// Package attach makes pods run under Ward's AppArmor profiles without hand edits: a mutating
// admission webhook (KubeArmor's way; controller-runtime's admission package) gives each
// container of a new pod securityContext.appArmorProfile {type: Localhost, localhostProfile:
// ward-...}, and the annotation apparmor.ward.io/<container> with the same name, which is how the
// NRI plugin learns it (NRI does not tell a plugin a container's AppArmor profile). The daemon's
// AppArmor backend loads the container's rules under that name before the runtime creates the
// container (docs/apparmor.md, "Attaching a container").
//
// NRI cannot do this itself: its container adjustment (v0.12, ContainerAdjustment) can change
// annotations, mounts, environment, hooks, rlimits, devices, resources, namespaces, sysctls and
// the seccomp policy, but not the AppArmor profile, which the runtime has already put in the
// spec from the CRI request.
//
// Names are stable across a workload's pods, because a pod's name is not known at admission (a
// ReplicaSet's pods are created with generateName): ward-<namespace>_<owner>_<container>, the
// owner being the Deployment for a ReplicaSet's pods (the ReplicaSet's name without the
// pod-template-hash suffix), the controller otherwise, and the pod's own name (or generateName)
// for a pod without one.
package attach

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/wardsec/ward/internal/workload"
)

// maxName bounds a profile name: it is a file name in /etc/apparmor.d (255 bytes) and appears in
// every audit record; longer names are cut and end in a hash of the whole.
const maxName = 200

// ProfileName is the profile of one container of a pod, from what is known at admission.
func ProfileName(pod *corev1.Pod, namespace, container string) string {
	name := "ward-" + namespace + "_" + Owner(pod) + "_" + container
	if len(name) > maxName {
		sum := sha256.Sum256([]byte(name))
		name = name[:maxName-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

// Owner names the workload a pod belongs to: the Deployment of a ReplicaSet's pod, the
// controller of any other controlled pod, else the pod's name or its generateName.
func Owner(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		if ref.Kind == "ReplicaSet" {
			if h := pod.Labels["pod-template-hash"]; h != "" {
				if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok && d != "" {
					return d
				}
			}
		}
		return ref.Name
	}
	if pod.Name != "" {
		return pod.Name
	}
	return strings.TrimSuffix(pod.GenerateName, "-")
}

// Options say which pods are left alone.
type Options struct {
	// Untracked namespaces get no enforcement (the daemon's untrackedNs).
	Untracked []string
}

// Mutate gives every container and init container of pod that has no AppArmor profile of its own
// (its field, the pod's field, or the deprecated annotation) Ward's profile, and records it in
// the annotation. It reports whether it changed anything. Pods in untracked namespaces and pods
// with kubearmor-policy: disabled are left alone; so is a container whose profile someone chose.
func Mutate(pod *corev1.Pod, namespace string, o Options) bool {
	for _, ns := range o.Untracked {
		if ns == namespace {
			return false
		}
	}
	if m, _ := workload.ParseMode(pod.Annotations[workload.AnnotationPolicy]); m == workload.ModeDisabled {
		return false
	}
	if pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.AppArmorProfile != nil {
		return false // the pod chose for all its containers
	}
	changed := false
	set := func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
			return
		}
		if _, ok := pod.Annotations[corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]; ok {
			return
		}
		name := ProfileName(pod, namespace, c.Name)
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		c.SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[workload.AnnotationAppArmorPrefix+c.Name] = name
		changed = true
	}
	for i := range pod.Spec.InitContainers {
		set(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		set(&pod.Spec.Containers[i])
	}
	return changed
}

// Handler is the webhook's admission.Handler for pod creation.
type Handler struct {
	Options Options
	// Enabled says whether pods are mutated now: only a node whose backend is AppArmor loads
	// the profiles, so the daemon answers without a change elsewhere.
	Enabled func() bool
}

// Handle implements admission.Handler.
func (h *Handler) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind != "Pod" || req.Operation != "CREATE" {
		return admission.Allowed("not a pod creation")
	}
	if h.Enabled != nil && !h.Enabled() {
		return admission.Allowed("apparmor is not the enforcer")
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	if !Mutate(&pod, ns, h.Options) {
		return admission.Allowed("unchanged")
	}
	out, err := json.Marshal(&pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}
