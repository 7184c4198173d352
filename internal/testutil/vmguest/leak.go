package vmguest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Main runs a VM test package and fails it if it leaves BPF objects
// (programs, maps, links, BTF) open, as cilium/ebpf's testmain does: a
// leaked link keeps a program attached and deciding for every later test in
// the same kernel. Use it as
//
//	func TestMain(m *testing.M) { vmguest.Main(m) }
func Main(m *testing.M) {
	os.Exit(runChecked(m.Run))
}

func runChecked(run func() int) int {
	before, err := bpfFDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: list BPF file descriptors: %v\n", err)
		return 1
	}
	code := run()
	after, err := bpfFDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: list BPF file descriptors: %v\n", err)
		return 1
	}
	if leaked := newFDs(before, after); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left BPF objects open: %s\n", strings.Join(leaked, ", "))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// bpfFDs maps this process's open descriptors for BPF objects to what they
// are (anon_inode:bpf-prog, anon_inode:bpf-map, anon_inode:bpf_link, ...).
func bpfFDs() (map[string]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := map[string]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // closed while listing, e.g. the directory's own fd
		}
		if isBPFObject(target) {
			fds[e.Name()] = target
		}
	}
	return fds, nil
}

func isBPFObject(target string) bool {
	return strings.HasPrefix(target, "anon_inode:bpf") || target == "anon_inode:btf"
}

// newFDs lists, for each kind of object of which more are open after than
// before, the descriptors of that kind that were not open before. A kind
// whose count did not grow is no leak, even under other numbers: a backend
// that detaches and attaches its programs again (the benchmark's baseline)
// gets its links back on whatever descriptors are free at that moment.
func newFDs(before, after map[string]string) []string {
	grown := map[string]int{}
	for _, target := range after {
		grown[target]++
	}
	for _, target := range before {
		grown[target]--
	}
	var out []string
	for fd, target := range after {
		if grown[target] > 0 && before[fd] != target {
			out = append(out, fmt.Sprintf("fd %s (%s)", fd, target))
		}
	}
	sort.Strings(out)
	return out
}
