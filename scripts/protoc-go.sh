#!/bin/sh
# protoc-go.sh FILE.proto: regenerates FILE.pb.go and FILE_grpc.pb.go next to FILE.proto in the
# current directory. protoc is Debian's protobuf-compiler (its version is recorded in the
# generated headers); the Go plugins are the versions pinned by go.mod's tool block, built into a
# temporary directory so nothing else on PATH is picked up.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 FILE.proto" >&2; exit 2; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
PATH="$bin:$PATH" protoc \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	"$1"
