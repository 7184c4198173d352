package rules

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// randomCluster makes policies of every kind with selectors drawn from a small vocabulary, so
// that many of them select, and workloads drawn from the same one.
func randomCluster(r *rand.Rand, nPolicies, nWorkloads int) ([]policy.Policy, []workload.Workload) {
	nss := []string{"a", "b", "c"}
	labels := func() map[string]string {
		m := map[string]string{}
		for _, k := range []string{"app", "tier", "env"} {
			if r.IntN(2) == 0 {
				m[k] = fmt.Sprint(r.IntN(3))
			}
		}
		return m
	}
	expr := func(keys ...string) policy.Expression {
		key := keys[r.IntN(len(keys))]
		e := policy.Expression{Key: key, Operator: []string{"In", "NotIn"}[r.IntN(2)]}
		for range 1 + r.IntN(2) {
			if key == "namespace" {
				e.Values = append(e.Values, nss[r.IntN(len(nss))])
			} else {
				e.Values = append(e.Values, fmt.Sprintf("%s=%d", []string{"app", "tier"}[r.IntN(2)], r.IntN(3)))
			}
		}
		return e
	}
	var ps []policy.Policy
	for i := range nPolicies {
		p := policy.Policy{Name: fmt.Sprintf("p%d", i%(nPolicies/2+1)), // some duplicate keys
			Rules: []policy.Rule{{Field: "f", Operation: policy.OpFile, Match: policy.MatchPath, Value: fmt.Sprintf("/f%d", i), Action: policy.ActionBlock}}}
		switch r.IntN(4) {
		case 0, 1:
			p.Kind, p.Namespace = policy.KindPolicy, nss[r.IntN(len(nss))]
			p.Selector.MatchLabels = labels()
			if r.IntN(3) == 0 {
				p.Selector.Expressions = []policy.Expression{expr("label")}
			}
			if r.IntN(4) == 0 {
				p.Selector.Containers = []string{"c0", "c.*"}[r.IntN(2):]
			}
		case 2:
			p.Kind = policy.KindClusterPolicy
			for range r.IntN(3) {
				p.Selector.Expressions = append(p.Selector.Expressions, expr("namespace", "label"))
			}
		case 3:
			p.Kind = policy.KindHostPolicy
			p.Selector.NodeLabels = labels()
		}
		ps = append(ps, p)
	}
	ws := []workload.Workload{workload.Host("n1", labels())}
	for i := range nWorkloads {
		w := pod(nss[r.IntN(len(nss))], fmt.Sprintf("c%d", r.IntN(2)), labels())
		w.Pod = fmt.Sprintf("pod%d", i)
		if r.IntN(10) == 0 {
			w.Mode = workload.ModeDisabled
		}
		ws = append(ws, w)
	}
	return ps, ws
}

func setJSON(t *testing.T, s *Set) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIndexCompileEqualsCompile: the index only narrows the candidates; every workload's Set is
// the one Compile makes from all policies.
func TestIndexCompileEqualsCompile(t *testing.T) {
	covered := 0
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 9))
		ps, ws := randomCluster(r, 60, 40)
		x := NewIndex(pointers(ps))
		for _, w := range ws {
			want, err := Compile(ps, w, DefaultPostures())
			if err != nil {
				t.Fatal(err)
			}
			got, err := x.Compile(w, DefaultPostures())
			if err != nil {
				t.Fatal(err)
			}
			if g, wj := setJSON(t, got), setJSON(t, want); g != wj {
				t.Fatalf("seed %d, workload %+v:\nindex   %s\ncompile %s", seed, w, g, wj)
			}
			covered += len(want.Policies)
		}
	}
	// The fixture must select something, or the comparison proves little.
	if covered < 1000 {
		t.Errorf("only %d covering policies over all workloads", covered)
	}
}

// TestIndexCandidates: a workload's candidates are the policies filed under its namespace and
// labels, not all of them.
func TestIndexCandidates(t *testing.T) {
	var ps []policy.Policy
	for i := range 100 {
		ps = append(ps, policy.Policy{Kind: policy.KindPolicy, Name: fmt.Sprint(i), Namespace: "ns",
			Selector: policy.Selector{MatchLabels: map[string]string{"app": fmt.Sprint(i)}}})
	}
	ps = append(ps,
		policy.Policy{Kind: policy.KindClusterPolicy, Name: "in-ns", Selector: policy.Selector{Expressions: []policy.Expression{{Key: "namespace", Operator: "In", Values: []string{"ns", "ns"}}}}},
		policy.Policy{Kind: policy.KindClusterPolicy, Name: "in-other", Selector: policy.Selector{Expressions: []policy.Expression{{Key: "namespace", Operator: "In", Values: []string{"other"}}}}},
		policy.Policy{Kind: policy.KindHostPolicy, Name: "h"},
	)
	x := NewIndex(pointers(ps))
	w := pod("ns", "c", map[string]string{"app": "7", "tier": "x"})
	if got := x.candidates(&w); fmt.Sprint(got) != "[7 100]" {
		t.Errorf("candidates of app=7 in ns = %v, want [7 100]", got)
	}
	h := workload.Host("n", nil)
	if got := x.candidates(&h); fmt.Sprint(got) != "[102]" {
		t.Errorf("candidates of the host = %v, want [102]", got)
	}
}

// kubeScaleFixture is the shape of issue 9's scale run: 1,001 KubeArmorPolicies in one
// namespace, each selecting its own pod by label, and 1,000 pods.
func kubeScaleFixture() ([]policy.Policy, []workload.Workload) {
	var ps []policy.Policy
	for i := range 1_001 {
		ps = append(ps, policy.Policy{Kind: policy.KindPolicy, Name: fmt.Sprintf("k%d", i), Namespace: "scale",
			Selector: policy.Selector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", i)}},
			Rules:    fileRules(1)})
	}
	var ws []workload.Workload
	for i := range 1_000 {
		ws = append(ws, pod("scale", "c", map[string]string{"app": fmt.Sprintf("a%d", i)}))
	}
	return ps, ws
}

// BenchmarkCompileIndexed compiles every workload of a fixture with Compile (the baseline) and
// with NewIndex + Index.Compile (the index's build included) in interleaved rounds of the same
// run, and reports the ratio baseline/indexed: how many times faster a full recompile is.
func BenchmarkCompileIndexed(b *testing.B) {
	for _, fx := range []struct {
		name string
		mk   func() ([]policy.Policy, []workload.Workload)
	}{{"kube-1001x1000", kubeScaleFixture}, {"10000x1000", compileFixture}} {
		b.Run(fx.name, func(b *testing.B) {
			ps, ws := fx.mk()
			var tBase, tIndex time.Duration
			for b.Loop() {
				start := time.Now()
				nBase := 0
				for _, w := range ws {
					s, err := Compile(ps, w, DefaultPostures())
					if err != nil {
						b.Fatal(err)
					}
					nBase += len(s.Rules)
				}
				tBase += time.Since(start)
				start = time.Now()
				x := NewIndex(pointers(ps))
				nIndex := 0
				for _, w := range ws {
					s, err := x.Compile(w, DefaultPostures())
					if err != nil {
						b.Fatal(err)
					}
					nIndex += len(s.Rules)
				}
				tIndex += time.Since(start)
				if nBase != nIndex {
					b.Fatalf("indexed compile made %d rules, Compile %d", nIndex, nBase)
				}
			}
			b.ReportMetric(float64(tBase.Microseconds())/float64(b.N)/1e3, "ms/full-compile")
			b.ReportMetric(float64(tIndex.Microseconds())/float64(b.N)/1e3, "ms/full-indexed")
			b.ReportMetric(float64(tBase)/float64(tIndex), "ratio-compile/indexed")
		})
	}
}
