# The end-to-end suite on a real Kubernetes node (docs/kubernetes.md, "A real node"): the cluster
# binaries it needs, each built from a pinned module under tools/ and cached outside the clone
# like kube-apiserver (mk/k8s.mk), and the test target. Included by the root Makefile.

.PHONY: k8s-node-bins containerd-bins cni-plugins node-images node-deps k8s-node-replace

# kubelet, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes
# (tools/k8s, its own module, naming them in its tool block). One `go build` compiles the packages
# they share once and links the four; the directory name carries a hash of the module files so a
# version bump rebuilds. The version is stamped as Kubernetes' own build does, or the binaries
# report v0.0.0 (kubelet then refuses nothing, but kubectl version and the node object lie).
K8S_VERSION := v1.37.2
K8S_NODE_HASH := $(shell cat tools/k8s/go.mod tools/k8s/go.sum 2>/dev/null | sha256sum | cut -c1-16)
K8S_NODE_BIN ?= $(WARD_CACHE_DIR)/k8s/node-$(K8S_NODE_HASH)
K8S_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION)

$(K8S_NODE_BIN)/.done:
	@mkdir -p $(WARD_CACHE_DIR)/k8s
	d=$(K8S_NODE_BIN).tmp.$$$$ && rm -rf $$d && mkdir -p $$d && \
	cd tools/k8s && $(GO) build -trimpath -ldflags='$(K8S_LDFLAGS)' -o $$d/ \
		k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl && \
	touch $$d/.done && rm -rf $(K8S_NODE_BIN) && mv $$d $(K8S_NODE_BIN)

k8s-node-bins: $(K8S_NODE_BIN)/.done

# Regenerate tools/k8s's replace block from k8s.io/kubernetes' go.mod: every staging module it
# requires at v0.0.0 resolves to the published tag of the same minor.
k8s-node-replace:
	cd tools/k8s && mod=$$($(GO) list -m -f '{{.Dir}}' k8s.io/kubernetes)/go.mod && \
	awk -v v=v0.$(word 2,$(subst ., ,$(K8S_VERSION))).$(word 3,$(subst ., ,$(K8S_VERSION))) \
		'/^require/{r=1} r && $$1 ~ /^k8s.io\// && $$2=="v0.0.0" {printf "\t%s => %s %s\n",$$1,$$1,v}' $$mod

# containerd 2.4.2 (with ctr and the runc shim) and the CNI plugins the node uses (bridge,
# host-local, loopback), from tools/containerd. Static builds: CGO_ENABLED=0 is exported by the
# root Makefile and containerd builds with no tags. runc comes from Debian (the VM profile copies
# the host's).
CONTAINERD_HASH := $(shell cat tools/containerd/go.mod tools/containerd/go.sum 2>/dev/null | sha256sum | cut -c1-16)
CONTAINERD_BIN ?= $(WARD_CACHE_DIR)/k8s/containerd-$(CONTAINERD_HASH)

$(CONTAINERD_BIN)/.done:
	@mkdir -p $(WARD_CACHE_DIR)/k8s
	d=$(CONTAINERD_BIN).tmp.$$$$ && rm -rf $$d && mkdir -p $$d && \
	cd tools/containerd && $(GO) build -trimpath \
		-ldflags='-s -w -X github.com/containerd/containerd/v2/version.Version=2.4.2' -o $$d/ \
		github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr \
		github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/main/bridge \
		github.com/containernetworking/plugins/plugins/main/loopback && \
	touch $$d/.done && rm -rf $(CONTAINERD_BIN) && mv $$d $(CONTAINERD_BIN)

containerd-bins: $(CONTAINERD_BIN)/.done

# The pause and busybox images (tools/nodeimages), keyed by the tool's sources and the busybox it
# packs.
NODE_IMAGES_HASH := $(shell cat tools/nodeimages/go.mod tools/nodeimages/go.sum tools/nodeimages/*.go tools/nodeimages/pause/*.go /bin/busybox 2>/dev/null | sha256sum | cut -c1-16)
NODE_IMAGES ?= $(WARD_CACHE_DIR)/k8s/images-$(NODE_IMAGES_HASH)

$(NODE_IMAGES)/.done:
	@mkdir -p $(WARD_CACHE_DIR)/k8s
	d=$(NODE_IMAGES).tmp.$$$$ && rm -rf $$d && mkdir -p $$d && \
	(cd tools/nodeimages && $(GO) build -trimpath -ldflags='-s -w' -o $$d/ . ./pause) && \
	$$d/nodeimages -pause $$d/pause -out $$d && \
	touch $$d/.done && rm -rf $(NODE_IMAGES) && mv $$d $(NODE_IMAGES)

node-images: $(NODE_IMAGES)/.done

# Everything the node suite needs besides kube-apiserver and the Ward image.
node-deps: $(K8S_NODE_BIN)/.done $(CONTAINERD_BIN)/.done $(NODE_IMAGES)/.done

# The Ward image the suite installs: what `make image` writes (mk/image.mk), named as deploy/
# names it.
NODE_WARD_IMAGE ?= $(IMAGE_ARCHIVE)
NODE_WARD_REF ?= $(IMAGE)

# How many policy edits and pod starts the timing steps take: small in make test, 50 and 5 for
# the figures in docs/kubernetes.md.
NODE_EDITS ?= 4
# One pod start each way: under CI, beside the VM suite, a start took a median 21 s (41 s with Ward) of the node
# suite's critical path, and make test only needs the start to work and a rough figure.
NODE_STARTS ?= 1

.PHONY: test-node node-prereqs node-suite
# The end-to-end suite on a real node (internal/nodetest, build tag node). Fails, never skips,
# when a binary is missing. vmrun boots the node; WARD_VM_CACHE is passed through. When working
# on one step: NODE_TESTFLAGS='-run TestNode/lsm=apparmor/no-window' (WARD_NODE_LSM=apparmor
# skips the other backend's install too).
test-node: node-prereqs
	$(MAKE) --no-print-directory node-suite

# Everything the suite runs, built before it starts: make test runs the suite beside the VM suite
# (test and test-kernels in the root Makefile), which must not find bin/vmrun being rebuilt.
node-prereqs: $(KUBE_APISERVER) node-deps image vmrun

# The suite alone, with nothing built first.
node-suite:
	WARD_KUBE_APISERVER=$(KUBE_APISERVER) WARD_NODE_K8S=$(K8S_NODE_BIN) \
	WARD_NODE_CONTAINERD=$(CONTAINERD_BIN) WARD_NODE_IMAGES=$(NODE_IMAGES) \
	WARD_NODE_WARD_IMAGE=$(abspath $(NODE_WARD_IMAGE)) WARD_NODE_WARD_REF=$(NODE_WARD_REF) \
	WARD_NODE_VMRUN=$(abspath bin/vmrun) WARD_NODE_EDITS=$(NODE_EDITS) WARD_NODE_STARTS=$(NODE_STARTS) \
	$(GO) test -tags node -count=1 -v -timeout 60m $(NODE_TESTFLAGS) ./internal/nodetest
