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
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/google/renameio/v2"
	"google.golang.org/grpc"
	"k8s.io/client-go/util/workqueue"

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
	health  *events.Health
	attr    *events.Attributor
	sel     enforcer.Selection

	// rounds queues the reconcile rounds (newRoundQueue); enqueue asks for one.
	rounds workqueue.TypedRateLimitingInterface[string]
	// dirMu guards what the watcher saw change: paths to read again, or dirAll to read the
	// whole policy directory.
	dirMu    sync.Mutex
	dirPaths map[string]bool
	dirAll   bool
	plan     planner
	workerState
	// inForce maps each workload ID to the rule set the backend has in force for it, read by
	// the event pipeline and the OCI hook; rulesInForce counts their rules (setsMu).
	inForce      setTable
	rulesInForce int
	// unenforced is what the backend does not enforce as written of those sets (setsMu).
	unenforced unenforced
	// wanted maps each workload ID to the set last compiled for it, in force or not: events of
	// a workload whose set the backend has not (yet) taken are attributed with it.
	wanted setTable

	grpcAddr net.Addr
	// kube is the cluster view in Kubernetes mode, nil otherwise.
	kube *kube.Source
}

// GRPCAddr is the address the gRPC services listen on, or nil.
func (d *Daemon) GRPCAddr() net.Addr { return d.grpcAddr }

// Selection is the LSM choice the daemon made.
func (d *Daemon) Selection() enforcer.Selection { return d.sel }

// Sets returns a copy of the rule sets in force, by workload ID.
func (d *Daemon) Sets() map[string]*rules.Set { return d.inForce.snapshot() }

// Run starts the daemon and blocks until ctx is done: the health port first (a first load of
// BPF programs or profiles can take minutes on a slow node, and must not pass for a hung daemon),
// then the enforcer, the other servers, the sources of workloads, policies and events, and the
// reconcile loop. Each phase is its own method; their order here is the shutdown order reversed.
func Run(ctx context.Context, opts Options) error {
	d, pipe, closeLog, err := newDaemon(opts)
	if err != nil {
		return err
	}
	defer closeLog()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.startHealth(ctx, &wg); err != nil {
		return err
	}

	// Loading the first backend can take minutes on a slow node: say what is going on.
	d.log.Info("selecting the enforcer", "order", d.cfg.LSM, "policies", d.cfg.Policies, "state", d.cfg.State)
	if err := d.selectEnforcer(ctx, opts.LSMPath, opts.Factories); err != nil {
		return err
	}
	if b := d.sel.Backend; b != nil {
		defer b.Close()
	}
	// Workers call the backend: they end (with sctx) before it is closed, and the servers and
	// sources end before that.
	defer d.workerWG.Wait()
	var swg sync.WaitGroup
	defer swg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	d.message("Info", fmt.Sprintf("ward started: enforcer %s", enforcer.AlertName(d.sel.Selected)))
	for _, err := range d.store.Restore() {
		d.log.Error("restore policy", "error", err)
	}

	if err := d.startServers(sctx, &swg, pipe); err != nil {
		return err
	}
	closeSources, err := d.startSources(sctx, &swg, opts.Monitor)
	defer closeSources()
	if err != nil {
		return err
	}
	d.loop(sctx, opts.Ready)
	return nil
}

// newDaemon makes the state and policy directories and the daemon with its event pipeline:
// throttling per workload, the JSON lines sink (closed by closeLog), the gRPC watchers and the
// metrics, with the attribution of kernel events in front of it.
func newDaemon(opts Options) (d *Daemon, pipe *events.Pipeline, closeLog func(), err error) {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.State, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("state directory: %w", err)
	}
	if err := os.MkdirAll(cfg.Policies, 0o755); err != nil {
		return nil, nil, nil, fmt.Errorf("policy directory: %w", err)
	}
	d = &Daemon{
		cfg:     cfg,
		log:     log,
		store:   policystore.New(cfg.Policies, cfg.State),
		builder: &events.Builder{Cluster: cfg.Cluster, HostName: cfg.Host, Now: time.Now},
		metrics: events.NewMetrics(),
		health:  events.NewHealth(),
		// At most one round at a time; changes arriving meanwhile fold into one more round, and a
		// failed round is retried with backoff, or at once when new changes arrive.
		rounds: newRetryQueue("ward-reconcile"),
		plan:   planner{workloads: map[string]*planned{}},
		// The first reconcile reads the whole policy directory.
		dirAll:      true,
		workerState: workerState{inForceChanged: make(chan struct{})},
	}
	pipe = &events.Pipeline{
		Builder: d.builder, Broker: events.NewBroker(0, d.metrics), Metrics: d.metrics, Log: log,
		Throttle: events.NewThrottler(events.ThrottleConfig{Enabled: cfg.AlertThrottling,
			MaxAlertsPerSec: cfg.MaxAlertPerSec, ThrottleSec: cfg.ThrottleSec}, nil),
	}
	closeLog = func() {}
	if cfg.LogPath != events.LogPathNone && cfg.LogPath != "" {
		stdout := opts.Stdout
		if stdout == nil {
			stdout = os.Stdout
		}
		jl, err := events.OpenJSONLines(cfg.LogPath, stdout)
		if err != nil {
			return nil, nil, nil, err
		}
		closeLog = func() { jl.Close() }
		pipe.JSON = jl
	}
	d.attr = &events.Attributor{InForce: d.inForce.get, Wanted: d.wanted.get, Replaced: d.replacedSet, Builder: d.builder, Sinks: append([]events.Sink{pipe}, opts.Sinks...),
		Log: log, Visibility: cfg.Visibility, HostVisibility: cfg.HostVisibility}
	d.reg = workload.NewRegistry(d.enqueue)
	d.reg.Upsert(workload.Host(cfg.Host, nil))
	return d, pipe, closeLog, nil
}

// startHealth serves grpc.health.v1 on its own port, as KubeArmor does, so a probe still answers
// while watchers saturate the main port. Liveness ("") answers SERVING from now on, readiness
// (events.ReadyService) once the first round of rules is in force.
func (d *Daemon) startHealth(ctx context.Context, wg *sync.WaitGroup) error {
	if d.cfg.Health == "" {
		return nil
	}
	hl, err := net.Listen("tcp", d.cfg.Health)
	if err != nil {
		return fmt.Errorf("health listen: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.health.Serve(ctx, hl); err != nil {
			d.log.Error("health server", "error", err)
		}
	}()
	return nil
}

// selectEnforcer picks the first backend of the configured order that works here, logs every
// attempt and records the choice in the state directory for `ward probe` and operators.
func (d *Daemon) selectEnforcer(ctx context.Context, lsmPath string, factories map[string]enforcer.Factory) error {
	order, err := enforcer.ParseOrder(d.cfg.LSM)
	if err != nil {
		return err
	}
	if lsmPath == "" {
		lsmPath = enforcer.DefaultLSMPath
	}
	lsms, err := ReadActiveLSMs(lsmPath)
	if err != nil {
		d.log.Warn("cannot read the active security modules", "error", err)
	}
	d.sel = enforcer.Select(ctx, lsms, order, factories)
	d.attr.Enforcing = d.sel.Backend != nil
	// A backend with counters of its own (BPF-LSM's ring-buffer drops and unresolved paths)
	// exports them on /metrics.
	if err := d.metrics.AddCollector(d.sel.Backend); err != nil {
		d.log.Warn("cannot export the enforcer's metrics", "error", err)
	}
	for _, a := range d.sel.Attempts {
		d.log.Info("lsm attempt", "lsm", a.LSM, "ok", a.OK, "reason", a.Reason)
		for _, l := range a.Limitations {
			d.log.Warn("enforcement limitation", "lsm", a.LSM, "limitation", l)
		}
	}
	d.log.Info("lsm selected", "lsm", d.sel.Selected, "enforcer", enforcer.AlertName(d.sel.Selected))
	if err := writeJSON(filepath.Join(d.cfg.State, "probe.json"), d.sel); err != nil {
		d.log.Warn("cannot record the LSM selection", "error", err)
	}
	return nil
}

// startServers starts the metrics endpoint and the gRPC services (KubeArmor's LogService and
// PolicyService, and health on the main port too), each until ctx ends.
func (d *Daemon) startServers(ctx context.Context, wg *sync.WaitGroup, pipe *events.Pipeline) error {
	if d.cfg.Metrics != "" {
		ml, err := net.Listen("tcp", d.cfg.Metrics)
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
				d.log.Error("metrics server", "error", err)
			}
		}()
	}
	if d.cfg.GRPC != "" {
		srv, lis, err := d.grpcServer(pipe)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := events.ServeGRPC(ctx, srv, lis); err != nil {
				d.log.Error("grpc server", "error", err)
			}
		}()
		d.grpcAddr = lis.Addr()
		d.log.Info("grpc listening", "address", lis.Addr().String())
	}
	return nil
}

// startSources starts what feeds the daemon: the policy directory watcher, the OCI hook and NRI
// registrations, the backend's and the monitor's events, and in Kubernetes mode the cluster
// view. closeSources releases what they hold and is safe to call whatever err is.
func (d *Daemon) startSources(ctx context.Context, wg *sync.WaitGroup,
	monitor func(workloadOf func(cgroupID uint64, pid uint32) string) (EventSource, error)) (closeSources func(), err error) {
	var closers []io.Closer
	closeSources = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
	}
	watcher, err := d.watch(ctx, wg)
	if err != nil {
		return closeSources, err
	}
	closers = append(closers, watcher)
	d.startHooks(ctx, wg)
	d.startNRI(ctx, wg)

	if b := d.sel.Backend; b != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.pipeEvents(ctx, b.Events(), d.attr.Report)
		}()
	}
	if monitor != nil {
		mon, err := monitor(d.workloadOf)
		if err != nil {
			d.log.Warn("system monitor unavailable: no logs, and no alerts in monitor mode", "error", err)
			d.message("Warning", "system monitor unavailable: "+err.Error())
		} else {
			closers = append(closers, mon)
			d.log.Info("system monitor started")
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.pipeEvents(ctx, mon.Events(), d.attr.ReportObserved)
			}()
		}
	}
	if d.cfg.KubernetesMode() {
		if err := d.startKube(ctx, wg); err != nil {
			return closeSources, err
		}
	}
	return closeSources, nil
}

// Keys of the rounds queue: a round after changes, and the periodic full resync.
const (
	changesRound = "changes"
	fullRound    = "full"
)

// loop reconciles on every change and every fullResyncEvery until ctx ends; the first round
// that leaves the rules in force makes the daemon ready.
func (d *Daemon) loop(ctx context.Context, ready func(*Daemon)) {
	go func() {
		resync := time.NewTicker(fullResyncEvery)
		defer resync.Stop()
		for {
			select {
			case <-ctx.Done():
				d.rounds.ShutDown()
				return
			case <-resync.C:
				d.rounds.Add(fullRound)
			}
		}
	}()
	d.enqueue()
	first := true
	for {
		key, shutdown := d.rounds.Get()
		if shutdown {
			return
		}
		if err := d.reconcile(ctx, key == fullRound); err != nil && ctx.Err() == nil {
			d.log.Error("reconcile", "error", err, "retry_in", retryIn(d.rounds.NumRequeues(key)).String())
			d.rounds.AddRateLimited(key)
		} else {
			d.rounds.Forget(key)
			d.saveKubeSnapshot()
		}
		d.rounds.Done(key)
		if d.sel.Backend == nil || d.plan.synced {
			d.health.SetReady()
		}
		if first && ready != nil {
			first = false
			ready(d)
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

func (d *Daemon) enqueue() { d.rounds.Add(changesRound) }

// untrackedNamespaces lists untrackedNs: the namespaces that get no enforcement.
func (d *Daemon) untrackedNamespaces() []string {
	var out []string
	for _, u := range strings.Split(d.cfg.UntrackedNs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
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
	d.health.Register(srv)
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
