package apparmor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
)

// Limitations implements enforcer.Limiter: the ways around a rule that AppArmor cannot close
// (docs/apparmor.md, "What stays open"), said at start and by ward probe.
func (b *Backend) Limitations() []string {
	return []string{
		"rules name paths: a hard link made before the profile was loaded, to a protected file or a blocked program, reaches it by its other name (new hard links are denied; each apply warns, naming the rule, about a blocked file or program that has other names)",
		"a detached mount (open_tree with OPEN_TREE_CLONE) of a file system's root names its files from that root, and one attached elsewhere with move_mount names them under the new path; AppArmor (kernel 6.1) mediates neither, and the host profile grants mount: both need CAP_SYS_ADMIN, so block capability sys_admin to close them",
		"a blocked program used as a script's #! interpreter runs: AppArmor checks only the script at exec and passes every open made for an exec (the interpreter's) unchecked, with read and map permission cached for it; no profile rule can reach it (BPF-LSM checks it)",
		"a fromSource program run through a hard link made before the profile was loaded runs in the workload's profile, without its fromSource rules",
		"a fromSource program started in the workload's profile itself (change_onexec, aa-exec -p) runs in that profile, not its child profile, so the rules limited to it do not apply to it: a container's entrypoint that is a fromSource program is started so by the runtime (programs it starts from inside the profile enter their child, and on the host a program started by a process outside Ward's profiles enters its entry profile; BPF-LSM applies the rules either way)",
		"a program that another AppArmor profile (a distribution's, an administrator's) confines follows that profile, not the host policies: an exec enters one profile, and the other profile's attachment is more specific than the host profile's; so does a process that started in such a profile (ward run warns, naming the profiles loaded; BPF-LSM applies host policies to every process). A host policy's fromSource program is taken from another profile's exact-path attachment by its entry profile, but not from a profile named by its path (/usr/sbin/cupsd { }), which the kernel gives an exec first (a warning on the rule says so)",
		"a host policy's fromSource program whose path holds a character other than letters, digits and /._+- and that another AppArmor profile attaches to by exactly its path runs unconfined when a process outside any profile starts it, on kernels whose AppArmor counts an attachment's match without 6.1's wraparound (Debian's 6.12): its entry profile cannot be named by that path, and its attachment and the other one are equally long, so the kernel attaches neither and the rules limited to that program do not apply to it (other programs' entries are named by their paths and win; BPF-LSM applies the rules either way)",
		"a program that another AppArmor profile (a distribution's) attaches to by exactly its path runs unconfined when a process outside any profile starts it, if that path is one the host profile leaves out (a container runtime's program, Ward's) with one byte more (/usr/sbin/runcx), or the start of one (/usr/bin/docker beside /usr/bin/dockerd): the kernel finds the two attachments equally long and attaches neither (other paths keep their own profile; a profile named by the path, without an attachment, wins)",
		"a container policy's path or fromSource program named through a symlink of the container's image (/bin/bash where the image's /bin links to usr/bin) names nothing AppArmor sees, which matches the path the kernel resolved: write the resolved path (/usr/bin/bash); host policies are written where their symlinks lead, at every apply (BPF-LSM resolves both, in the workload's root)",
		"a file opened by its handle (open_by_handle_at) after its dentry left the cache is not linked below its directory: the profile's attach_disconnected names it from its file system's root, so rules naming its path do not apply to that open (its later opens by path do); it needs CAP_DAC_READ_SEARCH, so block capability dac_read_search to close it (BPF-LSM denies such an open where a Block rule could apply)",
	}
}

// MaxChildren is how many child profiles one workload's profile can have under Debian 12's
// apparmor_parser (3.0.8). Every child profile names as exec targets each child and the
// workload's profile, and that parser holds 12 targets per profile; it refuses more with
// transitionsRefused (TestSourceLimit runs the real parser either side of it). fromSource
// executables that the same rules are limited to share a child (groupSources).
const MaxChildren = 11

// sourceRef is a fromSource executable and where it is first named: fromSource[index] of rule.
type sourceRef struct {
	path        string
	rule, index int
}

// field is the field path of the reference, such as spec.file.matchPaths[0].fromSource[1].
func (s sourceRef) field(rule func(i int) *policy.Rule) string {
	return fmt.Sprintf("%s.fromSource[%d]", rule(s.rule).Field, s.index)
}

// sourceRefs lists the fromSource executables of n rules (rule yields rule i) that get a child
// profile, each once, in the order the rules name them: syscall rules are left out, as no
// profile holds them.
func sourceRefs(n int, rule func(i int) *policy.Rule) []sourceRef {
	var refs []sourceRef
	seen := map[string]bool{}
	for i := range n {
		ru := rule(i)
		if ru.Operation == policy.OpSyscall {
			continue
		}
		for j, fs := range ru.FromSource {
			if fs.Path == "" || seen[fs.Path] {
				continue
			}
			seen[fs.Path] = true
			refs = append(refs, sourceRef{path: fs.Path, rule: i, index: j})
		}
	}
	return refs
}

// groupSources splits sources into the sets that the same rules are limited to, each set in
// the order of sources, the sets in the order of their first: the sources of a set would have
// children of the same text, so they share one. rules yields rule i of n.
func groupSources(sources []string, n int, rule func(i int) *policy.Rule) [][]string {
	var groups [][]string
	index := map[string]int{} // the indices of the rules limited to a source -> its group
	for _, src := range sources {
		var key strings.Builder
		for i := range n {
			ru := rule(i)
			if ru.Operation != policy.OpSyscall && slices.ContainsFunc(ru.FromSource, func(fs policy.FromSource) bool { return fs.Path == src }) {
				fmt.Fprintf(&key, "%d,", i)
			}
		}
		g, ok := index[key.String()]
		if !ok {
			g = len(groups)
			index[key.String()] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], src)
	}
	return groups
}

// CheckSources warns when policy p alone needs more child profiles than one workload's profile
// can have (MaxChildren): the profile of every workload it selects would be refused, and the
// workload would keep its previous rules. Rules of other policies only split children further,
// so this never warns wrongly; policies that together need too many for a workload are found
// when its profile is loaded (ParseError).
func CheckSources(p *policy.Policy) []enforcer.Warning {
	rule := func(i int) *policy.Rule { return &p.Rules[i] }
	var sources []string
	field := map[string]string{}
	for _, ref := range sourceRefs(len(p.Rules), rule) {
		field[ref.path] = ref.field(rule)
		sources = append(sources, ref.path)
	}
	groups := groupSources(sources, len(p.Rules), rule)
	if len(groups) <= MaxChildren {
		return nil
	}
	src := groups[MaxChildren][0]
	return []enforcer.Warning{{Backend: enforcer.AppArmor, Policy: p.Name, PolicyKind: p.Kind,
		Namespace: p.Namespace, RuleID: -1, Rule: field[src],
		Message: fmt.Sprintf("%s makes %d fromSource executables with rules of their own in this policy "+
			"(executables the same rules are limited to share one AppArmor child profile): a workload's "+
			"AppArmor profile holds at most %d child profiles with Debian 12's apparmor_parser (3.0.8), so "+
			"the profile of every workload the policy selects is refused and keeps its previous rules; "+
			"BPF-LSM has no such limit", src, len(groups), MaxChildren)}}
}

// transitionsRefused is the parser's message for a profile with more exec targets than it holds.
const transitionsRefused = "too many specified profile transitions"
