//go:build !vm

package selinux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
		StateDir: t.TempDir(), Runner: r, Labeler: lb, SELinuxFS: fs,
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
