package apparmor

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
)

// hostAlias is the alias rules.Set.WithAliases takes for the host workload's profile: where a
// path leads on the host when a symlink is on its way, such as /usr/bin/bash for /bin/bash where
// /bin is a link to usr/bin (every merged-/usr Debian and Ubuntu). AppArmor matches the path the
// kernel resolved, so a rule or a fromSource executable named only by the other path would apply
// to nothing, silently (shown in the VM before this: a Block and a fromSource rule named through
// a symlinked directory let the reads through). The host's files are read below root
// (enforcer.HostRoot: pid 1's root when Ward runs in a pod), at every apply, so a link
// created or changed later is followed at the next one, as BPF-LSM does. Container workloads
// get no alias: their paths are inside the container's root, which may not exist yet when their
// profile is loaded.
func hostAlias(root string) func(string) (string, bool) {
	return func(p string) (string, bool) {
		real, ok := resolvedPath(root, p)
		if !ok {
			return "", false
		}
		if strings.HasSuffix(p, "/") && real != "/" {
			real += "/"
		}
		return real, real != p
	}
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
