# Ward's build and test entry points. `make test` is the test command README names and CI runs.
SHELL := /bin/bash
GO ?= go
export CGO_ENABLED ?= 0

.PHONY: all build test test-host lint fmt-check vet staticcheck unit bench fuzz generate check-generated clean

all: build

build:
	$(GO) build -o bin/ward ./cmd/ward

# Everything: formatting and static checks, generated code (bpf2go objects, CRDs, protobuf)
# regenerated and compared with what is committed, host tests, benchmarks once, the VM suite,
# then the end-to-end suite on a real Kubernetes node (mk/node.mk; its cluster binaries are
# built once into ~/.cache/ward/k8s, which takes most of an hour on a fresh machine).
test: test-host test-vm test-node

test-host: lint check-generated unit bench

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags vm ./...
	$(GO) vet -tags kube ./...

staticcheck:
	$(GO) tool staticcheck ./...

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

clean:
	rm -rf bin

-include mk/*.mk
