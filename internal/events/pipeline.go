package events

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/wardsec/ward/api/feeder"
)

// Pipeline is what the daemon hands every alert, log and message to: it throttles alerts per
// workload, writes the JSON lines sink, publishes to the gRPC watchers and counts. Any of
// Throttle, JSON and Metrics may be nil.
type Pipeline struct {
	Builder  *Builder
	Throttle *Throttler
	Broker   *Broker
	JSON     *JSONLines
	Metrics  *Metrics
	Log      *slog.Logger

	// sinkFailing is set while the JSON sink fails, so that a dead disk is logged once, not once
	// per event.
	sinkFailing atomic.Bool
}

// WriteAlert delivers one alert, unless its workload is being throttled. The Pipeline is a Sink:
// its Write methods never fail, it reports its own trouble.
func (p *Pipeline) WriteAlert(a *feeder.Alert) error {
	if p.Throttle != nil && a.Type != TypeSystemEvent {
		switch p.Throttle.Admit(throttleKey(a)) {
		case Drop:
			p.Metrics.Drop(DropThrottled, 1)
			return nil
		case Announce:
			p.Metrics.Drop(DropThrottled, 1)
			a = p.thresholdAlert(a)
		}
	}
	p.Metrics.Event(a.Type, a.Action, a.Enforcer)
	if p.JSON != nil {
		p.sinkResult(p.JSON.WriteAlert(a))
	}
	p.Broker.Publish(a)
	return nil
}

// WriteLog delivers one log. Logs are not throttled: visibility is switched per workload instead.
func (p *Pipeline) WriteLog(l *feeder.Log) error {
	p.Metrics.Event(l.Type, "", "")
	if p.JSON != nil {
		p.sinkResult(p.JSON.WriteLog(l))
	}
	p.Broker.PublishLog(l)
	return nil
}

// WriteMessage delivers a daemon message to the message watchers.
func (p *Pipeline) WriteMessage(m *feeder.Message) error {
	p.Broker.PublishMessage(m)
	return nil
}

func (p *Pipeline) sinkResult(err error) {
	if err == nil {
		if p.sinkFailing.CompareAndSwap(true, false) {
			p.Metrics.Drop(DropSinkError, int(p.JSON.TakeLost()))
			p.Log.Info("log path writable again")
		}
		return
	}
	p.Metrics.Drop(DropSinkError, int(p.JSON.TakeLost()))
	if p.sinkFailing.CompareAndSwap(false, true) {
		p.Log.Error("write log path; dropping lines until it recovers", "err", err)
	}
}

// thresholdAlert announces that the workload of a is throttled, as KubeArmor does: a SystemEvent
// alert with Operation AlertThreshold, the workload's identity and the throttling settings.
func (p *Pipeline) thresholdAlert(a *feeder.Alert) *feeder.Alert {
	cfg := p.Throttle.Config()
	return &feeder.Alert{
		Timestamp:              a.Timestamp,
		UpdatedTime:            a.UpdatedTime,
		ClusterName:            a.ClusterName,
		HostName:               a.HostName,
		NamespaceName:          a.NamespaceName,
		PodName:                a.PodName,
		Labels:                 a.Labels,
		Owner:                  a.Owner,
		ContainerID:            a.ContainerID,
		ContainerName:          a.ContainerName,
		ContainerImage:         a.ContainerImage,
		Type:                   TypeSystemEvent,
		Operation:              OpAlertThreshold,
		Message:                fmt.Sprintf("more than %d alerts per second: dropping alerts for %d seconds", cfg.MaxAlertsPerSec, cfg.ThrottleSec),
		MaxAlertsPerSec:        int32(cfg.MaxAlertsPerSec),
		DroppingAlertsInterval: int32(cfg.ThrottleSec),
		KubeArmorVersion:       a.KubeArmorVersion,
		NodeID:                 a.NodeID,
	}
}

// throttleKey names the workload an alert belongs to.
func throttleKey(a *feeder.Alert) string {
	if a.ContainerID != "" {
		return a.ContainerID
	}
	return "host"
}
