//go:build vm

package apparmor

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"

	"github.com/wardsec/ward/internal/conformance"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// knownDifferences lists the conformance accesses whose outcome under AppArmor differs from
// rules.Decide (conformance.Run); docs/apparmor.md keeps the same list.
var knownDifferences = map[string]string{
	"file-allowlist-posture-audit/0":          blanketAuditNoise,
	"fromsource-allow-before-general-block/0": blanketAuditNoise + " (here in the reader's child profile: the read is permitted, as Decide says)",
}

const blanketAuditNoise = "under posture audit the blanket audit line also reports the access an Allow rule permits (AppArmor unions audit marks); attribution makes no alert of it and the pipeline drops it"

// TestConformance runs the shared case table (internal/conformance) under AppArmor through the
// Backend, as the daemon drives it: Apply loads the host workload's profile, each access runs
// under it (in the child profile when the acting executable is a fromSource one) and the
// backend's Events deliver the kernel's records.
func TestConformance(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	vmguest.UnlimitKmsg(t)
	// The host profile attaches to no program by itself: the runner starts each access under it
	// with aa-exec, which (like the test binary) must stay outside an allow-list's reach.
	// Attachment to every program is cmd/ward's TestHostPolicyConfinesNewShellAppArmor.
	b, err := New(context.Background(), Config{Dir: t.TempDir(), HostAttach: HostAttachNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	conformance.Run(t, &driver{b: b}, knownDifferences)
}

// driver is the AppArmor backend as the conformance runner sees it.
type driver struct{ b *Backend }

func (d *driver) Name() string                  { return enforcer.AppArmor }
func (d *driver) Reset(*testing.T)              {}
func (d *driver) Events() <-chan enforcer.Event { return d.b.Events() }

func (d *driver) Errno(op policy.Operation) syscall.Errno {
	if op == policy.OpCapabilities {
		return syscall.EPERM
	}
	return syscall.EACCES
}

func (d *driver) Apply(t *testing.T, sets []*rules.Set) error {
	t.Cleanup(func() {
		if err := d.b.Apply(context.Background(), nil); err != nil {
			t.Errorf("clear: %v", err)
		}
	})
	err := d.b.Apply(context.Background(), sets)
	for _, w := range d.b.Warnings() {
		t.Logf("warning: %s", w)
	}
	return err
}

// Command starts exe under the workload's profile (the host's, or a container's, as the runtime
// attaches it), or under its child profile when exe is a fromSource executable: the profile an
// exec of exe from inside the workload transitions to.
func (d *driver) Command(_ *testing.T, set *rules.Set, exe string) *exec.Cmd {
	label := ProfileName(set.Workload)
	var sources []string
	for _, r := range set.Rules {
		for _, fs := range r.FromSource {
			sources = append(sources, fs.Path)
		}
	}
	if slices.Contains(sources, exe) {
		label += "//" + childName(exe)
		// Unless it shares the child of a source the same rules are limited to.
		if prof, _, err := Render(set, Options{}); err == nil {
			for child, members := range prof.Shared {
				if slices.Contains(members, exe) {
					label = ProfileName(set.Workload) + "//" + child
				}
			}
		}
	}
	cmd := exec.Command("aa-exec", "-p", label, "--", exe)
	cmd.Env = os.Environ()
	return cmd
}
