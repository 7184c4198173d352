//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// helperRunFiles is helperRun with extra inherited descriptors (fd 3 on).
func helperRunFiles(t *testing.T, cgfd int, source string, op string, files ...*os.File) string {
	t.Helper()
	out, _ := helperRunFilesPID(t, cgfd, source, op, files...)
	return out
}

// helperRunFilesPID is helperRunFiles that also returns the helper's PID (fromHelper).
func helperRunFilesPID(t *testing.T, cgfd int, source string, op string, files ...*os.File) (string, uint32) {
	t.Helper()
	cmd := exec.Command(source)
	cmd.Env = []string{trigger.Command(op)}
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	return helperOutput(cmd)
}

func sockFile(t *testing.T, fd int, name string) *os.File {
	t.Helper()
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestNetworkExistingSockets: a protocol rule also covers sockets the
// workload did not create under the rule: created before it by another
// process and inherited, or received over a unix socket. Each use (send on a
// datagram socket, write on a connected stream, connect, accept) fails with
// EPERM and sends an event that names the hook and that rules.Decide
// attributes to the rule.
func TestNetworkExistingSockets(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	cg, cgfd := testCgroup(t, "ward-net")
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}

	// All sockets exist before the rule, made by the test binary, which is
	// outside the workload.
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	must(t, err)
	udpPassed, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	must(t, err)
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	must(t, err)
	must(t, unix.Bind(ln, lo))
	must(t, unix.Listen(ln, 8))
	sa, err := unix.Getsockname(ln)
	must(t, err)
	port := sa.(*unix.SockaddrInet4).Port
	conn, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	must(t, err)
	must(t, unix.Connect(conn, &unix.SockaddrInet4{Port: port, Addr: lo.Addr}))
	tcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	must(t, err)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, err)
	must(t, unix.Sendmsg(pair[0], []byte{0}, unix.UnixRights(udpPassed), nil, 0))
	files := []*os.File{
		sockFile(t, udp, "udp"), sockFile(t, conn, "conn"), sockFile(t, tcp, "tcp"),
		sockFile(t, ln, "listener"), sockFile(t, pair[1], "unix"),
	}
	sockFile(t, pair[0], "unix0")
	sockFile(t, udpPassed, "udp-passed")

	ps, _, err := policy.Parse("net.yaml", []byte(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: no-tcp-udp}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  network:
    matchProtocols:
    - protocol: tcp
      fromSource: [{path: /wt/bin/reader}]
    - protocol: udp
      fromSource: [{path: /wt/bin/reader}]
  action: Block
`))
	must(t, err)
	set, err := rules.Compile(ps, host, rules.DefaultPostures())
	must(t, err)
	set = inCgroup(set, cg)
	b := newBackend(t)
	must(t, b.Apply(context.Background(), []*rules.Set{set}))
	defer b.Apply(context.Background(), nil)

	for _, c := range []struct{ op, proto, hook string }{
		{"udpsend:3", "udp", "socket_sendmsg"},                       // inherited datagram socket
		{"send:4", "tcp", "socket_sendmsg"},                          // inherited connected stream (write(2))
		{fmt.Sprintf("connect:5:%d", port), "tcp", "socket_connect"}, // inherited, unconnected
		{"accept:6", "tcp", "socket_accept"},                         // inherited listener with a pending connection
		{"recvfd:7", "udp", "socket_sendmsg"},                        // received over a unix socket
	} {
		drain(b)
		got := helperRunFiles(t, cgfd, "/wt/bin/reader", c.op, files...)
		if want := c.op + " errno 1"; got != want {
			t.Errorf("%s: %q, want %q", c.op, got, want)
			continue
		}
		ev, ok := waitEvent(b, func(ev enforcer.Event) bool {
			return ev.Access.Op == policy.OpNetwork && strings.Contains(ev.Detail, "hook="+c.hook)
		})
		if !ok {
			t.Errorf("%s: no %s event", c.op, c.hook)
			continue
		}
		v := set.Decide(ev.Access)
		if ev.Errno != 1 || ev.Access.Protocol != c.proto || v.Policy != "no-tcp-udp" || v.Action != "Block" {
			t.Errorf("%s: event errno %d access %+v, verdict %+v", c.op, ev.Errno, ev.Access, v)
		}
	}

	// The denials came from the rule: without it the same sockets work.
	must(t, b.Apply(context.Background(), nil))
	for _, op := range []string{"udpsend:3", "send:4"} {
		if got := helperRunFiles(t, cgfd, "/wt/bin/reader", op, files...); got != op+" ok" {
			t.Errorf("without the rule, %s: %q", op, got)
		}
	}
}
