package policy

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// ruleLine summarises a rule on one line so that a table can state the whole output.
func ruleLine(r Rule) string {
	s := fmt.Sprintf("%s:%d %s %s %s", r.Field, r.Line, r.Operation, r.Match, r.Value)
	if len(r.Syscalls) > 0 {
		s += " syscalls=" + strings.Join(r.Syscalls, ",")
	}
	if r.Recursive {
		s += " recursive"
	}
	for _, f := range r.FromSource {
		s += " from=" + f.Path + f.Dir
	}
	s += fmt.Sprintf(" %s sev=%d", r.Action, r.Severity)
	if len(r.Tags) > 0 {
		s += " tags=" + strings.Join(r.Tags, ",")
	}
	if r.Message != "" {
		s += " msg=" + r.Message
	}
	return s
}

var normaliseCases = []struct {
	name, in string
	rules    []string
	warnings []string
	check    func(t *testing.T, p Policy)
}{
	{name: "action defaults to Block", in: ksp(fileRule...),
		rules: []string{"spec.file.matchPaths[0]:8 File path /etc/passwd Block sev=0"}},
	{name: "action is case-insensitive at every level",
		in: ksp("  action: audit", "  file:", "    action: ALLOW", "    matchPaths:", "    - path: /a", "      action: bLoCk", "    - path: /b", "  process:", "    matchPaths:", "    - path: /c"),
		rules: []string{
			"spec.process.matchPaths[0]:15 Process path /c Audit sev=0",
			"spec.file.matchPaths[0]:10 File path /a Block sev=0",
			"spec.file.matchPaths[1]:12 File path /b Allow sev=0",
		}},
	{name: "inheritance item > section > spec",
		in: ksp("  severity: 1", "  tags: [s]", "  message: spec", "  file:", "    severity: 2", "    tags: [f]", "    matchPaths:",
			"    - path: /a", "      severity: 3", "      message: item", "    - path: /b", "  network:", "    matchProtocols:", "    - protocol: tcp"),
		rules: []string{
			"spec.file.matchPaths[0]:13 File path /a Block sev=3 tags=f msg=item",
			"spec.file.matchPaths[1]:16 File path /b Block sev=2 tags=f msg=spec",
			"spec.network.matchProtocols[0]:19 Network protocol tcp Block sev=1 tags=s msg=spec",
		}},
	{name: "comma lists split, spaces dropped, names lower-cased",
		in: ksp("  network:", "    matchProtocols:", "    - protocol: 'TCP , udp,ICMPv6'", "    matchDNSQueries:", "    - domain: ' a.com,b.org '",
			"  capabilities:", "    matchCapabilities:", "    - capability: NET_RAW,cap_sys_admin, perfmon"),
		rules: []string{
			"spec.network.matchProtocols[0]:8 Network protocol tcp Block sev=0",
			"spec.network.matchProtocols[0]:8 Network protocol udp Block sev=0",
			"spec.network.matchProtocols[0]:8 Network protocol icmpv6 Block sev=0",
			"spec.network.matchDNSQueries[0]:10 Network dns a.com Block sev=0",
			"spec.network.matchDNSQueries[0]:10 Network dns b.org Block sev=0",
			"spec.capabilities.matchCapabilities[0]:13 Capabilities capability net_raw Block sev=0",
			"spec.capabilities.matchCapabilities[0]:13 Capabilities capability sys_admin Block sev=0",
			"spec.capabilities.matchCapabilities[0]:13 Capabilities capability perfmon Block sev=0",
		},
		warnings: []string{
			`t.yaml:13: doc 1: spec.capabilities.matchCapabilities[0].capability: warning: "NET_RAW" read as "net_raw": KubeArmor's CRD accepts only lower-case names without "cap_"`,
			`t.yaml:13: doc 1: spec.capabilities.matchCapabilities[0].capability: warning: "cap_sys_admin" read as "sys_admin": KubeArmor's CRD accepts only lower-case names without "cap_"`,
		}},
	{name: "newer capabilities", in: ksp("  capabilities:", "    matchCapabilities:", "    - capability: bpf,checkpoint_restore,syslog,wake_alarm,block_suspend,audit_read"),
		rules: []string{
			"spec.capabilities.matchCapabilities[0]:8 Capabilities capability bpf Block sev=0",
			"spec.capabilities.matchCapabilities[0]:8 Capabilities capability checkpoint_restore Block sev=0",
			"spec.capabilities.matchCapabilities[0]:8 Capabilities capability syslog Block sev=0",
			"spec.capabilities.matchCapabilities[0]:8 Capabilities capability wake_alarm Block sev=0",
			"spec.capabilities.matchCapabilities[0]:8 Capabilities capability block_suspend Block sev=0",
			"spec.capabilities.matchCapabilities[0]:8 Capabilities capability audit_read Block sev=0",
		}},
	{name: "syscall rules always audit",
		in: ksp("  action: Block", "  severity: 4", "  syscalls:", "    tags: [sys]", "    matchSyscalls:", "    - syscall: [unlink]", "      fromSource:", "      - dir: /bin/",
			"        recursive: true", "    matchPaths:", "    - path: /etc/shadow", "      syscall: [openat]", "    - path: /tmp/", "      recursive: true", "      syscall: [rmdir]", "      severity: 7"),
		rules: []string{
			"spec.syscalls.matchSyscalls[0]:11 Syscall syscall  syscalls=unlink from=/bin/ Audit sev=4 tags=sys",
			"spec.syscalls.matchPaths[0]:16 Syscall path /etc/shadow syscalls=openat Audit sev=4 tags=sys",
			"spec.syscalls.matchPaths[1]:18 Syscall directory /tmp/ syscalls=rmdir recursive Audit sev=7 tags=sys",
		}},
	{name: "rule order", in: ksp("  syscalls:", "    matchPaths:", "    - path: /x", "      syscall: [open]", "    matchSyscalls:", "    - syscall: [open]",
		"  capabilities:", "    matchCapabilities:", "    - capability: kill", "  network:", "    matchDNSQueries:", "    - domain: a.b", "    matchProtocols:", "    - protocol: udp",
		"  file:", "    matchPatterns:", "    - pattern: /f*", "    matchDirectories:", "    - dir: /d/", "    matchPaths:", "    - path: /p",
		"  process:", "    matchPatterns:", "    - pattern: /f*", "    matchDirectories:", "    - dir: /d/", "    matchPaths:", "    - execname: sh"),
		rules: []string{
			"spec.process.matchPaths[0]:33 Process execname sh Block sev=0",
			"spec.process.matchDirectories[0]:31 Process directory /d/ Block sev=0",
			"spec.process.matchPatterns[0]:29 Process pattern /f* Block sev=0",
			"spec.file.matchPaths[0]:26 File path /p Block sev=0",
			"spec.file.matchDirectories[0]:24 File directory /d/ Block sev=0",
			"spec.file.matchPatterns[0]:22 File pattern /f* Block sev=0",
			"spec.network.matchProtocols[0]:19 Network protocol udp Block sev=0",
			"spec.network.matchDNSQueries[0]:17 Network dns a.b Block sev=0",
			"spec.capabilities.matchCapabilities[0]:14 Capabilities capability kill Block sev=0",
			"spec.syscalls.matchSyscalls[0]:11 Syscall syscall  syscalls=open Audit sev=0",
			"spec.syscalls.matchPaths[0]:8 Syscall path /x syscalls=open Audit sev=0",
		}},
	{name: "container names leave matchLabels",
		in:    ksp(with([]string{"  selector:", "    matchLabels:", "      app: web", `      kubearmor.io/container.name: "[nginx, envoy]"`}, fileRule...)...),
		rules: []string{"spec.file.matchPaths[0]:12 File path /etc/passwd Block sev=0"},
		check: func(t *testing.T, p Policy) {
			if got := fmt.Sprintf("%v %v %s", p.Selector.MatchLabels, p.Selector.Containers, p.Namespace); got != "map[app:web] [nginx envoy] container_namespace" {
				t.Errorf("selector, namespace = %s", got)
			}
		}},
	// A key with no value is absent (public KubeArmor templates write "severity:" alone).
	{name: "null severity is inherited",
		in:    ksp("  severity: 4", "  file:", "    severity:", "    matchPaths:", "    - path: /etc/passwd", "      severity:", "      action:"),
		rules: []string{"spec.file.matchPaths[0]:10 File path /etc/passwd Block sev=4"},
		warnings: []string{`t.yaml:8: doc 1: spec.file.severity: warning: no value: treated as not set (inherited or defaulted); remove the key or give it a value`,
			`t.yaml:11: doc 1: spec.file.matchPaths[0].severity: warning: no value: treated as not set (inherited or defaulted); remove the key or give it a value`,
			`t.yaml:12: doc 1: spec.file.matchPaths[0].action: warning: no value: treated as not set (inherited or defaulted); remove the key or give it a value`}},
	// KubeArmor's multicontainer e2e tests: "" and "[]" mean every container of the pod.
	{name: "container name empty list",
		in:    ksp(with([]string{"  selector:", "    matchLabels:", "      app: web", `      kubearmor.io/container.name: "[]"`}, fileRule...)...),
		rules: []string{"spec.file.matchPaths[0]:12 File path /etc/passwd Block sev=0"},
		check: func(t *testing.T, p Policy) {
			if got := fmt.Sprintf("%v %d", p.Selector.MatchLabels, len(p.Selector.Containers)); got != "map[app:web] 0" {
				t.Errorf("selector = %s", got)
			}
		}},
	{name: "container name empty string",
		in:    ksp(with([]string{"  selector:", "    matchLabels:", `      kubearmor.io/container.name: ""`}, fileRule...)...),
		rules: []string{"spec.file.matchPaths[0]:11 File path /etc/passwd Block sev=0"},
		check: func(t *testing.T, p Policy) {
			if got := fmt.Sprintf("%v %d", p.Selector.MatchLabels, len(p.Selector.Containers)); got != "map[] 0" {
				t.Errorf("selector = %s", got)
			}
		}},
	{name: "host node labels", in: hsp(fileRule...),
		rules: []string{"spec.file.matchPaths[0]:11 File path /etc/passwd Block sev=0"},
		check: func(t *testing.T, p Policy) {
			if got := fmt.Sprint(p.Selector.NodeLabels, p.Namespace == ""); got != "map[kubernetes.io/hostname:node1] true" {
				t.Errorf("node labels = %s", got)
			}
		}},
	// KubeArmor's own tests write dir: /usr/bin and syscalls fromSource dir: /bin.
	{name: "dir without trailing slash",
		in: hsp("  process:", "    matchDirectories:", "    - dir: /usr/bin", "      recursive: true",
			"  file:", "    matchDirectories:", "    - dir: /etc/ssl",
			"  syscalls:", "    matchSyscalls:", "    - syscall: [unlink]", "      fromSource:", "      - dir: /bin"),
		rules: []string{"spec.process.matchDirectories[0]:11 Process directory /usr/bin/ recursive Block sev=0",
			"spec.file.matchDirectories[0]:15 File directory /etc/ssl/ Block sev=0",
			"spec.syscalls.matchSyscalls[0]:18 Syscall syscall  syscalls=unlink from=/bin/ Audit sev=0"},
		warnings: []string{`t.yaml:11: doc 1: spec.process.matchDirectories[0].dir: warning: "/usr/bin" is read as the directory "/usr/bin/": end a directory with "/" (KubeArmor's CRD requires it here: a KubeArmor API server refuses the value without it)`,
			`t.yaml:15: doc 1: spec.file.matchDirectories[0].dir: warning: "/etc/ssl" is read as the directory "/etc/ssl/": end a directory with "/" (KubeArmor's CRD requires it here: a KubeArmor API server refuses the value without it)`,
			`t.yaml:20: doc 1: spec.syscalls.matchSyscalls[0].fromSource[0].dir: warning: "/bin" is read as the directory "/bin/": end a directory with "/" (so that it cannot be mistaken for a file)`}},
	// KubeArmor's e2e ksp-ubuntu-1-block-net-af-rds.yaml: an address family, matched against the
	// socket's domain; AF_LOCAL is unix.
	{name: "address family protocols",
		in: hsp("  network:", "    matchProtocols:", "    - protocol: AF_RDS", "    - protocol: af_local,TCP"),
		rules: []string{"spec.network.matchProtocols[0]:11 Network protocol af_rds Block sev=0",
			"spec.network.matchProtocols[1]:12 Network protocol af_unix Block sev=0",
			"spec.network.matchProtocols[1]:12 Network protocol tcp Block sev=0"}},
	// KubeArmor's hsp-audit-network-protocol.yaml: fromSource is optional in host policies too.
	{name: "host network and capability rules without fromSource",
		in: hsp("  network:", "    matchProtocols:", "    - protocol: icmp", "  capabilities:", "    matchCapabilities:", "    - capability: net_raw", "  action: Audit"),
		rules: []string{"spec.network.matchProtocols[0]:11 Network protocol icmp Audit sev=0",
			"spec.capabilities.matchCapabilities[0]:14 Capabilities capability net_raw Audit sev=0"}},
	{name: "presets inherit the spec action", in: ksp("  action: Audit", "  presets:", "  - name: exec", "  - name: anonymousMapExec", "    action: block"),
		check: func(t *testing.T, p Policy) {
			if got := fmt.Sprint(p.Presets); got != "[{exec Audit} {anonymousMapExec Block}]" {
				t.Errorf("presets = %s", got)
			}
		}},
	{name: "device rules", in: hsp("  device:", "    action: Audit", "    matchDevice:", "    - class: mass-storage", "    - class: \"8\"", "      action: Allow"),
		check: func(t *testing.T, p Policy) {
			var got []string
			for _, d := range p.Devices {
				got = append(got, d.Field+" "+d.Class+" "+string(d.Action))
			}
			if s := strings.Join(got, "; "); s != "spec.device.matchDevice[0] MASS-STORAGE Audit; spec.device.matchDevice[1] MASS-STORAGE Allow" {
				t.Errorf("devices = %s", s)
			}
		}},
	{name: "apparmor only", in: ksp("  apparmor: |", "    deny /x r,"),
		check: func(t *testing.T, p Policy) {
			if p.AppArmor != "deny /x r,\n" {
				t.Errorf("apparmor = %q", p.AppArmor)
			}
		}},
	{name: "cluster-scoped namespace ignored", in: strings.Replace(csp(fileRule...), "name: t", "name: t\n  namespace: x", 1),
		rules:    []string{"spec.file.matchPaths[0]:9 File path /etc/passwd Block sev=0"},
		warnings: []string{"t.yaml:5: doc 1: metadata.namespace: warning: ignored: KubeArmorClusterPolicy is cluster-scoped"}},
	{name: "recursive on a syscall file path", in: ksp("  syscalls:", "    matchPaths:", "    - path: /etc/x", "      recursive: true", "      syscall: [open]"),
		rules:    []string{"spec.syscalls.matchPaths[0]:8 Syscall path /etc/x syscalls=open Audit sev=0"},
		warnings: []string{`t.yaml:9: doc 1: spec.syscalls.matchPaths[0].recursive: warning: ignored: "/etc/x" is a file; end it with "/" to mean a directory`}},
	{name: "anchors and aliases", in: ksp("  file:", "    matchPaths:", "    - &p", "      path: /a", "      readOnly: true", "    - *p"),
		rules: []string{"spec.file.matchPaths[0]:8 File path /a Block sev=0", "spec.file.matchPaths[1]:11 File path /a Block sev=0"}},
	{name: "kubectl output", in: strings.Replace(ksp(fileRule...), "name: t", "name: t\n  uid: 0b1c\n  generation: 2\n  creationTimestamp: \"2024-01-02T03:04:05Z\"\n  annotations: {a: b}", 1) + "status:\n  status: OK\n",
		rules: []string{"spec.file.matchPaths[0]:12 File path /etc/passwd Block sev=0"}},
}

func TestNormalise(t *testing.T) {
	for _, tc := range normaliseCases {
		t.Run(tc.name, func(t *testing.T) {
			ps, ws, err := Parse("t.yaml", []byte(tc.in))
			if err != nil {
				t.Fatalf("%v\ninput:\n%s", err, numbered(tc.in))
			}
			if len(ps) != 1 {
				t.Fatalf("%d policies, want 1", len(ps))
			}
			if tc.rules != nil || len(ps[0].Rules) > 0 {
				var got []string
				for _, r := range ps[0].Rules {
					got = append(got, ruleLine(r))
				}
				if g, w := strings.Join(got, "\n"), strings.Join(tc.rules, "\n"); g != w {
					t.Errorf("rules:\n%s\nwant:\n%s\ninput:\n%s", g, w, numbered(tc.in))
				}
			}
			var gotW []string
			for _, w := range ws {
				gotW = append(gotW, w.String())
			}
			if g, w := strings.Join(gotW, "\n"), strings.Join(tc.warnings, "\n"); g != w {
				t.Errorf("warnings:\n%s\nwant:\n%s", g, w)
			}
			if tc.check != nil {
				tc.check(t, ps[0])
			}
		})
	}
}

// TestGolden pins the whole normalised form of a file using every section of every kind.
func TestGolden(t *testing.T) {
	const in, golden = "testdata/valid-all.yaml", "testdata/valid-all.golden.json"
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := Parse(in, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("normalised form differs from %s; run go test -update and review the diff", golden)
	}
}

func TestParseObject(t *testing.T) {
	// karmor's PolicyService payload object: metadata and spec only.
	obj := `{"metadata":{"name":"hsp"},"spec":{"nodeSelector":{"matchLabels":{"a":"b"}},"file":{"matchPaths":[{"path":"/x"}]}}}`
	p, _, err := ParseObjectKind("grpc", []byte(obj), KindHostPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindHostPolicy || p.Name != "hsp" || len(p.Rules) != 1 {
		t.Errorf("got %+v", p)
	}
	if _, _, err := ParseObject("grpc", []byte(obj)); err == nil || err.Error() != "grpc:1: doc 1: apiVersion: required: must be security.kubearmor.com/v1\ngrpc:1: doc 1: kind: required: must be one of KubeArmorPolicy, KubeArmorClusterPolicy, KubeArmorHostPolicy" {
		t.Errorf("ParseObject without kind: %v", err)
	}
	two := ksp(fileRule...) + "---\n" + strings.Replace(ksp(fileRule...), "name: t", "name: u", 1)
	if _, _, err := ParseObject("grpc", []byte(two)); err == nil || err.Error() != "grpc: expected one policy object, got 2" {
		t.Errorf("ParseObject with two documents: %v", err)
	}
	if _, _, err := ParseObjectKind("grpc", []byte(ksp(fileRule...)), KindHostPolicy); err == nil ||
		err.Error() != "grpc:2: doc 1: kind: KubeArmorPolicy where a KubeArmorHostPolicy was expected" {
		t.Errorf("ParseObjectKind with another kind: %v", err)
	}
}

func TestJSONFile(t *testing.T) {
	const in = "testdata/hsp.json"
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := Parse(in, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Selector.NodeLabels["kubernetes.io/hostname"] != "*" || len(ps[0].Rules) != 1 ||
		ruleLine(ps[0].Rules[0]) != "spec.process.matchPaths[0]:7 Process path /usr/bin/nc Block sev=0 msg=tabs and \\/ escapes are JSON, not YAML" {
		t.Errorf("got %+v", ps)
	}
}

// TestInvalidFile pins every error reported for a file with many problems.
func TestInvalidFile(t *testing.T) {
	const in, golden = "testdata/invalid.yaml", "testdata/invalid.errors"
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Parse(in, data)
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error() + "\n"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
