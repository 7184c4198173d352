//go:build vm

package bpflsm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
	"github.com/wardsec/ward/internal/workload"
)

func blockSet(t *testing.T, name string, paths ...string) *rules.Set {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: %s}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
  file:
    matchPaths:
`, name)
	for _, p := range paths {
		fmt.Fprintf(&sb, "    - path: %s\n", p)
	}
	sb.WriteString("  action: Block\n")
	ps, _, err := policy.Parse(name+".yaml", []byte(sb.String()))
	must(t, err)
	set, err := rules.Compile(ps, host, rules.DefaultPostures())
	must(t, err)
	return set
}

func copySelf(t *testing.T, to string) {
	t.Helper()
	self, err := os.Executable()
	must(t, err)
	must(t, os.MkdirAll("/wt/bin", 0o777))
	if out, err := exec.Command("cp", self, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestWorkloadKeys checks that the host set binds every task outside a
// registered container cgroup (here the test binary itself), and that a
// container's own set, not the host's, binds the tasks of its cgroup.
func TestWorkloadKeys(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/host-secret", 0)
	mkfile(t, "/wt/ctr-secret", 0)
	cg, cgfd := testCgroup(t, "ward-keys")
	b := newBackend(t)
	hostSet := blockSet(t, "host-guard", "/wt/host-secret")
	ctrSet := inCgroup(blockSet(t, "ctr-guard", "/wt/ctr-secret"), cg)
	must(t, b.Apply(context.Background(), []*rules.Set{hostSet, ctrSet}))
	defer b.Apply(context.Background(), nil)

	_, err := os.ReadFile("/wt/host-secret")
	if !errorsIs(err, syscall.EPERM) {
		t.Errorf("host task reading a host-blocked file: %v, want EPERM", err)
	}
	if _, err := os.ReadFile("/wt/ctr-secret"); err != nil {
		t.Errorf("host task reading a container-blocked file: %v", err)
	}
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/ctr-secret"); got != "open:/wt/ctr-secret errno 1" {
		t.Errorf("container task, container-blocked file: %q", got)
	}
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/host-secret"); got != "open:/wt/host-secret ok" {
		t.Errorf("container task, host-blocked file: %q", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/ctr-secret" })
	if !ok || ev.Workload != "conformance" {
		t.Errorf("container event: %v %+v", ok, ev)
	}

	// Removing the host set releases the host, not the container.
	must(t, b.Apply(context.Background(), []*rules.Set{ctrSet}))
	if _, err := os.ReadFile("/wt/host-secret"); err != nil {
		t.Errorf("host set removed, read: %v", err)
	}
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/ctr-secret"); got != "open:/wt/ctr-secret errno 1" {
		t.Errorf("container task after host removal: %q", got)
	}
}

// TestChildCgroupKeepsWorkload: a container's process that moves itself into
// a cgroup it makes below the container's (one level, then two) keeps the
// container's rules: the open is denied with EPERM and the event names the
// container. A sibling cgroup that is no container's gets the host's rules.
func TestChildCgroupKeepsWorkload(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/ctr-secret", 0)
	cg, cgfd := testCgroup(t, "ward-nest")
	_, otherfd := testCgroup(t, "ward-nest-other")
	b := newBackend(t)
	ctrSet := inCgroup(blockSet(t, "ctr-guard", "/wt/ctr-secret"), cg)
	must(t, b.Apply(context.Background(), []*rules.Set{ctrSet}))
	for _, child := range []string{"sub", "sub/deeper"} {
		drain(b)
		got := helperRun(t, cgfd, "/wt/bin/reader", 0, "cgroup:"+child+";open:/wt/ctr-secret")
		if got != "open:/wt/ctr-secret errno 1" {
			t.Errorf("container task in its child cgroup %s: %q, want EPERM", child, got)
			continue
		}
		ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/ctr-secret" })
		if !ok || ev.Workload != ctrSet.Workload.ID() || ev.Errno != 1 {
			t.Errorf("event from the child cgroup %s: %v %+v, want workload %s", child, ok, ev, ctrSet.Workload.ID())
		}
	}
	if got := helperRun(t, otherfd, "/wt/bin/reader", 0, "cgroup:sub;open:/wt/ctr-secret"); got != "open:/wt/ctr-secret ok" {
		t.Errorf("task below a cgroup that is no container's: %q, want the host's rules (none)", got)
	}
}

func errorsIs(err error, errno syscall.Errno) bool {
	var e syscall.Errno
	for err != nil {
		if x, ok := err.(syscall.Errno); ok {
			e = x
			break
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return e == errno
}

// TestUpdatesKeepBlocking re-applies changing sets that all block one file
// while a process of the workload opens it in a loop: no open may succeed
// during any swap.
func TestUpdatesKeepBlocking(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/secret.txt", 0)
	cg, cgfd := testCgroup(t, "ward-updates")
	b := newBackend(t)
	must(t, b.Apply(context.Background(), []*rules.Set{inCgroup(blockSet(t, "v0", "/wt/secret.txt"), cg)}))
	defer b.Apply(context.Background(), nil)

	var wg sync.WaitGroup
	var out string
	wg.Add(1)
	go func() {
		defer wg.Done()
		out = helperRun(t, cgfd, "/wt/bin/reader", 0, "hammer:3000:/wt/secret.txt")
	}()
	for i := 1; i <= 40; i++ {
		paths := []string{"/wt/secret.txt"}
		for j := 0; j < i*10; j++ {
			paths = append(paths, fmt.Sprintf("/wt/other/%d/%d", i, j))
		}
		must(t, b.Apply(context.Background(), []*rules.Set{inCgroup(blockSet(t, fmt.Sprintf("v%d", i), paths...), cg)}))
	}
	wg.Wait()
	if out != "0" {
		t.Errorf("%s opens of the blocked file succeeded during updates", out)
	}
}

// TestSmallUpdatesKeepBlocking: a workload applied again and again with its Block rule in
// every version, while new processes of it open the blocked file, one open each: no open
// succeeds. A first open reads the workload's generation once and then looks its keys up;
// while the old generation's keys were deleted right after the switch, an open that read it
// just before found its keys gone and opened the file (2 and 3 of 60 opens in two runs); they
// are now deleted after a grace period (graceWaiter).
func TestSmallUpdatesKeepBlocking(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/su/blocked", 0)
	cg, cgfd := testCgroup(t, "ward-small-updates")
	b := newBackend(t)
	sets := []*rules.Set{
		inCgroup(blockSet(t, "guard", "/wt/su/blocked"), cg),
		inCgroup(blockSet(t, "guard", "/wt/su/blocked", "/wt/su/other"), cg),
	}
	must(t, b.Apply(t.Context(), sets[:1]))
	defer b.Apply(context.Background(), nil)
	waits := b.grace.count()

	// Applies until the opens are done.
	const opens = 60
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range opens {
			if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/su/blocked"); got != "open:/wt/su/blocked errno 1" {
				t.Errorf("open %d during updates: %q", i, got)
			}
		}
	}()
	applies := 0
	for running := true; running; applies++ {
		select {
		case <-done:
			running = false
		default:
		}
		if err := b.Apply(t.Context(), sets[(applies+1)%2:][:1]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d opens during %d applies, %d grace periods", opens, applies, b.grace.count()-waits)
	if applies < opens || b.grace.count()-waits < uint64(applies) {
		t.Errorf("%d applies, %d grace periods: fewer applies than opens, or an apply without a wait", applies, b.grace.count()-waits)
	}
}

// TestAuditedMode: a workload in audited mode is not denied; the event has
// errno 0 and Decide names it "Audit (Block)".
func TestAuditedMode(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/secret.txt", 0)
	cg, cgfd := testCgroup(t, "ward-audited")
	b := newBackend(t)
	set := inCgroup(blockSet(t, "guard", "/wt/secret.txt"), cg)
	set.Workload.Mode = workload.ModeAudited
	must(t, b.Apply(context.Background(), []*rules.Set{set}))
	defer b.Apply(context.Background(), nil)
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/secret.txt"); got != "open:/wt/secret.txt ok" {
		t.Errorf("audited workload: %q", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/secret.txt" })
	if !ok {
		t.Fatal("no event")
	}
	if v := set.Decide(ev.Access); ev.Errno != 0 || v.DisplayAction != "Audit (Block)" || v.Policy != "guard" {
		t.Errorf("event errno %d, verdict %+v", ev.Errno, v)
	}
}

// TestContainerAwaitingCgroup: a container registered before the runtime created it (NRI's
// CreateContainer) has no cgroup yet. ApplyWorkload and Apply accept its set with nothing to
// load, and the other workloads' rules are enforced as usual; refusing it failed every pod's
// creation on a real node.
func TestContainerAwaitingCgroup(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	mkfile(t, "/wt/host-secret", 0)
	b := newBackend(t)
	pending := blockSet(t, "pending-guard", "/wt/ctr-secret")
	pending.Workload = workload.Workload{Kind: workload.KindContainer, ContainerID: "created-not-started"}
	if err := b.ApplyWorkload(context.Background(), pending); err != nil {
		t.Fatalf("ApplyWorkload of a container without a cgroup: %v, want nothing to load", err)
	}
	hostSet := blockSet(t, "host-guard", "/wt/host-secret")
	if err := b.Apply(context.Background(), []*rules.Set{hostSet, pending}); err != nil {
		t.Fatalf("Apply with a container without a cgroup: %v", err)
	}
	defer b.Apply(context.Background(), nil)
	if _, err := os.ReadFile("/wt/host-secret"); !errorsIs(err, syscall.EPERM) {
		t.Errorf("host-blocked file beside a pending container: %v, want EPERM", err)
	}
}
