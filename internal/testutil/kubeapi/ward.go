package kubeapi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// DaemonToken is the daemon's own token, bound to deploy/rbac.yaml's ClusterRole only, so tests
// that use it also prove that role is enough.
const DaemonToken = "ward-daemon-token"

// DeployDir is the repository's deploy/ directory, found from the test's working directory (its
// package directory) upwards.
func DeployDir() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "deploy")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "deploy")
		}
	}
}

// Main runs a kube test package: it starts an API server with Ward's CRDs and the daemon's role
// bound to DaemonToken, stores it in *srv, runs the tests, stops the server and exits.
func Main(m *testing.M, srv **Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s, err := Start(ctx, Options{ExtraTokens: []string{DaemonToken + ",ward-daemon,ward-daemon-uid"}})
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "FAIL: start kube-apiserver:", err)
		os.Exit(1)
	}
	*srv = s
	err = s.setupWard(ctx)
	cancel()
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: setup:", err)
	} else {
		code = m.Run()
	}
	s.Stop()
	os.Exit(code)
}

// setupWard installs the CRDs and binds deploy/rbac.yaml's ClusterRole to DaemonToken's user.
func (s *Server) setupWard(ctx context.Context) error {
	crds, _ := filepath.Glob(filepath.Join(DeployDir(), "crds", "*.yaml"))
	if err := s.InstallCRDs(ctx, crds...); err != nil {
		return err
	}
	objs, err := Documents(filepath.Join(DeployDir(), "rbac.yaml"))
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
	if err := s.Apply(ctx, false, role...); err != nil {
		return err
	}
	kc := kubernetes.NewForConfigOrDie(s.Config)
	_, err = kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ward-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role[0].GetName()},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "ward-daemon"}},
	}, metav1.CreateOptions{})
	return err
}

// WriteKubeconfig writes a kubeconfig for the server with DaemonToken.
func (s *Server) WriteKubeconfig(t testing.TB) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: ward, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: ward}}]
current-context: test
`, s.Config.Host, DaemonToken)
	if err := os.WriteFile(f, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Eventually polls cond until it holds or the deadline passes; informers are asynchronous, and
// a poll with a deadline says how long a change took instead of sleeping a fixed time.
func Eventually(t *testing.T, what string, cond func() error) time.Duration {
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

// Object reads one object from YAML text.
func Object(t *testing.T, yamlText string) *unstructured.Unstructured {
	t.Helper()
	f := filepath.Join(t.TempDir(), "o.yaml")
	if err := os.WriteFile(f, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := Documents(f)
	if err != nil || len(objs) != 1 {
		t.Fatalf("test object: %v (%d objects)", err, len(objs))
	}
	return objs[0]
}

// CreateRunningPod creates a pod on node and reports it Running with the given container
// statuses, as the kubelet would.
func CreateRunningPod(ctx context.Context, t *testing.T, kc kubernetes.Interface, ns, name, node string,
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

// PolicyStatus reads a policy object's status.status from the API server, or the error of the
// read.
func PolicyStatus(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) string {
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
