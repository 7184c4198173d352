package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/policystore"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/kube"
)

// fullResyncEvery is the level-triggered safety net: however precise the change tracking, every
// workload is recompiled from scratch and handed to the backend again this often, which also
// repairs a kernel state someone changed behind Ward's back.
const fullResyncEvery = 5 * time.Minute

// Retry delays of a refused workload set or a failed round.
const (
	retryFirst = time.Second
	retryMax   = time.Minute
)

// newRetryQueue is a client-go workqueue whose items are retried after retryFirst, doubling to
// retryMax (the apply queue's and the rounds').
func newRetryQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryFirst, retryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// retryIn is the delay AddRateLimited gives an item that was requeued n times, for the logs.
func retryIn(n int) time.Duration { return min(retryFirst<<min(n, 6), retryMax) }

// planned is what the reconcile last computed for one workload.
type planned struct {
	w        workload.Workload
	postures rules.Postures
	set      *rules.Set
	// stale means the last compile failed: recompile at the next reconcile whatever changed.
	stale bool
	// seen is the last round whose registry listed the workload (planner.round).
	seen uint64
}

// policyMark is a policy's version and the last round whose policies included it.
type policyMark struct {
	version string
	round   uint64
}

// planner is the reconcile's memory between rounds. Only the Run loop touches it.
type planner struct {
	policies  map[string]policyMark // policy key -> its version and the last round that had it
	workloads map[string]*planned
	// synced is set once a whole-state Apply succeeded: from then on a backend that can change
	// one workload at a time gets only the workloads that changed.
	synced bool
	// applyFailed asks the next round to call Apply again even if nothing changed.
	applyFailed bool
	// round counts the rounds; a workload whose planned.seen is older is gone, and so is a
	// policy whose policyMark.round is.
	round uint64
}

// reconcile makes the kernel enforce what the accepted policies say. It recompiles only the
// workloads a change concerns: those a changed policy covers before or after the change, and
// those whose identity or postures changed. With full set, every workload is recompiled and
// handed to the backend again. The phases: read what changed in the policy directory, find the
// workloads to recompile, compile them, forget the workloads that are gone, hand the result to
// the backend.
func (d *Daemon) reconcile(ctx context.Context, full bool) error {
	start := time.Now()
	d.reloadPolicies(full)
	p := &d.plan
	p.round++
	enabled, keys, versions := d.enabledPolicies()
	changed := p.changedPolicies(keys, versions)
	needs := d.needsRecompile(full, enabled, keys, changed)
	todo, errs := d.compile(enabled, needs)
	gone := d.dropGone()
	// Only a round whose sets are in force (or handed to the apply queue, whose workers say
	// "workload rules in force" themselves) is "reconciled"; a refused Apply is the round's error.
	if err := d.applyPlan(ctx, todo, gone, start); err != nil {
		errs = append(errs, err)
	} else if len(todo) > 0 || len(gone) > 0 {
		d.metrics.ObserveReconcile(len(todo), time.Since(start))
		d.log.Info("reconciled", "recompiled", len(todo), "removed", len(gone), "workloads", len(p.workloads),
			"policies", len(enabled), "changed_policies", len(changed), "full", full,
			"enforcer", enforcer.AlertName(d.sel.Selected), "took", time.Since(start).String())
	}
	return errors.Join(errs...)
}

// reloadPolicies reads again what the watcher saw change in the policy directory, or all of it.
func (d *Daemon) reloadPolicies(full bool) {
	if paths, all := d.takeDirChanges(); all || full {
		d.reportReload(d.store.ReloadDir())
	} else if len(paths) > 0 {
		res, ok := d.store.ReloadPaths(paths)
		if !ok {
			res = d.store.ReloadDir()
		}
		d.reportReload(res)
	}
}

// changedPolicies returns the keys of the policies added, changed or removed since the last
// round, given this round's policies' keys and versions, and remembers those for the next. The
// map of versions is kept between rounds and changed in place, not made again each round.
func (p *planner) changedPolicies(keys, versions []string) map[string]bool {
	if p.policies == nil {
		p.policies = make(map[string]policyMark, len(keys))
	}
	changed := map[string]bool{}
	for i, k := range keys {
		if m, ok := p.policies[k]; !ok || m.version != versions[i] {
			changed[k] = true
		}
		p.policies[k] = policyMark{version: versions[i], round: p.round}
	}
	for k, m := range p.policies {
		if m.round != p.round {
			changed[k] = true
			delete(p.policies, k)
		}
	}
	return changed
}

// need is a workload to recompile, with the postures it gets and what was planned for it.
type need struct {
	w        workload.Workload
	postures rules.Postures
	prev     *planned
}

// needsRecompile lists the workloads whose identity, postures or covering policies changed
// (every workload when full). It stamps the workloads still there with the round
// (planned.seen); compile stamps the new ones.
// keys[i] is enabled[i]'s key.
func (d *Daemon) needsRecompile(full bool, enabled []*policy.Policy, keys []string, changed map[string]bool) []need {
	p := &d.plan
	// Only the changed policies are looked up (affected): a map of every policy was most of a
	// round's garbage with 1,000 of them, for the one a policy edit changes.
	byKey := make(map[string]*policy.Policy, len(changed))
	for i, k := range keys {
		if changed[k] {
			byKey[k] = enabled[i]
		}
	}
	untracked := d.untrackedNamespaces()
	workloads := d.reg.List()
	var needs []need
	for _, w := range workloads {
		id := w.ID()
		postures := d.cfg.HostPostures()
		if w.Kind != workload.KindHost {
			postures = d.cfg.ContainerPostures()
			if d.kube != nil {
				postures = overPostures(postures, d.kube.Postures(w.Namespace))
			}
			if slices.Contains(untracked, w.Namespace) {
				w.Mode = workload.ModeDisabled
			}
		}
		prev := p.workloads[id]
		if prev != nil {
			prev.seen = p.round
		}
		if !full && prev != nil && !prev.stale && prev.postures == postures && prev.w.Equal(&w) &&
			!affected(prev.set, &w, changed, byKey) {
			continue
		}
		needs = append(needs, need{w: w, postures: postures, prev: prev})
	}
	return needs
}

// compile builds the rule set of each workload that needs one. A workload whose rules do not
// compile keeps what is in force, is marked stale and is tried again next round.
func (d *Daemon) compile(enabled []*policy.Policy, needs []need) ([]*planned, []error) {
	p := &d.plan
	// One workload: a pass over the policies. More: file them once so that each workload looks
	// only at the policies that can select it.
	compile := func(w workload.Workload, postures rules.Postures) (*rules.Set, error) {
		return rules.CompileFrom(enabled, w, postures)
	}
	if len(needs) > 1 {
		compile = rules.NewIndex(enabled).Compile
	}
	var todo []*planned
	var errs []error
	for _, n := range needs {
		w, postures, prev, id := n.w, n.postures, n.prev, n.w.ID()
		set, err := compile(w, postures)
		if err != nil {
			errs = append(errs, fmt.Errorf("compile rules of %s: %w", id, err))
			if prev != nil {
				prev.stale = true
			} else {
				p.workloads[id] = &planned{w: w, postures: postures, stale: true, seen: p.round}
			}
			continue
		}
		pl := &planned{w: w, postures: postures, set: set, seen: p.round}
		p.workloads[id] = pl
		d.wanted.put(id, set)
		todo = append(todo, pl)
	}
	return todo, errs
}

// dropGone forgets the workloads the registry no longer lists, and returns their IDs, sorted.
func (d *Daemon) dropGone() []string {
	p := &d.plan
	var gone []string
	for id, pl := range p.workloads {
		if pl.seen != p.round {
			gone = append(gone, id)
			delete(p.workloads, id)
			d.wanted.put(id, nil)
		}
	}
	sort.Strings(gone)
	return gone
}

// applyPlan hands the round's result to the backend: nothing to the kernel in monitor mode,
// changed workloads one by one to a backend that can take them so once it is synced, else the
// whole wanted state in one Apply.
func (d *Daemon) applyPlan(ctx context.Context, todo []*planned, gone []string, start time.Time) error {
	p := &d.plan
	wa, incremental := d.sel.Backend.(enforcer.WorkloadApplier)
	switch {
	case d.sel.Backend == nil:
		// Monitor mode: what is "in force" is what the monitor decides with.
		for _, pl := range todo {
			d.setInForce(pl.w.ID(), pl.set)
		}
		for _, id := range gone {
			d.setInForce(id, nil)
		}
	case incremental && p.synced:
		for _, pl := range todo {
			d.push(ctx, wa, pl.w.ID(), pl.set)
		}
		for _, id := range gone {
			d.push(ctx, wa, id, nil)
		}
	case len(todo) > 0 || len(gone) > 0 || p.applyFailed || !p.synced:
		// The whole wanted state in one call: the backend's only way without WorkloadApplier,
		// and the first round's, which replaces whatever a previous run left in the kernel.
		ids := slices.Sorted(maps.Keys(p.workloads))
		list := make([]*rules.Set, 0, len(ids))
		for _, id := range ids {
			if s := p.workloads[id].set; s != nil {
				list = append(list, s)
			}
		}
		if err := d.sel.Backend.Apply(ctx, list); err != nil {
			p.applyFailed = true
			return fmt.Errorf("apply to %s: %w", d.sel.Backend.Name(), err)
		}
		p.applyFailed, p.synced = false, true
		d.metrics.ObserveApply(time.Since(start))
		m := make(map[string]*rules.Set, len(list))
		for _, s := range list {
			m[s.Workload.ID()] = s
		}
		d.replaceInForce(m)
	}
	return nil
}

// affected reports whether a policy change concerns a workload: the policy covered it in the
// set last compiled, or covers it now.
func affected(prev *rules.Set, w *workload.Workload, changed map[string]bool, now map[string]*policy.Policy) bool {
	for k := range changed {
		if prev != nil {
			// Compile lists the covering policies sorted by key.
			if i := sort.SearchStrings(prev.Policies, k); i < len(prev.Policies) && prev.Policies[i] == k {
				return true
			}
		}
		if p := now[k]; p != nil && rules.Covers(p, w) {
			return true
		}
	}
	return false
}

// overPostures applies a namespace's posture annotations over the daemon's defaults.
func overPostures(p rules.Postures, ns kube.Postures) rules.Postures {
	if ns.File != "" {
		p.File = ns.File
	}
	if ns.Network != "" {
		p.Network = ns.Network
	}
	if ns.Capabilities != "" {
		p.Capabilities = ns.Capabilities
	}
	return p
}

// reportReload says what a reload of the policy directory found.
func (d *Daemon) reportReload(res policystore.ReloadResult) {
	for _, w := range res.Warnings {
		d.log.Warn("policy warning", "warning", w.String())
	}
	for _, err := range res.Rejected {
		// The file's previous policies stay in force; say exactly why the new ones did not.
		d.log.Error("policy rejected, previous version stays in force", "error", err.Error())
		d.message("Error", "policy rejected: "+err.Error())
	}
	for _, f := range res.Accepted {
		d.log.Info("policy file accepted", "file", f)
	}
	for _, f := range res.Removed {
		d.log.Info("policy file removed", "file", f)
	}
}

// enabledPolicies returns the policies to enforce, their keys and their versions. The policies
// are their sources' own (policystore.Versioned): a copy of each, every round, made a third of a
// policy edit's garbage with 1,000 policies.
func (d *Daemon) enabledPolicies() ([]*policy.Policy, []string, []string) {
	// The store's keys are unique (policystore.Store.Versioned), and so are the cluster's.
	all := d.store.Versioned()
	nLocal := len(all)
	var local map[string]bool
	if d.kube != nil {
		local = make(map[string]bool, nLocal)
		for _, v := range all {
			local[v.Key] = true
		}
		all = append(all, d.kube.Versioned()...)
	}
	enabled := make([]*policy.Policy, 0, len(all))
	keys := make([]string, 0, len(all))
	versions := make([]string, 0, len(all))
	for i, v := range all {
		switch {
		case v.Policy.Kind == policy.KindHostPolicy && !d.cfg.EnableKubeArmorHostPolicy:
		case v.Policy.Kind != policy.KindHostPolicy && !d.cfg.EnableKubeArmorPolicy:
		case i >= nLocal && local[v.Key]:
			// A local policy shadows a cluster one of the same key.
		default:
			enabled = append(enabled, v.Policy)
			keys = append(keys, v.Key)
			versions = append(versions, v.Version)
		}
	}
	return enabled, keys, versions
}

// applyWorkers is how many workloads' sets the backend is given at once: a slow or failing call
// for one workload holds one of them and never delays the others.
const applyWorkers = 4

// applyQueue hands workloads' wanted sets to a backend that changes one workload at a time.
// client-go's workqueue does the bookkeeping: a workload that changes again while queued is
// queued once, no two workers handle the same workload, and a refused set is retried with
// per-workload exponential backoff, or at once when a newer set arrives.
type applyQueue struct {
	once sync.Once
	q    workqueue.TypedRateLimitingInterface[string]
	mu   sync.Mutex
	want map[string]*rules.Set // latest wanted set per workload; nil removes its rules
}

// push hands a workload's wanted set (nil: remove it) to the apply queue, starting its workers
// on first use; they stop when ctx ends.
func (d *Daemon) push(ctx context.Context, wa enforcer.WorkloadApplier, id string, set *rules.Set) {
	aq := &d.applyQ
	aq.once.Do(func() {
		aq.q = newRetryQueue("ward-apply")
		aq.want = map[string]*rules.Set{}
		d.workerWG.Add(applyWorkers + 1)
		go func() {
			defer d.workerWG.Done()
			<-ctx.Done()
			aq.q.ShutDown()
		}()
		for range applyWorkers {
			go func() {
				defer d.workerWG.Done()
				for {
					id, shutdown := aq.q.Get()
					if shutdown {
						return
					}
					d.applyOne(ctx, wa, id)
					aq.q.Done(id)
				}
			}()
		}
	})
	aq.mu.Lock()
	aq.want[id] = set
	aq.mu.Unlock()
	aq.q.Add(id)
}

// applyOne gives the backend a workload's latest wanted set. A refused set leaves the previous
// one in force (the backend guarantees it, d.Sets says it) and is queued again after a delay.
func (d *Daemon) applyOne(ctx context.Context, wa enforcer.WorkloadApplier, id string) {
	aq := &d.applyQ
	aq.mu.Lock()
	set, wanted := aq.want[id]
	aq.mu.Unlock()
	if !wanted {
		// Applied already: a delayed retry that a newer set overtook.
		aq.q.Forget(id)
		return
	}
	remove := set == nil
	start := time.Now()
	var err error
	if remove {
		err = wa.RemoveWorkload(ctx, id)
	} else {
		err = wa.ApplyWorkload(ctx, set)
	}
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		aq.mu.Lock()
		if cur, ok := aq.want[id]; ok && cur == set {
			delete(aq.want, id)
		}
		aq.mu.Unlock()
		aq.q.Forget(id)
		took := time.Since(start)
		d.metrics.ObserveApply(took)
		d.log.Info("workload rules in force", "workload", id, "removed", remove, "took", took.String())
		d.setInForce(id, set)
		return
	}
	what := "apply"
	if remove {
		what = "remove"
	}
	delay := retryIn(aq.q.NumRequeues(id))
	d.log.Error("workload rules not applied, previous rules stay in force", "workload", id, "op", what,
		"error", err.Error(), "retry_in", delay.String())
	d.message("Error", fmt.Sprintf("workload %s: %s rules: %v (previous rules stay in force; retry in %s)", id, what, err, delay))
	aq.q.AddRateLimited(id)
}

// setInForce records one workload's set as in force (nil: none), for the event pipeline and the
// hook's acknowledgement. It costs the same with 10 or 10,000 workloads in force.
func (d *Daemon) setInForce(id string, set *rules.Set) {
	d.setsMu.Lock()
	defer d.setsMu.Unlock()
	old := d.inForce.get(id)
	d.noteReplacedOne(id, old, set)
	d.inForce.put(id, set)
	if old != nil {
		d.rulesInForce -= len(old.Rules)
	}
	if set != nil {
		d.rulesInForce += len(set.Rules)
	}
	d.inForceDone()
	changed := map[string]bool{}
	d.noteUnenforcedOf(id, old, set, changed)
	d.unenforcedDone(changed)
}

// replaceInForce makes m the sets in force, and keeps m.
func (d *Daemon) replaceInForce(m map[string]*rules.Set) {
	d.setsMu.Lock()
	defer d.setsMu.Unlock()
	old := d.inForce.snapshot()
	d.noteReplaced(old, m)
	d.inForce.replace(m)
	d.rulesInForce = 0
	for _, s := range m {
		d.rulesInForce += len(s.Rules)
	}
	d.inForceDone()
	changed := map[string]bool{}
	for id, s := range m {
		d.noteUnenforcedOf(id, old[id], s, changed)
	}
	for id, s := range old {
		if _, ok := m[id]; !ok {
			d.noteUnenforcedOf(id, s, nil, changed)
		}
	}
	d.unenforcedDone(changed)
}

// inForceDone wakes the waiters of waitInForce and updates the metrics after a change of the
// sets in force. Callers hold setsMu.
func (d *Daemon) inForceDone() {
	close(d.inForceChanged)
	d.inForceChanged = make(chan struct{})
	d.metrics.SetWorkloads(d.inForce.len())
	d.metrics.SetRules(d.rulesInForce)
}

// noteReplaced keeps, for each workload whose set m changes, the set it had before: the kernel's
// previous rules may have produced events the pipeline reads after the change
// (events.Attributor.Replaced). A workload no longer in force has none. Callers hold setsMu.
func (d *Daemon) noteReplaced(old, m map[string]*rules.Set) {
	for id, s := range old {
		d.noteReplacedOne(id, s, m[id])
	}
}

// noteReplacedOne is noteReplaced for one workload whose set goes from old to set.
func (d *Daemon) noteReplacedOne(id string, old, set *rules.Set) {
	d.replacedMu.Lock()
	defer d.replacedMu.Unlock()
	switch {
	case old == nil:
	case set == nil:
		delete(d.replaced, id)
	case set != old:
		if d.replaced == nil {
			d.replaced = map[string]*rules.Set{}
		}
		d.replaced[id] = old
	}
}

// replacedSet returns the set a workload had in force before its current one, or nil.
func (d *Daemon) replacedSet(id string) *rules.Set {
	d.replacedMu.Lock()
	defer d.replacedMu.Unlock()
	return d.replaced[id]
}

// workerState is the bookkeeping of the apply queue's workers and of the sets in force.
type workerState struct {
	applyQ   applyQueue
	workerWG sync.WaitGroup
	setsMu   sync.Mutex
	// replacedMu guards replaced, each workload's set before the one in force (noteReplaced).
	replacedMu sync.Mutex
	replaced   map[string]*rules.Set
	// inForceChanged is closed (and replaced) whenever the sets in force change (setsMu), so a
	// hook request waiting for its container's set wakes on the change instead of polling.
	inForceChanged chan struct{}
}

// waitInForce waits until ok holds of the sets in force, or ctx ends.
func (d *Daemon) waitInForce(ctx context.Context, ok func(inForce func(id string) *rules.Set) bool) error {
	for {
		d.setsMu.Lock()
		changed := d.inForceChanged
		d.setsMu.Unlock()
		if ok(d.inForce.get) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
