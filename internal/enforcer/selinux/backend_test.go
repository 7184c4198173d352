//go:build !vm

package selinux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

func TestNewNotSupported(t *testing.T) {
	_, err := New(context.Background(), Config{SELinuxFS: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, enforcer.ErrNotSupported) {
		t.Errorf("New without SELinux = %v, want ErrNotSupported", err)
	}
}

func TestBackendApplyAndEvents(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "secret", "public")
	fs := t.TempDir()
	if err := os.WriteFile(filepath.Join(fs, "enforce"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	r := &fakeRunner{}
	lb := &fakeLabeler{labels: map[string]string{}}
	b, err := New(context.Background(), Config{
		StateDir: t.TempDir(), Runner: r, Labeler: lb, SELinuxFS: fs, Options: testOpts,
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
	set, err := rules.Compile([]policy.Policy{hostPolicy("block-secret", file(policy.MatchPath, root+"/secret", block))},
		workload.Host("node1", nil), rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	container := &rules.Set{Workload: workload.Workload{Kind: workload.KindContainer, ContainerID: "c1"},
		Rules: []rules.Rule{{Rule: policy.Rule{Field: "spec.file.matchPaths[0]", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/etc/shadow", Action: block},
			PolicyName: "web", PolicyKind: policy.KindPolicy, Namespace: "shop"}}}
	if err := b.Apply(context.Background(), []*rules.Set{set, container}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 {
		t.Errorf("semodule calls %v, want one install", r.calls)
	}
	if got := lb.labels[root+"/secret"]; got != Label("ward_bbb_t") {
		t.Fatalf("secret labelled %q", got)
	}
	if _, ok := lb.labels[root+"/public"]; ok {
		t.Errorf("public was labelled")
	}
	var cw []enforcer.Warning
	for _, w := range b.Warnings() {
		if w.Workload == container.Workload.ID() {
			cw = append(cw, w)
		}
	}
	if len(cw) != 1 || cw[0].PolicyKey() != "KubeArmorPolicy/shop/web" || !strings.Contains(cw[0].Message, "host policies only") {
		t.Errorf("container warnings %v, want one saying host policies only", cw)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(root+"/secret", &st); err != nil {
		t.Fatal(err)
	}
	lines <- `audit: type=1400 audit(1764345600.123:77): avc:  granted  { read } for  pid=1 comm="x" name="secret" dev="tmpfs" ino=999999 scontext=system_u:system_r:kernel_t:s0 tcontext=system_u:object_r:etc_t:s0 tclass=file`
	lines <- `audit: type=1400 audit(1764345600.123:78): avc:  denied  { read } for  pid=1 comm="x" name="secret" dev="tmpfs" ino=` +
		strconv.FormatUint(st.Ino, 10) + ` scontext=system_u:system_r:kernel_t:s0 tcontext=system_u:object_r:ward_bbb_t:s0 tclass=file permissive=0`
	select {
	case ev := <-b.Events():
		if ev.Access.Path != root+"/secret" || ev.Errno != int(syscall.EACCES) || ev.Backend != enforcer.SELinux || ev.Workload != "host" {
			t.Errorf("event %+v", ev)
		}
		if v := set.Decide(ev.Access); v.Policy != "block-secret" || v.Action != block {
			t.Errorf("event attributed to %+v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}

	// Removing the policy restores the label; the module stays (it is the same static one).
	if err := b.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := lb.labels[root+"/secret"]; got != "system_u:object_r:orig_t:s0" {
		t.Errorf("secret not restored: %q", got)
	}
	if len(r.calls) != 1 {
		t.Errorf("semodule calls %v: without fromSource the module never changes, so it is installed once", r.calls)
	}
}

// TestEventsAfterFailedApply: an apply whose module cannot be installed leaves what is in force
// (a previous run's labels) enforcing, and its denials must still be reported (issue 17: after
// one failed apply no alert was emitted at all).
func TestEventsAfterFailedApply(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "secret", "tool")
	fs := t.TempDir()
	if err := os.WriteFile(filepath.Join(fs, "enforce"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	b, err := New(context.Background(), Config{
		StateDir: t.TempDir(), Runner: &fakeRunner{err: errors.New("exit status 1")}, Labeler: &fakeLabeler{labels: map[string]string{}},
		SELinuxFS: fs, Options: testOpts,
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
	set, err := rules.Compile([]policy.Policy{hostPolicy("block-secret", file(policy.MatchPath, root+"/secret", block, from(root+"/tool")))},
		workload.Host("node1", nil), rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err == nil {
		t.Fatal("Apply succeeded although semodule failed")
	}
	lines <- `audit: type=1400 audit(1764345600.123:78): avc:  denied  { read } for  pid=1 comm="x" path="` + root +
		`/secret" dev="tmpfs" ino=1 scontext=system_u:system_r:kernel_t:s0 tcontext=system_u:object_r:ward_bbb_t:s0 tclass=file permissive=0`
	select {
	case ev := <-b.Events():
		if ev.Access.Path != root+"/secret" || ev.Errno != int(syscall.EACCES) {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after a failed apply")
	}
}

// TestNewRefusesDomainThatCannotRelabel: the start-up check asks the kernel (selinuxfs access)
// whether Ward's domain may relabel; when it may not, the attempt fails so that the selection
// falls back (issue 17 item 6), and the reason names the domain.
func TestNewRefusesDomainThatCannotRelabel(t *testing.T) {
	fs := t.TempDir()
	if err := os.WriteFile(filepath.Join(fs, "enforce"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := func(relabel, load bool) Config {
		return Config{StateDir: t.TempDir(), Runner: &fakeRunner{}, Labeler: &fakeLabeler{labels: map[string]string{}},
			SELinuxFS: fs, Options: testOpts, Records: func(context.Context, func(string)) error { return nil },
			targetContext: "system_u:object_r:etc_t:s0", fsContext: "system_u:object_r:security_t:s0",
			allowed: func(_, _, _, class string, perms ...string) (bool, error) {
				switch {
				case class == "security":
					return load, nil
				case slices.Contains(perms, "relabelfrom"):
					return relabel, nil
				}
				return true, nil
			}}
	}
	_, err := New(context.Background(), cfg(false, true))
	if !errors.Is(err, enforcer.ErrNotSupported) || !strings.Contains(err.Error(), "kernel_t") || !strings.Contains(err.Error(), "may not relabel") {
		t.Fatalf("New = %v, want ErrNotSupported naming kernel_t and relabel", err)
	}
	// May relabel, may not load a policy, and Ward's module is not installed: refused too.
	_, err = New(context.Background(), cfg(true, false))
	if !errors.Is(err, enforcer.ErrNotSupported) || !strings.Contains(err.Error(), "may not load a policy") {
		t.Fatalf("New = %v, want ErrNotSupported saying it may not load a policy", err)
	}
	b, err := New(context.Background(), cfg(true, true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := b.Domain(); d.Type != "kernel_t" || d.Relabel != Yes || d.LoadPolicy != Yes {
		t.Errorf("domain %+v", d)
	}
	if l := b.Limitations(); len(l) == 0 || !strings.Contains(l[0], "kernel_t") {
		t.Errorf("limitations %v, want the first to name the domain", l)
	}
}
