package events

import (
	"sync"
	"sync/atomic"

	"github.com/wardsec/ward/api/feeder"
)

// DefaultQueueLen is how many events a watcher may fall behind before its events are dropped.
const DefaultQueueLen = 4096

// Broker fans alerts, logs and messages out to the gRPC watchers. Publishing never blocks: each
// watcher has a bounded queue, and an event that does not fit is dropped for that watcher alone
// and counted. The publisher pays one non-blocking channel send per watcher.
type Broker struct {
	alerts   topic[*feeder.Alert]
	logs     topic[*feeder.Log]
	messages topic[*feeder.Message]
	queueLen int
	metrics  *Metrics
}

// NewBroker makes a broker whose watchers each queue up to queueLen events (DefaultQueueLen when
// queueLen <= 0). metrics may be nil.
func NewBroker(queueLen int, metrics *Metrics) *Broker {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	b := &Broker{queueLen: queueLen, metrics: metrics}
	b.alerts.init("alerts", metrics)
	b.logs.init("logs", metrics)
	b.messages.init("messages", metrics)
	return b
}

// Publish sends an alert to every alert watcher. The alert must not be changed afterwards: the
// watchers share it.
func (b *Broker) Publish(a *feeder.Alert) { b.alerts.publish(a) }

// PublishLog sends a log to every log watcher.
func (b *Broker) PublishLog(l *feeder.Log) { b.logs.publish(l) }

// PublishMessage sends a daemon message to every message watcher.
func (b *Broker) PublishMessage(m *feeder.Message) { b.messages.publish(m) }

// WatchAlerts subscribes to alerts; name identifies the watcher in reports. Close the
// subscription when done.
func (b *Broker) WatchAlerts(name string) *Subscription[*feeder.Alert] {
	return b.alerts.subscribe(name, b.queueLen)
}

// WatchLogs subscribes to logs.
func (b *Broker) WatchLogs(name string) *Subscription[*feeder.Log] {
	return b.logs.subscribe(name, b.queueLen)
}

// WatchMessages subscribes to daemon messages.
func (b *Broker) WatchMessages(name string) *Subscription[*feeder.Message] {
	return b.messages.subscribe(name, b.queueLen)
}

// WatcherStats is what one watcher received and lost.
type WatcherStats struct {
	Name    string
	Stream  string
	Sent    uint64 // queued for the watcher
	Dropped uint64 // lost because its queue was full
}

// Stats lists every current watcher.
func (b *Broker) Stats() []WatcherStats {
	var out []WatcherStats
	out = b.alerts.stats(out)
	out = b.logs.stats(out)
	return b.messages.stats(out)
}

type topic[T any] struct {
	name    string
	metrics *Metrics
	mu      sync.RWMutex
	subs    map[*Subscription[T]]struct{}
}

func (t *topic[T]) init(name string, m *Metrics) {
	t.name, t.metrics, t.subs = name, m, map[*Subscription[T]]struct{}{}
}

func (t *topic[T]) publish(v T) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for s := range t.subs {
		select {
		case s.ch <- v:
			s.sent.Add(1)
		default:
			s.pending.Add(1)
			s.dropped.Add(1)
			t.metrics.Drop(DropClientSlow, 1)
		}
	}
}

func (t *topic[T]) subscribe(name string, n int) *Subscription[T] {
	s := &Subscription[T]{Name: name, Stream: t.name, ch: make(chan T, n), topic: t}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	t.metrics.watchers(t.name, 1)
	return s
}

func (t *topic[T]) stats(out []WatcherStats) []WatcherStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for s := range t.subs {
		out = append(out, s.Stats())
	}
	return out
}

// Subscription is one watcher's queue.
type Subscription[T any] struct {
	Name   string
	Stream string
	ch     chan T
	topic  *topic[T]
	once   sync.Once
	sent   atomic.Uint64
	// dropped counts all drops; pending counts those not yet reported to the watcher.
	dropped atomic.Uint64
	pending atomic.Uint64
}

// C delivers the queued events.
func (s *Subscription[T]) C() <-chan T { return s.ch }

// Recovered reports drops once the watcher has caught up: when its queue is empty and events were
// dropped since the last report, it returns their number and resets it. Reporting only on an
// empty queue sends one notice per episode of slowness, not one per event.
func (s *Subscription[T]) Recovered() uint64 {
	if len(s.ch) > 0 {
		return 0
	}
	return s.pending.Swap(0)
}

// Stats returns the counts so far.
func (s *Subscription[T]) Stats() WatcherStats {
	return WatcherStats{Name: s.Name, Stream: s.Stream, Sent: s.sent.Load(), Dropped: s.dropped.Load()}
}

// Close unsubscribes. Events still queued are discarded.
func (s *Subscription[T]) Close() {
	s.once.Do(func() {
		s.topic.mu.Lock()
		delete(s.topic.subs, s)
		s.topic.mu.Unlock()
		s.topic.metrics.watchers(s.topic.name, -1)
	})
}
