package enforcer

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

func ptr[T any](v T) *T { return &v }

// everything is a host policy with one of each part some backend does not enforce.
func everything() policy.Policy {
	return policy.Policy{
		Kind: policy.KindHostPolicy, Name: "all", Selector: policy.Selector{NodeLabels: map[string]string{"a": "b"}},
		Rules: []policy.Rule{
			{Field: "spec.process.matchPaths[0]", Operation: policy.OpProcess, Match: policy.MatchPath, Value: "/bin/ls",
				AllowedArgs: []string{"-l"}, Action: policy.ActionBlock},
			{Field: "spec.file.matchPaths[0]", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/etc/shadow",
				OwnerOnly: true, PTS: ptr(true), Action: policy.ActionAudit},
			{Field: "spec.file.matchPatterns[0]", Operation: policy.OpFile, Match: policy.MatchPattern, Value: "/etc/*.key", Action: policy.ActionBlock},
			{Field: "spec.process.matchPaths[1]", Operation: policy.OpProcess, Match: policy.MatchExecName, Value: "nc", Action: policy.ActionBlock},
			{Field: "spec.network.matchProtocols[0]", Operation: policy.OpNetwork, Match: policy.MatchProtocol, Value: "udp", Action: policy.ActionBlock},
			{Field: "spec.network.matchDNSQueries[0]", Operation: policy.OpNetwork, Match: policy.MatchDNSQuery, Value: "x.org", Action: policy.ActionBlock},
			{Field: "spec.capabilities.matchCapabilities[0]", Operation: policy.OpCapabilities, Match: policy.MatchCapability, Value: "net_raw", Action: policy.ActionBlock},
			{Field: "spec.syscalls.matchSyscalls[0]", Operation: policy.OpSyscall, Match: policy.MatchSyscall, Syscalls: []string{"setuid"},
				FromSource: []policy.FromSource{{Dir: "/bin/"}}, Action: policy.ActionAudit},
		},
		Presets:  []policy.Preset{{Name: "protectEnv", Action: policy.ActionBlock}},
		Devices:  []policy.DeviceRule{{Field: "spec.device.matchDevice[0]", Class: "MASS-STORAGE", Action: policy.ActionBlock}},
		AppArmor: "deny /x r,",
	}
}

func paths(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Rule)
	}
	return out
}

// TestCheck pins the support table: what each backend reports for one policy that has every
// part some backend does not enforce. The lists follow the translators: bpflsm.Translate skips
// syscall, DNS and allowedArgs rules and has no translation of presets, devices or raw AppArmor
// text; apparmor.Render cannot see pts or arguments; selinux.Render labels host files only.
func TestCheck(t *testing.T) {
	p := everything()
	for _, c := range []struct {
		backend string
		want    []string
	}{
		{BPF, []string{"spec.process.matchPaths[0].allowedArgs", "spec.network.matchDNSQueries[0]",
			"spec.syscalls.matchSyscalls[0]", "spec.presets[0]", "spec.device.matchDevice[0]", "spec.apparmor"}},
		{AppArmor, []string{"spec.process.matchPaths[0].allowedArgs", "spec.file.matchPaths[0].pts",
			"spec.network.matchDNSQueries[0]", "spec.syscalls.matchSyscalls[0]", "spec.presets[0]", "spec.device.matchDevice[0]"}},
		{SELinux, []string{"spec.process.matchPaths[0].allowedArgs", "spec.file.matchPaths[0].pts", "spec.file.matchPaths[0].ownerOnly",
			"spec.file.matchPatterns[0]", "spec.process.matchPaths[1]", "spec.network.matchProtocols[0]",
			"spec.network.matchDNSQueries[0]", "spec.capabilities.matchCapabilities[0]", "spec.syscalls.matchSyscalls[0]",
			"spec.syscalls.matchSyscalls[0].fromSource[0].dir", "spec.presets[0]", "spec.device.matchDevice[0]", "spec.apparmor"}},
		{None, []string{"spec", "spec.process.matchPaths[0].allowedArgs", "spec.network.matchDNSQueries[0]",
			"spec.capabilities.matchCapabilities[0]", "spec.presets[0]", "spec.device.matchDevice[0]", "spec.apparmor"}},
		{"unknown", nil},
	} {
		ws := Check(c.backend, &p)
		if got := paths(ws); !slices.Equal(got, c.want) {
			t.Errorf("%s: warnings at\n %q\nwant\n %q", c.backend, got, c.want)
		}
		for _, w := range ws {
			if w.Backend != c.backend || w.Policy != "all" || w.PolicyKind != policy.KindHostPolicy || w.Message == "" || w.What == "" || w.RuleID != -1 {
				t.Errorf("%s: incomplete warning %+v", c.backend, w)
			}
		}
	}
}

// TestCheckContainerPolicy: a host-only backend reports a container policy once, as a whole.
func TestCheckContainerPolicy(t *testing.T) {
	p := everything()
	p.Kind, p.Namespace, p.Devices = policy.KindPolicy, "shop", nil
	ws := Check(SELinux, &p)
	if len(ws) != 1 || ws[0].Rule != "spec" || !strings.Contains(ws[0].Message, "host policies only") {
		t.Fatalf("SELinux on a KubeArmorPolicy: %v", ws)
	}
	if got := ws[0].PolicyKey(); got != "KubeArmorPolicy/shop/all" {
		t.Errorf("PolicyKey = %q", got)
	}
	if len(Check(BPF, &p)) == 0 {
		t.Error("bpf: a container policy's unsupported parts are not reported")
	}
}

// TestCheckSet: a workload's set gives the same warnings as its policies, with the rule IDs and
// the workload filled in; on a container workload a host-only backend reports each policy once.
func TestCheckSet(t *testing.T) {
	p := everything()
	host := workload.Host("node", map[string]string{"a": "b"})
	set, err := rules.Compile([]policy.Policy{p}, host, rules.DefaultPostures())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{BPF, AppArmor, SELinux, None} {
		want := Check(b, &p)
		got := CheckSet(b, set)
		if len(got) != len(want) {
			t.Fatalf("%s: CheckSet %v, Check %v", b, got, want)
		}
		for i := range got {
			w := want[i]
			w.Workload = host.ID()
			if id := got[i].RuleID; id >= 0 {
				if f := set.Rules[id].Field; got[i].Rule != f && !strings.HasPrefix(got[i].Rule, f+".") {
					t.Errorf("%s: rule ID %d is %s, warning at %s", b, id, set.Rules[id].Field, got[i].Rule)
				}
				w.RuleID = id
			}
			if got[i] != w {
				t.Errorf("%s: CheckSet %+v, Check %+v", b, got[i], w)
			}
		}
	}

	ksp := everything()
	ksp.Kind, ksp.Namespace, ksp.Devices = policy.KindPolicy, "shop", nil
	ksp.Selector = policy.Selector{MatchLabels: map[string]string{"app": "web"}}
	pod := workload.Workload{Kind: workload.KindContainer, Namespace: "shop", Pod: "web-1", Container: "c",
		ContainerID: "abc", Labels: map[string]string{"app": "web"}}
	cset, err := rules.Compile([]policy.Policy{ksp}, pod, rules.DefaultPostures())
	if err != nil {
		t.Fatal(err)
	}
	if len(cset.Rules) == 0 {
		t.Fatal("the KubeArmorPolicy does not cover the pod")
	}
	ws := CheckSet(SELinux, cset)
	if len(ws) != 1 || ws[0].Rule != "spec" || ws[0].PolicyKey() != "KubeArmorPolicy/shop/all" || ws[0].Workload != pod.ID() {
		t.Errorf("SELinux on a pod: %+v", ws)
	}
}

func TestWarningString(t *testing.T) {
	p := everything()
	ws := Check(BPF, &p)
	got := ws[len(ws)-3].String()
	want := "policy all: spec.presets[0]: preset protectEnv is not enforced by BPFLSM: presets have no BPF-LSM translation; nothing is enforced for them"
	if got != want {
		t.Errorf("String() = %q\nwant %q", got, want)
	}
	caveat := Warning{Policy: "p", Rule: "spec.file.matchDirectories[0]", Message: "subdirectories created later keep their label"}
	if got := caveat.String(); got != "policy p: spec.file.matchDirectories[0]: subdirectories created later keep their label" {
		t.Errorf("String() = %q", got)
	}
}

// TestCheckAllowList: a file or process Allow rule makes its category an allow-list for every
// executable, which SELinux enforces only on the paths Ward labels; the other backends enforce
// it as Decide does. An Allow rule of another category and a Block rule get no such warning.
func TestCheckAllowList(t *testing.T) {
	p := policy.Policy{Kind: policy.KindHostPolicy, Name: "list", Rules: []policy.Rule{
		{Field: "spec.file.matchDirectories[0]", Operation: policy.OpFile, Match: policy.MatchDirectory, Value: "/srv/data/",
			FromSource: []policy.FromSource{{Path: "/srv/bin/reader"}}, Action: policy.ActionAllow},
		{Field: "spec.process.matchPaths[0]", Operation: policy.OpProcess, Match: policy.MatchPath, Value: "/bin/ls", Action: policy.ActionAllow},
		{Field: "spec.file.matchPaths[0]", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/etc/shadow", Action: policy.ActionBlock},
	}}
	ws := Check(SELinux, &p)
	if got, want := paths(ws), []string{"spec.file.matchDirectories[0]", "spec.process.matchPaths[0]"}; !slices.Equal(got, want) {
		t.Fatalf("SELinux warnings at %q, want %q", got, want)
	}
	for _, w := range ws {
		if w.What != "the allow-list" || !strings.Contains(w.Message, "checks read on the program an exec runs") {
			t.Errorf("warning %+v", w)
		}
	}
	for _, b := range []string{BPF, AppArmor} {
		if ws := Check(b, &p); len(ws) != 0 {
			t.Errorf("%s: %v", b, ws)
		}
	}
}
