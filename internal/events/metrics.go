package events

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Drop reasons, the values of the reason label of ward_events_dropped_total.
const (
	DropThrottled  = "throttled"   // a workload exceeded maxAlertPerSec
	DropClientSlow = "client_slow" // a gRPC client's queue was full
	DropSinkError  = "sink_error"  // the JSON sink could not write
)

// Metrics are Ward's Prometheus metrics, on a registry of their own so that tests and the daemon
// never share global state. All methods are safe on a nil *Metrics, which records nothing.
type Metrics struct {
	Registry  *prometheus.Registry
	events    *prometheus.CounterVec
	drops     *prometheus.CounterVec
	apply     prometheus.Histogram
	round     prometheus.Histogram
	recompile prometheus.Histogram
	workloads prometheus.Gauge
	rules     prometheus.Gauge
	clients   *prometheus.GaugeVec
	unenf     *prometheus.GaugeVec
}

// NewMetrics registers Ward's metrics, plus the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_events_total",
			Help: "Alerts and logs emitted, by type, action and enforcer.",
		}, []string{"type", "action", "enforcer"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_events_dropped_total",
			Help: "Events not delivered, by reason (throttled, client_slow, sink_error).",
		}, []string{"reason"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ward_apply_duration_seconds",
			Help:    "Time to translate and load one workload's rules into the enforcer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		round: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ward_reconcile_duration_seconds",
			Help:    "Time of one reconcile round that changed what is wanted: read and parse the changed policies, recompile the workloads they cover, hand the sets to the enforcer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		recompile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ward_reconcile_recompiled_workloads",
			Help:    "Workloads one reconcile round recompiled (a policy change recompiles only the workloads it covers).",
			Buckets: append([]float64{0}, prometheus.ExponentialBuckets(1, 2, 14)...),
		}),
		workloads: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ward_workloads",
			Help: "Workloads currently known (host and containers).",
		}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ward_rules_loaded",
			Help: "Rules currently loaded into the enforcer, over all workloads.",
		}),
		clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ward_grpc_watchers",
			Help: "Connected LogService watchers, by stream (alerts, logs, messages).",
		}, []string{"stream"}),
		unenf: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ward_rules_not_enforced",
			Help: "Parts of the policies in force that the enforcer does not enforce as written (one per policy, field path and reason), by enforcer.",
		}, []string{"enforcer"}),
	}
	m.Registry.MustRegister(m.events, m.drops, m.apply, m.round, m.recompile, m.workloads, m.rules, m.clients, m.unenf,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetNotEnforced sets how many parts of the policies in force the enforcer does not enforce as
// written.
func (m *Metrics) SetNotEnforced(enforcer string, n int) {
	if m == nil {
		return
	}
	m.unenf.WithLabelValues(enforcer).Set(float64(n))
}

// AddCollector registers v's metrics when v is a prometheus.Collector (a backend with counters
// of its own, as BPF-LSM's ring-buffer drops and unresolved paths); anything else is left out.
func (m *Metrics) AddCollector(v any) error {
	c, ok := v.(prometheus.Collector)
	if m == nil || !ok {
		return nil
	}
	return m.Registry.Register(c)
}

// Handler serves the registry, for the daemon's /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Event counts one emitted alert or log. Logs have no action; they count under "none".
func (m *Metrics) Event(typ, action, enforcer string) {
	if m == nil {
		return
	}
	if action == "" {
		action = "none"
	}
	m.events.WithLabelValues(typ, action, enforcer).Inc()
}

// Drop counts n events lost for a reason.
func (m *Metrics) Drop(reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.drops.WithLabelValues(reason).Add(float64(n))
}

// ObserveApply records how long applying one workload's rules took.
func (m *Metrics) ObserveApply(d time.Duration) {
	if m == nil {
		return
	}
	m.apply.Observe(d.Seconds())
}

// ObserveReconcile records one reconcile round that changed what is wanted: how many workloads
// it recompiled and how long it took.
func (m *Metrics) ObserveReconcile(recompiled int, d time.Duration) {
	if m == nil {
		return
	}
	m.recompile.Observe(float64(recompiled))
	m.round.Observe(d.Seconds())
}

// SetWorkloads sets the number of known workloads.
func (m *Metrics) SetWorkloads(n int) {
	if m == nil {
		return
	}
	m.workloads.Set(float64(n))
}

// SetRules sets the number of rules loaded.
func (m *Metrics) SetRules(n int) {
	if m == nil {
		return
	}
	m.rules.Set(float64(n))
}

func (m *Metrics) watchers(stream string, delta int) {
	if m == nil {
		return
	}
	m.clients.WithLabelValues(stream).Add(float64(delta))
}
