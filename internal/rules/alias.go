package rules

import (
	"slices"
	"strings"

	"github.com/wardsec/ward/internal/policy"
)

// WithAliases returns a copy of the set for a backend that matches the paths the kernel resolves
// (AppArmor): alias gives, for a path a rule names, the other name the kernel sees for it, such
// as the target of a symlink on the way (/usr/bin/cat for /bin/cat where /bin is a link), or
// false when there is none. Each file or process rule on an exact path or a directory with an
// alias gains a twin on the alias, with the same ID, so that the twin's matches decide as the
// rule itself (Decide returns the rule); and each fromSource executable with an alias is listed
// under both names, in the rule and its twin. Aliases records each alias, for Unalias. The set
// itself is not changed.
func (s *Set) WithAliases(alias func(path string) (string, bool)) (*Set, error) {
	out := *s
	out.Aliases = map[string]string{}
	out.Rules = slices.Clone(s.Rules)
	changed := false
	for i := range out.Rules {
		r := &out.Rules[i]
		var extra []policy.FromSource
		for _, fs := range r.FromSource {
			if fs.Path == "" {
				continue
			}
			if a, ok := alias(fs.Path); ok && a != fs.Path {
				extra = append(extra, policy.FromSource{Path: a})
				out.Aliases[a] = fs.Path
			}
		}
		if len(extra) > 0 {
			r.FromSource = append(append([]policy.FromSource(nil), r.FromSource...), extra...)
			changed = true
		}
	}
	for i := range len(s.Rules) {
		r := out.Rules[i]
		if (r.Operation != policy.OpFile && r.Operation != policy.OpProcess) ||
			(r.Match != policy.MatchPath && r.Match != policy.MatchDirectory) {
			continue
		}
		if a, ok := alias(r.Value); ok && a != r.Value {
			out.Aliases[a] = r.Value
			r.Value = a
			out.Rules = append(out.Rules, r)
			changed = true
		}
	}
	if !changed {
		return s, nil
	}
	if err := out.build(); err != nil {
		return nil, err
	}
	return &out, nil
}

// Unalias returns the access as the set's own rules name it, for a set made by WithAliases: a path
// or an executable that is an alias (or lies in an aliased directory) becomes the name a rule
// wrote, so that the set the aliases were added to decides it alike, as the backend reported it.
// The access is kept as it is when that changes what decides it: a rule of its own on the alias.
func (s *Set) Unalias(a Access) Access {
	if len(s.Aliases) == 0 {
		return a
	}
	b := a
	b.Path = UnaliasPath(s.Aliases, a.Path)
	if p, ok := s.Aliases[a.Source]; ok {
		b.Source = p
	}
	if b.Path == a.Path && b.Source == a.Source {
		return a
	}
	if v, w := s.Decide(a), s.Decide(b); v.Policy != w.Policy || v.Rule != w.Rule || v.Action != w.Action {
		return a
	}
	return b
}

// UnaliasPath is the path that p, a path the kernel reported, stands for in aliases (alias ->
// the name a rule wrote; a directory's ends in "/"): an exact alias, or below the longest
// aliased directory it lies in, or p itself.
func UnaliasPath(aliases map[string]string, p string) string {
	if orig, ok := aliases[p]; ok {
		return orig
	}
	best := ""
	for alias := range aliases {
		if strings.HasSuffix(alias, "/") && strings.HasPrefix(p, alias) && len(alias) > len(best) {
			best = alias
		}
	}
	if best == "" {
		return p
	}
	return aliases[best] + p[len(best):]
}
