package workload

import (
	"maps"
	"reflect"
	"sort"
	"sync"
)

// Registry is the set of workloads on this node, as the workload sources report them. It tells
// subscribers that something changed; readers take a consistent snapshot with List.
//
// Two kinds of source report containers, and the registry merges them into one workload each:
//
//   - runtime registrations (Upsert): the OCI hook, which knows a container's kernel identity
//     (cgroup, namespaces) before its first instruction, and from the CRI runtime's annotations
//     its pod's namespace, name and UID and its own name, but not the pod's labels;
//   - the pod informer's view (SetPod): labels, the kubearmor-policy mode, the containers by name
//     and, once the kubelet reports them, their ids, but no kernel identity.
//
// A registration belongs to a known pod when namespace and pod name match (and the pod UIDs, when
// both are known: a pod recreated under the same name is another pod). It is listed with the
// pod's labels, mode and image over its own, under its container id, so its rules are in place
// from registration when the pod was seen first, and follow the pod's labels when it is seen
// later. A pod's container that no registration covers is listed from the view alone (keyed by
// its id, or by namespace/pod/container before it has one), which is what a node without the
// hook enforces on.
type Registry struct {
	mu       sync.Mutex
	byID     map[string]Workload // runtime registrations and the host, by ID
	pods     map[string]Pod      // by namespace/name
	onChange func()
	// cgroups is the merged registrations by cgroup id, built on the first ByCgroup after a
	// change: events look their workload up at event rate, changes come at human rate.
	cgroups map[uint64]Workload
	// list is what List returns until the next change, built by its first call after one: a
	// policy edit's round lists every workload, and with 1,000 of them building the list made
	// half of the round's garbage.
	list []Workload
}

// Pod is the pod informer's view of one pod on this node.
type Pod struct {
	Namespace string
	Name      string
	UID       string
	Hostname  string
	Labels    map[string]string
	Mode      Mode
	// Owner is the pod's owning object (see Workload.Owner).
	Owner *Owner
	// Containers are the init and app containers, in spec order.
	Containers []PodContainer
}

// PodContainer is one container of a Pod as the API server reports it.
type PodContainer struct {
	Name string
	// ID is the runtime's container id from the pod's status, empty until the kubelet has
	// reported it.
	ID    string
	Image string
	// AppArmorProfile is the Localhost AppArmor profile the pod's spec names for the container
	// (container securityContext over the pod's), when it is one of Ward's.
	AppArmorProfile string
}

// Key is the pod's namespace/name.
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// NewRegistry returns a registry that calls onChange (which must not block) after every change.
func NewRegistry(onChange func()) *Registry {
	if onChange == nil {
		onChange = func() {}
	}
	return &Registry{byID: map[string]Workload{}, pods: map[string]Pod{}, onChange: onChange}
}

// Upsert adds or replaces a runtime registration (or the host), keyed by its ID.
func (r *Registry) Upsert(w Workload) {
	r.mu.Lock()
	r.byID[w.ID()] = w
	r.changed()
	r.mu.Unlock()
	r.onChange()
}

// Remove forgets a runtime registration. Removing an unknown ID is not an error: sources may
// report an exit twice.
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	_, ok := r.byID[id]
	delete(r.byID, id)
	r.changed()
	r.mu.Unlock()
	if ok {
		r.onChange()
	}
}

// SetPod adds or replaces the informer's view of a pod. An update that changes nothing the
// workloads carry (a status heartbeat) does not notify.
func (r *Registry) SetPod(p Pod) {
	p.Labels = maps.Clone(p.Labels)
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Containers = append([]PodContainer(nil), p.Containers...)
	r.mu.Lock()
	old, ok := r.pods[p.Key()]
	same := ok && reflect.DeepEqual(old, p)
	if !same {
		r.pods[p.Key()] = p
		r.changed() // a heartbeat keeps the tables ByCgroup and List built
	}
	r.mu.Unlock()
	if !same {
		r.onChange()
	}
}

// RemovePod forgets a pod, and with it the runtime registrations of its containers: the API
// server deletes a pod once its containers are gone, and a registration must not outlive them
// in case a poststop hook never came (a runtime crash, a daemon that was down).
func (r *Registry) RemovePod(namespace, name string) {
	r.mu.Lock()
	p, ok := r.pods[namespace+"/"+name]
	delete(r.pods, namespace+"/"+name)
	r.changed()
	if ok {
		for id, w := range r.byID {
			if belongs(&w, &p) {
				delete(r.byID, id)
			}
		}
	}
	r.mu.Unlock()
	if ok {
		r.onChange()
	}
}

// changed drops what ByCgroup and List built from the workloads. The caller holds r.mu.
func (r *Registry) changed() {
	r.cgroups = nil
	r.list = nil
}

// belongs says whether a runtime registration is a container of pod p.
func belongs(w *Workload, p *Pod) bool {
	return w.Kind == KindContainer && w.Namespace == p.Namespace && w.Pod == p.Name &&
		(w.PodUID == "" || p.UID == "" || w.PodUID == p.UID)
}

// merged is a registration completed from its pod's view, when the pod is known.
func (r *Registry) merged(w Workload) Workload {
	if w.Kind != KindContainer || w.Pod == "" {
		return w
	}
	p, ok := r.pods[w.Namespace+"/"+w.Pod]
	if !ok || !belongs(&w, &p) {
		return w
	}
	// The pod's labels are what selectors mean; labels the runtime passed (CRI-O's, Ward's
	// annotations) stay unless the pod says otherwise.
	labels := maps.Clone(w.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, p.Labels)
	w.Labels = labels
	w.Mode = p.Mode
	w.PodUID = p.UID
	w.Owner = p.Owner
	for _, c := range p.Containers {
		if c.Name != w.Container {
			continue
		}
		if w.Image == "" {
			w.Image = c.Image
		}
		if w.AppArmorProfile == "" {
			// What the runtime said wins: it is what the container was created with.
			w.AppArmorProfile = c.AppArmorProfile
		}
	}
	return w
}

// view is every workload, merged, by ID. The caller holds r.mu.
func (r *Registry) view() map[string]Workload {
	out := make(map[string]Workload, len(r.byID)+len(r.pods))
	covered := map[string]bool{} // namespace/pod/container of registrations merged with their pod
	for id, w := range r.byID {
		out[id] = r.merged(w)
		if p, ok := r.pods[w.Namespace+"/"+w.Pod]; ok && belongs(&w, &p) {
			covered[w.Namespace+"/"+w.Pod+"/"+w.Container] = true
		}
	}
	for _, p := range r.pods {
		for _, c := range p.Containers {
			if covered[p.Namespace+"/"+p.Name+"/"+c.Name] {
				continue
			}
			if _, ok := r.byID[c.ID]; ok && c.ID != "" {
				continue // registered, under names that are not this pod's: the registration wins
			}
			// The pod's labels map is shared, not copied: SetPod stored a private copy that is
			// replaced, never changed, and List's callers read workloads without writing them.
			w := Workload{
				Kind: KindContainer, Hostname: p.Hostname, Namespace: p.Namespace, Pod: p.Name,
				PodUID: p.UID, Container: c.Name, ContainerID: c.ID, Image: c.Image,
				Labels: p.Labels, Mode: p.Mode, AppArmorProfile: c.AppArmorProfile, Owner: p.Owner,
			}
			out[w.ID()] = w
		}
	}
	return out
}

// Get returns one workload.
func (r *Registry) Get(id string) (Workload, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.byID[id]; ok {
		return r.merged(w), true
	}
	w, ok := r.view()[id]
	return w, ok
}

// ByCgroup returns the workload whose cgroup id is id. The host has none: callers fall back to it.
func (r *Registry) ByCgroup(id uint64) (Workload, bool) {
	if id == 0 {
		return Workload{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cgroups == nil {
		r.cgroups = make(map[uint64]Workload, len(r.byID))
		for _, w := range r.byID {
			if w.CgroupID != 0 {
				r.cgroups[w.CgroupID] = r.merged(w)
			}
		}
	}
	w, ok := r.cgroups[id]
	return w, ok
}

// List returns every workload, sorted by ID. The slice is shared with other callers until the
// next change: read it, do not write it.
func (r *Registry) List() []Workload {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.list != nil {
		return r.list
	}
	v := r.view()
	// Sorting the keys rather than the workloads: ID() builds a string for a container without
	// an id, and a sort calls it O(n log n) times.
	ids := make([]string, 0, len(v))
	for id := range v {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Workload, 0, len(v))
	for _, id := range ids {
		out = append(out, v[id])
	}
	r.list = out
	return out
}
