package apparmor

import (
	"fmt"

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
		"a file opened by its handle (open_by_handle_at) after its dentry left the cache is not linked below its directory: the profile's attach_disconnected names it from its file system's root, so rules naming its path do not apply to that open (its later opens by path do); it needs CAP_DAC_READ_SEARCH, so block capability dac_read_search to close it (BPF-LSM denies such an open where a Block rule could apply)",
	}
}

// MaxSources is how many fromSource executables one workload's profile can have under Debian
// 12's apparmor_parser (3.0.8). Every child profile names as exec targets each executable's
// child and the workload's profile, and that parser holds 12 targets per profile; it refuses
// more with transitionsRefused (TestSourceLimit runs the real parser either side of it).
const MaxSources = 11

// CheckSources warns when policy p alone names more fromSource executables than one workload's
// profile can have (MaxSources): the profile of every workload it selects would be refused, and
// the workload would keep its previous rules. Policies that together name too many for a
// workload are found when its profile is loaded (ParseError).
func CheckSources(p *policy.Policy) []enforcer.Warning {
	seen := map[string]bool{}
	for _, ru := range p.Rules {
		if ru.Operation == policy.OpSyscall {
			continue
		}
		for j, fs := range ru.FromSource {
			if fs.Path == "" || seen[fs.Path] {
				continue
			}
			seen[fs.Path] = true
			if len(seen) == MaxSources+1 {
				return []enforcer.Warning{{Backend: enforcer.AppArmor, Policy: p.Name, PolicyKind: p.Kind,
					Namespace: p.Namespace, RuleID: -1, Rule: fmt.Sprintf("%s.fromSource[%d]", ru.Field, j),
					Message: fmt.Sprintf("%s is fromSource executable %d of this policy: a workload's AppArmor "+
						"profile holds at most %d with Debian 12's apparmor_parser (3.0.8), so the profile of "+
						"every workload the policy selects is refused and keeps its previous rules; BPF-LSM "+
						"has no such limit", fs.Path, MaxSources+1, MaxSources)}}
			}
		}
	}
	return nil
}

// transitionsRefused is the parser's message for a profile with more exec targets than it holds.
const transitionsRefused = "too many specified profile transitions"
