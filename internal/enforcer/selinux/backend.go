package selinux

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/wardsec/ward/internal/auditlog"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// DefaultSELinuxFS is where the kernel shows SELinux's state when SELinux is active.
const DefaultSELinuxFS = "/sys/fs/selinux"

// RecordSource delivers raw audit record lines to emit until ctx ends.
type RecordSource = auditlog.Source

// Config configures the SELinux backend. Zero values are the defaults.
type Config struct {
	// StateDir holds the installed module and the labels Ward changed (DefaultStateDir).
	StateDir string
	// Runner runs semodule (enforcer.ExecRunner); Labeler reads and writes labels (XattrLabeler).
	Runner  enforcer.Runner
	Labeler Labeler
	// SELinuxFS is checked to prove SELinux is active (DefaultSELinuxFS).
	SELinuxFS string
	// Options describe the base policy (refpolicy's names when zero). Options.Admin, when
	// empty, is the domain Ward runs in (/proc/self/attr/current).
	Options Options
	// ProcRoot is where /proc is ("/proc").
	ProcRoot string

	// For tests: the access computation and the contexts the start-up check asks about.
	allowed                  func(selinuxfs, scon, tcon, class string, perms ...string) (bool, error)
	targetContext, fsContext string
	// Records is where AVC records come from: NetlinkSource, or KmsgSource when the audit
	// netlink group cannot be joined.
	Records RecordSource
	Logger  *slog.Logger
}

// Backend is the SELinux implementation of enforcer.Backend. It enforces the host's rule set
// only: SELinux labels are per file, not per container, so container and pod sets are left to
// another backend (Apply reports them as warnings), as KubeArmor does.
type Backend struct {
	loader  *Loader
	opts    Options
	log     *slog.Logger
	records *auditlog.Reader[enforcer.Event]

	applyMu  sync.Mutex
	mu       sync.Mutex
	set      *rules.Set
	module   *Module
	domain   Domain
	procRoot string
	// WarningBook holds what the backend does not enforce as written, for every workload
	// (each warning names its workload): it implements enforcer.Warner.
	enforcer.WarningBook
}

var _ enforcer.Backend = (*Backend)(nil)

// Factory returns the enforcer.Factory that selection calls.
func Factory(cfg Config) enforcer.Factory {
	return func(ctx context.Context) (enforcer.Backend, error) { return New(ctx, cfg) }
}

// New checks that SELinux is active and semodule is installed, reads the state a previous run
// left, and starts reading AVC records. A machine without either gets an error wrapping
// enforcer.ErrNotSupported.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.SELinuxFS == "" {
		cfg.SELinuxFS = DefaultSELinuxFS
	}
	if _, err := os.Stat(filepath.Join(cfg.SELinuxFS, "enforce")); err != nil {
		return nil, fmt.Errorf("selinux: %s is not mounted or SELinux is not active: %w (%w)", cfg.SELinuxFS, enforcer.ErrNotSupported, err)
	}
	if cfg.Runner == nil {
		if _, err := exec.LookPath("semodule"); err != nil {
			return nil, fmt.Errorf("selinux: semodule is not installed (policycoreutils): %w", enforcer.ErrNotSupported)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	loader, err := NewLoader(cfg.StateDir, cfg.Runner, cfg.Labeler)
	if err != nil {
		return nil, fmt.Errorf("selinux: %w", err)
	}
	dom, err := checkSelf(&cfg, loader)
	if err != nil {
		return nil, err
	}
	if cfg.Records == nil {
		cfg.Records = auditlog.Default(cfg.Logger, "selinux", NetlinkSource(), KmsgSource("/dev/kmsg"))
	}
	b := &Backend{loader: loader, opts: cfg.Options, log: cfg.Logger, domain: dom, procRoot: cfg.ProcRoot}
	b.records = auditlog.Start(ctx, b.log, "selinux", cfg.Records, b.record)
	return b, nil
}

// checkSelf finds the domain Ward runs in (Options.Admin when given) and asks the kernel whether
// it may relabel files and load a policy. It says so in the log, and refuses (so that the
// selection falls back) a domain that may not relabel, or that may not load a policy while
// the module in force is not the one this domain needs.
func checkSelf(cfg *Config, loader *Loader) (Domain, error) {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	ctx := ""
	if cfg.Options.Admin == "" {
		c, err := selfContext(cfg.ProcRoot)
		if err != nil {
			return Domain{}, fmt.Errorf("selinux: %w", err)
		}
		ctx = c
		cfg.Options.Admin = typeOfContext(c)
	} else {
		ctx = "system_u:system_r:" + cfg.Options.Admin + ":s0"
	}
	target, fsCtx := cfg.targetContext, cfg.fsContext
	if target == "" {
		target, _ = XattrLabeler{}.Get("/etc")
	}
	if fsCtx == "" {
		fsCtx, _ = XattrLabeler{}.Get(cfg.SELinuxFS)
	}
	if cfg.allowed == nil {
		cfg.allowed = allowed
	}
	d := checkDomain(cfg.allowed, cfg.SELinuxFS, ctx, target, fsCtx)
	cfg.Logger.Info("selinux domain", "domain", d.Type, "context", d.Context, "relabel", d.Relabel, "load_policy", d.LoadPolicy, "why", d.Why)
	if d.Relabel == No {
		return d, fmt.Errorf("selinux: ward runs in domain %s, which may not relabel files (%s): run it in a domain that may, such as unconfined_service_t: %w",
			d.Type, d.Why, enforcer.ErrNotSupported)
	}
	if d.LoadPolicy == No {
		m, _, err := Render(&rules.Set{Workload: workload.Workload{Kind: workload.KindHost}}, cfg.Options)
		if err != nil {
			return d, fmt.Errorf("selinux: %w", err)
		}
		if !bytes.Equal(loader.Installed(), m.Text) {
			return d, fmt.Errorf("selinux: ward runs in domain %s, which may not load a policy (%s), and Ward's module for this domain is not installed: %w",
				d.Type, d.Why, enforcer.ErrNotSupported)
		}
	}
	return d, nil
}

// Domain returns what the start-up check found about Ward's own domain.
func (b *Backend) Domain() Domain { return b.domain }

// Limitations implements enforcer.Limiter: what this backend cannot close, said at start and by
// ward probe.
func (b *Backend) Limitations() []string {
	out := []string{
		fmt.Sprintf("only Ward's domain (%s) may relabel or list what Ward protects; every other process in %s may too, so run Ward in a domain of its own", b.domain.Type, b.domain.Type),
		"a domain that may load a policy (semodule -r) or mount a file system with context= can undo Ward's labels: SELinux cannot protect against its own administrator",
		"a file moved into a protected directory keeps its own label; a file created there later gets the directory's",
		"container and pod policies are not enforced: SELinux labels files, not containers",
	}
	if b.domain.LoadPolicy == No {
		out = append(out, fmt.Sprintf("domain %s may not load a policy: fromSource rules (which change the module) cannot be applied", b.domain.Type))
	}
	return out
}

// Name implements enforcer.Backend.
func (b *Backend) Name() string { return enforcer.SELinux }

// Events implements enforcer.Backend.
func (b *Backend) Events() <-chan enforcer.Event { return b.records.Events() }

// Loader returns the backend's loader (for ward probe and tests).
func (b *Backend) Loader() *Loader { return b.loader }

// Apply implements enforcer.Backend: it renders the host set, installs the module when its text
// changed, labels what the set names and restores the labels of everything it no longer names.
// Without a host set every label Ward changed is restored. On a render or install error the
// previous module and labels stay in force.
func (b *Backend) Apply(ctx context.Context, sets []*rules.Set) error {
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	warnings := map[string][]enforcer.Warning{}
	var hostSet *rules.Set
	for _, s := range sets {
		if s.Workload.Kind == workload.KindHost {
			hostSet = s
			continue
		}
		// Host policies only: the support table reports each of the workload's policies.
		if ws := enforcer.CheckSet(enforcer.SELinux, s); len(ws) > 0 {
			warnings[s.Workload.ID()] = ws
		}
	}
	if hostSet == nil {
		hostSet = &rules.Set{Workload: workload.Workload{Kind: workload.KindHost}}
	}
	m, warns, err := Render(hostSet, b.opts)
	if err != nil {
		return fmt.Errorf("apply selinux policy: %w", err)
	}
	if err := b.loader.Install(ctx, m); err != nil {
		// The previous module and labels stay in force, and so does what a previous run left:
		// its denials are still reported, attributed with the set in force (or, on the first
		// apply, the one wanted).
		b.mu.Lock()
		if b.set == nil {
			b.set = hostSet
		}
		b.mu.Unlock()
		return fmt.Errorf("apply selinux policy: %w", err)
	}
	known := make([]string, 0)
	for p := range b.loader.Labels() {
		known = append(known, p)
	}
	slices.Sort(known)
	want, planWarns := Plan(m, known)
	warns = append(warns, planWarns...)
	if len(warns) > 0 {
		warnings[hostSet.Workload.ID()] = warns
	}
	// The module is in force before any file carries one of its types.
	b.mu.Lock()
	b.set, b.module = hostSet, m
	b.ReplaceWarnings(warnings)
	b.mu.Unlock()
	if err := b.loader.Label(want); err != nil {
		return fmt.Errorf("apply selinux labels: %w", err)
	}
	return nil
}

// Close stops reading records. Labels and the module stay on purpose: they keep the host
// protected while Ward restarts; the next Apply (or Restore) changes what is no longer wanted.
func (b *Backend) Close() error {
	b.records.Close()
	return nil
}

// record turns one AVC record about Ward's types or domains into an event; ok is false for any
// other record.
func (b *Backend) record(line string) (ev enforcer.Event, ok bool) {
	rec, err := ParseAVC(line)
	if err != nil {
		return ev, false
	}
	b.mu.Lock()
	set, m := b.set, b.module
	b.mu.Unlock()
	if set == nil || !(strings.HasPrefix(rec.TargetType(), "ward_") || strings.HasPrefix(rec.SourceType(), "ward_d_")) {
		return ev, false
	}
	a, _ := Attribute(set, rec, Resolver{
		PathsOf: b.loader.PathsOf,
		SourceOf: func(d string) string {
			if m == nil {
				return ""
			}
			for i, dom := range m.Domains {
				if dom == d {
					return m.Sources[i]
				}
			}
			return ""
		},
		Exe: func(pid int) string { return enforcer.Executable(uint32(pid)) },
	})
	if a.Op == "" {
		return ev, false
	}
	ev = enforcer.Event{
		Backend: enforcer.SELinux, Workload: set.Workload.ID(),
		PID: uint32(rec.PID), PPID: enforcer.ProcPPID(b.procRoot, rec.PID), Comm: rec.Comm, Access: a, Detail: strings.TrimSpace(line),
	}
	if rec.Denied && !rec.Permissive {
		ev.Errno = int(syscall.EACCES)
	}
	return ev, true
}

// KmsgSource reads records from the kernel log device, starting at its end. Without an audit
// daemon the kernel rate-limits what it prints there (10 records in 5 seconds by default), so a
// busy node loses records; NetlinkSource does not, and is the default.
func KmsgSource(path string) RecordSource { return RecordSource(auditlog.Kmsg(path, "avc:")) }
