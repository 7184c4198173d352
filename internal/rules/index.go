package rules

import (
	"slices"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Index holds policies grouped by what a workload needs for them to cover it, so that compiling
// one workload looks only at the policies that can select it instead of at all of them. Compile
// over N policies and W workloads costs O(N x W); an Index costs O(N) to build and, per workload,
// O(its labels + the policies filed under its namespace and labels).
//
// Each policy is filed under exactly one key, chosen from a condition every workload it covers
// must meet; Covers still decides, so the index only narrows the candidates and never changes
// the meaning:
//
//   - a KubeArmorPolicy under its namespace and one of its matchLabels pairs (the smallest key),
//     or under its namespace alone when it has no matchLabels;
//   - a KubeArmorClusterPolicy under each namespace of its first `namespace In` expression, or
//     with the cluster-wide ones when it has none;
//   - a KubeArmorHostPolicy with the host policies (a node has one host workload).
//
// An Index is read-only once built and safe for concurrent use.
type Index struct {
	policies []*policy.Policy
	host     []int
	cluster  []int
	byNS     map[string]*nsPolicies
}

type nsPolicies struct {
	any     []int            // KSPs without matchLabels
	byLabel map[string][]int // KSPs by one "key=value" of their matchLabels
	cluster []int            // CSPs whose namespace In lists this namespace
}

// NewIndex files the policies. It keeps the slice and the policies, which the caller must not
// change afterwards.
func NewIndex(policies []*policy.Policy) *Index {
	x := &Index{policies: policies, byNS: map[string]*nsPolicies{}}
	ns := func(name string) *nsPolicies {
		n := x.byNS[name]
		if n == nil {
			n = &nsPolicies{}
			x.byNS[name] = n
		}
		return n
	}
	for i, p := range policies {
		switch p.Kind {
		case policy.KindHostPolicy:
			x.host = append(x.host, i)
		case policy.KindPolicy:
			n := ns(p.Namespace)
			if len(p.Selector.MatchLabels) == 0 {
				n.any = append(n.any, i)
				continue
			}
			key := ""
			first := true
			for k := range p.Selector.MatchLabels {
				if first || k < key {
					key, first = k, false
				}
			}
			if n.byLabel == nil {
				n.byLabel = map[string][]int{}
			}
			lv := key + "=" + p.Selector.MatchLabels[key]
			n.byLabel[lv] = append(n.byLabel[lv], i)
		case policy.KindClusterPolicy:
			if e := namespaceIn(p.Selector.Expressions); e != nil {
				for _, v := range uniq(e.Values) {
					ns(v).cluster = append(ns(v).cluster, i)
				}
				continue
			}
			x.cluster = append(x.cluster, i)
		default:
			// Covers selects nothing for an unknown kind; keeping it as a candidate for every
			// workload keeps that decision in one place.
			x.cluster = append(x.cluster, i)
			x.host = append(x.host, i)
		}
	}
	return x
}

// namespaceIn returns a CSP's first `namespace In` expression: a workload it covers is in one of
// the listed namespaces.
func namespaceIn(exprs []policy.Expression) *policy.Expression {
	for i := range exprs {
		if exprs[i].Key == "namespace" && exprs[i].Operator == "In" {
			return &exprs[i]
		}
	}
	return nil
}

func uniq(vs []string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	return slices.Compact(out)
}

// Len is the number of policies indexed.
func (x *Index) Len() int { return len(x.policies) }

// candidates returns the indexes of the policies that may cover w, ascending, each once.
func (x *Index) candidates(w *workload.Workload) []int {
	var c []int
	switch w.Kind {
	case workload.KindHost:
		c = append(c, x.host...)
	default:
		c = append(c, x.cluster...)
		if n := x.byNS[w.Namespace]; n != nil {
			c = append(c, n.any...)
			c = append(c, n.cluster...)
			for k, v := range w.Labels {
				c = append(c, n.byLabel[k+"="+v]...)
			}
		}
	}
	slices.Sort(c)
	return slices.Compact(c)
}

// Compile is CompileFrom(policies, w, postures) for the indexed policies, with the same result.
func (x *Index) Compile(w workload.Workload, postures Postures) (*Set, error) {
	var covering []*policy.Policy
	for _, i := range x.candidates(&w) {
		if Covers(x.policies[i], &w) {
			covering = append(covering, x.policies[i])
		}
	}
	// Candidates are in slice order, as Compile's covering policies are, so the two Sets match.
	return compileCovering(covering, w, postures)
}
