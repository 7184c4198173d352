package hookapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/workload"
)

// fakeDaemon serves the socket with a handler that records requests.
type fakeDaemon struct {
	socket string
	mu     sync.Mutex
	got    []Request
	answer func(Request) Response
}

func startFake(t *testing.T, answer func(Request) Response) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{socket: filepath.Join(t.TempDir(), SocketName), answer: answer}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, l, func(_ context.Context, r Request) Response {
			f.mu.Lock()
			f.got = append(f.got, r)
			f.mu.Unlock()
			return f.answer(r)
		}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func (f *fakeDaemon) requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.got...)
}

// fixture writes an OCI state for the fixtures of internal/workload/testdata.
func fixture(t *testing.T, status string) (string, string, uint64) {
	t.Helper()
	bundle, err := filepath.Abs("../testdata/oci/bundle-annotated")
	if err != nil {
		t.Fatal(err)
	}
	cg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cg, "ward-test/c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(cg, "ward-test/c1"), &st); err != nil {
		t.Fatal(err)
	}
	state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"c1","status":%q,"pid":4242,"bundle":%q,"annotations":{"ward.io/label.app":"web"}}`, status, bundle)
	return state, cg, st.Ino
}

func opts(socket, cg string) HookOptions {
	return HookOptions{Socket: socket, Timeout: 5 * time.Second, ProcRoot: "../testdata/proc", CgroupRoot: cg,
		CheckCgroupRoot: func(string) error { return nil }}
}

func TestRunHookRegisters(t *testing.T) {
	f := startFake(t, func(Request) Response { return Response{OK: true, Rules: 3} })
	state, cg, ino := fixture(t, "creating")
	// The stage comes from the status ("creating"), then explicitly.
	for _, stage := range []string{"", StageCreateRuntime} {
		o := opts(f.socket, cg)
		o.Stage = stage
		if err := RunHook(context.Background(), strings.NewReader(state), o); err != nil {
			t.Fatalf("stage %q: %v", stage, err)
		}
	}
	got := f.requests()
	if len(got) != 2 {
		t.Fatalf("requests = %+v", got)
	}
	r := got[1]
	w := r.Workload
	if r.Op != OpRegister || r.Pid != 4242 || w.ContainerID != "c1" || w.Container != "web" || w.Namespace != workload.DefaultContainerNamespace ||
		w.Labels["app"] != "web" || w.CgroupID != ino || w.PidNS != 4026532201 || w.MntNS != 4026532200 {
		t.Errorf("request = %+v", r)
	}
}

// A pod's sandbox (pause) container is no workload: the hook succeeds without asking the
// daemon, at either stage.
func TestRunHookSkipsSandbox(t *testing.T) {
	f := startFake(t, func(Request) Response { return Response{OK: true} })
	_, cg, _ := fixture(t, "creating")
	bundle, _ := filepath.Abs("../testdata/oci/bundle-annotated")
	for _, tc := range []struct{ status, ann string }{
		{"creating", `"io.kubernetes.cri.container-type":"sandbox"`},
		{"creating", `"io.kubernetes.cri-o.ContainerType":"sandbox"`},
		{"stopped", `"io.kubernetes.cri.container-type":"sandbox"`},
	} {
		state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"sb","status":%q,"pid":4242,"bundle":%q,"annotations":{%s}}`, tc.status, bundle, tc.ann)
		if err := RunHook(context.Background(), strings.NewReader(state), opts(f.socket, cg)); err != nil {
			t.Errorf("%s %s: %v", tc.status, tc.ann, err)
		}
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("sandbox sent requests: %+v", got)
	}
	// The same state as an app container registers: the test above is not passing by accident.
	state := fmt.Sprintf(`{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":4242,"bundle":%q,"annotations":{"io.kubernetes.cri.container-type":"container"}}`, bundle)
	if err := RunHook(context.Background(), strings.NewReader(state), opts(f.socket, cg)); err != nil {
		t.Fatal(err)
	}
	if got := f.requests(); len(got) != 1 || got[0].Op != OpRegister {
		t.Errorf("app container: requests %+v", got)
	}
}

func TestRunHookUnregisters(t *testing.T) {
	f := startFake(t, func(Request) Response { return Response{OK: true} })
	for _, stage := range []string{"", StagePoststop} {
		// After the container stopped there is no process: only the id is used.
		state := `{"ociVersion":"1.0.2","id":"c1","status":"stopped","pid":0,"bundle":"/nonexistent"}`
		o := opts(f.socket, "/nonexistent")
		o.Stage = stage
		if err := RunHook(context.Background(), strings.NewReader(state), o); err != nil {
			t.Fatalf("stage %q: %v", stage, err)
		}
	}
	for _, r := range f.requests() {
		if r.Op != OpUnregister || r.ID != "c1" {
			t.Errorf("request = %+v", r)
		}
	}
	if len(f.requests()) != 2 {
		t.Errorf("requests = %+v", f.requests())
	}
}

func TestRunHookFailures(t *testing.T) {
	state, cg, _ := fixture(t, "creating")
	nobody := filepath.Join(t.TempDir(), "absent.sock")
	refusing := startFake(t, func(Request) Response { return Response{Error: "no"} })
	slow := startFake(t, func(Request) Response { time.Sleep(2 * time.Second); return Response{OK: true} })
	for _, tc := range []struct {
		name    string
		socket  string
		state   string
		mod     func(*HookOptions)
		wantErr string // empty: the hook succeeds
	}{
		{name: "unreachable fails closed by default", socket: nobody, state: state, wantErr: "daemon unreachable"},
		{name: "unreachable allowed", socket: nobody, state: state, mod: func(o *HookOptions) { o.Unreachable = UnreachableAllow }},
		{name: "unreachable at poststop is not an error", socket: nobody, state: strings.Replace(state, "creating", "stopped", 1)},
		// A daemon that answers but cannot apply the rules is not "unreachable": allow does not apply.
		{name: "refused", socket: refusing.socket, state: state, mod: func(o *HookOptions) { o.Unreachable = UnreachableAllow }, wantErr: "daemon refused register: no"},
		{name: "no ack in time", socket: slow.socket, state: state, mod: func(o *HookOptions) { o.Timeout = 200 * time.Millisecond }, wantErr: "no answer to register in time"},
		{name: "bad on-unreachable", socket: nobody, state: state, mod: func(o *HookOptions) { o.Unreachable = "maybe" }, wantErr: `on-unreachable "maybe"`},
		{name: "unknown status", socket: nobody, state: strings.Replace(state, "creating", "running", 1), wantErr: `status "running" does not say the stage`},
		{name: "container stage", socket: nobody, state: state, mod: func(o *HookOptions) { o.Stage = "createContainer" }, wantErr: "runs at createRuntime"},
		{name: "not cgroup v2", socket: nobody, state: state, mod: func(o *HookOptions) { o.CheckCgroupRoot = nil }, wantErr: "is not a cgroup v2 mount"},
		{name: "process gone", socket: nobody, state: strings.Replace(state, "4242", "4246", 1), wantErr: "container c1: read cgroup"},
		{name: "bad state", socket: nobody, state: "{", wantErr: "read oci state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(tc.socket, cg)
			var logs bytes.Buffer
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if tc.mod != nil {
				tc.mod(&o)
			}
			err := RunHook(context.Background(), strings.NewReader(tc.state), o)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && !strings.Contains(logs.String(), "unreachable") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
		})
	}
}

func TestCallUnreachableIsDistinct(t *testing.T) {
	_, err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), Request{Op: OpRegister})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("error = %v, want ErrUnreachable", err)
	}
}
