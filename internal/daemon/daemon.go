package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/google/renameio/v2"
	"google.golang.org/grpc"

	"github.com/wardsec/ward/api/policypb"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/events"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/policystore"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/kube"
)

// Options are what Run needs besides the configuration: the backends this build has and the
// places it reads, so tests can substitute them.
type Options struct {
	Config    Config
	Logger    *slog.Logger
	Factories map[string]enforcer.Factory
	// LSMPath is the kernel's list of active modules (enforcer.DefaultLSMPath).
	LSMPath string
	// Stdout receives the JSON lines when logPath is stdout.
	Stdout io.Writer
	// Sinks receive every alert, log and message besides the event pipeline (tests use it).
	Sinks []events.Sink
	// Monitor, when set, starts the system monitor: a source of observed accesses that does not
	// enforce. Its events become logs, the alerts of syscall rules, and, when no backend
	// enforces, the "would be blocked" alerts of monitor mode.
	Monitor func(workloadOf func(cgroupID uint64, pid uint32) string) (EventSource, error)
	// Ready, when set, is called once the first reconcile has finished.
	Ready func(*Daemon)
}

// EventSource is what the system monitor offers the daemon.
type EventSource interface {
	Events() <-chan enforcer.Event
	Close() error
}

// Daemon is a running node agent.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	store   *policystore.Store
	reg     *workload.Registry
	builder *events.Builder
	metrics *events.Metrics
	attr    *events.Attributor
	sel     enforcer.Selection

	trigger chan struct{}
	// dirMu guards what the watcher saw change: paths to read again, or dirAll to read the
	// whole policy directory.
	dirMu    sync.Mutex
	dirPaths map[string]bool
	dirAll   bool
	plan     planner
	workerState
	// sets maps each workload ID to the rule set the backend has in force for it, read by the
	// event pipeline and the OCI hook.
	sets atomic.Pointer[map[string]*rules.Set]
	// unenforced is what the backend does not enforce as written of those sets (setsMu).
	unenforced unenforced

	grpcAddr net.Addr
	// kube is the cluster view in Kubernetes mode, nil otherwise.
	kube *kube.Source
}

// GRPCAddr is the address the gRPC services listen on, or nil.
func (d *Daemon) GRPCAddr() net.Addr { return d.grpcAddr }

// Selection is the LSM choice the daemon made.
func (d *Daemon) Selection() enforcer.Selection { return d.sel }

// Sets returns the rule sets in force, by workload ID.
func (d *Daemon) Sets() map[string]*rules.Set {
	if m := d.sets.Load(); m != nil {
		return *m
	}
	return nil
}

// Run starts the daemon and blocks until ctx is done.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.State, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := os.MkdirAll(cfg.Policies, 0o755); err != nil {
		return fmt.Errorf("policy directory: %w", err)
	}
	d := &Daemon{
		cfg:     cfg,
		log:     log,
		store:   policystore.New(cfg.Policies, cfg.State),
		builder: &events.Builder{Cluster: cfg.Cluster, HostName: cfg.Host, Now: time.Now},
		metrics: events.NewMetrics(),
		trigger: make(chan struct{}, 1),
		plan:    planner{workloads: map[string]*planned{}},
		// The first reconcile reads the whole policy directory.
		dirAll:      true,
		workerState: workerState{workers: map[string]*worker{}},
	}
	// Every alert, log and message goes through the pipeline: throttling per workload, the JSON
	// lines sink, the gRPC watchers and the metrics.
	pipe := &events.Pipeline{
		Builder: d.builder, Broker: events.NewBroker(0, d.metrics), Metrics: d.metrics, Log: log,
		Throttle: events.NewThrottler(events.ThrottleConfig{Enabled: cfg.AlertThrottling,
			MaxAlertsPerSec: cfg.MaxAlertPerSec, ThrottleSec: cfg.ThrottleSec}, nil),
	}
	if cfg.LogPath != events.LogPathNone && cfg.LogPath != "" {
		stdout := opts.Stdout
		if stdout == nil {
			stdout = os.Stdout
		}
		jl, err := events.OpenJSONLines(cfg.LogPath, stdout)
		if err != nil {
			return err
		}
		defer jl.Close()
		pipe.JSON = jl
	}
	d.attr = &events.Attributor{Sets: d.Sets, Builder: d.builder, Sinks: append([]events.Sink{pipe}, opts.Sinks...),
		Log: log, Visibility: cfg.Visibility, HostVisibility: cfg.HostVisibility}
	d.reg = workload.NewRegistry(d.enqueue)
	d.reg.Upsert(workload.Host(cfg.Host, nil))

	order, err := enforcer.ParseOrder(cfg.LSM)
	if err != nil {
		return err
	}
	lsmPath := opts.LSMPath
	if lsmPath == "" {
		lsmPath = enforcer.DefaultLSMPath
	}
	lsms, err := ReadActiveLSMs(lsmPath)
	if err != nil {
		log.Warn("cannot read the active security modules", "error", err)
	}
	d.sel = enforcer.Select(ctx, lsms, order, opts.Factories)
	d.attr.Enforcing = d.sel.Backend != nil
	for _, a := range d.sel.Attempts {
		log.Info("lsm attempt", "lsm", a.LSM, "ok", a.OK, "reason", a.Reason)
	}
	log.Info("lsm selected", "lsm", d.sel.Selected, "enforcer", enforcer.AlertName(d.sel.Selected))
	if err := writeJSON(filepath.Join(cfg.State, "probe.json"), d.sel); err != nil {
		log.Warn("cannot record the LSM selection", "error", err)
	}
	if b := d.sel.Backend; b != nil {
		defer b.Close()
	}
	// Workers call the backend: they end (with ctx) before it is closed.
	defer d.workerWG.Wait()
	d.message("Info", fmt.Sprintf("ward started: enforcer %s", enforcer.AlertName(d.sel.Selected)))

	for _, err := range d.store.Restore() {
		log.Error("restore policy", "error", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if cfg.Health != "" {
		hl, err := net.Listen("tcp", cfg.Health)
		if err != nil {
			return fmt.Errorf("health listen: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := events.ServeHealth(ctx, hl); err != nil {
				log.Error("health server", "error", err)
			}
		}()
	}
	if cfg.Metrics != "" {
		ml, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", d.metrics.Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			hs.Close()
		}()
		go func() {
			defer wg.Done()
			if err := hs.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "error", err)
			}
		}()
	}
	if cfg.GRPC != "" {
		srv, lis, err := d.grpcServer(pipe)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := events.ServeGRPC(ctx, srv, lis); err != nil {
				log.Error("grpc server", "error", err)
			}
		}()
		d.grpcAddr = lis.Addr()
		log.Info("grpc listening", "address", lis.Addr().String())
	}

	watcher, err := d.watch(ctx, &wg)
	if err != nil {
		return err
	}
	defer watcher.Close()
	d.startHooks(ctx, &wg)
	d.startNRI(ctx, &wg)

	if b := d.sel.Backend; b != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.pipeEvents(ctx, b.Events(), d.attr.Report)
		}()
	}
	if opts.Monitor != nil {
		mon, err := opts.Monitor(d.workloadOf)
		if err != nil {
			log.Warn("system monitor unavailable: no logs, and no alerts in monitor mode", "error", err)
			d.message("Warning", "system monitor unavailable: "+err.Error())
		} else {
			defer mon.Close()
			log.Info("system monitor started")
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.pipeEvents(ctx, mon.Events(), d.attr.ReportObserved)
			}()
		}
	}

	if cfg.KubernetesMode() {
		if err := d.startKube(ctx, &wg); err != nil {
			return err
		}
	}

	d.enqueue()
	first := true
	backoff := time.Second
	resync := time.NewTicker(fullResyncEvery)
	defer resync.Stop()
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case <-d.trigger:
		case <-resync.C:
			full = true
		}
		if err := d.reconcile(ctx, full); err != nil {
			log.Error("reconcile", "error", err, "retry_in", backoff.String())
			time.AfterFunc(backoff, d.enqueue)
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		if first && opts.Ready != nil {
			first = false
			opts.Ready(d)
		}
	}
}

// ReadActiveLSMs reads the kernel's LSM list, mounting securityfs first when it is absent (it is
// not mounted at boot on every machine).
func ReadActiveLSMs(path string) ([]string, error) {
	lsms, err := enforcer.ReadLSMs(path)
	if err == nil || path != enforcer.DefaultLSMPath || !errors.Is(err, os.ErrNotExist) {
		return lsms, err
	}
	if merr := syscall.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, ""); merr != nil {
		return nil, fmt.Errorf("%w (mount securityfs: %v)", err, merr)
	}
	return enforcer.ReadLSMs(path)
}

func (d *Daemon) enqueue() {
	select {
	case d.trigger <- struct{}{}:
	default:
	}
}

// untracked reports whether a namespace gets no enforcement (untrackedNs).
func (d *Daemon) untracked(ns string) bool {
	for _, u := range strings.Split(d.cfg.UntrackedNs, ",") {
		if strings.TrimSpace(u) == ns {
			return true
		}
	}
	return false
}

// Workloads is the node's workload registry; workload sources report to it.
func (d *Daemon) Workloads() *workload.Registry { return d.reg }

// workloadOf names the workload of an observed process by its cgroup: a registered container,
// or else the host.
func (d *Daemon) workloadOf(cgroupID uint64, _ uint32) string {
	if w, ok := d.reg.ByCgroup(cgroupID); ok {
		return w.ID()
	}
	return "host"
}

// pipeEvents hands each event of a source to handle until ctx ends or the source closes.
func (d *Daemon) pipeEvents(ctx context.Context, ch <-chan enforcer.Event, handle func(enforcer.Event)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			handle(ev)
		}
	}
}

func (d *Daemon) message(level, text string) { d.attr.Message(level, text) }

// watchQuiet is how long the policy directory must stay quiet before it is read again: editors
// write a file in several steps, and a half-written file would be refused with an error.
const watchQuiet = 100 * time.Millisecond

// dirChanged asks the next reconcile to read the whole policy directory again.
func (d *Daemon) dirChanged() {
	d.dirMu.Lock()
	d.dirAll = true
	d.dirMu.Unlock()
	d.enqueue()
}

// pathChanged records a path the watcher reported, for the next reconcile to read again.
func (d *Daemon) pathChanged(p string) {
	d.dirMu.Lock()
	if d.dirPaths == nil {
		d.dirPaths = map[string]bool{}
	}
	d.dirPaths[p] = true
	d.dirMu.Unlock()
}

// takeDirChanges returns and forgets what changed in the policy directory.
func (d *Daemon) takeDirChanges() (paths []string, all bool) {
	d.dirMu.Lock()
	defer d.dirMu.Unlock()
	for p := range d.dirPaths {
		paths = append(paths, p)
	}
	all, d.dirAll, d.dirPaths = d.dirAll, false, nil
	return paths, all
}

// watch enqueues a reconcile whenever the policy directory (or a directory below it) changes.
func (d *Daemon) watch(ctx context.Context, wg *sync.WaitGroup) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch policies: %w", err)
	}
	addAll := func() {
		filepath.WalkDir(d.cfg.Policies, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				if err := w.Add(p); err != nil {
					d.log.Warn("watch policy directory", "dir", p, "error", err)
				}
			}
			return nil
		})
	}
	addAll()
	wg.Add(1)
	go func() {
		defer wg.Done()
		var timer *time.Timer
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					addAll()
				}
				d.pathChanged(ev.Name)
				if timer == nil {
					timer = time.AfterFunc(watchQuiet, d.enqueue)
				} else {
					timer.Reset(watchQuiet)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				// Events may have been lost (queue overflow): read everything again.
				d.log.Warn("policy watcher", "error", err)
				d.dirChanged()
			}
		}
	}()
	return w, nil
}

func (d *Daemon) grpcServer(pipe *events.Pipeline) (*grpc.Server, net.Listener, error) {
	lis, err := net.Listen("tcp", d.cfg.GRPC)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc listen: %w", err)
	}
	srv := grpc.NewServer()
	policypb.RegisterPolicyServiceServer(srv, &policyService{d: d})
	events.NewServer(pipe.Broker, d.builder, d.log).Register(srv)
	return srv, lis, nil
}

// policyService is KubeArmor's policy.PolicyService over the store.
type policyService struct {
	policypb.UnimplementedPolicyServiceServer
	d *Daemon
}

func (s *policyService) apply(kind policy.Kind, payload []byte) *policypb.Response {
	st, err := s.d.store.ApplyEvent(kind, payload)
	if err != nil {
		s.d.log.Error("policy service", "kind", kind, "status", st.String(), "error", err.Error())
	} else {
		s.d.log.Info("policy service", "kind", kind, "status", st.String())
		s.d.enqueue()
	}
	return &policypb.Response{Status: st}
}

func (s *policyService) ContainerPolicy(_ context.Context, p *policypb.Policy) (*policypb.Response, error) {
	if !s.d.cfg.EnableKubeArmorPolicy {
		return &policypb.Response{Status: policypb.PolicyStatus_NotEnabled}, nil
	}
	return s.apply(policy.KindPolicy, p.GetPolicy()), nil
}

func (s *policyService) HostPolicy(_ context.Context, p *policypb.Policy) (*policypb.Response, error) {
	if !s.d.cfg.EnableKubeArmorHostPolicy {
		return &policypb.Response{Status: policypb.PolicyStatus_NotEnabled}, nil
	}
	return s.apply(policy.KindHostPolicy, p.GetPolicy()), nil
}

// NetworkPolicy: KubeArmorNetworkPolicy is KubeArmor's nftables firewall, which Ward does not
// implement; say so instead of pretending to apply it.
func (s *policyService) NetworkPolicy(context.Context, *policypb.Policy) (*policypb.Response, error) {
	s.d.log.Warn("policy service: KubeArmorNetworkPolicy is not supported by ward")
	return &policypb.Response{Status: policypb.PolicyStatus_NotEnabled}, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, append(b, '\n'), 0o600)
}
