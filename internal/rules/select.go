package rules

import (
	"regexp"
	"strings"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Label keys with a meaning of their own in host policy node selectors.
const (
	labelHostname       = "kubearmor.io/hostname"
	labelHostnameRegex  = "kubearmor.io/hostnamereg"
	labelHostnameRegex2 = "kubernetes.io/hostnamereg"
)

// Covers reports whether a policy applies to a workload (kubearmor-compat.md §4).
func Covers(p *policy.Policy, w *workload.Workload) bool {
	if w.Mode == workload.ModeDisabled {
		return false
	}
	switch p.Kind {
	case policy.KindHostPolicy:
		return w.Kind == workload.KindHost && nodeSelected(p.Selector.NodeLabels, w)
	case policy.KindPolicy:
		if w.Kind != workload.KindContainer || p.Namespace != w.Namespace {
			return false
		}
		for k, v := range p.Selector.MatchLabels {
			if lv, ok := w.Labels[k]; !ok || lv != v {
				return false
			}
		}
		return expressionsHold(p.Selector.Expressions, w) && containerSelected(p.Selector.Containers, w.Container)
	case policy.KindClusterPolicy:
		return w.Kind == workload.KindContainer && expressionsHold(p.Selector.Expressions, w)
	}
	return false
}

// expressionsHold ANDs matchExpressions: `In` means any listed value is present, `NotIn` that
// none is. Label values are "k=v"; namespace values are namespace names.
func expressionsHold(exprs []policy.Expression, w *workload.Workload) bool {
	for _, e := range exprs {
		any := false
		for _, v := range e.Values {
			if expressionValueHolds(e.Key, v, w) {
				any = true
				break
			}
		}
		switch e.Operator {
		case "In":
			if !any {
				return false
			}
		case "NotIn":
			if any {
				return false
			}
		default:
			// The parser only lets In and NotIn through; anything else selects nothing
			// rather than everything.
			return false
		}
	}
	return true
}

func expressionValueHolds(key, value string, w *workload.Workload) bool {
	switch key {
	case "namespace":
		return w.Namespace == value
	case "label":
		k, v, _ := strings.Cut(value, "=")
		lv, ok := w.Labels[k]
		return ok && lv == v
	}
	return false
}

// containerSelected applies kubearmor.io/container.name. Each entry is a container name, or a
// regular expression over the whole name (KubeArmor's meaning outside Kubernetes).
func containerSelected(names []string, container string) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if n == container {
			return true
		}
		if re, err := regexp.Compile("^(?:" + n + ")$"); err == nil && re.MatchString(container) {
			return true
		}
	}
	return false
}

// nodeSelected matches a host policy's nodeSelector against the node's labels and host name.
func nodeSelected(sel map[string]string, w *workload.Workload) bool {
	for k, v := range sel {
		switch k {
		case labelHostname:
			if !hostnameListed(v, w.Hostname) {
				return false
			}
		case labelHostnameRegex, labelHostnameRegex2:
			if !hostnameMatches(v, w.Hostname) {
				return false
			}
		default:
			if lv, ok := w.Labels[k]; !ok || lv != v {
				return false
			}
		}
	}
	return true
}

// hostnameListed: "*" is any host, "a,b" a list.
func hostnameListed(value, hostname string) bool {
	for _, h := range strings.Split(value, ",") {
		h = strings.TrimSpace(h)
		if h == "*" || h == hostname {
			return true
		}
	}
	return false
}

// hostnameMatches treats value as a regular expression in which "*" is a wildcard, matched against
// the whole host name.
func hostnameMatches(value, hostname string) bool {
	expr := strings.ReplaceAll(value, "*", ".*")
	expr = strings.ReplaceAll(expr, "..*", ".*") // a user who already wrote ".*" meant the same
	re, err := regexp.Compile("^(?:" + expr + ")$")
	return err == nil && re.MatchString(hostname)
}
