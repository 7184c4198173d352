//go:build vm

package bpflsm

import (
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

			opens := func(step, path string, ok bool) {
				t.Helper()
				for range 2 { // the second open is the per-inode cache's
					got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+path)
					if w := map[bool]string{true: " ok", false: " errno 1"}[ok]; got != "open:"+path+w {
						t.Errorf("%s: %q, want %q", step, got, "open:"+path+w)
					}
				}
			}
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
