package events

import (
	"sync"
	"time"
)

// ThrottleConfig is KubeArmor's alert throttling: a workload that raises more than MaxAlertsPerSec
// alerts within one second has its alerts dropped for ThrottleSec seconds, and the drop is
// announced by one SystemEvent alert.
type ThrottleConfig struct {
	Enabled         bool // alertThrottling
	MaxAlertsPerSec int  // maxAlertPerSec
	ThrottleSec     int  // throttleSec
}

// DefaultThrottleConfig is KubeArmor's default: on, 10 alerts per second, 30 seconds of dropping.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{Enabled: true, MaxAlertsPerSec: 10, ThrottleSec: 30}
}

// Admission is what the throttle decides for one alert.
type Admission int

// Admissions.
const (
	Pass     Admission = iota // deliver the alert
	Drop                      // throttled: drop it silently
	Announce                  // the threshold was just crossed: drop it and announce throttling
)

// Throttler applies a ThrottleConfig per workload key. Its clock is injected for tests.
type Throttler struct {
	cfg ThrottleConfig
	now func() time.Time

	mu        sync.Mutex
	state     map[string]*throttleState
	lastSweep time.Time
}

// sweepEvery is how often Admit forgets workloads that have been quiet for longer than a window
// and a throttle interval, so the state stays bounded even if nobody calls Forget.
const sweepEvery = time.Minute

type throttleState struct {
	last        time.Time // the workload's latest alert
	windowStart time.Time // start of the current one-second window
	count       int       // alerts in the window
	dropUntil   time.Time // dropping while now is before this
}

// NewThrottler applies cfg. Non-positive limits take KubeArmor's defaults; now may be nil.
func NewThrottler(cfg ThrottleConfig, now func() time.Time) *Throttler {
	d := DefaultThrottleConfig()
	if cfg.MaxAlertsPerSec <= 0 {
		cfg.MaxAlertsPerSec = d.MaxAlertsPerSec
	}
	if cfg.ThrottleSec <= 0 {
		cfg.ThrottleSec = d.ThrottleSec
	}
	if now == nil {
		now = time.Now
	}
	return &Throttler{cfg: cfg, now: now, state: map[string]*throttleState{}}
}

// Config returns the effective configuration.
func (t *Throttler) Config() ThrottleConfig { return t.cfg }

// Admit decides for one alert of the workload key.
func (t *Throttler) Admit(key string) Admission {
	if !t.cfg.Enabled {
		return Pass
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) >= sweepEvery {
		t.sweep(now)
	}
	s := t.state[key]
	if s == nil {
		t.state[key] = &throttleState{last: now, windowStart: now, count: 1}
		return Pass
	}
	s.last = now
	if now.Before(s.dropUntil) {
		return Drop
	}
	if now.Sub(s.windowStart) >= time.Second {
		s.windowStart, s.count = now, 0
	}
	s.count++
	if s.count <= t.cfg.MaxAlertsPerSec {
		return Pass
	}
	s.dropUntil = now.Add(time.Duration(t.cfg.ThrottleSec) * time.Second)
	// The window restarts when dropping ends.
	s.windowStart, s.count = s.dropUntil, 0
	return Announce
}

func (t *Throttler) sweep(now time.Time) {
	t.lastSweep = now
	idle := time.Second + time.Duration(t.cfg.ThrottleSec)*time.Second
	for k, s := range t.state {
		if now.Sub(s.last) > idle && !now.Before(s.dropUntil) {
			delete(t.state, k)
		}
	}
}

// Forget drops the state of a workload that has gone, so the map stays as small as the set of
// live workloads.
func (t *Throttler) Forget(key string) {
	t.mu.Lock()
	delete(t.state, key)
	t.mu.Unlock()
}
