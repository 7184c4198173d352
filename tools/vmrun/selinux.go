package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardsec/ward/internal/enforcer/selinux"
)

// selinuxPolicy is where the selinux profile puts the policy it boots with, in the guest.
const selinuxPolicy = "etc/ward-vm/selinux/policy"

// selinuxSetup mounts selinuxfs, loads the policy and enforces. The policy
// goes in with ONE write: the kernel rejects a policy written in chunks
// ("ebitmap: truncated map"), which is what busybox cat does.
const selinuxSetup = `mount -t selinuxfs selinuxfs /sys/fs/selinux || die 'selinux: mount selinuxfs'
dd if=/` + selinuxPolicy + ` of=/sys/fs/selinux/load bs=64M 2>/dev/null || die 'selinux: load the policy'
echo 1 >/sys/fs/selinux/enforce || die 'selinux: switch to enforcing'
[ "$(cat /sys/fs/selinux/enforce)" = 1 ] || die 'selinux: not enforcing'
touch /run/ward/probe || { dmesg | grep avc | tail -n 5; die 'selinux: cannot write to the run share'; }
rm -f /run/ward/probe`

// harnessCIL is policy for the harness, not for Ward: refpolicy has no
// labelling rule for 9p, so the shares that carry the test binary and its
// output are unlabeled_t, and creating a file there needs this.
const harnessCIL = `(allow unlabeled_t unlabeled_t (filesystem (associate)))
`

// vmAdminDomain is the domain Ward runs in, in the guest: every process
// the initramfs starts is kernel_t, and refpolicy lets it enter no other.
const vmAdminDomain = "kernel_t"

// selinuxFiles builds, on the host, the binary policy the selinux profile
// boots with: every module of Debian's reference policy store
// (selinux-policy-default, .ci/install-selinux-deps.sh) plus Ward's static
// module, compiled by secilc as semodule would. It also records that module
// where the backend's loader keeps the module it installed, so that the
// backend finds it in force and does not rebuild the policy. The policy is
// cached under the hash of its inputs: secilc takes seconds.
func selinuxFiles(cacheDir string) (map[string][]byte, error) {
	base, err := selinux.StoreCIL(selinux.DefaultStore)
	if err != nil {
		return nil, fmt.Errorf("selinux profile: %w", err)
	}
	mod := selinux.StaticModule(vmAdminDomain)
	h := sha256.New()
	h.Write(base)
	h.Write([]byte{0})
	h.Write(mod)
	h.Write([]byte(harnessCIL))
	dir := filepath.Join(cacheDir, "selinux")
	out := filepath.Join(dir, hex.EncodeToString(h.Sum(nil)[:8])+".policy")
	policy, err := os.ReadFile(out)
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(dir, ".build-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := os.WriteFile(filepath.Join(tmp, "base.cil"), base, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "ward.cil"), mod, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "harness.cil"), []byte(harnessCIL), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command("secilc", "-o", filepath.Join(tmp, "policy"), "-f", os.DevNull, "base.cil", "ward.cil", "harness.cil")
		cmd.Dir = tmp
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("selinux profile: secilc (install .ci/install-selinux-deps.sh): %w\n%s", err, strings.TrimSpace(string(b)))
		}
		if policy, err = os.ReadFile(filepath.Join(tmp, "policy")); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(tmp, "policy"), out); err != nil {
			return nil, err
		}
	}
	return map[string][]byte{
		selinuxPolicy: policy,
		strings.TrimPrefix(filepath.Join(selinux.DefaultStateDir, selinux.ModuleName+".cil"), "/"): mod,
	}, nil
}

// selinuxService is the selinux profile's host service: it stands in for the compiling half of
// semodule for the backend's VM tests (guestSemodule). The guest has no module store, so a test
// that installs a module with fromSource domains must rebuild the whole policy, and secilc spends
// most of a minute of emulated time on the reference policy's 22 MB of CIL where the host takes a
// few seconds. The bytes are the same either way: the host's secilc is the one whose policy the
// guest boots with, and the guest still loads the result into its own kernel.
//
// A request is NAME.cil, a module the guest writes under another name and renames; the answer is
// NAME.policy, the reference policy (with the harness's rules, as at boot) compiled together with
// it, or NAME.err, secilc's refusal. Both are renamed into place, so the guest never reads half a
// file.
func selinuxService(ctx context.Context, dir string) {
	var base string // written on the first request: reading the store takes a while
	done := map[string]bool{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".cil")
			if !ok || strings.HasPrefix(name, ".") || done[name] {
				continue
			}
			done[name] = true
			var err error
			if base == "" {
				if base, err = selinuxWriteBase(dir); err != nil {
					base = ""
					selinuxAnswer(dir, name, ".err", []byte(err.Error()))
					continue
				}
			}
			policy, err := selinuxCompile(ctx, base, filepath.Join(dir, e.Name()))
			if err != nil {
				selinuxAnswer(dir, name, ".err", []byte(err.Error()))
				continue
			}
			selinuxAnswer(dir, name, ".policy", policy)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// selinuxWriteBase writes the CIL the guest's boot policy was compiled from, less Ward's static
// module (a test's module replaces it, as semodule -i replaces a module of the same name).
func selinuxWriteBase(dir string) (string, error) {
	base, err := selinux.StoreCIL(selinux.DefaultStore)
	if err != nil {
		return "", fmt.Errorf("selinux service: %w", err)
	}
	path := filepath.Join(dir, ".base.cil")
	return path, os.WriteFile(path, append(append(base, '\n'), harnessCIL...), 0o644)
}

func selinuxCompile(ctx context.Context, base, module string) ([]byte, error) {
	out := module + ".out"
	defer os.Remove(out)
	cmd := exec.CommandContext(ctx, "secilc", "-o", out, "-f", os.DevNull, base, module)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("secilc: %w\n%s", err, strings.TrimSpace(string(b)))
	}
	return os.ReadFile(out)
}

func selinuxAnswer(dir, name, ext string, b []byte) {
	tmp := filepath.Join(dir, "."+name+ext)
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		_ = os.Rename(tmp, filepath.Join(dir, name+ext))
	}
}
