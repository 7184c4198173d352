package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/wardsec/ward/api/feeder"
	"google.golang.org/protobuf/proto"
)

// Log path values with a special meaning, as in KubeArmor's logPath.
const (
	LogPathStdout = "stdout"
	LogPathNone   = "none"
)

// JSONLines writes alerts and logs as one compact JSON object per line, with KubeArmor's field
// names (the proto field names) and empty fields left out, as protobuf's JSON mapping does.
// Timestamp is written as a number, as KubeArmor's own log file does, where protojson would
// quote an int64. encoding/json on the generated types gives exactly this, because protoc-gen-go
// tags every field `json:"<proto name>,omitempty"` (and it is twice as fast as walking the message
// with protoreflect).
//
// The sink never drops on its own: every line is kept until it is written. Lines are gathered and
// written at most FlushDelay after the first of them, or as soon as FlushSize bytes are waiting,
// because one write per line cost the daemon a third of its time under load. A failed write loses
// the lines it carried; they are counted (TakeLost) and the error is returned by every call until
// a write succeeds again.
type JSONLines struct {
	mu      sync.Mutex
	scratch bytes.Buffer
	enc     *json.Encoder
	w       io.Writer
	closer  io.Closer

	pending      []byte
	pendingLines int
	timer        *time.Timer // armed while lines are pending
	lost         uint64      // lines lost to failed writes, not yet taken
	err          error       // the last write's error; nil once a write succeeds
}

// How long a line may wait, and how many bytes may gather, before they are written.
const (
	FlushDelay = 50 * time.Millisecond
	FlushSize  = 64 << 10
)

// NewJSONLines writes to w.
func NewJSONLines(w io.Writer) *JSONLines {
	j := &JSONLines{w: w}
	j.enc = newEncoder(&j.scratch)
	if c, ok := w.(io.Closer); ok && w != os.Stdout && w != os.Stderr {
		j.closer = c
	}
	return j
}

// OpenJSONLines opens a logPath: "stdout" writes to stdout, anything else is a file, appended to.
// "none" is not a sink; the caller checks for LogPathNone.
func OpenJSONLines(path string, stdout io.Writer) (*JSONLines, error) {
	switch path {
	case LogPathStdout:
		return NewJSONLines(stdout), nil
	case LogPathNone, "":
		return nil, fmt.Errorf("log path %q: no sink to open", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log path: %w", err)
	}
	return NewJSONLines(f), nil
}

// WriteAlert queues one alert line.
func (j *JSONLines) WriteAlert(a *feeder.Alert) error { return j.write(a) }

// WriteLog queues one log line.
func (j *JSONLines) WriteLog(l *feeder.Log) error { return j.write(l) }

// WriteMessage queues one daemon message line.
func (j *JSONLines) WriteMessage(m *feeder.Message) error { return j.write(m) }

func (j *JSONLines) write(m proto.Message) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.scratch.Reset()
	if err := j.enc.Encode(m); err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	j.pending = append(j.pending, j.scratch.Bytes()...)
	j.pendingLines++
	if len(j.pending) >= FlushSize {
		j.flushLocked()
	} else if j.timer == nil {
		j.timer = time.AfterFunc(FlushDelay, j.timedFlush)
	}
	return j.err
}

func (j *JSONLines) timedFlush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.timer = nil
	j.flushLocked()
}

func (j *JSONLines) flushLocked() {
	if len(j.pending) == 0 {
		return
	}
	if _, err := j.w.Write(j.pending); err != nil {
		j.lost += uint64(j.pendingLines)
		j.err = fmt.Errorf("write %d lines: %w", j.pendingLines, err)
	} else {
		j.err = nil
	}
	j.pending, j.pendingLines = j.pending[:0], 0
}

// Flush writes the pending lines now.
func (j *JSONLines) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushLocked()
	return j.err
}

// TakeLost returns the number of lines lost to failed writes since the last call.
func (j *JSONLines) TakeLost() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.lost
	j.lost = 0
	return n
}

// Close writes the pending lines and closes the file (never stdout).
func (j *JSONLines) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.flushLocked()
	err := j.err
	if j.closer != nil {
		if cerr := j.closer.Close(); err == nil {
			err = cerr
		}
		j.closer = nil
	}
	return err
}

// MarshalLine encodes one event as JSONLines does, without the newline; `ward logs --json` uses
// it so that the client prints what the sink writes.
func MarshalLine(m proto.Message) ([]byte, error) {
	var buf bytes.Buffer
	if err := newEncoder(&buf).Encode(m); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	// Paths and arguments are not HTML: keep "<", ">" and "&" readable.
	enc.SetEscapeHTML(false)
	return enc
}
