package apparmor

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// exemptExecutables lists what must stay unconfined when the host profile attaches to every
// program: Ward's own binary (a restart by systemd would otherwise put Ward under the host
// policy), the apparmor_parser it runs, and the node's container runtime (runtimeExecutables).
// Paths are resolved, because the kernel matches an attachment against the executable's real
// path.
func exemptExecutables() []string {
	var out []string
	if p, err := os.Executable(); err == nil {
		out = append(out, p)
	}
	if p, err := exec.LookPath("apparmor_parser"); err == nil {
		out = append(out, p)
	}
	for i, p := range out {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			out[i] = r
		}
	}
	out = append(out, runtimeExecutables(hostRoot)...)
	slices.Sort(out)
	return slices.Compact(out)
}

// hostRoot is the host's root directory as Ward sees it: the root of pid 1, which is the host's
// init both on the host and in a pod with hostPID (deploy/daemonset.yaml).
const hostRoot = "/proc/1/root"

// runtimeNames are the programs of container runtimes and the kubelet. They stay unconfined
// under the host profile's attachment: a container's processes start from them, and must enter
// the container's own profile (or none), never the host's. A confined process that runs one of
// them keeps its profile: attachments apply only to programs that unconfined processes start.
var runtimeNames = []string{
	"containerd", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2",
	"runc", "crun", "conmon", "crio", "kubelet", "dockerd", "docker-init",
}

// runtimeDirs are where the runtimeNames are installed.
var runtimeDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// runtimeExecutables lists the runtimeNames installed on the host whose root is root, by their
// real paths on the host (a symbolic link is followed one step, inside root).
func runtimeExecutables(root string) []string {
	var out []string
	for _, dir := range runtimeDirs {
		for _, name := range runtimeNames {
			p := filepath.Join(dir, name)
			fi, err := os.Lstat(filepath.Join(root, p))
			if err != nil {
				continue
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				target, err := os.Readlink(filepath.Join(root, p))
				if err != nil {
					continue
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(dir, target)
				}
				if fi, err = os.Stat(filepath.Join(root, target)); err != nil {
					continue
				}
				p = filepath.Clean(target)
			}
			if fi.Mode().IsRegular() {
				out = append(out, p)
			}
		}
	}
	return out
}

// NameCount is how many processes run one program.
type NameCount struct {
	Name  string
	Count int
}

// Unconfined lists the user-space processes under procRoot that run unconfined, except pid
// self: with the host profile attached to every program, these are the processes that predate
// it. They are counted by name, most frequent first. Kernel threads (an empty command line) and
// processes that exit while being read are left out.
func Unconfined(procRoot string, self int) (total int, byName []NameCount, err error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, nil, fmt.Errorf("list processes: %w", err)
	}
	counts := map[string]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err != nil || len(cmdline) == 0 {
			continue
		}
		label, err := os.ReadFile(filepath.Join(dir, "attr", "apparmor", "current"))
		if err != nil {
			// Kernels before 5.8 have only the shared attribute file.
			if label, err = os.ReadFile(filepath.Join(dir, "attr", "current")); err != nil {
				continue
			}
		}
		if string(bytes.TrimRight(label, "\n\x00")) != "unconfined" {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			continue
		}
		total++
		counts[strings.TrimSpace(string(comm))]++
	}
	for n, c := range counts {
		byName = append(byName, NameCount{Name: n, Count: c})
	}
	slices.SortFunc(byName, func(a, b NameCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return total, byName, nil
}

// reportUnreached says, once the host profile is attached, which processes it cannot reach:
// AppArmor never moves a running process into a profile, so what started before Ward stays
// unconfined (its children do enter the profile).
func (b *Backend) reportUnreached() {
	total, byName, err := Unconfined(b.procRoot, os.Getpid())
	if err != nil {
		b.log.Warn("cannot list the host processes that predate the host profile", "error", err)
		return
	}
	if total == 0 {
		b.log.Info("every host process runs under an AppArmor profile")
		return
	}
	var top []string
	for _, nc := range byName[:min(len(byName), 5)] {
		top = append(top, fmt.Sprintf("%s (%d)", nc.Name, nc.Count))
	}
	b.log.Warn("host processes started before the host profile run unconfined: host policies do not reach them, only the programs they start",
		"count", total, "top", strings.Join(top, ", "),
		"fix", "restart them (services, login sessions), or use BPF-LSM (--lsm bpf), which covers running processes")
}
