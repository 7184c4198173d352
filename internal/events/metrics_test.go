package events

import (
	"github.com/wardsec/ward/internal/enforcer"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func dropCount(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	return testutil.ToFloat64(m.drops.WithLabelValues(reason))
}

func TestMetricsSetters(t *testing.T) {
	m := NewMetrics()
	m.Event(TypeMatchedPolicy, "Block", enforcer.AlertName(enforcer.AppArmor))
	m.Event(TypeMatchedPolicy, "Block", enforcer.AlertName(enforcer.AppArmor))
	m.Event(TypeContainerLog, "", "")
	m.Drop(DropThrottled, 3)
	m.Drop(DropThrottled, 0)
	m.SetWorkloads(4)
	m.SetRules(17)
	// Binary fractions of a second, so the sum is exact.
	m.ObserveApply(time.Second / 512)
	m.ObserveApply(time.Second / 32)

	want := `
# HELP ward_events_total Alerts and logs emitted, by type, action and enforcer.
# TYPE ward_events_total counter
ward_events_total{action="Block",enforcer="AppArmor",type="MatchedPolicy"} 2
ward_events_total{action="none",enforcer="",type="ContainerLog"} 1
# HELP ward_events_dropped_total Events not delivered, by reason (throttled, client_slow, sink_error).
# TYPE ward_events_dropped_total counter
ward_events_dropped_total{reason="throttled"} 3
# HELP ward_workloads Workloads currently known (host and containers).
# TYPE ward_workloads gauge
ward_workloads 4
# HELP ward_rules_loaded Rules currently loaded into the enforcer, over all workloads.
# TYPE ward_rules_loaded gauge
ward_rules_loaded 17
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"ward_events_total", "ward_events_dropped_total", "ward_workloads", "ward_rules_loaded"); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(m.apply, strings.NewReader(`
# HELP ward_apply_duration_seconds Time to translate and load one workload's rules into the enforcer.
# TYPE ward_apply_duration_seconds histogram
ward_apply_duration_seconds_bucket{le="0.0005"} 0
ward_apply_duration_seconds_bucket{le="0.001"} 0
ward_apply_duration_seconds_bucket{le="0.002"} 1
ward_apply_duration_seconds_bucket{le="0.004"} 1
ward_apply_duration_seconds_bucket{le="0.008"} 1
ward_apply_duration_seconds_bucket{le="0.016"} 1
ward_apply_duration_seconds_bucket{le="0.032"} 2
ward_apply_duration_seconds_bucket{le="0.064"} 2
ward_apply_duration_seconds_bucket{le="0.128"} 2
ward_apply_duration_seconds_bucket{le="0.256"} 2
ward_apply_duration_seconds_bucket{le="0.512"} 2
ward_apply_duration_seconds_bucket{le="1.024"} 2
ward_apply_duration_seconds_bucket{le="2.048"} 2
ward_apply_duration_seconds_bucket{le="4.096"} 2
ward_apply_duration_seconds_bucket{le="8.192"} 2
ward_apply_duration_seconds_bucket{le="16.384"} 2
ward_apply_duration_seconds_bucket{le="+Inf"} 2
ward_apply_duration_seconds_sum 0.033203125
ward_apply_duration_seconds_count 2
`)); err != nil {
		t.Error(err)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Event("a", "b", "c")
	m.Drop(DropClientSlow, 1)
	m.SetWorkloads(1)
	m.SetRules(1)
	m.ObserveApply(time.Second)
	m.watchers("alerts", 1)
}

func TestWatcherGaugeAndHandler(t *testing.T) {
	m := NewMetrics()
	b := NewBroker(0, m)
	s1, s2 := b.WatchAlerts("a"), b.WatchLogs("b")
	if got := testutil.ToFloat64(m.clients.WithLabelValues("alerts")); got != 1 {
		t.Errorf("alert watchers = %v", got)
	}
	s1.Close()
	s1.Close() // twice is harmless
	s2.Close()
	if got := testutil.ToFloat64(m.clients.WithLabelValues("alerts")); got != 0 {
		t.Errorf("alert watchers after close = %v", got)
	}

	m.Event(TypeMatchedHostPolicy, "Audit", enforcer.AlertName(enforcer.BPF))
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ward_events_total{action="Audit",enforcer="BPFLSM",type="MatchedHostPolicy"} 1`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestAddCollector: a backend that is a prometheus.Collector shows on /metrics, anything else is
// left out, and a nil Metrics records nothing.
func TestAddCollector(t *testing.T) {
	m := NewMetrics()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ward_test_backend_total", Help: "A backend's own counter."})
	c.Add(5)
	if err := m.AddCollector(c); err != nil {
		t.Fatal(err)
	}
	if err := m.AddCollector(struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := (*Metrics)(nil).AddCollector(c); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "ward_test_backend_total"); err != nil || n != 1 {
		t.Fatalf("gathered %d series of the backend's counter (%v), want 1", n, err)
	}
	if err := m.AddCollector(c); err == nil {
		t.Error("registering the same collector twice succeeded")
	}
}
