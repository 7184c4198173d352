// Package vmbench is the workload's side of the in-VM benchmarks (`make bench-vm`,
// docs/performance.md): a process that moves itself into a workload's cgroup, performs one
// access in a loop and reports guest nanoseconds per access, and the report lines the
// benchmarks print for tools/benchreport.
//
// The VM of `make bench-vm` is booted with `vmrun -bench`: one CPU whose clock counts executed
// instructions, so a figure timed here is the same whatever else runs on the host. What is left
// to vary is the guest's own work; the loop removes what it can: the Go collector is off in the
// helper, open+close, send+recv and capable() enter the kernel with RawSyscall (see prepare),
// the helper idles before each cgroup's rounds so that deferred kernel work runs then, a
// warm-up round runs first in every cgroup (page faults, the dcache, lazily created kernel
// state such as per-inode storage), and the fastest of several rounds is reported.
package vmbench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Access is one measured operation.
type Access string

// The accesses of the report. Each iteration of Open is open()+close() of Arg; Exec is
// fork+execve+wait of the static binary Arg (run without arguments); SendRecv writes one byte
// on a connected loopback TCP socket, reads it at the other end and sends it back the same way
// (twice the sendmsg and recvmsg hooks each, and, as on every read and write, four times
// file_permission); Capable is vhangup(2), which is a capable(CAP_SYS_TTY_CONFIG) check and, for a
// process without a controlling terminal, almost nothing else.
const (
	Open     Access = "open"
	Exec     Access = "exec"
	SendRecv Access = "sendrecv"
	Capable  Access = "capable"
)

// Job is what the helper process is asked to do: for each cgroup in turn, move there, run one
// warm-up round and Rounds rounds of N accesses.
type Job struct {
	Access  Access
	Arg     string
	N       int
	Rounds  int
	Cgroups []string // cgroup v2 directories; "" stays where it is; ProfilePrefix+name enters an AppArmor profile
}

// ProfilePrefix marks a Job's step that enters an AppArmor profile instead of a cgroup, so that
// one helper process measures an access unconfined and then confined: the ratio of two figures of
// the same process, as BPF-LSM's variants are (one process, moved from cgroup to cgroup).
// An unconfined task may enter any profile; a confined one no other, so such a step comes last.
const ProfilePrefix = "apparmor:"

// Pause is a Job's step at which the helper prints Pause and waits for RunPaused's callback to
// return, so that one helper process measures an access before and after a change the benchmark
// makes (BPF-LSM: its programs attached). It measures nothing itself.
const Pause = "ward-bench-pause"

// Encode gives the job as one string for the helper's environment.
func (j Job) Encode() string {
	return strings.Join([]string{string(j.Access), strconv.Itoa(j.N), strconv.Itoa(j.Rounds), j.Arg, strings.Join(j.Cgroups, ",")}, "\x1f")
}

// Decode is Encode's inverse.
func Decode(s string) (Job, error) {
	f := strings.Split(s, "\x1f")
	if len(f) != 5 {
		return Job{}, fmt.Errorf("vmbench job %q: want 5 fields, have %d", s, len(f))
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n <= 0 {
		return Job{}, fmt.Errorf("vmbench job: iterations %q", f[1])
	}
	r, err := strconv.Atoi(f[2])
	if err != nil || r <= 0 {
		return Job{}, fmt.Errorf("vmbench job: rounds %q", f[2])
	}
	return Job{Access: Access(f[0]), N: n, Rounds: r, Arg: f[3], Cgroups: strings.Split(f[4], ",")}, nil
}

// Helper runs the job in this process and prints one line per cgroup: the rounds' ns per
// access, space-separated. It is the body of the helper process (a re-executed test binary).
func Helper(job Job) error {
	loop, closer, err := prepare(job)
	if err != nil {
		return err
	}
	defer closer()
	for _, cg := range job.Cgroups {
		if cg == Pause {
			// The benchmark changes the kernel's state (attaches its programs) while the
			// helper waits: its line, then one byte on stdin.
			fmt.Println(Pause)
			if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
				return fmt.Errorf("pause: %w", err)
			}
			continue
		}
		if prof, ok := strings.CutPrefix(cg, ProfilePrefix); ok {
			// This thread (Main locks the helper to it) enters the profile, as aa-exec
			// would have before the exec: unconfined, it may change to any profile.
			if err := os.WriteFile("/proc/thread-self/attr/current", []byte("changeprofile "+prof), 0); err != nil {
				return fmt.Errorf("enter profile %s: %w", prof, err)
			}
		} else if cg != "" {
			if err := os.WriteFile(cg+"/cgroup.procs", []byte("0"), 0); err != nil {
				return fmt.Errorf("move to %s: %w", cg, err)
			}
		}
		// Let the kernel's deferred work settle (RCU callbacks and grace-period kthreads
		// after the cgroup move, after the benchmark attached or detached programs or
		// freed map entries): on the one CPU it would otherwise run inside a round. Under
		// icount with sleep=off an idle guest's sleep costs no host time.
		// Only in bench mode: the functional suite's run keeps its time.
		if os.Getenv("WARD_VM_BENCH") != "" {
			time.Sleep(settle)
		}
		if err := loop(job.N); err != nil { // warm-up
			return fmt.Errorf("%s in %s: %w", job.Access, cg, err)
		}
		var res []string
		for r := 0; r < job.Rounds; r++ {
			start := time.Now()
			if err := loop(job.N); err != nil {
				return fmt.Errorf("%s in %s: %w", job.Access, cg, err)
			}
			res = append(res, strconv.FormatInt(time.Since(start).Nanoseconds()/int64(job.N), 10))
		}
		fmt.Println(strings.Join(res, " "))
	}
	return nil
}

func prepare(job Job) (loop func(n int) error, closer func(), _ error) {
	closer = func() {}
	switch job.Access {
	case Open:
		path, err := unix.BytePtrFromString(job.Arg)
		if err != nil {
			return nil, nil, err
		}
		cwd := unix.AT_FDCWD
		return func(n int) error {
			// RawSyscall, as send+recv does (see there): with unix.Open and unix.Close
			// these figures moved by 2-7 % between boots.
			for i := 0; i < n; i++ {
				fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(path)), unix.O_RDONLY, 0, 0, 0)
				if e != 0 {
					return fmt.Errorf("open %s: %w", job.Arg, e)
				}
				unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
			}
			return nil
		}, closer, nil
	case Exec:
		argv := []string{job.Arg}
		attr := &syscall.ProcAttr{Env: []string{}}
		return func(n int) error {
			for i := 0; i < n; i++ {
				pid, err := syscall.ForkExec(argv[0], argv, attr)
				if err != nil {
					return err
				}
				var ws syscall.WaitStatus
				if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
					return err
				}
				if ws.ExitStatus() != 0 {
					return fmt.Errorf("%s: exit %d", argv[0], ws.ExitStatus())
				}
			}
			return nil
		}, closer, nil
	case SendRecv:
		a, b, err := tcpPair()
		if err != nil {
			return nil, nil, err
		}
		buf := []byte{1}
		rw := func(nr uintptr, fd int) error {
			if _, _, e := unix.RawSyscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), 1); e != 0 {
				return e
			}
			return nil
		}
		return func(n int) error {
				// A byte each way, so that every segment carries the acknowledgement of the
				// previous one (two segments per iteration, no pure ACK, no delayed-ACK timer).
				// RawSyscall, not unix.Write/Read: Go's syscall path marks the thread as in a
				// system call, and the runtime's monitor thread (sysmon) then takes its
				// processor away now and then and wakes often. Counted in the guest, a round
				// had 100-250 interrupts and as many wake-ups of sysmon and of a second thread,
				// or about 5, by chance: each such wake-up is an interrupt and context switches
				// on the one CPU (about 8,000 guest ns), which moved a round by 8-10 % and the
				// fastest of five rounds by up to 11 % between boots. With RawSyscall the
				// thread never leaves the running state and the figures repeated to 0.03 %.
				for i := 0; i < n; i++ {
					if err := rw(unix.SYS_WRITE, a); err != nil {
						return fmt.Errorf("send: %w", err)
					}
					if err := rw(unix.SYS_READ, b); err != nil {
						return fmt.Errorf("recv: %w", err)
					}
					if err := rw(unix.SYS_WRITE, b); err != nil {
						return fmt.Errorf("send back: %w", err)
					}
					if err := rw(unix.SYS_READ, a); err != nil {
						return fmt.Errorf("recv back: %w", err)
					}
				}
				return nil
			}, func() {
				unix.Close(a)
				unix.Close(b)
			}, nil
	case Capable:
		return func(n int) error {
			for i := 0; i < n; i++ {
				if _, _, e := unix.RawSyscall(unix.SYS_VHANGUP, 0, 0, 0); e != 0 {
					return fmt.Errorf("vhangup: %w", e)
				}
			}
			return nil
		}, closer, nil
	}
	return nil, nil, fmt.Errorf("unknown access %q", job.Access)
}

// tcpPair returns the two ends of a loopback TCP connection as blocking fds, made before the
// helper moves into a workload's cgroup (as a long-lived connection would be).
func tcpPair() (int, int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	a, err := dupFD(c.(*net.TCPConn))
	if err != nil {
		return 0, 0, err
	}
	b, err := dupFD(s.(*net.TCPConn))
	if err != nil {
		unix.Close(a)
		return 0, 0, err
	}
	for _, fd := range []int{a, b} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return 0, 0, err
		}
	}
	return a, b, nil
}

// dupFD returns a blocking duplicate of the connection's descriptor.
func dupFD(c *net.TCPConn) (int, error) {
	f, err := c.File() // a blocking duplicate
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return unix.Dup(int(f.Fd()))
}

// Command returns the helper process: self re-executed with env=job, the collector off, in a
// new session (no controlling terminal, so vhangup hangs nothing up), started in the cgroup of
// startFD (-1: where the caller is). The caller adds its own wrapper (aa-exec) through wrap.
func Command(self string, job Job, startFD int, wrap ...string) *exec.Cmd {
	argv := append(slices.Clone(wrap), self)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{JobEnv + "=" + job.Encode(), "GOGC=off", "GOMAXPROCS=1", "WARD_VM_BENCH=" + os.Getenv("WARD_VM_BENCH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if startFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = startFD
	}
	return cmd
}

// settle is how long the helper idles before each cgroup's rounds.
const settle = 300 * time.Millisecond

// Run starts the helper and returns, per cgroup of the job, the fastest round's ns per access.
// Guest time under icount counts instructions, so a round can only be slowed by work that is not
// the access's (a kernel thread, an interrupt's deferred work); the fastest round is the
// access's own cost. (The median still moved by up to 20 % between boots.)
func Run(cmd *exec.Cmd, job Job) ([]float64, error) {
	return RunPaused(cmd, job, nil)
}

// RunPaused is Run for a job with Pause steps: at each, it calls paused and then lets the
// helper go on. The figures are the measuring steps', in order.
func RunPaused(cmd *exec.Cmd, job Job, paused func() error) ([]float64, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	defer in.Close()
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("helper %s: %w", job.Access, err)
	}
	var lines []string
	var perr error
	sc := bufio.NewScanner(outPipe)
	for sc.Scan() {
		if sc.Text() != Pause {
			lines = append(lines, sc.Text())
			continue
		}
		if perr == nil && paused != nil {
			perr = paused()
		}
		if perr != nil {
			in.Close() // the helper's read fails: it stops
			continue
		}
		if _, err := in.Write([]byte{'\n'}); err != nil {
			perr = err
		}
	}
	err = cmd.Wait()
	out := strings.Join(lines, "\n")
	if err = errors.Join(perr, err); err != nil {
		return nil, fmt.Errorf("helper %s: %w: %s", job.Access, err, out)
	}
	want := 0
	for _, cg := range job.Cgroups {
		if cg != Pause {
			want++
		}
	}
	if len(lines) != want {
		return nil, fmt.Errorf("helper %s printed %d lines for %d cgroups: %s", job.Access, len(lines), want, out)
	}
	var med []float64
	for _, l := range lines {
		var xs []float64
		for _, f := range strings.Fields(l) {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("helper %s printed %q", job.Access, out)
			}
			xs = append(xs, x)
		}
		if len(xs) == 0 {
			return nil, errors.New("helper printed an empty line")
		}
		med = append(med, slices.Min(xs))
	}
	return med, nil
}

// Row is one line of the report: a backend's cost of one access under one rule variant, as
// guest ns per access and as the ratio against the same access in the same boot with no
// Ward program and no profile.
type Row struct {
	Backend string // bpflsm, apparmor
	Access  string // e.g. "open+close, cached"
	Variant string // e.g. "10,000 rules"
	NS      float64
	Ratio   float64
}

// RowPrefix starts every report line in the benchmark's output; tools/benchreport reads
// them from `go test -v` output.
const RowPrefix = "ward-bench-row"

// String is the line tools/benchreport parses: tab-separated.
func (r Row) String() string {
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%.0f\t%.4f", RowPrefix, r.Backend, r.Access, r.Variant, r.NS, r.Ratio)
}

// Figure is one line of the report that is not a cost per access: a daemon's time to a state,
// a latency percentile, a memory size, each with its unit.
type Figure struct {
	Backend string // bpflsm, apparmor; Monitor for the system monitor's figures
	Name    string // e.g. "policy edit to enforced, p50"
	Value   float64
	Unit    string // s, ms, MiB
}

// Monitor is the Backend of the system monitor's figures (internal/monitor): it enforces
// nothing, and is measured on its own.
const Monitor = "monitor"

// FigurePrefix starts every Figure line in the benchmark's output.
const FigurePrefix = "ward-bench-figure"

// String is the line tools/benchreport parses: tab-separated.
func (f Figure) String() string {
	return fmt.Sprintf("%s\t%s\t%s\t%.3f\t%s", FigurePrefix, f.Backend, f.Name, f.Value, f.Unit)
}

// Iterations scales a benchmark's loop by WARD_TEST_BENCH_SCALE (default 1): `make test`
// runs the VM benchmarks with a small scale so they keep working, `make bench-vm` with the
// full one.
func Iterations(n int) int {
	if v, err := strconv.ParseFloat(os.Getenv("WARD_TEST_BENCH_SCALE"), 64); err == nil && v > 0 {
		n = int(float64(n) * v)
	}
	return max(n, 1)
}

// JobEnv carries an encoded Job to the helper process; a benchmark package's TestMain calls
// Main when it is set.
const JobEnv = "WARD_VMBENCH_JOB"

// Main is the helper process: it runs the job in JobEnv and returns the exit status.
func Main() int {
	// An AppArmor profile change (ProfilePrefix) is the calling thread's: every access must
	// come from that thread.
	runtime.LockOSThread()
	job, err := Decode(os.Getenv(JobEnv))
	if err == nil {
		err = Helper(job)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// Note is a line of the report that is not a figure: why a row is missing, say.
type Note struct {
	Backend string
	Text    string
}

// NotePrefix starts every note line in the benchmark's output.
const NotePrefix = "ward-bench-note"

// String is the line tools/benchreport parses: tab-separated.
func (n Note) String() string {
	return fmt.Sprintf("%s\t%s\t%s", NotePrefix, n.Backend, strings.ReplaceAll(n.Text, "\t", " "))
}

// PreparedEnv names a directory that a package's BenchmarkPrepare, run by make bench-vm in an
// ordinary boot before the instruction-counting ones, fills with what its BenchmarkReport then
// reads (the AppArmor backend's compiled profiles): work that is not measured and is slow
// under the instruction-counting clock. Shared into both VMs at the same path.
const PreparedEnv = "WARD_TEST_BENCH_PREPARED"
