package apparmor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// hardLinked warns about each exact-path Block rule of the host workload whose file already has
// other names (st_nlink > 1). AppArmor rules name paths and the kernel gives AppArmor no inode to
// compare, so a hard link made before the profile was loaded reaches the file unblocked (the
// profile denies new links). The check runs at every apply, so a name that appears while Ward
// runs is reported too. The other names in the file's own directory are listed; finding the rest
// needs a search of the whole file system, which the message gives the command for. Container
// workloads are skipped: their paths are inside the container's root.
func hardLinked(set *rules.Set) []enforcer.Warning {
	if set.Workload.Kind != workload.KindHost {
		return nil
	}
	var ws []enforcer.Warning
	for _, r := range set.Rules {
		if r.Action != policy.ActionBlock || r.Match != policy.MatchPath ||
			(r.Operation != policy.OpFile && r.Operation != policy.OpProcess) {
			continue
		}
		st, err := os.Lstat(r.Value)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || sys.Nlink < 2 {
			continue
		}
		var others []string
		if entries, err := os.ReadDir(filepath.Dir(r.Value)); err == nil {
			for _, e := range entries {
				p := filepath.Join(filepath.Dir(r.Value), e.Name())
				if p == r.Value {
					continue
				}
				if st2, err := os.Lstat(p); err == nil && os.SameFile(st, st2) {
					others = append(others, p)
				}
			}
		}
		where := "none in its directory"
		if len(others) > 0 {
			where = strings.Join(others, ", ")
		}
		ws = append(ws, enforcer.Warning{
			Backend: enforcer.AppArmor, Workload: set.Workload.ID(), Policy: r.PolicyName, PolicyKind: r.PolicyKind,
			Namespace: r.Namespace, Rule: r.Field, RuleID: r.ID, What: "hard links",
			Message: fmt.Sprintf("%s has %d hard links (other names: %s): AppArmor rules name paths, so a name made before Ward's profile reaches the file unblocked (new links are denied); "+
				"remove the other names (find / -xdev -samefile %s) or use BPF-LSM, which also blocks the file by inode",
				r.Value, sys.Nlink, where, r.Value),
		})
	}
	return ws
}
