//go:build kube

package v1_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	v1 "github.com/wardsec/ward/api/v1"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/testutil/kubeapi"
)

var (
	srv *kubeapi.Server
	dyn dynamic.Interface
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	start := time.Now()
	s, err := kubeapi.Start(ctx, kubeapi.Options{})
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "FAIL: start kube-apiserver:", err)
		os.Exit(1)
	}
	srv = s
	fmt.Fprintf(os.Stderr, "kube-apiserver ready in %v\n", time.Since(start).Round(time.Millisecond))
	err = setup(ctx)
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

// setup installs deploy/crds and makes the namespaces the examples use.
func setup(ctx context.Context) error {
	files, err := filepath.Glob("../../deploy/crds/*.yaml")
	if err != nil || len(files) != 3 {
		return fmt.Errorf("want 3 CRD files in deploy/crds, got %d (%v)", len(files), err)
	}
	if err := srv.InstallCRDs(ctx, files...); err != nil {
		return err
	}
	kc, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		return err
	}
	for _, ns := range []string{"web", "shop", "agree"} {
		_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	dyn, err = dynamic.NewForConfig(srv.Config)
	return err
}

var resources = map[string]schema.GroupVersionResource{
	v1.KindPolicy:        {Group: v1.Group, Version: v1.Version, Resource: "kubearmorpolicies"},
	v1.KindClusterPolicy: {Group: v1.Group, Version: v1.Version, Resource: "kubearmorclusterpolicies"},
	v1.KindHostPolicy:    {Group: v1.Group, Version: v1.Version, Resource: "kubearmorhostpolicies"},
}

// create sends obj to the API server with strict field validation, as `kubectl apply
// --validate=strict` does, so that an unknown field is an error there as it is in Ward.
func create(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	gvr, ok := resources[obj.GetKind()]
	if !ok {
		return nil, fmt.Errorf("kind %q has no CRD", obj.GetKind())
	}
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var r dynamic.ResourceInterface = dyn.Resource(gvr)
	if obj.GetNamespace() != "" {
		r = dyn.Resource(gvr).Namespace(obj.GetNamespace())
	}
	return r.Create(ctx, obj, opts)
}

// documents splits a YAML file into JSON objects.
func documents(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out [][]byte
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if v == nil {
			continue
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, j)
	}
	return out
}

// TestValidPoliciesAccepted creates every example and the valid test policies of internal/policy
// for real; the API server must store each, and what it hands back (with uid, resourceVersion,
// managedFields and so on) must still be a policy Ward reads identically: that is the object the
// daemon's informers will see.
func TestValidPoliciesAccepted(t *testing.T) {
	var files []string
	for _, g := range []string{"../../examples/host/*.yaml", "../../examples/containers/*.yaml", "../../internal/policy/testdata/valid-all.yaml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 4 {
		t.Fatalf("found only %d policy files: %v", len(files), files)
	}
	ctx := context.Background()
	n := 0
	for _, f := range files {
		for i, doc := range documents(t, f) {
			name := fmt.Sprintf("%s#%d", filepath.Base(f), i+1)
			want, _, err := policy.ParseObject(name, doc)
			if err != nil {
				t.Errorf("%s: Ward rejects its own valid policy: %v", name, err)
				continue
			}
			var obj unstructured.Unstructured
			if err := obj.UnmarshalJSON(doc); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := create(ctx, &obj, false)
			if err != nil {
				t.Errorf("%s: API server rejects a policy Ward accepts: %v", name, err)
				continue
			}
			n++
			back, err := got.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := policy.ParseObject(name, back)
			if err != nil {
				t.Errorf("%s: Ward rejects the object as the API server returns it: %v\n%s", name, err, back)
				continue
			}
			want.Source, again.Source = policy.Source{}, policy.Source{}
			wj, _ := json.Marshal(want)
			aj, _ := json.Marshal(again)
			if !bytes.Equal(wj, aj) {
				t.Errorf("%s: the stored object means something else to Ward:\nbefore %s\nafter  %s", name, wj, aj)
			}
		}
	}
	t.Logf("%d policies from %d files created", n, len(files))
}

// TestInvalidRejected: the API server refuses what Ward refuses, with the field named.
func TestInvalidRejected(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, spec, field string
	}{
		{"bad-path", `{"selector":{"matchLabels":{"app":"x"}},"file":{"matchPaths":[{"path":"etc/shadow"}]}}`, "spec.file.matchPaths[0].path"},
		{"bad-severity", `{"selector":{"matchLabels":{"app":"x"}},"severity":11,"file":{"matchPaths":[{"path":"/etc/shadow"}]}}`, "spec.severity"},
		{"bad-action", `{"selector":{"matchLabels":{"app":"x"}},"action":"deny","file":{"matchPaths":[{"path":"/etc/shadow"}]}}`, "spec.action"},
		{"unknown-field", `{"selector":{"matchLabels":{"app":"x"}},"process":{"matchPath":[{"path":"/bin/sh"}]}}`, "spec.process.matchPath"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := []byte(fmt.Sprintf(`{"apiVersion":"security.kubearmor.com/v1","kind":"KubeArmorPolicy","metadata":{"name":%q,"namespace":"agree"},"spec":%s}`, c.name, c.spec))
			if _, _, err := policy.ParseObject(c.name, doc); err == nil {
				t.Errorf("Ward accepts it")
			}
			var obj unstructured.Unstructured
			if err := obj.UnmarshalJSON(doc); err != nil {
				t.Fatal(err)
			}
			_, err := create(ctx, &obj, false)
			switch {
			case err == nil:
				t.Fatalf("API server accepts it")
			case !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err):
				t.Fatalf("API server: want Invalid or BadRequest, got %v", err)
			case !strings.Contains(err.Error(), c.field):
				t.Errorf("API server's error does not name %s: %v", c.field, err)
			}
			t.Logf("rejected: %v", err)
		})
	}
}
