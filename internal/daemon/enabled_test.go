package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/policystore"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/kube"
)

// A policy in the policy directory shadows the cluster's policy of the same key; the cluster's
// other policies are enforced beside the directory's. The kube source is filled from its snapshot
// (no API server); the store from a directory.
func TestLocalPolicyShadowsClusters(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "pa.yaml", containerPolicyFile("pa", "a", "/local"))
	store := policystore.New(dir, t.TempDir())
	if res := store.ReloadDir(); len(res.Rejected) > 0 {
		t.Fatal(res.Rejected)
	}

	var objects []map[string]any
	for _, p := range []struct{ name, path string }{{"pa", "/cluster"}, {"pb", "/b"}} {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(containerPolicyFile(p.name, "a", p.path)), &o); err != nil {
			t.Fatal(err)
		}
		objects = append(objects, map[string]any{"kind": "KubeArmorPolicy", "object": o})
	}
	snap, err := json.Marshal(map[string]any{"policies": objects})
	if err != nil {
		t.Fatal(err)
	}
	snapFile := filepath.Join(t.TempDir(), kube.SnapshotFile)
	if err := os.WriteFile(snapFile, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := kube.NewSource(&rest.Config{Host: "http://127.0.0.1:1"}, "node1", workload.NewRegistry(nil), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.LoadSnapshot(snapFile); err != nil {
		t.Fatal(err)
	}
	if n := len(k.Versioned()); n != 2 {
		t.Fatalf("the snapshot gave the cluster %d policies, want 2", n)
	}

	cfg, err := buildConfig(defaults(map[string]string{"policies": dir}))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: cfg, store: store, kube: k}
	enabled, keys, versions := d.enabledPolicies()
	if want := []string{"KubeArmorPolicy/shop/pa", "KubeArmorPolicy/shop/pb"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if len(enabled) != 2 || len(versions) != 2 {
		t.Fatalf("%d policies and %d versions for 2 keys", len(enabled), len(versions))
	}
	for i, p := range enabled {
		if p.Key() != keys[i] {
			t.Errorf("policy %d is %s, its key says %s", i, p.Key(), keys[i])
		}
	}
	if got := pathsOf(enabled[0]); got != "[/local]" {
		t.Errorf("pa's paths are %s: the cluster's pa, not the directory's, is enforced", got)
	}
}

func pathsOf(p *policy.Policy) string {
	var paths []string
	for _, r := range p.Rules {
		paths = append(paths, r.Value)
	}
	return fmt.Sprint(paths)
}
