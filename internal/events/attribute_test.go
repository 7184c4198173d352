package events

import (
	"bytes"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

type alertSink struct{ alerts []*feeder.Alert }

func (s *alertSink) WriteAlert(a *feeder.Alert) error   { s.alerts = append(s.alerts, a); return nil }
func (s *alertSink) WriteLog(*feeder.Log) error         { return nil }
func (s *alertSink) WriteMessage(*feeder.Message) error { return nil }

const shadowPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: shadow
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: node1
  file:
    matchPaths:
    - path: /etc/shadow
  action: Block
`

// A workload whose set the backend has not taken (its first apply is running, or was refused)
// is known through Wanted: the kernel's denials are attributed to the policy, what the monitor
// saw is an "Audit (Block)" that passed, and only a workload that neither map holds is said to
// be unknown, once: not the host, which has no set only before the daemon's first round.
func TestAttributorSetNotInForce(t *testing.T) {
	ps, _, err := policy.Parse("shadow.yaml", []byte(shadowPolicy))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(ps, workload.Host("node1", map[string]string{"kubernetes.io/hostname": "node1"}), rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	sink := &alertSink{}
	a := &Attributor{
		InForce:   func(string) *rules.Set { return nil },
		Wanted:    func(id string) *rules.Set { return map[string]*rules.Set{"host": set}[id] },
		Builder:   testBuilder(),
		Sinks:     []Sink{sink},
		Log:       slog.New(slog.NewTextHandler(&logs, nil)),
		Enforcing: true,
	}
	shadow := rules.Access{Op: policy.OpFile, Path: "/etc/shadow", Source: "/usr/bin/cat"}
	a.ReportObserved(enforcer.Event{Backend: "monitor", Workload: "gone", Access: shadow})
	a.ReportObserved(enforcer.Event{Backend: "monitor", Workload: "gone", Access: shadow})
	a.ReportObserved(enforcer.Event{Backend: "monitor", PID: 7, Access: shadow})
	// Before the daemon's first round the host has no set either: dropped, and not a stranger.
	wanted := a.Wanted
	a.Wanted = func(string) *rules.Set { return nil }
	a.ReportObserved(enforcer.Event{Backend: "monitor", PID: 6, Access: shadow})
	a.Wanted = wanted
	a.Report(enforcer.Event{Backend: enforcer.BPF, PID: 8, Errno: int(syscall.EPERM), Access: shadow})
	if len(sink.alerts) != 2 {
		t.Fatalf("%d alerts, want 2: %v\n%s", len(sink.alerts), sink.alerts, logs.String())
	}
	if got := sink.alerts[0]; got.Action != "Audit (Block)" || got.Result != "Passed" || got.PolicyName != "shadow" {
		t.Errorf("observed access while the set is not in force: %v", got)
	}
	if got := sink.alerts[1]; got.Action != "Block" || got.PolicyName != "shadow" {
		t.Errorf("kernel denial while the set is not in force: %v", got)
	}
	if n := strings.Count(logs.String(), "unknown workload"); n != 1 {
		t.Errorf("%d unknown-workload warnings, want 1 (for gone, once)\n%s", n, logs.String())
	}
}

// An event whose access names no program (AppArmor's, outside a fromSource child profile)
// carries the executable the backend read from /proc: the alert's Source and ProcessName are
// that, and rules.Decide still sees the access as it was.
func TestAttributorExe(t *testing.T) {
	ps, _, err := policy.Parse("shadow.yaml", []byte(shadowPolicy))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(ps, workload.Host("node1", map[string]string{"kubernetes.io/hostname": "node1"}), rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &alertSink{}
	a := &Attributor{
		InForce:   func(id string) *rules.Set { return map[string]*rules.Set{"host": set}[id] },
		Builder:   testBuilder(),
		Sinks:     []Sink{sink},
		Log:       slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Enforcing: true,
	}
	a.Report(enforcer.Event{Backend: enforcer.AppArmor, PID: 8, PPID: 7, Errno: int(syscall.EACCES), Exe: "/usr/bin/cat",
		Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}})
	if len(sink.alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(sink.alerts))
	}
	if got := sink.alerts[0]; got.Source != "/usr/bin/cat" || got.ProcessName != "/usr/bin/cat" || got.HostPPID != 7 || got.PolicyName != "shadow" {
		t.Errorf("alert Source %q ProcessName %q HostPPID %d policy %q, want /usr/bin/cat, /usr/bin/cat, 7, shadow", got.Source, got.ProcessName, got.HostPPID, got.PolicyName)
	}
}

// While a workload's rules change, the set in force may not be the one the kernel used: the event
// is attributed with the set being applied or the one replaced when that one explains what the
// kernel did (a denial by a Block, a passed access by an Audit), and with the set in force
// otherwise.
func TestAttributorTransitionalSets(t *testing.T) {
	host := workload.Host("node1", map[string]string{"kubernetes.io/hostname": "node1"})
	compile := func(action string) *rules.Set {
		t.Helper()
		if action == "" {
			s, err := rules.Compile(nil, host, rules.Postures{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		ps, _, err := policy.Parse("shadow.yaml", []byte(strings.Replace(shadowPolicy, "action: Block", "action: "+action, 1)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := rules.Compile(ps, host, rules.Postures{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none, audit, block := compile(""), compile("Audit"), compile("Block")
	for _, c := range []struct {
		name                      string
		inForce, wanted, replaced *rules.Set
		errno                     syscall.Errno
		action, policy            string
	}{
		{"denial by the rules being applied", none, block, nil, syscall.EACCES, "Block", "shadow"},
		{"denial by the rules being applied over an Audit", audit, block, nil, syscall.EACCES, "Block", "shadow"},
		{"late denial by the replaced rules", none, none, block, syscall.EACCES, "Block", "shadow"},
		{"late audit by the replaced rules", block, block, audit, 0, "Audit", "shadow"},
		{"the set in force explains it", block, audit, audit, syscall.EACCES, "Block", "shadow"},
		{"no set explains it", none, none, none, syscall.EACCES, "Allow", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &alertSink{}
			a := &Attributor{
				InForce:  func(id string) *rules.Set { return map[string]*rules.Set{"host": c.inForce}[id] },
				Wanted:   func(id string) *rules.Set { return map[string]*rules.Set{"host": c.wanted}[id] },
				Replaced: func(string) *rules.Set { return c.replaced },
				Builder:  testBuilder(),
				Sinks:    []Sink{sink},
				Log:      slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
			}
			a.Report(enforcer.Event{Backend: enforcer.AppArmor, PID: 8, Errno: int(c.errno), Exe: "/usr/bin/cat",
				Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}})
			if len(sink.alerts) != 1 {
				t.Fatalf("%d alerts, want 1", len(sink.alerts))
			}
			if got := sink.alerts[0]; got.Action != c.action || got.PolicyName != c.policy {
				t.Errorf("action %q policy %q, want %q %q", got.Action, got.PolicyName, c.action, c.policy)
			}
		})
	}
}

// A denial the backend made because it could not resolve the path (fail closed) is a Block
// that no policy decided: the alert says Block, names no policy and says why, and nothing is
// logged as a denial no policy explains. In audited mode the access passed and the alert says
// "Audit (Block)". In a workload with no Block rule the same event is a denial no policy
// explains.
func TestAttributorFailClosed(t *testing.T) {
	ps, _, err := policy.Parse("shadow.yaml", []byte(shadowPolicy))
	if err != nil {
		t.Fatal(err)
	}
	host := workload.Host("node1", map[string]string{"kubernetes.io/hostname": "node1"})
	set, err := rules.Compile(ps, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := rules.Compile(nil, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	sink := &alertSink{}
	inForce := set
	a := &Attributor{
		InForce:   func(string) *rules.Set { return inForce },
		Builder:   testBuilder(),
		Sinks:     []Sink{sink},
		Log:       slog.New(slog.NewTextHandler(&logs, nil)),
		Enforcing: true,
	}
	ev := enforcer.Event{Backend: enforcer.BPF, PID: 8, Errno: int(syscall.EPERM), FailClosed: true,
		Access: rules.Access{Op: policy.OpFile, Source: "/usr/bin/cat"}, Detail: "unresolved path (d_path: -2): denied, fail closed"}
	a.Report(ev)
	if len(sink.alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(sink.alerts))
	}
	if got := sink.alerts[0]; got.Action != "Block" || got.PolicyName != "" || got.Message != rules.UnresolvedMessage || got.Result != "Permission denied" && got.Result != "Operation not permitted" {
		t.Errorf("fail-closed denial: Action %q PolicyName %q Message %q Result %q, want Block, none, %q, a denial",
			got.Action, got.PolicyName, got.Message, got.Result, rules.UnresolvedMessage)
	}
	if strings.Contains(logs.String(), "no policy explains") {
		t.Errorf("a fail-closed denial was logged as unexplained:\n%s", logs.String())
	}
	// In audited mode the access passed (errno 0): the alert says it would have been blocked.
	audited, err := rules.Compile(ps, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	audited.Workload.Mode = workload.ModeAudited
	inForce = audited
	passed := ev
	passed.Errno = 0
	a.Report(passed)
	if got := sink.alerts[len(sink.alerts)-1]; len(sink.alerts) != 2 || got.Action != "Audit (Block)" || got.Result != "Passed" || got.Message != rules.UnresolvedMessage {
		t.Errorf("fail closed in audited mode: %d alerts, the last %v, want an Audit (Block) that passed", len(sink.alerts), got)
	}
	inForce = empty
	a.Report(ev)
	if !strings.Contains(logs.String(), "no policy explains") {
		t.Errorf("a fail-closed denial in a workload with no Block rule was not reported:\n%s", logs.String())
	}
}
