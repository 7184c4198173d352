package events

import (
	"context"
	"fmt"
	"github.com/wardsec/ward/internal/enforcer"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

type testServer struct {
	broker *Broker
	addr   string
	health string
}

// startServer serves a broker on loopback ports chosen by the kernel, until the test ends.
func startServer(t *testing.T, queueLen int, m *Metrics) *testServer {
	t.Helper()
	b := NewBroker(queueLen, m)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// As the daemon serves it: LogService registered on a server of its own, health on its port.
	g := grpc.NewServer()
	NewServer(b, testBuilder(), slog.New(slog.DiscardHandler)).Register(g)
	h := NewHealth()
	h.Register(g)
	done := make(chan error, 2)
	go func() { done <- ServeGRPC(ctx, g, lis) }()
	go func() { done <- h.Serve(ctx, hlis) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("server did not stop")
			}
		}
	})
	return &testServer{broker: b, addr: lis.Addr().String(), health: hlis.Addr().String()}
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHealthCheckEchoesNonce(t *testing.T) {
	s := startServer(t, 0, nil)
	ctx := testCtx(t)
	c := feeder.NewLogServiceClient(dial(t, s.addr))
	r, err := c.HealthCheck(ctx, &feeder.NonceMessage{Nonce: 7331})
	if err != nil {
		t.Fatal(err)
	}
	if r.Retval != 7331 {
		t.Errorf("Retval = %d, want 7331", r.Retval)
	}
	for _, addr := range []string{s.health, s.addr} {
		h, err := healthpb.NewHealthClient(dial(t, addr)).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health on %s: %v", addr, err)
		}
		if h.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health on %s: %v", addr, h.Status)
		}
	}
}

func TestWatchRejectsWrongFilter(t *testing.T) {
	s := startServer(t, 0, nil)
	ctx := testCtx(t)
	c := feeder.NewLogServiceClient(dial(t, s.addr))
	as, err := c.WatchAlerts(ctx, &feeder.RequestMessage{Filter: FilterSystem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("alerts with filter system: %v", err)
	}
	ls, err := c.WatchLogs(ctx, &feeder.RequestMessage{Filter: FilterPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("logs with filter policy: %v", err)
	}
}

func TestWatchFansOut(t *testing.T) {
	s := startServer(t, 0, nil)
	ctx := testCtx(t)
	c := feeder.NewLogServiceClient(dial(t, s.addr))
	var alerts []grpc.ServerStreamingClient[feeder.Alert]
	for _, f := range []string{FilterAll, FilterPolicy, ""} {
		st, err := c.WatchAlerts(ctx, &feeder.RequestMessage{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Header(); err != nil {
			t.Fatal(err)
		}
		alerts = append(alerts, st)
	}
	logs, err := c.WatchLogs(ctx, &feeder.RequestMessage{Filter: FilterSystem})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.WatchMessages(ctx, &feeder.RequestMessage{Filter: FilterAll})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []grpc.ClientStream{logs, msgs} {
		if _, err := st.Header(); err != nil {
			t.Fatal(err)
		}
	}

	b := testBuilder()
	s.broker.Publish(b.Alert(hostEvent(), blockVerdict()))
	s.broker.PublishLog(b.Log(hostEvent()))
	s.broker.PublishMessage(b.Message("Start", "Info", "hello"))
	for i, st := range alerts {
		a, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a.PolicyName != "block-etc-passwd-read" || a.Enforcer != enforcer.AlertName(enforcer.BPF) {
			t.Errorf("watcher %d got %v", i, a)
		}
	}
	if l, err := logs.Recv(); err != nil || l.Type != TypeHostLog {
		t.Errorf("log: %v %v", l, err)
	}
	if m, err := msgs.Recv(); err != nil || m.Message != "hello" {
		t.Errorf("message: %v %v", m, err)
	}
}

// TestSlowWatcherDoesNotBlockPublisher has one client that reads everything and one that stops
// reading. The publisher must never wait for the stalled one; the fast one gets every alert; the
// stalled one's losses are counted, and when it reads again it gets what fitted in its queue
// followed by one notice giving the number lost.
func TestSlowWatcherDoesNotBlockPublisher(t *testing.T) {
	const queueLen, total, batch = 256, 20000, 200
	m := NewMetrics()
	s := startServer(t, queueLen, m)
	ctx := testCtx(t)

	fast, err := feeder.NewLogServiceClient(dial(t, s.addr)).WatchAlerts(ctx, &feeder.RequestMessage{Filter: FilterAll})
	if err != nil {
		t.Fatal(err)
	}
	// Small fixed windows (which also turn off window growth) so that gRPC itself buffers only
	// a few hundred alerts for the stalled client and the queue overflows deterministically.
	slow, err := feeder.NewLogServiceClient(dial(t, s.addr,
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))).
		WatchAlerts(ctx, &feeder.RequestMessage{Filter: FilterPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []grpc.ClientStream{fast, slow} {
		if _, err := st.Header(); err != nil {
			t.Fatal(err)
		}
	}

	var fastGot atomic.Int64
	fastErr := make(chan error, 1)
	go func() {
		for fastGot.Load() < total {
			a, err := fast.Recv()
			if err != nil {
				fastErr <- err
				return
			}
			if a.Type == TypeSystemEvent {
				fastErr <- fmt.Errorf("fast watcher was told of drops: %v", a)
				return
			}
			fastGot.Add(1)
		}
		fastErr <- nil
	}()

	b := testBuilder()
	ev := hostEvent()
	published := make(chan time.Duration, 1)
	go func() {
		var publishing time.Duration
		for i := 0; i < total; i += batch {
			start := time.Now()
			for j := range batch {
				ev.Process.PID = int32(i + j)
				s.broker.Publish(b.Alert(ev, blockVerdict()))
			}
			publishing += time.Since(start)
			// Pace to the fast reader so that only the stalled one overflows.
			for fastGot.Load() < int64(i+batch) && ctx.Err() == nil {
				time.Sleep(100 * time.Microsecond)
			}
		}
		published <- publishing
	}()
	select {
	case d := <-published:
		t.Logf("publishing %d alerts took %v in total", total, d)
		if d > 5*time.Second {
			t.Errorf("publisher was slowed: %v for %d alerts", d, total)
		}
	case <-ctx.Done():
		t.Fatal("publisher blocked")
	}
	if err := <-fastErr; err != nil {
		t.Fatal(err)
	}

	var slowStats WatcherStats
	for _, st := range s.broker.Stats() {
		if st.Stream == "alerts" && st.Dropped > 0 {
			slowStats = st
		}
	}
	if slowStats.Dropped < total/2 || slowStats.Sent+slowStats.Dropped != total {
		t.Fatalf("stalled watcher: %+v, want over %d dropped of %d", slowStats, total/2, total)
	}
	t.Logf("stalled watcher: %+v", slowStats)
	if got := dropCount(t, m, DropClientSlow); got != float64(slowStats.Dropped) {
		t.Errorf("drop metric %v, want %d", got, slowStats.Dropped)
	}

	// The stalled client reads again: everything that was queued, and notices that add up to
	// what was dropped. There may be more than one notice: while the publisher ran, the stream's
	// sender could move a few alerts into the transport's buffers, making room in the queue
	// between two drops, and each such gap produces a notice for the drops before it.
	var got, noticed uint64
	for got < slowStats.Sent || noticed < slowStats.Dropped {
		a, err := slow.Recv()
		if err != nil {
			t.Fatalf("after %d alerts and notices of %d drops: %v", got, noticed, err)
		}
		if a.Type != TypeSystemEvent {
			got++
			continue
		}
		var n uint64
		if a.Operation != OpEventsDropped {
			t.Fatalf("unexpected system event %v", a)
		}
		if _, err := fmt.Sscanf(a.Data, "dropped=%d", &n); err != nil || n == 0 {
			t.Fatalf("notice %v: want dropped=N with N > 0", a)
		}
		noticed += n
	}
	if got != slowStats.Sent || noticed != slowStats.Dropped {
		t.Errorf("stalled watcher read %d alerts and notices of %d drops; %d were queued and %d dropped", got, noticed, slowStats.Sent, slowStats.Dropped)
	}
}

// rawCodec passes bytes through, so the client below sees the wire format and nothing else.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestStreamDecodesByFieldNumbers is a client that knows only KubeArmor's field numbers (§6), not
// Ward's generated code: what existing KubeArmor clients see.
func TestStreamDecodesByFieldNumbers(t *testing.T) {
	s := startServer(t, 0, nil)
	ctx := testCtx(t)
	cc := dial(t, s.addr)
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/feeder.LogService/WatchAlerts",
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	req := appendString(nil, 1, FilterPolicy) // RequestMessage.Filter = 1
	if err := st.SendMsg(&req); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil {
		t.Fatal(err)
	}

	ev := hostEvent()
	ev.Owner = &feeder.Podowner{Ref: "Deployment", Name: "web", Namespace: "shop"}
	s.broker.Publish(testBuilder().Alert(ev, blockVerdict()))

	var raw []byte
	if err := st.RecvMsg(&raw); err != nil {
		t.Fatal(err)
	}
	got, err := decodeFields(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{
		1: {"1795873200"}, 2: {"2026-11-28T13:40:00.123456Z"}, 4: {"node1"}, 9: {"4242"},
		10: {"4000"}, 12: {"1000"}, 13: {"block-etc-passwd-read"}, 14: {"8"}, 15: {"MITRE,T1003"},
		17: {"MatchedHostPolicy"}, 19: {"File"}, 20: {"/etc/passwd"}, 22: {"Block"},
		23: {"Permission denied"}, 26: {"/usr/bin/cat"}, 27: {"4000"}, 28: {"BPFLSM"},
		30: {"MITRE", "T1003"}, 32: {"/home/alice/"}, 33: {"pts0"}, 44: {"alice"},
	}
	for n, w := range want {
		if fmt.Sprint(got[n]) != fmt.Sprint(w) {
			t.Errorf("field %d = %q, want %q", n, got[n], w)
		}
	}
	owner, err := decodeFields([]byte(got[31][0]))
	if err != nil {
		t.Fatal(err)
	}
	if owner[1][0] != "Deployment" || owner[2][0] != "web" || owner[3][0] != "shop" {
		t.Errorf("Owner (31) = %v", owner)
	}
}

// TestServeStopsOnCancel: a watcher's stream never ends on its own, yet ServeGRPC returns soon
// after its context ends, without an error.
func TestServeStopsOnCancel(t *testing.T) {
	b := NewBroker(0, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	NewServer(b, testBuilder(), slog.New(slog.DiscardHandler)).Register(g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeGRPC(ctx, g, lis) }()
	conn := dial(t, lis.Addr().String())
	stream, err := feeder.NewLogServiceClient(conn).WatchAlerts(context.Background(), &feeder.RequestMessage{Filter: FilterAll})
	if err != nil {
		t.Fatal(err)
	}
	waitWatchers(t, b, 1)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeGRPC did not return with a watcher connected")
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("the watch stream still delivers after the server stopped")
	}
}

// TestHealthLiveThenReady: on its own port, health answers SERVING for liveness ("") and
// LogService from the start, NOT_SERVING for ReadyService until SetReady, and Serve returns
// when its context ends.
func TestHealthLiveThenReady(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := NewHealth()
	go func() { done <- h.Serve(ctx, lis) }()
	client := healthpb.NewHealthClient(dial(t, lis.Addr().String()))
	check := func(service string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		got, err := client.Check(testCtx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || got.Status != want {
			t.Fatalf("health of %q: %v %v, want %v", service, got, err, want)
		}
	}
	check("", healthpb.HealthCheckResponse_SERVING)
	check("feeder.LogService", healthpb.HealthCheckResponse_SERVING)
	check(ReadyService, healthpb.HealthCheckResponse_NOT_SERVING)
	h.SetReady()
	check(ReadyService, healthpb.HealthCheckResponse_SERVING)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Health.Serve did not return")
	}
}

// waitWatchers waits until the broker has n watchers: the stream is open on the server's side.
func waitWatchers(t *testing.T, b *Broker, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(b.Stats()) >= n {
			return
		}
	}
	t.Fatalf("broker has %d watchers after 10s, want %d", len(b.Stats()), n)
}
