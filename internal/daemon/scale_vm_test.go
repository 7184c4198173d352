//go:build vm

package daemon

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
	"github.com/wardsec/ward/internal/workload"
)

// scaleSize is how much a scale measurement loads: container and host policy files, container
// workloads, and host policy changes whose latency is measured.
type scaleSize struct{ containerPolicies, hostPolicies, workloads, changes int }

// testScaleSize is what issue #6 asks the tests' figures for; BenchmarkReport loads 1,000
// workloads (issue 16).
var testScaleSize = scaleSize{containerPolicies: 900, hostPolicies: 100, workloads: 100, changes: 50}

// scaleFigures is what one scale measurement found.
type scaleFigures struct {
	firstRound, allIn       time.Duration // from the daemon's start: first round done, every workload in force
	p50, p99                time.Duration // policy file change to enforced
	heapKiB, rssKiB         uint64        // with everything in force, before the changes
	heapAfterKiB, rssAfterK uint64        // after the changes
}

// pollEvery is how often helperPoll tries its file: the latency's resolution. A busy loop took
// half of the one CPU of a bench guest from the daemon, so that a round's time depended on how
// the scheduler shared it: one edit in five took 250-290 ms instead of 160 ms of guest time, at
// other edits in every boot, and the p99 of 50 moved by 16.6 % between boots (at a5e236f).
const pollEvery = time.Millisecond

// helperPoll reads paths from stdin; for each it says "ready" once it has opened the file, then
// opens it every pollEvery until the kernel denies it and says "denied <unix ns> <attempts>".
func helperPoll() int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		path := in.Text()
		readySaid := false
		for n := 1; ; n++ {
			fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
			if err == nil {
				syscall.Close(fd)
				if !readySaid {
					fmt.Println("ready")
					readySaid = true
				}
				time.Sleep(pollEvery)
				continue
			}
			if err == syscall.EACCES || err == syscall.EPERM {
				fmt.Printf("denied %d %d\n", time.Now().UnixNano(), n)
				break
			}
			fmt.Printf("error %v\n", err)
			break
		}
	}
	return 0
}

func scaleHostPolicy(i int, path string) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: host-%d}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
    - path: %s
  action: Block
`, i, path)
}

func scaleContainerPolicy(i, workloads int) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: ctr-%d, namespace: scale}
spec:
  selector: {matchLabels: {app: w%d}}
  file:
    matchPaths:
    - path: /data/c%d
  process:
    matchPaths:
    - path: /usr/bin/c%d
  action: Block
`, i, i%workloads, i, i)
}

// heapLiveKiB collects garbage and returns the free memory to the OS before it reads the live
// heap, so that the RSS read after it is the process's footprint, not what the runtime kept:
// without the scavenge, the same run's RSS came out 41.0 MiB on one boot and 57.8 MiB on the
// next (docs/performance.md at fce6658). The heap figure is the bytes of live objects
// (HeapAlloc after the collection), not the spans that hold them (HeapInuse): how full each
// span is depends on the order in which goroutines happened to allocate, and the spans in use
// moved by 4.5 % between boots (docs/performance.md at eacf35a) for the same objects.
func heapLiveKiB() uint64 {
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc / 1024
}

// scaleTargets makes, empty, the directory of the files the edits block, and removes it at the
// end. Its path is in the host profile's rules, which AppArmor's parser compiles on every edit,
// so it is the same in every boot: a t.TempDir() name ends in a random number, of 10 digits in
// about three boots in four and of 9 or fewer in the others, and the parser's work moved with
// its length.
func scaleTargets(t testing.TB) string {
	dir := filepath.Join(os.TempDir(), "ward-scale-targets")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testScale loads 1,000 policies and 100 container workloads, prints the daemon's memory, then
// changes one host policy file 50 times and prints the latency from the write to the first
// denied open, as the kernel enforces it.
func testScale(t *testing.T, c restartCase) { measureScale(t, c, testScaleSize) }

// measureScale runs the daemon with sz's policies and workloads and measures it.
func measureScale(t testing.TB, c restartCase, sz scaleSize) scaleFigures {
	scaleContainerPolicies, scaleHostPolicies, scaleWorkloads, scaleChanges := sz.containerPolicies, sz.hostPolicies, sz.workloads, sz.changes
	root := scaleTargets(t)
	policies, state := t.TempDir(), t.TempDir()
	for i := 0; i < scaleContainerPolicies; i++ {
		if err := os.WriteFile(filepath.Join(policies, fmt.Sprintf("ctr-%04d.yaml", i)), []byte(scaleContainerPolicy(i, scaleWorkloads)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < scaleHostPolicies; i++ {
		if err := os.WriteFile(filepath.Join(policies, fmt.Sprintf("host-%04d.yaml", i)), []byte(scaleHostPolicy(i, fmt.Sprintf("/etc/h%d", i))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	heap0, rss0 := heapLiveKiB(), rssKiB(t)
	cfg, err := buildConfig(defaults(map[string]string{"policies": policies, "state": state, "gRPC": "", "health": "",
		"logPath": "none", "host": "vm", "lsm": c.lsm}))
	if err != nil {
		t.Fatal(err)
	}
	gcStart := gcCount()
	start := time.Now()
	r := runDaemon(t, cfg, c.factories)
	defer r.stop(t)
	if c.cleanup != nil {
		defer c.cleanup(t)
	}
	firstRound := time.Since(start)
	gcFirst := gcCount()
	for i := 0; i < scaleWorkloads; i++ {
		r.d.Workloads().Upsert(workload.Workload{Kind: workload.KindContainer, ContainerID: fmt.Sprintf("%064x", i+1),
			Namespace: "scale", Pod: fmt.Sprintf("pod-%d", i), Container: "app", Labels: map[string]string{"app": fmt.Sprintf("w%d", i)},
			CgroupID: uint64(1_000_000 + i)})
	}
	// Woken by every change of the sets in force, not polled: a poll every 50 ms put up to
	// 50 ms (0.8 %) of chance into a figure of about 6 s, which moved by 1.02 % between boots.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err = r.d.waitInForce(ctx, func(func(string) *rules.Set) bool { return r.d.inForce.len() >= scaleWorkloads+1 })
	cancel()
	if err != nil {
		t.Fatalf("%d of %d workloads in force after 10 minutes\n%s", r.d.inForce.len(), scaleWorkloads+1, r.logs.String())
	}
	allIn := time.Since(start)
	gcAll := gcCount()
	nRules := 0
	for _, s := range r.d.Sets() {
		nRules += len(s.Rules)
	}
	heap1, rss1 := heapLiveKiB(), rssKiB(t)
	t.Logf("%s: garbage collections completed from the start to the first round %d, to every workload in force %d",
		c.lsm, gcFirst-gcStart, gcAll-gcStart)
	t.Logf("%s: %d policies, %d workloads, %d rules in force; first reconcile %s, all workloads in force %s",
		c.lsm, scaleContainerPolicies+scaleHostPolicies, len(r.d.Sets()), nRules, firstRound.Round(time.Millisecond), allIn.Round(time.Millisecond))
	t.Logf("%s: memory: Go heap live %d KiB (%d KiB before the daemon), process RSS %d KiB (%d KiB before the daemon)",
		c.lsm, heap1, heap0, rss1, rss0)
	t.Logf("%s: where the RSS is (smaps_rollup, KiB): %s", c.lsm, rssParts(t))

	if os.Getenv("WARD_VM_BENCH") != "" {
		waitFullResync(t, r)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := c.wrap(self)
	helper := exec.Command(argv[0], argv[1:]...)
	helper.Env = append(os.Environ(), helperEnv+"=poll")
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); helper.Process.Kill(); helper.Wait() }()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("helper exited")
			}
			return l
		case <-time.After(2 * time.Minute):
			t.Fatalf("helper silent for 2 minutes\n%s", r.logs.String())
		}
		return ""
	}
	rounds0 := histogram(t, r.d, "ward_reconcile_duration_seconds")
	calls0 := histogram(t, r.d, "ward_apply_duration_seconds")
	var lat []time.Duration
	// Each edit starts from a collected heap (runtime.GC, this process's: the daemon's). With
	// GOMAXPROCS 1 under make bench-vm, a collection the runtime starts during an edit takes the
	// one CPU from it; whether one did, and in which edit, moved with the runtime's own
	// randomness: 3 collections in one boot's 50 edits and 2 in the next, and the slowest of 50
	// (the p99) was 118.8 ms in one and 127.1 ms in the other (BPF-LSM, docs/performance.md at
	// 2a9dbfd), while every other edit took 112-113 ms in both. So the figures are an edit's own
	// latency, without a collection that the runtime started during it. The collections counted
	// around each edit say whether one completed in its window all the same.
	var inWindow []uint64 // collections completed from an edit's write to its enforcement
	for i := 0; i < scaleChanges; i++ {
		target := filepath.Join(root, fmt.Sprintf("target-%d", i))
		if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(stdin, target)
		if l := next(); l != "ready" {
			t.Fatalf("helper: %q", l)
		}
		h := i % scaleHostPolicies
		file := filepath.Join(policies, fmt.Sprintf("host-%04d.yaml", h))
		runtime.GC()
		before := gcCount()
		t0 := time.Now()
		if err := os.WriteFile(file, []byte(scaleHostPolicy(h, target)), 0o644); err != nil {
			t.Fatal(err)
		}
		l := next()
		var ns int64
		var attempts int
		if _, err := fmt.Sscanf(l, "denied %d %d", &ns, &attempts); err != nil {
			t.Fatalf("helper: %q", l)
		}
		lat = append(lat, time.Duration(ns-t0.UnixNano()))
		if i == scaleChanges-1 {
			time.Sleep(200 * time.Millisecond) // as long as the next edit would have come after the last
		}
		inWindow = append(inWindow, gcCount()-before)
	}
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	pct := func(p float64) time.Duration { return sorted[int(p*float64(len(sorted)-1)+0.5)] }
	var slow []string
	for i, d := range lat {
		if d <= pct(0.5)*11/10 {
			continue
		}
		gc := "no collection in its window"
		if inWindow[i] != 0 {
			gc = "a collection completed in its window"
		}
		slow = append(slow, fmt.Sprintf("edit %d %s (%s)", i, d.Round(time.Millisecond), gc))
	}
	t.Logf("%s: policy file change -> enforced, %d changes with %d policies and %d workloads: p50 %s, p99 %s, min %s, max %s",
		c.lsm, len(lat), scaleContainerPolicies+scaleHostPolicies, scaleWorkloads+1,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), sorted[0].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	// Where the time goes: the daemon's round (read the directory, parse the changed file,
	// recompile what it affects) and the backend's call for the host.
	rounds := observedSince(t, r.d, "ward_reconcile_duration_seconds", rounds0)
	calls := observedSince(t, r.d, "ward_apply_duration_seconds", calls0)
	t.Logf("%s: of which the daemon's round (ward_reconcile_duration_seconds) %s, the backend's ApplyWorkload of the host (ward_apply_duration_seconds) %s",
		c.lsm, rounds, calls)
	var collections uint64
	for _, n := range inWindow {
		collections += n
	}
	t.Logf("%s: %d garbage collections completed in the %d edits' windows (besides the one before each); the edits over 1.1 times the median: %s",
		c.lsm, collections, len(lat), strings.Join(slow, ", "))
	heap2, rss2 := heapLiveKiB(), rssKiB(t)
	t.Logf("%s: memory after the changes: Go heap live %d KiB, process RSS %d KiB", c.lsm, heap2, rss2)
	if len(lat) != scaleChanges {
		t.Fatalf("%d measurements, want %d", len(lat), scaleChanges)
	}
	return scaleFigures{firstRound: firstRound, allIn: allIn, p50: pct(0.5), p99: pct(0.99),
		heapKiB: heap1, rssKiB: uint64(rss1), heapAfterKiB: heap2, rssAfterK: uint64(rss2)}
}

// waitFullResync waits, under make bench-vm, until the daemon's first periodic full resync
// (fullResyncEvery after its loop started) has run and the applies it queued have settled, so
// that the edits that follow fall between two resyncs. The 50 AppArmor edits took 35 s of guest
// time from 270 s after the start, so the resync at 300 s came among them (one boot counted 51
// rounds for 50 edits), and the slowest edit moved by 11.9 % between boots (docs/performance.md
// at de5f254). Under the instruction-counting clock an idle wait costs little host time; the
// functional suite, on the host's clock, does not wait.
func waitFullResync(t testing.TB, r *runningDaemon) {
	t.Helper()
	deadline := time.Now().Add(fullResyncEvery + 5*time.Minute)
	for !strings.Contains(r.logs.String(), "full=true") {
		if time.Now().After(deadline) {
			t.Fatalf("no full resync logged within %s\n%s", fullResyncEvery+5*time.Minute, r.logs.String())
		}
		time.Sleep(time.Second)
	}
	last := histogram(t, r.d, "ward_apply_duration_seconds").GetSampleCount()
	for quiet := 0; quiet < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("the backend's applies after the full resync did not stop for 5 s within %s of its due time", 5*time.Minute)
		}
		time.Sleep(time.Second)
		if n := histogram(t, r.d, "ward_apply_duration_seconds").GetSampleCount(); n != last {
			quiet, last = 0, n
		} else {
			quiet++
		}
	}
}

func TestDaemonScaleAppArmor(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	testScale(t, apparmorScaleCase(t.TempDir()))
}

func TestDaemonScaleBPFLSM(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	testScale(t, bpfScaleCase())
}

// apparmorScaleCase runs the daemon on AppArmor with its profiles in dir, the helper under
// ward-host.
func apparmorScaleCase(dir string) restartCase {
	return restartCase{
		lsm:       enforcer.AppArmor,
		factories: apparmorOnly(dir),
		wrap:      func(argv ...string) []string { return append([]string{"aa-exec", "-p", "ward-host", "--"}, argv...) },
	}
}

// bpfScaleCase runs the daemon on BPF-LSM; the host entry covers the helper as it is.
func bpfScaleCase() restartCase {
	return restartCase{
		lsm: enforcer.BPF,
		factories: func(log *slog.Logger) map[string]enforcer.Factory {
			return map[string]enforcer.Factory{enforcer.BPF: bpflsm.Factory(bpflsm.Options{Logger: log})}
		},
		wrap: func(argv ...string) []string { return argv },
	}
}

// rssParts gives smaps_rollup's non-zero counts in KiB, for the logs: what part of the RSS moved
// between two boots (anonymous memory, the test binary's pages on the guest's tmpfs root as
// shared memory, BPF-LSM's ring buffer as a file mapping).
func rssParts(t testing.TB) string {
	var parts []string
	for _, c := range smapsRollup(t) {
		if c.kib != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.name, c.kib))
		}
	}
	return strings.Join(parts, ", ")
}

// gcCount is how many garbage collections this process completed.
func gcCount() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
