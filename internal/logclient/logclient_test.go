package logclient

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/events"
)

type testServer struct {
	broker *events.Broker
	addr   string
}

// startServer serves a LogService on a loopback port chosen by the kernel, until the test ends.
func startServer(t *testing.T) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := events.NewBroker(0, nil)
	g := grpc.NewServer()
	events.NewServer(b, &events.Builder{}, slog.New(slog.DiscardHandler)).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return &testServer{broker: b, addr: lis.Addr().String()}
}

// runWatch runs Watch against s, waits until it has subscribed to want streams, then publishes.
func runWatch(t *testing.T, s *testServer, o Options, want int, publish func()) string {
	t.Helper()
	o.GRPC = s.addr
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, o, &out) }()
	for len(s.broker.Stats()) < want {
		select {
		case err := <-done:
			t.Fatalf("watch ended early: %v", err)
		case <-ctx.Done():
			t.Fatal("watch did not subscribe")
		case <-time.After(5 * time.Millisecond):
		}
	}
	publish()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("watch did not stop; printed:\n%s", out.String())
	}
	return out.String()
}

const testTime = "2026-11-28T13:40:00.123456Z"

// hostAlert is a host alert as the daemon sends it.
func hostAlert() *feeder.Alert {
	return &feeder.Alert{Timestamp: 1795873200, UpdatedTime: testTime, ClusterName: "default", HostName: "node1",
		PID: 4242, ProcessName: "/usr/bin/cat", PolicyName: "block-etc-passwd-read", Tags: "MITRE,T1003",
		ATags: []string{"MITRE", "T1003"}, Type: events.TypeMatchedHostPolicy, Operation: "File",
		Resource: "/etc/passwd", Action: "Block", Result: "Permission denied"}
}

func containerAlert(ns, pod, container, resource string) *feeder.Alert {
	a := hostAlert()
	a.NamespaceName, a.PodName, a.ContainerName, a.ContainerID = ns, pod, container, pod+"-id"
	a.Labels, a.Type, a.Resource = "app="+pod+",tier=x", events.TypeMatchedPolicy, resource
	return a
}

func hostLog(op string) *feeder.Log {
	return &feeder.Log{Timestamp: 1795873200, UpdatedTime: testTime, ClusterName: "default", HostName: "node1",
		PID: 4242, ProcessName: "/usr/bin/cat", Type: events.TypeHostLog, Operation: op, Resource: "/etc/passwd",
		Result: "Passed"}
}

func TestWatchPrintsFilteredJSON(t *testing.T) {
	s := startServer(t)
	out := runWatch(t, s, Options{LogFilter: events.FilterPolicy, JSON: true, Namespace: "shop",
		Pod: "web", Labels: "app=web", Resource: "passwd", Limit: 2}, 1, func() {
		s.broker.Publish(containerAlert("other", "web", "c", "/etc/passwd"))
		s.broker.Publish(containerAlert("shop", "db", "c", "/etc/passwd"))
		s.broker.Publish(containerAlert("shop", "web", "c", "/etc/shadow"))
		s.broker.Publish(containerAlert("shop", "web", "c", "/etc/passwd"))
		s.broker.Publish(containerAlert("shop", "web", "c", "/etc/passwd-"))
		s.broker.Publish(containerAlert("shop", "web", "c", "/etc/passwd.bak"))
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("printed %d lines, want 2 (limit):\n%s", len(lines), out)
	}
	for i, want := range []string{`"Resource":"/etc/passwd",`, `"Resource":"/etc/passwd-",`} {
		if !strings.HasPrefix(lines[i], `{"Timestamp":1795873200,`) || !strings.Contains(lines[i], want) ||
			!strings.Contains(lines[i], `"NamespaceName":"shop","PodName":"web"`) {
			t.Errorf("line %d: %s", i, lines[i])
		}
	}
}

func TestWatchAllPrintsAlertsAndLogsAsText(t *testing.T) {
	s := startServer(t)
	out := runWatch(t, s, Options{LogFilter: events.FilterAll, Operation: "file", Limit: 2}, 2, func() {
		s.broker.PublishLog(hostLog("Process"))
		s.broker.Publish(hostAlert())
		s.broker.PublishLog(hostLog("File"))
	})
	if !strings.Contains(out, "== Alert / 2026-11-28 13:40:00.123456 ==\nClusterName: default\nHostName: node1\n") ||
		!strings.Contains(out, "ATags: MITRE,T1003\n") || !strings.Contains(out, "Action: Block\n") {
		t.Errorf("alert text:\n%s", out)
	}
	if !strings.Contains(out, "== Log / 2026-11-28 13:40:00.123456 ==\n") || !strings.Contains(out, "Type: HostLog\n") {
		t.Errorf("log text:\n%s", out)
	}
	if strings.Contains(out, "Operation: Process") {
		t.Errorf("operation filter let a Process log through:\n%s", out)
	}
}

func TestWatchSystemOnlySubscribesToLogs(t *testing.T) {
	s := startServer(t)
	out := runWatch(t, s, Options{LogFilter: events.FilterSystem, LogType: "hostlog", Limit: 1}, 1, func() {
		if st := s.broker.Stats(); st[0].Stream != "logs" {
			t.Errorf("subscribed to %s", st[0].Stream)
		}
		l := hostLog("File")
		l.Type = events.TypeContainerLog
		s.broker.PublishLog(l)
		s.broker.PublishLog(hostLog("File"))
	})
	if strings.Count(out, "== Log") != 1 || !strings.Contains(out, "Type: HostLog") {
		t.Errorf("output:\n%s", out)
	}
}

func TestWatchOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{LogFilter: "alerts"},
		{LogFilter: events.FilterAll, Limit: -1},
		{LogFilter: events.FilterAll, Labels: "app"},
	} {
		if err := Watch(context.Background(), o, &bytes.Buffer{}); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestWatchReportsUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Watch(ctx, Options{GRPC: "127.0.0.1:1", LogFilter: events.FilterAll}, &bytes.Buffer{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("err = %v, ctx = %v", err, ctx.Err())
	}
}

func TestTextRendersNestedFields(t *testing.T) {
	a := &feeder.Alert{UpdatedTime: "2026-11-28T13:40:00.000001Z", Owner: &feeder.Podowner{Ref: "Deployment", Name: "web"},
		EventData: map[string]string{"b": "2", "a": "1"}, PID: 5}
	want := "== Alert / 2026-11-28 13:40:00.000001 ==\nPID: 5\nOwner: Ref=Deployment Name=web\nEventData: a=1 b=2\n"
	if got := Text("Alert", a); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
