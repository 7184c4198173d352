package daemon

import (
	"maps"
	"sync"

	"github.com/wardsec/ward/internal/rules"
)

// setTable maps workload IDs to rule sets. The event pipeline looks one up per event; the apply
// workers and the reconcile change one workload at a time. It used to be a map replaced whole
// on every change (copy on write): with 1,000 workloads registering at start that was a copy of
// the whole map per workload, and a copy per policy edit.
type setTable struct {
	mu sync.RWMutex
	m  map[string]*rules.Set
}

// get returns the set of workload id, or nil.
func (t *setTable) get(id string) *rules.Set {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[id]
}

// put makes set the set of workload id (nil: none).
func (t *setTable) put(id string, set *rules.Set) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if set == nil {
		delete(t.m, id)
		return
	}
	if t.m == nil {
		t.m = map[string]*rules.Set{}
	}
	t.m[id] = set
}

// replace makes m the whole table, and keeps m: the caller must not change it afterwards.
func (t *setTable) replace(m map[string]*rules.Set) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = m
}

// snapshot returns a copy of the table, which the caller may keep.
func (t *setTable) snapshot() map[string]*rules.Set {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return maps.Clone(t.m)
}

// len is the number of workloads with a set.
func (t *setTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
