package daemon

import (
	"slices"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload/kube"
)

// unenforced tracks what the enforcing backend does not enforce as written of the sets in force:
// the support table's entries (enforcer.CheckSet) and, for a backend that reports them
// (enforcer.Warner), its translation's approximations. A warning is keyed by backend, policy,
// field path and text, not by workload, so that a policy covering a thousand pods is logged
// once; it is logged when it first appears and counted while some workload has it.
type unenforced struct {
	keys  map[string][]string         // workload ID -> its warning keys
	refs  map[string]int              // warning key -> workloads that have it
	first map[string]enforcer.Warning // warning key -> the warning as first seen
}

func warningKey(w enforcer.Warning) string {
	return strings.Join([]string{w.Backend, w.PolicyKey(), w.Rule, w.What, w.Message}, "\x00")
}

// noteUnenforcedOf brings workload id's warnings up to date with its set in force, which went
// from old to s (nil: none), and adds the keys of the policies whose warnings came or went to
// changed. The caller holds setsMu and calls unenforcedDone after the last change.
func (d *Daemon) noteUnenforcedOf(id string, old, s *rules.Set, changed map[string]bool) {
	if old == s {
		return
	}
	u := &d.unenforced
	if u.keys == nil {
		u.keys, u.refs, u.first = map[string][]string{}, map[string]int{}, map[string]enforcer.Warning{}
	}
	var ws []enforcer.Warning
	if s != nil {
		ws = d.warningsOf(id, s)
	}
	d.setWarnings(id, ws, changed)
}

// unenforcedDone publishes the warnings' count, and the statuses of the policies in changed.
func (d *Daemon) unenforcedDone(changed map[string]bool) {
	d.metrics.SetNotEnforced(d.sel.Selected, len(d.unenforced.refs))
	if k := d.kube; k != nil && len(changed) > 0 {
		// The statuses are computed with setsMu, which the caller holds now.
		go func() {
			for key := range changed {
				k.RefreshStatus(key)
			}
		}()
	}
}

// unenforcedOf returns the warnings of the sets in force about one policy, by its key.
func (d *Daemon) unenforcedOf(policyKey string) []enforcer.Warning {
	d.setsMu.Lock()
	defer d.setsMu.Unlock()
	var out []enforcer.Warning
	for _, w := range d.unenforced.first {
		if w.PolicyKey() == policyKey {
			out = append(out, w)
		}
	}
	return out
}

// warningsOf asks the backend for what it does not enforce of a workload's set, or the support
// table when the backend does not say (and in monitor mode, where there is no backend).
func (d *Daemon) warningsOf(id string, s *rules.Set) []enforcer.Warning {
	if w, ok := d.sel.Backend.(enforcer.Warner); ok {
		return w.WorkloadWarnings(id)
	}
	return enforcer.CheckSet(d.sel.Selected, s)
}

// setWarnings makes ws the warnings of workload id. The new warnings are counted before the old
// ones are let go, so that a warning the workload keeps (its set recompiled by a full resync, or
// changed elsewhere) is neither dropped nor logged again: a warning is logged once, when it first
// appears, until no workload has it.
func (d *Daemon) setWarnings(id string, ws []enforcer.Warning, changed map[string]bool) {
	u := &d.unenforced
	old := u.keys[id]
	var keys []string
	for _, w := range ws {
		k := warningKey(w)
		if slices.Contains(keys, k) {
			continue
		}
		keys = append(keys, k)
		if u.refs[k]++; u.refs[k] == 1 {
			u.first[k] = w
			if p := w.PolicyKey(); p != "" {
				changed[p] = true
			}
			args := []any{"backend", enforcer.AlertName(w.Backend), "policy", w.PolicyKey(), "rule", w.Rule}
			if w.What != "" { // a backend's own warnings name the part in their reason
				args = append(args, "what", w.What)
			}
			args = append(args, "reason", w.Message)
			if w.Policy == "" {
				args = append(args, "workload", id)
			}
			d.log.Warn("not enforced as written", args...)
		}
	}
	for _, k := range old {
		if u.refs[k]--; u.refs[k] <= 0 {
			if p := u.first[k].PolicyKey(); p != "" {
				changed[p] = true
			}
			delete(u.refs, k)
			delete(u.first, k)
		}
	}
	if len(keys) > 0 {
		u.keys[id] = keys
	} else {
		delete(u.keys, id)
	}
}

// Unenforced returns what the enforcing backend does not enforce as written of the sets in
// force, one warning per backend, policy, field path and reason (the workload of the first
// that had it), sorted.
func (d *Daemon) Unenforced() []enforcer.Warning {
	d.setsMu.Lock()
	defer d.setsMu.Unlock()
	out := make([]enforcer.Warning, 0, len(d.unenforced.first))
	for _, w := range d.unenforced.first {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b enforcer.Warning) int { return strings.Compare(warningKey(a), warningKey(b)) })
	return out
}

// notEnforcedBy starts each enforcer's part of a status that names what it does not enforce.
const notEnforcedBy = "; not enforced by "

// statusWith is status.status of an accepted policy: Applied, then for each enforcer that does
// not enforce part of it the field paths ("Applied; not enforced by BPFLSM: spec.presets[0]").
// This node replaces its own enforcer's part and keeps the parts other nodes wrote for theirs,
// so nodes with different enforcers agree on one text instead of overwriting each other.
func statusWith(old, backend string, ws []enforcer.Warning) string {
	name := enforcer.AlertName(backend)
	var parts []string
	if rest, ok := strings.CutPrefix(old, kube.StatusApplied+notEnforcedBy); ok {
		for _, part := range strings.Split(rest, notEnforcedBy) {
			if !strings.HasPrefix(part, name+": ") {
				parts = append(parts, part)
			}
		}
	}
	var paths []string
	for _, w := range ws {
		if !slices.Contains(paths, w.Rule) {
			paths = append(paths, w.Rule)
		}
	}
	if len(paths) > 0 {
		parts = append(parts, name+": "+strings.Join(paths, ", "))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return kube.StatusApplied
	}
	return kube.StatusApplied + notEnforcedBy + strings.Join(parts, notEnforcedBy)
}
