package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func runWard(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	var ee exitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ee):
		code = ee.code
	default:
		errb.WriteString(err.Error())
		code = 2
	}
	return out.String(), errb.String(), code
}

func TestSimulateVerdict(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want map[string]any
	}{
		{"host block", []string{"--policies", "../../examples/host", "--host", "--hostname", "n1", "--op", "file", "--path", "/etc/shadow"},
			map[string]any{"action": "Block", "policy": "hsp-protect-secrets", "rule": "spec.file.matchPaths[0]", "posture": false, "severity": 8.0, "message": "access to host secrets"}},
		{"host readOnly dir permits reads", []string{"--policies", "../../examples/host", "--host", "--hostname", "n1", "--op", "file", "--path", "/etc/ssh/sshd_config"},
			map[string]any{"action": "Allow", "policy": "", "posture": false}},
		{"host readOnly dir blocks writes", []string{"--policies", "../../examples/host", "--host", "--hostname", "n1", "--op", "file", "--path", "/etc/ssh/sshd_config", "--write"},
			map[string]any{"action": "Block", "policy": "hsp-protect-secrets", "rule": "spec.file.matchDirectories[0]"}},
		{"container posture", []string{"--policies", "../../examples/containers", "--namespace", "web", "--labels", "app=nginx", "--op", "file", "--path", "/etc/passwd", "--write", "--posture", "file=block"},
			map[string]any{"action": "Block", "policy": "DefaultPosture", "rule": "", "posture": true}},
		{"container other namespace is not covered", []string{"--policies", "../../examples/containers", "--namespace", "db", "--labels", "app=nginx", "--op", "process", "--path", "/usr/bin/curl"},
			map[string]any{"action": "Allow", "policy": ""}},
		{"execname", []string{"--policies", "../../examples/containers", "--namespace", "web", "--labels", "app=nginx", "--op", "process", "--path", "/opt/bin/nc", "--source", "/bin/sh"},
			map[string]any{"action": "Block", "policy": "ksp-nginx-no-shells"}},
		{"capability comma list", []string{"--policies", "../../examples/containers", "--namespace", "db", "--op", "capabilities", "--capability", "CAP_SYS_PTRACE"},
			map[string]any{"action": "Block", "policy": "csp-no-module-load"}},
		{"network fromSource", []string{"--policies", "../../examples/host", "--host", "--hostname", "n1", "--op", "network", "--protocol", "raw", "--source", "/usr/bin/nc"},
			map[string]any{"action": "Block", "policy": "hsp-raw-sockets"}},
		{"audited mode", []string{"--policies", "../../examples/host", "--host", "--hostname", "n1", "--op", "file", "--path", "/etc/shadow", "--audited"},
			map[string]any{"action": "Audit", "displayAction": "Audit (Block)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runWard(t, append([]string{"simulate"}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out)
			}
			for _, k := range []string{"action", "policy", "rule", "posture", "severity", "tags", "message"} {
				if _, ok := got[k]; !ok {
					t.Errorf("output lacks %q", k)
				}
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

func TestSimulateUsageErrors(t *testing.T) {
	cases := [][]string{
		{"--policies", "../../examples/host", "--op", "file", "--path", "/x"},           // no workload
		{"--policies", "../../examples/host", "--host", "--op", "file"},                 // no path
		{"--policies", "../../examples/host", "--host", "--op", "open", "--path", "/x"}, // bad op
		{"--policies", "../../examples/host", "--host", "--op", "file", "--path", "x"},  // relative
		{"--policies", "../../examples/host", "--host", "--op", "file", "--path", "/x", "--posture", "file=deny"},
		{"--host", "--op", "file", "--path", "/x"},                                                          // no policies
		{"--policies", "../../examples/host", "--host", "--namespace", "a", "--op", "file", "--path", "/x"}, // both
		{"--policies", "../../examples/host", "--host", "--op", "file", "--path", "/x", "--bogus"},
	}
	for _, args := range cases {
		_, errOut, code := runWard(t, append([]string{"simulate"}, args...)...)
		if code != 2 {
			t.Errorf("simulate %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), code, errOut)
		}
		if errOut == "" {
			t.Errorf("simulate %s: no message on stderr", strings.Join(args, " "))
		}
	}
}

func TestSimulateInvalidPolicyExitsOne(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	writeFile(t, bad, "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: x}\nspec:\n  nodeSelector: {matchLabels: {a: b}}\n  file:\n    matchPath: [{path: /x}]\n")
	_, errOut, code := runWard(t, "simulate", "--policies", bad, "--host", "--op", "file", "--path", "/x")
	if code != 1 || !strings.Contains(errOut, "matchPath") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming the unknown field", code, errOut)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// --lsm says what the module does not enforce as written of the covering policies: in the
// JSON output and on standard error.
func TestSimulateLSMNotEnforced(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/p.yaml", []byte(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: pa, namespace: shop}
spec:
  selector: {matchLabels: {app: a}}
  file:
    matchPaths:
    - path: /secret
  network:
    matchDNSQueries:
    - domain: example.com
  presets:
  - name: protectEnv
  action: Block
`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"simulate", "--policies", dir, "--namespace", "shop", "--labels", "app=a", "--op", "file", "--path", "/secret"}
	for _, c := range []struct {
		lsm   string
		rules []string
	}{
		{"bpf", []string{"spec.network.matchDNSQueries[0]", "spec.presets[0]"}},
		{"apparmor", []string{"spec.network.matchDNSQueries[0]", "spec.presets[0]"}},
		{"selinux", []string{"spec"}},
		{"", nil},
	} {
		args := base
		if c.lsm != "" {
			args = append(append([]string{}, base...), "--lsm", c.lsm)
		}
		out, errOut, code := runWard(t, args...)
		if code != 0 {
			t.Fatalf("--lsm %s: exit %d: %s", c.lsm, code, errOut)
		}
		var got struct {
			Action      string
			NotEnforced []struct{ Backend, Policy, Rule, Message string }
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("--lsm %s: %v\n%s", c.lsm, err, out)
		}
		var rules []string
		for _, w := range got.NotEnforced {
			rules = append(rules, w.Rule)
			if w.Backend != c.lsm || w.Policy != "pa" || w.Message == "" {
				t.Errorf("--lsm %s: warning %+v", c.lsm, w)
			}
			if !strings.Contains(errOut, "warning: policy pa: "+w.Rule+": ") {
				t.Errorf("--lsm %s: standard error does not name %s:\n%s", c.lsm, w.Rule, errOut)
			}
		}
		if strings.Join(rules, ",") != strings.Join(c.rules, ",") || got.Action != "Block" {
			t.Errorf("--lsm %s: action %s, not enforced %q, want %q", c.lsm, got.Action, rules, c.rules)
		}
	}
	if _, errOut, code := runWard(t, append(append([]string{}, base...), "--lsm", "smack")...); code != 2 || !strings.Contains(errOut, "--lsm") {
		t.Errorf("--lsm smack: exit %d: %s", code, errOut)
	}
}
