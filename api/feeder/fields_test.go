package feeder

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// field is one entry of KubeArmor's kubearmor.proto as kubearmor-compat.md §6 lists it.
type field struct {
	name   string
	number protoreflect.FieldNumber
	kind   protoreflect.Kind
	list   bool
}

const (
	str = protoreflect.StringKind
	i32 = protoreflect.Int32Kind
	i64 = protoreflect.Int64Kind
	msg = protoreflect.MessageKind
)

// kubeArmorFields is written from §6 by hand, not derived from the generated code, so that a
// renumbering, retyping or renaming in kubearmor.proto fails this test.
var kubeArmorFields = map[string][]field{
	"NonceMessage":   {{"nonce", 1, i32, false}},
	"ReplyMessage":   {{"Retval", 1, i32, false}},
	"RequestMessage": {{"Filter", 1, str, false}},
	"Podowner":       {{"Ref", 1, str, false}, {"Name", 2, str, false}, {"Namespace", 3, str, false}},
	"ExecEvent":      {{"ExecID", 1, str, false}, {"ExecutableName", 2, str, false}},
	"Message": {
		{"Timestamp", 1, i64, false}, {"UpdatedTime", 2, str, false}, {"ClusterName", 3, str, false},
		{"HostName", 4, str, false}, {"HostIP", 5, str, false}, {"Type", 6, str, false},
		{"Level", 7, str, false}, {"Message", 8, str, false},
	},
	"Alert": {
		{"Timestamp", 1, i64, false}, {"UpdatedTime", 2, str, false}, {"ClusterName", 3, str, false},
		{"HostName", 4, str, false}, {"NamespaceName", 5, str, false}, {"PodName", 6, str, false},
		{"ContainerID", 7, str, false}, {"ContainerName", 8, str, false}, {"HostPID", 9, i32, false},
		{"PPID", 10, i32, false}, {"PID", 11, i32, false}, {"UID", 12, i32, false},
		{"PolicyName", 13, str, false}, {"Severity", 14, str, false}, {"Tags", 15, str, false},
		{"Message", 16, str, false}, {"Type", 17, str, false}, {"Source", 18, str, false},
		{"Operation", 19, str, false}, {"Resource", 20, str, false}, {"Data", 21, str, false},
		{"Action", 22, str, false}, {"Result", 23, str, false}, {"ContainerImage", 24, str, false},
		{"ParentProcessName", 25, str, false}, {"ProcessName", 26, str, false},
		{"HostPPID", 27, i32, false}, {"Enforcer", 28, str, false}, {"Labels", 29, str, false},
		{"ATags", 30, str, true}, {"Owner", 31, msg, false}, {"Cwd", 32, str, false},
		{"TTY", 33, str, false}, {"MaxAlertsPerSec", 34, i32, false},
		{"DroppingAlertsInterval", 35, i32, false}, {"ExecEvent", 36, msg, false},
		{"KubeArmorVersion", 37, str, false}, {"NodeID", 38, str, false},
		{"ProcessHash", 39, str, false}, {"ParentHash", 40, str, false},
		{"ResourceHash", 41, str, false}, {"HashAlgo", 42, str, false},
		{"EventData", 43, msg, true}, {"UserName", 44, str, false},
	},
	"Log": {
		{"Timestamp", 1, i64, false}, {"UpdatedTime", 2, str, false}, {"ClusterName", 3, str, false},
		{"HostName", 4, str, false}, {"NamespaceName", 5, str, false}, {"PodName", 6, str, false},
		{"ContainerID", 7, str, false}, {"ContainerName", 8, str, false}, {"HostPID", 9, i32, false},
		{"PPID", 10, i32, false}, {"PID", 11, i32, false}, {"UID", 12, i32, false},
		{"Type", 13, str, false}, {"Source", 14, str, false}, {"Operation", 15, str, false},
		{"Resource", 16, str, false}, {"Data", 17, str, false}, {"Result", 18, str, false},
		{"ContainerImage", 19, str, false}, {"ParentProcessName", 20, str, false},
		{"ProcessName", 21, str, false}, {"HostPPID", 22, i32, false}, {"Labels", 23, str, false},
		{"Owner", 24, msg, false}, {"Cwd", 25, str, false}, {"TTY", 26, str, false},
		{"ExecEvent", 27, msg, false}, {"NodeID", 28, str, false}, {"ProcessHash", 29, str, false},
		{"ParentHash", 30, str, false}, {"ResourceHash", 31, str, false},
		{"HashAlgo", 32, str, false}, {"EventData", 33, msg, true}, {"UserName", 34, str, false},
	},
}

func TestFieldNumbersMatchKubeArmor(t *testing.T) {
	fd := File_kubearmor_proto
	if got := fd.Package(); got != "feeder" {
		t.Fatalf("package %q, want feeder", got)
	}
	for name, want := range kubeArmorFields {
		md := fd.Messages().ByName(protoreflect.Name(name))
		if md == nil {
			t.Errorf("message %s missing", name)
			continue
		}
		if got := md.Fields().Len(); got != len(want) {
			t.Errorf("%s has %d fields, KubeArmor has %d", name, got, len(want))
		}
		for _, w := range want {
			f := md.Fields().ByName(protoreflect.Name(w.name))
			if f == nil {
				t.Errorf("%s.%s missing", name, w.name)
				continue
			}
			if f.Number() != w.number || f.Kind() != w.kind || f.IsList() != w.list && !f.IsMap() {
				t.Errorf("%s.%s = %d %v list=%v, want %d %v list=%v", name, w.name,
					f.Number(), f.Kind(), f.IsList(), w.number, w.kind, w.list)
			}
		}
	}
	if got := fd.Messages().Len(); got != len(kubeArmorFields) {
		t.Errorf("%d messages, want %d", got, len(kubeArmorFields))
	}
}

func TestEventDataIsAStringMap(t *testing.T) {
	for _, m := range []string{"Alert", "Log"} {
		f := File_kubearmor_proto.Messages().ByName(protoreflect.Name(m)).Fields().ByName("EventData")
		if !f.IsMap() || f.MapKey().Kind() != str || f.MapValue().Kind() != str {
			t.Errorf("%s.EventData is not map<string,string>", m)
		}
	}
}

func TestLogServiceMethods(t *testing.T) {
	sd := File_kubearmor_proto.Services().ByName("LogService")
	if sd == nil {
		t.Fatal("service LogService missing")
	}
	want := []struct {
		name, in, out string
		stream        bool
	}{
		{"HealthCheck", "NonceMessage", "ReplyMessage", false},
		{"WatchMessages", "RequestMessage", "Message", true},
		{"WatchAlerts", "RequestMessage", "Alert", true},
		{"WatchLogs", "RequestMessage", "Log", true},
	}
	if sd.Methods().Len() != len(want) {
		t.Errorf("%d methods, want %d", sd.Methods().Len(), len(want))
	}
	for _, w := range want {
		m := sd.Methods().ByName(protoreflect.Name(w.name))
		if m == nil {
			t.Errorf("method %s missing", w.name)
			continue
		}
		if string(m.Input().Name()) != w.in || string(m.Output().Name()) != w.out ||
			m.IsStreamingServer() != w.stream || m.IsStreamingClient() {
			t.Errorf("%s(%s) returns %s stream=%v, want %s(%s) returns %s stream=%v", w.name,
				m.Input().Name(), m.Output().Name(), m.IsStreamingServer(), w.name, w.in, w.out, w.stream)
		}
	}
}
