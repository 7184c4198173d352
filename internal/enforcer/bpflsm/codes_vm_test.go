//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/conformance"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestNamedCodes: the capability and network hooks return before the workload lookup for a
// code that no workload's rule names (ward_config). The config names exactly the codes of the
// rules while no workload allow-lists the operation, and every code while one does, whose
// posture then decides codes no rule names: a capability and a socket of a workload with an
// allow-list are denied with EPERM and a posture event, while the same accesses stay permitted
// in the workload whose Block rules name other codes.
func TestNamedCodes(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	conformance.MakeFile(t, conformance.ChownTarget, 0)
	b := newBackend(t)
	cgA, fdA := testCgroup(t, "ward-codes-a")
	cgB, fdB := testCgroup(t, "ward-codes-b")
	block := hostPolicyInCgroup(t, "codes-block", "  capabilities:\n    matchCapabilities:\n    - capability: net_raw\n"+
		"  network:\n    matchProtocols:\n    - protocol: icmp\n", cgA)
	postures := rules.Postures{File: policy.ActionAudit, Network: policy.ActionBlock, Capabilities: policy.ActionBlock}
	allow := hostPolicyWith(t, "codes-allow", "  capabilities:\n    matchCapabilities:\n    - capability: net_raw\n"+
		"  network:\n    matchProtocols:\n    - protocol: tcp\n", policy.ActionAllow, postures, cgB)
	block.Workload.ContainerID, allow.Workload.ContainerID = "codes-a", "codes-b" // two workloads
	ctx := context.Background()
	defer b.Apply(ctx, nil)

	config := func() wardConfig {
		var c wardConfig
		must(t, b.objs.WardConfig.Lookup(uint32(0), &c))
		return c
	}
	permitted := func(fd int, op string) {
		t.Helper()
		drain(b)
		if got, want := helperRun(t, fd, "/wt/bin/reader", 0, op), op+" ok"; got != want {
			t.Errorf("helper printed %q, want %q", got, want)
		}
	}
	// denied expects EPERM and an event the allow-list's posture decides.
	denied := func(fd int, op string) {
		t.Helper()
		drain(b)
		got, pid := helperRunPID(t, fd, "/wt/bin/reader", 0, op)
		if want := fmt.Sprintf("%s errno %d", op, int(syscall.EPERM)); got != want {
			t.Errorf("helper printed %q, want %q", got, want)
		}
		ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return fromHelper(ev, pid) && ev.Errno == int(syscall.EPERM) })
		if !ok {
			t.Errorf("%s: no EPERM event", op)
			return
		}
		if got := allow.Decide(ev.Access); got.Policy != "DefaultPosture" || got.Action != policy.ActionBlock {
			t.Errorf("%s: event %+v (%s) decided %+v, want a Block by DefaultPosture", op, ev.Access, ev.Detail, got)
		}
	}
	chown, tcp, udp := "chown:"+conformance.ChownTarget, "socket:tcp", "socket:udp"

	// Block rules only: the config names their codes and nothing else.
	must(t, b.Apply(ctx, []*rules.Set{block}))
	c := config()
	if c.Caps != 1<<unix.CAP_NET_RAW {
		t.Errorf("config caps %#x, want only net_raw %#x", c.Caps, uint64(1)<<unix.CAP_NET_RAW)
	}
	if c.Protos != [4]uint64{1 << unix.IPPROTO_ICMP} || c.Families != 0 {
		t.Errorf("config protocols %#x, families %#x: want only icmp", c.Protos, c.Families)
	}
	if c.Types != 0 {
		t.Errorf("config socket types %#x, want none", c.Types)
	}
	permitted(fdA, chown)
	permitted(fdA, tcp)

	// An allow-list in another workload: every code is named, so that its posture decides them.
	must(t, b.Apply(ctx, []*rules.Set{block, allow}))
	c = config()
	if c.Caps != ^uint64(0) || c.Families != ^uint64(0) || c.Types != ^uint32(0) {
		t.Errorf("config with allow-lists: caps %#x families %#x types %#x, want every bit", c.Caps, c.Families, c.Types)
	}
	denied(fdB, chown)
	denied(fdB, udp)
	permitted(fdB, tcp)
	permitted(fdA, chown)
	permitted(fdA, tcp)
}
