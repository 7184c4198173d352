//go:build vm

package apparmor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestMain makes the test binary the trigger program (package trigger) when it runs as a
// confined program.
func TestMain(m *testing.M) {
	trigger.Main()
	vmguest.Main(m)
}

// TestEnforceAndAttribute renders a profile from real policies, loads it with apparmor_parser
// through the Loader, runs this binary under it, and checks each access's errno and the kernel's
// audit record, attributed with rules.Decide to the policy and rule that decided.
func TestEnforceAndAttribute(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	for _, n := range []string{"denied", "readonly", "audited", "allowed", "fromsrc", "owned"} {
		if err := os.WriteFile(path(n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blocked := path("blocked-prog")
	if out, err := exec.Command("cp", self, blocked).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}

	set, err := rules.Compile([]policy.Policy{
		hostPolicy("files",
			file(policy.MatchPath, path("denied"), block),
			file(policy.MatchPath, path("readonly"), block, readOnly),
			file(policy.MatchPath, path("audited"), audit),
			file(policy.MatchPath, path("fromsrc"), block, from(self)),
		),
		hostPolicy("procs", proc(policy.MatchPath, blocked, block)),
		hostPolicy("net", netw("udp", block)),
		hostPolicy("caps", capa("chown", block)),
	}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	prof, warns, err := Render(set, Options{Host: ReadHost(DefaultDir)})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		t.Logf("warning: %s", w)
	}
	loader := NewLoader(t.TempDir(), nil)
	ctx := context.Background()
	if err := loader.Load(ctx, prof); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() {
		if err := loader.Remove(ctx, prof.Name); err != nil {
			t.Errorf("remove: %v", err)
		}
	})
	loaded, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{prof.Name + " (enforce)", prof.Name + "//" + childName(self) + " (enforce)"} {
		if !strings.Contains(string(loaded), want) {
			t.Fatalf("%q not loaded; loaded profiles:\n%s", want, loaded)
		}
	}

	kmsgStart := kmsgCursor(t)
	ops := []string{
		"label", "open:" + path("denied"), "open:" + path("readonly"), "write:" + path("readonly"),
		"open:" + path("audited"), "open:" + path("allowed"), "open:" + path("fromsrc"),
		"exec:" + blocked, "socket:udp", "chown:" + path("owned"), "child",
	}
	cmd := exec.Command("aa-exec", "-p", prof.Name, "--", self)
	cmd.Env = append(os.Environ(), trigger.Command(ops...),
		trigger.ChildEnv+"=label;open:"+path("fromsrc")+";open:"+path("denied")+";open:"+path("allowed"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aa-exec: %v\n%s", err, out)
	}
	eacces, eperm := int(syscall.EACCES), int(syscall.EPERM)
	want := []string{
		"label " + prof.Name + " (enforce)",
		fmt.Sprintf("open:%s errno %d", path("denied"), eacces),
		"open:" + path("readonly") + " ok",
		fmt.Sprintf("write:%s errno %d", path("readonly"), eacces),
		"open:" + path("audited") + " ok",
		"open:" + path("allowed") + " ok",
		"open:" + path("fromsrc") + " ok", // the fromSource rule is not this program's
		fmt.Sprintf("exec:%s errno %d", blocked, eacces),
		fmt.Sprintf("socket:udp errno %d", eacces),
		fmt.Sprintf("chown:%s errno %d", path("owned"), eperm),
		"child: label " + prof.Name + "//" + childName(self) + " (enforce)",
		fmt.Sprintf("child: open:%s errno %d", path("fromsrc"), eacces),
		fmt.Sprintf("child: open:%s errno %d", path("denied"), eacces),
		"child: open:" + path("allowed") + " ok",
		"child ok",
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Fatalf("helper under %s printed:\n%s\nwant:\n%s", prof.Name, got, strings.Join(want, "\n"))
	}

	// Every denial and audit must reach the kernel log and be attributed to its rule.
	type expect struct {
		apparmor, name, policy, rule, source string
		action                               policy.Action
		match                                func(Record) bool
	}
	byName := func(n string) func(Record) bool { return func(r Record) bool { return r.Name == n } }
	expects := []expect{
		{"DENIED", "denied", "files", "spec.file.matchPaths[0]", "", block, byName(path("denied"))},
		{"DENIED", "readonly write", "files", "spec.file.matchPaths[1]", "", block, byName(path("readonly"))},
		{"AUDIT", "audited", "files", "spec.file.matchPaths[2]", "", audit, byName(path("audited"))},
		{"DENIED", "fromsrc in child", "files", "spec.file.matchPaths[3]", self, block, byName(path("fromsrc"))},
		{"DENIED", "exec", "procs", "spec.process.matchPaths[0]", "", block, func(r Record) bool { return r.Operation == "exec" && r.Name == blocked }},
		{"DENIED", "udp", "net", "spec.network.matchProtocols[0]", "", block, func(r Record) bool { return r.Family == "inet" && r.SockType == "dgram" }},
		{"DENIED", "chown", "caps", "spec.capabilities.matchCapabilities[0]", "", block, func(r Record) bool { return r.CapName == "chown" }},
	}
	deadline := time.Now().Add(10 * time.Second)
	var recs []Record
	for {
		recs = recs[:0]
		for _, l := range kmsgSince(t, kmsgStart) {
			rec, err := ParseRecord(l)
			if errors.Is(err, ErrNotAppArmor) {
				continue
			}
			if err != nil {
				t.Errorf("parse %q: %v", l, err)
				continue
			}
			if strings.HasPrefix(rec.Profile, prof.Name) {
				recs = append(recs, rec)
			}
		}
		missing := 0
		for _, e := range expects {
			found := false
			for _, r := range recs {
				if r.Apparmor == e.apparmor && r.Source() == e.source && e.match(r) {
					found = true
				}
			}
			if !found {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, e := range expects {
		found := false
		for _, r := range recs {
			if r.Apparmor != e.apparmor || r.Source() != e.source || !e.match(r) {
				continue
			}
			found = true
			_, v := Attribute(set, r)
			if v.Action != e.action || v.Policy != e.policy || v.Rule != e.rule {
				t.Errorf("%s: record %+v attributed to %s %s %s, want %s %s %s", e.name, r, v.Action, v.Policy, v.Rule, e.action, e.policy, e.rule)
			}
			break
		}
		if !found {
			t.Errorf("%s: no apparmor=%q record in the kernel log", e.name, e.apparmor)
		}
	}
	// No record may be a denial that Decide would allow: that would be a silent difference.
	for _, r := range recs {
		if r.Apparmor != "DENIED" {
			continue
		}
		if a, v := Attribute(set, r); a.Op != "" && v.Action != policy.ActionBlock {
			t.Errorf("kernel denied %+v but rules.Decide says %s (%s %s)", r, v.Action, v.Policy, v.Rule)
		}
	}
	if t.Failed() {
		for _, r := range recs {
			t.Logf("record: %+v", r)
		}
	}
}

// kmsgCursor returns the sequence number of the next kernel log record.
func kmsgCursor(t *testing.T) uint64 {
	t.Helper()
	var last uint64
	for _, raw := range readKmsgRaw(t) {
		last = kmsgSeq(raw) + 1
	}
	return last
}

func kmsgSince(t *testing.T, seq uint64) []string {
	t.Helper()
	var out []string
	for _, raw := range readKmsgRaw(t) {
		if kmsgSeq(raw) >= seq {
			out = append(out, raw)
		}
	}
	return out
}

// kmsgSeq reads the sequence number of a /dev/kmsg record ("prio,seq,usec,flags;message").
func kmsgSeq(raw string) uint64 {
	var prio, seq uint64
	fmt.Sscanf(raw, "%d,%d,", &prio, &seq)
	return seq
}

func readKmsgRaw(t *testing.T) []string {
	t.Helper()
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/kmsg: %v", err)
	}
	defer syscall.Close(fd)
	var recs []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, io.EOF):
			return recs
		case errors.Is(err, syscall.EPIPE):
			continue
		case err != nil:
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		recs = append(recs, string(buf[:n]))
	}
}

// TestPostureBlockAllowList confines a Go program with a file allow-list under posture block: the
// only file rule permits reads everywhere, so every write falls to the posture. The program must
// still start and run (the baseline's signals), reads pass, a write gets EACCES, and the kernel's
// record is attributed to DefaultPosture.
func TestPostureBlockAllowList(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("readonly-host",
		file(policy.MatchDirectory, "/", allow, recursive, readOnly),
	)}, host, rules.Postures{File: block, Network: block, Capabilities: block})
	if err != nil {
		t.Fatal(err)
	}
	prof, _, err := Render(set, Options{Host: ReadHost(DefaultDir)})
	if err != nil {
		t.Fatal(err)
	}
	loader := NewLoader(t.TempDir(), nil)
	ctx := context.Background()
	if err := loader.Load(ctx, prof); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() {
		if err := loader.Remove(ctx, prof.Name); err != nil {
			t.Errorf("remove: %v", err)
		}
	})

	start := kmsgCursor(t)
	cmd := exec.Command("aa-exec", "-p", prof.Name, "--", self)
	cmd.Env = append(os.Environ(), trigger.Command("label", "open:"+target, "write:"+target))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aa-exec: %v\n%s", err, out)
	}
	want := strings.Join([]string{
		"label " + prof.Name + " (enforce)",
		"open:" + target + " ok",
		fmt.Sprintf("write:%s errno %d", target, int(syscall.EACCES)),
	}, "\n")
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("helper printed:\n%s\nwant:\n%s", got, want)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range kmsgSince(t, start) {
			rec, err := ParseRecord(l)
			if err != nil || rec.Apparmor != "DENIED" || rec.Name != target {
				continue
			}
			a, v := Attribute(set, rec)
			if !a.Write || v.Action != policy.ActionBlock || v.Policy != rules.DefaultPosturePolicy || !v.Posture {
				t.Fatalf("record %+v attributed as %+v: %+v, want a write blocked by DefaultPosture", rec, a, v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no DENIED record for %s in the kernel log:\n%s", target, strings.Join(kmsgSince(t, start), ""))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBackendEvents drives the Backend as the daemon does: Apply a set, let a confined process
// hit a Block, and receive the event from the kernel log through Events.
func TestBackendEvents(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("files", file(policy.MatchPath, secret, block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := New(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, []*rules.Set{set}); err != nil {
		t.Fatalf("%+v", err)
	}
	cmd := exec.Command("aa-exec", "-p", "ward-host", "--", self)
	cmd.Env = append(os.Environ(), trigger.Command("open:"+secret))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), fmt.Sprintf("errno %d", int(syscall.EACCES))) {
		t.Fatalf("aa-exec: %v\n%s", err, out)
	}
	select {
	case ev := <-b.Events():
		if ev.Workload != "host" || ev.Access.Path != secret || ev.Errno != int(syscall.EACCES) || ev.Backend != "apparmor" {
			t.Errorf("event = %+v", ev)
		}
		if v := set.Decide(ev.Access); v.Policy != "files" || v.Action != policy.ActionBlock {
			t.Errorf("event attributed to %+v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the kernel log")
	}
	// The parser that replaces the host profile, started by Ward after the profile attached to
	// every program, runs exempt: the host profile's attachment leaves it out. (Left to the
	// kernel's choice between the two attachments, the host profile won where the guest's crun
	// made its pattern spell out /usr/bin: Ward's own loads then ran confined by the rules they
	// load, and a parser removing a file of several profiles lost its rights at the first.)
	cursor := kmsgCursor(t)
	set2, err := rules.Compile([]policy.Policy{hostPolicy("files", file(policy.MatchPath, secret, block), file(policy.MatchPath, secret+"2", block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, []*rules.Set{set2}); err != nil {
		t.Fatalf("%+v", err)
	}
	var replaced []string
	for _, l := range kmsgSince(t, cursor) {
		if strings.Contains(l, `operation="profile_replace"`) && strings.Contains(l, `name="ward-host"`) {
			replaced = append(replaced, l)
		}
	}
	if len(replaced) == 0 || !strings.Contains(replaced[0], `profile="ward-exempt"`) {
		t.Errorf("the host profile's replacement, want it done by a parser in ward-exempt: %q", replaced)
	}
	if err := b.Apply(ctx, nil); err != nil {
		t.Errorf("apply nothing: %v", err)
	}
	if loaded, _ := os.ReadFile("/sys/kernel/security/apparmor/profiles"); strings.Contains(string(loaded), "ward-host ") {
		t.Errorf("ward-host still loaded after an empty Apply:\n%s", loaded)
	}
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the kmsg reader")
	}
}

// TestNetlinkSourceLosesNothing makes 40 denials in a burst, with the kernel's default printk
// rate limit in place, and requires a record for every one from the audit netlink group.
func TestNetlinkSourceLosesNothing(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	set, err := rules.Compile([]policy.Policy{hostPolicy("files", file(policy.MatchDirectory, dir+"/", block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for i := range 40 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, "open:"+p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan string, 1000)
	done := make(chan error, 1)
	go func() { done <- NetlinkSource()(ctx, func(l string) { lines <- l }) }()
	prof, _, err := Render(set, Options{Host: ReadHost(DefaultDir), Name: "ward-burst"})
	if err != nil {
		t.Fatal(err)
	}
	loader := NewLoader(t.TempDir(), nil)
	if err := loader.Load(ctx, prof); err != nil {
		t.Fatalf("%+v", err)
	}
	defer loader.Remove(context.Background(), prof.Name)
	cmd := exec.Command("aa-exec", "-p", prof.Name, "--", self)
	cmd.Env = append(os.Environ(), trigger.Command(ops...))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aa-exec: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < len(ops) {
		select {
		case l := <-lines:
			rec, err := ParseRecord(l)
			if err != nil {
				t.Errorf("parse %q: %v", l, err)
				continue
			}
			if rec.Type != TypeAVC {
				t.Errorf("record type %d, want %d", rec.Type, TypeAVC)
			}
			if rec.Profile == prof.Name && rec.Apparmor == "DENIED" && strings.HasPrefix(rec.Name, dir) {
				seen[rec.Name] = true
			}
		case <-deadline:
			t.Fatalf("got records for %d of %d denials", len(seen), len(ops))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("NetlinkSource: %v", err)
	}
}
