package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// runHookCmd runs `ward oci-hook` as a runtime would: the state on stdin, the result in the exit
// status.
func runHookCmd(t *testing.T, state string, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var stderr bytes.Buffer
	root.SetIn(strings.NewReader(state))
	root.SetErr(&stderr)
	root.SetOut(&stderr)
	root.SetArgs(append([]string{"oci-hook"}, args...))
	err := root.Execute()
	if err == nil {
		return 0, stderr.String()
	}
	if e, ok := err.(exitError); ok {
		return e.code, stderr.String()
	}
	t.Fatalf("oci-hook: %v", err)
	return 0, ""
}

func TestOCIHookCmd(t *testing.T) {
	socket := "--socket=" + filepath.Join(t.TempDir(), "ward.sock") // nobody listens
	creating := `{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":1,"bundle":"../../internal/workload/testdata/oci/bundle-plain"}`
	stopped := `{"ociVersion":"1.0.2","id":"c1","status":"stopped","pid":0,"bundle":"/nonexistent"}`

	// The container must not start when it cannot be registered (fail closed, the default):
	// this host's /sys/fs/cgroup or the missing daemon stops it, either way with exit 1.
	if code, out := runHookCmd(t, creating, socket, "createRuntime"); code != 1 || !strings.Contains(out, "ward oci-hook: container c1:") {
		t.Errorf("createRuntime without a daemon: exit %d\n%s", code, out)
	}
	if code, out := runHookCmd(t, stopped, socket, "poststop"); code != 0 || !strings.Contains(out, "nothing to unregister") {
		t.Errorf("poststop without a daemon: exit %d\n%s", code, out)
	}
	if code, out := runHookCmd(t, stopped, socket, "--on-unreachable=maybe"); code != 1 || !strings.Contains(out, `on-unreachable "maybe"`) {
		t.Errorf("bad flag: exit %d\n%s", code, out)
	}
	if code, out := runHookCmd(t, stopped, socket, "startContainer"); code != 1 || !strings.Contains(out, "runs at createRuntime") {
		t.Errorf("wrong stage: exit %d\n%s", code, out)
	}
}
