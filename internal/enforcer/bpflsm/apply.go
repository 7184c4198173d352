// Applying: translated rule sets written to the maps, one workload generation at a time.

package bpflsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Apply implements enforcer.Backend. Every set is translated before the kernel
// is touched (an error changes nothing); then each workload is replaced as by
// ApplyWorkload and the workloads absent from sets are removed as by
// RemoveWorkload. At no moment is a workload without its rules. Calls to
// Apply are serialized; an ApplyWorkload running meanwhile for a workload
// absent from sets may be undone by it (Apply states everything).
func (b *Backend) Apply(ctx context.Context, sets []*rules.Set) error {
	type one struct {
		id    string
		tr    *Translation
		warns []enforcer.Warning
	}
	all := make([]one, 0, len(sets))
	keys := make(map[uint64]string, len(sets))
	ids := make(map[string]bool, len(sets))
	done := b.startTranslating()
	defer done()
	// Every set's names watched at once: one config write, not one per set.
	var names NameFilter
	for _, s := range sets {
		n := RuleNames(s)
		names.union(&n)
	}
	if err := b.watch(names); err != nil {
		return err
	}
	for _, s := range sets {
		if awaitingCgroup(&s.Workload) {
			continue
		}
		id := s.Workload.ID()
		tr, warns, err := b.translate(s)
		if err != nil {
			return err
		}
		if other, dup := keys[tr.Workload]; dup {
			return fmt.Errorf("workload %s: workload key %d is also %s's", id, tr.Workload, other)
		}
		if ids[id] {
			return fmt.Errorf("workload %s: two sets", id)
		}
		keys[tr.Workload] = id
		ids[id] = true
		all = append(all, one{id, tr, warns})
	}
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	var old retirement
	defer b.deleteRetired(&old)
	for _, o := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.applyOne(o.id, o.tr, o.warns, &old); err != nil {
			return err
		}
	}
	b.mu.Lock()
	var gone []string
	for id := range b.byID {
		if !ids[id] {
			gone = append(gone, id)
		}
	}
	b.mu.Unlock()
	for _, id := range gone {
		if err := b.removeOne(id, &old); err != nil {
			return err
		}
	}
	// An Apply that changed no workload still settles which programs are attached (New
	// attached them all).
	b.mu.Lock()
	err := b.writeConfig()
	b.mu.Unlock()
	if err != nil {
		return err
	}
	// This instance now enforces the complete state: older pinned
	// instances may go. Before this point they kept enforcing theirs.
	if len(b.predecessors) > 0 {
		if err := b.retire(); err != nil {
			return fmt.Errorf("rules applied, but: %w", err)
		}
	}
	done()
	if err := b.shrinkWatched(); err != nil {
		return fmt.Errorf("rules applied, but: %w", err)
	}
	return nil
}

// startTranslating counts a call that watches names for translations it has not applied yet;
// the function it returns ends that, once (callers defer it and may call it earlier).
func (b *Backend) startTranslating() func() {
	b.mu.Lock()
	b.translating++
	b.mu.Unlock()
	ended := false
	return func() {
		if ended {
			return
		}
		ended = true
		b.mu.Lock()
		b.translating--
		b.mu.Unlock()
	}
}

// shrinkWatched cuts the watched names back to those of the applied translations' filters
// (full filters, which the kernel never consults, need none), so that renames of directories
// only removed or replaced rules named stop distrusting every filter. Apply, ApplyWorkload and
// RemoveWorkload end with it; it is skipped while another call is translating: its names are
// watched but not yet in byID.
func (b *Backend) shrinkWatched() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.translating > 0 {
		return nil
	}
	var live NameFilter
	for _, a := range b.byID {
		if !a.tr.Names.Full() {
			live.union(&a.tr.Names)
		}
	}
	if live == b.watched {
		return nil
	}
	old := b.watched
	b.watched = live
	if err := b.writeConfig(); err != nil {
		b.watched = old
		return err
	}
	return nil
}

// ApplyWorkload implements enforcer.WorkloadApplier: it adds or replaces
// set.Workload's rules with the same guarantees as Apply, leaving the other
// workloads alone. Calls for different workloads run concurrently (the map
// writes, the bulk of the work, take no shared lock); calls for the same
// workload are serialized.
func (b *Backend) ApplyWorkload(ctx context.Context, set *rules.Set) error {
	if awaitingCgroup(&set.Workload) {
		return nil
	}
	done := b.startTranslating()
	defer done()
	tr, warns, err := b.translate(set)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var old retirement
	err = b.applyOne(set.Workload.ID(), tr, warns, &old)
	b.deleteRetired(&old)
	if err != nil {
		return err
	}
	done()
	if err := b.shrinkWatched(); err != nil {
		return fmt.Errorf("rules applied, but: %w", err)
	}
	return nil
}

// RemoveWorkload implements enforcer.WorkloadApplier: the workload's rules
// are removed (its tasks then fall back to the host workload's rules, as
// any task outside a registered container). Unknown ids are a no-op.
func (b *Backend) RemoveWorkload(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var old retirement
	err := b.removeOne(id, &old)
	b.deleteRetired(&old)
	if err != nil {
		return err
	}
	if err := b.shrinkWatched(); err != nil {
		return fmt.Errorf("rules removed, but: %w", err)
	}
	return nil
}

// awaitingCgroup reports a container registered before the runtime created it (NRI's
// CreateContainer): it has no cgroup, so no process of it can run and there is nothing to load
// yet. Its rules go in when the registration with its cgroup arrives (StartContainer), which the
// runtime waits for before the first instruction. Refusing it instead failed every pod's
// CreateContainer on a real node.
func awaitingCgroup(w *workload.Workload) bool {
	return w.Kind == workload.KindContainer && w.CgroupID == 0
}

func (b *Backend) translate(s *rules.Set) (*Translation, []enforcer.Warning, error) {
	host := b.host
	if wh, ok := host.(WorkloadHost); ok {
		host = wh.For(&s.Workload)
		if _, none := host.(noHost); none {
			b.log.Warn("no task of the workload found in its mount namespace: its file rules match by path only until the next apply",
				"workload", s.Workload.ID(), "mntns", s.Workload.MntNS)
		}
	}
	// The kernel trusts a translation's names filter only while no directory of a watched name
	// was renamed since the epoch read before Translate looked the directories up: the
	// rules' names are watched before that read, and a name only the translation found (where
	// a symlink leads) makes it translate again, with that name watched.
	if err := b.watch(RuleNames(s)); err != nil {
		return nil, nil, fmt.Errorf("workload %s: %w", s.Workload.ID(), err)
	}
	for attempt := 1; ; attempt++ {
		var epochs wardEpochs
		if err := b.objs.WardEpoch.Lookup(uint32(0), &epochs); err != nil {
			return nil, nil, fmt.Errorf("read the rename epoch: %w", err)
		}
		epoch := epochs.Names
		tr, err := Translate(s, host)
		if err != nil {
			return nil, nil, fmt.Errorf("workload %s: %w", s.Workload.ID(), err)
		}
		tr.NamesEpoch = epoch
		if tr.Names.Full() {
			return tr, tr.Warnings, nil
		}
		b.mu.Lock()
		watched := b.watched.covers(&tr.Names)
		b.mu.Unlock()
		if watched {
			return tr, tr.Warnings, nil
		}
		if attempt == 2 {
			// The links changed between the two: names cannot tell.
			tr.Names.fill()
			return tr, tr.Warnings, nil
		}
		if err := b.watch(tr.Names); err != nil {
			return nil, nil, fmt.Errorf("workload %s: %w", s.Workload.ID(), err)
		}
	}
}

// watch adds names to ward_config.names, so that the kernel counts the renames of
// directories of these names from now on.
func (b *Backend) watch(names NameFilter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.watched.covers(&names) {
		return nil
	}
	old := b.watched
	b.watched.union(&names)
	if err := b.writeConfig(); err != nil {
		b.watched = old // not in the kernel: not watched
		return err
	}
	return nil
}

// applyOne writes a new generation of the workload's entries, switches its
// workload entry to it in one map update and adds the old generation's keys
// to old, for the caller to delete after a grace period (deleteRetired). A
// workload whose key changed (a container in a new cgroup) gets the new key
// before the old one is removed.
func (b *Backend) applyOne(id string, tr *Translation, warns []enforcer.Warning, old *retirement) error {
	defer b.locks.Lock(id)()
	wk := tr.Workload
	b.mu.Lock()
	if owner, taken := b.owner[wk]; taken && owner != id {
		b.mu.Unlock()
		return fmt.Errorf("workload %s: workload key %d is %s's", id, wk, owner)
	}
	b.owner[wk] = id
	prev := b.byID[id]
	// Generations are never reused, not even by a workload removed and
	// added again, so per-inode cache entries of an old state never match.
	b.gen++
	gen := b.gen
	b.mu.Unlock()

	a, err := b.write(wk, gen, tr)
	if err != nil {
		b.mu.Lock()
		if prev == nil || prev.key != wk {
			delete(b.owner, wk)
		}
		b.mu.Unlock()
		return fmt.Errorf("workload %s: %w", id, err)
	}
	a.id = id
	a.key = wk
	var errs []error
	if prev != nil {
		if prev.key != wk {
			if err := b.unregister(prev); err != nil {
				errs = append(errs, fmt.Errorf("workload %s: remove old key %d: %w", id, prev.key, err))
			}
		} else {
			b.entries.release(prev.entry) // workloads and the slot name the new entry
		}
		old.add(prev)
	}
	b.mu.Lock()
	if prev != nil && prev.key != wk {
		delete(b.applied, prev.key)
		delete(b.owner, prev.key)
	}
	b.applied[wk] = a
	b.byID[id] = a
	b.SetWarnings(id, warns)
	err = b.writeConfig()
	b.mu.Unlock()
	return errors.Join(append(errs, err)...)
}

// removeOne deletes the workload entry (the hooks stop using the workload) and
// adds its keys to old, for the caller to delete after a grace period.
func (b *Backend) removeOne(id string, old *retirement) error {
	defer b.locks.Lock(id)()
	b.mu.Lock()
	a := b.byID[id]
	b.mu.Unlock()
	if a == nil {
		return nil
	}
	if err := b.unregister(a); err != nil {
		return fmt.Errorf("workload %s: remove: %w", id, err)
	}
	old.add(a)
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.applied, a.key)
	delete(b.byID, id)
	delete(b.owner, a.key)
	b.DropWarnings(id)
	return b.writeConfig()
}

// unregister takes a's key out of its slot and out of workloads, and frees its entry; if the
// key stays in workloads, so do its slot and entry.
func (b *Backend) unregister(a *applied) error {
	b.entries.unname(a.key)
	if err := b.objs.Workloads.Delete(a.key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		b.entries.name(a.key, a.entry)
		return err
	}
	b.entries.release(a.entry)
	return nil
}

// writeConfig writes ward_config (configOf): whether a container is registered, the
// operations some workload has rules of and the host workload's flags;
// called with b.mu held, after the workload entries exist (or are gone), so
// that the writes happen in the order of the changes. Hooks look a task's
// cgroup up only while some container is registered, return at once for an
// operation no workload has rules of, and look the host entry up only when
// it has rules of the hook's operation.
//
// The programs of an operation are attached only while some workload has rules of it
// (progOps): those of a new operation before the config names it, so that ApplyWorkload
// returns with the rules in force; those of an operation gone detachAfter later (attachFor).
func (b *Backend) writeConfig() error {
	cfg := configOf(b.applied, b.watched)
	// linkMu across both: the config never names an operation whose programs detachIdle
	// could be taking away meanwhile.
	b.linkMu.Lock()
	defer b.linkMu.Unlock()
	if err := b.attachFor(usedOps(cfg.Ops)); err != nil {
		return err
	}
	if err := b.objs.WardConfig.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// configOf is ward_config's value for the applied workloads and the watched names.
//
// Containers is a flag (1 while any container is registered), not a count: user space writes
// the value whole while hooks read it, and the kernel's copy gives no single field of it an
// atomic store, so a count read during its change from 255 to 256 could mix the bytes of both
// into 0 and skip every container's lookup. Every field a hook reads is a set of bits, and a
// bit that the old and the new value share survives any mixture of their bytes.
func configOf(applied map[uint64]*applied, watched NameFilter) wardConfig {
	var cfg wardConfig
	var named NamedCodes
	for wk, a := range applied {
		if wk != HostKey {
			cfg.Containers = 1
		} else {
			cfg.HostFlags = a.tr.Flags
		}
		cfg.Ops |= a.tr.Flags & (uint32(wfRules) * 0x01010101)
		named.union(a.tr.Named)
	}
	cfg.Caps, cfg.Families, cfg.Types, cfg.Protos = named.Caps, named.Families, named.Types, named.Protos
	cfg.Names = watched
	return cfg
}

// write puts generation gen of a workload's entries and then switches its
// workload entry to it. On error it removes what it wrote; the workload
// entry then still names the previous generation.
func (b *Backend) write(wk uint64, gen uint32, tr *Translation) (*applied, error) {
	keys := make([]wardRuleKey, 0, len(tr.Entries))
	for _, k := range tr.SortedKeys() {
		v := tr.Entries[k]
		mk := wardRuleKey{Cgroup: k.Workload, Hash: k.Hash, Src: k.Src, Gen: gen, Op: k.Op, Kind: k.Kind}
		mv := wardRuleVal{Exact: v.Exact, Direct: v.Direct, Recursive: v.Recursive}
		if err := b.keyCounts.add(mk.Kind, mk.Hash, true); err != nil {
			b.deleteKeys(keys, nil)
			return nil, err
		}
		if err := b.objs.Rules.Put(&mk, &mv); err != nil {
			b.uncount(&mk)
			b.deleteKeys(keys, nil)
			return nil, fmt.Errorf("write rule entry %d of %d: %w", len(keys)+1, len(tr.Entries), err)
		}
		keys = append(keys, mk)
	}
	var globs []wardGlobKey
	for k, v := range tr.Globs {
		mk := wardGlobKey{Cgroup: k.Workload, Gen: gen, State: k.State, Op: k.Op, Byte: k.Byte}
		mv := wardGlobVal{Next: v.Next, Accept: v.Accept}
		if err := b.objs.Globs.Put(&mk, &mv); err != nil {
			b.deleteKeys(keys, globs)
			return nil, fmt.Errorf("write pattern transition %d of %d: %w", len(globs)+1, len(tr.Globs), err)
		}
		globs = append(globs, mk)
	}
	audited := uint32(0)
	if tr.Audited {
		audited = 1
	}
	// A full filter (however it became so) names every name: then the directories' too, and
	// its names have no keys to tell them apart.
	nameKeys, dirNames := uint32(1), tr.DirNames
	if tr.Names.Full() {
		nameKeys = 0
		dirNames.fill()
	}
	wv := wardWlVal{
		Gen: gen, Flags: tr.Flags, Audited: audited, DirDepths: tr.DirDepths, ExactDepths: tr.ExactDepths,
		Codes: tr.Codes, DirInodes: tr.DirInodeOps, NamesEpoch: tr.NamesEpoch, NameKeys: nameKeys,
		Names: tr.Names, DirNames: dirNames,
	}
	e, err := b.entries.write(&wv)
	if err != nil {
		b.deleteKeys(keys, globs)
		return nil, err
	}
	if err := b.objs.Workloads.Put(wk, e); err != nil {
		b.entries.unwritten(e)
		b.deleteKeys(keys, globs)
		return nil, fmt.Errorf("switch generation: %w", err)
	}
	b.entries.name(wk, e)
	return &applied{keys: keys, globs: globs, tr: tr, entry: e}, nil
}

func (b *Backend) deleteKeys(keys []wardRuleKey, globs []wardGlobKey) {
	for i := range keys {
		if err := b.objs.Rules.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			// Still there, maybe: still counted.
			b.log.Warn("delete rule entry", "error", err)
			continue
		}
		b.uncount(&keys[i])
	}
	for i := range globs {
		if err := b.objs.Globs.Delete(&globs[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			b.log.Warn("delete pattern transition", "error", err)
		}
	}
}

// uncount counts down a key that is no longer in rules (keyCounts). A count that failed to go
// down only costs the kernel lookups.
func (b *Backend) uncount(k *wardRuleKey) {
	if err := b.keyCounts.add(k.Kind, k.Hash, false); err != nil {
		b.log.Warn("count a rule key down", "error", err)
	}
}
