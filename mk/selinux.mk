# The SELinux backend (docs/selinux.md). Included by the root Makefile.
# Its host tests compile every generated module with secilc against Debian's
# reference policy: .ci/install-selinux-deps.sh installs both. Its VM tests
# carry the tags `vm selinux` and run in make test-vm's second pass, booted
# with the selinux profile.

.PHONY: test-vm-selinux

# Only the SELinux VM suite.
test-vm-selinux: vmrun
	CGO_ENABLED=0 WARD_VM_BOOT_PROFILE=selinux $(GO) test -count=1 -v -timeout 30m -tags 'vm selinux' \
		-exec $(VMRUN) ./internal/enforcer/selinux

