package nri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

// daemon stands in for Ward's daemon behind hookapi.Handler: it records each request and answers
// with what the test set. The NRI side is real: the runtime half is NRI's own adaptation package,
// the one containerd and CRI-O embed, speaking ttrpc to the plugin over a unix socket.
type daemon struct {
	mu    sync.Mutex
	reqs  []hookapi.Request
	got   chan hookapi.Request
	fail  string        // refuse every request with this error
	block chan struct{} // when set, hold each request until ctx ends
}

func (d *daemon) handle(ctx context.Context, req hookapi.Request) hookapi.Response {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	fail, block := d.fail, d.block
	d.mu.Unlock()
	d.got <- req
	if block != nil {
		<-ctx.Done()
		return hookapi.Response{Error: "rules not applied: " + ctx.Err().Error()}
	}
	if fail != "" {
		return hookapi.Response{Error: fail}
	}
	return hookapi.Response{OK: true}
}

func (d *daemon) set(fail string, block bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = fail
	d.block = nil
	if block {
		d.block = make(chan struct{})
	}
}

// node is a fixture /proc and cgroup v2 tree holding one created container: its cgroup (the
// cgroupfs driver's path) lists the pid that waits in it, and that pid's /proc entry names the
// cgroup and its namespaces.
type node struct {
	proc, cgroup string
	cgroupID     uint64
}

const (
	podUID      = "5f3c6a2e-0000-4000-8000-000000000001"
	ctrID       = "c0ffee01"
	cgroupsPath = "/kubepods/besteffort/pod" + podUID + "/" + ctrID
	initPid     = 4242
)

func newNode(t *testing.T) node {
	t.Helper()
	n := node{proc: t.TempDir(), cgroup: t.TempDir()}
	dir := filepath.Join(n.cgroup, cgroupsPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), fmt.Appendf(nil, "%d\n", initPid), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	n.cgroupID = st.Ino
	pd := filepath.Join(n.proc, fmt.Sprint(initPid))
	if err := os.MkdirAll(filepath.Join(pd, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pd, "cgroup"), []byte("0::"+cgroupsPath+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for kind, ino := range map[string]string{"pid": "4026532301", "mnt": "4026532300"} {
		if err := os.Symlink(kind+":["+ino+"]", filepath.Join(pd, "ns", kind)); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

type runtime struct {
	r      *adaptation.Adaptation
	synced chan struct{}
}

// registered waits until a plugin has synchronized and the runtime holds it among its plugins:
// the adaptation adds a plugin after the synchronization returns, and BlockPluginSync waits for
// a synchronization in progress to finish, as the runtime does before it creates a container.
func (rt *runtime) registered(t *testing.T, what string) {
	t.Helper()
	wait(t, rt.synced, what)
	rt.r.BlockPluginSync().Unblock()
}

// startRuntime starts NRI's runtime side on a socket in a temporary directory, with pods and
// containers that it reports to each plugin that registers.
func startRuntime(t *testing.T, sock string, pods []*api.PodSandbox, ctrs []*api.Container) *runtime {
	t.Helper()
	rt := &runtime{synced: make(chan struct{}, 4)}
	dir := t.TempDir()
	sync := func(ctx context.Context, cb adaptation.SyncCB) error {
		_, err := cb(ctx, pods, ctrs)
		rt.synced <- struct{}{}
		return err
	}
	update := func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
		return nil, nil
	}
	r, err := adaptation.New("containerd", "v2.4.2", sync, update,
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		adaptation.WithSocketPath(sock))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// Start synchronizes the plugins it launches itself (none here): that is no registration.
	select {
	case <-rt.synced:
	default:
	}
	t.Cleanup(r.Stop)
	rt.r = r
	return rt
}

func pod() *api.PodSandbox {
	return &api.PodSandbox{
		Id: "sandbox1", Name: "web-7d9f-abcde", Uid: podUID, Namespace: "shop",
		Labels: map[string]string{
			"app": "web", workload.AnnotationPodName: "web-7d9f-abcde",
			workload.AnnotationPodNamespace: "shop", workload.AnnotationPodUID: podUID,
			// containerd's own, on every sandbox.
			"io.cri-containerd.kind": "sandbox", "oci_runtime_type": "io.containerd.runc.v2",
		},
		Annotations: map[string]string{
			workload.AnnotationPolicy:                   "audited",
			workload.AnnotationAppArmorPrefix + "nginx": "ward-shop_web_nginx",
		},
	}
}

func container(state api.ContainerState) *api.Container {
	return &api.Container{
		Id: ctrID, PodSandboxId: "sandbox1", Name: "nginx", State: state,
		Image: &api.Image{Name: "localhost/nginx:1"},
		Linux: &api.LinuxContainer{CgroupsPath: cgroupsPath},
	}
}

func startPlugin(t *testing.T, sock string, n node, d *daemon) {
	t.Helper()
	p, err := New(Options{Socket: sock, Handler: d.handle, ProcRoot: n.proc, CgroupRoot: n.cgroup,
		Hostname: "node1", Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func next(t *testing.T, d *daemon) hookapi.Request {
	t.Helper()
	select {
	case r := <-d.got:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no request reached the daemon")
	}
	return hookapi.Request{}
}

func wait(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatalf("%s: timed out", what)
	}
}

// TestContainerLifecycle drives one container through the runtime's requests and checks what
// Ward's daemon is asked at each: prepare (no kernel identity) at create, register with the
// identity of the process waiting in the container's cgroup at start, unregister at stop.
func TestContainerLifecycle(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nri.sock")
	n := newNode(t)
	d := &daemon{got: make(chan hookapi.Request, 16)}
	rt := startRuntime(t, sock, nil, nil)
	startPlugin(t, sock, n, d)
	rt.registered(t, "plugin registration")
	ctx := context.Background()

	if _, err := rt.r.CreateContainer(ctx, &adaptation.CreateContainerRequest{Pod: pod(), Container: container(api.ContainerState_CONTAINER_CREATED)}); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	req := next(t, d)
	want := workload.Workload{
		Kind: workload.KindContainer, Hostname: "node1", Namespace: "shop", Pod: "web-7d9f-abcde",
		Container: "nginx", PodUID: podUID, ContainerID: ctrID, Image: "localhost/nginx:1",
		Labels: map[string]string{"app": "web"}, Mode: workload.ModeAudited,
		AppArmorProfile: "ward-shop_web_nginx",
	}
	if req.Op != hookapi.OpPrepare || fmt.Sprint(req.Workload) != fmt.Sprint(want) {
		t.Errorf("create: %s %+v\nwant %s %+v", req.Op, req.Workload, hookapi.OpPrepare, want)
	}

	if err := rt.r.StartContainer(ctx, &adaptation.StartContainerRequest{Pod: pod(), Container: container(api.ContainerState_CONTAINER_CREATED)}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	req = next(t, d)
	want.CgroupID, want.PidNS, want.MntNS = n.cgroupID, 4026532301, 4026532300
	if req.Op != hookapi.OpRegister || req.Pid != initPid || fmt.Sprint(req.Workload) != fmt.Sprint(want) {
		t.Errorf("start: %s pid %d %+v\nwant %s pid %d %+v", req.Op, req.Pid, req.Workload, hookapi.OpRegister, initPid, want)
	}

	if _, err := rt.r.StopContainer(ctx, &adaptation.StopContainerRequest{Pod: pod(), Container: container(api.ContainerState_CONTAINER_STOPPED)}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if req = next(t, d); req.Op != hookapi.OpUnregister || req.ID != ctrID {
		t.Errorf("stop: %s %q, want %s %q", req.Op, req.ID, hookapi.OpUnregister, ctrID)
	}
}

// TestFailClosed: a container whose rules the daemon cannot apply is not created or started.
// The refusal reaches the runtime as the request's error; a daemon that does not answer in time
// is an error too, given before the runtime's time-out, so that the runtime fails the request
// rather than dropping the plugin and going ahead without it.
func TestFailClosed(t *testing.T) {
	adaptation.SetPluginRequestTimeout(800 * time.Millisecond)
	t.Cleanup(func() { adaptation.SetPluginRequestTimeout(adaptation.DefaultPluginRequestTimeout) })
	sock := filepath.Join(t.TempDir(), "nri.sock")
	n := newNode(t)
	d := &daemon{got: make(chan hookapi.Request, 16)}
	rt := startRuntime(t, sock, nil, nil)
	startPlugin(t, sock, n, d)
	rt.registered(t, "plugin registration")
	ctx := context.Background()
	create := func() error {
		_, err := rt.r.CreateContainer(ctx, &adaptation.CreateContainerRequest{Pod: pod(), Container: container(api.ContainerState_CONTAINER_CREATED)})
		return err
	}
	start := func() error {
		return rt.r.StartContainer(ctx, &adaptation.StartContainerRequest{Pod: pod(), Container: container(api.ContainerState_CONTAINER_CREATED)})
	}

	d.set("container c0ffee01: rules not applied: backend refused", false)
	for name, f := range map[string]func() error{"create": create, "start": start} {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "backend refused") {
			t.Errorf("%s with a refusing daemon: err = %v, want the daemon's refusal", name, err)
		}
		next(t, d)
	}

	d.set("", true)
	for name, f := range map[string]func() error{"create": create, "start": start} {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "rules not applied") {
			t.Errorf("%s with a daemon that does not answer: err = %v, want Ward's error", name, err)
		}
		next(t, d)
	}

	// The plugin is still registered: the next container goes through it again.
	d.set("", false)
	if err := start(); err != nil {
		t.Fatalf("start after the failures: %v", err)
	}
	if req := next(t, d); req.Op != hookapi.OpRegister {
		t.Errorf("after the failures: %s, want %s", req.Op, hookapi.OpRegister)
	}
}

// TestSynchronize: containers already running when the plugin connects (a daemon that starts or
// restarts) are registered with their kernel identity; stopped ones are not.
func TestSynchronize(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nri.sock")
	n := newNode(t)
	d := &daemon{got: make(chan hookapi.Request, 16)}
	running := container(api.ContainerState_CONTAINER_RUNNING)
	running.Pid = initPid
	stopped := container(api.ContainerState_CONTAINER_STOPPED)
	stopped.Id = "dead01"
	rt := startRuntime(t, sock, []*api.PodSandbox{pod()}, []*api.Container{running, stopped})
	startPlugin(t, sock, n, d)
	rt.registered(t, "plugin registration")
	req := next(t, d)
	if req.Op != hookapi.OpRegister || req.Workload.ContainerID != ctrID || req.Workload.CgroupID != n.cgroupID || req.Pid != initPid {
		t.Errorf("sync: %s %+v pid %d, want register of %s with cgroup %d", req.Op, req.Workload, req.Pid, ctrID, n.cgroupID)
	}
	select {
	case r := <-d.got:
		t.Errorf("unexpected request %s %+v", r.Op, r.Workload)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestCgroupDir(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{in: "/kubepods/besteffort/pod1/abc", want: "/kubepods/besteffort/pod1/abc"},
		{in: "kubepods-besteffort-pod1.slice:cri-containerd:abc",
			want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"},
		{in: "system.slice:crio:abc", want: "/system.slice/crio-abc.scope"},
		{in: "-.slice:docker:abc", want: "/docker-abc.scope"},
		{in: "", err: "no cgroups path"},
		{in: "kubepods:abc", err: "want /path"},
		{in: "a--b.slice:p:abc", err: "bad slice name"},
	} {
		got, err := CgroupDir(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("CgroupDir(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CgroupDir(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
