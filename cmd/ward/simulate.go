package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

type simulateFlags struct {
	policies   []string
	host       bool
	hostname   string
	namespace  string
	labels     string
	container  string
	op         string
	path       string
	protocol   string
	capability string
	syscall    string
	source     string
	write      bool
	uid        uint32
	owner      uint32
	tty        bool
	args       []string
	posture    string
	audited    bool
	lsm        string
}

// simulateOutput is the verdict as `ward simulate` prints it: the fields users script against
// first, then the context that explains them.
type simulateOutput struct {
	Action        policy.Action  `json:"action"`
	DisplayAction string         `json:"displayAction"`
	Policy        string         `json:"policy"`
	Rule          string         `json:"rule"`
	Posture       bool           `json:"posture"`
	Alert         bool           `json:"alert"`
	Severity      int            `json:"severity"`
	Tags          []string       `json:"tags"`
	Message       string         `json:"message"`
	PolicyKind    policy.Kind    `json:"policyKind,omitempty"`
	Namespace     string         `json:"namespace,omitempty"`
	Workload      string         `json:"workload"`
	Postures      rules.Postures `json:"postures"`
	Policies      []string       `json:"coveringPolicies"`
	// NotEnforced lists, with --lsm, what that module does not enforce as written of the
	// covering policies.
	NotEnforced []enforcer.Warning `json:"notEnforced,omitempty"`
}

func newSimulateCmd() *cobra.Command {
	var f simulateFlags
	cmd := &cobra.Command{
		Use:   "simulate --policies PATH... (--host | --namespace NS --labels k=v,...) --op OP (--path P | --protocol P | --capability C | --syscall S)",
		Short: "Show what a set of policies decides for one access, without touching the kernel",
		Long: `simulate loads policies, builds the rule set of one workload (the host, or a
container given by namespace and labels) and prints the verdict for one access as
a JSON object: action (Allow, Audit or Block), the policy and rule that decided,
whether the default posture decided, and the rule's severity, tags and message.
It is the same decision function every enforcement backend is tested against.`,
		Example: `  ward simulate --policies examples/host --host --op file --path /etc/shadow --source /usr/bin/cat
  ward simulate --policies examples/containers --namespace web --labels app=nginx \
      --op process --path /usr/bin/curl --source /bin/sh --posture file=block`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSimulate(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.policies, "policies", nil, "policy files or directories (repeatable, comma-separated; extra arguments are taken as policy paths too)")
	fl.BoolVar(&f.host, "host", false, "simulate the host workload (host policies)")
	fl.StringVar(&f.hostname, "hostname", "", "the node's host name for host policy selectors (default: this machine's)")
	fl.StringVar(&f.namespace, "namespace", "", "the container's namespace")
	fl.StringVar(&f.labels, "labels", "", "workload labels k=v,k=v (pod labels, or node labels with --host)")
	fl.StringVar(&f.container, "container", "", "the container's name (for kubearmor.io/container.name)")
	fl.StringVar(&f.op, "op", "", "operation: process, file, network, capabilities or syscall")
	fl.StringVar(&f.path, "path", "", "file opened, or program executed with --op process")
	fl.StringVar(&f.protocol, "protocol", "", "network protocol (tcp, udp, icmp, icmpv6, raw, sctp, ...)")
	fl.StringVar(&f.capability, "capability", "", "capability name (net_raw, sys_admin, ...)")
	fl.StringVar(&f.syscall, "syscall", "", "system call name, with --op syscall")
	fl.StringVar(&f.source, "source", "", "acting executable (for process: the program performing the exec)")
	fl.BoolVar(&f.write, "write", false, "the access writes or modifies the target")
	fl.Uint32Var(&f.uid, "uid", 0, "the process's user id")
	fl.Uint32Var(&f.owner, "owner", 0, "the target file's owner id")
	fl.BoolVar(&f.tty, "tty", false, "the process has a terminal")
	fl.StringSliceVar(&f.args, "args", nil, "arguments of the executed program (for allowedArgs)")
	fl.StringVar(&f.posture, "posture", "", "default postures, e.g. file=block,network=audit,capabilities=block (default: audit)")
	fl.BoolVar(&f.audited, "audited", false, "the workload is in audited mode (kubearmor-policy: audited)")
	fl.StringVar(&f.lsm, "lsm", "", "also say what this module (bpf, apparmor, selinux, none) does not enforce as written of the covering policies")
	return cmd
}

// usageError marks a bad command line: printed with a hint and exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func runSimulate(cmd *cobra.Command, f simulateFlags, extra []string) error {
	paths := append(append([]string{}, f.policies...), extra...)
	w, err := simulatedWorkload(f)
	if err == nil && len(paths) == 0 {
		err = usagef("--policies is required")
	}
	var access rules.Access
	if err == nil {
		access, err = simulatedAccess(f)
	}
	var postures rules.Postures
	if err == nil {
		postures, err = parsePostures(f.posture)
	}
	lsm := ""
	if err == nil && f.lsm != "" {
		lsm, err = simulatedLSM(f.lsm)
	}
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "ward simulate: %v\nRun 'ward simulate --help' for usage.\n", err)
		return exitError{code: 2}
	}

	policies, warnings, err := policy.Load(paths...)
	for _, wn := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), wn.String())
	}
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{code: 1}
	}
	set, err := rules.Compile(policies, w, postures)
	if err != nil {
		return fmt.Errorf("compile rules: %w", err)
	}
	v := set.Decide(access)
	out := simulateOutput{
		Action: v.Action, DisplayAction: v.DisplayAction, Policy: v.Policy, Rule: v.Rule,
		Posture: v.Posture, Alert: v.Alert, Severity: v.Severity, Tags: v.Tags, Message: v.Message,
		PolicyKind: v.PolicyKind, Namespace: v.Namespace,
		Workload: w.ID(), Postures: set.Postures, Policies: set.Policies,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.Policies == nil {
		out.Policies = []string{}
	}
	if lsm != "" {
		out.NotEnforced = enforcer.CheckSet(lsm, set)
		for _, w := range out.NotEnforced {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w.String())
		}
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// simulatedLSM reads --lsm: one module, as the lsm setting spells it.
func simulatedLSM(s string) (string, error) {
	order, err := enforcer.ParseOrder(s)
	switch {
	case err != nil:
		return "", usagef("--lsm: %v", err)
	case len(order) == 0:
		return enforcer.None, nil
	case len(order) > 1:
		return "", usagef("--lsm %q: name one module", s)
	}
	return order[0], nil
}

func simulatedWorkload(f simulateFlags) (workload.Workload, error) {
	labels, err := parseLabels(f.labels)
	if err != nil {
		return workload.Workload{}, err
	}
	var w workload.Workload
	switch {
	case f.host && f.namespace != "":
		return w, usagef("--host and --namespace are exclusive: simulate the host or a container")
	case f.host:
		name := f.hostname
		if name == "" {
			if name, err = os.Hostname(); err != nil {
				return w, fmt.Errorf("host name: %w (pass --hostname)", err)
			}
		}
		w = workload.Host(name, labels)
	case f.namespace != "":
		w = workload.Workload{Kind: workload.KindContainer, Namespace: f.namespace, Container: f.container, Labels: labels, Pod: "simulated"}
	default:
		return w, usagef("name a workload: --host, or --namespace NS [--labels k=v,...]")
	}
	if f.audited {
		w.Mode = workload.ModeAudited
	}
	return w, nil
}

func parseLabels(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, usagef("--labels: %q is not k=v", kv)
		}
		labels[k] = v
	}
	return labels, nil
}

func simulatedAccess(f simulateFlags) (rules.Access, error) {
	var a rules.Access
	switch strings.ToLower(f.op) {
	case "process", "file":
		if f.path == "" {
			return a, usagef("--op %s needs --path", f.op)
		}
		if !strings.HasPrefix(f.path, "/") {
			return a, usagef("--path %q is not absolute", f.path)
		}
		a.Op = policy.OpFile
		if strings.ToLower(f.op) == "process" {
			a.Op = policy.OpProcess
		}
		a.Path = path.Clean(f.path)
	case "network":
		if f.protocol == "" {
			return a, usagef("--op network needs --protocol")
		}
		a = rules.NetworkAccess(strings.ToLower(f.protocol))
	case "capabilities", "capability":
		if f.capability == "" {
			return a, usagef("--op capabilities needs --capability")
		}
		a = rules.Access{Op: policy.OpCapabilities, Capability: strings.TrimPrefix(strings.ToLower(f.capability), "cap_")}
	case "syscall", "syscalls":
		if f.syscall == "" {
			return a, usagef("--op syscall needs --syscall")
		}
		a = rules.Access{Op: policy.OpSyscall, Syscall: f.syscall}
		if f.path != "" {
			a.Path = path.Clean(f.path)
		}
	case "":
		return a, usagef("--op is required: process, file, network, capabilities or syscall")
	default:
		return a, usagef("--op %q: allowed are process, file, network, capabilities, syscall", f.op)
	}
	a.Source, a.Write, a.UID, a.Owner, a.TTY, a.Args = f.source, f.write, f.uid, f.owner, f.tty, f.args
	return a, nil
}

func parsePostures(s string) (rules.Postures, error) {
	p := rules.DefaultPostures()
	if s == "" {
		return p, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return p, usagef("--posture: %q is not category=action", kv)
		}
		a, err := policy.ParsePosture(v)
		if err != nil {
			return p, usagef("--posture %s: %v", k, err)
		}
		switch strings.ToLower(k) {
		case "file":
			p.File = a
		case "network":
			p.Network = a
		case "capabilities", "capability":
			p.Capabilities = a
		default:
			return p, usagef("--posture: unknown category %q: allowed are file, network, capabilities", k)
		}
	}
	return p, nil
}
