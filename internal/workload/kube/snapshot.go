package kube

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/google/renameio/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/policystore"
	"github.com/wardsec/ward/internal/workload"
)

// SnapshotFile is where, in the state directory, the daemon keeps the cluster's policies and
// namespace annotations as last seen.
const SnapshotFile = "kubernetes.json"

// A restarted daemon whose API server is slow or unreachable must not lift the cluster's rules
// from the node's running pods: until the informers have synced, the source serves the state of
// the snapshot, which the daemon writes after each round once synced. Objects the live lists no
// longer hold are dropped at sync.
type snapshot struct {
	Written    time.Time                    `json:"written"`
	Policies   []snapshotPolicy             `json:"policies"`
	Namespaces map[string]snapshotNamespace `json:"namespaces"`
	// Pods are this node's pods and Node this node, as served: they give the workloads their
	// labels (the runtime's registrations may not, or may not be kept).
	Pods []*corev1.Pod `json:"pods,omitempty"`
	Node *corev1.Node  `json:"node,omitempty"`
}

type snapshotPolicy struct {
	Kind   string          `json:"kind"`
	Object json.RawMessage `json:"object"`
}

type snapshotNamespace struct {
	File         policy.Action `json:"file,omitempty"`
	Network      policy.Action `json:"network,omitempty"`
	Capabilities policy.Action `json:"capabilities,omitempty"`
	Mode         workload.Mode `json:"mode,omitempty"`
	HasMode      bool          `json:"hasMode,omitempty"`
}

// LoadSnapshot fills the source with the snapshot at path, for the time until Run has synced.
// It returns when the snapshot was written; a missing file is not an error (zero time). Call it
// before Run.
func (k *Source) LoadSnapshot(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	policies := map[string]acceptedPolicy{}
	for i, sp := range s.Policies {
		gvr, ok := resourceOf(sp.Kind)
		if !ok {
			return time.Time{}, fmt.Errorf("%s: policies[%d]: unknown kind %q", path, i, sp.Kind)
		}
		var meta struct {
			Metadata struct{ Name, Namespace string } `json:"metadata"`
		}
		if err := json.Unmarshal(sp.Object, &meta); err != nil {
			return time.Time{}, fmt.Errorf("%s: policies[%d]: %w", path, i, err)
		}
		key := policyKey(sp.Kind, meta.Metadata.Namespace, meta.Metadata.Name)
		p, _, err := policy.ParseObject(key, sp.Object)
		if err != nil {
			// Accepted when it was written; a Ward that no longer accepts it says so and
			// enforces the others.
			k.log.Error("policy in the snapshot rejected", "policy", key, "error", err)
			continue
		}
		policies[key] = acceptedPolicy{Versioned: policystore.NewVersioned(&p, contentVersion(&p)),
			gvr: gvr, ns: meta.Metadata.Namespace, name: meta.Metadata.Name, raw: sp.Object}
	}
	namespaces := map[string]namespaceInfo{}
	for name, n := range s.Namespaces {
		namespaces[name] = namespaceInfo{postures: Postures{File: n.File, Network: n.Network, Capabilities: n.Capabilities},
			mode: n.Mode, hasMode: n.HasMode}
	}
	k.mu.Lock()
	if k.synced {
		k.mu.Unlock()
		return time.Time{}, fmt.Errorf("%s: a snapshot is for the time before sync", path)
	}
	k.policies, k.namespaces = policies, namespaces
	var pods []string
	for _, pod := range s.Pods {
		if pod == nil || pod.Spec.NodeName != k.node {
			continue
		}
		key := pod.Namespace + "/" + pod.Name
		k.podObjs[key] = pod
		pods = append(pods, key)
	}
	k.mu.Unlock()
	for _, key := range pods {
		k.syncPod(key)
	}
	if s.Node != nil {
		k.nodeChanged(s.Node)
	}
	return s.Written, nil
}

// SaveSnapshot writes the source's policies and namespaces to path, once Run has synced and
// when they changed since the last write.
func (k *Source) SaveSnapshot(path string) error {
	k.mu.Lock()
	if !k.synced || k.generation == k.savedGeneration {
		k.mu.Unlock()
		return nil
	}
	gen := k.generation
	s := snapshot{Written: time.Now().UTC(), Namespaces: map[string]snapshotNamespace{}}
	for _, key := range slices.Sorted(maps.Keys(k.policies)) {
		a := k.policies[key]
		s.Policies = append(s.Policies, snapshotPolicy{Kind: string(a.Policy.Kind), Object: a.raw})
	}
	for name, n := range k.namespaces {
		if n == (namespaceInfo{}) {
			continue
		}
		s.Namespaces[name] = snapshotNamespace{File: n.postures.File, Network: n.postures.Network,
			Capabilities: n.postures.Capabilities, Mode: n.mode, HasMode: n.hasMode}
	}
	for _, key := range slices.Sorted(maps.Keys(k.podObjs)) {
		// managedFields is most of a pod's bytes and nothing the workload view reads; the
		// informer's object is shared, so the copy is trimmed, not the original.
		pod := k.podObjs[key].DeepCopy()
		pod.ManagedFields = nil
		s.Pods = append(s.Pods, pod)
	}
	s.Node = k.nodeObj
	k.mu.Unlock()

	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	// Replaced atomically: a crash leaves the previous snapshot or the new one.
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	k.mu.Lock()
	if k.savedGeneration < gen {
		k.savedGeneration = gen
	}
	k.mu.Unlock()
	return nil
}

// dropUnseen removes, at sync, what the snapshot held and the live lists did not: objects
// deleted while no daemon watched. It returns the pods to sync again (outside k.mu, which
// callers hold).
func (k *Source) dropUnseen() (pods []string) {
	for key := range k.policies {
		if !k.seen[seenKey("policy", key)] {
			delete(k.policies, key)
		}
	}
	for name := range k.namespaces {
		if !k.seen[seenKey("namespace", name)] {
			delete(k.namespaces, name)
		}
	}
	for key := range k.podObjs {
		if !k.seen[seenKey("pod", key)] {
			delete(k.podObjs, key)
			pods = append(pods, key)
		}
	}
	k.seen = nil
	return pods
}

// seenKey names an object in Source.seen.
func seenKey(kind, key string) string { return kind + ":" + key }

// markSeen records that the live lists hold an object, until sync. Callers hold k.mu.
func (k *Source) markSeen(kind, key string) {
	if k.seen != nil {
		k.seen[seenKey(kind, key)] = true
	}
}

// resourceOf is the API resource of a policy kind.
func resourceOf(kind string) (schema.GroupVersionResource, bool) {
	for _, pr := range PolicyResources {
		if pr.Kind == kind {
			return pr.GVR, true
		}
	}
	return schema.GroupVersionResource{}, false
}
