//go:build vm

package bpflsm

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestWorkloadSlots: a workload's slot names the entry that workloads names for it while it is
// applied, and nothing after; the hooks take a slot's entry only where the slot names the
// task's own cgroup (its tag) and an entry, and look the workload up in workloads everywhere
// else. A slot's word is replaced below the backend to show which of the two decided: an entry
// that says "no file rules" lets a blocked file open only when the kernel takes it for the task's.
func TestWorkloadSlots(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/ws/blocked", 0)
	mkfile(t, "/wt/ws/free", 0)
	spec := "  file:\n    matchPaths:\n    - path: /wt/ws/blocked\n"
	b := newBackend(t)

	for _, c := range []struct {
		name   string
		cgroup bool
	}{{"container", true}, {"host", false}} {
		t.Run(c.name, func(t *testing.T) {
			cg, cgfd := testCgroup(t, "ward-slots-"+c.name)
			key := HostKey
			set := hostPolicyInCgroup(t, "slots", spec, cg)
			if c.cgroup {
				key = cg
			} else {
				set.Workload = host
			}
			must(t, b.Apply(t.Context(), []*rules.Set{set}))
			idx, ok := slotIndex(key)
			if !ok {
				t.Fatalf("cgroup id %#x has more than 32 bits: no slot to test", key)
			}
			var e uint32
			must(t, b.objs.Workloads.Lookup(key, &e))
			word := b.entries.load(idx)
			if word != slotWord(key, e) {
				t.Fatalf("slot %d is %#x, want %#x (entry %d, key %#x)", idx, word, slotWord(key, e), e, key)
			}
			var wv wardWlVal
			must(t, b.objs.WlEntries.Lookup(e, &wv))
			if wv.Flags&(uint32(wfRules|wfBlockRules)<<(8*opFile)) == 0 {
				t.Fatalf("entry %d: flags %#x, want file rules", e, wv.Flags)
			}

			opens := func(step, path string, ok bool) { t.Helper(); opensTwice(t, cgfd, step, path, ok) }
			deniedWithEvent(t, b, cgfd, "slot in use", "open:/wt/ws/blocked", policy.OpFile, set, "slots")
			opens("slot in use", "/wt/ws/free", true)

			// An entry nothing names, with the workload's state but no file rules.
			spare := uint32(wlEntries - 1)
			for i, w := range b.entries.slots {
				if w&slotEntryMask == uint64(spare)+1 {
					t.Fatalf("slot %d names entry %d, which the test writes", i, spare)
				}
			}
			noFile := wv
			noFile.Flags &^= 0xff << (8 * opFile)
			must(t, b.objs.WlEntries.Put(spare, &noFile))
			for _, w := range []struct {
				step    string
				word    uint64
				blocked bool
			}{
				{"a slot naming an entry without file rules", slotWord(key, spare), false},
				{"the same with another cgroup's tag", slotWord(key, spare) + 1<<slotTagShift, true},
				{"the same naming no entry", slotWord(key, spare) &^ slotEntryMask, true},
				{"an empty slot", 0, true},
				{"the slot as the backend wrote it", word, true},
			} {
				atomic.StoreUint64(&b.entries.slots[idx], w.word)
				opens(w.step, "/wt/ws/blocked", !w.blocked)
				opens(w.step, "/wt/ws/free", true)
			}

			must(t, b.Apply(t.Context(), nil))
			if got := b.entries.load(idx); got != 0 {
				t.Errorf("no workload applied: slot %d is %#x", idx, got)
			}
			opens("nothing applied", "/wt/ws/blocked", true)
		})
	}
}

// outsiderValidShift is the valid bit of an outsiders word (ward.c), below the tag.
const outsiderValidShift = uint(wardSlotLayoutOUTSIDER_VALID_SHIFT)

// TestOutsiders: on a node with containers, a task in a cgroup of no workload is decided by the
// host's rules, and its cgroup's outsiders word then sends its hooks to the host's entry without
// the search; a workload registered afterwards for that cgroup, or for an ancestor of it, takes
// its tasks at once: the word no longer holds (with it, the host's rule would still deny). The
// cgroup's own workload is tested with its slot emptied, as where two workloads share it.
func TestOutsiders(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	mkfile(t, "/wt/out/host-blocked", 0)
	mkfile(t, "/wt/out/wl-blocked", 0)
	b := newBackend(t)
	other, _ := testCgroup(t, "ward-out-other")
	parent, _ := testCgroup(t, "ward-out")
	child, childfd := testCgroup(t, "ward-out/child")
	if child>>32 != 0 {
		t.Fatalf("cgroup id %#x has more than 32 bits: no outsiders word to test", child)
	}
	hostSet := hostPolicyInCgroup(t, "out-host", "  file:\n    matchPaths:\n    - path: /wt/out/host-blocked\n", 0)
	hostSet.Workload = host
	workloadSet := func(cg uint64) *rules.Set {
		s := hostPolicyInCgroup(t, "out-wl", "  file:\n    matchPaths:\n    - path: /wt/out/wl-blocked\n", cg)
		s.Workload.ContainerID = fmt.Sprintf("out-%d", cg)
		return s
	}
	elsewhere := workloadSet(other) // a container: the hooks look tasks' cgroups up
	opens := func(step, path string, ok bool) { t.Helper(); opensTwice(t, childfd, step, path, ok) }
	idx := uint32(child & (1<<wlSlotBits - 1))
	outsider := func(step string) {
		t.Helper()
		must(t, b.Apply(t.Context(), []*rules.Set{hostSet, elsewhere}))
		deniedWithEvent(t, b, childfd, step, "open:/wt/out/host-blocked", policy.OpFile, hostSet, "out-host")
		opens(step, "/wt/out/wl-blocked", true)
		var word uint64
		must(t, b.objs.Outsiders.Lookup(idx, &word))
		epoch := atomic.LoadUint64(b.entries.registered) & (1<<outsiderValidShift - 1)
		if want := child>>wlSlotBits<<slotTagShift | 1<<outsiderValidShift | epoch; word != want {
			t.Errorf("%s: outsiders word %#x, want %#x", step, word, want)
		}
	}
	for _, c := range []struct {
		name string
		cg   uint64
	}{{"the cgroup's own workload", child}, {"its parent's workload", parent}} {
		outsider("an outsider, before " + c.name)
		set := workloadSet(c.cg)
		must(t, b.Apply(t.Context(), []*rules.Set{hostSet, elsewhere, set}))
		// The cgroup's own slot would name its entry before the word is read: emptied,
		// as a slot two workloads share is, the hash map must find it.
		word := b.entries.load(uint64(idx))
		if c.cg == child {
			atomic.StoreUint64(&b.entries.slots[idx], 0)
		}
		deniedWithEvent(t, b, childfd, c.name, "open:/wt/out/wl-blocked", policy.OpFile, set, "out-wl")
		opens(c.name, "/wt/out/host-blocked", true)
		atomic.StoreUint64(&b.entries.slots[idx], word)
	}
}

// opensTwice opens path twice in a new process of cgroup cgfd each time (the second open is the
// per-inode cache's) and fails the test unless each succeeds (ok) or fails with EPERM.
func opensTwice(t *testing.T, cgfd int, step, path string, ok bool) {
	t.Helper()
	want := "open:" + path + map[bool]string{true: " ok", false: " errno 1"}[ok]
	for range 2 {
		if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+path); got != want {
			t.Errorf("%s: %q, want %q", step, got, want)
		}
	}
}
