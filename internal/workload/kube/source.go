// Package kube is Kubernetes mode's workload and policy source: client-go informers on the
// policy CRDs, this node's pods, the namespaces and this node, feeding the workload registry
// and the policies the daemon's reconcile loop reads. It writes each policy's status back.
package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	v1 "github.com/wardsec/ward/api/v1"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/policystore"
	"github.com/wardsec/ward/internal/workload"
)

// Annotations KubeArmor users put on namespaces (postures, mode) and pods (mode).
const (
	annotationPolicy              = "kubearmor-policy"
	annotationFilePosture         = "kubearmor-file-posture"
	annotationNetworkPosture      = "kubearmor-network-posture"
	annotationCapabilitiesPosture = "kubearmor-capabilities-posture"
)

// StatusApplied is what status.status says of a policy Ward accepted; otherwise it holds
// Ward's validation error.
const StatusApplied = "Applied"

// PolicyResources are the three policy kinds Ward enforces, as the API server serves them.
var PolicyResources = []struct {
	Kind string
	GVR  schema.GroupVersionResource
}{
	{v1.KindPolicy, v1.SchemeGroupVersion.WithResource("kubearmorpolicies")},
	{v1.KindClusterPolicy, v1.SchemeGroupVersion.WithResource("kubearmorclusterpolicies")},
	{v1.KindHostPolicy, v1.SchemeGroupVersion.WithResource("kubearmorhostpolicies")},
}

// Source is Kubernetes mode's view of the cluster: the policy objects, the pods on this
// node, the namespaces and this node. Informers only record what changed and call onChange;
// the daemon's reconcile loop reads Policies and the registry, so a burst of events costs one
// reconcile (level-triggered, as everywhere else in the daemon).
type Source struct {
	dyn      dynamic.Interface
	kc       kubernetes.Interface
	node     string
	reg      *workload.Registry
	onChange func()
	log      *slog.Logger
	// PolicyStatus, when set, is status.status of an accepted policy, given the status the
	// object holds now (the daemon says there what its enforcer does not enforce); nil means
	// StatusApplied. Set it before Run.
	PolicyStatus func(p *policy.Policy, old string) string

	// Status write-back runs on its own workers: a patch is a round trip to the API server, and
	// the informer's handlers, which deliver every other change, must not wait for 1,000 of
	// them when the initial list arrives. Keyed by object, so a burst of edits writes once.
	statusQ workqueue.TypedRateLimitingInterface[string]

	mu         sync.Mutex
	statuses   map[string]statusWrite    // pending, by policy key
	policies   map[string]acceptedPolicy // by policy key
	namespaces map[string]namespaceInfo
	podObjs    map[string]*corev1.Pod
	// synced is set once the initial lists went through the handlers. Until then the policies
	// and namespaces may come from a snapshot (LoadSnapshot), and seen* record what the live
	// lists confirmed, so that sync drops the rest.
	synced  bool
	seen    map[string]bool // seenKey(kind, key), nil once synced
	nodeObj *corev1.Node
	// generation counts changes of policies and namespaces; savedGeneration is the one the
	// last snapshot holds.
	generation, savedGeneration uint64
}

// acceptedPolicy is an accepted policy as last seen: the version in force, and the object its
// status goes to (for RefreshStatus).
type acceptedPolicy struct {
	policystore.Versioned
	gvr    schema.GroupVersionResource
	ns     string
	name   string
	status string // status.status as last seen
	raw    []byte // the object as served, for the snapshot
}

type statusWrite struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
	status    string
}

// statusWorkers write policy statuses concurrently; a handful keeps the API server's load
// modest while hiding each patch's latency.
const statusWorkers = 4

type namespaceInfo struct {
	postures Postures
	mode     workload.Mode
	hasMode  bool
}

// NewSource connects to the API server as cfg says. node is this node's name (the
// DaemonSet passes spec.nodeName); reg receives one workload per container of this node's pods
// and the host workload with the node's labels.
func NewSource(cfg *rest.Config, node string, reg *workload.Registry, onChange func(), log *slog.Logger) (*Source, error) {
	if node == "" {
		return nil, fmt.Errorf("kubernetes mode needs the node name (set NODE_NAME from spec.nodeName)")
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if onChange == nil {
		onChange = func() {}
	}
	return &Source{
		dyn: dyn, kc: kc, node: node, reg: reg, onChange: onChange, log: log,
		policies: map[string]acceptedPolicy{}, namespaces: map[string]namespaceInfo{},
		seen:    map[string]bool{},
		podObjs: map[string]*corev1.Pod{}, statuses: map[string]statusWrite{},
		statusQ: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}, nil
}

// Run starts the informers, waits until their caches are filled (so that the first reconcile
// sees the whole cluster, not a prefix of it) and blocks until ctx is done.
func (k *Source) Run(ctx context.Context, synced func()) error {
	var workers sync.WaitGroup
	defer func() {
		k.statusQ.ShutDown()
		workers.Wait()
	}()
	for range statusWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for k.writeNextStatus(ctx) {
			}
		}()
	}
	dynF := dynamicinformer.NewDynamicSharedInformerFactory(k.dyn, 0)
	var syncs []cache.InformerSynced
	for _, r := range PolicyResources {
		inf := dynF.ForResource(r.GVR).Informer()
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { k.policyChanged(r.Kind, r.GVR, o) },
			UpdateFunc: func(_, o any) { k.policyChanged(r.Kind, r.GVR, o) },
			DeleteFunc: func(o any) { k.policyDeleted(r.Kind, o) },
		})
		if err != nil {
			return err
		}
		syncs = append(syncs, reg.HasSynced)
	}
	// Pods of this node only: a node agent has no business with the rest of the cluster, and
	// at 110 pods per node the watch stays small whatever the cluster size.
	podF := informers.NewSharedInformerFactoryWithOptions(k.kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.node).String()
	}))
	podReg, err := podF.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.podChanged(o) },
		UpdateFunc: func(_, o any) { k.podChanged(o) },
		DeleteFunc: func(o any) { k.podDeleted(o) },
	})
	if err != nil {
		return err
	}
	nodeF := informers.NewSharedInformerFactoryWithOptions(k.kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.node).String()
	}))
	nodeReg, err := nodeF.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.nodeChanged(o) },
		UpdateFunc: func(_, o any) { k.nodeChanged(o) },
	})
	if err != nil {
		return err
	}
	nsF := informers.NewSharedInformerFactory(k.kc, 0)
	nsReg, err := nsF.Core().V1().Namespaces().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.namespaceChanged(o) },
		UpdateFunc: func(_, o any) { k.namespaceChanged(o) },
		DeleteFunc: func(o any) { k.namespaceDeleted(o) },
	})
	if err != nil {
		return err
	}
	// Synced means every object of the initial lists went through the handlers above, not only
	// into the informers' stores: the stores fill first and the handlers run later, on their own
	// goroutines. Waiting on the stores let the first reconcile after a restart miss policies
	// still queued for their handler, and replace a running pod's profile with a weaker one.
	syncs = append(syncs, podReg.HasSynced, nodeReg.HasSynced, nsReg.HasSynced)
	for _, f := range []interface{ Start(<-chan struct{}) }{dynF, podF, nodeF, nsF} {
		f.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return fmt.Errorf("kubernetes caches not synced: %w", ctx.Err())
	}
	k.mu.Lock()
	gone := k.dropUnseen()
	k.synced = true
	k.generation++
	k.mu.Unlock()
	for _, key := range gone {
		k.syncPod(key)
	}
	k.onChange()
	if synced != nil {
		synced()
	}
	<-ctx.Done()
	dynF.Shutdown()
	podF.Shutdown()
	nodeF.Shutdown()
	nsF.Shutdown()
	return nil
}

// Policies returns the accepted policy objects, sorted by key.
func (k *Source) Policies() []policy.Policy {
	vs := k.Versioned()
	out := make([]policy.Policy, 0, len(vs))
	for _, v := range vs {
		out = append(out, *v.Policy)
	}
	return out
}

// Versioned returns the accepted policy objects with their content versions, sorted by key. The
// version is computed once per change of the object, not on every reconcile: at 1,000 policies
// hashing them all again was a quarter of the daemon's CPU.
func (k *Source) Versioned() []policystore.Versioned {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]policystore.Versioned, 0, len(k.policies))
	for _, key := range slices.Sorted(maps.Keys(k.policies)) {
		out = append(out, k.policies[key].Versioned)
	}
	return out
}

// Postures are a namespace's posture annotations; an empty field means the annotation is absent
// and the daemon's default applies.
type Postures struct {
	File, Network, Capabilities policy.Action
}

// Postures returns the namespace's posture annotations.
func (k *Source) Postures(namespace string) Postures {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.namespaces[namespace].postures
}

// policyKey is the key of the policy object kind/ns/name, spelt as policy.Policy.Key spells the
// policy parsed from it (a cluster-scoped host policy has no namespace part), so that the
// daemon's key of a policy finds its object.
func policyKey(kind, ns, name string) string {
	p := policy.Policy{Kind: policy.Kind(kind), Namespace: ns, Name: name}
	return p.Key()
}

func (k *Source) policyChanged(kind string, gvr schema.GroupVersionResource, o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := policyKey(kind, u.GetNamespace(), u.GetName())
	k.mu.Lock()
	k.markSeen("policy", key)
	k.mu.Unlock()
	// What Ward validates is the object as stored, status and server fields included; they are
	// part of the object shape Ward's decoder knows.
	data, err := u.MarshalJSON()
	status := StatusApplied
	var p policy.Policy
	if err == nil {
		p, _, err = policy.ParseObject(key, data)
	}
	if err != nil {
		// An invalid object changes nothing: the version accepted before (if any) stays in force,
		// as for policy files and the PolicyService, and the status says exactly what is wrong.
		// Dropping the old version instead would let a typo in an edit lift every rule of the
		// policy. Only a daemon that starts while the object is invalid has no version to keep.
		status = err.Error()
		k.log.Error("policy rejected, previous version (if any) stays in force", "policy", key, "error", status)
	} else {
		if k.PolicyStatus != nil {
			status = k.PolicyStatus(&p, oldStatus(u))
		}
		v := policystore.NewVersioned(&p, contentVersion(&p))
		k.mu.Lock()
		k.policies[key] = acceptedPolicy{Versioned: v, gvr: gvr, ns: u.GetNamespace(), name: u.GetName(), status: oldStatus(u), raw: data}
		k.generation++
		k.mu.Unlock()
		k.onChange()
	}
	if old := oldStatus(u); old != status {
		k.mu.Lock()
		k.statuses[key] = statusWrite{gvr: gvr, namespace: u.GetNamespace(), name: u.GetName(), status: status}
		k.mu.Unlock()
		k.statusQ.Add(key)
	}
}

// RefreshStatus computes the status of an accepted policy again, by its policy.Policy.Key, and
// writes it when it differs from the object's: what the enforcer does not enforce of a policy
// can change without the policy changing (a pod it selects runs without Ward's AppArmor
// profile). Policies not accepted (or gone) are left alone.
func (k *Source) RefreshStatus(policyKey string) {
	if k.PolicyStatus == nil {
		return
	}
	k.mu.Lock()
	a, ok := k.policies[policyKey]
	k.mu.Unlock()
	if !ok {
		return
	}
	status := k.PolicyStatus(a.Policy, a.status)
	if status == a.status {
		return
	}
	k.mu.Lock()
	k.statuses[policyKey] = statusWrite{gvr: a.gvr, namespace: a.ns, name: a.name, status: status}
	k.mu.Unlock()
	k.statusQ.Add(policyKey)
}

func oldStatus(u *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(u.Object, "status", "status")
	return s
}

// writeNextStatus patches status.status of the next queued policy; false once the queue is shut
// down. Every node's daemon computes the same text from the same object (nodes with different
// enforcers keep each other's part of it: PolicyStatus), so concurrent writers agree; a patch (not an update) keeps it free of conflicts. A failed write is retried with
// backoff, unless the object is gone.
func (k *Source) writeNextStatus(ctx context.Context) bool {
	key, quit := k.statusQ.Get()
	if quit {
		return false
	}
	defer k.statusQ.Done(key)
	k.mu.Lock()
	w, ok := k.statuses[key]
	delete(k.statuses, key)
	k.mu.Unlock()
	if !ok {
		k.statusQ.Forget(key)
		return true
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]string{"status": w.status}})
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var r dynamic.ResourceInterface = k.dyn.Resource(w.gvr)
	if w.namespace != "" {
		r = k.dyn.Resource(w.gvr).Namespace(w.namespace)
	}
	_, err := r.Patch(pctx, w.name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	switch {
	case err == nil, apierrors.IsNotFound(err), ctx.Err() != nil:
		k.statusQ.Forget(key)
	default:
		k.log.Warn("write policy status, will retry", "policy", key, "error", err.Error())
		k.mu.Lock()
		if _, newer := k.statuses[key]; !newer {
			k.statuses[key] = w
		}
		k.mu.Unlock()
		k.statusQ.AddRateLimited(key)
	}
	return true
}

func (k *Source) policyDeleted(kind string, o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	k.mu.Lock()
	delete(k.policies, policyKey(kind, u.GetNamespace(), u.GetName()))
	k.generation++
	k.mu.Unlock()
	k.onChange()
}

// podView is the registry's view of a pod: its labels, mode and containers. The registry merges
// it with the OCI hook's registration of each container (kernel identity); a container the hook
// has not registered is enforced from this view alone, keyed by its id, or by
// namespace/pod/container until the kubelet reports one.
func (k *Source) podView(pod *corev1.Pod, nsMode workload.Mode, nsHasMode bool) workload.Pod {
	mode := workload.ModeEnabled
	if nsHasMode {
		mode = nsMode
	}
	if a, ok := pod.Annotations[annotationPolicy]; ok {
		if m, known := workload.ParseMode(a); known {
			mode = m
		} else {
			k.log.Warn("unknown kubearmor-policy annotation, enforcing", "pod", pod.Namespace+"/"+pod.Name, "value", a)
		}
	}
	ids := map[string]string{}
	images := map[string]string{}
	for _, st := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if _, id, ok := strings.Cut(st.ContainerID, "://"); ok {
			ids[st.Name] = id
		}
		images[st.Name] = st.Image
	}
	v := workload.Pod{
		Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), Hostname: k.node,
		Labels: pod.Labels, Mode: mode, // SetPod keeps its own copy
		Owner: podOwner(pod),
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		img := images[c.Name]
		if img == "" {
			img = c.Image
		}
		v.Containers = append(v.Containers, workload.PodContainer{Name: c.Name, ID: ids[c.Name], Image: img,
			AppArmorProfile: localhostProfile(pod, &c)})
	}
	return v
}

// podOwner is the object alerts name as the pod's owner, as KubeArmor reports it: the
// controller that owns the pod, except that a ReplicaSet a Deployment made (its name is the
// Deployment's plus the pod-template-hash) is reported as that Deployment; a pod without a
// controller owns itself.
func podOwner(pod *corev1.Pod) *workload.Owner {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return &workload.Owner{Kind: "Pod", Name: pod.Name, Namespace: pod.Namespace}
	}
	o := &workload.Owner{Kind: ref.Kind, Name: ref.Name, Namespace: pod.Namespace}
	if hash := pod.Labels["pod-template-hash"]; ref.Kind == "ReplicaSet" && hash != "" {
		if name, ok := strings.CutSuffix(ref.Name, "-"+hash); ok {
			o.Kind, o.Name = "Deployment", name
		}
	}
	return o
}

func copyLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

func (k *Source) podChanged(o any) {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	k.podObjs[pod.Namespace+"/"+pod.Name] = pod
	k.markSeen("pod", pod.Namespace+"/"+pod.Name)
	k.generation++
	k.mu.Unlock()
	k.syncPod(pod.Namespace + "/" + pod.Name)
}

// syncPod hands the registry what the pod is now. A pod that has finished is gone as far as
// enforcement goes: its containers have exited.
func (k *Source) syncPod(key string) {
	k.mu.Lock()
	pod := k.podObjs[key]
	var v workload.Pod
	live := pod != nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
	if live {
		ns := k.namespaces[pod.Namespace]
		v = k.podView(pod, ns.mode, ns.hasMode)
	}
	k.mu.Unlock()
	if live {
		k.reg.SetPod(v)
		return
	}
	ns, name, _ := strings.Cut(key, "/")
	k.reg.RemovePod(ns, name)
}

func (k *Source) podDeleted(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	k.mu.Lock()
	delete(k.podObjs, key)
	k.generation++
	k.mu.Unlock()
	k.syncPod(key)
}

func (k *Source) nodeChanged(o any) {
	n, ok := o.(*corev1.Node)
	if !ok || n.Name != k.node {
		return
	}
	k.mu.Lock()
	if k.nodeObj != n {
		k.nodeObj = n
		k.generation++
	}
	k.mu.Unlock()
	h := workload.Host(n.Name, copyLabels(n.Labels))
	if a, ok := n.Annotations[annotationPolicy]; ok {
		h.Mode, _ = workload.ParseMode(a)
	}
	k.reg.Upsert(h)
}

// parsePosture reads a namespace's posture annotation; anything else leaves the node's default
// ("").
func parsePosture(v string) policy.Action {
	a, _ := policy.ParsePosture(v)
	return a
}

func (k *Source) namespaceChanged(o any) {
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return
	}
	info := namespaceInfo{postures: Postures{
		File:         parsePosture(ns.Annotations[annotationFilePosture]),
		Network:      parsePosture(ns.Annotations[annotationNetworkPosture]),
		Capabilities: parsePosture(ns.Annotations[annotationCapabilitiesPosture]),
	}}
	if a, ok := ns.Annotations[annotationPolicy]; ok {
		info.mode, _ = workload.ParseMode(a)
		info.hasMode = true
	}
	k.mu.Lock()
	k.markSeen("namespace", ns.Name)
	changed := k.namespaces[ns.Name] != info
	k.namespaces[ns.Name] = info
	if changed {
		k.generation++
	}
	var pods []string
	if changed {
		for key := range k.podObjs {
			if strings.HasPrefix(key, ns.Name+"/") {
				pods = append(pods, key)
			}
		}
	}
	k.mu.Unlock()
	// A namespace's mode is part of each of its pods' workloads.
	for _, key := range pods {
		k.syncPod(key)
	}
	if changed {
		k.onChange()
	}
}

func (k *Source) namespaceDeleted(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	if ns, ok := o.(*corev1.Namespace); ok {
		k.mu.Lock()
		delete(k.namespaces, ns.Name)
		k.generation++
		k.mu.Unlock()
		k.onChange()
	}
}

var unversioned atomic.Uint64

// contentVersion versions a policy object, which comes without a version of Ward's, by its content.
func contentVersion(p *policy.Policy) string {
	b, err := json.Marshal(p)
	if err != nil {
		// A version never seen before: the policy counts as changed every round, never missed.
		return "unversioned:" + strconv.FormatUint(unversioned.Add(1), 10)
	}
	sum := sha256.Sum256(b)
	return "kube:" + hex.EncodeToString(sum[:12])
}

// localhostProfile is the Localhost AppArmor profile the pod's spec names for a container (its
// securityContext, else the pod's, else the deprecated annotation) when it is one of Ward's,
// else "": the AppArmor backend loads the container's rules under that name.
func localhostProfile(pod *corev1.Pod, c *corev1.Container) string {
	var name string
	switch {
	case c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil:
		if p := c.SecurityContext.AppArmorProfile; p.Type == corev1.AppArmorProfileTypeLocalhost && p.LocalhostProfile != nil {
			name = *p.LocalhostProfile
		}
	case pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.AppArmorProfile != nil:
		if p := pod.Spec.SecurityContext.AppArmorProfile; p.Type == corev1.AppArmorProfileTypeLocalhost && p.LocalhostProfile != nil {
			name = *p.LocalhostProfile
		}
	default:
		name, _ = strings.CutPrefix(pod.Annotations[corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name], corev1.DeprecatedAppArmorBetaProfileNamePrefix)
	}
	if !strings.HasPrefix(name, "ward-") {
		return ""
	}
	return name
}
