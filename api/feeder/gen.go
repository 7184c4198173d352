// Package feeder is the generated Go code for KubeArmor's feeder protocol (kubearmor.proto):
// the Alert, Log and Message types and the LogService that streams them. Regenerate with
// `go generate ./api/feeder`; protoc comes from the system, the Go plugins are pinned in go.mod.
package feeder

//go:generate sh gen.sh
