//go:build node

package nodetest

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/api/feeder"
)

// alert is the part of a LogService alert the suite checks.
type alert struct {
	NamespaceName, PodName, ContainerName, ContainerID, Labels string
	OwnerKind, OwnerName, OwnerNamespace                       string
	Action, Resource, Result                                   string
}

type alertWatch struct {
	mu   sync.Mutex
	got  []alert
	errs []error
}

var forwardLine = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)

// watchAlerts forwards a local port to Ward's Service with kubectl port-forward (through the API
// server and the kubelet, as karmor logs does) and streams WatchAlerts until the test ends. The
// stream counts as open once Ward's headers arrive: Ward sends them when the subscription exists.
// A forward that drops its first connections (Ward's pod not yet listening, or a connection the
// forward closed before Ward's preface) is started again, for up to openLimit; any other error,
// or the limit, fails the test.
func (c *cluster) watchAlerts(t *testing.T) *alertWatch {
	t.Helper()
	const openLimit = 2 * time.Minute
	deadline := time.Now().Add(openLimit)
	var (
		ctx    context.Context
		stream grpc.ServerStreamingClient[feeder.Alert]
	)
	for try := 1; ; try++ {
		var stop func()
		var err error
		ctx, stream, stop, err = c.openAlerts(time.Until(deadline))
		if err == nil {
			t.Cleanup(stop)
			if try > 1 {
				t.Logf("WatchAlerts open on try %d", try)
			}
			break
		}
		stop()
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("WatchAlerts through kubectl port-forward svc/ward, try %d: %v", try, err)
		}
		t.Logf("WatchAlerts through kubectl port-forward svc/ward, try %d: %v; starting the forward again", try, err)
		time.Sleep(2 * time.Second)
	}
	w := &alertWatch{}
	go func() {
		for {
			a, err := stream.Recv()
			if err != nil {
				if ctx.Err() == nil {
					w.mu.Lock()
					w.errs = append(w.errs, err)
					w.mu.Unlock()
				}
				return
			}
			v := alert{
				NamespaceName: a.NamespaceName, PodName: a.PodName, ContainerName: a.ContainerName,
				ContainerID: a.ContainerID, Labels: a.Labels,
				Action: a.Action, Resource: a.Resource, Result: a.Result,
			}
			if o := a.Owner; o != nil {
				v.OwnerKind, v.OwnerName, v.OwnerNamespace = o.Ref, o.Name, o.Namespace
			}
			w.mu.Lock()
			w.got = append(w.got, v)
			w.mu.Unlock()
		}
	}()
	return w
}

// openAlerts starts a port-forward to Ward's Service and opens a WatchAlerts stream through it,
// waiting at most limit for the forward's local port. stop ends both; the stream lives until then.
func (c *cluster) openAlerts(limit time.Duration) (context.Context, grpc.ServerStreamingClient[feeder.Alert], func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	pf := exec.CommandContext(ctx, c.bin["kubectl"], "--kubeconfig="+c.kubeconfig, "-n", "kubearmor", "port-forward", "svc/ward", ":32767")
	stdout, err := pf.StdoutPipe()
	if err != nil {
		cancel()
		return nil, nil, func() {}, err
	}
	if err := pf.Start(); err != nil {
		cancel()
		return nil, nil, func() {}, err
	}
	var conn *grpc.ClientConn
	stop := func() {
		cancel()
		if conn != nil {
			conn.Close()
		}
		_ = pf.Wait()
	}
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := forwardLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
	}()
	var p string
	select {
	case p = <-port:
	case <-time.After(limit):
		return nil, nil, stop, fmt.Errorf("kubectl port-forward svc/ward: no local port after %v", limit)
	}
	conn, err = grpc.NewClient("127.0.0.1:"+p, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, stop, err
	}
	stream, err := feeder.NewLogServiceClient(conn).WatchAlerts(ctx, &feeder.RequestMessage{Filter: "all"})
	if err != nil {
		return nil, nil, stop, err
	}
	if _, err := stream.Header(); err != nil {
		return nil, nil, stop, err
	}
	return ctx, stream, stop, nil
}

// wait returns the first alert match accepts, failing the test after limit.
func (w *alertWatch) wait(t *testing.T, limit time.Duration, match func(alert) bool) alert {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		w.mu.Lock()
		for _, a := range w.got {
			if match(a) {
				w.mu.Unlock()
				return a
			}
		}
		n, errs := len(w.got), fmt.Sprint(w.errs)
		var last []alert
		if n > 5 {
			last = append(last, w.got[n-5:]...)
		} else {
			last = append(last, w.got...)
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no matching alert after %v (%d alerts, stream errors %s); the last: %+v", limit, n, errs, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
