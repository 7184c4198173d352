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
	"github.com/wardsec/ward/internal/workload"
)

//go:embed cases.yaml
var casesYAML []byte

// Case is a policy set with the accesses to try under it.
type Case struct {
	Name     string            `json:"name"`
	Postures map[string]string `json:"postures,omitempty"`
	Policies string            `json:"policies"`
	// Workloads are the containers the accesses run in, for cases about container policies
	// (which policies select which container). Without them every access runs in the host
	// workload.
	Workloads []WorkloadCase `json:"workloads,omitempty"`
	Accesses  []AccessCase   `json:"accesses"`
}

// WorkloadCase is a container an access runs in.
type WorkloadCase struct {
	// Name is what accesses call it; it also makes the container's ID ("conformance-" + Name).
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Pod       string            `json:"pod,omitempty"`
	Container string            `json:"container"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Workload is the container the case describes. Its cgroup is the driver's to make.
func (w *WorkloadCase) Workload() workload.Workload {
	return workload.Workload{
		Kind: workload.KindContainer, Hostname: Hostname, ContainerID: "conformance-" + w.Name,
		Namespace: w.Namespace, Pod: w.Pod, Container: w.Container, Labels: w.Labels,
	}
}

// Hostname is the node the cases run on.
const Hostname = "ward-vm"

// Compile builds the rule set of each workload of the case from its policies, in the order of
// Workloads (one set, the host's, when the case has none), as the daemon would: each workload
// gets the policies that select it.
func (c *Case) Compile(ps []policy.Policy, post rules.Postures) ([]*rules.Set, error) {
	if len(c.Workloads) == 0 {
		set, err := rules.Compile(ps, workload.Host(Hostname, nil), post)
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", c.Name, err)
		}
		return []*rules.Set{set}, nil
	}
	sets := make([]*rules.Set, len(c.Workloads))
	for i := range c.Workloads {
		set, err := rules.Compile(ps, c.Workloads[i].Workload(), post)
		if err != nil {
			return nil, fmt.Errorf("case %s: workload %s: %w", c.Name, c.Workloads[i].Name, err)
		}
		sets[i] = set
	}
	return sets, nil
}

// WorkloadIndex is the index, in Workloads and in Compile's sets, of the workload an access
// runs in: the one it names, or the first.
func (c *Case) WorkloadIndex(a *AccessCase) (int, error) {
	if a.Workload == "" {
		return 0, nil
	}
	for i, w := range c.Workloads {
		if w.Name == a.Workload {
			return i, nil
		}
	}
	return 0, fmt.Errorf("case %s: access %s names workload %q, which the case does not list", c.Name, a.Describe(), a.Workload)
}

// WantWorkload is where the alert about an access must say it happened: the namespace and
// container name of the access's workload ("" for the host).
func (c *Case) WantWorkload(a *AccessCase) (namespace, container string, err error) {
	if len(c.Workloads) == 0 {
		return "", "", nil
	}
	i, err := c.WorkloadIndex(a)
	if err != nil {
		return "", "", err
	}
	return c.Workloads[i].Namespace, c.Workloads[i].Container, nil
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
	// Workload names the case's workload the access runs in (default: the first).
	Workload string `json:"workload,omitempty"`
	Want     Want   `json:"want"`
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
	if a.Workload != "" {
		s += " in " + a.Workload
	}
	return s
}
