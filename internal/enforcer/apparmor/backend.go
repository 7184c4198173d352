package apparmor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardsec/ward/internal/auditlog"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// DefaultSecurityFS is where the kernel shows AppArmor's state when AppArmor is active.
const DefaultSecurityFS = "/sys/kernel/security/apparmor"

// RecordSource delivers raw audit record lines to emit until ctx ends. KmsgSource is the default.
type RecordSource = auditlog.Source

// HostAttach says which host processes enter the host profile by themselves.
type HostAttach string

const (
	// HostAttachAll (the default): every program that an unconfined process starts after the
	// host profile is loaded enters it, and its children inherit it. Programs with a profile of
	// their own keep it, and Ward's own executables stay unconfined (ExemptProfile).
	HostAttachAll HostAttach = "all"
	// HostAttachNone: only processes started in the profile (aa-exec, systemd's
	// AppArmorProfile=) are confined.
	HostAttachNone HostAttach = "none"
)

// Config configures the AppArmor backend. Zero values are the defaults.
type Config struct {
	// Dir is the profile directory (DefaultDir).
	Dir string
	// Runner runs apparmor_parser (enforcer.ExecRunner).
	Runner enforcer.Runner
	// Host holds the parser's includes; nil reads them from DefaultDir.
	Host *Host
	// SecurityFS is checked to prove AppArmor is active (DefaultSecurityFS).
	SecurityFS string
	// Records is where kernel records come from: NetlinkSource, or KmsgSource when the audit
	// netlink group cannot be joined.
	Records RecordSource
	// HostAttach is HostAttachAll when empty.
	HostAttach HostAttach
	// ProcRoot is where processes are listed, to report those the host profile cannot reach
	// ("/proc").
	ProcRoot string
	Logger   *slog.Logger
	// PodProfileGrace is how long a profile whose name a pod gave stays loaded after its last
	// workload went (DefaultPodProfileGrace when zero).
	PodProfileGrace time.Duration
}

// DefaultPodProfileGrace keeps a pod-named profile loaded across a container's restart. The
// runtime refuses to create a container whose pod names a profile the kernel does not hold
// ("apparmor profile not found"), and between the removal of a container's workload and the
// return of its pod's view (one round, and a parse on a slow node) there was no workload of
// that name: every restart or failed start of a container then failed its next try.
const DefaultPodProfileGrace = time.Minute

// Backend is the AppArmor implementation of enforcer.Backend: one profile per workload,
// loaded with apparmor_parser, events from the kernel's audit records.
type Backend struct {
	loader *Loader
	opts   Options
	// hostOpts renders the host profile: opts plus the attachment and the exempt executables.
	hostOpts Options
	// exempt is ExemptProfile, loaded before the host profile when that attaches to every
	// program.
	exempt Profile
	// securityFS is the kernel's AppArmor directory: its profile list and .remove unload the
	// retired profiles and entries that no file holds (unloadRetired, unloadEntries).
	securityFS string
	procRoot   string
	// hostRoot is where the host's files are read (hostAlias): enforcer.HostRoot, or a test's
	// directory.
	hostRoot string
	// unreached reports, once, the host processes that predate the host profile.
	unreached sync.Once
	log       *slog.Logger
	records   *auditlog.Reader[enforcer.Event]

	// applyMu lets ApplyWorkload calls run side by side (read lock) while Apply, which replaces
	// the whole state and prunes, runs alone (write lock).
	applyMu sync.RWMutex
	// workloads serialises calls for one workload, and names loads and unloads of one
	// profile name, which several workloads share (the pods of one Deployment, and a container
	// whose ID changes from its pod's view to the runtime's).
	workloads enforcer.WorkloadLocks
	names     enforcer.WorkloadLocks
	mu        sync.Mutex
	// byName maps a loaded profile to its workload's set, for attribution; byWorkload maps a
	// workload ID to its profile name; text is what each loaded profile holds.
	byName     map[string]*rules.Set
	byWorkload map[string]string
	text       map[string][]byte
	// sharedChildren is each profile's Profile.Shared: the child profiles more than one fromSource
	// executable runs in: record tells their records apart by the process's executable.
	sharedChildren map[string]map[string][]string
	// pathEntries maps the label of each entry profile named by its path (PathEntries) in a
	// loaded text of Ward's to that text's profile: the label alone does not say it is Ward's.
	pathEntries map[string]string
	// loading holds the set of a profile whose load has started and is not in byName yet, and
	// replaced the set a profile held before its last load. The kernel takes a profile before
	// apparmor_parser returns, and records of the old one can still be read after byName
	// changed, so record shapes an access with whichever of the three explains a denial
	// (shapeRecord).
	loading  map[string]*rules.Set
	replaced map[string]*rules.Set
	// podGrace and unloads: pod-named profiles whose last workload went, unloaded after
	// podGrace unless claimed again (mu).
	podGrace time.Duration
	unloads  map[string]*time.Timer
	closed   bool
	// WarningBook holds what the applied profiles do not enforce as written, for every
	// workload (each warning names its workload): it implements enforcer.Warner.
	enforcer.WarningBook
}

var (
	_ enforcer.Backend         = (*Backend)(nil)
	_ enforcer.WorkloadApplier = (*Backend)(nil)
)

// Factory returns the enforcer.Factory that selection calls.
func Factory(cfg Config) enforcer.Factory {
	return func(ctx context.Context) (enforcer.Backend, error) { return New(ctx, cfg) }
}

// New checks that AppArmor is active and the parser is installed, and starts reading records.
// A machine without either gets an error wrapping enforcer.ErrNotSupported.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.SecurityFS == "" {
		cfg.SecurityFS = DefaultSecurityFS
	}
	if _, err := os.Stat(cfg.SecurityFS); err != nil {
		return nil, fmt.Errorf("apparmor: %s: %w (%w)", cfg.SecurityFS, enforcer.ErrNotSupported, err)
	}
	if cfg.Runner == nil {
		if _, err := exec.LookPath("apparmor_parser"); err != nil {
			return nil, fmt.Errorf("apparmor: apparmor_parser is not installed: %w", enforcer.ErrNotSupported)
		}
	}
	host := ReadHost(DefaultDir)
	if cfg.Host != nil {
		host = *cfg.Host
	}
	if !host.has(ABI) {
		return nil, fmt.Errorf("apparmor: the parser's %s is missing from %s: Ward's profiles pin it so that their network rules are compiled, not dropped (install the apparmor package's %s/abi): %w",
			ABI, DefaultDir, DefaultDir, enforcer.ErrNotSupported)
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("apparmor: profile directory: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Records == nil {
		cfg.Records = auditlog.Default(cfg.Logger, "apparmor", NetlinkSource(), KmsgSource("/dev/kmsg"))
	}
	hostOpts := Options{Host: host}
	switch cfg.HostAttach {
	case "", HostAttachAll:
		hostOpts.AttachAll = true
		hostOpts.AttachExcept = runtimeExecutables(enforcer.HostRoot())
	case HostAttachNone:
	default:
		return nil, fmt.Errorf("apparmor: host attach %q: want %q or %q", cfg.HostAttach, HostAttachAll, HostAttachNone)
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.PodProfileGrace == 0 {
		cfg.PodProfileGrace = DefaultPodProfileGrace
	}
	var exempt Profile
	if hostOpts.AttachAll {
		var err error
		hostOpts.Exempt = exemptExecutables()
		if exempt, err = RenderExempt(hostOpts.Exempt); err != nil {
			return nil, fmt.Errorf("apparmor: %w", err)
		}
	}
	b := &Backend{
		exempt: exempt,
		loader: NewLoader(cfg.Dir, cfg.Runner),
		opts:   Options{Host: host}, hostOpts: hostOpts, securityFS: cfg.SecurityFS, procRoot: cfg.ProcRoot, hostRoot: enforcer.HostRoot(),
		log:    cfg.Logger,
		byName: map[string]*rules.Set{}, byWorkload: map[string]string{}, text: map[string][]byte{},
		sharedChildren: map[string]map[string][]string{}, pathEntries: map[string]string{},
		loading: map[string]*rules.Set{}, replaced: map[string]*rules.Set{},
		podGrace: cfg.PodProfileGrace, unloads: map[string]*time.Timer{},
	}
	b.seedText(cfg.Dir, cfg.SecurityFS)
	b.records = auditlog.Start(ctx, b.log, "apparmor", cfg.Records, b.record)
	return b, nil
}

// seedText records as loaded the text of each of Ward's profile files whose profile the kernel
// holds, so that a restarted daemon does not compile and load again a profile it renders to the
// same text: one apparmor_parser run each, a quarter of a second of the benchmark guest's time
// for a small profile (docs/apparmor.md, "The Backend"). The file is what the kernel holds: Load
// puts it in place only after the kernel accepted its text, and the boot-time AppArmor service
// loads the directory's files. A profile the kernel does not hold, or a file without Ward's
// header, is loaded again at its first apply.
func (b *Backend) seedText(dir, securityFS string) {
	names, err := loadedWardProfiles(filepath.Join(securityFS, "profiles"))
	if err != nil {
		b.log.Warn("apparmor: list of loaded profiles unreadable, every profile is loaded again", "error", err.Error())
		return
	}
	for _, name := range names {
		if checkName(name) != nil {
			continue // an entry profile (EntryName): it lives in its workload's file
		}
		// Load's own test of a profile's text: Ward's header, naming this profile.
		text, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && bytes.HasPrefix(text, []byte(HeaderPrefix+name+"\n")) {
			b.setText(name, text)
		}
	}
	if len(b.text) > 0 {
		b.log.Info("apparmor profiles the kernel holds as written on disk, loaded again only if they change", "profiles", len(b.text))
	}
}

// Name implements enforcer.Backend.
func (b *Backend) Name() string { return enforcer.AppArmor }

// Events implements enforcer.Backend.
func (b *Backend) Events() <-chan enforcer.Event { return b.records.Events() }

// Apply implements enforcer.Backend: it renders and loads one profile per set, leaves a
// workload's previous profile in force when its new one fails, and unloads Ward's profiles of
// workloads no longer in sets.
func (b *Backend) Apply(ctx context.Context, sets []*rules.Set) error {
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	b.mu.Lock()
	byName := map[string]*rules.Set{}
	byWorkload := map[string]string{}
	warnings := map[string][]enforcer.Warning{}
	oldWorkload, oldName := b.byWorkload, b.byName
	b.mu.Unlock()

	var errs []error
	var keep []string
	for i, r := range b.loadProfiles(ctx, sets) {
		s := sets[i]
		id := s.Workload.ID()
		if r.err != nil {
			errs = append(errs, fmt.Errorf("workload %s: %w", id, r.err))
			if name, ok := oldWorkload[id]; ok {
				keep = append(keep, name)
				byName[name], byWorkload[id], warnings[id] = oldName[name], name, b.WorkloadWarnings(id)
			}
			continue
		}
		keep = append(keep, r.name)
		byName[r.name], byWorkload[id], warnings[id] = r.set, r.name, r.warns
	}
	if b.hostOpts.AttachAll {
		keep = append(keep, ExemptProfile)
	}
	removed, err := b.loader.Prune(ctx, keep)
	if err != nil {
		errs = append(errs, err)
	}
	if err := b.unloadEntries(removed); err != nil {
		errs = append(errs, err)
	}
	b.mu.Lock()
	for _, name := range removed {
		b.setText(name, nil)
		delete(b.sharedChildren, name)
		delete(b.replaced, name)
	}
	for name, s := range byName {
		if old := oldName[name]; old != nil && old != s {
			b.replaced[name] = old
		}
	}
	clear(b.loading) // Apply runs alone: every load it started is in byName now, or failed
	b.byName, b.byWorkload = byName, byWorkload
	b.ReplaceWarnings(warnings)
	b.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("apply apparmor profiles: %w", err)
	}
	return nil
}

// loaded is what loading one set's profile gave: its name and warnings, or the error that left
// the workload's previous profile in force.
type loaded struct {
	name  string
	set   *rules.Set // the set rendered (renderProfile), for attribution
	warns []enforcer.Warning
	err   error
}

// loadProfiles loads the profiles of sets, result i for sets[i]: apparmor_parser compiles a
// profile on one CPU (a quarter of a second for a small one, minutes for 10,000 rules), so
// profiles of different names load side by side, as many at once as Go may use CPUs, and a
// daemon that starts on a node with many pods is not held up by the sum. Sets that render to
// one name (the pods of one workload, named by the admission webhook) load one after the other
// in their order, so that the last one's text is in force, as one by one.
func (b *Backend) loadProfiles(ctx context.Context, sets []*rules.Set) []loaded {
	res := make([]loaded, len(sets))
	profs := make([]Profile, len(sets))
	rendered := make([]*rules.Set, len(sets))
	var names []string
	byName := map[string][]int{}
	held, others := b.loadedProfiles()
	for i, s := range sets {
		profs[i], rendered[i], res[i].warns, res[i].err = b.renderProfile(s, held, others)
		if res[i].err != nil {
			continue
		}
		n := profs[i].Name
		if byName[n] == nil {
			names = append(names, n)
		}
		byName[n] = append(byName[n], i)
	}
	slots := make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			for _, i := range byName[n] {
				if err := b.loadRendered(ctx, rendered[i], profs[i]); err != nil {
					res[i] = loaded{err: err}
					continue
				}
				res[i].name, res[i].set = n, rendered[i]
			}
		}()
	}
	wg.Wait()
	return res
}

// renderProfile renders a workload's profile, with the warnings about what it does not enforce,
// and returns the set it rendered, which attributes the profile's records: the host's with the
// paths its symlinks lead to (hostAlias), any other as given. held and others are
// loadedProfiles': the children and entries the kernel holds, which the render keeps, retired,
// when it would drop them, and the profiles that are not Ward's.
func (b *Backend) renderProfile(set *rules.Set, held map[string][]string, others []string) (Profile, *rules.Set, []enforcer.Warning, error) {
	opts := b.optionsFor(set)
	opts.Held, opts.Others = held[opts.profileName(set.Workload)], others
	rendered := set
	if set.Workload.Kind == workload.KindHost {
		var err error
		if rendered, err = set.WithAliases(hostAlias(b.hostRoot)); err != nil {
			return Profile{}, nil, nil, err
		}
	}
	prof, warns, err := Render(rendered, opts)
	if err != nil {
		return Profile{}, nil, nil, err
	}
	if opts.Name == "" && set.Workload.Kind == workload.KindContainer && set.Workload.Pod != "" {
		warns = append(warns, unattached(set)...)
	}
	return prof, rendered, append(warns, hardLinked(set)...), nil
}

// loadProfile renders a workload's profile and loads it unless the kernel already holds the same
// text, and returns the set it rendered (renderProfile). On error the workload's previous profile
// stays in force.
func (b *Backend) loadProfile(ctx context.Context, set *rules.Set) (string, *rules.Set, []enforcer.Warning, error) {
	held, others := b.loadedProfiles()
	prof, rendered, warns, err := b.renderProfile(set, held, others)
	if err != nil {
		return "", nil, nil, err
	}
	if err := b.loadRendered(ctx, rendered, prof); err != nil {
		return "", nil, nil, err
	}
	return prof.Name, rendered, warns, nil
}

// loadRendered loads set's rendered profile unless the kernel already holds the same text.
func (b *Backend) loadRendered(ctx context.Context, set *rules.Set, prof Profile) error {
	// The host's profile is rendered with hostOpts (optionsFor).
	attachAll := set.Workload.Kind == workload.KindHost && b.hostOpts.AttachAll
	if attachAll {
		// Ward and its parser must be exempt before the attachment can reach them.
		if err := b.loadText(ctx, b.exempt); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.loading[prof.Name] = set
	b.mu.Unlock()
	if err := b.loadText(ctx, prof); err != nil {
		b.mu.Lock()
		delete(b.loading, prof.Name)
		b.mu.Unlock()
		return err
	}
	if attachAll {
		b.unreached.Do(b.reportUnreached)
	}
	// The profile is in force: a retired one left loaded is unloaded by a later load.
	if err := b.unloadRetired(prof.Retired); err != nil {
		b.log.Warn("apparmor: retired profiles stay loaded until the next load", "profile", prof.Name, "error", err.Error())
	}
	return nil
}

// loadedProfiles maps each of Ward's profiles the kernel holds to the labels of its children
// and entry profiles (Options.Held), and lists the top-level profiles that are not Ward's
// (Options.Others). An unreadable list gives none: the render then drops what it no longer
// needs, and the kernel keeps those children with their old rules.
func (b *Backend) loadedProfiles() (held map[string][]string, others []string) {
	labels, err := loadedLabels(filepath.Join(b.securityFS, "profiles"))
	if err != nil {
		b.log.Warn("apparmor: list of loaded profiles unreadable: child profiles a new text drops keep their old rules for the processes in them", "error", err.Error())
		return nil, nil
	}
	held = map[string][]string{}
	b.mu.Lock()
	defer b.mu.Unlock()
	var notWard []string
	for _, label := range labels {
		if owner, ok := b.pathEntries[label]; ok {
			held[owner] = append(held[owner], label)
			continue
		}
		notWard = append(notWard, label)
		if name, child := SplitLabel(label); child != "" && strings.HasPrefix(name, "ward-") {
			held[name] = append(held[name], label)
		}
	}
	return held, otherProfiles(notWard)
}

// unloadRetired unloads the retired profiles (Profile.Retired) that no process runs in. No exec
// enters a retired profile, so one found unused stays so; one in use is rendered retired again
// by the next load of its workload, and unloaded by a later one.
func (b *Backend) unloadRetired(retired []string) error {
	if len(retired) == 0 {
		return nil
	}
	inUse, err := labelsInUse(b.procRoot)
	if err != nil {
		return fmt.Errorf("unload retired profiles: %w", err)
	}
	var errs []error
	for _, label := range retired {
		if inUse[label] {
			b.log.Info("apparmor profile retired: kept for the processes that run in it, with the rules its executable has now", "profile", label)
			continue
		}
		if err := b.unload(label); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unload unloads one profile through the kernel's .remove.
func (b *Backend) unload(label string) error {
	if err := unloadLabel(b.securityFS, label); err != nil {
		return err
	}
	b.log.Info("apparmor profile unloaded: no rule and no process needs it", "profile", label)
	return nil
}

// unloadEntries unloads the entry profiles (EntryName) the kernel holds for the profiles named,
// once those are unloaded: unloading a file unloads only the entries it holds now, not a
// retired one that was in use at its last load.
func (b *Backend) unloadEntries(profiles []string) error {
	if len(profiles) == 0 {
		return nil
	}
	labels, err := loadedLabels(filepath.Join(b.securityFS, "profiles"))
	if err != nil {
		return fmt.Errorf("unload entry profiles: %w", err)
	}
	var entries []string
	b.mu.Lock()
	for _, label := range labels {
		// An entry named by its path (PathEntries), or one of Ward's named NAME/CHILD.
		owner, ok := b.pathEntries[label]
		if !ok && isWardProfile(label) {
			owner, _ = SplitLabel(label)
			ok = owner != label
		}
		if ok && slices.Contains(profiles, owner) {
			entries = append(entries, label)
		}
	}
	b.mu.Unlock()
	var errs []error
	for _, label := range entries {
		if err := b.unload(label); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// optionsFor is how a workload's profile is rendered: the host's options for the host, and for a
// container the name its pod gave it when that name is Ward's.
func (b *Backend) optionsFor(set *rules.Set) Options {
	opts := b.opts
	switch n := set.Workload.AppArmorProfile; {
	case set.Workload.Kind == workload.KindHost:
		opts = b.hostOpts
	case strings.HasPrefix(n, "ward-") && n != ProfileName(workload.Host("", nil)) && n != ExemptProfile:
		// The runtime attaches the profile the pod names (Ward's admission webhook chose it,
		// stable across the pods of one workload): load the rules under that name. Names that
		// are not Ward's are never written, so no other profile is replaced, and neither are
		// the host's and the exemption's.
		opts.Name = n
	}
	return opts
}

// loadText loads a profile unless the kernel already holds the same text.
func (b *Backend) loadText(ctx context.Context, prof Profile) error {
	b.mu.Lock()
	same := bytes.Equal(b.text[prof.Name], prof.Text)
	// Set before the load: the kernel takes the new children before apparmor_parser returns,
	// and the text on disk that seedText read has no such map. A refused load puts the old
	// one back.
	old := b.sharedChildren[prof.Name]
	b.sharedChildren[prof.Name] = prof.Shared
	if !same {
		b.ownPathEntries(prof.Name, b.text[prof.Name], prof.Text)
	}
	b.mu.Unlock()
	if same {
		return nil
	}
	if err := b.loader.Load(ctx, prof); err != nil {
		b.mu.Lock()
		b.sharedChildren[prof.Name] = old
		b.ownPathEntries(prof.Name, b.text[prof.Name])
		b.mu.Unlock()
		return err
	}
	b.mu.Lock()
	b.setText(prof.Name, prof.Text)
	b.mu.Unlock()
	return nil
}

// setText records text as what the kernel holds of profile name, nil for nothing, and the
// entries named by their paths in it (b.mu held).
func (b *Backend) setText(name string, text []byte) {
	if text == nil {
		delete(b.text, name)
	} else {
		b.text[name] = text
	}
	b.ownPathEntries(name, text)
}

// ownPathEntries records the entries named by their paths in texts (PathEntries) as profile
// name's, in place of those it had (b.mu held). Before a load it is given the old text and the
// new: the kernel takes the new entries before apparmor_parser returns, and keeps the old ones
// until a later render has retired them.
func (b *Backend) ownPathEntries(name string, texts ...[]byte) {
	for label, owner := range b.pathEntries {
		if owner == name {
			delete(b.pathEntries, label)
		}
	}
	for _, text := range texts {
		for _, label := range PathEntries(text) {
			b.pathEntries[label] = name
		}
	}
}

// lockWorkload serialises the calls for one workload and keeps out a concurrent Apply.
func (b *Backend) lockWorkload(id string) func() {
	b.applyMu.RLock()
	unlock := b.workloads.Lock(id)
	return func() { unlock(); b.applyMu.RUnlock() }
}

// lockName serialises the loads and unloads of one profile name; callers hold the workload's
// lock first, and never two names' locks at once.
func (b *Backend) lockName(name string) func() { return b.names.Lock(name) }

// ApplyWorkload implements enforcer.WorkloadApplier: it loads or replaces the profile of one
// workload only. apparmor_parser -r replaces a loaded profile in place, so processes confined
// by it never run unconfined; on error the previous profile stays loaded and on disk.
func (b *Backend) ApplyWorkload(ctx context.Context, set *rules.Set) error {
	id := set.Workload.ID()
	defer b.lockWorkload(id)()
	name := b.optionsFor(set).profileName(set.Workload)
	unlock := b.lockName(name)
	b.mu.Lock()
	// Claim the name before loading: a workload that shares it and is removed meanwhile (under
	// the name's lock, after this) then leaves it loaded.
	old, hadOld := b.byWorkload[id]
	b.byWorkload[id] = name
	b.mu.Unlock()
	_, rendered, warns, err := b.loadProfile(ctx, set)
	b.mu.Lock()
	if err != nil {
		if hadOld {
			b.byWorkload[id] = old
		} else {
			delete(b.byWorkload, id)
		}
	} else {
		if old := b.byName[name]; old != nil && old != rendered {
			b.replaced[name] = old
		}
		b.byName[name] = rendered
		delete(b.loading, name)
		b.SetWarnings(id, warns)
	}
	b.mu.Unlock()
	unlock()
	if err != nil {
		return fmt.Errorf("apply apparmor profile of workload %s: %w", id, err)
	}
	if hadOld && old != name {
		// The workload's profile was renamed (its identity changed): the new one is in force,
		// so the old one can go, unless another workload still runs under it.
		defer b.lockName(old)()
		if !b.shared(old, id) {
			if err := b.removeProfile(ctx, old); err != nil {
				return fmt.Errorf("apply apparmor profile of workload %s: %w", id, err)
			}
		}
	}
	return nil
}

// RemoveWorkload implements enforcer.WorkloadApplier: it unloads and deletes the workload's
// profile. A workload this backend never loaded is a no-op.
func (b *Backend) RemoveWorkload(ctx context.Context, id string) error {
	defer b.lockWorkload(id)()
	b.mu.Lock()
	name, ok := b.byWorkload[id]
	b.mu.Unlock()
	if !ok {
		return nil
	}
	defer b.lockName(name)()
	if b.podNamed(name) {
		// The pod may start this container again, or its view comes back in the next round:
		// keep the name loaded for a while (DefaultPodProfileGrace).
		b.mu.Lock()
		if b.byWorkload[id] == name {
			delete(b.byWorkload, id)
			b.DropWarnings(id)
		}
		b.mu.Unlock()
		b.unloadLater(name)
		return nil
	}
	if b.shared(name, id) {
		// Another workload (a pod of the same Deployment on this node, or this container under
		// the ID the runtime gave it) runs under the same profile: unloading it would leave
		// that one unconfined.
		b.mu.Lock()
		delete(b.byWorkload, id)
		b.DropWarnings(id)
		b.mu.Unlock()
		return nil
	}
	if err := b.removeProfile(ctx, name); err != nil {
		return fmt.Errorf("remove apparmor profile of workload %s: %w", id, err)
	}
	b.mu.Lock()
	if b.byWorkload[id] == name {
		delete(b.byWorkload, id)
		b.DropWarnings(id)
	}
	b.mu.Unlock()
	return nil
}

// podNamed says whether a loaded profile's name is the one its pod gave (the admission
// webhook's, shared by the pod's containers across restarts) rather than Ward's own per-workload
// name.
func (b *Backend) podNamed(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.byName[name]
	return s != nil && s.Workload.AppArmorProfile == name
}

// unloadLater unloads a pod-named profile after the grace period unless a workload claims the
// name meanwhile; a later removal restarts the wait.
func (b *Backend) unloadLater(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if t := b.unloads[name]; t != nil {
		t.Stop()
	}
	// t is set before the function can read it: it runs under b.mu, held here until return.
	var t *time.Timer
	t = time.AfterFunc(b.podGrace, func() {
		b.applyMu.RLock()
		defer b.applyMu.RUnlock()
		defer b.lockName(name)()
		b.mu.Lock()
		_, claimed := b.claimant(name)
		if b.unloads[name] != t || b.closed || claimed {
			if b.unloads[name] == t {
				delete(b.unloads, name)
			}
			b.mu.Unlock()
			return
		}
		delete(b.unloads, name)
		b.mu.Unlock()
		if err := b.removeProfile(context.Background(), name); err != nil {
			b.log.Warn("unload the profile of a pod whose containers are gone", "profile", name, "error", err)
		}
	})
	b.unloads[name] = t
}

// claimant returns a workload that has the profile name. Callers hold b.mu.
func (b *Backend) claimant(name string) (string, bool) {
	for w, n := range b.byWorkload {
		if n == name {
			return w, true
		}
	}
	return "", false
}

// shared says whether a workload other than id has the profile name.
func (b *Backend) shared(name, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w, n := range b.byWorkload {
		if n == name && w != id {
			return true
		}
	}
	return false
}

// removeProfile unloads one of Ward's profiles; a file already gone counts as removed.
func (b *Backend) removeProfile(ctx context.Context, name string) error {
	err := b.loader.Remove(ctx, name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// The file is gone: forget it even when an entry it no longer held stays loaded.
	entriesErr := b.unloadEntries([]string{name})
	b.mu.Lock()
	delete(b.byName, name)
	b.setText(name, nil)
	delete(b.sharedChildren, name)
	delete(b.replaced, name)
	b.mu.Unlock()
	return entriesErr
}

// Close stops reading records. Profiles stay loaded and on disk on purpose: they keep running
// containers confined while Ward restarts, and the next Apply prunes what is no longer wanted.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	for name, t := range b.unloads {
		t.Stop()
		delete(b.unloads, name)
	}
	b.mu.Unlock()
	b.records.Close()
	return nil
}

// record turns one raw record into an event for the workload whose profile produced it; ok is
// false for a record that is about no access of one of Ward's profiles.
func (b *Backend) record(line string) (ev enforcer.Event, ok bool) {
	rec, err := ParseRecord(line)
	if err != nil {
		return ev, false
	}
	if rec.Apparmor != "DENIED" && rec.Apparmor != "AUDIT" && rec.Apparmor != "ALLOWED" {
		return ev, false
	}
	b.mu.Lock()
	if owner, ok := b.pathEntries[rec.Profile]; ok {
		// An entry named by its path: attributed as its entry (EntryName) would be.
		rec.Profile = EntryName(owner, rec.Profile)
	}
	name, child := SplitLabel(rec.Profile)
	loaded, loading, replaced := b.byName[name], b.loading[name], b.replaced[name]
	sharers := b.sharedChildren[name][child]
	b.mu.Unlock()
	set, a := shapeRecord(rec, loaded, loading, replaced)
	if set == nil {
		return ev, false // not one of Ward's profiles
	}
	if a.Op == "" {
		return ev, false
	}
	ev = enforcer.Event{
		Backend: enforcer.AppArmor, Workload: set.Workload.ID(),
		PID: uint32(rec.PID), PPID: enforcer.ProcPPID(b.procRoot, rec.PID), UID: rec.FSUID, Comm: rec.Comm, Access: a, Detail: strings.TrimSpace(line),
	}
	if len(sharers) > 0 {
		// A child that several sources run in: the record names the child, after its first
		// source. They have the same rules, so any of them decides alike; the executable says
		// which one acted, for the alert's Source and ProcessName.
		if src, why := sharedSource(b.procRoot, rec.PID, rec.Comm, sharers); src != "" {
			ev.Access.Source = src
		} else {
			ev.Detail += fmt.Sprintf(` ward_source="one of %s: %s"`, strings.Join(sharers, " "), why)
		}
	}
	// The host's rules named through a symlink were also written where it leads (hostAlias):
	// the access is named as the rules name it, so that the daemon's set decides it alike. Detail
	// keeps the kernel's path.
	ev.Access = set.Unalias(ev.Access)
	if a.Source == "" {
		// The alert's Source and ProcessName: the record names only a child profile's program.
		ev.Exe = enforcer.Executable(uint32(rec.PID))
		if ev.Exe == "" {
			// Gone (or a zombie) before the record was read: say so in the alert's Data rather
			// than leave an unexplained empty Source (docs/apparmor.md).
			ev.Detail += ` ward_exe="unknown: the process exited before Ward read the record"`
		}
	}
	if rec.Apparmor == "DENIED" {
		ev.Errno = int(syscall.EACCES)
		if a.Op == policy.OpCapabilities {
			ev.Errno = int(syscall.EPERM)
		}
	}
	return ev, true
}

// sharedSource says which of the sources of a shared child process pid runs: its executable,
// or, for a script, the script's path, which the kernel puts after the interpreter and its
// optional argument in the process's arguments (binfmt_script), as execve was given it
// (resolved against the working directory when relative). A process can rewrite its arguments,
// but it then names another source of the same child, with the same rules. A process gone
// before the record is read is named by the record's comm, the base name of the file it
// executed (a script's own), cut to 15 bytes, when exactly one source has that name. When none
// matches, why says so for the alert.
func sharedSource(procRoot string, pid int, comm string, sharers []string) (src, why string) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		var named []string
		for _, s := range sharers {
			if base := filepath.Base(s); comm != "" && base[:min(len(base), 15)] == comm {
				named = append(named, s)
			}
		}
		if len(named) == 1 {
			return named[0], ""
		}
		return "", "the process was gone before Ward read the record"
	}
	if slices.Contains(sharers, exe) {
		return exe, ""
	}
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for _, arg := range args[1:min(len(args), 3)] {
		if !filepath.IsAbs(arg) {
			cwd, err := os.Readlink(filepath.Join(dir, "cwd"))
			if err != nil {
				continue
			}
			arg = filepath.Join(cwd, arg)
		}
		if arg = filepath.Clean(arg); slices.Contains(sharers, arg) {
			return arg, ""
		}
	}
	return "", fmt.Sprintf("the process runs %s, which is none of them, and no argument names one", exe)
}

// KmsgSource reads records from the kernel log device, starting at its end. Without an audit
// daemon the kernel rate-limits what it prints there (10 records in 5 seconds by default), so a
// busy node loses records; NetlinkSource does not, and is the default.
func KmsgSource(path string) RecordSource { return RecordSource(auditlog.Kmsg(path, "apparmor=")) }

// unattached says that a pod's container does not run under Ward's profile (its pod did not get
// one from Ward's admission webhook: created while no Ward pod answered, or with a profile of its
// own), so its rules are loaded under a name nothing runs under: once for the container, and once
// for each policy that covers it, so that the policy's status says so too.
func unattached(set *rules.Set) []enforcer.Warning {
	if len(set.Rules) == 0 {
		return nil
	}
	w := set.Workload
	ws := []enforcer.Warning{{Backend: enforcer.AppArmor, Workload: w.ID(), RuleID: -1,
		Message: fmt.Sprintf("container %s of pod %s/%s does not run under Ward's AppArmor profile, so no rule of %s is enforced on it: "+
			"recreate the pod while Ward's admission webhook answers (deploy/webhook.yaml), which gives it Ward's profile",
			w.Container, w.Namespace, w.Pod, strings.Join(set.Policies, ", "))}}
	seen := map[string]bool{}
	for _, r := range set.Rules {
		key := string(r.PolicyKind) + "/" + r.Namespace + "/" + r.PolicyName
		if seen[key] {
			continue
		}
		seen[key] = true
		ws = append(ws, enforcer.Warning{Backend: enforcer.AppArmor, Workload: w.ID(), Policy: r.PolicyName,
			PolicyKind: r.PolicyKind, Namespace: r.Namespace, Rule: "spec", RuleID: -1, What: "the policy",
			Message: "pods created without Ward's AppArmor profile (while Ward's admission webhook did not answer) are not confined; recreate them"})
	}
	return ws
}
