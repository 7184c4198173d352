// Package nri registers containers with Ward's daemon as a Node Resource Interface plugin.
// containerd 2.x and CRI-O run NRI by default (containerd at /var/run/nri/nri.sock), and a plugin
// that connects to that socket sees every container of the node: installing Ward then needs no
// edit of the runtime's configuration, unlike the OCI hook, which stays for plain runc, crun and
// podman (docs/containers.md).
//
// The exchange for one container, in containerd's order:
//
//   - CreateContainer, before the runtime creates it: the container is registered without a
//     kernel identity (it has no cgroup yet), so that rules which need none, above all the
//     AppArmor profile the runtime attaches at create, are loaded before the runtime asks for
//     them;
//   - StartContainer, after the runtime created it and before its first instruction (its init
//     waits for the start): the cgroup exists, and the registration is completed with the cgroup
//     id and the pid and mount namespaces of the process waiting in it;
//   - StopContainer and RemoveContainer: the registration goes.
//
// Fail closed: an answer from the daemon that is not OK, or none before the runtime's request
// time-out, is an error returned to the runtime, which then does not create or start the
// container. The plugin answers before the runtime's own time-out, because a plugin that does not
// answer at all is dropped by the runtime, and the container goes ahead without it.
package nri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

// DefaultSocket is where containerd 2.x and CRI-O listen for NRI plugins.
const DefaultSocket = "/var/run/nri/nri.sock"

// PluginName and PluginIndex are how the runtime lists Ward among its plugins; the index orders
// plugins, and Ward goes early so that later plugins' adjustments do not wait on it.
const (
	PluginName  = "ward"
	PluginIndex = "10"
)

// Options configure the plugin.
type Options struct {
	// Socket is the runtime's NRI socket (DefaultSocket).
	Socket string
	// Handler is the daemon's registration entry point, the one the OCI hook's socket serves.
	Handler hookapi.Handler
	// ProcRoot and CgroupRoot are /proc and the cgroup v2 mount (as the daemon sees them).
	ProcRoot   string
	CgroupRoot string
	// Hostname is the node's name, for the workloads.
	Hostname string
	// Retry is the wait before connecting again after the runtime went away (1s).
	Retry  time.Duration
	Logger *slog.Logger
}

// Plugin is Ward's NRI plugin.
type Plugin struct {
	o    Options
	mu   sync.Mutex
	stub stub.Stub // the connection's, which knows the runtime's request time-out
}

// New checks the options and returns the plugin; Run connects it.
func New(o Options) (*Plugin, error) {
	if o.Handler == nil {
		return nil, errors.New("nri plugin: no registration handler")
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Plugin{o: o}, nil
}

// Run connects to the runtime and serves it until ctx ends. When the runtime restarts (the
// connection closes), it connects again after Options.Retry, so a containerd upgrade does not
// leave the node without registration. It returns only when ctx ends.
func (p *Plugin) Run(ctx context.Context) error {
	last := "connected"
	for {
		err := p.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Said once per change: a node without NRI would otherwise log at every retry.
		msg := "connection closed"
		if err != nil {
			msg = err.Error()
		}
		if msg != last {
			p.o.Logger.Warn("nri: not connected to the runtime; retrying", "socket", p.o.Socket, "error", msg)
			last = msg
		}
		t := time.NewTimer(p.o.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (p *Plugin) runOnce(ctx context.Context) error {
	if _, err := os.Stat(p.o.Socket); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stub's Run does not return when the runtime closes the connection (a containerd
	// restart); its close callback ends this connection's context instead.
	s, err := stub.New(p, stub.WithPluginName(PluginName), stub.WithPluginIdx(PluginIndex),
		stub.WithSocketPath(p.o.Socket), stub.WithLogger(nriLogger{p.o.Logger}), stub.WithOnClose(cancel))
	if err != nil {
		return fmt.Errorf("nri stub: %w", err)
	}
	p.mu.Lock()
	p.stub = s
	p.mu.Unlock()
	p.o.Logger.Info("nri: connecting to the runtime", "socket", p.o.Socket)
	err = s.Run(rctx)
	if errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return nil // the runtime closed the connection
	}
	return err
}

// Configure records the runtime's request time-out; the events Ward handles follow from the
// methods it has.
func (p *Plugin) Configure(_ context.Context, _, runtime, version string) (api.EventMask, error) {
	p.o.Logger.Info("nri: connected", "runtime", runtime, "version", version)
	return 0, nil
}

// requestTimeout is how long Ward may take to answer one request: three quarters of the
// runtime's (which the runtime sends at registration; NRI's default is 2 s), so that the error
// reaches the runtime before the runtime gives up on the plugin and lets the container go ahead.
func (p *Plugin) requestTimeout() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := stub.DefaultRequestTimeout
	if p.stub != nil {
		t = p.stub.RequestTimeout()
	}
	return t * 3 / 4
}

// Synchronize registers the containers that run already, each with its kernel identity, so that
// a daemon that starts or restarts enforces on them. It answers at once and registers in the
// background: a node's worth of registrations can take longer than one request may.
func (p *Plugin) Synchronize(ctx context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	byID := map[string]*api.PodSandbox{}
	for _, pod := range pods {
		byID[pod.GetId()] = pod
	}
	var todo []workload.Workload
	var pids []int
	for _, c := range ctrs {
		if c.GetState() != api.ContainerState_CONTAINER_RUNNING {
			continue
		}
		pod := byID[c.GetPodSandboxId()]
		if pod == nil {
			continue
		}
		w, warns := Workload(pod, c, p.o.Hostname)
		p.warn(c, warns)
		id, pid, err := p.identity(c)
		if err != nil {
			p.o.Logger.Warn("nri: running container not registered", "container", c.GetId(), "error", err)
			continue
		}
		id.Apply(&w)
		todo = append(todo, w)
		pids = append(pids, pid)
	}
	p.o.Logger.Info("nri: synchronized", "pods", len(pods), "running_containers", len(todo))
	go func() {
		for i, w := range todo {
			resp := p.o.Handler(context.WithoutCancel(ctx), hookapi.Request{Op: hookapi.OpRegister, Workload: w, Pid: pids[i]})
			if !resp.OK {
				p.o.Logger.Warn("nri: running container not registered", "container", w.ContainerID, "error", resp.Error)
			}
		}
	}()
	return nil, nil
}

// CreateContainer registers the container before the runtime creates it, without a kernel
// identity, and waits until its rules are applied.
func (p *Plugin) CreateContainer(ctx context.Context, pod *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	w, warns := Workload(pod, c, p.o.Hostname)
	p.warn(c, warns)
	if err := p.call(ctx, hookapi.Request{Op: hookapi.OpPrepare, Workload: w}); err != nil {
		return nil, nil, err
	}
	return nil, nil, nil
}

// StartContainer completes the registration with the kernel identity of the created container
// and waits until its rules are in force; only then may the runtime start it.
func (p *Plugin) StartContainer(ctx context.Context, pod *api.PodSandbox, c *api.Container) error {
	w, warns := Workload(pod, c, p.o.Hostname)
	p.warn(c, warns)
	id, pid, err := p.identity(c)
	if err != nil {
		return fmt.Errorf("ward: container %s: %w", c.GetId(), err)
	}
	id.Apply(&w)
	return p.call(ctx, hookapi.Request{Op: hookapi.OpRegister, Workload: w, Pid: pid})
}

// StopContainer forgets the container once it stopped.
func (p *Plugin) StopContainer(ctx context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.unregister(ctx, c)
	return nil, nil
}

// RemoveContainer forgets the container, in case it never started or its stop was missed.
func (p *Plugin) RemoveContainer(ctx context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.unregister(ctx, c)
	return nil
}

// unregister never fails the runtime: the container is gone either way, and a restarted
// daemon drops registrations whose process is gone.
func (p *Plugin) unregister(ctx context.Context, c *api.Container) {
	if err := p.call(ctx, hookapi.Request{Op: hookapi.OpUnregister, ID: c.GetId()}); err != nil {
		p.o.Logger.Warn("nri: unregister", "container", c.GetId(), "error", err)
	}
}

// call asks the daemon and turns a refusal or a late answer into an error for the runtime.
func (p *Plugin) call(ctx context.Context, req hookapi.Request) error {
	ctx, cancel := context.WithTimeout(ctx, p.requestTimeout())
	defer cancel()
	resp := p.o.Handler(ctx, req)
	if !resp.OK {
		id := req.ID
		if id == "" {
			id = req.Workload.ContainerID
		}
		p.o.Logger.Error("nri: daemon refused; the runtime fails the container", "op", req.Op, "container", id, "error", resp.Error)
		return fmt.Errorf("ward: %s container %s: %s", req.Op, id, resp.Error)
	}
	return nil
}

func (p *Plugin) warn(c *api.Container, warns []string) {
	for _, w := range warns {
		p.o.Logger.Warn("nri: container", "container", c.GetId(), "warning", w)
	}
}

// identity reads the kernel identity of a created container: the cgroup the runtime made for it
// (from the spec's cgroups path) and the namespaces of the process waiting in it. The runtime
// reports the pid only after the start, so it is read from the cgroup when the runtime gives
// none.
func (p *Plugin) identity(c *api.Container) (workload.KernelIdentity, int, error) {
	pid := int(c.GetPid())
	if pid == 0 {
		dir, err := CgroupDir(c.GetLinux().GetCgroupsPath())
		if err != nil {
			return workload.KernelIdentity{}, 0, err
		}
		if pid, err = firstPid(filepath.Join(p.o.CgroupRoot, dir, "cgroup.procs")); err != nil {
			return workload.KernelIdentity{}, 0, err
		}
	}
	id, err := workload.ReadKernelIdentity(p.o.ProcRoot, p.o.CgroupRoot, pid)
	return id, pid, err
}

func firstPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("container process: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("container process: %s is empty", file)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, fmt.Errorf("container process: %s: %w", file, err)
	}
	return pid, nil
}

// CgroupDir turns the OCI spec's cgroupsPath into a directory below the cgroup v2 root. A path
// that starts with "/" is one already (runc's cgroupfs driver: /kubepods/besteffort/pod<uid>/<id>);
// "slice:prefix:name" is the systemd driver's, which runc places at the slice's directory (each
// dash-separated prefix of the slice a parent: a-b-c.slice is in a.slice/a-b.slice/) and then
// prefix-name.scope.
func CgroupDir(cgroupsPath string) (string, error) {
	if cgroupsPath == "" {
		return "", errors.New("the runtime gave no cgroups path")
	}
	if strings.HasPrefix(cgroupsPath, "/") {
		return filepath.Clean(cgroupsPath), nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 || !strings.HasSuffix(parts[0], ".slice") && parts[0] != "" {
		return "", fmt.Errorf("cgroups path %q: want /path (cgroupfs) or slice:prefix:name (systemd)", cgroupsPath)
	}
	slice := parts[0]
	if slice == "" {
		slice = "system.slice"
	}
	base := strings.TrimSuffix(slice, ".slice")
	dir := "/"
	if base != "-" {
		if strings.Contains(base, "/") || strings.HasPrefix(base, "-") || strings.HasSuffix(base, "-") || strings.Contains(base, "--") {
			return "", fmt.Errorf("cgroups path %q: bad slice name %q", cgroupsPath, slice)
		}
		words := strings.Split(base, "-")
		for i := range words {
			dir = filepath.Join(dir, strings.Join(words[:i+1], "-")+".slice")
		}
	}
	unit := parts[2]
	if parts[1] != "" {
		unit = parts[1] + "-" + unit
	}
	if !strings.HasSuffix(unit, ".slice") {
		unit += ".scope"
	}
	return filepath.Join(dir, unit), nil
}

// Workload is a container as NRI describes it: the pod's namespace, name, UID and labels (without
// the keys the kubelet and containerd add for themselves), the container's name and image, the
// kubearmor-policy mode, and the Ward AppArmor profile the pod names for it.
func Workload(pod *api.PodSandbox, c *api.Container, hostname string) (workload.Workload, []string) {
	w := workload.Workload{
		Kind: workload.KindContainer, Hostname: hostname, ContainerID: c.GetId(),
		Namespace: pod.GetNamespace(), Pod: pod.GetName(), PodUID: pod.GetUid(),
		Container: c.GetName(), Image: c.GetImage().GetName(), Labels: map[string]string{},
	}
	for k, v := range pod.GetLabels() {
		if runtimeLabel(k) {
			continue
		}
		w.Labels[k] = v
	}
	var warns []string
	if a, ok := pod.GetAnnotations()[workload.AnnotationPolicy]; ok {
		m, known := workload.ParseMode(a)
		if !known {
			warns = append(warns, fmt.Sprintf("annotation %s: unknown value %q, treated as enabled; allowed: enabled, audited, disabled", workload.AnnotationPolicy, a))
		}
		w.Mode = m
	}
	w.AppArmorProfile = pod.GetAnnotations()[workload.AnnotationAppArmorPrefix+c.GetName()]
	return w, warns
}

// runtimeLabel says whether a sandbox label is the kubelet's or containerd's bookkeeping rather
// than one of the pod's labels: KubeArmor's alerts carry the pod's labels as the API server has
// them, and selectors mean those.
func runtimeLabel(k string) bool {
	switch k {
	case workload.AnnotationPodName, workload.AnnotationPodNamespace, workload.AnnotationPodUID,
		"oci_runtime_type": // containerd's runtime handler of the sandbox
		return true
	}
	return strings.HasPrefix(k, "io.cri-containerd.") // io.cri-containerd.kind=sandbox
}

// nriLogger sends the stub's log to slog.
type nriLogger struct{ l *slog.Logger }

func (n nriLogger) Debugf(_ context.Context, f string, a ...any) {
	n.l.Debug("nri stub", "msg", fmt.Sprintf(f, a...))
}
func (n nriLogger) Infof(_ context.Context, f string, a ...any) {
	n.l.Debug("nri stub", "msg", fmt.Sprintf(f, a...))
}
func (n nriLogger) Warnf(_ context.Context, f string, a ...any) {
	n.l.Warn("nri stub", "msg", fmt.Sprintf(f, a...))
}
func (n nriLogger) Errorf(_ context.Context, f string, a ...any) {
	n.l.Error("nri stub", "msg", fmt.Sprintf(f, a...))
}
