# The BPF-LSM backend's BPF objects (internal/enforcer/bpflsm, docs/bpflsm.md).
# Included by the root Makefile.

.PHONY: generate-bpflsm check-generate-bpflsm

# bpf2go (clang-14, libbpf-dev headers, the committed vmlinux.h).
generate-bpflsm:
	cd internal/enforcer/bpflsm && $(GO) generate ./...

# Regenerate and fail if the committed output differs.
check-generate-bpflsm: generate-bpflsm
	git diff --exit-code -- internal/enforcer/bpflsm
	@test -z "$$(git status --porcelain -- internal/enforcer/bpflsm)" || { git status --porcelain -- internal/enforcer/bpflsm; echo "generate-bpflsm left untracked files"; exit 1; }

generate: generate-bpflsm
check-generated: check-generate-bpflsm
