package monitor

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkOverhead measures what the monitor costs an open()+close() loop: each b.Loop
// iteration is one round of the loop with the tracepoints detached and one with them attached,
// so both are measured in the same run and under the same load (these machines are noisy).
// The reported x-overhead is attached time over detached time.
//
//   - traced: openat is traced; every open makes a record that user space decodes (path
//     resolution, executable cache) on the same two cores.
//   - kernel: as traced, but user space drops the records undecoded: the share of the BPF
//     programs and the ring buffer.
//   - ignored: openat is traced but the looping process is filtered in the kernel (Ignore):
//     the cost of the enter program's lookups for a process the monitor must not report.
//   - untraced: only execve is traced; open itself runs no BPF program, but any attached
//     syscall tracepoint sends every syscall through the kernel's tracing slow path.
func BenchmarkOverhead(b *testing.B) {
	for _, c := range []struct {
		name    string
		opts    Options
		discard bool
	}{
		{"traced", Options{Syscalls: []string{"openat"}}, false},
		{"kernel", Options{Syscalls: []string{"openat"}}, true},
		{"ignored", Options{Syscalls: []string{"openat"}}, false},
		{"untraced", Options{Syscalls: []string{"execve"}}, false},
	} {
		b.Run(c.name, func(b *testing.B) { benchOverhead(b, c.opts, c.discard, c.name == "ignored") })
	}
}

func benchOverhead(b *testing.B, opts Options, discard, ignore bool) {
	m := newMonitor(b, opts)
	m.discard.Store(discard)
	drained := make(chan uint64)
	go func() {
		var n uint64
		for range m.Events() {
			n++
		}
		drained <- n
	}()
	path := filepath.Join(b.TempDir(), "a", "b", "c", "d", "e", "f")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	const perRound = 5000
	var base, mon time.Duration
	rounds := 0
	for b.Loop() {
		m.detach()
		base += openClose(b, m, path, perRound, false)
		if err := m.reattach(); err != nil {
			b.Fatal(err)
		}
		mon += openClose(b, m, path, perRound, ignore)
		rounds++
	}
	b.StopTimer()
	s, err := m.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	events := <-drained
	ops := float64(rounds * perRound)
	b.ReportMetric(float64(base.Nanoseconds())/ops, "ns/open-detached")
	b.ReportMetric(float64(mon.Nanoseconds())/ops, "ns/open-attached")
	b.ReportMetric(float64(mon)/float64(base), "x-overhead")
	if events == 0 && !discard && !ignore && opts.Syscalls[0] == "openat" {
		b.Error("no event delivered while openat was traced")
	}
	b.ReportMetric(float64(s.Lost), "lost")
}

// openClose times n open()+close() pairs in a helper process (this test binary re-executed,
// see TestMain), as the workload the monitor watches is another process than the daemon: in
// one process the Go scheduler mixes the decoder's work into the loop being timed. The helper
// starts its loop when its stdin closes, after it has been ignored if ignore is set.
func openClose(b *testing.B, m *Monitor, path string, n int, ignore bool) time.Duration {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", benchHelperEnv, n, path))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if ignore {
		if err := m.Ignore(uint32(cmd.Process.Pid)); err != nil {
			b.Fatal(err)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("helper: %v", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		b.Fatalf("helper output %q: %v", out.String(), err)
	}
	return time.Duration(ns)
}

// vmHelper is the helper process of the VM benchmark (bench_vm_test.go) when that file is
// built: it reports whether this process was one.
var vmHelper func() bool

const benchHelperEnv = "WARD_MONITOR_BENCH_HELPER"

// benchHelper runs the timed loop when the test binary is the benchmark's helper, and
// reports whether it was.
func benchHelper() bool {
	arg, ok := os.LookupEnv(benchHelperEnv)
	if !ok {
		return false
	}
	nstr, path, _ := strings.Cut(arg, ":")
	n, err := strconv.Atoi(nstr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	io.Copy(io.Discard, os.Stdin) // the go-ahead: stdin closed
	start := time.Now()
	for range n {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		unix.Close(fd)
	}
	fmt.Println(time.Since(start).Nanoseconds())
	return true
}

// BenchmarkDecode is the user-space cost of one open record of this process: decoding,
// the executable cache, path resolution and formatting. "dentry" is the record of a successful
// open, which carries the opened file's dentry; "lstat" one without it (a failed open, or a
// kernel record from before the dentry was sent), whose last component user space looks up.
// "exec-dentry" and "exec-lstat" are the same for a successful exec, whose owner and
// program are then also looked up (lstat, /proc/PID/exe).
func BenchmarkDecode(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a", "b", "c", "f")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	var dir unix.Stat_t
	if err := unix.Stat(filepath.Dir(path), &dir); err != nil {
		b.Fatal(err)
	}
	self := readExe(uint32(os.Getpid()))
	pid := uint32(os.Getpid())
	h := monitorEvent{Nr: 257, Tgid: pid, Pid: pid, Ppid: uint32(os.Getppid()), ExeIno: self.ino, ExeDev: self.dev, Flags: flagOwner}
	h.Args[0] = uint64(uint32(0xffffff9c))
	h.Args[2] = unix.O_RDONLY | unix.O_CLOEXEC
	// An exec record of this process running its own program (the test binary), as
	// sched_process_exec makes it.
	x := monitorEvent{Nr: 59, Tgid: pid, Pid: pid, Ppid: uint32(os.Getppid()), ExeIno: self.ino, ExeDev: self.dev, SrcIno: self.ino, SrcDev: self.dev, Flags: flagExec}
	var exeDir unix.Stat_t
	if err := unix.Stat(filepath.Dir(self.path), &exeDir); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		rec  []byte
		path string
	}{
		{"dentry", withDentry(record(h, path), "f", dir.Ino, kernelDev(dir.Dev)), path},
		{"lstat", record(h, path), path},
		{"exec-dentry", withDentry(record(x, self.path), filepath.Base(self.path), exeDir.Ino, kernelDev(exeDir.Dev)), self.path},
		{"exec-lstat", record(x, self.path), self.path},
	} {
		b.Run(c.name, func(b *testing.B) {
			var d decoder
			for b.Loop() {
				ev, ok := d.decode(c.rec)
				if !ok || ev.Access.Path != c.path || ev.Access.Source == "" {
					b.Fatalf("decoded %+v", ev)
				}
			}
		})
	}
}
