# The container image (docs/kubernetes.md, "The image"): one OCI archive written by tools/mkimage,
# without a registry or a container engine. Included by the root Makefile.
#
# IMAGE is the reference deploy/daemonset.yaml names; change both together (or use
# `kustomize edit set image`). The archive is bin/ward-image.tar, never committed.
# Reproducible: the same commit and the same Debian packages give the same digest
# (tools/mkimage: fixed time stamps, sorted entries, root owners; go build -trimpath).

.PHONY: image

IMAGE ?= localhost/ward:dev
IMAGE_ARCHIVE ?= bin/ward-image.tar
IMAGE_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

# What the backends run on a node. apparmor_parser comes from Debian's apparmor package
# (scripts/install-deps.sh) with the libraries it links; mkimage finds those itself.
IMAGE_TOOLS = /usr/sbin/apparmor_parser:/usr/sbin/apparmor_parser

image:
	@mkdir -p bin
	$(GO) build -trimpath -buildvcs=false -ldflags '-s -w -X main.version=$(IMAGE_VERSION)' -o bin/ward-image-bin ./cmd/ward
	$(GO) run ./tools/mkimage -o $(IMAGE_ARCHIVE) -name $(IMAGE) \
		-add bin/ward-image-bin:/usr/bin/ward:0755 \
		$(foreach t,$(IMAGE_TOOLS),-add $(t)) \
		-dir /tmp:1777 -dir /var/cache/apparmor:0755 -dir /etc/apparmor.d:0755 \
		-entrypoint /usr/bin/ward -cmd run \
		-env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		-label org.opencontainers.image.title=ward \
		-label org.opencontainers.image.version=$(IMAGE_VERSION) \
		-label dev.ward.apparmor-package=$$(dpkg-query -W -f='$${Package}=$${Version}' apparmor)
