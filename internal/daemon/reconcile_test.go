package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wardsec/ward/api/feeder"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

// workloadBackend is a fake backend that changes one workload at a time. Calls for the workload
// named in block wait on gate; calls for the one named in fail return an error until cleared.
type workloadBackend struct {
	recordingBackend
	mu      sync.Mutex
	calls   map[string]int
	block   string
	entered chan string
	gate    chan struct{}
	fail    map[string]error
	got     chan string // every ApplyWorkload/RemoveWorkload, as "apply ID" or "remove ID"
}

func newWorkloadBackend() *workloadBackend {
	return &workloadBackend{recordingBackend: *newRecordingBackend(), calls: map[string]int{},
		entered: make(chan string, 8), gate: make(chan struct{}), fail: map[string]error{}, got: make(chan string, 256)}
}

func (b *workloadBackend) ApplyWorkload(_ context.Context, set *rules.Set) error {
	id := set.Workload.ID()
	b.mu.Lock()
	b.calls[id]++
	block, err := b.block == id, b.fail[id]
	b.mu.Unlock()
	if block {
		b.entered <- id
		<-b.gate
	}
	b.got <- "apply " + id
	return err
}

func (b *workloadBackend) RemoveWorkload(_ context.Context, id string) error {
	b.got <- "remove " + id
	return nil
}

// hold makes the backend's calls for id wait on gate, runs change and waits until such a call
// has begun.
func (b *workloadBackend) hold(t *testing.T, id string, logs *syncWriter, change func()) {
	t.Helper()
	b.mu.Lock()
	b.block = id
	b.mu.Unlock()
	change()
	select {
	case <-b.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("no call for %s; log:\n%s", id, logs.String())
	}
}

func (b *workloadBackend) count(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[id]
}

func (b *workloadBackend) waitCall(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-b.got:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within 10s", want)
		}
	}
}

func startWith(t *testing.T, policies string, backend enforcer.Backend) (*Daemon, *syncWriter) {
	t.Helper()
	h := launch(t, map[string]string{"policies": policies, "state": t.TempDir()}, backend)
	return h.d, h.logs
}

func containerPolicyFile(name, app, path string) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: %s, namespace: shop}
spec:
  selector: {matchLabels: {app: %s}}
  file:
    matchPaths:
    - path: %s
  action: Block
`, name, app, path)
}

func shopContainer(id, app string) workload.Workload {
	return workload.Workload{Kind: workload.KindContainer, ContainerID: id, Namespace: "shop", Container: app,
		Labels: map[string]string{"app": app}, CgroupID: uint64(len(id)) + 100}
}

func blocks(d *Daemon, id, path string) bool {
	s := d.Sets()[id]
	return s != nil && s.Decide(rules.Access{Op: policy.OpFile, Path: path}).Action == policy.ActionBlock
}

// waitUntil is the daemon tests' one way to wait: for a condition on a fact the daemon exposes
// (its sets in force, a message, a status), never for a log line, with the log in the failure.
// 30 s is generous on the host and enough in a VM under load.
func waitUntil(t *testing.T, logs *syncWriter, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writePolicy(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A policy change reaches only the workloads the policy covers, and a slow backend call for one
// workload does not delay another's.
func TestReconcileIncrementalNonBlocking(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a1"))
	writePolicy(t, dir, "b.yaml", containerPolicyFile("pb", "b", "/b1"))
	b := newWorkloadBackend()
	d, logs := startWith(t, dir, b)
	d.Workloads().Upsert(shopContainer("ca", "a"))
	d.Workloads().Upsert(shopContainer("cb", "b"))
	waitUntil(t, logs, "both containers in force", func() bool { return blocks(d, "ca", "/a1") && blocks(d, "cb", "/b1") })
	if b.count("host") != 0 {
		t.Errorf("registering containers pushed the host %d times", b.count("host"))
	}

	// Changing pb recompiles and pushes cb only: the round that carries the change is counted
	// once it has handed its workloads to the apply queue, and it recompiled one workload.
	a0, rounds0, ones0 := b.count("ca"), reconcileRounds(t, d), roundsRecompiling(t, d, 1)
	writePolicy(t, dir, "b.yaml", containerPolicyFile("pb", "b", "/b2"))
	waitUntil(t, logs, "pb's change in force and its round counted", func() bool {
		return blocks(d, "cb", "/b2") && reconcileRounds(t, d) > rounds0
	})
	if rounds, ones := reconcileRounds(t, d)-rounds0, roundsRecompiling(t, d, 1)-ones0; rounds != ones {
		t.Errorf("a change of pb: %d rounds, of which %d recompiled one workload; want every round to recompile cb alone", rounds, ones)
	}
	if n := b.count("ca") - a0; n != 0 {
		t.Errorf("a change of pb pushed ca %d times", n)
	}
	if n := b.count("host"); n != 0 {
		t.Errorf("a change of pb pushed the host %d times", n)
	}

	// ca's call hangs; cb's change still arrives, and ca keeps its previous set in force.
	b.hold(t, "ca", logs, func() { writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a2")) })
	writePolicy(t, dir, "b.yaml", containerPolicyFile("pb", "b", "/b3"))
	waitUntil(t, logs, "cb's change while ca's call hangs", func() bool { return blocks(d, "cb", "/b3") })
	if !blocks(d, "ca", "/a1") || blocks(d, "ca", "/a2") {
		t.Error("while its call hangs, Sets() must show ca's previous set")
	}
	close(b.gate)
	waitUntil(t, logs, "ca's change after the call returns", func() bool { return blocks(d, "ca", "/a2") && !blocks(d, "ca", "/a1") })

	// A container that exits is removed from the backend and from Sets.
	d.Workloads().Remove("cb")
	b.waitCall(t, "remove cb")
	waitUntil(t, logs, "cb gone from Sets", func() bool { return d.Sets()["cb"] == nil })
	if n := roundsRecompiling(t, d, 1); n == 0 {
		t.Errorf("no reconcile round recompiled exactly one workload (ward_reconcile_recompiled_workloads); log:\n%s", logs.String())
	}
}

// reconcileRounds counts the reconcile rounds that changed what is wanted and were applied, from
// the daemon's ward_reconcile_recompiled_workloads histogram.
func reconcileRounds(t *testing.T, d *Daemon) uint64 {
	t.Helper()
	return metricFamily(t, d, "ward_reconcile_recompiled_workloads").GetMetric()[0].GetHistogram().GetSampleCount()
}

// metricFamily gathers one metric family from the daemon's registry, failing the test when it is
// not registered.
func metricFamily(t testing.TB, d *Daemon, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no %s metric", name)
	return nil
}

// roundsRecompiling counts the reconcile rounds that recompiled exactly n workloads, from the
// daemon's ward_reconcile_recompiled_workloads histogram (n must be 1 or 2: its buckets hold 0, 1 and 2 apart).
func roundsRecompiling(t *testing.T, d *Daemon, n int) uint64 {
	t.Helper()
	var upTo, below uint64 // rounds with at most n, and with at most n-1
	found := 0
	for _, b := range metricFamily(t, d, "ward_reconcile_recompiled_workloads").GetMetric()[0].GetHistogram().GetBucket() {
		switch b.GetUpperBound() {
		case float64(n):
			upTo, found = b.GetCumulativeCount(), found+1
		case float64(n - 1):
			below, found = b.GetCumulativeCount(), found+1
		}
	}
	if found != 2 {
		t.Fatalf("ward_reconcile_recompiled_workloads has no buckets at %d and %d", n-1, n)
	}
	return upTo - below
}

// A refused set leaves the previous one in force, is reported, and is retried until accepted.
func TestReconcileRetriesRefusedWorkload(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a1"))
	b := newWorkloadBackend()
	sink := &memorySink{got: make(chan struct{}, 8)}
	h := launch(t, map[string]string{"policies": dir, "state": t.TempDir()}, b, sink)
	d, logs := h.d, h.logs
	d.Workloads().Upsert(shopContainer("ca", "a"))
	waitUntil(t, logs, "ca in force", func() bool { return blocks(d, "ca", "/a1") })

	b.mu.Lock()
	b.fail["ca"] = errors.New("kernel says no")
	b.mu.Unlock()
	writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a2"))
	waitUntil(t, logs, "the refusal's message", func() bool {
		return sink.hasMessage("Error", "workload ca", "kernel says no", "previous rules stay in force")
	})
	if !blocks(d, "ca", "/a1") || blocks(d, "ca", "/a2") {
		t.Error("after a refusal Sets() must show ca's previous set")
	}
	calls := b.count("ca")
	b.mu.Lock()
	delete(b.fail, "ca")
	b.mu.Unlock()
	waitUntil(t, logs, "the retry", func() bool { return blocks(d, "ca", "/a2") })
	if b.count("ca") <= calls {
		t.Error("in force without a new call")
	}
}

// With a per-workload backend, the OCI hook's registration is acknowledged only once the
// container's own ApplyWorkload returned, and is not held up by another workload's call.
func TestHookWaitsForWorkloadApply(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "a.yaml", containerPolicyFile("pa", "a", "/a1"))
	b := newWorkloadBackend()
	d, logs := startWith(t, dir, b)
	b.mu.Lock()
	b.block = "ca"
	b.mu.Unlock()
	ctx := context.Background()
	ackA := make(chan hookapi.Response, 1)
	go func() {
		ackA <- d.handleHook(ctx, hookapi.Request{Op: hookapi.OpRegister, Workload: shopContainer("ca", "a"), Pid: 1})
	}()
	select {
	case <-b.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("no ApplyWorkload for ca; log:\n%s", logs.String())
	}
	// Another container registers and is acknowledged while ca's call hangs.
	resp := d.handleHook(ctx, hookapi.Request{Op: hookapi.OpRegister, Workload: shopContainer("cb", "b"), Pid: 1})
	if !resp.OK {
		t.Fatalf("cb: %+v", resp)
	}
	select {
	case r := <-ackA:
		t.Fatalf("ca acknowledged before its rules were applied: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	close(b.gate)
	select {
	case r := <-ackA:
		if !r.OK || len(r.Policies) != 1 || r.Policies[0] != "KubeArmorPolicy/shop/pa" {
			t.Errorf("ca: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ca never acknowledged")
	}
}

// The kernel takes a workload's new rules before the backend's call returns, and a record of its
// old rules can be read after the daemon marked the new ones in force. A denial in either window
// is a Block of the policy that made it, never an "Allow" that was denied (the node suite's
// AppArmor block case once got one: the denial came while apparmor_parser was finishing).
func TestEventsDuringWorkloadApply(t *testing.T) {
	dir := t.TempDir()
	b := newWorkloadBackend()
	sink := &memorySink{got: make(chan struct{}, 8)}
	h := launch(t, map[string]string{"policies": dir, "state": t.TempDir()}, b, sink)
	d, logs := h.d, h.logs
	d.Workloads().Upsert(shopContainer("ca", "a"))
	waitUntil(t, logs, "ca in force", func() bool { return d.Sets()["ca"] != nil })
	denial := enforcer.Event{Backend: enforcer.BPF, Workload: "ca", PID: 9, Errno: int(syscall.EACCES),
		Access: rules.Access{Op: policy.OpFile, Path: "/secret", Source: "/usr/bin/cat"}}
	nextAlert := func(what string) *feeder.Alert {
		t.Helper()
		b.events <- denial
		return sink.next(t, what, logs)
	}

	// The policy arrives; ca's call has loaded it (the kernel denies) but not returned.
	b.hold(t, "ca", logs, func() { writePolicy(t, dir, "p.yaml", containerPolicyFile("secret", "a", "/secret")) })
	if blocks(d, "ca", "/secret") {
		t.Fatal("the set is in force before the backend's call returned")
	}
	if a := nextAlert("a denial while the call runs"); a.Action != "Block" || a.PolicyName != "secret" || a.Result != "Permission denied" {
		t.Errorf("denial by the rules being applied: action %q policy %q result %q, want Block by secret", a.Action, a.PolicyName, a.Result)
	}
	b.mu.Lock()
	b.block = ""
	b.mu.Unlock()
	close(b.gate)
	waitUntil(t, logs, "the policy in force", func() bool { return blocks(d, "ca", "/secret") })

	// The policy goes; a denial the old rules made is read after the change is in force.
	if err := os.Remove(filepath.Join(dir, "p.yaml")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, logs, "the policy gone", func() bool { return d.Sets()["ca"] != nil && !blocks(d, "ca", "/secret") })
	if a := nextAlert("a late record of the old rules"); a.Action != "Block" || a.PolicyName != "secret" {
		t.Errorf("late denial by the replaced rules: action %q policy %q, want Block by secret", a.Action, a.PolicyName)
	}
}
