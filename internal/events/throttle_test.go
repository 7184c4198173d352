package events

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/wardsec/ward/internal/enforcer"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wardsec/ward/api/feeder"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestThrottlerWindows(t *testing.T) {
	clk := &fakeClock{t: testTime}
	th := NewThrottler(ThrottleConfig{Enabled: true, MaxAlertsPerSec: 3, ThrottleSec: 5}, clk.now)
	step := func(key string, want Admission) {
		t.Helper()
		if got := th.Admit(key); got != want {
			t.Fatalf("at %v %s: got %d, want %d", clk.t.Sub(testTime), key, got, want)
		}
	}
	// Three per second pass, in a window that restarts each second.
	for range 2 {
		for range 3 {
			step("c1", Pass)
			clk.advance(100 * time.Millisecond)
		}
		clk.advance(time.Second)
	}
	// The fourth within one second announces; then five seconds of silence.
	for range 3 {
		step("c1", Pass)
	}
	step("c1", Announce)
	step("c2", Pass) // other workloads are unaffected
	clk.advance(4900 * time.Millisecond)
	step("c1", Drop)
	clk.advance(100 * time.Millisecond)
	for range 3 {
		step("c1", Pass)
	}
	step("c1", Announce)

	th.Forget("c1")
	step("c1", Pass)
}

func TestThrottlerForgetsQuietWorkloads(t *testing.T) {
	clk := &fakeClock{t: testTime}
	th := NewThrottler(ThrottleConfig{Enabled: true, MaxAlertsPerSec: 1, ThrottleSec: 30}, clk.now)
	th.Admit("gone")
	th.Admit("throttled")
	if th.Admit("throttled") != Announce {
		t.Fatal("no announce")
	}
	clk.advance(2 * time.Minute)
	for i := range 1000 {
		th.Admit(fmt.Sprint("burst-", i))
	}
	if _, ok := th.state["gone"]; ok {
		t.Error("a workload quiet for two minutes is still tracked")
	}
	clk.advance(2 * time.Minute)
	th.Admit("c")
	if n := len(th.state); n != 1 {
		t.Errorf("%d workloads tracked, want 1", n)
	}
}

func TestThrottlerDisabledAndDefaults(t *testing.T) {
	th := NewThrottler(ThrottleConfig{Enabled: false}, nil)
	for range 100 {
		if th.Admit("c") != Pass {
			t.Fatal("disabled throttler dropped")
		}
	}
	if c := th.Config(); c.MaxAlertsPerSec != 10 || c.ThrottleSec != 30 {
		t.Errorf("defaults: %+v", c)
	}
	if d := DefaultThrottleConfig(); !d.Enabled {
		t.Error("throttling is off by default")
	}
}

func TestPipelineThrottlesAndAnnounces(t *testing.T) {
	clk := &fakeClock{t: testTime}
	b := testBuilder()
	b.Now = clk.now
	var out bytes.Buffer
	m := NewMetrics()
	p := &Pipeline{Builder: b, Broker: NewBroker(0, m), JSON: NewJSONLines(&out), Metrics: m,
		Throttle: NewThrottler(ThrottleConfig{Enabled: true, MaxAlertsPerSec: 10, ThrottleSec: 30}, clk.now),
		Log:      slog.New(slog.DiscardHandler)}
	sub := p.Broker.WatchAlerts("t")
	defer sub.Close()

	for range 25 {
		p.WriteAlert(b.Alert(hostEvent(), blockVerdict()))
	}
	if err := p.JSON.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 {
		t.Fatalf("%d lines, want 10 alerts and 1 notice", len(lines))
	}
	var notice *feeder.Alert
	for range 11 {
		notice = <-sub.C()
	}
	if notice.Type != TypeSystemEvent || notice.Operation != OpAlertThreshold ||
		notice.MaxAlertsPerSec != 10 || notice.DroppingAlertsInterval != 30 || notice.HostName != "node1" {
		t.Errorf("notice: %v", notice)
	}
	if !strings.Contains(lines[10], `"Type":"SystemEvent","Operation":"AlertThreshold"`) ||
		!strings.Contains(lines[10], `"MaxAlertsPerSec":10,"DroppingAlertsInterval":30`) {
		t.Errorf("notice line: %s", lines[10])
	}
	if got := testutil.ToFloat64(m.drops.WithLabelValues(DropThrottled)); got != 15 {
		t.Errorf("throttled drops = %v, want 15", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues(TypeMatchedHostPolicy, "Block", enforcer.AlertName(enforcer.BPF))); got != 10 {
		t.Errorf("events = %v, want 10", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues(TypeSystemEvent, "none", "")); got != 1 {
		t.Errorf("notice events = %v, want 1", got)
	}

	clk.advance(30 * time.Second)
	p.WriteAlert(b.Alert(hostEvent(), blockVerdict()))
	if err := p.JSON.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 12 {
		t.Errorf("after the interval: %d lines, want 12", n)
	}
}

type failingWriter struct{ fail bool }

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.fail {
		return 0, errWrite
	}
	return len(b), nil
}

var errWrite = errors.New("disk full")

func TestPipelineLogsSinkFailureOnce(t *testing.T) {
	var logs bytes.Buffer
	w := &failingWriter{fail: true}
	m := NewMetrics()
	p := &Pipeline{Builder: testBuilder(), Broker: NewBroker(0, nil), JSON: NewJSONLines(w), Metrics: m,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 5 {
		p.WriteLog(testBuilder().Log(hostEvent()))
	}
	if err := p.JSON.Flush(); err == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	p.WriteLog(testBuilder().Log(hostEvent())) // reports the failure
	p.WriteLog(testBuilder().Log(hostEvent()))
	w.fail = false
	if err := p.JSON.Flush(); err != nil {
		t.Fatal(err)
	}
	p.WriteLog(testBuilder().Log(hostEvent())) // reports recovery
	if n := strings.Count(logs.String(), "disk full"); n != 1 {
		t.Errorf("error logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "writable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(m.drops.WithLabelValues(DropSinkError)); got != 5 {
		t.Errorf("sink drops = %v, want 5", got)
	}
}

// The Attributor hands events to sinks; the Pipeline must be one.
var _ Sink = (*Pipeline)(nil)
