package apparmor

import (
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// ancestorDirs lists the directories whose rename would move what a Block rule names out of the
// rule's path: every directory above its target, and a directory rule's directory itself, each
// with a trailing slash as AppArmor names a directory ("/", "/etc/"). A pattern gives the
// directories down to its last literal one; an execname rule (any directory) gives none.
func ancestorDirs(ru *rules.Rule) []string {
	var p string
	switch ru.Match {
	case policy.MatchPath:
		p = path.Dir(path.Clean(ru.Value))
	case policy.MatchDirectory:
		p = path.Clean(ru.Value)
	case policy.MatchPattern:
		lit := ru.Value
		if i := strings.IndexAny(lit, "*?[{"); i >= 0 {
			lit = lit[:i]
		}
		i := strings.LastIndexByte(lit, '/')
		if i < 0 {
			return nil
		}
		p = path.Clean(lit[:i+1])
	default:
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil
	}
	out := []string{"/"}
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i+1])
		}
	}
	if p != "/" {
		out = append(out, p+"/")
	}
	return out
}

// noteAncestors records the ancestors of a Block rule that has lines in this profile, for
// ancestors to write once each.
func (r *renderer) noteAncestors(ru *rules.Rule, c *ctx) {
	if c.anc == nil {
		c.anc = map[string]*rules.Rule{}
	}
	for _, d := range ancestorDirs(ru) {
		if c.anc[d] == nil {
			c.anc[d] = ru
		}
	}
}

// ancestors denies renaming (and every other write: chmod, chown, rmdir) the directories above
// the paths a Block rule names. AppArmor decides on the name an access uses, so renaming an
// unprotected parent would otherwise give a protected file a name no rule covers. A directory
// rule's pattern already covers the directory itself for file rules; `/d/` alone matches only
// the directory node, never what is inside it.
func (r *renderer) ancestors(c *ctx) {
	if len(c.anc) == 0 {
		return
	}
	r.emit(Origin{Kind: OriginPosture, RuleID: -1, Source: c.source}, c.indent, "# Directories above blocked paths: renaming one would move the paths out of the rules.")
	for _, d := range slices.Sorted(maps.Keys(c.anc)) {
		r.emit(ruleOrigin(c.anc[d], c), c.indent, "audit deny %s w,", quote(escapeLiteral(d)))
	}
}

// ancestorVerdict attributes a denied write to a directory (a rename, chmod or rmdir of "/a/")
// to the Block rule whose ancestor it is: the access returned is one of that rule's own, so that
// rules.Decide gives the Block again wherever the event goes.
func ancestorVerdict(set *rules.Set, a rules.Access, dir string) (rules.Access, rules.Verdict, bool) {
	for i := range set.Rules {
		ru := &set.Rules[i]
		if ru.Action != policy.ActionBlock || (ru.Operation != policy.OpFile && ru.Operation != policy.OpProcess) {
			continue
		}
		if len(ru.FromSource) > 0 && !slices.ContainsFunc(ru.FromSource, func(fs policy.FromSource) bool { return fs.Path == a.Source }) {
			continue
		}
		if !slices.Contains(ancestorDirs(ru), dir) {
			continue
		}
		ra := a
		ra.Op, ra.Write, ra.Path = ru.Operation, ru.Operation == policy.OpFile, path.Clean(ru.Value)
		switch {
		case ru.Match == policy.MatchPattern:
			ra.Path = ru.Value // a glob matches itself, save for classes
		case ru.Operation == policy.OpProcess && ru.Match == policy.MatchDirectory:
			ra.Path = path.Join(ru.Value, "a") // a program inside the directory
		}
		if v := set.Decide(ra); v.Action == policy.ActionBlock && v.RuleID == ru.ID {
			return ra, v, true
		}
	}
	return a, rules.Verdict{}, false
}
