package auditlog

import (
	"context"
	"log/slog"
	"sync"
)

// Reader runs a Source in the background for a backend and delivers the events its decode
// function makes of the records: the one lifecycle of the AppArmor and SELinux record readers.
// Close stops the source, waits for it, and closes the Events channel.
type Reader[E any] struct {
	events chan E
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start reads src until Close (not until ctx ends: ctx gives only its values) and passes each
// line to decode; an event decode returns with ok true waits for room on the Events channel.
// A source that stops with an error before Close is logged as "<name> records stopped".
func Start[E any](ctx context.Context, log *slog.Logger, name string, src Source, decode func(line string) (E, bool)) *Reader[E] {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Reader[E]{events: make(chan E, 1024), cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(r.events)
		emit := func(line string) {
			ev, ok := decode(line)
			if !ok {
				return
			}
			select {
			case r.events <- ev:
			case <-rctx.Done():
			}
		}
		if err := src(rctx, emit); err != nil && rctx.Err() == nil {
			log.Error(name+" records stopped", "error", err)
		}
	}()
	return r
}

// Events delivers the decoded records; it is closed after Close.
func (r *Reader[E]) Events() <-chan E { return r.events }

// Close stops the source and waits until it has returned.
func (r *Reader[E]) Close() {
	r.cancel()
	r.wg.Wait()
}

// Default returns netlink when the audit netlink read-log group can be joined, and kmsg, with a
// warning that says why, when it cannot: the group loses nothing to printk's rate limit, and
// /dev/kmsg is the fallback.
func Default(log *slog.Logger, name string, netlink, kmsg Source) Source {
	if err := NetlinkAvailable(); err != nil {
		log.Warn(name+" records from /dev/kmsg, which the kernel rate-limits", "reason", err)
		return kmsg
	}
	return netlink
}
