package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

// webPolicyYAML covers the containers labelled app=web in any namespace. A cluster policy,
// because Ward's validator refuses KubeArmor's out-of-Kubernetes namespace
// "container_namespace" in a KubeArmorPolicy (it is not a DNS label).
const webPolicyYAML = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata: {name: web-secret}
spec:
  selector:
    matchExpressions:
    - {key: label, operator: In, values: [app=web]}
  file:
    matchPaths:
    - path: /secret
  action: Block
`

// gatedBackend applies nothing until the test lets it: it shows whether a hook's answer waits
// for the backend.
type gatedBackend struct {
	gate sync.Mutex
	mu   sync.Mutex
	last []*rules.Set
	ev   chan enforcer.Event
}

func (b *gatedBackend) Name() string { return enforcer.BPF }
func (b *gatedBackend) Apply(_ context.Context, sets []*rules.Set) error {
	b.gate.Lock()
	//lint:ignore SA2001 waiting for the test to release the gate is the point
	b.gate.Unlock()
	b.mu.Lock()
	b.last = sets
	b.mu.Unlock()
	return nil
}
func (b *gatedBackend) Events() <-chan enforcer.Event { return b.ev }
func (b *gatedBackend) Close() error                  { return nil }

func (b *gatedBackend) applied(id string) *rules.Set {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.last {
		if s.Workload.ID() == id {
			return s
		}
	}
	return nil
}

type hookDaemon struct {
	d       *Daemon
	backend *gatedBackend
	socket  string
	logs    *syncWriter
	stop    func()
}

func startHookDaemon(t *testing.T, policies, state string) *hookDaemon {
	t.Helper()
	backend := &gatedBackend{ev: make(chan enforcer.Event)}
	h := launch(t, map[string]string{"policies": policies, "state": state}, backend)
	return &hookDaemon{d: h.d, backend: backend, socket: filepath.Join(state, hookapi.SocketName), logs: h.logs, stop: h.stop}
}

func webContainer(id string, cgroup uint64) workload.Workload {
	return workload.Workload{Kind: workload.KindContainer, ContainerID: id, Namespace: workload.DefaultContainerNamespace,
		Pod: "web", Container: "web", Labels: map[string]string{"app": "web"}, CgroupID: cgroup, PidNS: 4026532201, MntNS: 4026532200}
}

func call(t *testing.T, socket string, req hookapi.Request) (hookapi.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hookapi.Call(ctx, socket, req)
}

// TestHookRegisterWaitsForApply registers a container over the daemon's real socket while the
// backend is held: no answer may come before the backend has applied the container's set.
// Then poststop unregisters it, and the backend loses the set before the answer.
func TestHookRegisterWaitsForApply(t *testing.T) {
	policies, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(policies, "web.yaml"), []byte(webPolicyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHookDaemon(t, policies, state)
	if fi, err := os.Stat(h.socket); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}

	h.backend.gate.Lock()
	answered := make(chan hookapi.Response, 1)
	go func() {
		resp, err := call(t, h.socket, hookapi.Request{Op: hookapi.OpRegister, Workload: webContainer("c1", 777), Pid: 1})
		if err != nil {
			t.Errorf("register: %v", err)
		}
		answered <- resp
	}()
	// Registered, the reconcile is stuck in Apply: the hook must still be waiting.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := h.d.Workloads().Get("c1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("c1 never registered\n%s", h.logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-answered:
		t.Fatalf("answer %+v before the backend applied the rules", r)
	case <-time.After(300 * time.Millisecond):
	}
	h.backend.gate.Unlock()
	var resp hookapi.Response
	select {
	case resp = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer after the backend applied\n%s", h.logs.String())
	}
	set := h.backend.applied("c1")
	if set == nil || set.Workload.CgroupID != 777 || set.Workload.Hostname != "node1" {
		t.Fatalf("backend set for c1 = %+v", set)
	}
	if !resp.OK || resp.Rules == 0 || resp.Rules != len(set.Rules) || !slices.ContainsFunc(resp.Policies, func(p string) bool { return strings.Contains(p, "web-secret") }) {
		t.Errorf("response = %+v, want the web-secret policy and its rules", resp)
	}
	if _, err := os.Stat(filepath.Join(state, "containers", "c1.json")); err != nil {
		t.Errorf("no record for restart: %v", err)
	}

	// Poststop.
	if _, err := call(t, h.socket, hookapi.Request{Op: hookapi.OpUnregister, ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if h.backend.applied("c1") != nil || h.d.Sets()["c1"] != nil {
		t.Error("c1 still applied after unregister was acknowledged")
	}
	if _, ok := h.d.Workloads().Get("c1"); ok {
		t.Error("c1 still registered")
	}
	if _, err := os.Stat(filepath.Join(state, "containers", "c1.json")); !os.IsNotExist(err) {
		t.Errorf("record left after unregister: %v", err)
	}
	// Unregistering twice (a runtime retrying poststop) is not an error.
	if _, err := call(t, h.socket, hookapi.Request{Op: hookapi.OpUnregister, ID: "c1"}); err != nil {
		t.Error(err)
	}
}

func TestHookRefusals(t *testing.T) {
	h := startHookDaemon(t, t.TempDir(), t.TempDir())
	for _, tc := range []struct {
		req  hookapi.Request
		want string
	}{
		{hookapi.Request{Op: hookapi.OpRegister, Workload: webContainer("c1", 0)}, "container c1: no cgroup id"},
		{hookapi.Request{Op: hookapi.OpRegister, Workload: workload.Host("node1", nil)}, `workload kind "host"`},
		{hookapi.Request{Op: hookapi.OpRegister, Workload: webContainer("../../etc/x", 5)}, "not usable as a file name"},
		{hookapi.Request{Op: hookapi.OpUnregister, ID: ".."}, "not usable as a file name"},
		{hookapi.Request{Op: "pause"}, `unknown op "pause"`},
	} {
		if _, err := call(t, h.socket, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: error = %v, want %q", tc.req.Op, tc.req.Workload, err, tc.want)
		}
	}
	if n := len(h.d.Workloads().List()); n != 1 {
		t.Errorf("%d workloads registered, want only the host", n)
	}
}

// TestHookRestore stops a daemon with two hook-registered containers, one whose process still
// runs in the recorded cgroup (this test process) and one whose process is gone, and checks
// that the restarted daemon enforces on the first from its first reconcile and drops the second.
func TestHookRestore(t *testing.T) {
	self, err := workload.ReadKernelIdentity("/proc", "/sys/fs/cgroup", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	policies, state := t.TempDir(), t.TempDir()
	h := startHookDaemon(t, policies, state)
	if _, err := call(t, h.socket, hookapi.Request{Op: hookapi.OpRegister, Workload: webContainer("alive", self.CgroupID), Pid: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	// A pid that cannot exist (above pid_max's ceiling).
	if _, err := call(t, h.socket, hookapi.Request{Op: hookapi.OpRegister, Workload: webContainer("gone", 4242), Pid: 1 << 23}); err != nil {
		t.Fatal(err)
	}
	h.stop()
	if _, err := os.Stat(h.socket); !os.IsNotExist(err) {
		t.Errorf("socket left after stop: %v", err)
	}

	h2 := startHookDaemon(t, policies, state)
	sets := h2.d.Sets()
	if s := sets["alive"]; s == nil || s.Workload.CgroupID != self.CgroupID {
		t.Errorf("first reconcile after restart: alive = %+v\n%s", s, h2.logs.String())
	}
	if sets["gone"] != nil {
		t.Error("a container whose process is gone was restored")
	}
	if _, err := os.Stat(filepath.Join(state, "containers", "gone.json")); !os.IsNotExist(err) {
		t.Errorf("record of the gone container kept: %v", err)
	}
}
