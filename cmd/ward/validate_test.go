package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func runValidate(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"validate"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestValidateCommand(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		stdout, stderr string
		code           int // 0: success, -1: usage error
	}{
		{
			name:   "valid",
			args:   []string{"testdata/validate/good.yaml"},
			stdout: "testdata/validate/good.yaml: ok: 2 policies (KubeArmorHostPolicy block-passwd, KubeArmorPolicy container_namespace/web)\n",
			stderr: `testdata/validate/good.yaml:20: doc 2: spec.capabilities.matchCapabilities[0].capability: warning: "CAP_NET_RAW" read as "net_raw": KubeArmor's CRD accepts only lower-case names without "cap_"` + "\n",
		},
		{
			name: "invalid",
			args: []string{"testdata/validate/bad.yaml"},
			stdout: `testdata/validate/bad.yaml:7: doc 1: spec.file.matchPath: unknown field "matchPath"; allowed: matchPaths, matchDirectories, matchPatterns, severity, tags, message, action (did you mean "matchPaths"?)` + "\n" +
				"testdata/validate/bad.yaml:11: doc 1: spec.process.matchPaths[0].path: \"bin/sh\" is not an absolute path: must start with \"/\" and not end with \"/\"\n",
			code: 1,
		},
		{
			name: "missing file and a directory",
			args: []string{"testdata/validate/missing.yaml", "testdata/validate"},
			stdout: "testdata/validate/missing.yaml: no such file or directory\n" + `testdata/validate/bad.yaml:7: doc 1: spec.file.matchPath: unknown field "matchPath"; allowed: matchPaths, matchDirectories, matchPatterns, severity, tags, message, action (did you mean "matchPaths"?)` + "\n" +
				"testdata/validate/bad.yaml:11: doc 1: spec.process.matchPaths[0].path: \"bin/sh\" is not an absolute path: must start with \"/\" and not end with \"/\"\n",
			stderr: `testdata/validate/good.yaml:20: doc 2: spec.capabilities.matchCapabilities[0].capability: warning: "CAP_NET_RAW" read as "net_raw": KubeArmor's CRD accepts only lower-case names without "cap_"` + "\n",
			code:   1,
		},
		{name: "no arguments", code: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runValidate(tc.args...)
			var ee exitError
			switch {
			case tc.code == 0 && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.code > 0 && (!errors.As(err, &ee) || ee.code != tc.code):
				t.Errorf("err = %v, want exit code %d", err, tc.code)
			case tc.code < 0 && (err == nil || errors.As(err, &ee)):
				t.Errorf("err = %v, want a usage error (exit 2)", err)
			}
			if tc.code < 0 {
				return
			}
			if stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tc.stdout)
			}
			if stderr != tc.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, tc.stderr)
			}
		})
	}
}

// TestValidateLSMAllowedArgs: BPF-LSM does not enforce allowedArgs (issue 17 item 4), and
// `ward validate --lsm bpf` says so for the policy and field; AppArmor's reading differs.
func TestValidateLSMAllowedArgs(t *testing.T) {
	stdout, stderr, err := runValidate("--lsm", "bpf", "testdata/validate-args/args.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "testdata/validate-args/args.yaml: ok: 1 policy (KubeArmorHostPolicy ls-only-l)\n" {
		t.Errorf("stdout %q", stdout)
	}
	want := "testdata/validate-args/args.yaml: warning: policy ls-only-l: spec.process.matchPaths[0].allowedArgs: allowedArgs is not enforced by BPFLSM: "
	if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "the rule is skipped") {
		t.Errorf("stderr %q, want it to start with %q and say the rule is skipped", stderr, want)
	}
	// Without --lsm nothing is said about modules.
	if _, stderr, _ := runValidate("testdata/validate-args/args.yaml"); stderr != "" {
		t.Errorf("without --lsm: stderr %q", stderr)
	}
}

// TestValidateLSMSources: a policy that needs more child profiles than a workload's AppArmor
// profile can hold is valid, and `ward validate --lsm apparmor` names the source that makes one
// too many; sources the same rule is limited to share a child, and BPF-LSM has no such limit.
func TestValidateLSMSources(t *testing.T) {
	const f = "testdata/validate-sources/sources.yaml"
	stdout, stderr, err := runValidate("--lsm", "apparmor", f)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != f+": ok: 1 policy (KubeArmorHostPolicy many-sources)\n" {
		t.Errorf("stdout %q", stdout)
	}
	want := f + ": warning: policy many-sources: spec.file.matchPaths[11].fromSource[0]: /usr/bin/tool12 makes 12 fromSource executables with rules of their own"
	if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "at most 11 child profiles") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting with %q", stderr, want)
	}
	if _, stderr, _ := runValidate("--lsm", "bpf", f); stderr != "" {
		t.Errorf("--lsm bpf: stderr %q", stderr)
	}
	if _, stderr, _ := runValidate("--lsm", "apparmor", "testdata/validate-sources/shared.yaml"); stderr != "" {
		t.Errorf("twenty sources of one rule: stderr %q", stderr)
	}
}
