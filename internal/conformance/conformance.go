// Package conformance holds the one table of enforcement cases (cases.yaml) that rules.Decide and
// every backend run: policies, postures, and accesses with the verdict each must produce. The
// host runs it through Decide; the VM suite performs each access in a real kernel under each
// backend and checks the errno and the alert against the same expectations.
package conformance

import (
	_ "embed"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

//go:embed cases.yaml
var casesYAML []byte

// Case is a policy set with the accesses to try under it.
type Case struct {
	Name     string            `json:"name"`
	Postures map[string]string `json:"postures,omitempty"`
	Policies string            `json:"policies"`
	Accesses []AccessCase      `json:"accesses"`
}

// AccessCase is one access and its expected verdict.
type AccessCase struct {
	Op         string `json:"op"`
	Path       string `json:"path,omitempty"`
	Source     string `json:"source,omitempty"`
	Write      bool   `json:"write,omitempty"`
	UID        uint32 `json:"uid,omitempty"`
	Owner      uint32 `json:"owner,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Capability string `json:"capability,omitempty"`
	Want       Want   `json:"want"`
}

// Want is the expected verdict.
type Want struct {
	Action  policy.Action `json:"action"`
	Policy  string        `json:"policy,omitempty"`
	Rule    string        `json:"rule,omitempty"`
	Posture bool          `json:"posture,omitempty"`
}

// DefaultSource is the acting executable of an access that names none.
const DefaultSource = "/wt/bin/reader"

// Cases returns the table.
func Cases() ([]Case, error) {
	var cs []Case
	if err := yaml.UnmarshalStrict(casesYAML, &cs); err != nil {
		return nil, fmt.Errorf("cases.yaml: %w", err)
	}
	return cs, nil
}

// Load parses the case's policies and postures.
func (c *Case) Load() ([]policy.Policy, rules.Postures, error) {
	ps, _, err := policy.Parse(c.Name+".yaml", []byte(c.Policies))
	if err != nil {
		return nil, rules.Postures{}, fmt.Errorf("case %s: %w", c.Name, err)
	}
	post := rules.DefaultPostures()
	for k, v := range c.Postures {
		a := policy.Action(strings.ToUpper(v[:1]) + strings.ToLower(v[1:]))
		switch k {
		case "file":
			post.File = a
		case "network":
			post.Network = a
		case "capabilities":
			post.Capabilities = a
		default:
			return nil, post, fmt.Errorf("case %s: unknown posture %q", c.Name, k)
		}
	}
	return ps, post, nil
}

// Access is the rules.Access the case describes.
func (a *AccessCase) Access() rules.Access {
	var acc rules.Access
	switch a.Op {
	case "network":
		acc = rules.NetworkAccess(a.Protocol)
	case "capabilities":
		acc = rules.Access{Op: policy.OpCapabilities, Capability: a.Capability}
	case "process":
		acc = rules.Access{Op: policy.OpProcess, Path: a.Path}
	default:
		acc = rules.Access{Op: policy.OpFile, Path: a.Path}
	}
	acc.Source = a.Source
	if acc.Source == "" {
		acc.Source = DefaultSource
	}
	acc.Write, acc.UID, acc.Owner = a.Write, a.UID, a.Owner
	return acc
}

// Check compares a verdict with the expectation and describes any difference.
func (w Want) Check(v rules.Verdict) error {
	if v.Action != w.Action || v.Policy != w.Policy || v.Posture != w.Posture || (w.Rule != "" && v.Rule != w.Rule) {
		return fmt.Errorf("got action=%s policy=%q rule=%q posture=%v, want action=%s policy=%q rule=%q posture=%v",
			v.Action, v.Policy, v.Rule, v.Posture, w.Action, w.Policy, w.Rule, w.Posture)
	}
	return nil
}

// Describe names an access for test output.
func (a *AccessCase) Describe() string {
	s := a.Op + " " + a.Path + a.Protocol + a.Capability
	if a.Write {
		s += " (write)"
	}
	if a.Source != "" {
		s += " by " + a.Source
	}
	if a.UID != 0 || a.Owner != 0 {
		s += fmt.Sprintf(" uid=%d owner=%d", a.UID, a.Owner)
	}
	return s
}
