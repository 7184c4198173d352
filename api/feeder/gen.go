// Package feeder is the generated Go code for KubeArmor's feeder protocol (kubearmor.proto):
// the Alert, Log and Message types and the LogService that streams them. Regenerate with
// `go generate ./api/feeder` (scripts/protoc-go.sh: Debian's protoc, Go plugins pinned in go.mod).
package feeder

//go:generate sh ../../scripts/protoc-go.sh kubearmor.proto
