//go:build vm

package apparmor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestHostAttachmentLeavesRuntimeUnconfined proves in the kernel what the host profile's
// attachment does to the node's container runtime: a program it leaves out (AttachExcept) runs
// truly unconfined when an unconfined process starts it, so it can still signal a container
// whose profile receives signals only from peer=unconfined (containerd's and docker's default
// profiles), while the same program elsewhere enters the host profile and is refused. On a real
// node, runc in any profile of Ward's could no longer stop such containers.
func TestHostAttachmentLeavesRuntimeUnconfined(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	ctx := context.Background()
	dir := t.TempDir()
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	runtimeKill, runtimeCat := filepath.Join(dir, "rt", "kill"), filepath.Join(dir, "rt", "cat")
	otherKill, otherCat := filepath.Join(dir, "other", "kill"), filepath.Join(dir, "other", "cat")
	copyProgram(t, kill, runtimeKill)
	copyProgram(t, kill, otherKill)
	copyProgram(t, cat, runtimeCat)
	copyProgram(t, cat, otherCat)

	loader := NewLoader(t.TempDir(), nil)
	remove := func(name string) {
		if err := loader.Remove(ctx, name); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	}
	// A container's default profile, as containerd writes it: signals only from unconfined.
	container := Profile{Name: "wardtest-runtime-default", Text: []byte(fmt.Sprintf(HeaderPrefix+`wardtest-runtime-default
abi <%s>,
profile wardtest-runtime-default flags=(attach_disconnected) {
  /** rwlkmix,
  signal (receive) peer=unconfined,
}
`, ABI))}
	if err := loader.Load(ctx, container); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { remove(container.Name) })
	sleeper := exec.Command("aa-exec", "-p", container.Name, "--", "sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	pid := strconv.Itoa(sleeper.Process.Pid)

	exempt := exemptParser(t)
	set := &rules.Set{Workload: host}
	hostProf, _, err := Render(set, Options{Host: ReadHost(DefaultDir), AttachAll: true, AttachExcept: []string{runtimeKill, runtimeCat}})
	if err != nil {
		t.Fatal(err)
	}
	if err := loader.Load(ctx, exempt); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() { remove(exempt.Name) }) // after the host profile (cleanups run last first)
	if err := loader.Load(ctx, hostProf); err != nil {
		t.Fatalf("%+v\n%s", err, hostProf.Text)
	}
	t.Cleanup(func() { remove(hostProf.Name) })

	run := func(prog string, args ...string) (string, error) {
		out, err := exec.Command(prog, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(runtimeCat, "/proc/self/attr/current"); err != nil || strings.TrimRight(out, "\x00") != "unconfined" {
		t.Errorf("a left-out program's label: %q (%v), want unconfined", out, err)
	}
	if out, err := run(otherCat, "/proc/self/attr/current"); err != nil || !strings.HasPrefix(out, hostProf.Name+" ") {
		t.Errorf("the same program elsewhere: label %q (%v), want %s", out, err, hostProf.Name)
	}
	if out, err := run(otherKill, "-CONT", pid); err == nil || !strings.Contains(out, "ermission denied") {
		t.Errorf("kill -CONT of the container's process from the host profile: %v %q, want permission denied (the check cannot fail otherwise)", err, out)
	}
	if out, err := run(runtimeKill, "-CONT", pid); err != nil {
		t.Errorf("kill -CONT of the container's process from the left-out runtime: %v %q, want success", err, out)
	}
}

// TestHostSourceStartedOutsideProfile checks a fromSource program that a process outside Ward's
// profiles starts (systemd starting a service, a shell that predates Ward): it enters its child's
// entry profile, named by its path (the kernel gives an exec such a profile before any
// attachment), so the rule limited to it denies, and the denial's event names it and its policy.
// An apply that drops the rule unloads the entry, and the program reads the file again. What stays open is a
// start in the profile itself (change_onexec, as a runtime starts a container's entrypoint):
// it is named by Limitations, and when this test fails because the rule applies there, the
// limitation is gone: remove it.
func TestHostSourceStartedOutsideProfile(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	// The program sits beside the runtime's (the guest has crun in /usr/bin), whose exclusion
	// from the host profile's attachment makes that pattern compete for paths under /usr/bin.
	src := "/usr/bin/ward-test/cat"
	copyProgram(t, cat, src)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(src)) })
	// A second fromSource program that runs on, reading the files it is sent.
	secret, secret2, reader := readerFixture(t, dir)
	compile := func(pols ...policy.Policy) *rules.Set {
		set, err := rules.Compile(pols, host, rules.Postures{})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := compile(hostPolicy("src", file(policy.MatchPath, secret, block, from(src)), file(policy.MatchPath, secret, block, from(reader))))
	// The default host attachment: every program an unconfined process starts enters a profile.
	b := appliedBackend(t, set)
	const hostName = "ward-host"
	entry := src // named by its path (entries)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		return strings.TrimRight(strings.TrimSpace(string(out)), "\x00"), err
	}
	if out, err := run("aa-exec", "-p", hostName, "--", "sh", "-c", src+" "+secret); err == nil || !strings.Contains(out, "ermission denied") {
		t.Errorf("%s started from inside %s: read %s: %v %q, want permission denied (its child's rule)", src, hostName, secret, err, out)
	}
	// This test's process predates the profiles: it is what systemd or an old shell is.
	label, err := run(src, "/proc/self/attr/current")
	if err != nil || label != entry+" (enforce)" {
		t.Errorf("%s started unconfined: label %q (%v), want %s (enforce), its entry profile", src, label, err, entry)
	}
	for len(b.Events()) > 0 {
		<-b.Events()
	}
	if out, err := run(src, secret); err == nil || !strings.Contains(out, "ermission denied") {
		t.Errorf("%s started unconfined: read %s: %v %q, want permission denied (the rule limited to it)", src, secret, err, out)
	}
	// The entry's record (the child's, from the start inside the host profile above, may come
	// first).
	evs, ok := awaitEvent(b, 10*time.Second, func(ev enforcer.Event) bool {
		return ev.Access.Path == secret && strings.Contains(ev.Detail, `profile="`+src+`"`)
	})
	if !ok {
		t.Errorf("no event for %s read by %s started unconfined; events: %+v", secret, src, evs)
	} else {
		ev := evs[len(evs)-1]
		rec := mustRecord(t, ev.Detail)
		if rec.Profile != src {
			t.Errorf("record's profile %q, want the entry named by its path %s", rec.Profile, src)
		}
		rec.Profile = EntryName(hostName, src) // as the Backend reads its own entry's label
		_, v := Attribute(set, rec)
		if ev.Errno != int(syscall.EACCES) || ev.Workload != set.Workload.ID() || ev.Access.Source != src || v.Action != block || v.Policy != "src" {
			t.Errorf("event %s errno %d source %q, attributed to %s %s, want the host's EACCES by %s, a Block of policy src: %s",
				ev.Workload, ev.Errno, ev.Access.Source, v.Action, v.Policy, src, ev.Detail)
		}
		t.Logf("event: %s %s by %s (%s %s): %s", ev.Access.Op, ev.Access.Path, ev.Access.Source, v.Policy, v.Rule, ev.Detail)
	}
	// A runtime starts a container's entrypoint the way aa-exec starts src here: in the profile.
	if out, err := run("aa-exec", "-p", hostName, "--", src, secret); err != nil {
		t.Errorf("%s started by aa-exec in %s: read %s: %v %q; the rule limited to it applies: remove the limitation", src, hostName, secret, err, out)
	}
	if !slices.ContainsFunc((&Backend{}).Limitations(), func(l string) bool { return strings.Contains(l, "started in the workload's profile") }) {
		t.Error("no limitation names a fromSource program started in the workload's profile")
	}

	// Two readers that run on: one started from outside (its entry), one from inside the host
	// profile (its child).
	fromOutside := startReader(t, reader)
	fromInside := startReader(t, "aa-exec", "-p", hostName, "--", "sh", "-c", "exec "+reader)
	readerEntry, readerChild := reader, hostName+"//"+childName(reader)
	readers := []struct {
		r     *lineReader
		label string
	}{{fromOutside, readerEntry}, {fromInside, readerChild}}
	for _, c := range readers {
		if got := c.r.label(); got != c.label {
			t.Errorf("reader: label %q, want %s", got, c.label)
		}
		if got := c.r.ask(secret); got != "denied" {
			t.Errorf("reader in %s: %s %s, want denied", c.label, got, secret)
		}
	}

	// Without the rules, a new apply retires the children and entries: the processes in them
	// keep their labels and get the rules their programs have now (a new Block of secret2 for
	// every program, and no more Block of secret). New starts of src go to the host profile (its
	// entry, unused, is unloaded); the reader's retired entry, named by its path, would still take
	// a new start of it, with the same rules.
	set2 := compile(hostPolicy("other", file(policy.MatchPath, secret2, block)))
	if err := b.Apply(ctx, []*rules.Set{set2}); err != nil {
		t.Fatalf("%+v", err)
	}
	if l := kernelProfiles(t); strings.Contains(l, entry+" ") || !strings.Contains(l, readerEntry+" ") || !strings.Contains(l, readerChild+" ") {
		t.Errorf("after the rules went, want %s unloaded (no process in it) and %s, %s retired (in use):\n%s", entry, readerEntry, readerChild, l)
	}
	for _, c := range readers {
		if got := c.r.label(); got != c.label {
			t.Errorf("reader after the rules went: label %q, want %s (retired)", got, c.label)
		}
		if got := c.r.ask(secret2); got != "denied" {
			t.Errorf("reader in retired %s: %s %s, want denied by the new rule", c.label, got, secret2)
		}
		if got := c.r.ask(secret); got != "read" {
			t.Errorf("reader in retired %s: %s %s, want read: its rule went", c.label, got, secret)
		}
	}
	if label, err := run(src, "/proc/self/attr/current"); err != nil || label != hostName+" (enforce)" {
		t.Errorf("%s started unconfined without its rule: label %q (%v), want %s (enforce)", src, label, err, hostName)
	}
	if out, err := run(src, secret); err != nil {
		t.Errorf("%s started unconfined without its rule: read %s: %v %q, want it read", src, secret, err, out)
	}
	// Once their processes are gone, the next apply unloads them.
	fromOutside.stop()
	fromInside.stop()
	if err := b.Apply(ctx, []*rules.Set{set2}); err != nil {
		t.Fatalf("%+v", err)
	}
	if l := kernelProfiles(t); strings.Contains(l, readerEntry+" ") || strings.Contains(l, readerChild+" ") {
		t.Errorf("retired %s, %s still loaded after their processes went:\n%s", readerEntry, readerChild, l)
	}
}

// appliedBackend is a Backend with the default host attachment and set applied, unloaded and
// closed when the test ends.
func appliedBackend(t *testing.T, set *rules.Set) *Backend {
	t.Helper()
	ctx := context.Background()
	b, err := New(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Apply(ctx, []*rules.Set{set}); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() {
		if err := b.Apply(ctx, nil); err != nil {
			t.Errorf("unload: %v", err)
		}
	})
	return b
}

// kernelProfiles is the kernel's list of loaded profiles, one "LABEL (MODE)" a line.
func kernelProfiles(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(DefaultSecurityFS + "/profiles")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readerFixture writes in dir two files and a script that runs on, reading each file it is sent
// and answering "read" or "denied" (startReader).
func readerFixture(t *testing.T, dir string) (secret, secret2, reader string) {
	t.Helper()
	secret, secret2, reader = filepath.Join(dir, "secret"), filepath.Join(dir, "secret2"), filepath.Join(dir, "reader")
	for _, f := range []string{secret, secret2} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\nwhile read -r f; do if { read -r l < \"$f\"; } 2>/dev/null; then echo read; else echo denied; fi; done\n"
	if err := os.WriteFile(reader, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return secret, secret2, reader
}

// lineReader is a running program that answers each line sent to it with one line.
type lineReader struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startReader(t *testing.T, args ...string) *lineReader {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &lineReader{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(r.stop)
	r.ask("/dev/null") // the exec into the program is done once it answers
	return r
}

func (r *lineReader) ask(path string) string {
	r.t.Helper()
	if _, err := io.WriteString(r.in, path+"\n"); err != nil {
		r.t.Fatalf("send %s: %v", path, err)
	}
	line, err := r.out.ReadString('\n')
	if err != nil {
		r.t.Fatalf("answer for %s: %v", path, err)
	}
	return strings.TrimSpace(line)
}

// label is the AppArmor label the program runs in, without its mode.
func (r *lineReader) label() string {
	label, _ := processLabel(fmt.Sprintf("/proc/%d", r.cmd.Process.Pid))
	return label
}

func (r *lineReader) stop() {
	if r.cmd.ProcessState == nil {
		r.in.Close()
		r.cmd.Wait()
	}
}

// copyProgram copies the program at src to dst, an executable file.
func copyProgram(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.WriteFile(dst, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// exemptParser is the ward-exempt profile for the guest's apparmor_parser (symlinks resolved):
// loaded before a host profile that attaches to every program, it keeps the parser that loads and
// removes profiles out of it, as the backend does.
func exemptParser(t *testing.T) Profile {
	t.Helper()
	exempt, err := RenderExempt([]string{guestParser(t)})
	if err != nil {
		t.Fatal(err)
	}
	return exempt
}

// guestParser is the path of the guest's apparmor_parser, symlinks resolved, as the kernel
// matches it against attachments.
func guestParser(t *testing.T) string {
	t.Helper()
	parser, err := exec.LookPath("apparmor_parser")
	if err == nil {
		parser, err = filepath.EvalSymlinks(parser)
	}
	if err != nil {
		t.Fatal(err)
	}
	return parser
}

// TestOtherProfileBesideRuntime shows that a program another profile (a distribution's)
// attaches to keeps that profile when an unconfined process starts it, beside the runtime's
// programs too, where the host profile's attachment spells out the paths it leaves out. The
// kernel ranks attachments by their left match, and that pattern's count once wrapped below
// zero for every path leaving it deep in /usr (attachAllExcept): the host profile won there
// over an exact path, and against another pattern neither attached and the program ran
// unconfined. A host fromSource program that the other profile attaches to by the same exact
// path is taken by its entry profile, named by its path: as an attachment, the entry tied with
// the other one (on 6.1 without its NUL alternative, on 6.12 even with it), and the program ran
// unconfined.
func TestOtherProfileBesideRuntime(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	ctx := context.Background()
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	// A runtime program in /usr/bin (left out of the host profile's attachment); programs with
	// a profile of their own, attached by a pattern (under /usr and under /opt) or by their
	// exact path (beside the runtime program, sharing its name's first letters); and one with
	// no profile of its own there.
	const runtime = "/usr/bin/ward-test-runtime"
	const beside, apart = "/usr/sbin/ward-test-distro/cat", "/opt/ward-test-distro/cat"
	const exact, plain = "/usr/bin/ward-test-exact/cat", "/usr/bin/ward-test-plain/cat"
	const claimed = "/usr/sbin/ward-test-claimed/cat"
	for _, p := range []string{beside, apart, exact, plain, claimed} {
		copyProgram(t, cat, p)
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(p)) })
	}
	loader := NewLoader(t.TempDir(), nil)
	const other, exactName, claimedName = "wardtest-distro", "wardtest-exact", "wardtest-claimed"
	var text strings.Builder
	fmt.Fprintf(&text, HeaderPrefix+"%s\nabi <%s>,\n", other, ABI)
	for name, attach := range map[string]string{other: "/{usr/sbin,opt}/ward-test-distro/cat", exactName: exact, claimedName: claimed} {
		fmt.Fprintf(&text, "profile %s %s {\n  /** rm,\n}\n", name, attach)
	}
	distro := Profile{Name: other, Text: []byte(text.String())}
	exempt := exemptParser(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := compileSet(t, renderCase{w: host, policies: []policy.Policy{hostPolicy("claim", file(policy.MatchPath, secret, block, from(claimed)))}})
	hostProf, _, err := Render(set, Options{Host: ReadHost(DefaultDir), AttachAll: true,
		AttachExcept: []string{runtime}, Exempt: []string{guestParser(t)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Profile{exempt, distro, hostProf} {
		if err := loader.Load(ctx, p); err != nil {
			t.Fatalf("%+v", err)
		}
		t.Cleanup(func() {
			if err := loader.Remove(ctx, p.Name); err != nil {
				t.Errorf("remove %s: %v", p.Name, err)
			}
		})
	}
	label := func(prog string) string {
		out, err := exec.Command(prog, "/proc/self/attr/current").CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v %s", prog, err, out)
		}
		l, _, _ := strings.Cut(strings.TrimSpace(strings.TrimRight(string(out), "\x00")), " (")
		return l
	}
	for prog, want := range map[string]string{apart: other, beside: other, exact: exactName, plain: ProfileName(host),
		claimed: claimed} {
		if got := label(prog); got != want {
			t.Errorf("%s: label %q, want %s", prog, got, want)
		}
	}
	if out, err := exec.Command(claimed, secret).CombinedOutput(); err == nil || !strings.Contains(string(out), "ermission denied") {
		t.Errorf("%s read %s: %v %q, want permission denied (its fromSource rule)", claimed, secret, err, out)
	}
}

// TestContainerRetiredChild shows for a container's profile what TestHostSourceStartedOutsideProfile
// shows for the host's: a child an edit drops stays loaded, retired, for the process running in
// it, with the rules its program has now, and goes with the first apply after that process.
// A container's profile is entered as a runtime enters it (change_onexec, here aa-exec), and its
// fromSource program through the profile's exec rule.
func TestContainerRetiredChild(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	ctx := context.Background()
	secret, secret2, reader := readerFixture(t, t.TempDir())
	compile := func(pols ...policy.Policy) *rules.Set {
		set, err := rules.Compile(pols, web, rules.Postures{})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	b, err := New(ctx, Config{Dir: t.TempDir(), PodProfileGrace: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Apply(ctx, []*rules.Set{compile(containerPolicy("shop", "src", file(policy.MatchPath, secret, block, from(reader))))}); err != nil {
		t.Fatalf("%+v", err)
	}
	t.Cleanup(func() {
		if err := b.Apply(ctx, nil); err != nil {
			t.Errorf("unload: %v", err)
		}
	})
	name := ProfileName(web)
	child := name + "//" + childName(reader)
	r := startReader(t, "aa-exec", "-p", name, "--", "sh", "-c", "exec "+reader)
	if got := r.label(); got != child {
		t.Fatalf("reader: label %q, want %s", got, child)
	}
	if got := r.ask(secret); got != "denied" {
		t.Errorf("reader in %s: %s %s, want denied", child, got, secret)
	}

	// The rule limited to the reader goes and a Block of secret2 for every program comes.
	set2 := compile(containerPolicy("shop", "other", file(policy.MatchPath, secret2, block)))
	if err := b.Apply(ctx, []*rules.Set{set2}); err != nil {
		t.Fatalf("%+v", err)
	}
	if l := kernelProfiles(t); !strings.Contains(l, child+" ") {
		t.Errorf("after the rule went, want %s retired (in use):\n%s", child, l)
	}
	if got := r.label(); got != child {
		t.Errorf("reader after the rule went: label %q, want %s (retired)", got, child)
	}
	if got := r.ask(secret2); got != "denied" {
		t.Errorf("reader in retired %s: %s %s, want denied by the new rule", child, got, secret2)
	}
	if got := r.ask(secret); got != "read" {
		t.Errorf("reader in retired %s: %s %s, want read: its rule went", child, got, secret)
	}
	// A new start of the program runs in the container's profile itself.
	fresh := startReader(t, "aa-exec", "-p", name, "--", "sh", "-c", "exec "+reader)
	if got := fresh.label(); got != name {
		t.Errorf("reader started after the rule went: label %q, want %s", got, name)
	}
	fresh.stop()

	r.stop()
	if err := b.Apply(ctx, []*rules.Set{set2}); err != nil {
		t.Fatalf("%+v", err)
	}
	if l := kernelProfiles(t); strings.Contains(l, child+" ") {
		t.Errorf("retired %s still loaded after its process went:\n%s", child, l)
	}
}

// TestHostRulesThroughSymlink: host rules that name a file, and a fromSource program, through a
// symlinked directory (as /bin/cat names /usr/bin/cat on a merged /usr) are enforced where the
// link leads, which is the path AppArmor matches: the program's read of the file its rule blocks
// is denied whether it is started by either name, from outside Ward's profiles or by a process
// in the host profile, and so is a read of the blocked file by either name; the denials' events
// name the rules. Before the aliases, every one of these reads succeeded.
func TestHostRulesThroughSymlink(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	const real, link = "/opt/ward-test-real", "/opt/ward-test-link"
	copyProgram(t, cat, real+"/cat")
	t.Cleanup(func() { os.RemoveAll(real); os.Remove(link) })
	if err := os.WriteFile(real+"/file", []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(real), link); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile([]policy.Policy{hostPolicy("sym",
		file(policy.MatchPath, secret, block, from(link+"/cat")),
		file(policy.MatchPath, link+"/file", block))}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	b := appliedBackend(t, set)
	for len(b.Events()) > 0 {
		<-b.Events()
	}
	inHost := func(cmd string) []string { return []string{"aa-exec", "-p", "ward-host", "--", "sh", "-c", cmd} }
	for _, c := range [][]string{
		{link + "/cat", secret}, {real + "/cat", secret},
		inHost(link + "/cat " + secret), inHost(real + "/cat " + secret),
		inHost("cat " + link + "/file"), inHost("cat " + real + "/file"),
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err == nil || !strings.Contains(string(out), "ermission denied") {
			t.Errorf("%v: %v %q, want permission denied", c, err, out)
		}
	}
	// The events name the accesses as the rules do, so that the daemon's set decides them: the
	// file by the rule's path, the program's read by its fromSource name. Detail keeps the
	// kernel's path.
	cases := []struct{ path, source, rule, kernelPath string }{
		{link + "/file", "", "spec.file.matchPaths[1]", real + "/file"},
		{secret, link + "/cat", "spec.file.matchPaths[0]", secret},
	}
	found := map[int]enforcer.Event{}
	evs, _ := awaitEvent(b, 10*time.Second, func(ev enforcer.Event) bool {
		for i, c := range cases {
			if _, ok := found[i]; !ok && ev.Access.Path == c.path && ev.Access.Source == c.source {
				found[i] = ev
			}
		}
		return len(found) == len(cases)
	})
	for i, c := range cases {
		ev, ok := found[i]
		if !ok {
			t.Errorf("no event for %s by %q; events: %+v", c.path, c.source, evs)
			continue
		}
		v := set.Decide(ev.Access)
		if ev.Errno != int(syscall.EACCES) || ev.Workload != set.Workload.ID() || v.Action != block || v.Policy != "sym" || v.Rule != c.rule ||
			!strings.Contains(ev.Detail, `name="`+c.kernelPath+`"`) {
			t.Errorf("event for %s: %s errno %d, decided %s %s %s, want the host's EACCES, a Block of policy sym %s, the record naming %s: %s",
				c.path, ev.Workload, ev.Errno, v.Action, v.Policy, v.Rule, c.rule, c.kernelPath, ev.Detail)
		}
	}
}
