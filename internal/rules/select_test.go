package rules

import (
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

func pod(ns, container string, labels map[string]string) workload.Workload {
	return workload.Workload{Kind: workload.KindContainer, Namespace: ns, Pod: "pod-1", Container: container, Labels: labels}
}

func TestCovers(t *testing.T) {
	nginx := pod("web", "nginx", map[string]string{"app": "nginx", "tier": "front"})
	sidecar := pod("web", "envoy", map[string]string{"app": "nginx", "tier": "front"})
	other := pod("db", "mysql", map[string]string{"app": "mysql"})
	host := workload.Host("node-a", map[string]string{"role": "edge"})

	ksp := func(ns string, sel policy.Selector) *policy.Policy {
		return &policy.Policy{Kind: policy.KindPolicy, Name: "k", Namespace: ns, Selector: sel}
	}
	csp := func(exprs ...policy.Expression) *policy.Policy {
		return &policy.Policy{Kind: policy.KindClusterPolicy, Name: "c", Selector: policy.Selector{Expressions: exprs}}
	}
	hsp := func(labels map[string]string) *policy.Policy {
		return &policy.Policy{Kind: policy.KindHostPolicy, Name: "h", Selector: policy.Selector{NodeLabels: labels}}
	}
	in := func(key string, v ...string) policy.Expression {
		return policy.Expression{Key: key, Operator: "In", Values: v}
	}
	notIn := func(key string, v ...string) policy.Expression {
		return policy.Expression{Key: key, Operator: "NotIn", Values: v}
	}
	cases := []struct {
		name string
		p    *policy.Policy
		w    workload.Workload
		want bool
	}{
		{"ksp: labels all present", ksp("web", policy.Selector{MatchLabels: map[string]string{"app": "nginx", "tier": "front"}}), nginx, true},
		{"ksp: one label differs", ksp("web", policy.Selector{MatchLabels: map[string]string{"app": "nginx", "tier": "back"}}), nginx, false},
		{"ksp: other namespace", ksp("db", policy.Selector{MatchLabels: map[string]string{"app": "nginx"}}), nginx, false},
		{"ksp: empty selector covers the namespace", ksp("db", policy.Selector{}), other, true},
		{"ksp: never covers the host", ksp("", policy.Selector{}), host, false},
		{"ksp: In any value present", ksp("web", policy.Selector{Expressions: []policy.Expression{in("label", "app=x", "tier=front")}}), nginx, true},
		{"ksp: In none present", ksp("web", policy.Selector{Expressions: []policy.Expression{in("label", "app=x")}}), nginx, false},
		{"ksp: NotIn none present", ksp("web", policy.Selector{Expressions: []policy.Expression{notIn("label", "app=x")}}), nginx, true},
		{"ksp: NotIn one present", ksp("web", policy.Selector{Expressions: []policy.Expression{notIn("label", "app=x", "app=nginx")}}), nginx, false},
		{"ksp: matchLabels AND matchExpressions", ksp("web", policy.Selector{MatchLabels: map[string]string{"app": "nginx"}, Expressions: []policy.Expression{notIn("label", "tier=front")}}), nginx, false},
		{"ksp: container.name selects the container", ksp("web", policy.Selector{MatchLabels: map[string]string{"app": "nginx"}, Containers: []string{"nginx", "x"}}), nginx, true},
		{"ksp: container.name leaves the sidecar", ksp("web", policy.Selector{MatchLabels: map[string]string{"app": "nginx"}, Containers: []string{"nginx"}}), sidecar, false},
		{"ksp: container.name as a regular expression", ksp("web", policy.Selector{Containers: []string{"env.*"}}), sidecar, true},
		{"ksp: container.name regex is anchored", ksp("web", policy.Selector{Containers: []string{"nv"}}), sidecar, false},
		{"csp: no expressions covers every namespace", csp(), other, true},
		{"csp: namespace In", csp(in("namespace", "db", "x")), other, true},
		{"csp: namespace In, other namespace", csp(in("namespace", "db")), nginx, false},
		{"csp: namespace NotIn means all others", csp(notIn("namespace", "db")), nginx, true},
		{"csp: namespace NotIn excludes the listed", csp(notIn("namespace", "db")), other, false},
		{"csp: label In", csp(in("label", "app=mysql")), other, true},
		{"csp: namespace and label ANDed", csp(in("namespace", "web"), in("label", "app=mysql")), other, false},
		{"csp: never covers the host", csp(), host, false},
		{"hsp: hostname *", hsp(map[string]string{"kubearmor.io/hostname": "*"}), host, true},
		{"hsp: hostname list", hsp(map[string]string{"kubearmor.io/hostname": "node-b, node-a"}), host, true},
		{"hsp: hostname not listed", hsp(map[string]string{"kubearmor.io/hostname": "node-b"}), host, false},
		{"hsp: hostname regex with * wildcard", hsp(map[string]string{"kubearmor.io/hostnamereg": "node-*"}), host, true},
		{"hsp: kubernetes.io/hostnamereg", hsp(map[string]string{"kubernetes.io/hostnamereg": "edge-*"}), host, false},
		{"hsp: regex anchored", hsp(map[string]string{"kubearmor.io/hostnamereg": "ode"}), host, false},
		{"hsp: node label", hsp(map[string]string{"role": "edge"}), host, true},
		{"hsp: node label and hostname ANDed", hsp(map[string]string{"role": "edge", "kubearmor.io/hostname": "node-b"}), host, false},
		{"hsp: never covers containers", hsp(map[string]string{"kubearmor.io/hostname": "*"}), nginx, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Covers(c.p, &c.w); got != c.want {
				t.Errorf("Covers = %v, want %v", got, c.want)
			}
		})
	}
	disabled := nginx
	disabled.Mode = workload.ModeDisabled
	if Covers(ksp("web", policy.Selector{}), &disabled) {
		t.Error("a disabled workload must not be covered")
	}
}

// TestNamespacelessPolicyCoversPlainContainers: outside Kubernetes a KubeArmorPolicy without
// metadata.namespace lands in the namespace where the OCI hook puts plain containers.
func TestNamespacelessPolicyCoversPlainContainers(t *testing.T) {
	if policy.DefaultNamespace != workload.DefaultContainerNamespace {
		t.Fatalf("policy.DefaultNamespace %q != workload.DefaultContainerNamespace %q", policy.DefaultNamespace, workload.DefaultContainerNamespace)
	}
	ps, _, err := policy.Parse("ksp.yaml", []byte(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-ns}
spec:
  selector: {matchLabels: {app: web}}
  file: {matchPaths: [{path: /etc/shadow}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	plain := workload.Workload{Kind: workload.KindContainer, Namespace: workload.DefaultContainerNamespace, Container: "web", Labels: map[string]string{"app": "web"}}
	if !Covers(&ps[0], &plain) {
		t.Errorf("namespace-less KSP (namespace %q) does not cover a plain container in %q", ps[0].Namespace, plain.Namespace)
	}
	inDefault := plain
	inDefault.Namespace = "default"
	if Covers(&ps[0], &inDefault) {
		t.Error("namespace-less KSP covers a container in namespace default")
	}
}
