package enforcer

import (
	"sync"
	"testing"
	"time"
)

// One key's holders take turns, another key's does not wait for them, and a released key's lock
// is forgotten.
func TestWorkloadLocks(t *testing.T) {
	var w WorkloadLocks
	unlockA := w.Lock("a")

	got := make(chan string, 2)
	go func() { defer w.Lock("b")(); got <- "b" }()
	if s := <-got; s != "b" {
		t.Fatalf("got %q", s)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Lock("a")()
		got <- "second a"
	}()
	select {
	case s := <-got:
		t.Fatalf("%s ran while the first holder of a still held it", s)
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	if s := <-got; s != "second a" {
		t.Fatalf("got %q", s)
	}
	wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.locks) != 0 {
		t.Errorf("%d locks kept after every holder released them", len(w.locks))
	}
}
