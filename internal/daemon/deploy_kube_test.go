//go:build kube

package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/wardsec/ward/internal/testutil/kubeapi"
)

// TestKubectlDryRun: what the install and uninstall instructions of docs/kubernetes.md tell users
// to run, `kubectl apply -k deploy/` and `kubectl apply -f deploy/uninstall/`, with
// --dry-run=server against the test API server, so the API server's admission and validation
// (strict field validation, as kubectl sends it) see exactly those objects. Where kubectl is not
// installed the same objects go through client-go's server-side dry run instead, and the test
// says so; it never passes without checking them.
func TestKubectlDryRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A dry run of namespaced objects needs their namespace to exist; a dry run never creates it.
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubearmor"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Logf("kubectl not found (%v): client-go server-side dry run of the same objects instead", err)
		objs := kustomizationObjects(t)
		more, err := kubeapi.Documents("../../deploy/uninstall/daemonset.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Apply(ctx, true, append(objs, more...)...); err != nil {
			t.Fatalf("dry run: %v", err)
		}
		return
	}
	cfg := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, srv.Config.Host, kubeapi.AdminToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"apply", "--dry-run=server", "-k", "../../deploy"},
		{"apply", "--dry-run=server", "--server-side", "-k", "../../deploy"},
		{"apply", "--dry-run=server", "-f", "../../deploy/uninstall/"},
	} {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", cfg}, args...)...)
		out, err := cmd.CombinedOutput()
		text := string(out)
		if err != nil {
			t.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, text)
			continue
		}
		// Every object is named in kubectl's answer, and as a dry run.
		n := strings.Count(text, "(server dry run)")
		if n == 0 || strings.Contains(text, "error") {
			t.Errorf("kubectl %s:\n%s", strings.Join(args, " "), text)
		}
		t.Logf("kubectl %s: %d objects accepted", strings.Join(args, " "), n)
	}
}

// kustomizationObjects reads the objects of deploy/kustomization.yaml's resources.
func kustomizationObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile("../../deploy/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "- "); ok {
			files = append(files, filepath.Join("../../deploy", strings.TrimSpace(f)))
		}
	}
	objs, err := kubeapi.Documents(files...)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) < 9 {
		t.Fatalf("deploy/kustomization.yaml: %d objects", len(objs))
	}
	return objs
}

// TestDeployManifests: every manifest in deploy/ is accepted by the API server as kubectl apply
// --dry-run=server would send it (CRDs are installed already, so they are checked for creation
// by the setup instead).
func TestDeployManifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(kubeapi.DeployDir(), "*.yaml"))
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
