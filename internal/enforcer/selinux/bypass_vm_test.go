//go:build vm && selinux

package selinux

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/conformance/trigger"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
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

// TestBypasses: the techniques of the bypass suite that BPF-LSM and AppArmor face (another name,
// another mount, another root, a renamed ancestor, an older descriptor, the loader, a script's
// interpreter) are tried against SELinux. SELinux decides on the inode's label, so each is
// denied; the test proves it with the errno and an event that names the rule's file and policy.
func TestBypasses(t *testing.T) {
	b, log, _ := newBackend(t)
	dir, exe := helperDir(t)
	top := filepath.Join(dir, "top")
	blocked := filepath.Join(top, "blocked")
	secret := filepath.Join(dir, "secret")
	target := filepath.Join(blocked, "a", "b.txt")
	tool := filepath.Join(dir, "bin", "tool")
	if err := os.MkdirAll(filepath.Join(blocked, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, secret, target)
	copySelf(t, tool)
	// Other names and descriptors made before the policy.
	for _, l := range [][2]string{{secret, dir + "/hard"}, {target, dir + "/hard2"}, {tool, dir + "/bin/hardtool"}} {
		if err := os.Link(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, dir+"/sym"); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "tool.sh")
	if err := os.WriteFile(script, []byte("#!"+tool+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lb := XattrLabeler{}
	orig, err := lb.Get(target)
	if err != nil || orig == "" {
		t.Fatalf("label of %s: %q %v", target, orig, err)
	}
	pre, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()

	// An ext4 file system, whose dentries drop_caches evicts (tmpfs keeps its own), for a file
	// opened by its handle after its dentry left the cache.
	ext := filepath.Join(dir, "ext")
	extSecret := filepath.Join(ext, "blocked", "secret")
	vmguest.MountExt4(t, dir+"/e.img", ext)
	if err := os.MkdirAll(filepath.Dir(extSecret), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, extSecret)
	handle, err := trigger.Handle(extSecret)
	if err != nil {
		t.Fatal(err)
	}

	set, err := rules.Compile([]policy.Policy{hostPolicy("guard",
		file(policy.MatchPath, secret, block),
		file(policy.MatchDirectory, blocked+"/", block, recursive),
		file(policy.MatchDirectory, ext+"/blocked/", block, recursive),
		proc(policy.MatchPath, tool, block),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatal(err)
	}
	// Made after the policy: a bind mount and an overlay of the protected directory.
	bound, ovl := filepath.Join(dir, "bound"), filepath.Join(dir, "ovl")
	for _, d := range []string{bound, ovl + "/upper", ovl + "/work", ovl + "/merged"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount(blocked, bound, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(bound, syscall.MNT_DETACH) })
	if err := syscall.Mount("overlay", ovl+"/merged", "overlay", 0,
		"lowerdir="+blocked+",upperdir="+ovl+"/upper,workdir="+ovl+"/work"); err != nil {
		t.Fatalf("overlay mount: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(ovl+"/merged", syscall.MNT_DETACH) })

	eacces := int(syscall.EACCES)
	cases := []struct {
		name string
		ops  []string // the last one must be denied, the others succeed
		rule string   // the file the event must name
	}{
		{"control: open a blocked file", []string{"open:" + secret}, secret},
		{"control: open in a blocked directory", []string{"open:" + target}, target},
		{"control: exec a blocked program", []string{"exec:" + tool}, tool},
		{"symlink to a blocked file", []string{"open:" + dir + "/sym"}, secret},
		{"hard link made before the policy", []string{"open:" + dir + "/hard"}, secret},
		{"hard link into a blocked directory made before the policy", []string{"open:" + dir + "/hard2"}, target},
		{"hard link to a blocked program made before the policy", []string{"exec:" + dir + "/bin/hardtool"}, tool},
		{"relative path after chdir", []string{"openrel:" + blocked + "/a:b.txt"}, target},
		{"/proc/self/root", []string{"open:/proc/self/root" + secret}, secret},
		{"bind mount of a blocked directory", []string{"open:" + bound + "/a/b.txt"}, target},
		{"open from inside a chroot", []string{"chroot:" + blocked, "open:/a/b.txt"}, target},
		{"blocked program mapped executable, as ld.so does", []string{"mapexec:" + tool}, tool},
		{"blocked program as a script's #! interpreter", []string{"exec:" + script}, tool},
		{"overlay mount over a blocked directory", []string{"open:" + ovl + "/merged/a/b.txt"}, target},
		// Last: the test goes on with the tree where this leaves it.
		{"rename an ancestor of a blocked directory", []string{"rename:" + top + ":" + dir + "/top2", "open:" + dir + "/top2/blocked/a/b.txt"}, target},
	}
	check := func(name string, got []string, ops []string, rule string) {
		t.Helper()
		for i, op := range ops {
			want := op + " ok"
			if i == len(ops)-1 {
				want = fmt.Sprintf("%s errno %d", op, eacces)
			}
			if got[i] != want {
				t.Errorf("%s: helper printed %q, want %q", name, got[i], want)
				return
			}
		}
		evs, ok := log.wait(rule, 5*time.Second, func(ev enforcer.Event) bool { return ev.Errno == eacces })
		if !ok {
			t.Errorf("%s: no denial event naming %s: %+v\nkernel log: %s", name, rule, evs, avcLog())
			return
		}
		ev := evs[len(evs)-1]
		if v := set.Decide(ev.Access); v.Action != block || v.Policy != "guard" {
			t.Errorf("%s: event %+v attributed to %s %s", name, ev.Access, v.Action, v.Policy)
			return
		}
		t.Logf("%s: %s, event %s %s (%s)", name, got[len(got)-1], ev.Access.Op, ev.Access.Path, ev.Detail)
	}
	for _, c := range cases {
		log.reset()
		check(c.name, run(t, exe, 0, c.ops...), c.ops, c.rule)
	}
	// A file opened by its handle after its dentry left the cache has a dentry not linked below
	// its directory; SELinux decides on the inode's label all the same.
	log.reset()
	vmguest.DropCaches(t, 3)
	op := "openhandle:" + ext + ":" + handle
	check("open by handle (open_by_handle_at) after the dentry was evicted", run(t, exe, 0, op), []string{op}, extSecret)

	// A descriptor opened before the policy: SELinux checks reads through it again once the
	// file's label changed.
	log.reset()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), trigger.Command("readfd:3"))
	cmd.ExtraFiles = []*os.File{pre}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", exe, err, out)
	}
	check("read through a descriptor opened before the policy", []string{strings.TrimSpace(string(out))}, []string{"readfd:3"}, target)

	// The tree was renamed away from the rule's path: the next apply (the first retry, or the
	// resync) keeps its labels, and removing the policy finds the files where they are now.
	moved := dir + "/top2/blocked/a/b.txt"
	if err := b.Apply(context.Background(), []*rules.Set{set}); err != nil {
		t.Fatalf("apply after the rename: %v", err)
	}
	if got := run(t, exe, 0, "open:"+moved); got[0] != fmt.Sprintf("open:%s errno %d", moved, eacces) {
		t.Errorf("after an apply that followed the rename: %q", got[0])
	}
	if err := b.Apply(context.Background(), nil); err != nil {
		t.Fatalf("remove the policy: %v", err)
	}
	if got, _ := lb.Get(moved); got != orig {
		t.Errorf("after removing the policy the moved file is labelled %q, want %q", got, orig)
	}
	if got := run(t, exe, 0, "open:"+moved); got[0] != "open:"+moved+" ok" {
		t.Errorf("after removing the policy: %q", got[0])
	}
}
