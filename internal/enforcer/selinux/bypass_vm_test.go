//go:build vm && selinux

package selinux

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// SELinux's part of the bypass suite (issue 17). Each case performs the access in the VM and
// checks the errno and the attributed event.

// TestRecursiveBlockSurvivesReapply: once a recursive Block labels a directory, Ward's own walk
// of it at the next apply (the first retry, or the 5-minute resync) must still list it. Before,
// it could not, and that apply restored the original labels of everything inside, so the
// block stopped holding within minutes while the daemon logged "reconciled".
func TestRecursiveBlockSurvivesReapply(t *testing.T) {
	b, log, _ := newBackend(t)
	dir, exe := helperDir(t)
	tree := filepath.Join(dir, "tree")
	for _, p := range []string{tree + "/sub/deeper", tree + "/a", tree + "/sub/b", tree + "/sub/deeper/c"} {
		if strings.HasSuffix(p, "deeper") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := rules.Compile([]policy.Policy{
		hostPolicy("block-tree", file(policy.MatchDirectory, tree+"/", block, recursive)),
	}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	lb := XattrLabeler{}
	bbb := Label("ward_bbb_t")
	for round := 1; round <= 3; round++ {
		if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
			t.Fatalf("apply %d: %v", round, err)
		}
		for _, ws := range b.Warnings() {
			if strings.Contains(ws.Message, "cannot list") {
				t.Errorf("apply %d: %s", round, ws.Message)
			}
		}
		for _, p := range []string{tree, tree + "/a", tree + "/sub", tree + "/sub/b", tree + "/sub/deeper", tree + "/sub/deeper/c"} {
			if got, _ := lb.Get(p); got != bbb {
				t.Errorf("apply %d: %s is labelled %q, want %q", round, p, got, bbb)
			}
		}
		log.reset()
		target := tree + "/sub/deeper/c"
		got := run(t, exe, 0, "open:"+target, "open:"+tree+"/a")
		want := []string{fmt.Sprintf("open:%s errno %d", target, syscall.EACCES), fmt.Sprintf("open:%s errno %d", tree+"/a", syscall.EACCES)}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("apply %d: got %q, want %q", round, got[i], want[i])
			}
		}
		evs, ok := log.wait(target, 5*time.Second, func(ev enforcer.Event) bool { return ev.Errno == int(syscall.EACCES) })
		if !ok {
			t.Errorf("apply %d: no denial event for %s: %+v\nkernel log: %s", round, target, evs, avcLog())
			continue
		}
		if v := set.Decide(evs[0].Access); v.Action != block || v.Policy != "block-tree" {
			t.Errorf("apply %d: event %+v attributed to %s %s", round, evs[0].Access, v.Action, v.Policy)
		}
	}
}

// TestRelabelByOtherDomainDenied: a process in an unconfined domain other than Ward's must not
// relabel a protected file back to a readable type. Before, the module granted relabelfrom on
// Ward's types to every files_unconfined_type domain. The attacker here runs in a fromSource
// domain, which carries the base policy's unconfined attributes (files_unconfined_type
// included), as unconfined_t does: in the VM every other process shares Ward's kernel_t.
func TestRelabelByOtherDomainDenied(t *testing.T) {
	b, log, _ := newBackend(t)
	dir := t.TempDir()
	attacker := filepath.Join(dir, "bin", "attacker")
	copySelf(t, attacker)
	secret, decoy := filepath.Join(dir, "secret"), filepath.Join(dir, "decoy")
	for _, p := range []string{secret, decoy} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lb := XattrLabeler{}
	orig, err := lb.Get(secret)
	if err != nil || orig == "" {
		t.Fatalf("label of %s: %q %v", secret, orig, err)
	}
	set, err := rules.Compile([]policy.Policy{
		hostPolicy("block-secret", file(policy.MatchPath, secret, block)),
		// Gives the attacker a domain of its own (fromSource), unconfined except for Ward's types.
		hostPolicy("attacker-domain", file(policy.MatchPath, decoy, block, from(attacker))),
	}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	got := run(t, attacker, 0, "label", "relabel:"+secret+":"+orig, "open:"+secret)
	if !strings.Contains(got[0], "ward_d_") {
		t.Fatalf("the attacker runs as %q, not in its Ward domain", got[0])
	}
	want := []string{fmt.Sprintf("relabel:%s:%s errno %d", secret, orig, syscall.EACCES), fmt.Sprintf("open:%s errno %d", secret, syscall.EACCES)}
	for i := range want {
		if got[i+1] != want[i] {
			t.Errorf("got %q, want %q", got[i+1], want[i])
		}
	}
	if cur, _ := lb.Get(secret); cur != Label("ward_bbb_t") {
		t.Errorf("secret is labelled %q after the attempt", cur)
	}
	evs, ok := log.wait(secret, 5*time.Second, func(ev enforcer.Event) bool {
		return ev.Errno == int(syscall.EACCES) && ev.Access.Write && strings.Contains(ev.Detail, "relabelfrom")
	})
	if !ok {
		t.Fatalf("no denial event for the relabel: %+v\nkernel log: %s", evs, avcLog())
	}
	for _, ev := range evs {
		if !strings.Contains(ev.Detail, "relabelfrom") {
			continue
		}
		if v := set.Decide(ev.Access); v.Action != block || v.Policy != "block-secret" || ev.Access.Source != attacker {
			t.Errorf("relabel event %+v attributed to %s %s", ev.Access, v.Action, v.Policy)
		}
	}
}
