//go:build kube

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/kubeapi"
	"github.com/wardsec/ward/internal/workload"
)

// The daemon reaches the API server with its own token, bound to deploy/rbac.yaml's ClusterRole
// only, so these tests also prove that role is enough.
const daemonToken = "ward-daemon-token"

var srv *kubeapi.Server

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s, err := kubeapi.Start(ctx, kubeapi.Options{ExtraTokens: []string{daemonToken + ",ward-daemon,ward-daemon-uid"}})
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "FAIL: start kube-apiserver:", err)
		os.Exit(1)
	}
	srv = s
	err = setupKube(ctx)
	cancel()
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: setup:", err)
	} else {
		code = m.Run()
	}
	srv.Stop()
	os.Exit(code)
}

func setupKube(ctx context.Context) error {
	crds, _ := filepath.Glob("../../deploy/crds/*.yaml")
	if err := srv.InstallCRDs(ctx, crds...); err != nil {
		return err
	}
	objs, err := kubeapi.Documents("../../deploy/rbac.yaml")
	if err != nil {
		return err
	}
	var role []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			role = append(role, o)
		}
	}
	if len(role) != 1 {
		return fmt.Errorf("deploy/rbac.yaml: want one ClusterRole, got %d", len(role))
	}
	if err := srv.Apply(ctx, false, role...); err != nil {
		return err
	}
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	_, err = kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ward-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role[0].GetName()},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "ward-daemon"}},
	}, metav1.CreateOptions{})
	return err
}

// eventually polls cond until it holds or the deadline passes; informers are asynchronous, and
// a poll with a deadline says how long a change took instead of sleeping a fixed time.
func eventually(t *testing.T, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < 20*time.Second {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not true after 20s: %v", what, err)
	return 0
}

func obj(t *testing.T, yamlText string) *unstructured.Unstructured {
	t.Helper()
	f := filepath.Join(t.TempDir(), "o.yaml")
	if err := os.WriteFile(f, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := kubeapi.Documents(f)
	if err != nil || len(objs) != 1 {
		t.Fatalf("test object: %v (%d objects)", err, len(objs))
	}
	return objs[0]
}

// createRunningPod creates a pod on node and reports it Running with the given container
// statuses, as the kubelet would.
func createRunningPod(ctx context.Context, t *testing.T, kc kubernetes.Interface, ns, name, node string,
	labels map[string]string, containers []corev1.Container, statuses []corev1.ContainerStatus) {
	t.Helper()
	p, err := kc.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: containers},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = statuses
	if _, err := kc.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// policyStatus reads a policy object's status.status from the API server, or the error of the
// read.
func policyStatus(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) string {
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if ns != "" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	u, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	s, _, _ := unstructured.NestedString(u.Object, "status", "status")
	return s
}

func policyKeys(k *KubeSource) string {
	var keys []string
	for _, p := range k.Policies() {
		keys = append(keys, p.Key())
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

func TestKubeSource(t *testing.T) {
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
		createRunningPod(ctx, t, kc, "shop", name, node, labels,
			[]corev1.Container{{Name: "web", Image: "nginx:1.27"}, {Name: "sidecar", Image: "busybox:1"}},
			[]corev1.ContainerStatus{{Name: "web", ContainerID: "containerd://" + name + "-web-id", Image: "docker.io/library/nginx:1.27"}})
	}
	mkPod("web-1", "node1", map[string]string{"app": "web"})
	mkPod("elsewhere", "node2", map[string]string{"app": "web"})
	must(srv.Apply(ctx, false, obj(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: web-no-shell, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  process: {matchPaths: [{path: /bin/sh}]}
  action: block
`), obj(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: zone-a-shadow}
spec:
  nodeSelector: {matchLabels: {zone: a}}
  file: {matchPaths: [{path: /etc/shadow}]}
  action: Audit
`), obj(t, `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata: {name: bad-glob}
spec:
  file: {matchPatterns: [{pattern: "/etc/[a"}]}
`)))

	reg := workload.NewRegistry(nil)
	var changes atomic.Int64
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	k, err := NewKubeSource(srv.TokenConfig(daemonToken), "node1", reg, func() { changes.Add(1) }, log)
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
		gvr := policyResources[0].gvr
		for _, r := range policyResources {
			if r.gvr.Resource == res {
				gvr = r.gvr
			}
		}
		return policyStatus(ctx, dyn, gvr, ns, name)
	}
	eventually(t, "status of web-no-shell", func() error {
		if s := status("kubearmorpolicies", "shop", "web-no-shell"); s != StatusApplied {
			return fmt.Errorf("status %q", s)
		}
		return nil
	})
	eventually(t, "status of bad-glob", func() error {
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
		set, err := rules.Compile(k.Policies(), w, k.Postures(w.Namespace, rules.DefaultPostures()))
		must(err)
		return set
	}
	if set := compile("web-1-web-id"); len(set.Rules) == 0 || set.Postures.File != policy.ActionBlock {
		t.Errorf("web container: %d rules, file posture %s; want the KSP's rules and block", len(set.Rules), set.Postures.File)
	}
	if set := compile("host"); len(set.Rules) == 0 {
		t.Errorf("host: no rules; want zone-a-shadow's")
	}

	// Changes: fix the bad policy, relabel the pod, annotate the namespace, relabel the node,
	// delete a policy and the pod. Each must show up without polling the API server.
	u, err := dyn.Resource(policyResources[1].gvr).Get(ctx, "bad-glob", metav1.GetOptions{})
	must(err)
	must(unstructured.SetNestedSlice(u.Object, []any{map[string]any{"pattern": "/etc/*.conf"}}, "spec", "file", "matchPatterns"))
	_, err = dyn.Resource(policyResources[1].gvr).Update(ctx, u, metav1.UpdateOptions{})
	must(err)
	d := eventually(t, "fixed policy applied", func() error {
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
	eventually(t, "pod relabelled", func() error {
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
	eventually(t, "namespace audited", func() error {
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
	eventually(t, "node relabelled", func() error {
		if w, _ := reg.Get("host"); w.Labels["zone"] != "b" {
			return fmt.Errorf("labels %v", w.Labels)
		}
		return nil
	})
	if set := compile("host"); len(set.Rules) != 0 {
		t.Errorf("host in zone b still has %d rules of zone-a-shadow", len(set.Rules))
	}

	must(dyn.Resource(policyResources[0].gvr).Namespace("shop").Delete(ctx, "web-no-shell", metav1.DeleteOptions{}))
	eventually(t, "policy deleted", func() error {
		if strings.Contains(policyKeys(k), "web-no-shell") {
			return fmt.Errorf("policies %q", policyKeys(k))
		}
		return nil
	})
	// No kubelet runs here to finish a graceful deletion, so the pod goes at once, as it does
	// once a kubelet has stopped its containers.
	zero := int64(0)
	must(kc.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	eventually(t, "pod deleted", func() error {
		if got := ids(); got != "host:b:" {
			return fmt.Errorf("workloads %q", got)
		}
		return nil
	})
	t.Logf("%d change notifications", changes.Load())
	// Leave no cluster-scoped policy behind for the other tests of this package.
	must(dyn.Resource(policyResources[1].gvr).Delete(ctx, "bad-glob", metav1.DeleteOptions{}))
	must(dyn.Resource(policyResources[2].gvr).Delete(ctx, "zone-a-shadow", metav1.DeleteOptions{}))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestKubeconfig: outside a cluster the daemon reaches the API server through a kubeconfig file,
// here one written for the test server with the daemon's token.
func TestKubeconfig(t *testing.T) {
	f := writeKubeconfig(t)
	cfg, err := KubeRESTConfig(f)
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
	if _, err := KubeRESTConfig(""); err == nil && !InCluster() {
		t.Errorf("in-cluster config outside a pod: want an error")
	}
}

// TestDeployManifests: every manifest in deploy/ is accepted by the API server as kubectl apply
// --dry-run=server would send it (CRDs are installed already, so they are checked for creation
// by the setup instead).
func TestDeployManifests(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/*.yaml")
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		o, err := kubeapi.Documents(f)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	if len(objs) < 6 {
		t.Fatalf("found %d objects in deploy/*.yaml", len(objs))
	}
	ctx := context.Background()
	// The namespace must exist for a dry run of what goes in it.
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if err := srv.Apply(ctx, false, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		if err := srv.Apply(ctx, true, o); err != nil {
			t.Errorf("dry run: %v", err)
		}
	}
	t.Logf("%d objects accepted", len(objs))
}
