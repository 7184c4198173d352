// Package logclient is `ward logs`: a client of the gRPC LogService (Ward's or KubeArmor's) that
// prints the alerts and logs passing karmor's filters, as text blocks or JSON lines.
package logclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/events"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Options are `ward logs` flags, named as karmor's.
type Options struct {
	GRPC      string // host:port of the LogService
	LogFilter string // policy (alerts), system (logs) or all
	JSON      bool   // print JSON lines instead of text blocks
	// Filters; an empty one matches everything.
	Namespace string
	Operation string // Process, File, Network, Capabilities, Syscall (any case)
	LogType   string // the Type field: MatchedPolicy, MatchedHostPolicy, ContainerLog, HostLog, ...
	Container string
	Pod       string
	Resource  string // substring of Resource
	Source    string // substring of Source
	Labels    string // k=v,k=v: every pair must be among the event's labels
	Limit     int    // stop after this many events; 0 means never
}

// DefaultAddr is where `ward logs` looks for the LogService.
const DefaultAddr = "localhost:32767"

// Validate checks the options before connecting.
func (o *Options) Validate() error {
	switch o.LogFilter {
	case events.FilterAll, events.FilterPolicy, events.FilterSystem:
	default:
		return fmt.Errorf("logFilter %q: want policy, system or all", o.LogFilter)
	}
	if o.Limit < 0 {
		return fmt.Errorf("limit %d: want 0 (no limit) or more", o.Limit)
	}
	if _, err := parseLabels(o.Labels); err != nil {
		return err
	}
	return nil
}

// Watch streams alerts and/or logs from the LogService at o.GRPC and prints those that pass the
// filters, until ctx ends, o.Limit events are printed, or the stream fails.
func Watch(ctx context.Context, o Options, out io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	f, _ := parseLabels(o.Labels)
	p := &printer{o: &o, labels: f, out: out}
	cc, err := grpc.NewClient(o.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect %s: %w", o.GRPC, err)
	}
	defer cc.Close()
	client := feeder.NewLogServiceClient(cc)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.done = cancel

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if o.LogFilter != events.FilterSystem {
		st, err := client.WatchAlerts(ctx, &feeder.RequestMessage{Filter: events.FilterPolicy})
		if err != nil {
			return fmt.Errorf("watch alerts on %s: %w", o.GRPC, err)
		}
		wg.Go(func() { errs <- recvAll(st, "Alert", p) })
	}
	if o.LogFilter != events.FilterPolicy {
		st, err := client.WatchLogs(ctx, &feeder.RequestMessage{Filter: events.FilterSystem})
		if err != nil {
			return fmt.Errorf("watch logs on %s: %w", o.GRPC, err)
		}
		wg.Go(func() { errs <- recvAll(st, "Log", p) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("watch %s: %w", o.GRPC, err)
		}
	}
	return p.writeErr
}

// recvAll prints one stream until it ends. A cancelled stream (limit reached, Ctrl-C) is not an
// error.
func recvAll[T any, PT interface {
	*T
	proto.Message
}](st grpc.ServerStreamingClient[T], kind string, p *printer) error {
	for {
		v, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		p.print(kind, PT(v))
	}
}

type printer struct {
	o      *Options
	labels map[string]string
	out    io.Writer
	done   func()

	mu       sync.Mutex
	n        int
	writeErr error
}

func (p *printer) print(kind string, m proto.Message) {
	r := m.ProtoReflect()
	if !p.match(r) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Limit > 0 && p.n >= p.o.Limit || p.writeErr != nil {
		return
	}
	var err error
	if p.o.JSON {
		var line []byte
		if line, err = events.MarshalLine(m); err == nil {
			_, err = p.out.Write(append(line, '\n'))
		}
	} else {
		_, err = io.WriteString(p.out, Text(kind, m))
	}
	if err != nil {
		p.writeErr = fmt.Errorf("print: %w", err)
		p.done()
		return
	}
	p.n++
	if p.o.Limit > 0 && p.n >= p.o.Limit {
		p.done()
	}
}

// match applies the filters. Alerts and logs share the field names used here.
func (p *printer) match(r protoreflect.Message) bool {
	get := func(name protoreflect.Name) string {
		fd := r.Descriptor().Fields().ByName(name)
		if fd == nil {
			return ""
		}
		return r.Get(fd).String()
	}
	o := p.o
	if o.Namespace != "" && get("NamespaceName") != o.Namespace ||
		o.Operation != "" && !strings.EqualFold(get("Operation"), o.Operation) ||
		o.LogType != "" && !strings.EqualFold(get("Type"), o.LogType) ||
		o.Container != "" && get("ContainerName") != o.Container ||
		o.Pod != "" && get("PodName") != o.Pod ||
		o.Resource != "" && !strings.Contains(get("Resource"), o.Resource) ||
		o.Source != "" && !strings.Contains(get("Source"), o.Source) {
		return false
	}
	if len(p.labels) > 0 {
		have, _ := parseLabels(get("Labels"))
		for k, v := range p.labels {
			if hv, ok := have[k]; !ok || hv != v {
				return false
			}
		}
	}
	return true
}

// parseLabels reads "k=v,k=v".
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// Text renders an event as karmor does: a "== Alert / time ==" header, then one "Field: value"
// line per field that is set, in field-number order.
func Text(kind string, m proto.Message) string {
	r := m.ProtoReflect()
	var sb strings.Builder
	updated := ""
	if fd := r.Descriptor().Fields().ByName("UpdatedTime"); fd != nil {
		updated = strings.TrimSuffix(strings.Replace(r.Get(fd).String(), "T", " ", 1), "Z")
	}
	fmt.Fprintf(&sb, "== %s / %s ==\n", kind, updated)
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Name() == "Timestamp" || fd.Name() == "UpdatedTime" || !r.Has(fd) {
			continue
		}
		fmt.Fprintf(&sb, "%s: %s\n", fd.Name(), textValue(fd, r.Get(fd)))
	}
	return sb.String()
}

func textValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch {
	case fd.IsMap():
		m := map[string]string{}
		v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			m[k.String()] = v.String()
			return true
		})
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, k+"="+m[k])
		}
		return strings.Join(parts, " ")
	case fd.IsList():
		var parts []string
		for i := range v.List().Len() {
			parts = append(parts, v.List().Get(i).String())
		}
		return strings.Join(parts, ",")
	case fd.Kind() == protoreflect.MessageKind:
		var parts []string
		sub := v.Message()
		sf := sub.Descriptor().Fields()
		for i := range sf.Len() {
			if f := sf.Get(i); sub.Has(f) {
				parts = append(parts, string(f.Name())+"="+sub.Get(f).String())
			}
		}
		return strings.Join(parts, " ")
	}
	return v.String()
}
