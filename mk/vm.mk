# The real-kernel test suite: tools/vmrun boots Debian's 6.1 kernel under
# qemu and runs vm-tagged tests inside it (docs/vm-harness.md). Included by
# the root Makefile.

VMRUN := $(CURDIR)/bin/vmrun

.PHONY: test-vm bench-vm vmrun vm-prepare generate-vmtest check-generate-vmtest update-vmlinux-h

# The whole VM suite: guest tests of every package with vm-tagged tests, the
# harness's own host-side tests, and a timing summary.
test-vm:
	GO=$(GO) scripts/vm/test-vm.sh

# The in-VM benchmarks, in VMs whose clock counts instructions; writes docs/performance.md
# (scripts/vm/bench-vm.sh, docs/performance.md). Not part of make test: test-vm runs each
# BenchmarkReport once with tiny iteration counts so that it keeps working.
bench-vm:
	GO=$(GO) scripts/vm/bench-vm.sh

vmrun:
	$(GO) build -o $(VMRUN) ./tools/vmrun

# Fetch the kernel (apt-get download) and build the initramfs into .cache/vm.
vm-prepare: vmrun
	$(VMRUN) -prepare

# bpf2go for the harness's BPF self-test (clang-14, libbpf-dev headers).
generate-vmtest:
	cd internal/vmtest && $(GO) generate ./...

# Regenerate and fail if the committed output differs.
check-generate-vmtest: generate-vmtest
	git diff --exit-code -- internal/vmtest
	@test -z "$$(git status --porcelain -- internal/vmtest)" || { git status --porcelain -- internal/vmtest; echo "generate-vmtest left untracked files"; exit 1; }

# Refresh vmlinux.h from the VM kernel's BTF (boots a VM; not part of the
# check, since it follows the newest kernel Debian serves).
update-vmlinux-h: vmrun
	VMRUN=$(VMRUN) internal/enforcer/bpflsm/bpf/include/update.sh

generate: generate-vmtest
check-generated: check-generate-vmtest
