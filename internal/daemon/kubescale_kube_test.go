//go:build kube

package daemon

import (
	"context"
	"fmt"
	"github.com/wardsec/ward/internal/workload/kube"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// TestKubeScale measures Kubernetes mode at the size issue 9 names: 1,000 policies and 1,000
// pods on this node, through the daemon itself (daemon.Run, k8s=true, lsm=none). It reports how
// many policies and pods the informer path handed the daemon, the time from a policy change in
// the API server to the new rule set of the affected pod in d.Sets() (informer delivery, parse,
// reconcile), p50 and p99 over 200 changes, and the daemon's memory. Figures are printed, never
// asserted against a clock; the counts are asserted.
func TestKubeScale(t *testing.T) {
	const nPods, nPolicies, nChanges = 1000, 1000, 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc := kubernetes.NewForConfigOrDie(srv.Config)
	dyn := dynamic.NewForConfigOrDie(srv.Config)
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	parallel(t, nPods, func(i int) error {
		_, err := kc.CoreV1().Pods("scale").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"app": fmt.Sprintf("a%d", i)}},
			Spec:       corev1.PodSpec{NodeName: "scale-node", Containers: []corev1.Container{{Name: "c", Image: "x"}}},
		}, metav1.CreateOptions{})
		return err
	})
	ksp := kube.PolicyResources[0].GVR
	parallel(t, nPolicies, func(i int) error {
		_, err := dyn.Resource(ksp).Namespace("scale").Create(ctx, scalePolicy(i, "/etc/passwd"), metav1.CreateOptions{})
		return err
	})
	t.Logf("created %d pods and %d policies in %v", nPods, nPolicies, time.Since(start).Round(time.Millisecond))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rssBefore := rssKiB(t)
	start = time.Now()
	kd := startKubeDaemon(t, "scale-node")
	d := kd.d
	syncTime := time.Since(start) // to the end of the first reconcile, which holds everything
	// Statuses are written on the first sight of each policy; let them settle so that the
	// measured changes do not queue behind 1,000 status patches.
	// At the daemon's 50 requests/s that takes 20 s or more: wait longer than eventually does.
	statusStart := time.Now()
	var statusErr error
	for time.Since(statusStart) < 3*time.Minute {
		if statusErr = func() error {
			l, err := dyn.Resource(ksp).Namespace("scale").List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, u := range l.Items {
				// lsm=none: "Applied; not enforced by eBPF Monitor: spec" for a policy that blocks.
				if s, _, _ := unstructured.NestedString(u.Object, "status", "status"); !strings.HasPrefix(s, kube.StatusApplied) {
					return fmt.Errorf("%s: status %q", u.GetName(), s)
				}
			}
			return nil
		}(); statusErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if statusErr != nil {
		t.Fatalf("statuses not all written after 3 minutes: %v", statusErr)
	}
	statusTime := time.Since(start)
	nw, nCovered := 0, 0
	for _, s := range d.Sets() {
		if s.Workload.Kind == workload.KindContainer && s.Workload.Namespace == "scale" {
			nw++
			if len(s.Policies) == 1 {
				nCovered++
			}
		}
	}
	got := 0 // the other tests' cluster-scoped policies may be there too
	for _, p := range d.kube.Policies() {
		if p.Namespace == "scale" {
			got++
		}
	}
	if got != nPolicies || nw != nPods || nCovered != nPods {
		t.Fatalf("after the first reconcile: %d policies, %d pod rule sets, %d of them with their policy; want %d, %d, %d",
			got, nw, nCovered, nPolicies, nPods, nPods)
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	rssAfter := rssKiB(t)

	// Full recompile at this size, Compile against the index, what a full reconcile costs.
	pols := d.kube.Policies()
	ws := d.Workloads().List()
	start = time.Now()
	for _, w := range ws {
		if _, err := rules.Compile(pols, w, rules.DefaultPostures()); err != nil {
			t.Fatal(err)
		}
	}
	full := time.Since(start)
	start = time.Now()
	ptrs := make([]*policy.Policy, len(pols))
	for i := range pols {
		ptrs[i] = &pols[i]
	}
	x := rules.NewIndex(ptrs)
	for _, w := range ws {
		if _, err := x.Compile(w, rules.DefaultPostures()); err != nil {
			t.Fatal(err)
		}
	}
	fullIndexed := time.Since(start)

	// Changes: policy i now protects another path; wait until pod i's rule set in the daemon
	// says so.
	var lat []time.Duration
	for c := range nChanges {
		i := c * (nPolicies / nChanges)
		path := fmt.Sprintf("/etc/changed-%d", c)
		u, err := dyn.Resource(ksp).Namespace("scale").Get(ctx, fmt.Sprintf("k%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedSlice(u.Object, []any{map[string]any{"path": path}}, "spec", "file", "matchPaths"); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("scale/p%d/c", i)
		start := time.Now()
		if _, err := dyn.Resource(ksp).Namespace("scale").Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		for {
			set := d.Sets()[id]
			if set != nil && slices.ContainsFunc(set.Rules, func(r rules.Rule) bool { return r.PolicyName == u.GetName() && r.Value == path }) {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("change %d not in %s's rule set after 20s: %s", c, id, setSummary(set))
			}
			time.Sleep(500 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("informer path: %d policies and %d pods (%d rule sets) in the daemon's first reconcile, %v after Run; all %d statuses written %v after Run",
		got, nPods, len(d.Sets()), syncTime.Round(time.Millisecond), nPolicies, statusTime.Round(time.Millisecond))
	t.Logf("daemon memory at that size: heap in use %.1f MiB (%.1f MiB more than before the daemon started), RSS %.1f MiB (+%.1f MiB; the test process, API clients included)",
		float64(after.HeapInuse)/(1<<20), float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20),
		float64(rssAfter)/1024, float64(rssAfter-rssBefore)/1024)
	t.Logf("policy change in the API server to the new rule set in the daemon: p50 %v, p99 %v, max %v (n=%d)",
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), len(lat))
	// The daemon's own share of that latency: its reconcile rounds, first one included.
	t.Logf("the daemon's reconciles (ward_reconcile_duration_seconds): %s", observedSince(t, d, "ward_reconcile_duration_seconds", nil))
	t.Logf("full compile of %d workloads x %d policies: rules.Compile %v, rules.Index %v (ratio %.1f)",
		len(ws), len(pols), full.Round(time.Millisecond), fullIndexed.Round(time.Millisecond), float64(full)/float64(fullIndexed))
	kd.stop()
}

func scalePolicy(i int, path string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.kubearmor.com/v1", "kind": "KubeArmorPolicy",
		"metadata": map[string]any{"name": fmt.Sprintf("k%d", i), "namespace": "scale"},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": fmt.Sprintf("a%d", i)}},
			"file":     map[string]any{"matchPaths": []any{map[string]any{"path": path}}},
			"action":   "Block",
		},
	}}
}

// parallel runs f(0..n-1) on 8 workers and fails on the first error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
