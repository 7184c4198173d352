package enforcer

import "sync"

// WorkloadLocks serialises the operations on one key (a workload's ID, or a name several workloads
// share, like an AppArmor profile's) while operations on different keys run side by side. A key's
// lock exists while someone holds or waits for it, so the set does not grow with every workload
// that ever came and went. The zero value is ready to use.
type WorkloadLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int // holders and waiters; guarded by WorkloadLocks.mu
}

// Lock waits for key's lock and returns the function that releases it.
func (w *WorkloadLocks) Lock(key string) (unlock func()) {
	w.mu.Lock()
	if w.locks == nil {
		w.locks = map[string]*keyLock{}
	}
	l := w.locks[key]
	if l == nil {
		l = &keyLock{}
		w.locks[key] = l
	}
	l.users++
	w.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		w.mu.Lock()
		if l.users--; l.users == 0 {
			delete(w.locks, key)
		}
		w.mu.Unlock()
	}
}
