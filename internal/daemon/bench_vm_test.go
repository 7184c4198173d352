//go:build vm && !kube

package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/testutil/vmbench"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// BenchmarkReport gives docs/performance.md the daemon's figures per backend (issue 16): the
// time from the daemon's start to its first round in force and to every workload in force, the
// latency from a policy file's change to its enforcement (p50, p99), and the Go heap and RSS,
// with 1,000 policy files and 1,000 container workloads. Under `make bench-vm` the clock is
// guest time (vmbench); `make test` runs it with 1 % of the load so that it keeps working.
func BenchmarkReport(b *testing.B) {
	vmguest.RequireProfile(b, "apparmor")
	sz := scaleSize{
		containerPolicies: vmbench.Iterations(900),
		hostPolicies:      vmbench.Iterations(100),
		workloads:         vmbench.Iterations(1000),
		changes:           max(vmbench.Iterations(50), 3),
	}
	cases := []struct {
		backend string
		c       restartCase
	}{{"bpflsm", bpfScaleCase()}, {"apparmor", apparmorScaleCase(b.TempDir())}}
	for i := 0; i < b.N; i++ {
		for _, c := range cases {
			f := measureScale(b, c.c, sz)
			load := fmt.Sprintf("%d policies, %d workloads", sz.containerPolicies+sz.hostPolicies, sz.workloads)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			for _, fig := range []vmbench.Figure{
				{Name: "start to first round in force (" + load + ")", Value: ms(f.firstRound) / 1000, Unit: "s"},
				{Name: "start to every workload in force", Value: ms(f.allIn) / 1000, Unit: "s"},
				{Name: fmt.Sprintf("policy edit to enforced, p50 of %d", sz.changes), Value: ms(f.p50), Unit: "ms"},
				{Name: fmt.Sprintf("policy edit to enforced, p99 of %d", sz.changes), Value: ms(f.p99), Unit: "ms"},
				{Name: "Go heap live, everything in force", Value: float64(f.heapKiB) / 1024, Unit: "MiB"},
				{Name: "process RSS, everything in force, free memory returned to the OS", Value: float64(f.rssKiB) / 1024, Unit: "MiB"},
				{Name: "Go heap live after the edits", Value: float64(f.heapAfterKiB) / 1024, Unit: "MiB"},
			} {
				fig.Backend = c.backend
				fmt.Println(fig)
			}
		}
	}
}
