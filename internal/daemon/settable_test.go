package daemon

import (
	"testing"
)

// gauge reads a metric without labels from the daemon's registry.
func gauge(t *testing.T, d *Daemon, name string) float64 {
	t.Helper()
	ms := metricFamily(t, d, name).GetMetric()
	if len(ms) != 1 {
		t.Fatalf("%s: %d metrics, want 1", name, len(ms))
	}
	return ms[0].GetGauge().GetValue()
}

// The sets in force change one workload at a time (setInForce). What is derived from them, the
// workload and rule gauges and each workload's replaced set, is kept up to date with each change
// rather than recomputed from all of them, and must agree with the sets in force after every
// kind of change: a workload added, its set replaced, a workload removed.
func TestInForceBookkeeping(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a"))
	writePolicy(t, dir, "b.yaml", containerPolicyFile("pb", "b", "/b"))
	d, logs := startWith(t, dir, newWorkloadBackend())
	agree := func(what string) {
		t.Helper()
		sets := d.Sets()
		n := 0
		for _, s := range sets {
			n += len(s.Rules)
		}
		d.setsMu.Lock()
		defer d.setsMu.Unlock()
		if g := gauge(t, d, "ward_workloads"); g != float64(len(sets)) {
			t.Errorf("%s: ward_workloads = %v, want %d", what, g, len(sets))
		}
		if g := gauge(t, d, "ward_rules_loaded"); g != float64(n) {
			t.Errorf("%s: ward_rules_loaded = %v, want %d", what, g, n)
		}
	}

	d.Workloads().Upsert(shopContainer("c1", "a"))
	d.Workloads().Upsert(shopContainer("c22", "b"))
	waitUntil(t, logs, "both containers in force", func() bool { return blocks(d, "c1", "/a") && blocks(d, "c22", "/b") })
	agree("two containers added")
	if s := d.replacedSet("c1"); s != nil {
		t.Errorf("c1 has a replaced set before any change: %v", s.Policies)
	}

	first := d.Sets()["c1"]
	writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a2"))
	writePolicy(t, dir, "a2.yaml", containerPolicyFile("pa2", "a", "/a3"))
	waitUntil(t, logs, "c1's new set in force", func() bool { return blocks(d, "c1", "/a2") && blocks(d, "c1", "/a3") })
	agree("c1's set replaced")
	if s := d.replacedSet("c1"); s != first {
		t.Errorf("c1's replaced set is not the one it had in force before the change")
	}
	if s := d.replacedSet("c22"); s != nil {
		t.Errorf("c22 has a replaced set, but its set did not change")
	}

	d.Workloads().Remove("c1")
	waitUntil(t, logs, "c1 removed", func() bool { return d.Sets()["c1"] == nil })
	agree("c1 removed")
	if s := d.replacedSet("c1"); s != nil {
		t.Errorf("c1 is gone but keeps a replaced set")
	}
	if d.wanted.get("c1") != nil {
		t.Errorf("c1 is gone but keeps a wanted set")
	}
	if d.wanted.get("c22") != d.Sets()["c22"] {
		t.Errorf("c22's wanted set is not the one in force")
	}
}
