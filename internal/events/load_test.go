package events

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"google.golang.org/grpc"
)

// TestLoad pushes alerts through the whole pipeline (Pipeline -> JSON file + Broker -> gRPC on
// loopback) at a fixed rate to one fast and one stalled client. The fast client and the file must
// get everything, the stalled client's losses must be counted exactly, and the heap must stay
// bounded. By default it runs briefly; WARD_LOAD=1 runs the figure, 100,000 alerts per
// second for 10 seconds.
func TestLoad(t *testing.T) {
	rate, seconds := 20000, 1
	if os.Getenv("WARD_LOAD") == "1" {
		rate, seconds = 100000, 10
	} else if testing.Short() {
		t.Skip("load test in -short mode")
	}
	total := rate * seconds

	m := NewMetrics()
	queueLen := DefaultQueueLen
	if q, err := strconv.Atoi(os.Getenv("WARD_LOAD_QUEUE")); err == nil {
		queueLen = q
	}
	s := startServer(t, queueLen, m)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	sink, err := OpenJSONLines(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() }) // on early failure; closing twice is harmless
	b := testBuilder()
	b.Now = time.Now
	p := &Pipeline{Builder: b, Broker: s.broker, JSON: sink, Metrics: m, Log: slog.New(slog.DiscardHandler)}

	// The fast client only counts messages: in real life it is another process, and decoding
	// here would take CPU from the daemon being measured. The stalled one is a normal client.
	fast, err := dial(t, s.addr).NewStream(ctx, &grpc.StreamDesc{ServerStreams: true},
		"/feeder.LogService/WatchAlerts", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	req := appendString(nil, 1, FilterAll)
	if err := fast.SendMsg(&req); err != nil {
		t.Fatal(err)
	}
	if err := fast.CloseSend(); err != nil {
		t.Fatal(err)
	}
	slow, err := feeder.NewLogServiceClient(dial(t, s.addr,
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))).
		WatchAlerts(ctx, &feeder.RequestMessage{Filter: FilterAll})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []grpc.ClientStream{fast, slow} {
		if _, err := st.Header(); err != nil {
			t.Fatal(err)
		}
	}

	// The fast client counts alerts, and the losses it is told of, until every alert is
	// accounted for, so that a client that fell behind ends the test with figures, not a timeout.
	var fastGot, fastLost atomic.Int64
	fastDone := make(chan error, 1)
	go func() {
		var raw []byte
		for fastGot.Load()+fastLost.Load() < int64(total) {
			raw = raw[:0]
			if err := fast.RecvMsg(&raw); err != nil {
				fastDone <- err
				return
			}
			if bytes.Contains(raw, []byte(TypeMatchedHostPolicy)) {
				fastGot.Add(1)
				continue
			}
			f, err := decodeFields(raw)
			if err != nil || len(f[21]) != 1 {
				fastDone <- fmt.Errorf("unexpected message %q: %v", raw, err)
				return
			}
			n, err := strconv.ParseInt(strings.TrimPrefix(f[21][0], "dropped="), 10, 64)
			if err != nil {
				fastDone <- err
				return
			}
			fastLost.Add(n)
		}
		fastDone <- nil
	}()

	var maxHeap atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxHeap.Load() {
				maxHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	ev := hostEvent()
	v := blockVerdict()
	start := time.Now()
	var busy time.Duration
	for sent := 0; sent < total; {
		// Publish whatever the schedule says is due, then sleep a little: a steady rate.
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		t0 := time.Now()
		for ; sent < due; sent++ {
			ev.Process.PID = int32(sent)
			p.WriteAlert(b.Alert(ev, v))
		}
		busy += time.Since(t0)
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start)
	select {
	case err := <-fastDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("fast client got %d and was told of %d lost, of %d", fastGot.Load(), fastLost.Load(), total)
	}
	drained := time.Since(start)
	close(stopSampling)
	<-sampled

	// The stalled client is the one with the larger loss (the fast one may have lost some too
	// on a starved machine).
	var slowStats WatcherStats
	for _, st := range s.broker.Stats() {
		if st.Dropped > slowStats.Dropped {
			slowStats = st
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// Lines may still wait for the flush delay; closing writes them, as the daemon does on exit.
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	lines := countLines(t, path)
	t.Logf("%d alerts in %v (%.0f/s), publisher busy %v (%.2f µs/alert), fast client done after %v",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), busy.Round(time.Millisecond),
		float64(busy.Microseconds())/float64(total), drained.Round(time.Millisecond))
	t.Logf("fast client %d (told of %d lost), JSON lines %d, stalled client queued %d dropped %d, max heap in use %.1f MiB",
		fastGot.Load(), fastLost.Load(), lines, slowStats.Sent, slowStats.Dropped, float64(maxHeap.Load())/(1<<20))
	t.Logf("test process (daemon side and both clients): CPU %v, max RSS %d MiB",
		cpu.Round(10*time.Millisecond), ru.Maxrss>>10)

	if fastGot.Load() != int64(total) {
		t.Errorf("fast client got %d of %d alerts", fastGot.Load(), total)
	}
	if lines != total {
		t.Errorf("JSON sink has %d lines, want %d", lines, total)
	}
	if slowStats.Sent+slowStats.Dropped != uint64(total) || slowStats.Sent > uint64(queueLen)+2000 {
		t.Errorf("stalled client: %+v", slowStats)
	}
	if got := dropCount(t, m, DropClientSlow); got != float64(slowStats.Dropped)+float64(fastLost.Load()) {
		t.Errorf("drop metric %v, want %d + %d", got, slowStats.Dropped, fastLost.Load())
	}
	// The queues hold at most 2 x 4096 shared alerts; anything near the volume pushed would
	// mean the stalled client is being buffered without bound.
	if h := maxHeap.Load(); h > 256<<20 {
		t.Errorf("heap grew to %d MiB", h>>20)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if !bytes.HasPrefix(sc.Bytes(), []byte(`{"Timestamp":`)) {
			t.Fatalf("line %d: %s", n+1, sc.Bytes())
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
