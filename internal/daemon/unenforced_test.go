package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
)

func presetPolicyFile(name, app string, preset bool) string {
	p := fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: %s, namespace: shop}
spec:
  selector: {matchLabels: {app: %s}}
  file:
    matchPaths:
    - path: /secret
  network:
    matchDNSQueries:
    - domain: example.com
  action: Block
`, name, app)
	if preset {
		p += "  presets:\n  - name: protectEnv\n"
	}
	return p
}

// notEnforcedGauge reads ward_rules_not_enforced for one enforcer from the daemon's registry.
func notEnforcedGauge(t *testing.T, d *Daemon, enforcerName string) float64 {
	t.Helper()
	for _, m := range metricFamily(t, d, "ward_rules_not_enforced").GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "enforcer" && l.GetValue() == enforcerName {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func rulesOf(ws []enforcer.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.PolicyKey()+" "+w.Rule)
	}
	return out
}

// startPresetContainers starts a daemon (a BPF-LSM stand-in changing one workload at a time)
// whose policy pa, with a preset and a DNS rule, covers the containers ids, and waits until they
// are in force. It returns the policy directory.
func startPresetContainers(t *testing.T, ids ...string) (*Daemon, *syncWriter, string) {
	t.Helper()
	dir := t.TempDir()
	writePolicy(t, dir, "a.yaml", presetPolicyFile("pa", "a", true))
	d, logs := startWith(t, dir, newWorkloadBackend())
	for _, id := range ids {
		d.Workloads().Upsert(shopContainer(id, "a"))
	}
	waitUntil(t, logs, "the containers in force", func() bool {
		for _, id := range ids {
			if !blocks(d, id, "/secret") {
				return false
			}
		}
		return true
	})
	return d, logs, dir
}

// What the backend does not enforce (here BPF-LSM: presets and DNS rules, from the support
// table) is logged once per policy and field path, whatever the number of workloads and
// reconcile rounds, kept in Unenforced and counted by ward_rules_not_enforced.
func TestUnenforcedReported(t *testing.T) {
	d, logs, dir := startPresetContainers(t, "ca", "cb")
	want := "[KubeArmorPolicy/shop/pa spec.network.matchDNSQueries[0] KubeArmorPolicy/shop/pa spec.presets[0]]"
	waitUntil(t, logs, "two warnings", func() bool { return fmt.Sprint(rulesOf(d.Unenforced())) == want })

	// Another round (a new policy for another container) logs nothing again.
	writePolicy(t, dir, "b.yaml", containerPolicyFile("pb", "b", "/b1"))
	d.Workloads().Upsert(shopContainer("cc", "b"))
	waitUntil(t, logs, "cc in force", func() bool { return blocks(d, "cc", "/b1") })
	if n := strings.Count(logs.String(), `msg="not enforced as written"`); n != 2 {
		t.Errorf("%d warnings logged for two workloads and two rounds, want 2 (one per policy and field path); log:\n%s", n, logs.String())
	}
	for _, rule := range []string{"spec.presets[0]", "spec.network.matchDNSQueries[0]"} {
		if !strings.Contains(logs.String(), "rule="+rule) {
			t.Errorf("no warning logged for %s", rule)
		}
	}
	if g := notEnforcedGauge(t, d, enforcer.BPF); g != 2 {
		t.Errorf("ward_rules_not_enforced{enforcer=bpf} = %v, want 2", g)
	}

	// The preset goes: so does its warning, from Unenforced and from the count.
	writePolicy(t, dir, "a.yaml", presetPolicyFile("pa", "a", false))
	waitUntil(t, logs, "one warning left", func() bool {
		return fmt.Sprint(rulesOf(d.Unenforced())) == "[KubeArmorPolicy/shop/pa spec.network.matchDNSQueries[0]]"
	})
	if g := notEnforcedGauge(t, d, enforcer.BPF); g != 1 {
		t.Errorf("ward_rules_not_enforced{enforcer=bpf} = %v, want 1", g)
	}
}

// A full resync recompiles every workload: the warnings of a workload that keeps them are not
// logged again, nor counted twice.
func TestUnenforcedNotRelogged(t *testing.T) {
	d, logs, _ := startPresetContainers(t, "ca")
	before := d.Sets()["ca"]

	d.rounds.Add(fullRound)
	waitUntil(t, logs, "ca's set compiled again", func() bool { return d.Sets()["ca"] != before })
	if got := rulesOf(d.Unenforced()); len(got) != 2 {
		t.Errorf("after the full resync Unenforced = %q, want the two warnings", got)
	}
	if n := strings.Count(logs.String(), `msg="not enforced as written"`); n != 2 {
		t.Errorf("%d warnings logged, want 2 (the full resync logs none again); log:\n%s", n, logs.String())
	}
	if g := notEnforcedGauge(t, d, enforcer.BPF); g != 2 {
		t.Errorf("ward_rules_not_enforced{enforcer=bpf} = %v, want 2", g)
	}
}

// status.status names what this node's enforcer does not enforce, keeps what other nodes wrote
// for theirs, and is stable when read back, so that nodes never overwrite each other in turn.
func TestStatusWith(t *testing.T) {
	bpf := []enforcer.Warning{{Backend: enforcer.BPF, Rule: "spec.presets[0]"}, {Backend: enforcer.BPF, Rule: "spec.presets[0]"},
		{Backend: enforcer.BPF, Rule: "spec.network.matchDNSQueries[0]"}}
	aa := []enforcer.Warning{{Backend: enforcer.AppArmor, Rule: "spec.presets[0]"}}
	for _, c := range []struct {
		old, backend string
		ws           []enforcer.Warning
		want         string
	}{
		{"", enforcer.BPF, nil, "Applied"},
		{"", enforcer.BPF, bpf, "Applied; not enforced by BPFLSM: spec.presets[0], spec.network.matchDNSQueries[0]"},
		{"Applied; not enforced by BPFLSM: spec.presets[0], spec.network.matchDNSQueries[0]", enforcer.AppArmor, aa,
			"Applied; not enforced by AppArmor: spec.presets[0]; not enforced by BPFLSM: spec.presets[0], spec.network.matchDNSQueries[0]"},
		{"Applied; not enforced by AppArmor: spec.presets[0]; not enforced by BPFLSM: spec.presets[0], spec.network.matchDNSQueries[0]", enforcer.BPF, bpf,
			"Applied; not enforced by AppArmor: spec.presets[0]; not enforced by BPFLSM: spec.presets[0], spec.network.matchDNSQueries[0]"},
		{"Applied; not enforced by AppArmor: spec.presets[0]; not enforced by BPFLSM: spec.presets[0]", enforcer.BPF, nil,
			"Applied; not enforced by AppArmor: spec.presets[0]"},
		{`spec.file.matchPatterns[0].pattern: "/etc/[a" is not a valid pattern`, enforcer.BPF, nil, "Applied"},
	} {
		got := statusWith(c.old, c.backend, c.ws)
		if got != c.want {
			t.Errorf("statusWith(%q, %s) = %q\nwant %q", c.old, c.backend, got, c.want)
		}
		if again := statusWith(got, c.backend, c.ws); again != got {
			t.Errorf("read back, the status changes again: %q -> %q", got, again)
		}
	}
}
