//go:build vm

package apparmor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/conformance"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// knownDifferences lists the conformance accesses whose outcome under AppArmor differs from
// rules.Decide, keyed "case/index", with the reason (docs/apparmor.md keeps the same list). An
// unlisted difference fails the test, and so does a listed one that no longer differs.
var knownDifferences = map[string]string{
	"audit-readonly-dry-run/1":                auditDryRun,
	"audit-owneronly-dry-run/2":               auditDryRun,
	"audit-readonly-owneronly-dry-run/1":      auditDryRun,
	"audit-readonly-owneronly-dry-run/2":      auditDryRun,
	"fromsource-allow-before-general-block/0": "the child profile of a fromSource executable keeps the general deny, which overrides its allow (issue 13, item 2)",
}

const auditDryRun = "the profile audits the accesses inside an Audit rule's readOnly/ownerOnly set, not the ones Block would deny (issue 13, item 1)"

// TestConformance runs the shared case table (internal/conformance) under AppArmor: for every
// access it loads the case's profile, performs the access for real as the case's acting
// executable and user, and checks the errno and the kernel's record, attributed by Attribute,
// against the verdict the table expects.
func TestConformance(t *testing.T) {
	vmguest.RequireProfile(t, "apparmor")
	unlimitKmsg(t)
	cases, err := conformance.Cases()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	loader := NewLoader(t.TempDir(), nil)
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ps, postures, err := c.Load()
			if err != nil {
				t.Fatal(err)
			}
			set, err := rules.Compile(ps, host, postures)
			if err != nil {
				t.Fatal(err)
			}
			prepareRoot(t, self, c)
			name := "ward-c-" + c.Name
			prof, warns, err := Render(set, Options{Host: ReadHost(DefaultDir), Name: name})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warns {
				t.Logf("warning: %s", w)
			}
			ctx := context.Background()
			if err := loader.Load(ctx, prof); err != nil {
				t.Fatalf("%+v", err)
			}
			defer func() {
				if err := loader.Remove(ctx, name); err != nil {
					t.Errorf("remove: %v", err)
				}
			}()
			var sources []string
			for _, r := range set.Rules {
				for _, fs := range r.FromSource {
					sources = append(sources, fs.Path)
				}
			}
			for i, a := range c.Accesses {
				key := fmt.Sprintf("%s/%d", c.Name, i)
				seen[key] = true
				diff := runAccess(t, set, name, sources, a)
				reason, known := knownDifferences[key]
				switch {
				case diff != "" && !known:
					t.Errorf("%s (%s): AppArmor differs from rules.Decide: %s", key, a.Describe(), diff)
				case diff == "" && known:
					t.Errorf("%s (%s): listed as a known difference (%s) but AppArmor agrees with Decide now", key, a.Describe(), reason)
				case diff != "":
					t.Logf("%s (%s): known difference: %s (%s)", key, a.Describe(), diff, reason)
				}
			}
		})
	}
	for k := range knownDifferences {
		if !seen[k] {
			t.Errorf("known difference %s names no access of the table", k)
		}
	}
}

// prepareRoot rebuilds /wt for a case: the helper binaries and every file the accesses name,
// owned by the access's owner and open to everyone, so that only AppArmor can say no.
func prepareRoot(t *testing.T, self string, c conformance.Case) {
	t.Helper()
	if err := os.RemoveAll("/wt"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/wt/bin", 0o777); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"reader", "writer", "other", "tool"} {
		if out, err := exec.Command("cp", self, "/wt/bin/"+b).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
	mk := func(p string, owner uint32) {
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, int(owner), int(owner)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range c.Accesses {
		if a.Op == "file" {
			mk(a.Path, a.Owner)
		}
	}
	mk("/wt/chown-target", 0)
	// Every directory must be searchable by the unprivileged users of the table.
	filepath.Walk("/wt", func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			os.Chmod(p, 0o777)
		}
		return nil
	})
}

// runAccess performs one access under the profile and returns "" when errno and record agree
// with the expected verdict, or what differs.
func runAccess(t *testing.T, set *rules.Set, name string, sources []string, a conformance.AccessCase) string {
	t.Helper()
	source := a.Source
	if source == "" {
		source = conformance.DefaultSource
	}
	label := name
	if slices.Contains(sources, source) {
		label = name + "//" + source
	}
	var op string
	switch a.Op {
	case "file":
		op = "open:" + a.Path
		if a.Write {
			op = "write:" + a.Path
		}
	case "process":
		op = "exec:" + a.Path
	case "network":
		op = a.Protocol
	case "capabilities":
		if a.Capability != "chown" {
			t.Fatalf("no trigger for capability %s", a.Capability)
		}
		op = "chown:/wt/chown-target"
	default:
		t.Fatalf("unknown op %q", a.Op)
	}

	start := kmsgCursor(t)
	cmd := exec.Command("aa-exec", "-p", label, "--", source)
	cmd.Env = append(os.Environ(), helperEnv+"="+op)
	if a.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.UID, Gid: a.UID}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("aa-exec -p %s -- %s: %v: %s", label, source, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	got := lines[len(lines)-1]
	wantErr := ""
	if a.Want.Action == policy.ActionBlock {
		errno := syscall.EACCES
		if a.Op == "capabilities" {
			errno = syscall.EPERM
		}
		wantErr = fmt.Sprintf("%s errno %d", op, int(errno))
	} else {
		wantErr = op + " ok"
	}
	var diffs []string
	if got != wantErr {
		diffs = append(diffs, fmt.Sprintf("helper printed %q (%s), want %q", got, strings.Join(lines[:len(lines)-1], "; "), wantErr))
	}

	// The kernel's records about this access, attributed.
	matches := func(r Record) bool {
		switch a.Op {
		case "file", "process":
			return r.Name == a.Path
		case "network":
			return r.Family != ""
		case "capabilities":
			return r.CapName == a.Capability
		}
		return false
	}
	wantRecord := map[policy.Action]string{policy.ActionBlock: "DENIED", policy.ActionAudit: "AUDIT"}[a.Want.Action]
	deadline := time.Now().Add(3 * time.Second)
	for {
		found := wantRecord == ""
		var bad []string
		for _, l := range kmsgSince(t, start) {
			r, err := ParseRecord(l)
			if err != nil || !strings.HasPrefix(r.Profile, name) || !matches(r) {
				continue
			}
			_, v := Attribute(set, r)
			if err := a.Want.Check(v); err != nil {
				bad = append(bad, fmt.Sprintf("record apparmor=%s op=%s: %v", r.Apparmor, r.Operation, err))
				continue
			}
			if r.Apparmor == wantRecord {
				found = true
			}
		}
		if len(bad) > 0 || found || time.Now().After(deadline) {
			diffs = append(diffs, bad...)
			if !found {
				diffs = append(diffs, fmt.Sprintf("no apparmor=%q record", wantRecord))
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return strings.Join(diffs, "; ")
}
