#!/bin/sh
# Regenerates kubearmor.pb.go and kubearmor_grpc.pb.go. protoc is Debian's protobuf-compiler
# (3.21.12; the version is recorded in the generated headers); the Go plugins are the versions
# pinned by go.mod's tool block, built into a temporary directory so nothing else is picked up.
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
PATH="$bin:$PATH" protoc \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	kubearmor.proto
