package monitor

import (
	"os"
	"path/filepath"
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
//   - ignored: openat is traced but this process is filtered in the kernel (IgnoreSelf): the
//     cost of the enter program's lookups for a process the monitor must not report.
//   - untraced: only execve is traced; open itself runs no BPF program, but any attached
//     syscall tracepoint sends every syscall through the kernel's tracing slow path.
func BenchmarkOverhead(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"traced", Options{Syscalls: []string{"openat"}}},
		{"ignored", Options{Syscalls: []string{"openat"}, IgnoreSelf: true}},
		{"untraced", Options{Syscalls: []string{"execve"}}},
	} {
		b.Run(c.name, func(b *testing.B) { benchOverhead(b, c.opts) })
	}
}

func benchOverhead(b *testing.B, opts Options) {
	m := newMonitor(b, opts)
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
		base += openClose(b, path, perRound)
		if err := m.reattach(); err != nil {
			b.Fatal(err)
		}
		mon += openClose(b, path, perRound)
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
	if events == 0 && opts.IgnoreSelf == false && opts.Syscalls[0] == "openat" {
		b.Error("no event delivered while openat was traced")
	}
	b.ReportMetric(float64(s.Lost), "lost")
}

func openClose(b *testing.B, path string, n int) time.Duration {
	start := time.Now()
	for range n {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
	return time.Since(start)
}

// BenchmarkDecode is the user-space cost of one open record of this process: decoding,
// the executable cache, path resolution and formatting.
func BenchmarkDecode(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a", "b", "c", "f")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	self := readExe(uint32(os.Getpid()))
	pid := uint32(os.Getpid())
	h := monitorEvent{Nr: 257, Tgid: pid, Pid: pid, Ppid: uint32(os.Getppid()), ExeIno: self.ino, ExeDev: self.dev, Flags: flagOwner}
	h.Args[0] = uint64(uint32(0xffffff9c))
	h.Args[2] = unix.O_RDONLY | unix.O_CLOEXEC
	rec := record(h, path)
	var d decoder
	for b.Loop() {
		ev, ok := d.decode(rec)
		if !ok || ev.Access.Path == "" || ev.Access.Source == "" {
			b.Fatalf("decoded %+v", ev)
		}
	}
}
