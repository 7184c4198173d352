# Kubernetes mode: the CRDs generated from api/v1 and the tests against a real kube-apiserver
# (docs/kubernetes.md). Included by the root Makefile.

.PHONY: generate-crds check-generate-crds kube-apiserver test-kube

# controller-gen is pinned in go.mod's tool block; deepcopy goes next to the types, the CRDs to
# deploy/crds (one file per kind, named by controller-gen as group_plural.yaml).
generate-crds:
	$(GO) tool controller-gen object paths=./api/v1/...
	$(GO) tool controller-gen crd paths=./api/v1/... output:crd:artifacts:config=deploy/crds

# Regenerate and fail if the committed output differs.
check-generate-crds: generate-crds
	git diff --exit-code -- api/v1 deploy/crds
	@new=$$(git status --porcelain -- deploy/crds 'api/v1/zz_*'); \
	test -z "$$new" || { echo "$$new"; echo "generate-crds left untracked files"; exit 1; }

generate: generate-crds
check-generated: check-generate-crds

# kube-apiserver from k8s.io/kubernetes (tools/kube-apiserver, its own module), built once per
# content of that directory: the file name carries a hash of go.mod, go.sum and main.go, so a
# version bump rebuilds and an unchanged tree reuses the ~170 MB binary (5-10 minutes to build on
# 2 cores). The cache lives outside the repository so a fresh clone (CI clones afresh on every run)
# reuses it: $(WARD_CACHE_DIR)/k8s, WARD_CACHE_DIR defaulting to $XDG_CACHE_HOME/ward, else
# $HOME/.cache/ward. Override the whole path with KUBE_APISERVER=... .
# internal/testutil/kubeapi finds it through WARD_KUBE_APISERVER.
KUBE_APISERVER_HASH := $(shell cat tools/kube-apiserver/go.mod tools/kube-apiserver/go.sum tools/kube-apiserver/main.go 2>/dev/null | sha256sum | cut -c1-16)
WARD_CACHE_DIR ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/ward
KUBE_APISERVER ?= $(WARD_CACHE_DIR)/k8s/kube-apiserver-$(KUBE_APISERVER_HASH)

# The .tmp name carries the PID so two concurrent builds (two clones, two engineers) never write
# the same file; mv is atomic within the directory.
$(KUBE_APISERVER):
	@mkdir -p $(dir $@)
	cd tools/kube-apiserver && $(GO) build -trimpath -ldflags='-s -w' -o $@.tmp.$$$$ . && mv $@.tmp.$$$$ $@

kube-apiserver: $(KUBE_APISERVER)

# The packages holding a *_kube_test.go, with the kube tag; they fail (never skip) when
# kube-apiserver or etcd is missing. Only those packages: the rest of ./... is what `make unit`
# already ran, and each kube package starts its own API server. etcd comes from Debian's
# etcd-server (.ci/install-k8s-deps.sh).
KUBE_TEST_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell git ls-files -co --exclude-standard '*_kube_test.go'))))

test-kube: $(KUBE_APISERVER)
	@test -n "$(KUBE_TEST_PKGS)" || { echo "no *_kube_test.go files"; exit 1; }
	WARD_KUBE_APISERVER=$(KUBE_APISERVER) $(GO) test -tags kube -count=1 -timeout 8m $(KUBE_TEST_PKGS)

