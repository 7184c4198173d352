// Package hookapi is the protocol between `ward oci-hook`, which an OCI runtime runs as a
// container is created and after it stops, and the daemon, which registers the container as a
// workload. It is one JSON request and one JSON response per connection on a unix socket: the
// hook is short-lived, and a connection per call keeps a half-read stream from confusing the
// next request.
//
// The socket must be reachable by root only (the daemon creates it in its 0700 state
// directory): whoever can register a workload chooses which rules a cgroup gets.
package hookapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wardsec/ward/internal/workload"
)

// SocketName is the socket's file name in the daemon's state directory.
const SocketName = "ward.sock"

// Operations.
const (
	OpRegister   = "register"
	OpUnregister = "unregister"
	// OpPrepare registers a container that the runtime has not created yet, so it has no kernel
	// identity: the NRI plugin sends it from CreateContainer, so that rules that need none (the
	// AppArmor profile the runtime attaches at create) are loaded in time. OpRegister with the
	// kernel identity follows before the container starts. The OCI hook never sends it.
	OpPrepare = "prepare"
)

// Request is what the hook asks.
type Request struct {
	Op string `json:"op"`
	// Workload is the container to register (OpRegister), with its kernel identity.
	Workload workload.Workload `json:"workload,omitzero"`
	// Pid is the container's init process, kept so that a restarted daemon can check the
	// container still runs before restoring its registration.
	Pid int `json:"pid,omitempty"`
	// ID is the container to forget (OpUnregister).
	ID string `json:"id,omitempty"`
}

// Response is the daemon's answer. For OpRegister, OK means the workload's rules are in force
// in the kernel (the backend applied them), not only that the request arrived.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Policies and Rules describe the rule set in force for the workload.
	Policies []string `json:"policies,omitempty"`
	Rules    int      `json:"rules"`
}

// ErrUnreachable wraps errors of connecting to the daemon: no socket, or nobody listening.
// The hook's --on-unreachable decides what it means.
var ErrUnreachable = errors.New("daemon unreachable")

// Call sends one request and waits for the answer until ctx ends.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Cancellation without a deadline still has to unblock the read.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Response{}, fmt.Errorf("send %s: %w", req.Op, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			// The daemon answers only after the rules are applied: a slow or failing backend.
			return Response{}, fmt.Errorf("no answer to %s in time: %w", req.Op, err)
		}
		return Response{}, fmt.Errorf("read answer to %s: %w", req.Op, err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("daemon refused %s: %s", req.Op, resp.Error)
	}
	return resp, nil
}

// Handler answers one request. ctx ends when the server stops.
type Handler func(ctx context.Context, req Request) Response

// Serve answers requests on l until ctx ends, then closes l and waits for the calls in progress.
func Serve(ctx context.Context, l net.Listener, h Handler, log *slog.Logger) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil {
				log.Error("hook socket", "error", err)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			// A client that connects and sends nothing must not hold a goroutine forever.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			var req Request
			if err := json.NewDecoder(conn).Decode(&req); err != nil {
				log.Warn("hook request", "error", err)
				return
			}
			conn.SetReadDeadline(time.Time{})
			resp := h(ctx, req)
			if err := json.NewEncoder(conn).Encode(resp); err != nil {
				// The hook gave up (its time-out) or was killed: the runtime fails the start.
				log.Warn("hook response", "op", req.Op, "error", err)
			}
		}()
	}
}
