package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// KubeArmor's ports, which karmor and existing relays expect.
const (
	DefaultGRPCAddr   = ":32767"
	DefaultHealthAddr = ":32766"
)

// Filters of RequestMessage.
const (
	FilterAll    = "all"
	FilterPolicy = "policy" // alerts only
	FilterSystem = "system" // logs only
)

// OpEventsDropped is the Operation of the in-band notice a watcher gets when it catches up after
// losing events.
const OpEventsDropped = "EventsDropped"

// Server is feeder.LogService over a Broker.
type Server struct {
	feeder.UnimplementedLogServiceServer
	broker  *Broker
	builder *Builder
	log     *slog.Logger
}

// NewServer serves the broker's events; builder stamps the notices the server makes itself.
func NewServer(b *Broker, builder *Builder, log *slog.Logger) *Server {
	return &Server{broker: b, builder: builder, log: log}
}

// Register adds LogService to g, so the daemon can serve it beside other services on one port.
func (s *Server) Register(g *grpc.Server) { feeder.RegisterLogServiceServer(g, s) }

// ServeGRPC serves g on lis until ctx ends. Watch streams never end on their own, so a graceful
// stop would wait forever: unary calls get a moment to finish, then every stream is cut.
func ServeGRPC(ctx context.Context, g *grpc.Server, lis net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- serve(g, lis, "grpc") }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	graceful := make(chan struct{})
	go func() { g.GracefulStop(); close(graceful) }()
	select {
	case <-graceful:
	case <-time.After(2 * time.Second):
		g.Stop()
		<-graceful
	}
	return <-served
}

// ReadyService is the grpc.health.v1 service that answers SERVING once the daemon's first round
// of rules is in force; deploy/'s readiness probe asks for it. Liveness asks for "", SERVING
// from the start, so that a first load of BPF programs or profiles that takes minutes on a slow
// node is not taken for a hung daemon and killed.
const ReadyService = "ward.Ready"

// Health is the daemon's grpc.health.v1: "" and LogService SERVING from the start,
// ReadyService after SetReady.
type Health struct{ hs *health.Server }

// NewHealth starts alive and not ready.
func NewHealth() *Health {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(feeder.LogService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(ReadyService, healthpb.HealthCheckResponse_NOT_SERVING)
	return &Health{hs: hs}
}

// SetReady makes ReadyService answer SERVING.
func (h *Health) SetReady() {
	h.hs.SetServingStatus(ReadyService, healthpb.HealthCheckResponse_SERVING)
}

// Ready reports whether SetReady was called.
func (h *Health) Ready() bool {
	r, err := h.hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: ReadyService})
	return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
}

// Register adds the health service to g, for clients that probe the main port.
func (h *Health) Register(g *grpc.Server) { healthpb.RegisterHealthServer(g, h.hs) }

// Serve answers on lis, on a server of its own, until ctx ends.
func (h *Health) Serve(ctx context.Context, lis net.Listener) error {
	g := grpc.NewServer()
	h.Register(g)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			h.hs.Shutdown()
			g.Stop()
		case <-stopped:
		}
	}()
	return serve(g, lis, "health service")
}

func serve(g *grpc.Server, lis net.Listener, what string) error {
	if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// HealthCheck echoes the nonce, as KubeArmor does.
func (s *Server) HealthCheck(_ context.Context, n *feeder.NonceMessage) (*feeder.ReplyMessage, error) {
	return &feeder.ReplyMessage{Retval: n.GetNonce()}, nil
}

// WatchAlerts streams alerts for the filters "all" and "policy" (or empty).
func (s *Server) WatchAlerts(req *feeder.RequestMessage, st grpc.ServerStreamingServer[feeder.Alert]) error {
	if f := req.GetFilter(); f != "" && f != FilterAll && f != FilterPolicy {
		return status.Errorf(codes.InvalidArgument, "alert filter %q: want %q or %q", f, FilterAll, FilterPolicy)
	}
	sub := s.broker.WatchAlerts(peerName(st.Context()))
	return pump(s, st, sub, "alerts", func(n uint64) *feeder.Alert {
		a := &feeder.Alert{ClusterName: s.builder.Cluster, HostName: s.builder.HostName,
			Type: TypeSystemEvent, Operation: OpEventsDropped, Data: fmt.Sprintf("dropped=%d", n),
			Message: dropText(n, "alerts")}
		a.Timestamp, a.UpdatedTime = s.builder.stamp(time.Time{})
		return a
	})
}

// WatchLogs streams logs for the filters "all" and "system" (or empty).
func (s *Server) WatchLogs(req *feeder.RequestMessage, st grpc.ServerStreamingServer[feeder.Log]) error {
	if f := req.GetFilter(); f != "" && f != FilterAll && f != FilterSystem {
		return status.Errorf(codes.InvalidArgument, "log filter %q: want %q or %q", f, FilterAll, FilterSystem)
	}
	sub := s.broker.WatchLogs(peerName(st.Context()))
	return pump(s, st, sub, "logs", func(n uint64) *feeder.Log {
		l := &feeder.Log{ClusterName: s.builder.Cluster, HostName: s.builder.HostName,
			Type: TypeSystemEvent, Operation: OpEventsDropped, Data: fmt.Sprintf("dropped=%d", n)}
		l.Timestamp, l.UpdatedTime = s.builder.stamp(time.Time{})
		return l
	})
}

// WatchMessages streams daemon messages; the filter is ignored, as in KubeArmor.
func (s *Server) WatchMessages(_ *feeder.RequestMessage, st grpc.ServerStreamingServer[feeder.Message]) error {
	sub := s.broker.WatchMessages(peerName(st.Context()))
	return pump(s, st, sub, "messages", func(n uint64) *feeder.Message {
		return s.builder.Message(OpEventsDropped, "Warn", dropText(n, "messages"))
	})
}

// pump sends a subscription's events to one client until the client goes away. When the client
// catches up after drops it gets an in-band notice, and the other message watchers hear of it.
func pump[T any](s *Server, st grpc.ServerStreamingServer[T], sub *Subscription[*T], what string, notice func(uint64) *T) error {
	defer sub.Close()
	// Headers tell the client the subscription exists, so nothing published after its call
	// returns is missed.
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := st.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case v := <-sub.C():
			if err := st.Send(v); err != nil {
				return err
			}
			n := sub.Recovered()
			if n == 0 {
				continue
			}
			s.log.Warn("watcher dropped events", "client", sub.Name, "stream", what, "dropped", n,
				"dropped_total", sub.Stats().Dropped)
			if what != "messages" {
				s.broker.PublishMessage(s.builder.Message(OpEventsDropped, "Warn",
					fmt.Sprintf("client %s: %s", sub.Name, dropText(n, what))))
			}
			if err := st.Send(notice(n)); err != nil {
				return err
			}
		}
	}
}

func dropText(n uint64, what string) string {
	return fmt.Sprintf("%d %s were not delivered because the client read too slowly", n, what)
}

func peerName(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}
