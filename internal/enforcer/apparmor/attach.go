package apparmor

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// exemptExecutables lists what ExemptProfile keeps out of the host profile when that attaches to
// every program: Ward's own binary (a restart by systemd would otherwise put Ward under the host
// policy) and the apparmor_parser it runs. Paths are resolved, because the kernel matches an
// attachment against the executable's real path. The node's container runtime is not exempted
// this way but left out of the attachment (runtimeExecutables, AttachExcept).
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
	slices.Sort(out)
	return slices.Compact(out)
}

// runtimeNames are the programs of container runtimes and the kubelet. The host profile's
// attachment leaves them out, so that they run unconfined: a container's processes start from
// them, and must enter the container's own profile (or none), never the host's. Truly
// unconfined, not in a profile of Ward's with flags=(unconfined): the runtime's default profiles
// (containerd's cri-containerd.apparmor.d, docker-default) receive signals only from
// peer=unconfined, so a runtime in any other profile can no longer stop their containers. A
// confined process that runs one of them keeps its profile: attachments apply only to programs
// that unconfined processes start.
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

// processLabel reads the AppArmor label of the process whose /proc directory is dir, without
// its mode ("ward-host//usr/bin/cat (enforce)" gives "ward-host//usr/bin/cat"); ok is false
// when it cannot be read (the process exited).
func processLabel(dir string) (label string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "attr", "apparmor", "current"))
	if err != nil {
		// Kernels before 5.8 have only the shared attribute file.
		if b, err = os.ReadFile(filepath.Join(dir, "attr", "current")); err != nil {
			return "", false
		}
	}
	label, _, _ = strings.Cut(string(bytes.TrimRight(b, "\n\x00")), " (")
	return label, true
}

// labelsInUse is the set of AppArmor labels the processes under procRoot run in.
func labelsInUse(procRoot string) (map[string]bool, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	in := map[string]bool{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if label, ok := processLabel(filepath.Join(procRoot, e.Name())); ok {
			in[label] = true
		}
	}
	return in, nil
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
		if label, ok := processLabel(dir); !ok || label != "unconfined" {
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
// unconfined (its children do enter the profile); and an exec enters one profile, so the
// programs another profile attaches to follow that one.
func (b *Backend) reportUnreached() {
	if _, others := b.loadedProfiles(); len(others) > 0 {
		b.log.Warn("other AppArmor profiles are loaded: the programs they confine follow them, and host policies do not reach those programs",
			"count", len(others), "profiles", strings.Join(others[:min(len(others), 10)], ", "),
			"fix", "use BPF-LSM (--lsm bpf), which applies host policies to every process, or add the host policies' rules to those profiles")
	}
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

// otherProfiles lists the top-level profiles of the kernel's profile list that are not Ward's,
// sorted: a distribution's, an administrator's. A container runtime's default profile is left
// out: the runtime puts containers in it by name, and it attaches to no host program.
func otherProfiles(labels []string) []string {
	var out []string
	for _, l := range labels {
		name, child := SplitLabel(l)
		if child != "" || strings.HasPrefix(name, "ward-") || runtimeDefaultProfile(name) {
			continue
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// runtimeDefaultProfile says whether name is a container runtime's default profile: containerd's,
// Docker's, CRI-O's, or Podman's (containers/common names it with its version).
func runtimeDefaultProfile(name string) bool {
	switch name {
	case "cri-containerd.apparmor.d", "docker-default", "crio-default":
		return true
	}
	return strings.HasPrefix(name, "containers-default-")
}

// attachAllExcept is an attachment matching every path but the given ones. AppArmor has no
// negative attachment, so the complement is spelled out over the paths' trie: after each prefix
// of an excluded path come a byte that continues no excluded path and then anything, the end of
// the path when no excluded path ends there, or the next byte of an excluded path and the same
// again one level down.
//
// Each "then anything" ends in its own marker, a NUL, "m" and a number, which no path the kernel
// matches can reach (names end at their NUL). Without them the parser's minimised DFA has one
// state for every "anything", numbered when the shallowest prefix first reaches it. The kernel
// ranks attachments by the length of their left match, which it counts until the DFA moves to a
// state numbered no higher than the one before (taken for a loop, 6.1 leftmatch_fb); a path
// leaving the trie deeper down moved to that low state, not seen before, and the count wrapped
// below zero. This attachment then beat every other profile's for the programs beside an
// excluded one (/usr/bin/...), or, against another such pattern, neither attached and the
// program ran unconfined. With a marker each tail is a state of its own, numbered after the
// prefix it leaves, and the count is the prefix's length plus one: an exact attachment is
// longer (TestAttachmentRanks).
func attachAllExcept(paths []string) (string, error) {
	root := &trieNode{}
	for _, p := range paths {
		if err := checkPrintable(p); err != nil {
			return "", fmt.Errorf("attach: %w", err)
		}
		if !strings.HasPrefix(p, "/") || len(p) < 2 {
			return "", fmt.Errorf("attach: %q is not an absolute path to a file", p)
		}
		n := root
		for i := 1; i < len(p); i++ {
			n = n.child(p[i])
		}
		n.end = true
	}
	if len(root.next) == 0 {
		return "/**", nil
	}
	var tails int
	return quote("/" + root.complement(&tails)), nil
}

type trieNode struct {
	next map[byte]*trieNode
	end  bool
}

func (n *trieNode) child(c byte) *trieNode {
	if n.next == nil {
		n.next = map[byte]*trieNode{}
	}
	if n.next[c] == nil {
		n.next[c] = &trieNode{}
	}
	return n.next[c]
}

// complement is the pattern of every suffix that, after this node's prefix, makes a path that is
// not excluded. A chain of nodes with one continuation each is written flat, one alternative per
// byte, and only a node where excluded paths part opens a nested group: the parser refuses deep
// nesting of {}.
//
// tails numbers the "then anything" tails, each given its marker (see attachAllExcept).
func (n *trieNode) complement(tails *int) string {
	anything := func(head string) string {
		*tails++
		return fmt.Sprintf(`%s**{,\x00m%d}`, head, *tails)
	}
	var alts []string
	prefix := ""
	for cur := n; ; {
		keys := slices.Sorted(maps.Keys(cur.next))
		if len(keys) == 0 {
			// An excluded path ends here and none continues it: anything longer matches.
			// An executable is a file, so what follows never starts with a slash.
			alts = append(alts, anything(prefix+"?"))
			break
		}
		var class strings.Builder
		for _, c := range keys {
			if c == '-' || strings.IndexByte(aareSpecial, c) >= 0 {
				class.WriteByte('\\')
			}
			class.WriteByte(c)
		}
		alts = append(alts, anything(prefix+"[^"+class.String()+"]"))
		if !cur.end {
			alts = append(alts, prefix)
		}
		if len(keys) == 1 {
			prefix += escapeLiteral(string(keys[0]))
			cur = cur.next[keys[0]]
			continue
		}
		for _, c := range keys {
			alts = append(alts, prefix+escapeLiteral(string(c))+cur.next[c].complement(tails))
		}
		break
	}
	if len(alts) == 1 {
		// The parser refuses a group of one ("{?**}"): an excluded path whose siblings, all
		// excluded too, end one byte after it (containerd-shim-runc-v1 and -v2).
		return alts[0]
	}
	return "{" + strings.Join(alts, ",") + "}"
}
