# The system monitor's BPF program (internal/monitor, docs/monitor.md). Included by the root
# Makefile.

.PHONY: generate-monitor check-generate-monitor

# bpf2go for the monitor (clang-14, libbpf-dev headers, the shared vmlinux.h).
generate-monitor:
	cd internal/monitor && $(GO) generate ./...

# Regenerate and fail if the committed output differs.
check-generate-monitor: generate-monitor
	git diff --exit-code -- internal/monitor
	@test -z "$$(git status --porcelain -- internal/monitor)" || { git status --porcelain -- internal/monitor; echo "generate-monitor left untracked files"; exit 1; }

generate: generate-monitor
check-generated: check-generate-monitor
