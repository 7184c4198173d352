package workload

import (
	"sort"
	"sync"
)

// Registry is the set of workloads on this node, as the workload sources report them. It tells
// subscribers that something changed; readers take a consistent snapshot with List.
type Registry struct {
	mu       sync.Mutex
	byID     map[string]Workload
	onChange func()
}

// NewRegistry returns a registry that calls onChange (which must not block) after every change.
func NewRegistry(onChange func()) *Registry {
	if onChange == nil {
		onChange = func() {}
	}
	return &Registry{byID: map[string]Workload{}, onChange: onChange}
}

// Upsert adds or replaces a workload, keyed by its ID.
func (r *Registry) Upsert(w Workload) {
	r.mu.Lock()
	r.byID[w.ID()] = w
	r.mu.Unlock()
	r.onChange()
}

// Remove forgets a workload. Removing an unknown ID is not an error: sources may report an exit
// twice.
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	_, ok := r.byID[id]
	delete(r.byID, id)
	r.mu.Unlock()
	if ok {
		r.onChange()
	}
}

// Get returns one workload.
func (r *Registry) Get(id string) (Workload, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.byID[id]
	return w, ok
}

// ByCgroup returns the workload whose cgroup id is id. The host has none: callers fall back to it.
func (r *Registry) ByCgroup(id uint64) (Workload, bool) {
	if id == 0 {
		return Workload{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.byID {
		if w.CgroupID == id {
			return w, true
		}
	}
	return Workload{}, false
}

// List returns every workload, sorted by ID.
func (r *Registry) List() []Workload {
	r.mu.Lock()
	out := make([]Workload, 0, len(r.byID))
	for _, w := range r.byID {
		out = append(out, w)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}
