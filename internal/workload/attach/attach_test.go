package attach

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/wardsec/ward/internal/workload"
)

func yes() *bool { b := true; return &b }

func rsPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "web-7d9f8b6c5-",
			Labels:       map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5"},
			OwnerReferences: []metav1.OwnerReference{
				{Kind: "ReplicaSet", Name: "web-7d9f8b6c5", Controller: yes()},
			},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers:     []corev1.Container{{Name: "nginx"}, {Name: "sidecar"}},
		},
	}
}

func TestOwner(t *testing.T) {
	p := rsPod()
	if got := Owner(p); got != "web" {
		t.Errorf("ReplicaSet pod: owner %q, want the Deployment web", got)
	}
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "StatefulSet", Name: "db", Controller: yes()}}
	if got := Owner(p); got != "db" {
		t.Errorf("StatefulSet pod: owner %q, want db", got)
	}
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "plain-rs", Controller: yes()}}
	if got := Owner(p); got != "plain-rs" {
		t.Errorf("ReplicaSet without the hash suffix: owner %q, want plain-rs", got)
	}
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "ConfigMap", Name: "not-controller"}}
	if got := Owner(p); got != "web-7d9f8b6c5" {
		t.Errorf("no controller, generateName: owner %q, want web-7d9f8b6c5", got)
	}
	p.Name = "single"
	if got := Owner(p); got != "single" {
		t.Errorf("named pod: owner %q, want single", got)
	}
}

// TestStableNames: two pods of one Deployment (different generated names, same owner) get the
// same profile per container; another namespace or container gets another.
func TestStableNames(t *testing.T) {
	a, b := rsPod(), rsPod()
	a.Name, b.Name = "web-7d9f8b6c5-aaaaa", "web-7d9f8b6c5-bbbbb"
	if x, y := ProfileName(a, "shop", "nginx"), ProfileName(b, "shop", "nginx"); x != y || x != "ward-shop_web_nginx" {
		t.Errorf("pods of one Deployment: %q and %q, want both ward-shop_web_nginx", x, y)
	}
	if ProfileName(a, "shop", "nginx") == ProfileName(a, "other", "nginx") || ProfileName(a, "shop", "nginx") == ProfileName(a, "shop", "sidecar") {
		t.Error("namespace or container does not change the name")
	}
	long := rsPod()
	long.OwnerReferences[0].Name = strings.Repeat("x", 250)
	n := ProfileName(long, "shop", "nginx")
	if len(n) > maxName || !strings.HasPrefix(n, "ward-shop_xxx") {
		t.Errorf("long owner: %q (%d bytes), want at most %d starting ward-shop_", n, len(n), maxName)
	}
	long.OwnerReferences[0].Name = strings.Repeat("x", 249) + "y"
	if ProfileName(long, "shop", "nginx") == n {
		t.Error("two long owners differing at the end share a name")
	}
}

func TestMutate(t *testing.T) {
	p := rsPod()
	p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}}
	if !Mutate(p, "shop", Options{}) {
		t.Fatal("Mutate changed nothing")
	}
	for _, c := range []corev1.Container{p.Spec.InitContainers[0], p.Spec.Containers[0]} {
		want := "ward-shop_web_" + c.Name
		ap := c.SecurityContext.AppArmorProfile
		if ap == nil || ap.Type != corev1.AppArmorProfileTypeLocalhost || ap.LocalhostProfile == nil || *ap.LocalhostProfile != want {
			t.Errorf("%s: profile %+v, want Localhost %s", c.Name, ap, want)
		}
		if got := p.Annotations[workload.AnnotationAppArmorPrefix+c.Name]; got != want {
			t.Errorf("%s: annotation %q, want %q", c.Name, got, want)
		}
	}
	if ap := p.Spec.Containers[1].SecurityContext.AppArmorProfile; ap.Type != corev1.AppArmorProfileTypeRuntimeDefault {
		t.Errorf("sidecar's own choice replaced: %+v", ap)
	}
	if _, ok := p.Annotations[workload.AnnotationAppArmorPrefix+"sidecar"]; ok {
		t.Error("sidecar annotated though it keeps its own profile")
	}

	for name, c := range map[string]struct {
		pod *corev1.Pod
		ns  string
	}{
		"untracked namespace": {rsPod(), "kube-system"},
		"kubearmor-policy: disabled": {func() *corev1.Pod {
			p := rsPod()
			p.Annotations = map[string]string{workload.AnnotationPolicy: "disabled"}
			return p
		}(), "shop"},
		"pod-level profile": {func() *corev1.Pod {
			p := rsPod()
			p.Spec.SecurityContext = &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}}
			return p
		}(), "shop"},
	} {
		if Mutate(c.pod, c.ns, Options{Untracked: []string{"kube-system", "kubearmor"}}) {
			t.Errorf("%s: mutated", name)
		}
	}
	dep := rsPod()
	dep.Spec.InitContainers = nil
	dep.Spec.Containers = dep.Spec.Containers[:1]
	dep.Annotations = map[string]string{corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "nginx": "localhost/mine"}
	if Mutate(dep, "shop", Options{}) {
		t.Error("container with the deprecated annotation: mutated")
	}
}

// TestHandle runs an AdmissionReview request through the handler and applies the JSON patch it
// returns to the original object, as the API server does.
func TestHandle(t *testing.T) {
	raw, err := json.Marshal(rsPod())
	if err != nil {
		t.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "shop",
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}}
	h := &Handler{}
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("response %+v, want allowed with patches", resp)
	}
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch: %v", err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	ap := got.Spec.Containers[0].SecurityContext.AppArmorProfile
	if ap == nil || *ap.LocalhostProfile != "ward-shop_web_nginx" || got.Annotations[workload.AnnotationAppArmorPrefix+"nginx"] != "ward-shop_web_nginx" {
		t.Errorf("patched pod: profile %+v annotations %v", ap, got.Annotations)
	}

	h.Enabled = func() bool { return false }
	if resp := h.Handle(context.Background(), req); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("disabled: %+v, want allowed without patches", resp)
	}
	h.Enabled = nil
	req.Operation = admissionv1.Update
	if resp := h.Handle(context.Background(), req); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("update: %+v, want allowed without patches", resp)
	}
}
