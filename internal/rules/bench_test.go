package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// fileRules makes n file rules spread over n/4 directories: exact paths, directories
// (recursive and not) and patterns, all Block, none on the benchmark's access path.
func fileRules(n int) []policy.Rule {
	rs := make([]policy.Rule, 0, n)
	for i := 0; len(rs) < n; i++ {
		d := fmt.Sprintf("/srv/app%d/data%d/", i%97, i)
		rs = append(rs,
			policy.Rule{Field: "p", Operation: policy.OpFile, Match: policy.MatchPath, Value: d + "secret", Action: policy.ActionBlock},
			policy.Rule{Field: "d", Operation: policy.OpFile, Match: policy.MatchDirectory, Value: d, Recursive: true, Action: policy.ActionBlock},
			policy.Rule{Field: "n", Operation: policy.OpFile, Match: policy.MatchDirectory, Value: d + "logs/", Action: policy.ActionAudit},
			policy.Rule{Field: "g", Operation: policy.OpFile, Match: policy.MatchPattern, Value: d + "*.key", Action: policy.ActionBlock},
		)
	}
	return rs[:n]
}

func decideSet(b testing.TB, n int) *Set {
	p := hostPolicy("bench", fileRules(n)...)
	// One rule on the access path's own directory, so the lookup finds and evaluates a match.
	p.Rules = append(p.Rules, policy.Rule{Field: "hit", Operation: policy.OpFile, Match: policy.MatchDirectory,
		Value: "/srv/app1/data1/", Recursive: true, Action: policy.ActionAudit})
	set, err := Compile([]policy.Policy{p}, workload.Host("n", nil), DefaultPostures())
	if err != nil {
		b.Fatal(err)
	}
	return set
}

var benchAccess = fileAccess("/srv/app1/data1/a/b/c/file.txt")

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			set := decideSet(b, n)
			b.ReportAllocs()
			for b.Loop() {
				set.Decide(benchAccess)
			}
		})
	}
}

// BenchmarkDecideScaling times 100-rule and 10,000-rule sets in interleaved rounds of the same
// run and reports the ratio: near 1 means the cost does not grow with the number of rules.
func BenchmarkDecideScaling(b *testing.B) {
	small, large := decideSet(b, 100), decideSet(b, 10_000)
	const per = 20_000
	var tSmall, tLarge time.Duration
	for b.Loop() {
		start := time.Now()
		for range per {
			small.Decide(benchAccess)
		}
		tSmall += time.Since(start)
		start = time.Now()
		for range per {
			large.Decide(benchAccess)
		}
		tLarge += time.Since(start)
	}
	b.ReportMetric(float64(tSmall.Nanoseconds())/float64(b.N*per), "ns/decide-100")
	b.ReportMetric(float64(tLarge.Nanoseconds())/float64(b.N*per), "ns/decide-10000")
	b.ReportMetric(float64(tLarge)/float64(tSmall), "ratio-10000/100")
}

// compileFixture makes 10,000 KubeArmorPolicies over 100 namespaces and 1,000 pods.
func compileFixture() ([]policy.Policy, []workload.Workload) {
	var ps []policy.Policy
	for i := range 10_000 {
		ns := fmt.Sprintf("ns%d", i%100)
		ps = append(ps, policy.Policy{
			Kind: policy.KindPolicy, Name: fmt.Sprintf("p%d", i), Namespace: ns,
			Selector: policy.Selector{MatchLabels: map[string]string{"app": fmt.Sprintf("app%d", i%10)}},
			Rules:    fileRules(4),
		})
	}
	var ws []workload.Workload
	for i := range 1_000 {
		ws = append(ws, pod(fmt.Sprintf("ns%d", i%100), "c", map[string]string{"app": fmt.Sprintf("app%d", i%10)}))
	}
	return ps, ws
}

func BenchmarkCompile(b *testing.B) {
	ps, ws := compileFixture()
	rules := 0
	for b.Loop() {
		rules = 0
		for _, w := range ws {
			set, err := Compile(ps, w, DefaultPostures())
			if err != nil {
				b.Fatal(err)
			}
			rules += len(set.Rules)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ws))/1e6, "ms/workload")
	b.ReportMetric(float64(rules)/float64(len(ws)), "rules/workload")
}
