package apparmor

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// symlinked warns about each path of the host workload's rules (exact paths and directories of
// file and process rules, and every fromSource executable) that leads through a symlink on the
// host, such as /bin/bash where /bin is a link to usr/bin. AppArmor matches the path the kernel
// resolved (/usr/bin/bash), so a rule or a child profile named by the other path applies to
// nothing, with no error from the parser or the kernel. The check runs at every apply, on the
// host's files as root (the host's root, /proc/1/root, when Ward runs in a pod) sees them.
// Container workloads are skipped: their paths are inside the container's root, which may not
// exist yet when their profile is loaded.
func symlinked(set *rules.Set, root string) []enforcer.Warning {
	if set.Workload.Kind != workload.KindHost {
		return nil
	}
	var ws []enforcer.Warning
	seen := map[string]bool{}
	warn := func(r *rules.Rule, field, p string) {
		if seen[field] {
			return
		}
		real, ok := resolvedPath(root, p)
		if !ok || real == strings.TrimSuffix(filepath.Clean(p), "/") {
			return
		}
		seen[field] = true
		if strings.HasSuffix(p, "/") {
			real += "/"
		}
		ws = append(ws, enforcer.Warning{
			Backend: enforcer.AppArmor, Workload: set.Workload.ID(), Policy: r.PolicyName, PolicyKind: r.PolicyKind,
			Namespace: r.Namespace, Rule: field, RuleID: r.ID, What: "symlink",
			Message: fmt.Sprintf("%s leads through a symlink to %s: AppArmor matches the path the kernel resolves, so this names nothing it sees and is not enforced; "+
				"write %s in the policy (BPF-LSM resolves symlinks itself)", p, real, real),
		})
	}
	for i := range set.Rules {
		r := &set.Rules[i]
		if (r.Operation == policy.OpFile || r.Operation == policy.OpProcess) &&
			(r.Match == policy.MatchPath || r.Match == policy.MatchDirectory) {
			warn(r, r.Field, r.Value)
		}
		for j, fs := range r.FromSource {
			if fs.Path != "" {
				warn(r, fmt.Sprintf("%s.fromSource[%d]", r.Field, j), fs.Path)
			}
		}
	}
	return ws
}

// resolvedPath is p with its symlinks resolved below root. A path that does not exist yet (a
// file a rule keeps from being created) is resolved as far as it exists: its existing ancestor,
// then the rest as written. ok is false when nothing of it can be resolved.
func resolvedPath(root, p string) (string, bool) {
	p = filepath.Clean(p)
	rest := ""
	for {
		real, err := enforcer.EvalSymlinksIn(root, p)
		if err == nil {
			return filepath.Join(real, rest), true
		}
		if !errors.Is(err, fs.ErrNotExist) || p == "/" {
			return "", false
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = filepath.Dir(p)
	}
}
