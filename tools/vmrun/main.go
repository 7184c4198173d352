// Command vmrun runs a command, typically a Go test binary, inside a qemu VM
// booted from Debian's 6.1 kernel with a chosen set of LSMs, and returns the
// command's exit status, stdout and stderr unchanged. It is meant for
// `go test -exec vmrun`; see docs/vm-harness.md.
//
//	vmrun [flags] [--] command [args...]
//
// A command given as a path is a host file copied into the guest (a static
// binary, such as a Go test built with CGO_ENABLED=0). A bare name is looked
// up in the guest's PATH (busybox applets, apparmor_parser, aa-exec).
//
// Exit status: the command's own, or 124 when the VM timed out, or 125 when
// the harness or the guest failed (no VM, kernel panic, init error). In the
// latter two cases the tail of the guest console is printed to stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	exitTimeout = 124
	exitHarness = 125
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("vmrun", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.Profile, "profile", envOr("WARD_VM_BOOT_PROFILE", "apparmor"), "boot profile (kernel command line and LSMs)")
	fs.StringVar(&cfg.CacheDir, "cache", os.Getenv("WARD_VM_CACHE"), "cache directory for the kernel and initramfs (default: <module root>/.cache/vm)")
	fs.StringVar(&cfg.KernelPackage, "kernel", os.Getenv("WARD_VM_KERNEL"), "Debian kernel package, or a kernel line (6.1, 6.12) for its newest package apt serves (default: 6.1)")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "kill the VM when the command has run this long (default: the test's -test.timeout plus 1m, else 15m; env WARD_VM_TIMEOUT)")
	fs.DurationVar(&cfg.BootTimeout, "boot-timeout", 0, "kill the VM when the guest has not started the command this long after boot (default 5m; env WARD_VM_BOOT_TIMEOUT)")
	fs.BoolVar(&cfg.Verbose, "v", os.Getenv("WARD_VM_VERBOSE") != "", "stream the guest console to stderr")
	fs.StringVar(&cfg.TimingsFile, "timings", os.Getenv("WARD_VM_TIMINGS"), "append one line of timings per run to this file")
	fs.IntVar(&cfg.MemoryMB, "m", 1024, "guest memory in MiB")
	fs.IntVar(&cfg.CPUs, "smp", 2, "guest CPUs (bench mode: always 1)")
	fs.BoolVar(&cfg.SingleThread, "tcg-single", os.Getenv("WARD_VM_TCG_SINGLE") != "", "run every guest CPU on one host thread (single-threaded TCG): slower, but a guest that live-patches kernel text while another CPU runs it (BPF attach, static keys) cannot lock up, which multi-threaded TCG can (env WARD_VM_TCG_SINGLE)")
	fs.BoolVar(&cfg.Bench, "bench", os.Getenv("WARD_VM_BENCH") != "", "boot for benchmarks: one CPU, guest clock counting instructions (-icount), no address randomisation (env WARD_VM_BENCH)")
	fs.Func("hostfwd", "forward a host port into the guest, as qemu's hostfwd (tcp:127.0.0.1:10250-:10250); repeatable; needs a profile with networking", func(v string) error {
		cfg.HostFwd = append(cfg.HostFwd, v)
		return nil
	})
	fs.Func("share", "share a host directory at the same path in the guest, read-only, or writable as DIR:rw; repeatable", func(v string) error {
		dir, rw := strings.CutSuffix(v, ":rw")
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("-share %s: not an absolute path", v)
		}
		cfg.Shares = append(cfg.Shares, share{Dir: filepath.Clean(dir), Writable: rw})
		return nil
	})
	fs.Func("append", "more kernel arguments, after the profile's (loglevel=7 to see the boot); repeatable", func(v string) error {
		cfg.Append = append(cfg.Append, strings.Fields(v)...)
		return nil
	})
	prepareOnly := fs.Bool("prepare", false, "fetch the kernel and build the initramfs, print the kernel package name and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vmrun [flags] [--] command [args...]")
		fs.PrintDefaults()
	}
	// go test -exec passes the test binary first and its -test.* flags after
	// it, so flag parsing must stop at the first non-flag argument, which the
	// flag package does.
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Command = fs.Args()
	if *prepareOnly {
		start := time.Now()
		prep, err := prepare(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vmrun: %v\n", err)
			return exitHarness
		}
		fmt.Fprintf(os.Stderr, "vmrun: %s %s, initramfs %s (%.1fs)\n", prep.Kernel.Package, prep.Kernel.Version, prep.Initramfs, time.Since(start).Seconds())
		fmt.Println(prep.Kernel.Package)
		return 0
	}
	if len(cfg.Command) == 0 {
		fs.Usage()
		return 2
	}
	for _, d := range []struct {
		v   *time.Duration
		env string
		def time.Duration
	}{
		{&cfg.Timeout, "WARD_VM_TIMEOUT", defaultTimeout(cfg.Command[1:])},
		{&cfg.BootTimeout, "WARD_VM_BOOT_TIMEOUT", 5 * time.Minute},
	} {
		if *d.v != 0 {
			continue
		}
		*d.v = d.def
		if v := os.Getenv(d.env); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil {
				fmt.Fprintf(os.Stderr, "vmrun: %s: %v\n", d.env, err)
				return 2
			}
			*d.v = t
		}
	}

	res, err := runVM(cfg)
	if err != nil {
		res.ExitCode = exitHarness
		if errors.Is(err, errTimeout) {
			res.ExitCode = exitTimeout
		}
	}
	if res.Timings.Total > 0 && cfg.TimingsFile != "" {
		if werr := appendTimings(cfg.TimingsFile, cfg, res); werr != nil {
			fmt.Fprintf(os.Stderr, "vmrun: %v\n", werr)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmrun: %v\n", err)
		if res.ConsoleTail != "" {
			fmt.Fprintf(os.Stderr, "vmrun: guest console (last lines):\n%s\n", res.ConsoleTail)
		}
	}
	return res.ExitCode
}

// defaultTimeout gives the command the test's own timeout and a minute
// more, so a hung test is reported by the test binary (with goroutine dumps)
// before the harness kills the VM.
func defaultTimeout(args []string) time.Duration {
	for _, a := range args {
		for _, p := range []string{"-test.timeout=", "--test.timeout="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				if d, err := time.ParseDuration(v); err == nil && d > 0 {
					return d + time.Minute
				}
			}
		}
	}
	return 15 * time.Minute
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func appendTimings(path string, cfg config, res result) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("write timings: %w", err)
	}
	defer f.Close()
	boot, startedAt := "-", "-"
	if res.Timings.BootToStart > 0 {
		boot = fmt.Sprintf("%.1fs", res.Timings.BootToStart.Seconds())
		startedAt = fmt.Sprintf("%.3f", float64(res.Timings.StartedAt.UnixNano())/1e9)
	}
	// One line per VM, tab-separated key=value fields after the name;
	// scripts/vm/test-vm.sh summarises them.
	kernel := strings.TrimPrefix(cfg.KernelPackage, "linux-image-")
	if kernel == "" {
		kernel = defaultKernelLine
	}
	_, err = fmt.Fprintf(f, "%s\tprofile=%s\tkernel=%s\tprepare=%.1fs\tboot=%s\ttotal=%.1fs\texit=%d\tstarted_unix=%s\n",
		res.Name, cfg.Profile, kernel, res.Timings.Prepare.Seconds(), boot, res.Timings.Total.Seconds(), res.ExitCode, startedAt)
	return err
}
