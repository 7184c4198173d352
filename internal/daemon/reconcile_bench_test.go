package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// nopApplier is a backend that accepts everything at once: what remains is the daemon's own cost.
type nopApplier struct{ recordingBackend }

func (nopApplier) Apply(context.Context, []*rules.Set) error       { return nil }
func (nopApplier) ApplyWorkload(context.Context, *rules.Set) error { return nil }
func (nopApplier) RemoveWorkload(context.Context, string) error    { return nil }
func (n *nopApplier) Events() <-chan enforcer.Event                { return n.events }

// roundCost measures, with n policy files and as many container workloads as workloads says,
// the time from a host policy file's change to the host's new set being in force, without the
// watcher's quiet time and with a backend that costs nothing.
func roundCost(b *testing.B, n, workloads int) time.Duration {
	dir := b.TempDir()
	for i := 0; i < n; i++ {
		text := hostPolicyFile(fmt.Sprintf("h%d", i), fmt.Sprintf("/etc/h%d", i))
		if i%10 != 0 {
			text = containerPolicyFile(fmt.Sprintf("c%d", i), fmt.Sprintf("w%d", i%100), fmt.Sprintf("/data/c%d", i))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%04d.yaml", i)), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	lsm := filepath.Join(b.TempDir(), "lsm")
	os.WriteFile(lsm, []byte("bpf"), 0o644)
	cfg, err := buildConfig(defaults(map[string]string{"policies": dir, "state": b.TempDir(), "gRPC": "", "health": "", "logPath": "none", "host": "node1"}))
	if err != nil {
		b.Fatal(err)
	}
	be := &nopApplier{recordingBackend: *newRecordingBackend()}
	ready := make(chan *Daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError})), LSMPath: lsm,
			Factories: map[string]enforcer.Factory{enforcer.BPF: func(context.Context) (enforcer.Backend, error) { return be, nil }},
			Ready:     func(d *Daemon) { ready <- d }})
	}()
	defer func() { cancel(); <-done }()
	d := <-ready
	for i := 0; i < workloads; i++ {
		d.Workloads().Upsert(shopContainer(fmt.Sprintf("c%04d", i), fmt.Sprintf("w%d", i%100)))
	}
	for len(d.Sets()) < workloads+1 {
		time.Sleep(time.Millisecond)
	}
	file := filepath.Join(dir, "p0000.yaml")
	b.ReportAllocs()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		target := fmt.Sprintf("/target/%d", i)
		if err := os.WriteFile(file, []byte(hostPolicyFile("h0", target)), 0o644); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		// What the watcher does once the directory is quiet.
		d.pathChanged(file)
		d.enqueue()
		for !blocksHost(d, target) {
			time.Sleep(20 * time.Microsecond)
		}
		total += time.Since(start)
	}
	return total / time.Duration(b.N)
}

func blocksHost(d *Daemon, path string) bool {
	s := d.inForce.get("host")
	return s != nil && s.Decide(rules.Access{Op: policy.OpFile, Path: path}).Action == policy.ActionBlock
}

// BenchmarkPolicyChangeRound prints the daemon's round with 1,000 policy files and 1,000
// workloads (the load of make bench-vm's daemon figures) against the same round with 10 policies,
// measured in the same run: the ratio shows what the number of policies costs.
func BenchmarkPolicyChangeRound(b *testing.B) {
	var base time.Duration
	b.Run("policies=10", func(b *testing.B) { base = roundCost(b, 10, 1000) })
	b.Run("policies=1000", func(b *testing.B) {
		got := roundCost(b, 1000, 1000)
		if base > 0 {
			b.ReportMetric(float64(got)/float64(base), "x-of-10-policies")
		}
		b.ReportMetric(float64(got.Microseconds()), "µs/change")
	})
}
