//go:build vm

package bpflsm

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestFileNamesFilter: in a workload whose file rules are all exact paths, a file whose name
// ends no rule's path is decided without resolving its path (wl_val.file_names), and that
// changes no decision:
//   - a hard link, made before the policy, to a blocked file is denied by its inode (EPERM,
//     an event attributed to the rule) under a name the filter does not know;
//   - a file bind-mounted, after the policy, onto a blocked path is denied by that path: its
//     dentry's name is the source file's, not the last component of its path, so the root of a
//     mount is always resolved;
//   - a file the filter permitted is cached as matching no rule, and renamed onto a blocked path
//     that had no file when the policy was applied (so no inode key), it is denied there;
//   - under a file allow-list with the Block posture, a file no rule names is denied with an
//     event that carries its path, resolved for the event.
func TestFileNamesFilter(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	for _, p := range []string{"/wt/n/secret", "/wt/n/other", "/wt/n/allowed", "/wt/n/mnt/x", "/wt/n/src"} {
		mkfile(t, p, 0)
	}
	must(t, os.Link("/wt/n/secret", "/wt/n/alias"))
	cg, cgfd := testCgroup(t, "ward-names")
	b := newBackend(t)

	spec := "  file:\n    matchPaths:\n    - path: /wt/n/secret\n    - path: /wt/n/mnt/x\n    - path: /wt/n/later\n"
	set := hostPolicyInCgroup(t, "names", spec, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{set}))
	tr := b.byID[set.Workload.ID()].tr
	for _, name := range []string{"alias", "src", "other"} {
		if tr.FileNames&nameBit(name) != 0 {
			t.Fatalf("the name %q shares a bit with the rules' names (%#x): the test would not reach the filter", name, tr.FileNames)
		}
	}
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/n/other"); got != "open:/wt/n/other ok" {
		t.Errorf("open of a file no rule names: %q, want ok", got)
	}
	if c, ok := cacheEntry(t, b, "/wt/n/other"); !ok || c.Cgroup != cg || c.Bits != 0 || c.Sbits != 0 || c.Stamp != c.Moves {
		t.Errorf("cache entry of the file the filter permitted: %+v (found %v), want one of this workload with no bits", c, ok)
	}
	must(t, os.Rename("/wt/n/other", "/wt/n/later"))
	deniedWithEvent(t, b, cgfd, "cached unnamed file renamed onto a blocked path", "open:/wt/n/later", policy.OpFile, set, "names")
	must(t, os.Rename("/wt/n/later", "/wt/n/other"))
	deniedWithEvent(t, b, cgfd, "hard link under another name", "open:/wt/n/alias", policy.OpFile, set, "names")
	deniedWithEvent(t, b, cgfd, "blocked file by its own name", "open:/wt/n/secret", policy.OpFile, set, "names")

	must(t, unix.Mount("/wt/n/src", "/wt/n/mnt/x", "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount("/wt/n/mnt/x", unix.MNT_DETACH) })
	deniedWithEvent(t, b, cgfd, "file bind-mounted onto a blocked path", "open:/wt/n/mnt/x", policy.OpFile, set, "names")

	allow := hostPolicyWith(t, "names-allow", "  file:\n    matchPaths:\n    - path: /wt/n/allowed\n", policy.ActionAllow,
		rules.Postures{File: policy.ActionBlock, Network: policy.ActionAudit, Capabilities: policy.ActionAudit}, cg)
	must(t, b.Apply(t.Context(), []*rules.Set{allow}))
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/n/allowed"); got != "open:/wt/n/allowed ok" {
		t.Errorf("open of the allowed file: %q, want ok", got)
	}
	drain(b)
	if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:/wt/n/other"); got != "open:/wt/n/other errno 1" {
		t.Errorf("open of a file outside the allow-list: %q, want errno 1", got)
	}
	ev, ok := waitEvent(b, func(ev enforcer.Event) bool { return ev.Access.Path == "/wt/n/other" })
	if !ok {
		t.Fatal("no event with the path /wt/n/other for the open the posture denied")
	}
	if v := allow.Decide(ev.Access); ev.Errno != 1 || v.Action != "Block" {
		t.Errorf("posture event: errno %d access %+v, verdict %+v", ev.Errno, ev.Access, v)
	}
}

// TestFileNamesLengths: the filter reads a name shorter than the dentry's inline buffer (32
// bytes) from the dentry with direct loads, picking its last byte out of one of four words, and
// a longer one with helper calls. A blocked file of every length from 1 to 40 is denied with an
// event, four lengths to a policy so that a name read wrong would seldom hit another rule's bit
// (a bit set by chance would let it through to the path lookup and hide the error). The files
// are made after the policies, so that no inode key names them: the name alone must tell.
func TestFileNamesLengths(t *testing.T) {
	vmguest.RequireGuest(t)
	must(t, os.RemoveAll("/wt"))
	copySelf(t, "/wt/bin/reader")
	cg, cgfd := testCgroup(t, "ward-name-lengths")
	b := newBackend(t)
	name := func(n int, last byte) string { // n bytes, the last one given
		if n == 1 {
			return string(last)
		}
		return "f" + strings.Repeat("m", n-2) + string(last)
	}
	for first := 1; first <= 40; first += 4 {
		var spec strings.Builder
		spec.WriteString("  file:\n    matchPaths:\n")
		for n := first; n < first+4; n++ {
			blocked := "/wt/len/" + name(n, 'z')
			fmt.Fprintf(&spec, "    - path: %s\n", blocked)
		}
		policyName := fmt.Sprintf("len%d", first)
		set := hostPolicyInCgroup(t, policyName, spec.String(), cg)
		must(t, b.Apply(t.Context(), []*rules.Set{set}))
		for n := first; n < first+4; n++ {
			blocked, other := "/wt/len/"+name(n, 'z'), "/wt/len/"+name(n, 'y')
			// Made after the policy: a file that exists when it is applied gets an inode
			// key, which would deny it even with its name read wrong.
			mkfile(t, blocked, 0)
			mkfile(t, other, 0)
			deniedWithEvent(t, b, cgfd, fmt.Sprintf("blocked name of %d bytes", n), "open:"+blocked, policy.OpFile, set, policyName)
			if got := helperRun(t, cgfd, "/wt/bin/reader", 0, "open:"+other); got != "open:"+other+" ok" {
				t.Errorf("open of %s, a name of %d bytes no rule names: %q, want ok", other, n, got)
			}
		}
	}
}
