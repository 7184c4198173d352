package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

type config struct {
	Profile       string
	CacheDir      string
	KernelPackage string
	Timeout       time.Duration // for the command, from when the guest starts it
	BootTimeout   time.Duration // from qemu's start until the guest starts the command
	Verbose       bool
	TimingsFile   string
	MemoryMB      int
	CPUs          int
	// Bench boots for measurement: one CPU whose clock counts executed
	// instructions (icount), so a benchmark timed inside the guest reads the
	// same figure whatever else runs on the host; see qemuArgs.
	Bench bool
	// SingleThread runs the guest's CPUs on one host thread. Multi-threaded
	// TCG has locked guests up with every CPU spinning on an int3 that the
	// kernel's live text patching (text_poke_bp: BPF trampolines, static keys
	// of tracepoints) had already removed: seen in the daemon's restart test
	// and on the Kubernetes node when Ward restarted (syscall_trace_enter).
	SingleThread bool
	// HostFwd are qemu user-network forwards (tcp:127.0.0.1:10250-:10250);
	// they need a profile with Network.
	HostFwd []string
	// Shares are more host directories, mounted in the guest at the same
	// absolute path.
	Shares []share
	// Append are more kernel arguments.
	Append  []string
	Command []string
}

type share struct {
	Dir      string
	Writable bool
}

type timings struct {
	Prepare     time.Duration // kernel and initramfs from the cache (or fetched)
	BootToStart time.Duration // qemu launched until the guest starts the command
	StartedAt   time.Time     // when the guest started the command
	Total       time.Duration
}

type result struct {
	Name        string
	ExitCode    int
	ConsoleTail string
	Timings     timings
}

var errTimeout = errors.New("guest timed out")

const (
	guestRunDir   = "/run/ward" // the run share: job, command, outputs
	markerStart   = "ward-vm: start"
	consoleKeep   = 300
	runShareTag   = "ward-run"
	srcShareTag   = "ward-src"
	guestBinDir   = guestRunDir + "/bin"
	guestOutDir   = guestRunDir + "/out"
	serviceDir    = "service" // in the run share: the profile's host service's requests
	forwardPrefix = "WARD_TEST_"
)

// forwardEnv are host variables passed to the guest command because they
// change how a Go test binary behaves; WARD_TEST_* are passed too.
var forwardEnv = []string{"GOTRACEBACK", "GODEBUG", "GOMAXPROCS"}

// kernelTrouble matches console lines that mean the guest kernel broke. A
// test that passed while the kernel oopsed has not passed.
var kernelTrouble = regexp.MustCompile(`Kernel panic|BUG: |Oops: |general protection fault|ward-vm: init: `)

// profileFor is the boot profile cfg asks for. Bench mode boots it from a tmpfs root moved onto
// the initramfs's, as every real system's root is (switch_root), and not from the initramfs
// itself: BPF-LSM tells a task's root by where its mount is, and an initramfs root is the one
// no real process has (docs/bpflsm.md, "Roots").
func profileFor(cfg config) (bootProfile, error) {
	p, err := lookupProfile(cfg.Profile)
	if err != nil {
		return bootProfile{}, err
	}
	if cfg.Bench {
		p.TmpfsRoot = true
	}
	return p, nil
}

// prepared is what a VM boots from.
type prepared struct {
	Kernel    kernel
	Initramfs string
	Profile   bootProfile
	ModRoot   string
}

func prepare(cfg config) (prepared, error) {
	p, err := profileFor(cfg)
	if err != nil {
		return prepared{}, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return prepared{}, err
	}
	modRoot := findModuleRoot(wd)
	cacheDir := cfg.CacheDir
	if cacheDir == "" {
		if modRoot == "" {
			return prepared{}, errors.New("no cache directory: run inside the module or set -cache / WARD_VM_CACHE")
		}
		cacheDir = filepath.Join(modRoot, ".cache", "vm")
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "vmrun: "+format+"\n", args...)
	}
	k, err := ensureKernel(cacheDir, cfg.KernelPackage, logf)
	if err != nil {
		return prepared{}, fmt.Errorf("kernel: %w", err)
	}
	initrd, err := buildInitramfs(cacheDir, k, p)
	if err != nil {
		return prepared{}, fmt.Errorf("initramfs: %w", err)
	}
	return prepared{Kernel: k, Initramfs: initrd, Profile: p, ModRoot: modRoot}, nil
}

func runVM(cfg config) (res result, _ error) {
	start := time.Now()
	res = result{Name: filepath.Base(cfg.Command[0]), ExitCode: exitHarness}
	defer func() { res.Timings.Total = time.Since(start) }()

	prep, err := prepare(cfg)
	if err != nil {
		return res, err
	}
	wd, _ := os.Getwd()
	guestWD := "/tmp"
	if prep.ModRoot != "" {
		if rel, err := filepath.Rel(prep.ModRoot, wd); err == nil && !strings.HasPrefix(rel, "..") {
			guestWD = wd
			if rel != "." {
				res.Name = rel + ":" + res.Name
			}
		}
	}

	runDir, err := os.MkdirTemp("", "ward-vm-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(runDir)
	for _, d := range []string{"bin", "out"} {
		if err := os.Mkdir(filepath.Join(runDir, d), 0o755); err != nil {
			return res, err
		}
	}
	if svc := prep.Profile.Service; svc != nil {
		dir := filepath.Join(runDir, serviceDir)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return res, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			svc(ctx, dir)
			close(stopped)
		}()
		defer func() {
			cancel()
			<-stopped
		}()
	}
	argv := append([]string{}, cfg.Command...)
	if strings.Contains(argv[0], "/") {
		dst := filepath.Join(runDir, "bin", filepath.Base(argv[0]))
		if err := copyFile(argv[0], dst); err != nil {
			return res, fmt.Errorf("copy command into the run share: %w", err)
		}
		argv[0] = guestBinDir + "/" + filepath.Base(argv[0])
	}
	if len(cfg.HostFwd) > 0 && !prep.Profile.Network {
		return res, fmt.Errorf("-hostfwd needs a boot profile with networking (profile %s has none)", prep.Profile.Name)
	}
	job := jobScript(prep.ModRoot, guestWD, cfg.Shares, argv, os.Environ(), cfg.Bench, prep.Profile.Service != nil)
	if err := os.WriteFile(filepath.Join(runDir, "job.sh"), []byte(job), 0o644); err != nil {
		return res, err
	}
	res.Timings.Prepare = time.Since(start)

	qemu := exec.Command("qemu-system-x86_64", qemuArgs(cfg, prep, runDir)...)
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	qemu.Stdout, qemu.Stderr = pipeW, pipeW
	qemu.Stdin = nil
	bootStart := time.Now()
	if err := qemu.Start(); err != nil {
		pipeR.Close()
		pipeW.Close()
		return res, fmt.Errorf("start qemu: %w", err)
	}
	pipeW.Close()

	con := &console{verbose: cfg.Verbose, startedCh: make(chan struct{})}
	conDone := make(chan struct{})
	go func() {
		con.read(pipeR, bootStart)
		close(conDone)
	}()
	waitErr := make(chan error, 1)
	go func() { waitErr <- qemu.Wait() }()

	// Two clocks: booting and running. A busy host can slow a TCG boot
	// several times over, which must not eat into the test's own time.
	var runErr error
	bootTimer := time.NewTimer(cfg.BootTimeout)
	defer bootTimer.Stop()
	var runTimeout <-chan time.Time
	started := con.startedCh
	kill := func(err error) {
		_ = qemu.Process.Kill()
		<-waitErr
		runErr = err
	}
wait:
	for {
		select {
		case err := <-waitErr:
			if err != nil {
				runErr = fmt.Errorf("qemu: %w", err)
			}
			break wait
		case <-started:
			started = nil
			bootTimer.Stop()
			runTimer := time.NewTimer(cfg.Timeout)
			defer runTimer.Stop()
			runTimeout = runTimer.C
		case <-bootTimer.C:
			kill(fmt.Errorf("%w: the guest did not start the command within %s of boot (-boot-timeout, WARD_VM_BOOT_TIMEOUT)", errTimeout, cfg.BootTimeout))
			break wait
		case <-runTimeout:
			kill(fmt.Errorf("%w: the command ran longer than %s (-timeout, WARD_VM_TIMEOUT)", errTimeout, cfg.Timeout))
			break wait
		}
	}
	<-conDone
	pipeR.Close()
	res.Timings.BootToStart = con.startedAfter()
	if res.Timings.BootToStart > 0 {
		res.Timings.StartedAt = bootStart.Add(res.Timings.BootToStart)
	}
	res.ConsoleTail = con.tail()

	// Whatever happened, hand back what the command wrote: a partial log is
	// the best clue to a hang.
	copyOut(filepath.Join(runDir, "out", "stdout"), os.Stdout)
	copyOut(filepath.Join(runDir, "out", "stderr"), os.Stderr)

	if runErr != nil {
		return res, runErr
	}
	if line := con.trouble(); line != "" {
		return res, fmt.Errorf("guest kernel or init failed: %q", line)
	}
	status, err := os.ReadFile(filepath.Join(runDir, "out", "exit"))
	if err != nil {
		return res, errors.New("guest stopped without reporting an exit status")
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(status)))
	if err != nil {
		return res, fmt.Errorf("guest exit status %q: %w", status, err)
	}
	res.ExitCode = code
	return res, nil
}

// qemuArgs is qemu's command line. The default is multi-threaded TCG with
// cfg.CPUs CPUs (the functional suites). Bench mode makes the guest's clock a
// function of the instructions it executes (-icount shift=0: one instruction
// is one nanosecond of guest time; sleep=off: an idle guest does not wait for
// the host's clock), which needs single-threaded TCG and, on these kernels,
// one CPU (with -smp 2 the kernel does not finish booting under icount).
// nokaslr and randomize_va_space=0 (set by the guest's init in bench mode)
// remove the layout randomness that moved figures from one boot to the next.
// The CPU has no RDRAND or RDSEED in bench mode: with them the guest kernel
// seeds its random state (slab freelist order, hash table secrets, the
// processes' AT_RANDOM) from the host's randomness at every boot; without, the
// early seed comes from the instruction-counting clock and repeats.
func qemuArgs(cfg config, prep prepared, runDir string) []string {
	accel, cpus := []string{"-accel", "tcg,thread=multi"}, cfg.CPUs // KVM hangs stock kernels on these hosts
	// A guest kernel that locks up (seen once in CI: both CPUs stuck in the
	// test binary for 26 minutes until the host-side timeout) panics after a
	// minute instead, with every CPU's backtrace on the console: loglevel=5
	// lets the traces (printed at the default level, which quiet hides)
	// through, while the audit records (notice) stay off the serial line.
	// watchdog_thresh=30 (60 s without scheduling) keeps a host that starves
	// a vCPU for a few seconds from passing for a lockup.
	cmdline := []string{"console=ttyS0", "loglevel=5", "panic=-1",
		"softlockup_panic=1", "softlockup_all_cpu_backtrace=1", "watchdog_thresh=30"}
	cpu := "max"
	if cfg.SingleThread {
		accel = []string{"-accel", "tcg,thread=single"}
	}
	if cfg.Bench {
		accel, cpus, cpu = []string{"-accel", "tcg", "-icount", "shift=0,sleep=off"}, 1, "max,-rdrand,-rdseed"
		cmdline = append(cmdline, "nokaslr", "ward.bench=1")
	}
	args := append(accel,
		"-cpu", cpu,
		"-m", strconv.Itoa(cfg.MemoryMB),
		"-smp", strconv.Itoa(cpus),
		"-nographic", "-no-reboot",
		"-kernel", prep.Kernel.Image(),
		"-initrd", prep.Initramfs,
		"-append", strings.Join(append(append(cmdline, prep.Profile.Cmdline...), cfg.Append...), " "),
		"-virtfs", "local,path="+runDir+",mount_tag="+runShareTag+",security_model=none,id="+runShareTag,
	)
	if prep.Profile.Network {
		netdev := "user,id=net0"
		for _, f := range cfg.HostFwd {
			netdev += ",hostfwd=" + f
		}
		args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile=")
	} else {
		args = append(args, "-net", "none")
	}
	for i, sh := range cfg.Shares {
		tag := shareTag(i)
		arg := "local,path=" + sh.Dir + ",mount_tag=" + tag + ",security_model=none,id=" + tag
		if !sh.Writable {
			arg += ",readonly=on"
		}
		args = append(args, "-virtfs", arg)
	}
	if prep.ModRoot != "" {
		args = append(args, "-virtfs", "local,path="+prep.ModRoot+",mount_tag="+srcShareTag+",security_model=none,readonly=on,id="+srcShareTag)
	}
	return args
}

// guestRAMBinDir holds, in bench mode, a copy of the command in the guest's
// memory.
const guestRAMBinDir = "/ward-bin"

// jobScript is the guest's part that is specific to this run. Every value
// from the host is quoted, so paths and arguments reach the command as they
// were given.
//
// In bench mode (ramCopy) a command from the run share is copied into the
// guest's memory and run from there. A guest clock that counts instructions
// (sleep=off) jumps to its next timer while the guest waits for the host, so
// a wait for 9p I/O on a busy host is counted as guest time. A helper exec'd
// from the share (a test re-running itself) is the likely cause of a daemon
// benchmark whose 2-minute guest timeout fired on a host running six VMs; the
// same benchmark passed from memory with three VMs and a CI run beside it.
func jobScript(modRoot, wd string, shares []share, argv, env []string, ramCopy, service bool) string {
	var b strings.Builder
	if ramCopy && strings.HasPrefix(argv[0], guestBinDir+"/") {
		ram := guestRAMBinDir + "/" + filepath.Base(argv[0])
		fmt.Fprintf(&b, "mkdir -p %s && cp %s %s || die 'copy the command into memory'\n",
			guestRAMBinDir, shellQuote(argv[0]), shellQuote(ram))
		argv = append([]string{ram}, argv[1:]...)
	}
	if modRoot != "" {
		q := shellQuote(modRoot)
		fmt.Fprintf(&b, "mkdir -p %s && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro %s %s || die 'mount the source share'\n", q, srcShareTag, q)
	}
	for i, sh := range shares {
		q := shellQuote(sh.Dir)
		opt := "trans=virtio,version=9p2000.L,msize=512000"
		if !sh.Writable {
			opt += ",ro"
		}
		fmt.Fprintf(&b, "mkdir -p %s && mount -t 9p -o %s %s %s || die %s\n", q, opt, shareTag(i), q, shellQuote("mount the share "+sh.Dir))
	}
	fmt.Fprintf(&b, "cd %s || die 'cd to the working directory'\n", shellQuote(wd))
	b.WriteString("export WARD_VM=1\n")
	if service {
		fmt.Fprintf(&b, "export WARD_VM_SERVICE=%s/%s\n", guestRunDir, serviceDir)
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, forwardPrefix) || contains(forwardEnv, k) {
			fmt.Fprintf(&b, "export %s\n", shellQuote(kv))
		}
	}
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	fmt.Fprintf(&b, "%s </dev/null >%s/stdout 2>%s/stderr\n", strings.Join(q, " "), guestOutDir, guestOutDir)
	// Write the status under another name and rename, so the host never reads
	// a half-written number.
	fmt.Fprintf(&b, "echo $? >%s/exit.tmp && mv %s/exit.tmp %s/exit\n", guestOutDir, guestOutDir, guestOutDir)
	return b.String()
}

// shareTag names the i-th -share directory's 9p mount tag.
func shareTag(i int) string { return "ward-share" + strconv.Itoa(i) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// console keeps the tail of the guest's serial console and notes when the
// guest started the command.
type console struct {
	verbose   bool
	startedCh chan struct{} // closed when the start marker is seen

	mu        sync.Mutex
	lines     []string
	started   time.Duration
	troubleAt string
}

func (c *console) read(r io.Reader, boot time.Time) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			c.mu.Lock()
			if strings.Contains(line, markerStart) && c.started == 0 {
				c.started = time.Since(boot)
				if c.startedCh != nil {
					close(c.startedCh)
				}
			}
			if c.troubleAt == "" && kernelTrouble.MatchString(line) {
				c.troubleAt = line
			}
			c.lines = append(c.lines, line)
			if len(c.lines) > consoleKeep {
				c.lines = c.lines[len(c.lines)-consoleKeep:]
			}
			c.mu.Unlock()
			if c.verbose {
				fmt.Fprintf(os.Stderr, "guest: %s\n", line)
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *console) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func (c *console) startedAfter() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started
}

func (c *console) trouble() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.troubleAt
}

func copyOut(path string, w io.Writer) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(w, f)
}

func copyFile(src, dst string) error {
	// A hard link is free; go test's binaries usually live on the same
	// file system as the temporary directory.
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func findModuleRoot(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
