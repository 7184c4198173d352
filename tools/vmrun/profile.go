package main

import (
	"fmt"
	"sort"
	"strings"
)

// bootProfile is one way of booting the test VM: the kernel command line, the
// LSMs that must then be active, and what the guest needs to use them. Adding
// a profile (selinux, say) means adding a value to profiles; nothing else in
// the harness knows about a particular LSM.
type bootProfile struct {
	Name string
	// Cmdline is appended to the harness's own kernel arguments.
	Cmdline []string
	// LSMs must all appear in /sys/kernel/security/lsm, or the guest stops
	// before running the test: a profile that silently boots without its LSM
	// would let every enforcement test pass for the wrong reason.
	LSMs []string
	// Tools are host executables copied into the initramfs at the same path,
	// with the shared libraries ldd reports.
	Tools []string
	// Trees are host files or directories copied in as they are
	// (configuration, policy).
	Trees []string
	// Modules are extra kernel modules to load at boot, by name.
	Modules []string
	// Setup is shell run by the guest's init after the standard mounts and
	// before the test (for example: mount selinuxfs and load a policy).
	Setup string
	// Files builds files on the host (a binary policy, say) and returns them
	// by their path in the archive. cacheDir is vmrun's cache, for results
	// too slow to rebuild on every boot.
	Files func(cacheDir string) (map[string][]byte, error)
}

// profiles lists the boot profiles.
var profiles = map[string]bootProfile{
	"apparmor": {
		Name:    "apparmor",
		Cmdline: []string{"lsm=landlock,lockdown,yama,apparmor,bpf"},
		LSMs:    []string{"apparmor", "bpf"},
		// runc and crun (Debian's) run containers from a busybox rootfs for the
		// OCI hook tests (docs/containers.md): no image registry is involved.
		Tools: []string{"/usr/sbin/apparmor_parser", "/usr/bin/aa-exec", "/usr/sbin/runc", "/usr/bin/crun"},
		Trees: []string{
			"/etc/apparmor",
			// parser.conf pins the policy feature ABI to this file.
			"/usr/share/apparmor-features",
			"/etc/apparmor.d/abi",
			"/etc/apparmor.d/abstractions",
			"/etc/apparmor.d/tunables",
		},
		Setup: "[ -d /sys/kernel/security/apparmor ] || die 'apparmor: /sys/kernel/security/apparmor is missing'",
	},
	// selinux boots SELinux (AppArmor cannot be active beside it) with
	// Debian's reference policy plus Ward's static module, enforcing. See
	// selinuxFiles and docs/selinux.md.
	"selinux": {
		Name:    "selinux",
		Cmdline: []string{"security=selinux", "selinux=1", "enforcing=0", "lsm=landlock,lockdown,yama,selinux,bpf"},
		LSMs:    []string{"selinux", "bpf"},
		// secilc rebuilds the policy in the guest when a test's module has
		// fromSource domains (selinuxSemodule in the backend's VM tests).
		Tools: []string{"/usr/bin/secilc"},
		Files: selinuxFiles,
		Setup: selinuxSetup,
	},
}

func lookupProfile(name string) (bootProfile, error) {
	p, ok := profiles[name]
	if !ok {
		names := make([]string, 0, len(profiles))
		for n := range profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		return bootProfile{}, fmt.Errorf("unknown boot profile %q (have: %s)", name, strings.Join(names, ", "))
	}
	return p, nil
}

// guestScript is the profile's part of the guest init: check the LSMs, then
// run Setup.
func (p bootProfile) guestScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export WARD_VM_PROFILE=%s\n", shellQuote(p.Name))
	b.WriteString("lsms=\",$(cat /sys/kernel/security/lsm),\"\n")
	for _, l := range p.LSMs {
		fmt.Fprintf(&b, "case \"$lsms\" in *,%s,*) ;; *) die \"profile %s: LSM %s is not active (lsm=$lsms)\" ;; esac\n", l, p.Name, l)
	}
	if p.Setup != "" {
		b.WriteString(p.Setup)
		b.WriteString("\n")
	}
	return b.String()
}

// shellQuote quotes s for POSIX sh so it stays one word, whatever it holds.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
