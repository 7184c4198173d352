//go:build kube

package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/kubeapi"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/hookapi"
	"github.com/wardsec/ward/internal/workload/kube"
)

// kubeDaemon is `ward run` in Kubernetes mode against the test API server, with lsm=none so it
// runs on the host: what it compiles is read from d.Sets().
type kubeDaemon struct {
	d      *Daemon
	logs   *syncWriter
	cancel context.CancelFunc
	done   chan error
}

func startKubeDaemon(t testing.TB, node string) *kubeDaemon {
	t.Helper()
	return startKubeDaemonWith(t, node, t.TempDir(), srv.WriteKubeconfig(t))
}

// startKubeDaemonWith starts the daemon with the given state directory and kubeconfig.
func startKubeDaemonWith(t testing.TB, node, state, kubeconfig string) *kubeDaemon {
	t.Helper()
	cfg, err := buildConfig(defaults(map[string]string{
		"policies": t.TempDir(), "state": state, "gRPC": "", "health": "", "logPath": "none",
		"host": node, "lsm": "none", "k8s": "true", "kubeconfig": kubeconfig,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.KubernetesMode() {
		t.Fatal("k8s=true: KubernetesMode() is false")
	}
	kd := &kubeDaemon{logs: &syncWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	kd.cancel = cancel
	ready := make(chan *Daemon, 1)
	go func() {
		kd.done <- Run(ctx, Options{
			Config: cfg, Logger: slog.New(slog.NewTextHandler(kd.logs, nil)),
			LSMPath: filepath.Join(t.TempDir(), "no-lsm-file"),
			Ready:   func(d *Daemon) { ready <- d },
		})
	}()
	select {
	case kd.d = <-ready:
	case err := <-kd.done:
		t.Fatalf("daemon stopped: %v\n%s", err, kd.logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("daemon not ready after 2 minutes\n%s", kd.logs.String())
	}
	if kd.d.kube == nil {
		t.Fatal("daemon ready without its Kubernetes source")
	}
	t.Cleanup(kd.stop)
	return kd
}

func (kd *kubeDaemon) stop() {
	if kd.cancel == nil {
		return
	}
	kd.cancel()
	kd.cancel = nil
	select {
	case err := <-kd.done:
		if err != nil {
			panic(fmt.Sprintf("Run returned %v", err))
		}
	case <-time.After(20 * time.Second):
		panic("daemon did not stop within 20s")
	}
}

// setSummary is what a test compares of a rule set: covering policies, rules, postures, mode
// and the labels it was compiled for.
func setSummary(s *rules.Set) string {
	if s == nil {
		return "<none>"
	}
	var vals []string
	for _, r := range s.Rules {
		vals = append(vals, r.PolicyName+":"+r.Value+":"+string(r.Action))
	}
	return fmt.Sprintf("policies=%v rules=%v postures=%s/%s/%s mode=%q labels=%v", s.Policies, vals,
		s.Postures.File, s.Postures.Network, s.Postures.Capabilities, s.Workload.Mode, s.Workload.Labels)
}

// TestKubeModeDaemon runs the daemon itself in Kubernetes mode and follows the rule sets it
// compiles as the cluster changes: the first reconcile must already hold the whole cluster's
// state, and every later change to policies, pod labels, namespace annotations and node labels
// must reach d.Sets() without a restart.
func TestKubeModeDaemon(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	dyn := dynamic.NewForConfigOrDie(srv.Config)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const node = "km-node"
	ksp, csp, hsp := kube.PolicyResources[0].GVR, kube.PolicyResources[1].GVR, kube.PolicyResources[2].GVR

	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "km-shop", Annotations: map[string]string{"kubearmor-file-posture": "block", "kubearmor-network-posture": "block"}}}, metav1.CreateOptions{})
	must(err)
	_, err = kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "km-db", Annotations: map[string]string{"kubearmor-policy": "audited"}}}, metav1.CreateOptions{})
	must(err)
	_, err = kc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: node, Labels: map[string]string{"kubernetes.io/hostname": node, "zone": "a"}}}, metav1.CreateOptions{})
	must(err)
	mkPod := func(ns, name, nodeName string, labels map[string]string, ids map[string]string) {
		t.Helper()
		var statuses []corev1.ContainerStatus
		for c, id := range ids {
			statuses = append(statuses, corev1.ContainerStatus{Name: c, ContainerID: "containerd://" + id})
		}
		kubeapi.CreateRunningPod(ctx, t, kc, ns, name, nodeName, labels,
			[]corev1.Container{{Name: "main", Image: "nginx:1.27"}, {Name: "sidecar", Image: "busybox:1"}}, statuses)
	}
	mkPod("km-shop", "web", node, map[string]string{"app": "web"}, map[string]string{"main": "km-web-main"})
	mkPod("km-db", "db", node, map[string]string{"app": "db"}, nil)
	mkPod("km-shop", "other-node", "km-node-2", map[string]string{"app": "web"}, map[string]string{"main": "km-other-main"})
	must(srv.Apply(ctx, false, kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-no-shell, namespace: km-shop}
spec:
  selector: {matchLabels: {app: web}}
  process: {matchPaths: [{path: /bin/sh}]}
  action: Block
`), kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata: {name: km-db-shadow}
spec:
  selector:
    matchExpressions: [{key: namespace, operator: In, values: [km-db]}]
  file: {matchPaths: [{path: /etc/shadow}]}
  action: Block
`), kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: km-zone-a}
spec:
  nodeSelector: {matchLabels: {zone: a}}
  file: {matchPaths: [{path: /etc/hosts}]}
  action: Audit
`)))

	kd := startKubeDaemon(t, node)
	d := kd.d
	const webID, sidecarID, dbID, dbSidecar = "km-web-main", "km-shop/web/sidecar", "km-db/db/main", "km-db/db/sidecar"

	// The first reconcile already has the whole cluster: Ready fires after it, and startKube
	// waits for the informers' caches before it.
	want := map[string]string{
		webID:     "policies=[KubeArmorPolicy/km-shop/web-no-shell] rules=[web-no-shell:/bin/sh:Block] postures=Block/Block/Audit mode=\"\" labels=map[app:web]",
		sidecarID: "policies=[KubeArmorPolicy/km-shop/web-no-shell] rules=[web-no-shell:/bin/sh:Block] postures=Block/Block/Audit mode=\"\" labels=map[app:web]",
		dbID:      "policies=[KubeArmorClusterPolicy/km-db-shadow] rules=[km-db-shadow:/etc/shadow:Block] postures=Audit/Audit/Audit mode=\"audited\" labels=map[app:db]",
		dbSidecar: "policies=[KubeArmorClusterPolicy/km-db-shadow] rules=[km-db-shadow:/etc/shadow:Block] postures=Audit/Audit/Audit mode=\"audited\" labels=map[app:db]",
		"host":    "policies=[KubeArmorHostPolicy/km-zone-a] rules=[km-zone-a:/etc/hosts:Audit] postures=Audit/Audit/Audit mode=\"\" labels=map[kubernetes.io/hostname:km-node zone:a]",
	}
	sets := d.Sets()
	for id, w := range want {
		if got := setSummary(sets[id]); got != w {
			t.Errorf("first reconcile, %s:\n got %s\nwant %s", id, got, w)
		}
	}
	if len(sets) != len(want) {
		var ids []string
		for id := range sets {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		t.Errorf("first reconcile: workloads %v, want this node's four containers and the host", ids)
	}

	// waitSet polls the daemon's rule sets until workload id's summary satisfies ok.
	waitSet := func(what, id string, ok func(string) bool) {
		t.Helper()
		d := kubeapi.Eventually(t, what, func() error {
			if got := setSummary(d.Sets()[id]); !ok(got) {
				return fmt.Errorf("%s: %s", id, got)
			}
			return nil
		})
		t.Logf("%s: %v", what, d.Round(time.Millisecond))
	}
	has := func(sub string) func(string) bool { return func(s string) bool { return strings.Contains(s, sub) } }
	hasNot := func(sub string) func(string) bool { return func(s string) bool { return !strings.Contains(s, sub) } }

	waitStatus := func(gvr schema.GroupVersionResource, ns, name, want string) {
		t.Helper()
		kubeapi.Eventually(t, "status of "+name, func() error {
			if s := kubeapi.PolicyStatus(ctx, dyn, gvr, ns, name); !strings.Contains(s, want) {
				return fmt.Errorf("status %q, want %q", s, want)
			}
			return nil
		})
	}
	// lsm=none: the status says the Block is reported, not enforced, on this node.
	waitStatus(ksp, "km-shop", "web-no-shell", kube.StatusApplied+"; not enforced by eBPF Monitor: spec")
	waitStatus(csp, "", "km-db-shadow", kube.StatusApplied)
	waitStatus(hsp, "", "km-zone-a", kube.StatusApplied)

	// A new policy reaches the sets it selects, and only those.
	must(srv.Apply(ctx, false, kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-sidecar-net, namespace: km-shop}
spec:
  selector: {matchLabels: {app: web, kubearmor.io/container.name: "[sidecar]"}}
  network: {matchProtocols: [{protocol: udp}]}
  action: Block
`)))
	waitSet("new KSP on the sidecar", sidecarID, has("web-sidecar-net"))
	if got := setSummary(d.Sets()[webID]); strings.Contains(got, "web-sidecar-net") {
		t.Errorf("container-name selector: main container got the sidecar's policy: %s", got)
	}
	waitStatus(ksp, "km-shop", "web-sidecar-net", kube.StatusApplied)

	// An invalid object changes nothing. A new one: rejected with Ward's precise error, in no
	// set. An edit of an accepted one: the accepted version stays in force.
	before := map[string]string{}
	for id, s := range d.Sets() {
		before[id] = setSummary(s)
	}
	must(srv.Apply(ctx, false, kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: bad-glob, namespace: km-shop}
spec:
  selector: {matchLabels: {app: web}}
  file: {matchPatterns: [{pattern: "/etc/[a"}]}
  action: Block
`)))
	const globErr = `spec.file.matchPatterns[0].pattern: "/etc/[a" is not a valid pattern`
	waitStatus(ksp, "km-shop", "bad-glob", globErr)
	u, err := dyn.Resource(ksp).Namespace("km-shop").Get(ctx, "web-no-shell", metav1.GetOptions{})
	must(err)
	must(unstructured.SetNestedSlice(u.Object, []any{map[string]any{"pattern": "/bin/[s"}}, "spec", "process", "matchPatterns"))
	_, err = dyn.Resource(ksp).Namespace("km-shop").Update(ctx, u, metav1.UpdateOptions{})
	must(err)
	waitStatus(ksp, "km-shop", "web-no-shell", `spec.process.matchPatterns[0].pattern: "/bin/[s" is not a valid pattern`)
	// A valid change after both invalid ones: once it shows, the daemon has reconciled past them.
	p, err := kc.CoreV1().Pods("km-db").Get(ctx, "db", metav1.GetOptions{})
	must(err)
	p.Labels["barrier"] = "1"
	_, err = kc.CoreV1().Pods("km-db").Update(ctx, p, metav1.UpdateOptions{})
	must(err)
	waitSet("barrier label", dbID, has("barrier:1"))
	for id, s := range d.Sets() {
		if strings.HasPrefix(id, "km-db/db/") {
			continue // the barrier's pod
		}
		if got := setSummary(s); got != before[id] {
			t.Errorf("invalid policy objects changed %s:\n got %s\nwant %s", id, got, before[id])
		}
	}
	// Fixing the edit applies the fixed version.
	u, err = dyn.Resource(ksp).Namespace("km-shop").Get(ctx, "web-no-shell", metav1.GetOptions{})
	must(err)
	unstructured.RemoveNestedField(u.Object, "spec", "process", "matchPatterns")
	must(unstructured.SetNestedSlice(u.Object, []any{map[string]any{"path": "/bin/bash"}}, "spec", "process", "matchPaths"))
	_, err = dyn.Resource(ksp).Namespace("km-shop").Update(ctx, u, metav1.UpdateOptions{})
	must(err)
	waitSet("fixed policy", webID, has("web-no-shell:/bin/bash:Block"))
	waitStatus(ksp, "km-shop", "web-no-shell", kube.StatusApplied)
	must(dyn.Resource(ksp).Namespace("km-shop").Delete(ctx, "bad-glob", metav1.DeleteOptions{}))

	// Pod labels: relabelled away from app=web, the pod loses the KSPs; back, it regains them.
	p, err = kc.CoreV1().Pods("km-shop").Get(ctx, "web", metav1.GetOptions{})
	must(err)
	p.Labels = map[string]string{"app": "api"}
	p, err = kc.CoreV1().Pods("km-shop").Update(ctx, p, metav1.UpdateOptions{})
	must(err)
	waitSet("pod relabelled", webID, func(s string) bool { return strings.Contains(s, "policies=[] ") && strings.Contains(s, "app:api") })
	waitSet("sidecar relabelled", sidecarID, has("policies=[] "))
	p.Labels = map[string]string{"app": "web"}
	_, err = kc.CoreV1().Pods("km-shop").Update(ctx, p, metav1.UpdateOptions{})
	must(err)
	waitSet("pod labelled back", sidecarID, has("web-sidecar-net"))

	// A container status that names the container id re-keys its workload.
	p, err = kc.CoreV1().Pods("km-shop").Get(ctx, "web", metav1.GetOptions{})
	must(err)
	p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "sidecar", ContainerID: "containerd://km-web-sidecar"})
	_, err = kc.CoreV1().Pods("km-shop").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	must(err)
	waitSet("sidecar id known", "km-web-sidecar", has("web-sidecar-net"))
	if s := d.Sets()[sidecarID]; s != nil {
		t.Errorf("the sidecar's placeholder workload stayed after its id became known: %s", setSummary(s))
	}

	// Namespace annotations: postures and mode.
	ns, err := kc.CoreV1().Namespaces().Get(ctx, "km-shop", metav1.GetOptions{})
	must(err)
	ns.Annotations["kubearmor-file-posture"] = "audit"
	ns.Annotations["kubearmor-capabilities-posture"] = "block"
	_, err = kc.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	must(err)
	waitSet("namespace postures", webID, has("postures=Audit/Block/Block"))
	ns, err = kc.CoreV1().Namespaces().Get(ctx, "km-db", metav1.GetOptions{})
	must(err)
	delete(ns.Annotations, "kubearmor-policy")
	_, err = kc.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	must(err)
	waitSet("namespace mode enabled", dbID, has(`mode=""`))
	// A pod annotation overrides its namespace's mode.
	p, err = kc.CoreV1().Pods("km-db").Get(ctx, "db", metav1.GetOptions{})
	must(err)
	p.Annotations = map[string]string{"kubearmor-policy": "disabled"}
	_, err = kc.CoreV1().Pods("km-db").Update(ctx, p, metav1.UpdateOptions{})
	must(err)
	waitSet("pod disabled", dbID, has(`policies=[] rules=[] postures=Audit/Audit/Audit mode="disabled"`))

	// Node labels drive host policies.
	n, err := kc.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	must(err)
	n.Labels["zone"] = "b"
	_, err = kc.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	must(err)
	waitSet("node relabelled", "host", func(s string) bool { return strings.Contains(s, "policies=[] ") && strings.Contains(s, "zone:b") })

	// Deletions: a policy, then a pod, whose workloads and rule sets go.
	must(dyn.Resource(ksp).Namespace("km-shop").Delete(ctx, "web-sidecar-net", metav1.DeleteOptions{}))
	waitSet("KSP deleted", "km-web-sidecar", hasNot("web-sidecar-net"))
	zero := int64(0)
	must(kc.CoreV1().Pods("km-shop").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	kubeapi.Eventually(t, "pod's workloads gone", func() error {
		for _, id := range []string{webID, "km-web-sidecar"} {
			if s := d.Sets()[id]; s != nil {
				return fmt.Errorf("%s still has a rule set", id)
			}
		}
		return nil
	})
	if _, ok := d.Workloads().Get(webID); ok {
		t.Errorf("%s still registered after its pod was deleted", webID)
	}

	// Leave no cluster-scoped policy behind for the other tests of this package.
	must(dyn.Resource(csp).Delete(ctx, "km-db-shadow", metav1.DeleteOptions{}))
	must(dyn.Resource(hsp).Delete(ctx, "km-zone-a", metav1.DeleteOptions{}))
	waitSet("CSP deleted", dbID, hasNot("km-db-shadow"))
	must(dyn.Resource(ksp).Namespace("km-shop").Delete(ctx, "web-no-shell", metav1.DeleteOptions{}))
	if t.Failed() {
		t.Logf("daemon log:\n%s", kd.logs.String())
	}
	kd.stop()
}

// TestKubeModeHookMerge: the OCI hook's registration (kernel identity) and the pod informer's
// view (labels) become one workload in the daemon, in either order. The hook's answer comes once
// the rules are in force, so when the pod was seen first the answer already names the policy
// that selects it by label: rules before the container's first instruction.
func TestKubeModeHookMerge(t *testing.T) {
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	const node = "hm-node"
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "hm"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(ctx, false, kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-no-shell, namespace: hm}
spec:
  selector: {matchLabels: {app: web}}
  process: {matchPaths: [{path: /bin/sh}]}
  action: Block
`)); err != nil {
		t.Fatal(err)
	}
	mkPod := func(name string) *corev1.Pod {
		t.Helper()
		p, err := kc.CoreV1().Pods("hm").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "nginx:1.27"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	kd := startKubeDaemon(t, node)
	socket := filepath.Join(kd.d.cfg.State, hookapi.SocketName)
	register := func(id string, p *corev1.Pod, podName string, cgroup uint64) hookapi.Response {
		t.Helper()
		w := workload.Workload{Kind: workload.KindContainer, ContainerID: id, Namespace: "hm", Pod: podName,
			Container: "main", Labels: map[string]string{}, CgroupID: cgroup, PidNS: 1, MntNS: 2}
		if p != nil {
			w.PodUID = string(p.UID)
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		resp, err := hookapi.Call(cctx, socket, hookapi.Request{Op: hookapi.OpRegister, Workload: w, Pid: 1})
		if err != nil || !resp.OK {
			t.Fatalf("register %s: %+v %v", id, resp, err)
		}
		return resp
	}

	// Pod first: the registration's answer already carries the KSP.
	p := mkPod("first")
	kubeapi.Eventually(t, "pod seen", func() error {
		if kd.d.Sets()["hm/first/main"] == nil {
			return fmt.Errorf("no placeholder workload yet")
		}
		return nil
	})
	resp := register("c-first", p, "first", 1001)
	if !slices.Contains(resp.Policies, "KubeArmorPolicy/hm/web-no-shell") || resp.Rules != 1 {
		t.Errorf("pod first: the hook's answer = %+v, want web-no-shell's rule in force", resp)
	}
	if s := kd.d.Sets()["hm/first/main"]; s != nil {
		t.Errorf("the placeholder stayed beside the registered container: %s", setSummary(s))
	}
	if s := kd.d.Sets()["c-first"]; s == nil || s.Workload.CgroupID != 1001 || s.Workload.Labels["app"] != "web" {
		t.Errorf("merged set: %s", setSummary(s))
	}

	// Hook first: enforced at once on what the runtime said (no labels, so no KSP), and the
	// pod's labels follow when the informer delivers the pod.
	resp = register("c-second", nil, "second", 1002)
	if len(resp.Policies) != 0 {
		t.Errorf("hook first: policies %v before the pod's labels are known", resp.Policies)
	}
	mkPod("second")
	kubeapi.Eventually(t, "labels merged", func() error {
		s := kd.d.Sets()["c-second"]
		if s == nil || s.Workload.CgroupID != 1002 || !slices.Contains(s.Policies, "KubeArmorPolicy/hm/web-no-shell") {
			return fmt.Errorf("c-second: %s", setSummary(s))
		}
		return nil
	})
	if s := kd.d.Sets()["hm/second/main"]; s != nil {
		t.Errorf("a placeholder beside the registered container: %s", setSummary(s))
	}

	// The pod goes: its registered container and its rules go.
	zero := int64(0)
	if err := kc.CoreV1().Pods("hm").Delete(ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	kubeapi.Eventually(t, "pod deleted", func() error {
		if s := kd.d.Sets()["c-first"]; s != nil {
			return fmt.Errorf("c-first still has a set")
		}
		return nil
	})
	// The container goes (poststop): so do its rules, while its pod is still there.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if resp, err := hookapi.Call(cctx, socket, hookapi.Request{Op: hookapi.OpUnregister, ID: "c-second"}); err != nil || !resp.OK {
		t.Fatalf("unregister: %+v %v", resp, err)
	}
	if s := kd.d.Sets()["c-second"]; s != nil {
		t.Errorf("c-second still has a set after its poststop")
	}
}

// TestKubeModeRestartWithoutAPIServer: a daemon restarted while the API server does not answer
// keeps enforcing the cluster's policies as last seen (the snapshot in its state directory),
// for the node's pods (labels included) and namespace postures, instead of lifting them until
// the server is back.
func TestKubeModeRestartWithoutAPIServer(t *testing.T) {
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	const node, ns = "snap-node", "snap-shop"
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Annotations: map[string]string{"kubearmor-file-posture": "block"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeapi.CreateRunningPod(ctx, t, kc, ns, "web", node, map[string]string{"app": "web"},
		[]corev1.Container{{Name: "main", Image: "nginx:1.27"}},
		[]corev1.ContainerStatus{{Name: "main", ContainerID: "containerd://snap-web-main"}})
	if err := srv.Apply(ctx, false, kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-secret, namespace: snap-shop}
spec:
  selector: {matchLabels: {app: web}}
  file: {matchPaths: [{path: /secret}]}
  action: Block
`)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		dyn := dynamic.NewForConfigOrDie(srv.Config)
		_ = dyn.Resource(kube.PolicyResources[0].GVR).Namespace(ns).Delete(ctx, "web-secret", metav1.DeleteOptions{})
	}()
	const want = "policies=[KubeArmorPolicy/snap-shop/web-secret] rules=[web-secret:/secret:Block] postures=Block/Audit/Audit mode=\"\" labels=map[app:web]"

	state := t.TempDir()
	first := startKubeDaemonWith(t, node, state, srv.WriteKubeconfig(t))
	if got := setSummary(first.d.Sets()["snap-web-main"]); got != want {
		t.Fatalf("first daemon:\n got %s\nwant %s", got, want)
	}
	kubeapi.Eventually(t, "snapshot written", func() error {
		_, err := os.Stat(filepath.Join(state, kube.SnapshotFile))
		return err
	})
	first.stop()

	// Nothing listens on port 1: every request of the restarted daemon fails.
	dead := filepath.Join(t.TempDir(), "dead.kubeconfig")
	if err := os.WriteFile(dead, []byte(`apiVersion: v1
kind: Config
clusters: [{name: dead, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: ward, user: {token: nothing}}]
contexts: [{name: dead, context: {cluster: dead, user: ward}}]
current-context: dead
`), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func(w time.Duration) { kubeSyncWait = w }(kubeSyncWait)
	kubeSyncWait = 2 * time.Second
	second := startKubeDaemonWith(t, node, state, dead)
	if got := setSummary(second.d.Sets()["snap-web-main"]); got != want {
		t.Errorf("restarted without the API server:\n got %s\nwant %s\nlog:\n%s", got, want, second.logs.String())
	}
	second.stop()
}
