# Ward's build and test entry points. `make test` is the test command README names and CI runs.
SHELL := /bin/bash
GO ?= go
export CGO_ENABLED ?= 0

.PHONY: all build test test-lane test-host test-kernels guest-prereqs lint fmt-check vet staticcheck unit bench fuzz generate check-generated clean

all: build

build:
	$(GO) build -o bin/ward ./cmd/ward

# Everything: formatting and static checks, generated code (bpf2go objects, CRDs, protobuf)
# regenerated and compared with what is committed, host tests, benchmarks once, the VM suite,
# the API server tests (test-kube, mk/k8s.mk) and the end-to-end suite on a real Kubernetes node
# (mk/node.mk; its cluster binaries are built once into ~/.cache/ward/k8s, which takes most of an
# hour on a fresh machine).
#
# The node suite is the longest part: it starts as soon as what it runs is built (guest-prereqs),
# beside test-lane, which runs the rest one part after the other. Started after the host checks,
# with the API server tests after it, it left one core idle during each. -O prints each side's
# output in one piece when it ends.
test: guest-prereqs
	@echo "test: the node suite runs beside the host checks, the VM suite and the API server tests; each side prints its output when it ends"
	$(MAKE) --no-print-directory -j2 -O node-suite test-lane

test-lane:
	$(MAKE) --no-print-directory test-host
	$(MAKE) --no-print-directory test-vm
	$(MAKE) --no-print-directory test-kube

test-host: lint check-generated unit bench

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Build tag sets that together compile every file (the VM, SELinux, node, cluster and harness
# suites), so that code only a suite compiles is checked too. No file excludes selinux, vmred,
# node or vmhost, so those go with the sets they add to; vm alone stays, for what only the
# tagged-out files use (the SELinux helpers were unused there).
LINT_TAGS := "" vm "vm selinux vmred" "kube node vmhost"

vet:
	@set -e; for tags in $(LINT_TAGS); do echo "$(GO) vet -tags '$$tags' ./..."; $(GO) vet -tags "$$tags" ./...; done

staticcheck:
	@set -e; for tags in $(LINT_TAGS); do echo "$(GO) tool staticcheck -tags '$$tags' ./..."; $(GO) tool staticcheck -tags "$$tags" ./...; done

unit:
	$(GO) test -count=1 ./...

# Benchmarks run once each so that they keep compiling and working; figures come from
# `make bench BENCHTIME=2s`.
BENCHTIME ?= 1x
bench:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

FUZZTIME ?= 5m
fuzz:
	$(GO) test ./internal/policy -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

# The VM suite and the node suite side by side. Every guest runs on one host thread (single-
# threaded TCG, docs/vm-harness.md): test-vm runs two at a time, the node suite one, so one after
# the other left a core of a two-core machine idle for the node suite's twenty minutes. -O prints
# each suite's output in one piece when it ends.
test-kernels: guest-prereqs
	@echo "test-kernels: the VM suite and the node suite run side by side; each prints its output when it ends"
	$(MAKE) --no-print-directory -j2 -O test-vm node-suite

# What the two guest suites use, ready before either starts: vmrun and the node's binaries
# (node-prereqs), and the kernel and initramfs (vmrun -prepare), so that neither rebuilds or
# fetches what the other is running.
guest-prereqs: node-prereqs
	$(VMRUN) -prepare >/dev/null

clean:
	rm -rf bin

-include mk/*.mk
