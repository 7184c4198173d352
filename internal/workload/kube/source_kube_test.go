//go:build kube

package kube

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/kubeapi"
	"github.com/wardsec/ward/internal/workload"
)

var srv *kubeapi.Server

func TestMain(m *testing.M) { kubeapi.Main(m, &srv) }

func policyKeys(k *Source) string {
	var keys []string
	for _, p := range k.Policies() {
		keys = append(keys, p.Key())
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

func TestSource(t *testing.T) {
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

	// The cluster before the daemon starts: its first view must already be complete.
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "shop", Annotations: map[string]string{"kubearmor-file-posture": "block"}}}, metav1.CreateOptions{})
	must(err)
	_, err = kc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "node1", Labels: map[string]string{"kubernetes.io/hostname": "node1", "zone": "a"}}}, metav1.CreateOptions{})
	must(err)
	mkPod := func(name, node string, labels map[string]string) {
		t.Helper()
		kubeapi.CreateRunningPod(ctx, t, kc, "shop", name, node, labels,
			[]corev1.Container{{Name: "web", Image: "nginx:1.27"}, {Name: "sidecar", Image: "busybox:1"}},
			[]corev1.ContainerStatus{{Name: "web", ContainerID: "containerd://" + name + "-web-id", Image: "docker.io/library/nginx:1.27"}})
	}
	mkPod("web-1", "node1", map[string]string{"app": "web"})
	mkPod("elsewhere", "node2", map[string]string{"app": "web"})
	must(srv.Apply(ctx, false, kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-no-shell, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  process: {matchPaths: [{path: /bin/sh}]}
  action: block
`), kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: zone-a-shadow}
spec:
  nodeSelector: {matchLabels: {zone: a}}
  file: {matchPaths: [{path: /etc/shadow}]}
  action: Audit
`), kubeapi.Object(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata: {name: bad-glob}
spec:
  file: {matchPatterns: [{pattern: "/etc/[a"}]}
`)))

	reg := workload.NewRegistry(nil)
	var changes atomic.Int64
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	k, err := NewSource(srv.TokenConfig(kubeapi.DaemonToken), "node1", reg, func() { changes.Add(1) }, log)
	must(err)
	synced := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx, func() { close(synced) }) }()
	select {
	case <-synced:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("caches not synced after 30s")
	}

	// Right after sync: both valid policies, this node's pod only, the host with node labels.
	if got, want := policyKeys(k), "KubeArmorHostPolicy/zone-a-shadow KubeArmorPolicy/shop/web-no-shell"; got != want {
		t.Errorf("policies after sync: %q, want %q", got, want)
	}
	ids := func() string {
		var out []string
		for _, w := range reg.List() {
			out = append(out, fmt.Sprintf("%s:%s:%s", w.ID(), w.Labels["app"]+w.Labels["zone"], w.Mode))
		}
		return strings.Join(out, " ")
	}
	if got, want := ids(), "host:a: shop/web-1/sidecar:web: web-1-web-id:web:"; got != want {
		t.Errorf("workloads after sync: %q, want %q", got, want)
	}

	// Status written back: Applied, or Ward's precise error (this one passes the CRD).
	status := func(res, ns, name string) string {
		gvr := PolicyResources[0].GVR
		for _, r := range PolicyResources {
			if r.GVR.Resource == res {
				gvr = r.GVR
			}
		}
		return kubeapi.PolicyStatus(ctx, dyn, gvr, ns, name)
	}
	kubeapi.Eventually(t, "status of web-no-shell", func() error {
		if s := status("kubearmorpolicies", "shop", "web-no-shell"); s != StatusApplied {
			return fmt.Errorf("status %q", s)
		}
		return nil
	})
	kubeapi.Eventually(t, "status of bad-glob", func() error {
		if s := status("kubearmorclusterpolicies", "", "bad-glob"); !strings.Contains(s, `spec.file.matchPatterns[0].pattern: "/etc/[a" is not a valid pattern`) {
			return fmt.Errorf("status %q", s)
		}
		return nil
	})

	// The compiled rules: the KSP covers the pod's containers, with the namespace's block posture.
	compile := func(id string) *rules.Set {
		t.Helper()
		w, ok := reg.Get(id)
		if !ok {
			t.Fatalf("no workload %s", id)
		}
		set, err := rules.Compile(k.Policies(), w, rules.DefaultPostures())
		must(err)
		return set
	}
	if set := compile("web-1-web-id"); len(set.Rules) == 0 {
		t.Errorf("web container: no rules; want the KSP's")
	}
	if p := k.Postures("shop"); p != (Postures{File: policy.ActionBlock}) {
		t.Errorf("namespace shop postures %+v, want the file posture block only", p)
	}
	if set := compile("host"); len(set.Rules) == 0 {
		t.Errorf("host: no rules; want zone-a-shadow's")
	}

	// Changes: fix the bad policy, relabel the pod, annotate the namespace, relabel the node,
	// delete a policy and the pod. Each must show up without polling the API server.
	u, err := dyn.Resource(PolicyResources[1].GVR).Get(ctx, "bad-glob", metav1.GetOptions{})
	must(err)
	must(unstructured.SetNestedSlice(u.Object, []any{map[string]any{"pattern": "/etc/*.conf"}}, "spec", "file", "matchPatterns"))
	_, err = dyn.Resource(PolicyResources[1].GVR).Update(ctx, u, metav1.UpdateOptions{})
	must(err)
	d := kubeapi.Eventually(t, "fixed policy applied", func() error {
		if !strings.Contains(policyKeys(k), "KubeArmorClusterPolicy/bad-glob") {
			return fmt.Errorf("policies %q", policyKeys(k))
		}
		if s := status("kubearmorclusterpolicies", "", "bad-glob"); s != StatusApplied {
			return fmt.Errorf("status %q", s)
		}
		return nil
	})
	t.Logf("policy update to applied status: %v", d)

	p, err := kc.CoreV1().Pods("shop").Get(ctx, "web-1", metav1.GetOptions{})
	must(err)
	p.Labels = map[string]string{"app": "api"}
	_, err = kc.CoreV1().Pods("shop").Update(ctx, p, metav1.UpdateOptions{})
	must(err)
	kubeapi.Eventually(t, "pod relabelled", func() error {
		if w, _ := reg.Get("web-1-web-id"); w.Labels["app"] != "api" {
			return fmt.Errorf("labels %v", w.Labels)
		}
		return nil
	})
	for _, r := range compile("web-1-web-id").Rules {
		if r.PolicyName == "web-no-shell" {
			t.Errorf("relabelled pod still has a rule of web-no-shell: %+v", r)
		}
	}

	ns, err := kc.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	must(err)
	ns.Annotations["kubearmor-policy"] = "audited"
	_, err = kc.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	must(err)
	kubeapi.Eventually(t, "namespace audited", func() error {
		if w, _ := reg.Get("web-1-web-id"); w.Mode != workload.ModeAudited {
			return fmt.Errorf("mode %q", w.Mode)
		}
		return nil
	})

	n, err := kc.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
	must(err)
	n.Labels["zone"] = "b"
	_, err = kc.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	must(err)
	kubeapi.Eventually(t, "node relabelled", func() error {
		if w, _ := reg.Get("host"); w.Labels["zone"] != "b" {
			return fmt.Errorf("labels %v", w.Labels)
		}
		return nil
	})
	if set := compile("host"); len(set.Rules) != 0 {
		t.Errorf("host in zone b still has %d rules of zone-a-shadow", len(set.Rules))
	}

	must(dyn.Resource(PolicyResources[0].GVR).Namespace("shop").Delete(ctx, "web-no-shell", metav1.DeleteOptions{}))
	kubeapi.Eventually(t, "policy deleted", func() error {
		if strings.Contains(policyKeys(k), "web-no-shell") {
			return fmt.Errorf("policies %q", policyKeys(k))
		}
		return nil
	})
	// No kubelet runs here to finish a graceful deletion, so the pod goes at once, as it does
	// once a kubelet has stopped its containers.
	zero := int64(0)
	must(kc.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	kubeapi.Eventually(t, "pod deleted", func() error {
		if got := ids(); got != "host:b:" {
			return fmt.Errorf("workloads %q", got)
		}
		return nil
	})
	t.Logf("%d change notifications", changes.Load())
	// Leave no cluster-scoped policy behind for the other tests of this package.
	must(dyn.Resource(PolicyResources[1].GVR).Delete(ctx, "bad-glob", metav1.DeleteOptions{}))
	must(dyn.Resource(PolicyResources[2].GVR).Delete(ctx, "zone-a-shadow", metav1.DeleteOptions{}))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestKubeconfig: outside a cluster the daemon reaches the API server through a kubeconfig file,
// here one written for the test server with the daemon's token.
func TestKubeconfig(t *testing.T) {
	f := srv.WriteKubeconfig(t)
	cfg, err := RESTConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(cfg)
	if _, err := c.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("list pods with the daemon's kubeconfig: %v", err)
	}
	// The role reads; it must not write pods.
	_, err = c.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nope"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("create pod with the daemon's role: want forbidden, got %v", err)
	}
	if _, err := RESTConfig(""); err == nil && !InCluster() {
		t.Errorf("in-cluster config outside a pod: want an error")
	}
}

// TestSyncedAfterHandlers: Run reports synced only once every policy of the initial list went
// through its handler. The handlers here are slow (PolicyStatus runs inside them); waiting on
// the informers' stores alone reported synced with most policies still queued, and a daemon
// restarted on that signal applied rule sets without them.
func TestSyncedAfterHandlers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	const ns, n = "slow-handlers", 12
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for i := range n {
		objs = append(objs, kubeapi.Object(t, fmt.Sprintf(`
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: p%d, namespace: %s}
spec:
  selector: {matchLabels: {app: web}}
  file: {matchPaths: [{path: /secret%d}]}
  action: Block
`, i, ns, i)))
	}
	if err := srv.Apply(ctx, false, objs...); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	k, err := NewSource(srv.TokenConfig(kubeapi.DaemonToken), "node1", workload.NewRegistry(nil), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	k.PolicyStatus = func(p *policy.Policy, old string) string {
		if p.Namespace == ns {
			time.Sleep(50 * time.Millisecond)
		}
		return StatusApplied
	}
	seen := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		done <- k.Run(ctx, func() {
			count := 0
			for _, p := range k.Policies() {
				if p.Namespace == ns {
					count++
				}
			}
			seen <- count
		})
	}()
	select {
	case got := <-seen:
		if got != n {
			t.Errorf("policies of namespace %s when Run reported synced: %d, want all %d", ns, got, n)
		}
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("caches not synced after 60s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestSnapshotUntilSync: a source started with the snapshot of an earlier one serves the
// snapshot's policies and postures until its own lists arrive, then exactly the live ones
// (a policy deleted meanwhile goes, one created meanwhile comes). Before sync it writes no
// snapshot, so a half-filled view never overwrites a whole one.
func TestSnapshotUntilSync(t *testing.T) {
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	dyn := dynamic.NewForConfigOrDie(srv.Config)
	const ns = "snapshot"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Annotations: map[string]string{"kubearmor-file-posture": "block"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pol := func(name string) *unstructured.Unstructured {
		return kubeapi.Object(t, fmt.Sprintf(`
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: %s, namespace: %s}
spec:
  selector: {matchLabels: {app: web}}
  file: {matchPaths: [{path: /%s}]}
  action: Block
`, name, ns, name))
	}
	if err := srv.Apply(ctx, false, pol("kept"), pol("deleted")); err != nil {
		t.Fatal(err)
	}
	kubeapi.CreateRunningPod(ctx, t, kc, ns, "gone-pod", "node1", map[string]string{"app": "web"},
		[]corev1.Container{{Name: "web", Image: "nginx:1.27"}},
		[]corev1.ContainerStatus{{Name: "web", ContainerID: "containerd://snapshot-gone-id"}})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hasPod := func(reg *workload.Registry) bool {
		for _, w := range reg.List() {
			if w.Pod == "gone-pod" {
				return w.Labels["app"] == "web"
			}
		}
		return false
	}
	inNS := func(k *Source) string {
		var keys []string
		for _, p := range k.Policies() {
			if p.Namespace == ns {
				keys = append(keys, p.Key())
			}
		}
		sort.Strings(keys)
		return strings.Join(keys, " ")
	}
	run := func(k *Source) (stop func()) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		synced := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- k.Run(rctx, func() { close(synced) }) }()
		select {
		case <-synced:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("caches not synced after 60s")
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	path := t.TempDir() + "/kubernetes.json"

	first, err := NewSource(srv.TokenConfig(kubeapi.DaemonToken), "node1", workload.NewRegistry(nil), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("snapshot written before sync: stat says %v", err)
	}
	stop := run(first)
	if err := first.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	stop()

	// While no daemon watches: one policy goes, one comes.
	gvr := PolicyResources[0].GVR
	if err := dyn.Resource(gvr).Namespace(ns).Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(ctx, false, pol("created")); err != nil {
		t.Fatal(err)
	}
	if err := kc.CoreV1().Pods(ns).Delete(ctx, "gone-pod", *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}

	reg := workload.NewRegistry(nil)
	second, err := NewSource(srv.TokenConfig(kubeapi.DaemonToken), "node1", reg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	written, err := second.LoadSnapshot(path)
	if err != nil || written.IsZero() {
		t.Fatalf("LoadSnapshot: written %v, error %v", written, err)
	}
	if got, want := inNS(second), "KubeArmorPolicy/snapshot/deleted KubeArmorPolicy/snapshot/kept"; got != want {
		t.Errorf("policies from the snapshot: %q, want %q", got, want)
	}
	if got := second.Postures(ns).File; got != policy.ActionBlock {
		t.Errorf("file posture of %s from the snapshot: %q, want %q", ns, got, policy.ActionBlock)
	}
	if !hasPod(reg) {
		t.Errorf("workloads from the snapshot: no pod gone-pod with app=web in %v", reg.List())
	}
	stop = run(second)
	if hasPod(reg) {
		t.Errorf("workloads after sync: pod gone-pod, deleted before the restart, is still there")
	}
	defer stop()
	if got, want := inNS(second), "KubeArmorPolicy/snapshot/created KubeArmorPolicy/snapshot/kept"; got != want {
		t.Errorf("policies after sync: %q, want %q", got, want)
	}
	if got := second.Postures(ns).File; got != policy.ActionBlock {
		t.Errorf("file posture of %s after sync: %q, want %q", ns, got, policy.ActionBlock)
	}
	if _, err := second.LoadSnapshot(t.TempDir() + "/absent.json"); err != nil {
		t.Errorf("a missing snapshot: %v, want no error", err)
	}
}
