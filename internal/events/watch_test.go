package events

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/workload"
)

// runWatch runs Watch against s, waits until it has subscribed to want streams, then publishes.
func runWatch(t *testing.T, s *testServer, o WatchOptions, want int, publish func()) string {
	t.Helper()
	o.GRPC = s.addr
	var out bytes.Buffer
	ctx := testCtx(t)
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

func containerEvent(ns, pod, container, resource string) *Event {
	ev := hostEvent()
	ev.Workload = workload.Workload{Kind: workload.KindContainer, Namespace: ns, Pod: pod,
		Container: container, ContainerID: pod + "-id", Labels: map[string]string{"app": pod, "tier": "x"}}
	ev.Resource = resource
	return ev
}

func TestWatchPrintsFilteredJSON(t *testing.T) {
	s := startServer(t, 0, nil)
	b := testBuilder()
	out := runWatch(t, s, WatchOptions{LogFilter: FilterPolicy, JSON: true, Namespace: "shop",
		Pod: "web", Labels: "app=web", Resource: "passwd", Limit: 2}, 1, func() {
		s.broker.Publish(b.Alert(containerEvent("other", "web", "c", "/etc/passwd"), blockVerdict()))
		s.broker.Publish(b.Alert(containerEvent("shop", "db", "c", "/etc/passwd"), blockVerdict()))
		s.broker.Publish(b.Alert(containerEvent("shop", "web", "c", "/etc/shadow"), blockVerdict()))
		s.broker.Publish(b.Alert(containerEvent("shop", "web", "c", "/etc/passwd"), blockVerdict()))
		s.broker.Publish(b.Alert(containerEvent("shop", "web", "c", "/etc/passwd-"), blockVerdict()))
		s.broker.Publish(b.Alert(containerEvent("shop", "web", "c", "/etc/passwd.bak"), blockVerdict()))
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
	s := startServer(t, 0, nil)
	b := testBuilder()
	out := runWatch(t, s, WatchOptions{LogFilter: FilterAll, Operation: "file", Limit: 2}, 2, func() {
		ev := hostEvent()
		ev.Operation = "Process"
		s.broker.PublishLog(b.Log(ev))
		s.broker.Publish(b.Alert(hostEvent(), blockVerdict()))
		s.broker.PublishLog(b.Log(hostEvent()))
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
	s := startServer(t, 0, nil)
	b := testBuilder()
	out := runWatch(t, s, WatchOptions{LogFilter: FilterSystem, LogType: "hostlog", Limit: 1}, 1, func() {
		if st := s.broker.Stats(); st[0].Stream != "logs" {
			t.Errorf("subscribed to %s", st[0].Stream)
		}
		l := b.Log(hostEvent())
		l.Type = TypeContainerLog
		s.broker.PublishLog(l)
		s.broker.PublishLog(b.Log(hostEvent()))
	})
	if strings.Count(out, "== Log") != 1 || !strings.Contains(out, "Type: HostLog") {
		t.Errorf("output:\n%s", out)
	}
}

func TestWatchOptionErrors(t *testing.T) {
	for _, o := range []WatchOptions{
		{LogFilter: "alerts"},
		{LogFilter: FilterAll, Limit: -1},
		{LogFilter: FilterAll, Labels: "app"},
	} {
		if err := Watch(context.Background(), o, &bytes.Buffer{}); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestWatchReportsUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Watch(ctx, WatchOptions{GRPC: "127.0.0.1:1", LogFilter: FilterAll}, &bytes.Buffer{})
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
