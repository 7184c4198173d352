# Kubernetes mode: the CRDs generated from api/v1 (docs/kubernetes.md). Included by the root
# Makefile.

.PHONY: generate-crds check-generate-crds

# controller-gen is pinned in go.mod's tool block; deepcopy goes next to the types, the CRDs to
# deploy/crds (one file per kind, named by controller-gen as group_plural.yaml).
generate-crds:
	$(GO) tool controller-gen object paths=./api/v1/...
	$(GO) tool controller-gen crd paths=./api/v1/... output:crd:artifacts:config=deploy/crds

# Regenerate and fail if the committed output differs.
check-generate-crds: generate-crds
	git diff --exit-code -- api/v1 deploy/crds
	@test -z "$$(git status --porcelain -- api/v1 deploy/crds)" || { git status --porcelain -- api/v1 deploy/crds; echo "generate-crds left untracked files"; exit 1; }

generate: generate-crds
check-generated: check-generate-crds
