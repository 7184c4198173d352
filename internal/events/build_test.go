package events

import (
	"github.com/wardsec/ward/internal/enforcer"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var testTime = time.Date(2026, 11, 28, 14, 40, 0, 123456789, time.FixedZone("CET", 3600))

func testBuilder() *Builder {
	return &Builder{Cluster: "default", HostName: "node1", NodeID: "n-1", Version: "v0.1.0",
		Now: func() time.Time { return testTime }}
}

func hostEvent() *Event {
	return &Event{
		Workload: workload.Host("node1", map[string]string{"kubernetes.io/os": "linux"}),
		Process: Process{PID: 4242, PPID: 4000, HostPID: 4242, HostPPID: 4000, UID: 1000,
			UserName: "alice", ProcessName: "/usr/bin/cat", ParentProcessName: "/usr/bin/bash",
			Cwd: "/home/alice/", TTY: "pts0"},
		Operation: policy.OpFile,
		Resource:  "/etc/passwd",
		Data:      "lsm=FILE_OPEN flags=O_RDONLY",
		Enforcer:  enforcer.AlertName(enforcer.BPF),
		Errno:     syscall.EACCES,
	}
}

func blockVerdict() rules.Verdict {
	return rules.Verdict{Action: policy.ActionBlock, DisplayAction: "Block", Alert: true,
		Policy: "block-etc-passwd-read", Severity: 8, Tags: []string{"MITRE", "T1003"},
		Message: "passwd read"}
}

func TestAlertFromHostEvent(t *testing.T) {
	got := testBuilder().Alert(hostEvent(), blockVerdict())
	want := &feeder.Alert{
		Timestamp: 1795873200, UpdatedTime: "2026-11-28T13:40:00.123456Z",
		ClusterName: "default", HostName: "node1",
		HostPID: 4242, HostPPID: 4000, PID: 4242, PPID: 4000, UID: 1000, UserName: "alice",
		ProcessName: "/usr/bin/cat", ParentProcessName: "/usr/bin/bash", Cwd: "/home/alice/", TTY: "pts0",
		PolicyName: "block-etc-passwd-read", Severity: "8", Tags: "MITRE,T1003",
		ATags: []string{"MITRE", "T1003"}, Message: "passwd read",
		Type: "MatchedHostPolicy", Source: "/usr/bin/cat", Operation: "File", Resource: "/etc/passwd",
		Data: "lsm=FILE_OPEN flags=O_RDONLY", Enforcer: "BPFLSM", Action: "Block",
		Result: "Permission denied", KubeArmorVersion: "v0.1.0", NodeID: "n-1",
	}
	if !proto.Equal(got, want) {
		t.Errorf("alert\n got %v\nwant %v", got, want)
	}
}

func TestAlertFromContainerEvent(t *testing.T) {
	ev := hostEvent()
	ev.Workload = workload.Workload{Kind: workload.KindContainer, Hostname: "node2", Namespace: "shop",
		Pod: "web-1", Container: "nginx", ContainerID: "abc123", Image: "nginx:1.27",
		Labels: map[string]string{"tier": "front", "app": "web"}, Mode: workload.ModeAudited}
	ev.Process.ExecID = "e-7"
	ev.Owner = &feeder.Podowner{Ref: "Deployment", Name: "web", Namespace: "shop"}
	ev.Source = "/usr/bin/cat /etc/passwd"
	ev.Errno = 0
	ev.Time = time.Unix(100, 5000).UTC()
	v := blockVerdict()
	v.Action, v.DisplayAction = policy.ActionAudit, "Audit (Block)"

	a := testBuilder().Alert(ev, v)
	if a.Type != TypeMatchedPolicy || a.HostName != "node2" || a.NamespaceName != "shop" ||
		a.PodName != "web-1" || a.ContainerName != "nginx" || a.ContainerID != "abc123" ||
		a.ContainerImage != "nginx:1.27" {
		t.Errorf("identity: %v", a)
	}
	if a.Labels != "app=web,tier=front" {
		t.Errorf("Labels = %q", a.Labels)
	}
	if a.Action != "Audit (Block)" || a.Result != "Passed" || a.Source != "/usr/bin/cat /etc/passwd" {
		t.Errorf("Action %q Result %q Source %q", a.Action, a.Result, a.Source)
	}
	if a.Timestamp != 100 || a.UpdatedTime != "1970-01-01T00:01:40.000005Z" {
		t.Errorf("event time not used: %d %q", a.Timestamp, a.UpdatedTime)
	}
	if a.ExecEvent.GetExecID() != "e-7" || a.ExecEvent.GetExecutableName() != "/usr/bin/cat" {
		t.Errorf("ExecEvent = %v", a.ExecEvent)
	}
	if a.Owner.GetRef() != "Deployment" {
		t.Errorf("Owner = %v", a.Owner)
	}
}

// The pod's owner reaches the alert from the workload the informer described, as KubeArmor's
// Owner (Ref, Name, Namespace).
func TestAlertOwnerFromWorkload(t *testing.T) {
	ev := hostEvent()
	ev.Workload = workload.Workload{Kind: workload.KindContainer, Namespace: "shop", Pod: "web-5d9c-x",
		Container: "nginx", Owner: &workload.Owner{Kind: "Deployment", Name: "web", Namespace: "shop"}}
	a := testBuilder().Alert(ev, blockVerdict())
	if a.Owner.GetRef() != "Deployment" || a.Owner.GetName() != "web" || a.Owner.GetNamespace() != "shop" {
		t.Errorf("Owner = %v, want Deployment web in shop", a.Owner)
	}
	ev.Workload.Owner = nil
	if a := testBuilder().Alert(ev, blockVerdict()); a.Owner != nil {
		t.Errorf("Owner without one known = %v, want none", a.Owner)
	}
}

func TestAlertCopiesTags(t *testing.T) {
	v := blockVerdict()
	a := testBuilder().Alert(hostEvent(), v)
	v.Tags[0] = "changed"
	if a.ATags[0] != "MITRE" {
		t.Error("alert shares the verdict's tag slice")
	}
}

func TestAlertDisplayActionFallsBackToAction(t *testing.T) {
	v := blockVerdict()
	v.DisplayAction = ""
	if a := testBuilder().Alert(hostEvent(), v); a.Action != "Block" {
		t.Errorf("Action = %q", a.Action)
	}
}

func TestLogTypes(t *testing.T) {
	b := testBuilder()
	ev := hostEvent()
	if l := b.Log(ev); l.Type != TypeHostLog || l.Result != "Permission denied" || l.UpdatedTime != "2026-11-28T13:40:00.123456Z" {
		t.Errorf("host log: %v", l)
	}
	ev.Workload = workload.Workload{Kind: workload.KindContainer, ContainerID: "c"}
	if l := b.Log(ev); l.Type != TypeContainerLog || l.HostName != "node1" {
		t.Errorf("container log: %v", l)
	}
}

func TestResultText(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  string
	}{
		{0, "Passed"},
		{syscall.EACCES, "Permission denied"},
		{syscall.EPERM, "Operation not permitted"},
		{syscall.ENOENT, "No such file or directory"},
		{syscall.ECONNREFUSED, "Connection refused"},
	} {
		if got := ResultText(c.errno); got != c.want {
			t.Errorf("ResultText(%d) = %q, want %q", int(c.errno), got, c.want)
		}
	}
}

// An alert carries every field of the log of the same access (but its Type), EventData and the
// hashes included.
func TestAlertCarriesTheLog(t *testing.T) {
	ev := hostEvent()
	ev.EventData = map[string]string{"k": "v"}
	ev.ResourceHash = "rh"
	ev.Process.ProcessHash, ev.Process.ParentHash, ev.Process.HashAlgo = "ph", "pph", "sha256"
	b := testBuilder()
	a, l := b.Alert(ev, blockVerdict()).ProtoReflect(), b.Log(ev).ProtoReflect()
	n := 0
	l.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() == "Type" {
			return true
		}
		af := a.Descriptor().Fields().ByName(fd.Name())
		if af == nil {
			t.Errorf("the alert has no field %s", fd.Name())
			return true
		}
		n++
		if got := a.Get(af); !got.Equal(v) {
			t.Errorf("alert %s = %v, log %v", fd.Name(), got, v)
		}
		return true
	})
	if n < 25 {
		t.Errorf("only %d fields compared", n)
	}
}
