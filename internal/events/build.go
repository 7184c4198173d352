package events

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Process is what the kernel told us about the acting process. PID and PPID are as seen inside
// the workload's pid namespace, HostPID and HostPPID as seen on the node.
type Process struct {
	PID, PPID         int32
	HostPID, HostPPID int32
	UID               int32
	UserName          string
	// ProcessName is the executable's path; ParentProcessName the parent's.
	ProcessName       string
	ParentProcessName string
	Cwd               string
	TTY               string
	// ExecID identifies this execution when the sensor tracks executions; it fills ExecEvent.
	ExecID string
	// Hashes of the executables, when the sensor computes them, and the algorithm used.
	ProcessHash, ParentHash, HashAlgo string
}

// Event is what the Builder renders: an access with its workload and process filled in by the
// Attributor (the kernel's report before attribution is enforcer.Event).
type Event struct {
	Workload workload.Workload
	// Owner is the pod's owning object, when known.
	Owner   *feeder.Podowner
	Process Process
	// Time is when the kernel saw the access; the zero value means "now" by the Builder's clock.
	Time      time.Time
	Operation policy.Operation
	// Source is the acting program as KubeArmor shows it (path and arguments for exec);
	// Process.ProcessName when empty.
	Source   string
	Resource string
	Data     string
	Enforcer string
	// Errno is what the access returned: 0 when it passed.
	Errno        syscall.Errno
	ResourceHash string
	EventData    map[string]string
}

// owner is the Owner the alert or log carries: the event's own, else the workload's.
func (ev *Event) owner() *feeder.Podowner {
	if ev.Owner != nil {
		return ev.Owner
	}
	if o := ev.Workload.Owner; o != nil {
		return &feeder.Podowner{Ref: o.Kind, Name: o.Name, Namespace: o.Namespace}
	}
	return nil
}

// Builder makes alerts, logs and messages for one node. Its clock is injected so that tests and
// replays produce byte-stable output.
type Builder struct {
	Cluster  string
	HostName string
	HostIP   string
	NodeID   string
	Version  string
	Now      func() time.Time
}

func (b *Builder) stamp(t time.Time) (int64, string) {
	if t.IsZero() {
		t = b.now()
	}
	return t.Unix(), t.UTC().Format(UpdatedTimeLayout)
}

func (b *Builder) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

// Alert reports an access that a policy (or a default posture) decided. The caller decides
// whether to report: Alert does not look at v.Alert. An alert is the Log of the same access
// (KubeArmor's two messages share those fields, by name) plus the verdict.
func (b *Builder) Alert(ev *Event, v rules.Verdict) *feeder.Alert {
	a := &feeder.Alert{}
	copyByName(a, b.Log(ev))
	a.Type = alertType(&ev.Workload)
	a.PolicyName = v.Policy
	a.Severity = severity(v.Severity)
	a.Tags = strings.Join(v.Tags, ",")
	a.ATags = slices.Clone(v.Tags)
	a.Message = v.Message
	a.Enforcer = ev.Enforcer
	a.Action = displayAction(v)
	a.KubeArmorVersion = b.Version
	return a
}

// copyByName sets every field of dst that src has set under the same name and type.
func copyByName(dst, src proto.Message) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	fields := d.Descriptor().Fields()
	s.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if df := fields.ByName(fd.Name()); df != nil && sameType(df, fd) {
			d.Set(df, v)
		}
		return true
	})
}

// sameType reports whether a value of field b can be stored in field a.
func sameType(a, b protoreflect.FieldDescriptor) bool {
	switch {
	case a.IsMap() || b.IsMap():
		return a.IsMap() && b.IsMap() && a.MapKey().Kind() == b.MapKey().Kind() && a.MapValue().Kind() == b.MapValue().Kind() &&
			a.MapValue().Message() == nil && b.MapValue().Message() == nil
	case a.Kind() != b.Kind() || a.Cardinality() != b.Cardinality():
		return false
	case a.Message() != nil:
		return a.Message().FullName() == b.Message().FullName()
	}
	return true
}

// Log reports an access no policy matched, for visibility.
func (b *Builder) Log(ev *Event) *feeder.Log {
	w, p := &ev.Workload, &ev.Process
	l := &feeder.Log{
		ClusterName:       b.Cluster,
		HostName:          b.hostName(w),
		NamespaceName:     w.Namespace,
		PodName:           w.Pod,
		ContainerID:       w.ContainerID,
		ContainerName:     w.Container,
		ContainerImage:    w.Image,
		Labels:            labelString(w),
		Owner:             ev.owner(),
		HostPID:           p.HostPID,
		HostPPID:          p.HostPPID,
		PPID:              p.PPID,
		PID:               p.PID,
		UID:               p.UID,
		UserName:          p.UserName,
		ProcessName:       p.ProcessName,
		ParentProcessName: p.ParentProcessName,
		Cwd:               p.Cwd,
		TTY:               p.TTY,
		ExecEvent:         execEvent(p),
		ProcessHash:       p.ProcessHash,
		ParentHash:        p.ParentHash,
		ResourceHash:      ev.ResourceHash,
		HashAlgo:          p.HashAlgo,
		Type:              logType(w),
		Source:            source(ev),
		Operation:         string(ev.Operation),
		Resource:          ev.Resource,
		Data:              ev.Data,
		Result:            ResultText(ev.Errno),
		NodeID:            b.NodeID,
		EventData:         maps.Clone(ev.EventData),
	}
	l.Timestamp, l.UpdatedTime = b.stamp(ev.Time)
	return l
}

// Message is a daemon message: typ names what happened, level is "Info", "Warn" or "Error".
func (b *Builder) Message(typ, level, text string) *feeder.Message {
	m := &feeder.Message{
		ClusterName: b.Cluster,
		HostName:    b.HostName,
		HostIP:      b.HostIP,
		Type:        typ,
		Level:       level,
		Message:     text,
	}
	m.Timestamp, m.UpdatedTime = b.stamp(time.Time{})
	return m
}

func (b *Builder) hostName(w *workload.Workload) string {
	if w.Hostname != "" {
		return w.Hostname
	}
	return b.HostName
}

func alertType(w *workload.Workload) string {
	if w.Kind == workload.KindHost {
		return TypeMatchedHostPolicy
	}
	return TypeMatchedPolicy
}

func logType(w *workload.Workload) string {
	if w.Kind == workload.KindHost {
		return TypeHostLog
	}
	return TypeContainerLog
}

// labelString renders a container's pod labels as KubeArmor does, "k=v,k=v", sorted so that the
// same pod always yields the same string. The host's labels are node labels, which KubeArmor does
// not put in host alerts.
func labelString(w *workload.Workload) string {
	if w.Kind == workload.KindHost || len(w.Labels) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(w.Labels))
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(w.Labels[k])
	}
	return sb.String()
}

func severity(s int) string {
	if s <= 0 {
		return ""
	}
	return strconv.Itoa(s)
}

func displayAction(v rules.Verdict) string {
	if v.DisplayAction != "" {
		return v.DisplayAction
	}
	return string(v.Action)
}

func source(ev *Event) string {
	if ev.Source != "" {
		return ev.Source
	}
	return ev.Process.ProcessName
}

func execEvent(p *Process) *feeder.ExecEvent {
	if p.ExecID == "" {
		return nil
	}
	return &feeder.ExecEvent{ExecID: p.ExecID, ExecutableName: p.ProcessName}
}
