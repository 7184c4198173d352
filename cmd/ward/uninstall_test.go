package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/enforcer/selinux"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

type fakeTool struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (f *fakeTool) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	if f.fail != nil {
		return []byte("apparmor_parser: Unable to remove \"ward-host\". Permission denied\n"), f.fail
	}
	return nil, nil
}

type mapLabeler map[string]string

func (m mapLabeler) Get(p string) (string, error) { return m[p], nil }
func (m mapLabeler) Set(p, c string) error        { m[p] = c; return nil }

func TestUninstall(t *testing.T) {
	root := t.TempDir()
	profiles, state := filepath.Join(root, "apparmor.d"), filepath.Join(root, "state")
	if err := os.MkdirAll(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(profiles, "ward-host"), apparmor.HeaderPrefix+"ward-host\nprofile ward-host {}\n")
	mustWrite(t, filepath.Join(profiles, "usr.bin.man"), "profile man {}\n")
	mustWrite(t, filepath.Join(state, "policies", "x.json"), "{}")

	// A file Ward labelled for SELinux, and its module.
	labelled := filepath.Join(root, "secret")
	mustWrite(t, labelled, "x")
	lab := mapLabeler{labelled: "system_u:object_r:etc_t:s0"}
	semodule := &fakeTool{}
	l, err := selinux.NewLoader(filepath.Join(state, "selinux"), semodule, lab)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Label(map[string]string{labelled: "system_u:object_r:ward_secret_t:s0"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(state, "selinux", selinux.ModuleName+".cil"), "(type ward_secret_t)")

	parser := &fakeTool{}
	u := uninstaller{backends: []enforcer.Uninstaller{
		apparmor.Uninstaller{Dir: profiles, SecurityFS: filepath.Join(root, "securityfs"), Runner: parser},
		selinux.Uninstaller{State: filepath.Join(state, "selinux"), Runner: semodule, Labeler: lab},
		bpflsm.Uninstaller{PinDir: filepath.Join(root, "bpf", "ward")},
	}, state: state, purge: true}
	var out bytes.Buffer
	if err := u.run(context.Background(), &out); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out.String())
	}
	for _, want := range []string{"removed AppArmor profile ward-host", "restored the original SELinux label of 1 files",
		"removed SELinux module ward", "removed state directory " + state} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if lab[labelled] != "system_u:object_r:etc_t:s0" {
		t.Errorf("label = %q, want the original back", lab[labelled])
	}
	if _, err := os.Stat(filepath.Join(profiles, "usr.bin.man")); err != nil {
		t.Errorf("someone else's profile: %v", err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory still there: %v", err)
	}
	if got := strings.Join(semodule.calls, ";"); got != "semodule -r ward" {
		t.Errorf("semodule calls %q", got)
	}

	// Again: nothing left.
	out.Reset()
	if err := u.run(context.Background(), &out); err != nil || strings.TrimSpace(out.String()) != "nothing to remove" {
		t.Errorf("second uninstall: %v, %q", err, out.String())
	}
}

// What cannot be removed is named, and the state that records it is kept.
func TestUninstallFailure(t *testing.T) {
	root := t.TempDir()
	profiles, state := filepath.Join(root, "apparmor.d"), filepath.Join(root, "state")
	mustWrite(t, filepath.Join(profiles, "ward-host"), apparmor.HeaderPrefix+"ward-host\nprofile ward-host {}\n")
	mustWrite(t, filepath.Join(state, "policies", "x.json"), "{}")
	u := uninstaller{backends: []enforcer.Uninstaller{
		apparmor.Uninstaller{Dir: profiles, SecurityFS: filepath.Join(root, "securityfs"), Runner: &fakeTool{fail: errors.New("exit status 1")}},
		selinux.Uninstaller{State: filepath.Join(state, "selinux")},
		bpflsm.Uninstaller{PinDir: filepath.Join(root, "bpf", "ward")},
	}, state: state, purge: true}
	var out bytes.Buffer
	err := u.run(context.Background(), &out)
	if err == nil || !strings.Contains(err.Error(), "remove profile ward-host") || !strings.Contains(err.Error(), "Permission denied") ||
		!strings.Contains(err.Error(), "state directory "+state+" kept") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "policies", "x.json")); err != nil {
		t.Errorf("state removed despite the failure: %v", err)
	}
}

// A running daemon would put its rules back: uninstall refuses.
func TestUninstallRefusesWhileRunning(t *testing.T) {
	state := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(state, hookapi.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = uninstaller{backends: []enforcer.Uninstaller{apparmor.Uninstaller{Dir: filepath.Join(state, "none")}}, state: state}.run(context.Background(), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("err = %v", err)
	}
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
