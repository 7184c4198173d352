package apparmor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

func TestNewNotSupported(t *testing.T) {
	_, err := New(context.Background(), Config{SecurityFS: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, enforcer.ErrNotSupported) {
		t.Errorf("New without AppArmor = %v, want ErrNotSupported", err)
	}
}

// A parser without the abi Ward pins would refuse every profile (or, with no abi pinned, drop
// network rules): the backend is refused so that the selection falls back.
func TestNewWithoutABI(t *testing.T) {
	_, err := New(context.Background(), Config{Dir: t.TempDir(), Runner: &fakeRunner{}, Host: &Host{}, SecurityFS: t.TempDir()})
	if !errors.Is(err, enforcer.ErrNotSupported) || !strings.Contains(err.Error(), "abi/3.0 is missing") {
		t.Errorf("New without abi/3.0 = %v, want ErrNotSupported naming the abi", err)
	}
}

func TestBackendApplyAndEvents(t *testing.T) {
	dir := t.TempDir()
	lines := make(chan string)
	r := &fakeRunner{}
	b, err := New(context.Background(), Config{
		Dir: dir, Runner: r, Host: &fixtureHost, SecurityFS: t.TempDir(),
		Records: func(ctx context.Context, emit func(string)) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case l := <-lines:
					emit(l)
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	hostSet, err := rules.Compile([]policy.Policy{hostPolicy("files", file(policy.MatchPath, "/etc/shadow", block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	webSet, err := rules.Compile([]policy.Policy{containerPolicy("shop", "net", netw("udp", block))}, web, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Apply(ctx, []*rules.Set{hostSet, webSet}); err != nil {
		t.Fatal(err)
	}
	assertOnlyFiles(t, dir, "ward-exempt", "ward-host", "ward-shop_web-7d9f_nginx")
	// By default the host profile attaches to every program, and the test binary (Ward here)
	// is exempt.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hostText, err := os.ReadFile(filepath.Join(dir, "ward-host"))
	if err != nil {
		t.Fatal(err)
	}
	exemptText, err := os.ReadFile(filepath.Join(dir, "ward-exempt"))
	if err != nil {
		t.Fatal(err)
	}
	// The attachment is every program but the container runtime this machine has and Ward's own
	// executables (this test and apparmor_parser), which the exempt profile attaches to.
	attach, err := attachAllExcept(append(runtimeExecutables(enforcer.HostRoot()), exemptExecutables()...))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hostText), "profile ward-host "+attach+" ") || !strings.Contains(string(exemptText), "profile ward-exempt ") ||
		!strings.Contains(string(exemptText), escapeLiteral(self[1:])) || !strings.Contains(string(exemptText), "flags=(unconfined)") {
		t.Errorf("host profile without the attachment, or no exemption of %s:\n%s\n%s", self, hostText, exemptText)
	}
	if webText, _ := os.ReadFile(filepath.Join(dir, "ward-shop_web-7d9f_nginx")); strings.Contains(string(webText), "/** flags") || strings.Contains(string(webText), "ward-exempt {") {
		t.Errorf("container profile attached:\n%s", webText)
	}
	if w := b.Warnings(); !slices.ContainsFunc(w, func(w enforcer.Warning) bool { return w.Workload == web.ID() }) {
		t.Error("no warnings kept for the udp Block (icmp shares its cell)")
	}
	// Unchanged sets are not loaded again.
	calls := len(r.calls)
	if err := b.Apply(ctx, []*rules.Set{hostSet, webSet}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != calls {
		t.Errorf("an unchanged Apply ran %q", r.calls[calls:])
	}

	lines <- `audit: type=1400 audit(1764343200.123:1): apparmor="DENIED" operation="open" class="file" profile="ward-host" name="/etc/shadow" pid=42 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	lines <- `audit: type=1400 audit(1764343200.123:2): apparmor="DENIED" operation="open" class="file" profile="someone-else" name="/etc/shadow" pid=43 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	lines <- `audit: type=1400 audit(1764343200.123:3): apparmor="DENIED" operation="create" class="net" profile="ward-shop_web-7d9f_nginx" pid=44 comm="dig" family="inet" sock_type="dgram" protocol=17 requested_mask="create" denied_mask="create"`
	for _, want := range []enforcer.Event{
		{Backend: enforcer.AppArmor, Workload: "host", PID: 42, Comm: "cat", Errno: int(syscall.EACCES),
			Access: rules.Access{Op: policy.OpFile, Path: "/etc/shadow"}},
		{Backend: enforcer.AppArmor, Workload: web.ID(), PID: 44, Comm: "dig", Errno: int(syscall.EACCES),
			Access: rules.Access{Op: policy.OpNetwork, Family: "inet", SockType: "dgram", Protocol: "udp"}},
	} {
		select {
		case ev := <-b.Events():
			ev.Detail = ""
			if ev.Backend != want.Backend || ev.Workload != want.Workload || ev.PID != want.PID || ev.Comm != want.Comm ||
				ev.Errno != want.Errno || ev.Access.Op != want.Access.Op || ev.Access.Path != want.Access.Path ||
				ev.Access.Protocol != want.Access.Protocol {
				t.Errorf("event = %+v, want %+v", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}

	// A process that is gone before its record is read: the alert's Data says why it names no
	// executable (pid_max is at most 4194304, so no process has this pid).
	lines <- `audit: type=1400 audit(1764343200.123:4): apparmor="DENIED" operation="open" class="file" profile="ward-host" name="/etc/shadow" pid=4194304 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	select {
	case ev := <-b.Events():
		if ev.Exe != "" || !strings.HasSuffix(ev.Detail, ` ward_exe="unknown: the process exited before Ward read the record"`) {
			t.Errorf("event of an exited process: Exe %q Detail %q", ev.Exe, ev.Detail)
		}
		if _, err := ParseRecord(ev.Detail); err != nil {
			t.Errorf("Detail no longer parses: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}

	// A set whose profile cannot be rendered keeps its previous profile; a workload that is gone
	// loses its own.
	broken := *hostSet
	broken.AppArmor = []rules.RawAppArmor{{PolicyName: "bad", Text: "}"}}
	err = b.Apply(ctx, []*rules.Set{&broken})
	if err == nil {
		t.Fatal("Apply of an unrenderable set succeeded")
	}
	assertOnlyFiles(t, dir, "ward-exempt", "ward-host")
	if got, _ := os.ReadFile(filepath.Join(dir, "ward-host")); len(got) == 0 {
		t.Error("previous host profile lost")
	}
}
