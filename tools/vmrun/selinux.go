package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wardsec/ward/internal/enforcer/selinux"
)

// Where the selinux profile puts what it builds, in the guest.
const (
	selinuxPolicy = "etc/ward-vm/selinux/policy"
	// selinuxBase is the reference policy's modules as one CIL file, so
	// that tests can rebuild the policy with a module of their own.
	selinuxBase = "etc/ward-vm/selinux/base.cil"
)

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
		selinuxBase:   append(append(base, '\n'), harnessCIL...),
		strings.TrimPrefix(filepath.Join(selinux.DefaultStateDir, selinux.ModuleName+".cil"), "/"): mod,
	}, nil
}
