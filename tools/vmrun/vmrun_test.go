package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCPIOReadableByCpio checks the archive against the real cpio tool, the
// closest thing to the kernel's unpacker on the host.
func TestCPIOReadableByCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio is needed to check the archive format (apt-get install cpio): %v", err)
	}
	a := newCPIO()
	a.File("etc/ward/odd.txt", 0o640, []byte("abc")) // 3 bytes: exercises padding
	a.Symlink("bin/sh", "/bin/busybox")
	a.Dir("tmp", 0o1777)
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "-v", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	for _, want := range []string{"-rw-r-----", "etc/ward/odd.txt", "bin/sh -> /bin/busybox", "drwxrwxrwt", "etc/ward\n"} {
		if !strings.Contains(string(out)+"\n", want) {
			t.Errorf("cpio listing lacks %q:\n%s", want, out)
		}
	}

	dir := t.TempDir()
	buf.Reset()
	a.WriteTo(&buf)
	cmd = exec.Command("cpio", "-i", "-d", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "etc/ward/odd.txt"))
	if err != nil || string(got) != "abc" {
		t.Fatalf("extracted file = %q, %v; want abc", got, err)
	}
}

func TestCPIODeterministic(t *testing.T) {
	build := func(order []string) []byte {
		a := newCPIO()
		for _, n := range order {
			a.File(n, 0o644, []byte(n))
		}
		var buf bytes.Buffer
		a.WriteTo(&buf)
		return buf.Bytes()
	}
	x := build([]string{"a/b", "c", "a/d"})
	y := build([]string{"a/d", "c", "a/b"})
	if !bytes.Equal(x, y) {
		t.Fatal("the archive depends on the order files were added; the content-keyed cache would miss")
	}
}

// TestJobScriptRAMCopy: in bench mode a command from the run share runs from a copy in the
// guest's memory, with its arguments; any other command runs where it is.
func TestJobScriptRAMCopy(t *testing.T) {
	share := guestBinDir + "/pkg.test"
	job := jobScript("", "/src", nil, []string{share, "-test.bench=."}, nil, true, false)
	ram := guestRAMBinDir + "/pkg.test"
	if !strings.Contains(job, "cp '"+share+"' '"+ram+"' || die") {
		t.Errorf("bench job does not copy the command into memory:\n%s", job)
	}
	if !strings.Contains(job, "'"+ram+"' '-test.bench=.' </dev/null") {
		t.Errorf("bench job does not run the copy with its arguments:\n%s", job)
	}
	if job := jobScript("", "/src", nil, []string{share}, nil, false, false); strings.Contains(job, guestRAMBinDir) {
		t.Errorf("functional job copies the command:\n%s", job)
	}
	if job := jobScript("", "/src", nil, []string{"sh", "-c", "true"}, nil, true, false); strings.Contains(job, guestRAMBinDir) {
		t.Errorf("bench job copies a command that is not on the run share:\n%s", job)
	}
}

// TestJobScriptQuoting runs the generated job through sh with a stand-in for
// the guest's die and mount, and checks the command sees its arguments
// unchanged and its status is recorded.
func TestJobScriptQuoting(t *testing.T) {
	dir := t.TempDir()
	args := []string{"sh", "-c", `printf '%s|' "$@" >` + filepath.Join(dir, "args") + `; exit 3`, "sh", "a b", "it's", "$HOME", "`id`", ""}
	env := []string{"WARD_TEST_X=one two", "HOME=/nowhere", "GOTRACEBACK=all"}
	job := jobScript("", dir, nil, args, env, false, false)
	if strings.Contains(job, "HOME=/nowhere") {
		t.Errorf("the job forwards HOME, which is the guest's own:\n%s", job)
	}
	job = strings.ReplaceAll(job, guestOutDir, dir)
	script := "die() { echo \"die: $*\"; exit 99; }\n" + job + "echo \"x=$WARD_TEST_X tb=$GOTRACEBACK vm=$WARD_VM\"\n"
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v\n%s\nscript:\n%s", err, out, script)
	}
	if want := "x=one two tb=all vm=1\n"; string(out) != want {
		t.Errorf("environment in the job: %q, want %q", out, want)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "args"))
	if want := "a b|it's|$HOME|`id`||"; string(got) != want {
		t.Errorf("arguments seen by the command: %q, want %q", got, want)
	}
	status, _ := os.ReadFile(filepath.Join(dir, "exit"))
	if strings.TrimSpace(string(status)) != "3" {
		t.Errorf("recorded exit status %q, want 3", status)
	}
}

// TestJobScriptService: a profile with a host service tells the guest where its requests go
// ($WARD_VM_SERVICE, the run share's service directory, which the host side watches); a job
// without one leaves the variable unset, and the guest's clients say so.
func TestJobScriptService(t *testing.T) {
	for _, service := range []bool{true, false} {
		dir := t.TempDir()
		job := jobScript("", dir, nil, []string{"sh", "-c", `printf '%s' "${WARD_VM_SERVICE-unset}" >` + filepath.Join(dir, "svc")}, nil, false, service)
		job = strings.ReplaceAll(job, guestOutDir, dir)
		if out, err := exec.Command("sh", "-c", "die() { echo \"die: $*\"; exit 99; }\n"+job).CombinedOutput(); err != nil {
			t.Fatalf("sh: %v\n%s\nscript:\n%s", err, out, job)
		}
		got, err := os.ReadFile(filepath.Join(dir, "svc"))
		if err != nil {
			t.Fatal(err)
		}
		want := "unset"
		if service {
			want = guestRunDir + "/" + serviceDir
		}
		if string(got) != want {
			t.Errorf("service %v: the command saw WARD_VM_SERVICE=%q, want %q", service, got, want)
		}
	}
}

func TestDefaultTimeout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-test.v", "-test.timeout=10m0s"}, 11 * time.Minute},
		{[]string{"-test.timeout=0s"}, 15 * time.Minute},
		{nil, 15 * time.Minute},
	} {
		if got := defaultTimeout(tc.args); got != tc.want {
			t.Errorf("defaultTimeout(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestProfileScriptChecksLSMs(t *testing.T) {
	p := bootProfile{Name: "x", LSMs: []string{"apparmor", "bpf"}}
	dir := t.TempDir()
	lsm := filepath.Join(dir, "lsm")
	script := strings.ReplaceAll(p.guestScript(), "/sys/kernel/security/lsm", lsm)
	script = "die() { echo \"die: $*\"; exit 1; }\n" + script + "echo ok\n"
	for content, wantOK := range map[string]bool{
		"lockdown,capability,landlock,yama,apparmor,bpf": true,
		"lockdown,capability,landlock,yama,bpf":          false,
		"lockdown,capability,apparmorx,bpf":              false,
	} {
		if err := os.WriteFile(lsm, []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		if ok := err == nil && string(out) == "ok\n"; ok != wantOK {
			t.Errorf("lsm=%s: script ok=%v (%s), want ok=%v", content, ok, out, wantOK)
		}
	}
}

func TestLookupProfile(t *testing.T) {
	for _, name := range []string{"apparmor", "selinux"} {
		if _, err := lookupProfile(name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lookupProfile("smack"); err == nil || !strings.Contains(err.Error(), "apparmor") {
		t.Fatalf("unknown profile: err = %v, want one listing the known profiles", err)
	}
}

func TestConsoleMarkersAndTrouble(t *testing.T) {
	c := &console{startedCh: make(chan struct{})}
	in := "SeaBIOS\r\nward-vm: start\r\n[ 3.0] Kernel panic - not syncing: sysrq triggered crash\r\n"
	c.read(io.Reader(strings.NewReader(in)), time.Now().Add(-time.Second))
	if c.startedAfter() < time.Second {
		t.Errorf("start marker not seen: %s", c.startedAfter())
	}
	select {
	case <-c.startedCh:
	default:
		t.Error("the start marker did not signal the run clock")
	}
	if !strings.Contains(c.trouble(), "Kernel panic") {
		t.Errorf("panic not noticed: %q", c.trouble())
	}
	if strings.Contains(c.tail(), "\r") {
		t.Errorf("console tail keeps carriage returns")
	}
}

// TestQemuArgsBench: bench mode boots one CPU with an instruction-counting clock and no
// layout randomisation; the default stays multi-threaded TCG with the CPUs asked for.
func TestQemuArgsBench(t *testing.T) {
	prep := prepared{Profile: bootProfile{Cmdline: []string{"lsm=bpf"}}}
	def := strings.Join(qemuArgs(config{CPUs: 2, MemoryMB: 1024}, prep, "/run"), " ")
	for _, want := range []string{"-accel tcg,thread=multi", "-smp 2", "softlockup_panic=1", "watchdog_thresh=30 lsm=bpf"} {
		if !strings.Contains(def, want) {
			t.Errorf("default args lack %q: %s", want, def)
		}
	}
	if strings.Contains(def, "icount") || strings.Contains(def, "nokaslr") || strings.Contains(def, "rdrand") {
		t.Errorf("default args are bench mode's: %s", def)
	}
	bench := strings.Join(qemuArgs(config{CPUs: 2, MemoryMB: 1024, Bench: true}, prep, "/run"), " ")
	for _, want := range []string{"-accel tcg -icount shift=0,sleep=off", "-cpu max,-rdrand,-rdseed", "-smp 1", "nokaslr ward.bench=1 lsm=bpf"} {
		if !strings.Contains(bench, want) {
			t.Errorf("bench args lack %q: %s", want, bench)
		}
	}
	if strings.Contains(bench, "thread=multi") {
		t.Errorf("bench mode with multi-threaded TCG (icount needs one thread): %s", bench)
	}
	single := strings.Join(qemuArgs(config{CPUs: 2, MemoryMB: 1024, SingleThread: true}, prep, "/run"), " ")
	for _, want := range []string{"-accel tcg,thread=single", "-smp 2"} {
		if !strings.Contains(single, want) {
			t.Errorf("single-threaded args lack %q: %s", want, single)
		}
	}
}

// TestBenchBootsFromTmpfsRoot: benchmarks run where real processes run, under a root mount
// stacked on the initramfs's; the functional profiles keep their own choice.
func TestBenchBootsFromTmpfsRoot(t *testing.T) {
	for _, bench := range []bool{false, true} {
		p, err := profileFor(config{Profile: "apparmor", Bench: bench})
		if err != nil {
			t.Fatal(err)
		}
		if p.TmpfsRoot != bench {
			t.Errorf("profile apparmor, bench %v: TmpfsRoot %v", bench, p.TmpfsRoot)
		}
	}
	if p, err := profileFor(config{Profile: "node"}); err != nil || !p.TmpfsRoot {
		t.Errorf("profile node: TmpfsRoot %v (%v), want true", p.TmpfsRoot, err)
	}
}
