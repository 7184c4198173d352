package apparmor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// gateRunner blocks apparmor_parser -r for one profile until released, and records the rest.
type gateRunner struct {
	mu      sync.Mutex
	calls   []string
	block   string // base name whose load waits on gate
	entered chan struct{}
	gate    chan struct{}
	fail    string // base name whose load fails
}

func (g *gateRunner) Run(_ context.Context, _ string, args ...string) ([]byte, error) {
	base := filepath.Base(args[len(args)-1])
	g.mu.Lock()
	g.calls = append(g.calls, args[0]+" "+base)
	block := g.block
	g.mu.Unlock()
	if args[0] == "-r" && base == block {
		g.entered <- struct{}{}
		<-g.gate
	}
	if args[0] == "-r" && base == g.fail {
		return []byte("AppArmor parser error at line 3: syntax error\n"), errors.New("exit status 1")
	}
	return nil, nil
}

func newTestBackend(t *testing.T, dir string, r enforcer.Runner) *Backend {
	t.Helper()
	b, err := New(context.Background(), Config{Dir: dir, Runner: r, Host: &fixtureHost, SecurityFS: t.TempDir(),
		Records: func(ctx context.Context, _ func(string)) error { <-ctx.Done(); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func compileFor(t *testing.T, p policy.Policy, hostOrWeb bool) *rules.Set {
	t.Helper()
	w := web
	if hostOrWeb {
		w = host
	}
	s, err := rules.Compile([]policy.Policy{p}, w, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A load stuck for one workload does not hold back another workload's load.
func TestApplyWorkloadIndependent(t *testing.T) {
	dir := t.TempDir()
	r := &gateRunner{block: "ward-host", entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b := newTestBackend(t, dir, r)
	ctx := context.Background()
	hostDone := make(chan error, 1)
	go func() {
		hostDone <- b.ApplyWorkload(ctx, compileFor(t, hostPolicy("h", file(policy.MatchPath, "/etc/shadow", block)), true))
	}()
	<-r.entered
	webDone := make(chan error, 1)
	go func() {
		webDone <- b.ApplyWorkload(ctx, compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block)), false))
	}()
	select {
	case err := <-webDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("web's load waited on the host's stuck load")
	}
	close(r.gate)
	if err := <-hostDone; err != nil {
		t.Fatal(err)
	}
	assertOnlyFiles(t, dir, "ward-exempt", "ward-host", "ward-shop_web-7d9f_nginx")

	// Removing one workload leaves the other, and removing it again is a no-op.
	if err := b.RemoveWorkload(ctx, web.ID()); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveWorkload(ctx, web.ID()); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	assertOnlyFiles(t, dir, "ward-exempt", "ward-host")
	if !slices.Contains(r.calls, "-R ward-shop_web-7d9f_nginx") {
		t.Errorf("calls %q: no -R of the web profile", r.calls)
	}
}

// A rejected profile leaves the previous one of the same workload in force.
func TestApplyWorkloadKeepsPreviousOnError(t *testing.T) {
	dir := t.TempDir()
	r := &gateRunner{}
	b := newTestBackend(t, dir, r)
	ctx := context.Background()
	good := compileFor(t, hostPolicy("h", file(policy.MatchPath, "/etc/shadow", block)), true)
	if err := b.ApplyWorkload(ctx, good); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "ward-host"))
	r.fail = "ward-host"
	err := b.ApplyWorkload(ctx, compileFor(t, hostPolicy("h", file(policy.MatchPath, "/etc/gshadow", block)), true))
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "workload host") {
		t.Fatalf("err = %v, want a ParseError naming the workload", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ward-host"))
	if string(after) != string(before) || !strings.Contains(string(after), "/etc/shadow") {
		t.Error("the previous profile file was replaced by a rejected one")
	}
	b.mu.Lock()
	kept := b.byName["ward-host"]
	b.mu.Unlock()
	if kept != good {
		t.Error("events would be attributed to the rejected set")
	}
}

func TestUninstall(t *testing.T) {
	dir, sfs := t.TempDir(), t.TempDir()
	r := &gateRunner{}
	b := newTestBackend(t, dir, r)
	if err := b.ApplyWorkload(context.Background(), compileFor(t, hostPolicy("h", file(policy.MatchPath, "/etc/shadow", block)), true)); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "usr.bin.man")
	if err := os.WriteFile(foreign, []byte("profile man {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, tmpPrefix+"123"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The kernel still holds a Ward profile whose file is gone, a child profile, and someone
	// else's profile.
	if err := os.WriteFile(filepath.Join(sfs, "profiles"), []byte("ward-old_x_y (enforce)\nward-old_x_y//null-1 (enforce)\nman (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uninstall := func(dir string) ([]string, error) {
		var did []string
		err := Uninstaller{Dir: dir, SecurityFS: sfs, Runner: r}.Uninstall(context.Background(), func(s string) { did = append(did, s) })
		return did, err
	}
	removed, err := uninstall(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The exempt profile goes after the profiles a parser running in it removes.
	if !slices.Equal(removed, []string{"removed AppArmor profile ward-host", "removed AppArmor profile ward-exempt", "removed AppArmor profile ward-old_x_y"}) {
		t.Errorf("removed %q", removed)
	}
	assertOnlyFiles(t, dir, "usr.bin.man")
	if got, _ := os.ReadFile(filepath.Join(sfs, ".remove")); string(got) != "ward-old_x_y" {
		t.Errorf(".remove got %q", got)
	}
	os.Remove(filepath.Join(sfs, "profiles"))
	removed, err = uninstall(dir)
	if err != nil || len(removed) != 0 {
		t.Errorf("second Uninstall = %q, %v; want nothing, nil", removed, err)
	}
	// Missing directory: nothing to do.
	if _, err := uninstall(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("Uninstall of a missing directory: %v", err)
	}
}

// A workload whose pod names one of Ward's profiles (the admission webhook's stable name) is
// loaded under that name; two pods sharing it keep it loaded until the last one goes, and a
// name that is not Ward's, or is the host's or the exemption's, is never written.
func TestApplyWorkloadNamedProfile(t *testing.T) {
	dir := t.TempDir()
	r := &gateRunner{}
	b := newTestBackend(t, dir, r)
	ctx := context.Background()
	pol := containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block))
	a := compileFor(t, pol, false)
	a.Workload.ContainerID, a.Workload.AppArmorProfile = "aaa", "ward-shop_web_nginx"
	c := compileFor(t, pol, false)
	c.Workload.ContainerID, c.Workload.Pod, c.Workload.AppArmorProfile = "ccc", "web-7d9f-other", "ward-shop_web_nginx"
	for _, s := range []*rules.Set{a, c} {
		if err := b.ApplyWorkload(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	assertOnlyFiles(t, dir, "ward-shop_web_nginx")
	if err := b.RemoveWorkload(ctx, "aaa"); err != nil {
		t.Fatal(err)
	}
	assertOnlyFiles(t, dir, "ward-shop_web_nginx")
	if slices.Contains(r.calls, "-R ward-shop_web_nginx") {
		t.Errorf("calls %q: the shared profile was unloaded while pod ccc runs under it", r.calls)
	}
	b.podGrace = 10 * time.Millisecond // DefaultPodProfileGrace is a minute
	if err := b.RemoveWorkload(ctx, "ccc"); err != nil {
		t.Fatal(err)
	}
	waitUnloaded(t, b, r, "ward-shop_web_nginx")
	assertOnlyFiles(t, dir)

	// Neither a name that is not Ward's nor the host's or the exemption's is taken.
	for _, n := range []string{"docker-default", "ward-host", ExemptProfile} {
		other := compileFor(t, pol, false)
		other.Workload.AppArmorProfile = n
		if err := b.ApplyWorkload(ctx, other); err != nil {
			t.Fatal(err)
		}
		assertOnlyFiles(t, dir, "ward-shop_web-7d9f_nginx")
	}
}

// waitUnloaded waits until the backend has unloaded a pod-named profile (after its grace) and
// finished removing it: the timer leaves b.unloads before apparmor_parser -R runs, and the file
// is deleted after it, so only the backend forgetting the name marks the end.
func waitUnloaded(t *testing.T, b *Backend, r *gateRunner, name string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		done := slices.Contains(r.calls, "-R "+name)
		r.mu.Unlock()
		b.mu.Lock()
		_, pending := b.unloads[name]
		_, loaded := b.byName[name]
		b.mu.Unlock()
		if done && !pending && !loaded {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("calls %q: no -R %s once the last pod went and the grace passed", r.calls, name)
}

// A container of a pod that names Ward's profile exits (or fails to start) and is registered
// again, or its pod's view comes back in the next round: the name stays loaded meanwhile, since
// the runtime refuses to create a container whose profile the kernel lacks.
func TestApplyWorkloadPodProfileSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := &gateRunner{}
	b := newTestBackend(t, dir, r)
	b.podGrace = 200 * time.Millisecond
	ctx := context.Background()
	pol := containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block))
	first := compileFor(t, pol, false)
	first.Workload.ContainerID, first.Workload.AppArmorProfile = "first", "ward-shop_web_nginx"
	if err := b.ApplyWorkload(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveWorkload(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	// The pod's view (no container ID yet) comes back within the grace.
	view := compileFor(t, pol, false)
	view.Workload.ContainerID, view.Workload.AppArmorProfile = "", "ward-shop_web_nginx"
	if err := b.ApplyWorkload(ctx, view); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * b.podGrace)
	r.mu.Lock()
	calls := slices.Clone(r.calls)
	r.mu.Unlock()
	if slices.Contains(calls, "-R ward-shop_web_nginx") {
		t.Errorf("calls %q: the pod's profile was unloaded between its container's exit and its return", calls)
	}
	assertOnlyFiles(t, dir, "ward-shop_web_nginx")

	// Once the pod goes for good, the name goes after the grace.
	if err := b.RemoveWorkload(ctx, view.Workload.ID()); err != nil {
		t.Fatal(err)
	}
	waitUnloaded(t, b, r, "ward-shop_web_nginx")
	assertOnlyFiles(t, dir)
}

// A pod's container that does not run under Ward's profile is reported, for the container and in
// the covering policy's status, never silently unconfined; one that does is not.
func TestApplyWorkloadUnattachedPodReported(t *testing.T) {
	b := newTestBackend(t, t.TempDir(), &gateRunner{})
	ctx := context.Background()
	pol := containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block))
	s := compileFor(t, pol, false)
	s.Workload.ContainerID = "ddd"
	if err := b.ApplyWorkload(ctx, s); err != nil {
		t.Fatal(err)
	}
	ws := b.WorkloadWarnings(s.Workload.ID())
	var container, status bool
	for _, w := range ws {
		container = container || (w.Policy == "" && strings.Contains(w.Message, "does not run under Ward's AppArmor profile"))
		status = status || (w.Policy == "w" && w.Rule == "spec")
	}
	if !container || !status {
		t.Fatalf("warnings %v: want one for the container and one for policy w", ws)
	}

	attached := compileFor(t, pol, false)
	attached.Workload.ContainerID, attached.Workload.AppArmorProfile = "eee", "ward-shop_web_nginx"
	if err := b.ApplyWorkload(ctx, attached); err != nil {
		t.Fatal(err)
	}
	if ws := b.WorkloadWarnings(attached.Workload.ID()); len(ws) != 0 {
		t.Errorf("attached container: warnings %v, want none", ws)
	}
}

// A container first known by its pod's view (ID namespace/pod/container) and then by the
// runtime's container ID keeps one profile name: the removal of the first must not unload the
// profile while the second's load of the same name is in flight, whichever runs first.
func TestApplyWorkloadRenamedIDKeepsProfile(t *testing.T) {
	dir := t.TempDir()
	r := &gateRunner{block: "ward-shop_web_nginx", entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b := newTestBackend(t, dir, r)
	ctx := context.Background()
	view := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block)), false)
	view.Workload.ContainerID, view.Workload.AppArmorProfile = "", "ward-shop_web_nginx"
	r.block = "" // the first load goes through (no other goroutine runs yet)
	if err := b.ApplyWorkload(ctx, view); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.block = "ward-shop_web_nginx"
	r.mu.Unlock()
	// The runtime's registration: same profile name, a different text (another rule).
	byID := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/other", block)), false)
	byID.Workload.ContainerID, byID.Workload.AppArmorProfile = "ccc", "ward-shop_web_nginx"
	applied := make(chan error, 1)
	go func() { applied <- b.ApplyWorkload(ctx, byID) }()
	<-r.entered // the load of the shared name is in flight
	removed := make(chan error, 1)
	go func() { removed <- b.RemoveWorkload(ctx, view.Workload.ID()) }()
	time.Sleep(50 * time.Millisecond) // give a racing removal the chance to unload
	close(r.gate)
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.calls, "-R ward-shop_web_nginx") {
		t.Errorf("calls %q: the profile was unloaded while the container's new registration uses it", r.calls)
	}
	assertOnlyFiles(t, dir, "ward-shop_web_nginx")
}

// A record read while a profile is replaced is shaped with the set that explains it: the kernel
// takes the new profile before apparmor_parser returns, and the old profile's records can be
// read after the backend moved on. A denied mapping of a program is a process access only under
// a set with a Block process rule for it (the ld.so case), so shaping with the wrong set turns
// the alert into a file access that no rule explains. A profile's records while a full Apply
// loads it for the first time are not dropped either.
func TestRecordsWhileProfilesChange(t *testing.T) {
	dir := t.TempDir()
	r := &gateRunner{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b := newTestBackend(t, dir, r)
	ctx := context.Background()
	fileOnly := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block)), false)
	procBlock := compileFor(t, containerPolicy("shop", "w", proc(policy.MatchPath, "/usr/bin/wget", block)), false)
	const profile = "ward-shop_web-7d9f_nginx"
	mapping := `audit: type=1400 audit(1764343200.123:1): apparmor="DENIED" operation="file_mmap" class="file" profile="` + profile +
		`" name="/usr/bin/wget" pid=1 comm="ld-linux-x86-64" requested_mask="rm" denied_mask="m" fsuid=0 ouid=0`
	shaped := func(when string, wantOp policy.Operation) {
		t.Helper()
		ev, ok := b.record(mapping)
		if !ok {
			t.Fatalf("%s: the record was dropped", when)
		}
		if ev.Access.Op != wantOp || ev.Access.Path != "/usr/bin/wget" || ev.Workload != web.ID() {
			t.Errorf("%s: access %+v of workload %q, want %s /usr/bin/wget of %q", when, ev.Access, ev.Workload, wantOp, web.ID())
		}
	}
	hold := func(apply func() error) (release func()) {
		t.Helper()
		r.mu.Lock()
		r.block = profile
		r.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- apply() }()
		<-r.entered
		return func() {
			t.Helper()
			r.mu.Lock()
			r.block = ""
			r.mu.Unlock()
			r.gate <- struct{}{}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}

	// A full Apply loading the profile for the first time.
	release := hold(func() error { return b.Apply(ctx, []*rules.Set{procBlock}) })
	shaped("while Apply loads a new profile", policy.OpProcess)
	release()
	shaped("after Apply", policy.OpProcess)

	// The rule goes: a denial read after the load is the old profile's.
	if err := b.ApplyWorkload(ctx, fileOnly); err != nil {
		t.Fatal(err)
	}
	shaped("a late record of the replaced profile", policy.OpProcess)

	// Another edit without it, so that no replaced set has the rule either; then the rule comes
	// back: a denial read while the parser runs is the new profile's.
	if err := b.ApplyWorkload(ctx, compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/other", block)), false)); err != nil {
		t.Fatal(err)
	}
	release = hold(func() error { return b.ApplyWorkload(ctx, procBlock) })
	shaped("while ApplyWorkload loads the profile", policy.OpProcess)
	release()

	// A denied mapping that no set explains stays the file access the record names.
	ev, ok := b.record(strings.ReplaceAll(mapping, "/usr/bin/wget", "/usr/bin/curl"))
	if !ok || ev.Access.Op != policy.OpFile || ev.Access.Path != "/usr/bin/curl" {
		t.Errorf("a mapping no set blocks: %+v (kept %v), want a file access of /usr/bin/curl", ev.Access, ok)
	}
}

// overlapRunner records how many apparmor_parser -r calls run at once, in all and per profile,
// and the text of each profile's loads in the order they began.
type overlapRunner struct {
	mu        sync.Mutex
	now, most int
	perName   map[string]int
	sameName  bool // two loads of one name ran at once
	texts     map[string][]string
}

func (o *overlapRunner) Run(_ context.Context, _ string, args ...string) ([]byte, error) {
	if args[0] != "-r" {
		return nil, nil
	}
	file := args[len(args)-1]
	name := filepath.Base(file)
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.now++
	o.most = max(o.most, o.now)
	o.perName[name]++
	o.sameName = o.sameName || o.perName[name] > 1
	o.texts[name] = append(o.texts[name], string(text))
	o.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // the parser's compile
	o.mu.Lock()
	o.now--
	o.perName[name]--
	o.mu.Unlock()
	return nil, nil
}

// Apply loads the profiles of different names side by side, at most GOMAXPROCS at once, and
// the sets that share a name (pods of one workload, named by the admission webhook) one after
// the other in their order: the last one's text is the one in force, as when loaded one by one.
func TestApplyLoadsSideBySide(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	dir := t.TempDir()
	r := &overlapRunner{perName: map[string]int{}, texts: map[string][]string{}}
	b := newTestBackend(t, dir, r)
	var sets []*rules.Set
	var names []string
	for i := range 6 {
		s := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, fmt.Sprintf("/secret%d", i), block)), false)
		s.Workload.ContainerID, s.Workload.Container = fmt.Sprintf("c%d", i), fmt.Sprintf("app%d", i)
		sets = append(sets, s)
		names = append(names, ProfileName(s.Workload))
	}
	// Three pods under one webhook-given name, each with other rules: the last one's text wins.
	for i, path := range []string{"/first", "/second", "/last"} {
		s := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, path, block)), false)
		s.Workload.ContainerID, s.Workload.Pod, s.Workload.AppArmorProfile = fmt.Sprintf("p%d", i), fmt.Sprintf("web-%d", i), "ward-shop_web_nginx"
		sets = append(sets, s)
	}
	if err := b.Apply(context.Background(), sets); err != nil {
		t.Fatal(err)
	}
	assertOnlyFiles(t, dir, append(slices.Clone(names), "ward-shop_web_nginx")...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.most < 2 || r.most > 3 {
		t.Errorf("%d loads at once at most, want 2 or 3 (GOMAXPROCS 3)", r.most)
	}
	if r.sameName {
		t.Error("two loads of one profile name ran at once")
	}
	shared := r.texts["ward-shop_web_nginx"]
	if len(shared) != 3 || !strings.Contains(shared[0], "/first") || !strings.Contains(shared[1], "/second") || !strings.Contains(shared[2], "/last") {
		t.Errorf("the shared name's loads, in order: %d, want /first, /second, /last", len(shared))
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "ward-shop_web_nginx"))
	if err != nil || !strings.Contains(string(onDisk), "/last") {
		t.Errorf("the shared name's file holds %q (%v), want the last pod's rules", onDisk, err)
	}
	for i, s := range sets[:6] {
		if got := b.byWorkload[s.Workload.ID()]; got != names[i] {
			t.Errorf("workload %s under profile %q, want %q", s.Workload.ID(), got, names[i])
		}
	}
}

// loadedNames returns the base names of the files the runner's -r calls loaded.
func loadedNames(r *fakeRunner) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if len(c) == 4 && c[1] == "-r" {
			out = append(out, filepath.Base(c[3]))
		}
	}
	slices.Sort(out)
	return out
}

// A restarted backend does not load again a profile the kernel holds with the text on disk, the
// text it renders: it loads only what changed, what the kernel does not hold (unloaded by hand,
// or a directory the boot did not load) and what differs on disk.
func TestRestartLoadsOnlyWhatTheKernelLacks(t *testing.T) {
	dir, sfs := t.TempDir(), t.TempDir()
	start := func() (*Backend, *fakeRunner) {
		t.Helper()
		r := &fakeRunner{}
		b, err := New(context.Background(), Config{Dir: dir, Runner: r, Host: &fixtureHost, SecurityFS: sfs,
			Records: func(ctx context.Context, _ func(string)) error { <-ctx.Done(); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b, r
	}
	kernelHolds := func(names ...string) {
		t.Helper()
		var list strings.Builder
		for _, n := range names {
			fmt.Fprintf(&list, "%s (enforce)\n%s//null-1 (enforce)\n", n, n)
		}
		list.WriteString("man (enforce)\n")
		if err := os.WriteFile(filepath.Join(sfs, "profiles"), []byte(list.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	hostSet := compileFor(t, hostPolicy("h", file(policy.MatchPath, "/etc/shadow", block)), true)
	webSet := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/secret", block)), false)
	all := []string{"ward-exempt", "ward-host", "ward-shop_web-7d9f_nginx"}

	b, r := start()
	if err := b.Apply(ctx, []*rules.Set{hostSet, webSet}); err != nil {
		t.Fatal(err)
	}
	if got := loadedNames(r); !slices.Equal(got, all) {
		t.Fatalf("first start loaded %v, want %v", got, all)
	}
	b.Close()

	kernelHolds(all...)
	b, r = start()
	if err := b.Apply(ctx, []*rules.Set{hostSet, webSet}); err != nil {
		t.Fatal(err)
	}
	if got := loadedNames(r); len(got) != 0 {
		t.Errorf("a restart with the same rules loaded %v again", got)
	}
	webSet2 := compileFor(t, containerPolicy("shop", "w", file(policy.MatchPath, "/secret2", block)), false)
	if err := b.ApplyWorkload(ctx, webSet2); err != nil {
		t.Fatal(err)
	}
	if got := loadedNames(r); !slices.Equal(got, all[2:]) {
		t.Errorf("a changed workload after the restart loaded %v, want %v", got, all[2:])
	}
	b.Close()

	// The kernel lost the host's profile (unloaded by hand); the web profile's file was edited.
	kernelHolds("ward-exempt", "ward-shop_web-7d9f_nginx")
	path := filepath.Join(dir, "ward-shop_web-7d9f_nginx")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(text, "# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	b, r = start()
	if err := b.Apply(ctx, []*rules.Set{hostSet, webSet2}); err != nil {
		t.Fatal(err)
	}
	if got, want := loadedNames(r), []string{"ward-host", "ward-shop_web-7d9f_nginx"}; !slices.Equal(got, want) {
		t.Errorf("a restart loaded %v, want %v: the profile the kernel lacks and the one edited on disk", got, want)
	}
}

// A record from a child profile that several fromSource executables share names the child
// after its first executable; the event names the one that acted, read from /proc, and says
// which it could have been when the process is gone.
func TestRecordSharedChild(t *testing.T) {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	const other = "/0/other" // sorts before the test binary's path: the child is named after it
	r := &gateRunner{}
	b := newTestBackend(t, t.TempDir(), r)
	set := compileFor(t, hostPolicy("shared", file(policy.MatchPath, "/secret", block, from(self), from(other))), true)
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	// A refused load of a profile without the shared child leaves the loaded one's in force.
	r.mu.Lock()
	r.fail = "ward-host"
	r.mu.Unlock()
	apart := compileFor(t, hostPolicy("apart", file(policy.MatchPath, "/secret", block, from(self)), file(policy.MatchPath, "/x", block, from(other))), true)
	if err := b.ApplyWorkload(context.Background(), apart); err == nil {
		t.Fatal("ApplyWorkload: the runner refuses ward-host, want an error")
	}
	// The child's entry profiles are told apart the same way: attached to the sources' paths
	// (EntryName), or named by the first source's path.
	for _, label := range []string{"ward-host//" + childName(other), EntryName("ward-host", other), other} {
		record := func(pid int) string {
			return fmt.Sprintf(`audit: type=1400 audit(1764343200.123:1): apparmor="DENIED" operation="open" class="file" profile="%s" name="/secret" pid=%d comm="x" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
				label, pid)
		}
		ev, ok := b.record(record(os.Getpid()))
		if !ok || ev.Access.Source != self || ev.Access.Path != "/secret" || ev.Workload != set.Workload.ID() {
			t.Errorf("%s: record of this process in the shared child: %s %+v (kept %v), want source %s", label, ev.Workload, ev.Access, ok, self)
		}
		const gone = 1 << 30 // above pid_max
		ev, ok = b.record(record(gone))
		if !ok || ev.Access.Source != other || !strings.Contains(ev.Detail, `ward_source="one of `+other+" "+self) {
			t.Errorf("%s: record of a process gone: source %q, detail %q (kept %v), want the child's first source and the candidates", label, ev.Access.Source, ev.Detail, ok)
		}
	}
	// A profile named by a path that is not Ward's is no event of Ward's. (The test binary, the
	// other source, is one of Ward's exempt executables: it has no entry.)
	line := `audit: type=1400 audit(1764343200.123:1): apparmor="DENIED" operation="open" class="file" profile="/usr/bin/man" name="/secret" pid=1 comm="x" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	if ev, ok := b.record(line); ok {
		t.Errorf("record of another profile named by its path kept: %+v", ev)
	}
}

// An entry profile is named by its source's path where the parser reads that name literally, and
// Ward finds those names in its own texts again (the kernel's labels do not say they are Ward's).
func TestPathEntries(t *testing.T) {
	for p, want := range map[string]bool{"/usr/bin/cat": true, "/opt/app-1.2/bin/x_y+z": true, "usr/bin/cat": false,
		"/usr/bin/a b": false, "/usr/bin/a*": false, "/usr/bin/{a,b}": false, "/usr/bin/a[1]": false, "/usr/bin/a?": false,
		"/usr/bin/@{x}": false, "/usr/bin/a^": false, "/usr/bin/a\\b": false, "/usr/bin/a:b": false} {
		if got := pathNamed(p); got != want {
			t.Errorf("pathNamed(%q) = %v, want %v", p, got, want)
		}
	}
	text := "# Ward\nprofile ward-host \"/{...}\" {\n  profile /usr/bin/child {\n  }\n}\nprofile /usr/bin/cat flags=(attach_disconnected) {\n}\n" +
		"profile ward-host/usr/bin/x \"/{usr/bin/x,\\x00}\" flags=(attach_disconnected) {\n}\nprofile /usr/bin/went flags=(attach_disconnected) {\n}\n"
	if got := PathEntries([]byte(text)); !slices.Equal(got, []string{"/usr/bin/cat", "/usr/bin/went"}) {
		t.Errorf("PathEntries: %q, want the two top-level profiles named by paths", got)
	}
}

// A script that is a shared child's source runs its interpreter: its path is in its arguments,
// absolute or relative to its working directory.
func TestSharedSourceScript(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh -e\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{script, "./script"} {
		cmd := exec.Command(name)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		// Started means forked: wait for the exec to put the script in the arguments.
		for i := 0; i < 100; i++ {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "script") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if src, why := sharedSource("/proc", pid, "script", []string{"/0/other", script}); src != script {
			t.Errorf("%s: source %q (%s), want %s", name, src, why, script)
		}
		if src, why := sharedSource("/proc", pid, "script", []string{"/0/other", "/0/another"}); src != "" || !strings.Contains(why, "none of them") {
			t.Errorf("%s among other sources: %q, %q, want none and why", name, src, why)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	// Gone: the record's comm names it when one source has that base name (cut to 15 bytes).
	long := "/0/a-name-longer-than-fifteen"
	for _, c := range []struct {
		comm, want string
		sharers    []string
	}{{"script", script, []string{"/0/other", script}}, {"a-name-longer-t", long, []string{script, long}},
		{"script", "", []string{script, "/1/script"}}, {"other", "", []string{script}}} {
		if src, why := sharedSource("/proc", 1<<30, c.comm, c.sharers); src != c.want || (src == "" && !strings.Contains(why, "gone")) {
			t.Errorf("a process gone, comm %q among %v: %q, %q, want %q", c.comm, c.sharers, src, why, c.want)
		}
	}
}

// A load keeps, retired, the children and entries the kernel holds that the new text lacks
// while a process runs in one, and unloads those no process runs in; a later load unloads the
// rest once their processes are gone. Removing the host's profile unloads an entry its file does
// not hold.
func TestRetiredProfilesUnloaded(t *testing.T) {
	sfs, procs := t.TempDir(), t.TempDir()
	holds := func(list string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(sfs, "profiles"), []byte(list), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(sfs, ".remove"))
	}
	holds("ward-host (enforce)\nward-host//usr/bin/cat (enforce)\nward-host/usr/bin/gone (enforce)\n" +
		"ward-host//usr/bin/old (enforce)\nward-host//null-1 (complain)\nward-exempt (unconfined)\nward-ns_pod_c (enforce)\n/usr/bin/man (enforce)\n")
	// A process still runs in the entry of /usr/bin/gone.
	attr := filepath.Join(procs, "123", "attr", "apparmor")
	if err := os.MkdirAll(attr, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(attr, "current"), []byte("ward-host/usr/bin/gone (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := New(context.Background(), Config{Dir: dir, Runner: &gateRunner{}, Host: &fixtureHost, SecurityFS: sfs, ProcRoot: procs,
		Records: func(ctx context.Context, _ func(string)) error { <-ctx.Done(); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	removed := func() string { got, _ := os.ReadFile(filepath.Join(sfs, ".remove")); return string(got) }
	set := compileFor(t, hostPolicy("cat", file(policy.MatchPath, "/secret", block, from("/usr/bin/cat"))), true)
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	if got := removed(); got != "ward-host//usr/bin/old" {
		t.Errorf(".remove got %q, want the unused retired child ward-host//usr/bin/old only", got)
	}
	text, _ := os.ReadFile(filepath.Join(dir, "ward-host"))
	for _, want := range []string{"\nprofile ward-host/usr/bin/gone flags=", "\n  profile usr/bin/old flags=", "\nprofile /usr/bin/cat flags="} {
		if !strings.Contains(string(text), want) {
			t.Errorf("profile lacks %q:\n%s", want, text)
		}
	}
	// The process is gone: the next load of the host's profile unloads its entry.
	holds("ward-host (enforce)\nward-host//usr/bin/cat (enforce)\n/usr/bin/cat (enforce)\nward-host/usr/bin/gone (enforce)\nward-host//usr/bin/old (enforce)\n")
	if err := os.RemoveAll(filepath.Join(procs, "123")); err != nil {
		t.Fatal(err)
	}
	if err := b.ApplyWorkload(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	if got := removed(); got != "ward-host/usr/bin/gone" {
		t.Errorf(".remove got %q once the process went, want ward-host/usr/bin/gone", got)
	}
	if text, _ := os.ReadFile(filepath.Join(dir, "ward-host")); !strings.Contains(string(text), "\nprofile /usr/bin/cat flags=") {
		t.Errorf("the entry named by its path went while the kernel holds it as Ward's:\n%s", text)
	}
	// Removing the host's profile unloads an entry its file does not hold, and an entry named by
	// its path after it (the list ends with the last written), but not another profile so named.
	holds("ward-host (enforce)\nward-host/usr/bin/left (enforce)\n/usr/bin/man (enforce)\n/usr/bin/cat (enforce)\n")
	if err := b.RemoveWorkload(context.Background(), set.Workload.ID()); err != nil {
		t.Fatal(err)
	}
	if got := removed(); got != "/usr/bin/cat" {
		t.Errorf(".remove got %q after the host's removal, want /usr/bin/cat", got)
	}
}

// A retired profile that cannot be unloaded does not fail the load that retired it: the new
// profile is in force, and a later load tries again.
func TestRetiredUnloadFailureKeepsLoad(t *testing.T) {
	sfs := t.TempDir()
	if err := os.WriteFile(filepath.Join(sfs, "profiles"), []byte("ward-host (enforce)\nward-host//usr/bin/old (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(sfs, ".remove"), 0o755); err != nil { // not writable as a file
		t.Fatal(err)
	}
	b, err := New(context.Background(), Config{Dir: t.TempDir(), Runner: &gateRunner{}, Host: &fixtureHost, SecurityFS: sfs, ProcRoot: t.TempDir(),
		Records: func(ctx context.Context, _ func(string)) error { <-ctx.Done(); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	set := compileFor(t, hostPolicy("h", file(policy.MatchPath, "/secret", block)), true)
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatalf("Apply: %v, want the load to stand", err)
	}
	b.mu.Lock()
	got := b.byName["ward-host"]
	b.mu.Unlock()
	if got != set {
		t.Error("the host's new set is not the one in force")
	}
}

// A restarted Backend knows the entries named by their paths that the kernel holds from the host
// profile's file on disk: it keeps them as Ward's (not another profile's, which would make it fall
// back to an attached entry and warn), and attributes their records.
func TestPathEntriesAfterRestart(t *testing.T) {
	sfs, dir := t.TempDir(), t.TempDir()
	old := HeaderPrefix + "ward-host\nprofile ward-host /** {\n}\nprofile /usr/bin/cat flags=(attach_disconnected) {\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "ward-host"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sfs, "profiles"), []byte("ward-host (enforce)\n/usr/bin/cat (enforce)\n/usr/bin/man (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), Config{Dir: dir, Runner: &gateRunner{}, Host: &fixtureHost, SecurityFS: sfs, ProcRoot: t.TempDir(),
		Records: func(ctx context.Context, _ func(string)) error { <-ctx.Done(); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	held, others := b.loadedProfiles()
	if !slices.Equal(held["ward-host"], []string{"/usr/bin/cat"}) || !slices.Equal(others, []string{"/usr/bin/man"}) {
		t.Errorf("after a restart: held %v, others %v; want /usr/bin/cat Ward's and /usr/bin/man another's", held, others)
	}
	set := compileFor(t, hostPolicy("cat", file(policy.MatchPath, "/secret", block, from("/usr/bin/cat"))), true)
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	if text, _ := os.ReadFile(filepath.Join(dir, "ward-host")); !strings.Contains(string(text), "\nprofile /usr/bin/cat flags=") || strings.Contains(string(text), "ward-host/usr/bin/cat") {
		t.Errorf("the entry is not named by its path after a restart:\n%s", text)
	}
	for _, w := range b.WorkloadWarnings(set.Workload.ID()) {
		t.Errorf("warning: %+v", w)
	}
	line := `audit: type=1400 audit(1764343200.123:1): apparmor="DENIED" operation="open" class="file" profile="/usr/bin/cat" name="/secret" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	if ev, ok := b.record(line); !ok || ev.Access.Source != "/usr/bin/cat" || ev.Workload != set.Workload.ID() {
		t.Errorf("record of the entry: %+v (kept %v), want the host's, source /usr/bin/cat", ev, ok)
	}
}
