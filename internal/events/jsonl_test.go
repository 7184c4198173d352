package events

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (-update to rewrite)\n got %s\nwant %s", name, got, want)
	}
}

func TestJSONLinesGoldenAlert(t *testing.T) {
	var out bytes.Buffer
	j := NewJSONLines(&out)
	a := testBuilder().Alert(hostEvent(), blockVerdict())
	if err := j.WriteAlert(a); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Error("line written before the flush delay")
	}
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(out.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want exactly one line, got %q", out.String())
	}
	golden(t, "alert.jsonl", out.Bytes())
}

// TestJSONLinesMatchesProtoJSON checks the choice of encoding/json over protojson: with every
// field set, and with every field empty, both give the same keys and values, except that protojson
// quotes the int64 Timestamp.
func TestJSONLinesMatchesProtoJSON(t *testing.T) {
	for name, m := range map[string]proto.Message{
		"full alert": fullAlert(), "empty alert": &feeder.Alert{}, "full log": fullLog(),
		"message":     testBuilder().Message("Start", "Info", "ward started"),
		"built alert": testBuilder().Alert(hostEvent(), blockVerdict()),
	} {
		line, err := MarshalLine(m)
		if err != nil {
			t.Fatal(err)
		}
		pj, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var ours, theirs map[string]any
		if err := json.Unmarshal(line, &ours); err != nil {
			t.Fatalf("%s: %v: %s", name, err, line)
		}
		if err := json.Unmarshal(pj, &theirs); err != nil {
			t.Fatal(err)
		}
		if ts, ok := ours["Timestamp"].(float64); ok {
			ours["Timestamp"] = strconv.FormatInt(int64(ts), 10)
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("%s:\n ours      %s\n protojson %s", name, line, pj)
		}
	}
}

func TestJSONLinesKeepsPathsReadable(t *testing.T) {
	line, err := MarshalLine(&feeder.Alert{Resource: "/tmp/a&b<c>"})
	if err != nil {
		t.Fatal(err)
	}
	if string(line) != `{"Resource":"/tmp/a&b<c>"}` {
		t.Errorf("got %s", line)
	}
}

func TestOpenJSONLinesFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	for range 2 {
		j, err := OpenJSONLines(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.WriteLog(&feeder.Log{Type: TypeHostLog}); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"Type\":\"HostLog\"}\n{\"Type\":\"HostLog\"}\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	if _, err := OpenJSONLines(LogPathNone, nil); err == nil {
		t.Error("none opened a sink")
	}
}

// fullAlert sets every field of an Alert to a distinct non-zero value, by reflection, so that a
// field added to the proto is covered without editing the test.
func fullAlert() *feeder.Alert {
	a := &feeder.Alert{}
	fill(a)
	return a
}

func fullLog() *feeder.Log {
	l := &feeder.Log{}
	fill(l)
	return l
}

// lockedBuffer is written by the sink's timer goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestJSONLinesFlushesByItself(t *testing.T) {
	var out lockedBuffer
	j := NewJSONLines(&out)
	if err := j.WriteLog(&feeder.Log{Type: TypeHostLog}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if out.String() != "{\"Type\":\"HostLog\"}\n" {
		t.Errorf("after the flush delay: %q", out.String())
	}

	// A full buffer is written at once, without waiting.
	big := &feeder.Log{Data: strings.Repeat("x", FlushSize)}
	if err := j.WriteLog(big); err != nil {
		t.Fatal(err)
	}
	if n := len(out.String()); n < FlushSize {
		t.Errorf("a full buffer was not written at once: %d bytes", n)
	}
}
