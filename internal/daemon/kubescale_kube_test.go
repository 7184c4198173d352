//go:build kube

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// TestKubeScale measures the informer path at the size issue 9 names: 1,000 policies and 1,000
// pods on this node. It reports the time from a policy change in the API server to the new rule
// set of the affected pod (informer delivery, parse, and a compile of that workload), p50 and
// p99 over 100 changes; the time to recompile every workload; and the heap held.
func TestKubeScale(t *testing.T) {
	const nPods, nPolicies, nChanges = 1000, 1000, 100
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
	ksp := policyResources[0].gvr
	parallel(t, nPolicies, func(i int) error {
		_, err := dyn.Resource(ksp).Namespace("scale").Create(ctx, scalePolicy(i, "/etc/passwd"), metav1.CreateOptions{})
		return err
	})
	t.Logf("created %d pods and %d policies in %v", nPods, nPolicies, time.Since(start).Round(time.Millisecond))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	reg := workload.NewRegistry(nil)
	k, err := NewKubeSource(srv.TokenConfig(daemonToken), "scale-node", reg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan struct{})
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- k.Run(ctx, func() { close(synced) }) }()
	select {
	case <-synced:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("not synced after 2 minutes")
	}
	syncTime := time.Since(start)
	// Statuses are written on the first sight of each policy; let them settle so that the
	// measured changes do not queue behind 1,000 status patches.
	eventually(t, "first statuses written", func() error {
		l, err := dyn.Resource(ksp).Namespace("scale").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, u := range l.Items {
			if s, _, _ := unstructured.NestedString(u.Object, "status", "status"); s != StatusApplied {
				return fmt.Errorf("%s: status %q", u.GetName(), s)
			}
		}
		return nil
	})
	nw := 0
	for _, w := range reg.List() {
		if w.Kind == workload.KindContainer {
			nw++
		}
	}
	got := 0 // TestKubeSource's cluster-scoped policies are there too
	for _, p := range k.Policies() {
		if p.Namespace == "scale" {
			got++
		}
	}
	if got != nPolicies || nw != nPods {
		t.Fatalf("after sync: %d policies and %d container workloads, want %d and %d", got, nw, nPolicies, nPods)
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)

	// Full recompile: every workload against every policy, what reconcile does on any change.
	start = time.Now()
	for _, w := range reg.List() {
		if _, err := rules.Compile(k.Policies(), w, rules.DefaultPostures()); err != nil {
			t.Fatal(err)
		}
	}
	full := time.Since(start)

	// Changes: policy i now protects another path; wait until pod i's rule set says so.
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
		w, _ := reg.Get(fmt.Sprintf("scale/p%d/c", i))
		start := time.Now()
		if _, err := dyn.Resource(ksp).Namespace("scale").Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		for {
			set, err := rules.Compile(k.Policies(), w, rules.DefaultPostures())
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(set.Rules, func(r rules.Rule) bool { return r.PolicyName == u.GetName() && r.Value == path }) {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("change %d not seen after 10s: %+v", c, set.Rules)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("sync of %d policies and %d pods: %v; heap held by the source: %.1f MiB", nPolicies, nPods,
		syncTime.Round(time.Millisecond), float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
	t.Logf("policy change to new rule set of its pod: p50 %v, p99 %v (n=%d); full recompile of %d workloads: %v",
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), len(lat), nPods+1, full.Round(time.Millisecond))
	cancel()
	<-done
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
