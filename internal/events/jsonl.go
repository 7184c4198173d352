package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/wardsec/ward/api/feeder"
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
// tags every field `json:"<proto name>,omitempty"`.
//
// Writes are synchronous and unbuffered, one write per line: the sink never drops, a tailing
// reader sees each line at once, and a failed write does not poison the next one.
type JSONLines struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	enc    *json.Encoder
	w      io.Writer
	closer io.Closer
}

// NewJSONLines writes to w.
func NewJSONLines(w io.Writer) *JSONLines {
	j := &JSONLines{w: w}
	j.enc = json.NewEncoder(&j.buf)
	// Paths and arguments are not HTML: keep "<", ">" and "&" readable.
	j.enc.SetEscapeHTML(false)
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

// WriteAlert writes one alert line.
func (j *JSONLines) WriteAlert(a *feeder.Alert) error { return j.write(a) }

// WriteLog writes one log line.
func (j *JSONLines) WriteLog(l *feeder.Log) error { return j.write(l) }

// WriteMessage writes one daemon message line.
func (j *JSONLines) WriteMessage(m *feeder.Message) error { return j.write(m) }

func (j *JSONLines) write(v any) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if _, err := j.w.Write(j.buf.Bytes()); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// Close closes the file (never stdout).
func (j *JSONLines) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closer == nil {
		return nil
	}
	return j.closer.Close()
}

// MarshalLine encodes one event as JSONLines would, without the newline; `ward logs --json` uses
// it so that the client prints what the sink writes.
func MarshalLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
