package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/api/policypb"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/events"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// recordingBackend stands in for a kernel backend: it records every Apply and lets the test
// inject kernel events.
type recordingBackend struct {
	applied chan []*rules.Set
	events  chan enforcer.Event
}

func newRecordingBackend() *recordingBackend {
	return &recordingBackend{applied: make(chan []*rules.Set, 64), events: make(chan enforcer.Event, 8)}
}

func (b *recordingBackend) Name() string { return enforcer.BPF }
func (b *recordingBackend) Apply(_ context.Context, sets []*rules.Set) error {
	b.applied <- sets
	return nil
}
func (b *recordingBackend) Events() <-chan enforcer.Event { return b.events }
func (b *recordingBackend) Close() error                  { return nil }

type memorySink struct {
	mu       sync.Mutex
	alerts   []*feeder.Alert
	messages []*feeder.Message
	got      chan struct{}
}

func (m *memorySink) WriteAlert(a *feeder.Alert) error {
	m.mu.Lock()
	m.alerts = append(m.alerts, a)
	m.mu.Unlock()
	m.got <- struct{}{}
	return nil
}
func (m *memorySink) WriteLog(*feeder.Log) error { return nil }

// next waits for the next alert written to the sink and returns the latest one, failing with the
// daemon's log when none comes.
func (m *memorySink) next(t *testing.T, what string, logs *syncWriter) *feeder.Alert {
	t.Helper()
	select {
	case <-m.got:
	case <-time.After(10 * time.Second):
		t.Fatalf("no alert for %s\n%s", what, logs.String())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.alerts[len(m.alerts)-1]
}
func (m *memorySink) WriteMessage(msg *feeder.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.messages = append(m.messages, msg)
	return nil
}

// hasMessage reports whether a message of the level containing every one of parts was sent.
func (m *memorySink) hasMessage(level string, parts ...string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
next:
	for _, msg := range m.messages {
		if msg.Level != level {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(msg.Message, p) {
				continue next
			}
		}
		return true
	}
	return false
}

const hostPolicyYAML = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: %s}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
    - path: %s
  action: Block
`

func hostPolicyFile(name, path string) string {
	return strings.Replace(strings.Replace(hostPolicyYAML, "%s", name, 1), "%s", path, 1)
}

type harness struct {
	t       *testing.T
	cfg     Config
	backend *recordingBackend
	sink    *memorySink
	d       *Daemon
	cancel  context.CancelFunc
	done    chan error
	logs    *syncWriter
	once    sync.Once
}

// launch runs the daemon on backend (offered as BPF-LSM) with settings over the tests' defaults,
// waits for its first reconcile and stops it at cleanup, or earlier through stop.
func launch(t *testing.T, settings map[string]string, backend enforcer.Backend, sinks ...events.Sink) *harness {
	t.Helper()
	lsm := filepath.Join(t.TempDir(), "lsm")
	if err := os.WriteFile(lsm, []byte("capability,bpf"), 0o644); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"gRPC": "", "health": "", "logPath": "none", "host": "node1"}
	maps.Copy(values, settings)
	cfg, err := buildConfig(defaults(values))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, done: make(chan error, 1), logs: &syncWriter{w: &bytes.Buffer{}}}
	ready := make(chan *Daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.done <- Run(ctx, Options{
			Config: cfg, Logger: slog.New(slog.NewTextHandler(h.logs, nil)), LSMPath: lsm,
			Factories: map[string]enforcer.Factory{enforcer.BPF: func(context.Context) (enforcer.Backend, error) { return backend, nil }},
			Sinks:     sinks,
			Ready:     func(d *Daemon) { ready <- d },
		})
	}()
	select {
	case h.d = <-ready:
	case err := <-h.done:
		t.Fatalf("daemon stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready after 10s")
	}
	t.Cleanup(h.stop)
	return h
}

// startDaemon runs the daemon with a gRPC port, a recording backend and a memory sink.
func startDaemon(t *testing.T, policies, state string) *harness {
	t.Helper()
	backend, sink := newRecordingBackend(), &memorySink{got: make(chan struct{}, 8)}
	h := launch(t, map[string]string{"policies": policies, "state": state, "gRPC": "127.0.0.1:0"}, backend, sink)
	h.backend, h.sink = backend, sink
	return h
}

func (h *harness) stop() { h.once.Do(h.stopOnce) }

func (h *harness) stopOnce() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("daemon did not stop within 10s")
	}
}

// waitApplied waits for an Apply whose host set satisfies ok.
func (h *harness) waitApplied(what string, ok func(*rules.Set) bool) *rules.Set {
	h.t.Helper()
	sets := h.waitAppliedAll(what, func(sets []*rules.Set) bool { return len(sets) == 1 && ok(sets[0]) })
	return sets[0]
}

// waitAppliedAll waits for an Apply whose sets satisfy ok.
func (h *harness) waitAppliedAll(what string, ok func([]*rules.Set) bool) []*rules.Set {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case sets := <-h.backend.applied:
			if ok(sets) {
				return sets
			}
		case <-deadline:
			h.t.Fatalf("no Apply with %s within 10s; log:\n%s", what, h.logs.String())
		}
	}
}

func hasPolicy(name string) func(*rules.Set) bool {
	return func(s *rules.Set) bool {
		for _, k := range s.Policies {
			if k == "KubeArmorHostPolicy/"+name {
				return true
			}
		}
		return false
	}
}

func defaults(over map[string]string) map[string]string {
	v := map[string]string{}
	for _, s := range settings {
		v[s.key] = s.def
	}
	for k, val := range over {
		v[k] = val
	}
	return v
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestDaemonDirectoryPolicies(t *testing.T) {
	dir := t.TempDir()
	h := startDaemon(t, dir, t.TempDir())
	if h.d.Selection().Selected != enforcer.BPF {
		t.Fatalf("selected %s", h.d.Selection().Selected)
	}
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(hostPolicyFile("first", "/etc/shadow")), 0o644); err != nil {
		t.Fatal(err)
	}
	set := h.waitApplied("policy first", hasPolicy("first"))
	if v := set.Decide(rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}); v.Action != policy.ActionBlock {
		t.Fatalf("applied set does not block /etc/shadow: %+v", v)
	}

	// An invalid edit is refused and the previous rules stay in force.
	if err := os.WriteFile(file, []byte(strings.Replace(hostPolicyFile("first", "/etc/gshadow"), "matchPaths", "matchPath", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, h.logs, "the rejection's message", func() bool {
		return h.sink.hasMessage("Error", "policy rejected", `unknown field "matchPath"`)
	})
	// Nothing changed, so nothing goes to the backend: what it enforces stays.
	select {
	case sets := <-h.backend.applied:
		t.Fatalf("a rejected edit reached the backend: %d sets", len(sets))
	case <-time.After(300 * time.Millisecond):
	}
	set = h.d.Sets()["host"]
	if v := set.Decide(rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}); v.Action != policy.ActionBlock || v.Policy != "first" {
		t.Fatalf("after a rejected edit /etc/shadow is %+v, want still blocked by first", v)
	}

	// Removing the file removes its rules.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	h.waitApplied("no policies", func(s *rules.Set) bool { return len(s.Policies) == 0 })
}

func TestDaemonPolicyServiceAndRestore(t *testing.T) {
	state := t.TempDir()
	h := startDaemon(t, t.TempDir(), state)
	conn, err := grpc.NewClient(h.d.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := policypb.NewPolicyServiceClient(conn)
	send := func(rpc func(context.Context, *policypb.Policy, ...grpc.CallOption) (*policypb.Response, error), payload string) policypb.PolicyStatus {
		t.Helper()
		resp, err := rpc(context.Background(), &policypb.Policy{Policy: []byte(payload)})
		if err != nil {
			t.Fatalf("rpc: %v", err)
		}
		return resp.GetStatus()
	}
	obj := `{"metadata":{"name":"grpc-hsp"},"spec":{"nodeSelector":{"matchLabels":{"kubearmor.io/hostname":"*"}},"file":{"matchPaths":[{"path":"/etc/passwd"}]},"action":"Block"}}`
	cases := []struct {
		name    string
		rpc     func(context.Context, *policypb.Policy, ...grpc.CallOption) (*policypb.Response, error)
		payload string
		want    policypb.PolicyStatus
	}{
		{"add", client.HostPolicy, `{"type":"ADDED","object":` + obj + `}`, policypb.PolicyStatus_Applied},
		{"add again", client.HostPolicy, `{"type":"ADDED","object":` + obj + `}`, policypb.PolicyStatus_Modified},
		{"invalid", client.HostPolicy, `{"type":"ADDED","object":{"metadata":{"name":"bad"},"spec":{"nodeSelector":{"matchLabels":{"a":"b"}},"file":{"matchPaths":[{"path":"etc"}]}}}}`, policypb.PolicyStatus_Invalid},
		{"not json", client.HostPolicy, `apiVersion: x`, policypb.PolicyStatus_Invalid},
		{"network policy", client.NetworkPolicy, `{"type":"ADDED","object":{}}`, policypb.PolicyStatus_NotEnabled},
		{"delete missing", client.ContainerPolicy, `{"type":"DELETED","object":{"metadata":{"name":"nope","namespace":"x"}}}`, policypb.PolicyStatus_NotExist},
	}
	for _, c := range cases {
		if got := send(c.rpc, c.payload); got != c.want {
			t.Errorf("%s: status %s, want %s", c.name, got, c.want)
		}
	}
	h.waitApplied("the gRPC policy", hasPolicy("grpc-hsp"))

	// A kernel event is attributed to the policy and reported, to the sinks and to a
	// KubeArmor LogService client on the same port.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	stream, err := feeder.NewLogServiceClient(conn).WatchAlerts(watchCtx, &feeder.RequestMessage{Filter: "policy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // the server has registered the watcher
		t.Fatal(err)
	}
	h.backend.events <- enforcer.Event{Backend: enforcer.BPF, PID: 42, Errno: 1,
		Access: rules.Access{Op: policy.OpFile, Path: "/etc/passwd", Source: "/usr/bin/cat"}}
	select {
	case <-h.sink.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no alert for the kernel event")
	}
	h.sink.mu.Lock()
	a := h.sink.alerts[0]
	h.sink.mu.Unlock()
	if a.PolicyName != "grpc-hsp" || a.Action != "Block" || a.Resource != "/etc/passwd" || a.Enforcer != "BPFLSM" || a.Type != "MatchedHostPolicy" || a.HostName != "node1" {
		t.Errorf("alert = %+v", a)
	}
	got, err := stream.Recv()
	if err != nil {
		t.Fatalf("WatchAlerts: %v", err)
	}
	if got.GetPolicyName() != "grpc-hsp" || got.GetResult() != "Operation not permitted" {
		t.Errorf("streamed alert = %+v", got)
	}

	// The accepted policy survives a restart.
	h.stop()
	h2 := startDaemon(t, t.TempDir(), state)
	h2.waitApplied("the restored gRPC policy", hasPolicy("grpc-hsp"))

	conn2, err := grpc.NewClient(h2.d.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	resp, err := policypb.NewPolicyServiceClient(conn2).HostPolicy(context.Background(), &policypb.Policy{Policy: []byte(`{"type":"DELETED","object":{"metadata":{"name":"grpc-hsp"}}}`)})
	if err != nil || resp.GetStatus() != policypb.PolicyStatus_Deleted {
		t.Fatalf("delete: %v %v", resp.GetStatus(), err)
	}
	h2.waitApplied("no policies after delete", func(s *rules.Set) bool { return len(s.Policies) == 0 })
	if entries, _ := os.ReadDir(filepath.Join(state, "policies")); len(entries) != 0 {
		t.Errorf("state still holds %d files after delete", len(entries))
	}
}

func TestDaemonContainerWorkloads(t *testing.T) {
	dir := t.TempDir()
	ksp := `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-block, namespace: web}
spec:
  selector: {matchLabels: {app: nginx}}
  process:
    matchPaths:
    - path: /usr/bin/curl
  action: Block
`
	if err := os.WriteFile(filepath.Join(dir, "ksp.yaml"), []byte(ksp), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startDaemon(t, dir, t.TempDir())
	nginx := workload.Workload{Kind: workload.KindContainer, ContainerID: "c1", Namespace: "web", Container: "nginx", Labels: map[string]string{"app": "nginx"}}
	sneaky := workload.Workload{Kind: workload.KindContainer, ContainerID: "c2", Namespace: "kube-system", Container: "x", Labels: map[string]string{"app": "nginx"}}
	h.d.Workloads().Upsert(nginx)
	h.d.Workloads().Upsert(sneaky)
	sets := h.waitAppliedAll("three workloads", func(s []*rules.Set) bool { return len(s) == 3 })
	byID := map[string]*rules.Set{}
	for _, s := range sets {
		byID[s.Workload.ID()] = s
	}
	exec := rules.Access{Op: policy.OpProcess, Path: "/usr/bin/curl", Source: "/bin/sh"}
	if v := byID["c1"].Decide(exec); v.Action != policy.ActionBlock || v.Policy != "web-block" {
		t.Errorf("nginx container: %+v", v)
	}
	if v := byID["host"].Decide(exec); v.Action != policy.ActionAllow {
		t.Errorf("host must not get a container policy: %+v", v)
	}
	if v := byID["c2"].Decide(exec); v.Action != policy.ActionAllow || byID["c2"].Workload.Mode != workload.ModeDisabled {
		t.Errorf("untracked namespace must get no enforcement: %+v", v)
	}
	h.d.Workloads().Remove("c1")
	h.waitAppliedAll("two workloads after the container exits", func(s []*rules.Set) bool { return len(s) == 2 })
}

type fakeMonitor struct{ ch chan enforcer.Event }

func (f *fakeMonitor) Events() <-chan enforcer.Event { return f.ch }
func (f *fakeMonitor) Close() error                  { return nil }

type recordingSink struct {
	memorySink
	logs chan *feeder.Log
}

func (r *recordingSink) WriteLog(l *feeder.Log) error { r.logs <- l; return nil }

// Observed accesses: in monitor mode a Block verdict is reported as "would be blocked", and an
// unmatched access becomes a log when visibility asks for it.
func TestDaemonMonitorMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(hostPolicyFile("shadow", "/etc/shadow")), 0o644); err != nil {
		t.Fatal(err)
	}
	lsm := filepath.Join(t.TempDir(), "lsm")
	if err := os.WriteFile(lsm, []byte("capability"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := buildConfig(defaults(map[string]string{"policies": dir, "state": t.TempDir(), "gRPC": "", "health": "", "logPath": "none", "host": "n", "hostVisibility": "file"}))
	if err != nil {
		t.Fatal(err)
	}
	mon := &fakeMonitor{ch: make(chan enforcer.Event, 4)}
	sink := &recordingSink{memorySink: memorySink{got: make(chan struct{}, 4)}, logs: make(chan *feeder.Log, 4)}
	ready := make(chan *Daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, LSMPath: lsm, Sinks: []events.Sink{sink}, Ready: func(d *Daemon) { ready <- d },
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			Monitor: func(func(uint64, uint32) string) (EventSource, error) { return mon, nil }})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	mon.ch <- enforcer.Event{Backend: "monitor", PID: 7, Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow", Source: "/usr/bin/cat"}}
	select {
	case <-sink.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no monitor-mode alert")
	}
	sink.mu.Lock()
	a := sink.alerts[0]
	sink.mu.Unlock()
	if a.Action != "Audit (Block)" || a.Result != "Passed" || a.PolicyName != "shadow" || a.Enforcer != "eBPF Monitor" {
		t.Errorf("monitor-mode alert = %+v", a)
	}
	mon.ch <- enforcer.Event{Backend: "monitor", PID: 8, Access: rules.Access{Op: policy.OpFile, Path: "/etc/hosts", Source: "/usr/bin/cat"}}
	select {
	case l := <-sink.logs:
		if l.Resource != "/etc/hosts" || l.Type != "HostLog" {
			t.Errorf("log = %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no log for a visible unmatched access")
	}
	mon.ch <- enforcer.Event{Backend: "monitor", PID: 9, Access: rules.NetworkAccess("tcp")}
	select {
	case l := <-sink.logs:
		t.Errorf("network is not in hostVisibility, got log %+v", l)
	case <-time.After(300 * time.Millisecond):
	}
}

// refusingBackend refuses every Apply until accept is closed.
type refusingBackend struct {
	recordingBackend
	accept chan struct{}
}

func (b *refusingBackend) Apply(ctx context.Context, sets []*rules.Set) error {
	select {
	case <-b.accept:
		return b.recordingBackend.Apply(ctx, sets)
	default:
		return errors.New("refused")
	}
}

// TestReadyOnlyWhenRulesInForce: the daemon is alive from the start but ready (the readiness
// probe's service) only once a round has put the rules in force; a refused first Apply keeps it
// unready until a retry succeeds.
func TestReadyOnlyWhenRulesInForce(t *testing.T) {
	b := &refusingBackend{recordingBackend: *newRecordingBackend(), accept: make(chan struct{})}
	h := launch(t, map[string]string{"policies": t.TempDir(), "state": t.TempDir()}, b)
	if h.d.health.Ready() {
		t.Fatal("ready after a refused Apply")
	}
	close(b.accept)
	waitUntil(t, h.logs, "ready once the backend accepts", h.d.health.Ready)
}

// A round whose Apply was refused is not "reconciled". A workload whose set the backend refused
// is still known: the kernel's denials are attributed
// to the policy, and what the monitor sees is reported as not enforced, never dropped as an
// event of an unknown workload.
func TestDaemonEventsWhileApplyFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(hostPolicyFile("shadow", "/etc/shadow")), 0o644); err != nil {
		t.Fatal(err)
	}
	lsm := filepath.Join(t.TempDir(), "lsm")
	if err := os.WriteFile(lsm, []byte("capability,bpf"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := buildConfig(defaults(map[string]string{"policies": dir, "state": t.TempDir(), "gRPC": "", "health": "", "logPath": "none", "host": "n"}))
	if err != nil {
		t.Fatal(err)
	}
	backend := &refusingBackend{recordingBackend: *newRecordingBackend(), accept: make(chan struct{})}
	mon := &fakeMonitor{ch: make(chan enforcer.Event, 4)}
	sink := &memorySink{got: make(chan struct{}, 4)}
	logs := &syncWriter{w: &bytes.Buffer{}}
	ready := make(chan *Daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, LSMPath: lsm, Sinks: []events.Sink{sink}, Ready: func(d *Daemon) { ready <- d },
			Logger:    slog.New(slog.NewTextHandler(logs, nil)),
			Factories: map[string]enforcer.Factory{enforcer.BPF: func(context.Context) (enforcer.Backend, error) { return backend, nil }},
			Monitor:   func(func(uint64, uint32) string) (EventSource, error) { return mon, nil }})
	}()
	defer func() { cancel(); <-done }()
	var d *Daemon
	select {
	case d = <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if s := d.Sets()["host"]; s != nil {
		t.Fatalf("a refused set is in force: %+v", s)
	}
	if n := reconcileRounds(t, d); n != 0 {
		t.Errorf("a round whose Apply was refused is counted as reconciled (%d rounds in ward_reconcile_recompiled_workloads):\n%s", n, logs.String())
	}
	next := func(what string) *feeder.Alert { t.Helper(); return sink.next(t, what, logs) }
	// Events of a workload nobody registered are dropped, and said once; the monitor's events
	// are handled in order, so both are done once the next event's alert is out.
	mon.ch <- enforcer.Event{Backend: "monitor", Workload: "gone", Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}}
	mon.ch <- enforcer.Event{Backend: "monitor", Workload: "gone", Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}}
	mon.ch <- enforcer.Event{Backend: "monitor", PID: 7, Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow", Source: "/usr/bin/cat"}}
	if a := next("the observed access"); a.Action != "Audit (Block)" || a.Result != "Passed" || a.PolicyName != "shadow" {
		t.Errorf("observed access while the set is not in force: %+v", a)
	}
	backend.events <- enforcer.Event{Backend: enforcer.BPF, PID: 8, Errno: int(syscall.EPERM), Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow", Source: "/usr/bin/cat"}}
	if a := next("the kernel denial"); a.Action != "Block" || a.PolicyName != "shadow" {
		t.Errorf("kernel denial while the set is not in force: %+v", a)
	}
	if n := strings.Count(logs.String(), "unknown workload"); n != 1 {
		t.Errorf("%d unknown-workload warnings, want 1 (for gone, once)\n%s", n, logs.String())
	}
}
