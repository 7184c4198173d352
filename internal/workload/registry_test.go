package workload

import (
	"fmt"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	changes := 0
	r := NewRegistry(func() { changes++ })
	r.Upsert(Host("n1", nil))
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "b", Namespace: "ns"})
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "a", Namespace: "ns"})
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "a", Namespace: "other"}) // replaces
	got := r.List()
	if len(got) != 3 || got[0].ID() != "a" || got[1].ID() != "b" || got[2].ID() != "host" {
		t.Fatalf("List = %+v", got)
	}
	if w, ok := r.Get("a"); !ok || w.Namespace != "other" {
		t.Errorf("Get(a) = %+v %v, want the replacement", w, ok)
	}
	r.Remove("a")
	r.Remove("a") // twice: no second change
	if _, ok := r.Get("a"); ok || len(r.List()) != 2 {
		t.Errorf("a still registered")
	}
	if changes != 5 {
		t.Errorf("onChange called %d times, want 5", changes)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeEnabled, "enabled": ModeEnabled, "audited": ModeAudited, "disabled": ModeDisabled} {
		if got, ok := ParseMode(in); !ok || got != want {
			t.Errorf("ParseMode(%q) = %q %v", in, got, ok)
		}
	}
	if _, ok := ParseMode("off"); ok {
		t.Error("ParseMode(off) accepted")
	}
}

// hookReg is what the OCI hook registers for a pod's container under containerd: names from
// the CRI annotations, no pod labels, and the kernel identity.
func hookReg(id, pod, uid, container string, cgroup uint64) Workload {
	return Workload{Kind: KindContainer, ContainerID: id, Namespace: "shop", Pod: pod, PodUID: uid,
		Container: container, Labels: map[string]string{}, CgroupID: cgroup, PidNS: 7, MntNS: 8}
}

func webPod(labels map[string]string, ids ...string) Pod {
	p := Pod{Namespace: "shop", Name: "web", UID: "u1", Hostname: "n1", Labels: labels, Mode: ModeAudited,
		Owner:      &Owner{Kind: "Deployment", Name: "web", Namespace: "shop"},
		Containers: []PodContainer{{Name: "main", Image: "nginx:1"}, {Name: "side", Image: "busybox:1"}}}
	for i, id := range ids {
		p.Containers[i].ID = id
	}
	return p
}

// summary lists the registry as id:labels:cgroup:mode, sorted by ID.
func summary(r *Registry) string {
	var out []string
	for _, w := range r.List() {
		out = append(out, fmt.Sprintf("%s:%s:%d:%s", w.ID(), w.Labels["app"], w.CgroupID, w.Mode))
	}
	return strings.Join(out, " ")
}

// The pod informer's view arrives first (the usual order: the scheduler binds the pod, the
// kubelet asks the runtime to start it): the hook's registration gets the pod's labels at once,
// so its first rule set, applied before the container's first instruction, already selects.
func TestRegistryPodThenHook(t *testing.T) {
	changes := 0
	r := NewRegistry(func() { changes++ })
	r.SetPod(webPod(map[string]string{"app": "web"}))
	if got, want := summary(r), "shop/web/main:web:0:audited shop/web/side:web:0:audited"; got != want {
		t.Fatalf("pod only: %q, want %q", got, want)
	}
	r.Upsert(hookReg("c1", "web", "u1", "main", 42))
	if got, want := summary(r), "c1:web:42:audited shop/web/side:web:0:audited"; got != want {
		t.Fatalf("after the hook: %q, want %q", got, want)
	}
	w, ok := r.ByCgroup(42)
	if !ok || w.Labels["app"] != "web" || w.Image != "nginx:1" || w.Pod != "web" || w.PidNS != 7 ||
		w.Owner == nil || *w.Owner != (Owner{Kind: "Deployment", Name: "web", Namespace: "shop"}) {
		t.Errorf("ByCgroup(42) = %+v %v, want the merged workload with its pod's owner", w, ok)
	}
	for _, w := range r.List() {
		if w.Container == "side" && (w.Owner == nil || w.Owner.Name != "web") {
			t.Errorf("pod-only container %+v has no owner", w)
		}
	}
	if w, _ := r.Get("c1"); w.Labels["app"] != "web" || w.CgroupID != 42 {
		t.Errorf("Get(c1) = %+v", w)
	}
	// The kubelet then reports the id: still one workload for the container.
	r.SetPod(webPod(map[string]string{"app": "web"}, "c1"))
	if got, want := summary(r), "c1:web:42:audited shop/web/side:web:0:audited"; got != want {
		t.Errorf("after the status: %q, want %q", got, want)
	}
	// A relabel reaches the registered container.
	r.SetPod(webPod(map[string]string{"app": "api"}, "c1"))
	if got, want := summary(r), "c1:api:42:audited shop/web/side:api:0:audited"; got != want {
		t.Errorf("after relabel: %q, want %q", got, want)
	}
	if w, _ := r.ByCgroup(42); w.Labels["app"] != "api" {
		t.Errorf("ByCgroup(42) after relabel: labels %v, want the new ones", w.Labels)
	}
	// A status heartbeat that changes nothing is no change.
	n := changes
	r.SetPod(webPod(map[string]string{"app": "api"}, "c1"))
	if changes != n {
		t.Errorf("an identical pod notified a change")
	}
	if r.cgroups == nil {
		t.Errorf("an identical pod dropped ByCgroup's table")
	}
	// The container exits (poststop) and the pod goes: nothing is left.
	r.Remove("c1")
	if got, want := summary(r), "shop/web/side:api:0:audited"; !strings.Contains(got, want) || strings.Contains(got, ":42:") {
		t.Errorf("after poststop: %q", got)
	}
	if w, ok := r.ByCgroup(42); ok {
		t.Errorf("ByCgroup(42) after poststop = %+v", w)
	}
	r.RemovePod("shop", "web")
	if got := summary(r); got != "" {
		t.Errorf("after the pod's deletion: %q, want nothing", got)
	}
}

// The hook registers before the informer has seen the pod (a slow watch, a daemon that just
// started): the container is enforced at once on what the runtime said, and gets the pod's
// labels when the pod arrives.
func TestRegistryHookThenPod(t *testing.T) {
	changes := 0
	r := NewRegistry(func() { changes++ })
	r.Upsert(hookReg("c1", "web", "u1", "main", 42))
	if got, want := summary(r), "c1::42:"; got != want {
		t.Fatalf("hook only: %q, want %q", got, want)
	}
	n := changes
	r.SetPod(webPod(map[string]string{"app": "web"}))
	if changes == n {
		t.Error("the pod's arrival notified no change")
	}
	if got, want := summary(r), "c1:web:42:audited shop/web/side:web:0:audited"; got != want {
		t.Fatalf("after the pod: %q, want %q", got, want)
	}
	// The pod is deleted (its containers are gone) before any poststop: its registrations go
	// with it.
	r.RemovePod("shop", "web")
	if got := summary(r); got != "" {
		t.Errorf("after the pod's deletion: %q, want nothing", got)
	}
}

// A pod recreated under the same name is another pod: a registration is merged only with the
// pod whose UID it carries, and the deletion of the old pod does not take the new container.
func TestRegistryPodUID(t *testing.T) {
	r := NewRegistry(nil)
	r.SetPod(webPod(map[string]string{"app": "web"})) // UID u1
	r.Upsert(hookReg("c2", "web", "u2", "main", 43))  // the new pod's container
	if got, want := summary(r), "c2::43: shop/web/main:web:0:audited shop/web/side:web:0:audited"; got != want {
		t.Fatalf("UID mismatch: %q, want %q", got, want)
	}
	r.RemovePod("shop", "web")
	if got, want := summary(r), "c2::43:"; got != want {
		t.Errorf("after the old pod's deletion: %q, want %q", got, want)
	}
}

// Registrations outside Kubernetes (no pod) and the host are untouched by pods.
func TestRegistryNoPod(t *testing.T) {
	r := NewRegistry(nil)
	r.Upsert(Host("n1", map[string]string{"app": "node"}))
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "p1", Namespace: DefaultContainerNamespace, Pod: "p1", Container: "p1",
		Labels: map[string]string{"app": "podman"}, CgroupID: 9})
	r.SetPod(Pod{Namespace: DefaultContainerNamespace, Name: "other", Containers: []PodContainer{{Name: "x"}}})
	if got, want := summary(r), "container_namespace/other/x::0: host:node:0: p1:podman:9:"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestListKeptUntilAChange: List builds its slice once per change (a policy edit's round lists
// every workload), and every kind of change makes it build a new one.
func TestListKeptUntilAChange(t *testing.T) {
	r := NewRegistry(nil)
	r.Upsert(Host("n1", nil))
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "c1", Namespace: "ns", Pod: "p", Container: "app"})
	pod := Pod{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "a"}, Containers: []PodContainer{{Name: "app", ID: "c1"}}}
	r.SetPod(pod)
	first := r.List()
	if again := r.List(); &again[0] != &first[0] {
		t.Error("List built a new slice without a change")
	}
	r.SetPod(pod) // a heartbeat: nothing the workloads carry changed
	if again := r.List(); &again[0] != &first[0] {
		t.Error("List built a new slice after a pod update that changed nothing")
	}
	labelsOf := func(id string) string {
		for _, w := range r.List() {
			if w.ID() == id {
				return w.Labels["app"]
			}
		}
		return "(none)"
	}
	for _, step := range []struct {
		name   string
		change func()
		check  func() bool
	}{
		{"SetPod", func() { pod.Labels = map[string]string{"app": "b"}; r.SetPod(pod) }, func() bool { return labelsOf("c1") == "b" }},
		{"Upsert", func() { r.Upsert(Workload{Kind: KindContainer, ContainerID: "c2", Namespace: "ns"}) }, func() bool { return len(r.List()) == 3 }},
		{"Remove", func() { r.Remove("c2") }, func() bool { return len(r.List()) == 2 }},
		{"RemovePod", func() { r.RemovePod("ns", "p") }, func() bool { return len(r.List()) == 1 }},
	} {
		step.change()
		if !step.check() {
			t.Errorf("after %s, List = %+v", step.name, r.List())
		}
	}
}
