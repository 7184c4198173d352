//go:build vm || kube

package daemon

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The scale tests' measures, shared by the VM scale test (policy files, the kernel enforcing)
// and the Kubernetes one (the informer path): the daemon's histograms and this process's memory.

// histogram reads the daemon's histogram name now.
func histogram(t testing.TB, d *Daemon, name string) *dto.Histogram {
	t.Helper()
	return metricFamily(t, d, name).GetMetric()[0].GetHistogram()
}

// observed summarises what a histogram of durations in seconds (ward_reconcile_duration_seconds,
// ward_apply_duration_seconds) observed between before (nil: the start) and now: how many, their
// mean, and the upper bound of the bucket that holds their median (the histogram keeps no more).
type observed struct {
	n          uint64
	mean, p50  time.Duration
	p50Unbound bool // the median is above the last bucket
}

func observedSince(t testing.TB, d *Daemon, name string, before *dto.Histogram) observed {
	t.Helper()
	now := histogram(t, d, name)
	var o observed
	o.n = now.GetSampleCount() - before.GetSampleCount()
	if o.n == 0 {
		return o
	}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	o.mean = seconds((now.GetSampleSum() - before.GetSampleSum()) / float64(o.n))
	o.p50Unbound = true
	for i, b := range now.GetBucket() {
		c := b.GetCumulativeCount()
		if before != nil {
			c -= before.GetBucket()[i].GetCumulativeCount()
		}
		if 2*c >= o.n {
			o.p50, o.p50Unbound = seconds(b.GetUpperBound()), false
			break
		}
	}
	return o
}

func (o observed) String() string {
	if o.n == 0 {
		return "n=0"
	}
	p50 := "<= " + o.p50.Round(time.Microsecond).String()
	if o.p50Unbound {
		p50 = "above every bucket"
	}
	return "p50 " + p50 + ", mean " + o.mean.Round(time.Microsecond).String() + " (n=" + strconv.FormatUint(o.n, 10) + ")"
}

// rssKiB is this process's resident set in KiB, counted from its page tables
// (/proc/self/smaps_rollup) rather than VmRSS. The daemon's VmRSS read 50.1 MiB in one boot
// and 66.1 MiB in the next (docs/performance.md at de5f254), 16 MiB apart, the size of
// BPF-LSM's ring buffer mapping (its 8 MiB mapped twice), while smaps_rollup gave 68.9 and
// 69.5 MiB. The likely cause, not shown: up to Linux 6.1 VmRSS sums counters that each thread
// batches and hands over only after 64 page events, so what one thread maps at once can go
// uncounted.
func rssKiB(t testing.TB) int64 {
	t.Helper()
	for _, c := range smapsRollup(t) {
		if c.name == "Rss" {
			return c.kib
		}
	}
	t.Fatal("no Rss in /proc/self/smaps_rollup")
	return 0
}

// smapsCount is one of smaps_rollup's counts.
type smapsCount struct {
	name string
	kib  int64
}

// smapsRollup reads this process's /proc/self/smaps_rollup: its counts in KiB, in the file's order.
func smapsRollup(t testing.TB) []smapsCount {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	var counts []smapsCount
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("smaps_rollup %q: %v", l, err)
		}
		counts = append(counts, smapsCount{strings.TrimSuffix(f[0], ":"), n})
	}
	return counts
}
