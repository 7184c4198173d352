//go:build !vm || selinux

package selinux

import (
	"strconv"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Helpers shared by the host tests and the VM tests.

const (
	allow = policy.ActionAllow
	audit = policy.ActionAudit
	block = policy.ActionBlock
)

type ruleOpt func(*policy.Rule)

func readOnly(r *policy.Rule)  { r.ReadOnly = true }
func recursive(r *policy.Rule) { r.Recursive = true }
func from(exe string) ruleOpt {
	return func(r *policy.Rule) { r.FromSource = append(r.FromSource, policy.FromSource{Path: exe}) }
}

func rule(op policy.Operation, m policy.MatchKind, value string, action policy.Action, opts ...ruleOpt) policy.Rule {
	r := policy.Rule{Operation: op, Match: m, Value: value, Action: action}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func file(m policy.MatchKind, v string, a policy.Action, o ...ruleOpt) policy.Rule {
	return rule(policy.OpFile, m, v, a, o...)
}
func proc(m policy.MatchKind, v string, a policy.Action, o ...ruleOpt) policy.Rule {
	return rule(policy.OpProcess, m, v, a, o...)
}

// hostPolicy numbers its rules' fields the way internal/policy does, so that warnings name them.
func hostPolicy(name string, rs ...policy.Rule) policy.Policy {
	count := map[string]int{}
	for i := range rs {
		sec := map[policy.Operation]string{policy.OpFile: "file", policy.OpProcess: "process", policy.OpNetwork: "network",
			policy.OpCapabilities: "capabilities"}[rs[i].Operation]
		list := map[policy.MatchKind]string{policy.MatchPath: "matchPaths", policy.MatchDirectory: "matchDirectories",
			policy.MatchPattern: "matchPatterns", policy.MatchExecName: "matchPaths", policy.MatchProtocol: "matchProtocols",
			policy.MatchCapability: "matchCapabilities"}[rs[i].Match]
		k := "spec." + sec + "." + list
		rs[i].Field = k + "[" + strconv.Itoa(count[k]) + "]"
		count[k]++
	}
	return policy.Policy{
		Kind: policy.KindHostPolicy, Name: name,
		Selector: policy.Selector{NodeLabels: map[string]string{"kubearmor.io/hostname": "*"}},
		Rules:    rs,
	}
}

var host = workload.Host("node1", nil)
