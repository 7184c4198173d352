// Package policypb is the generated Go code for KubeArmor's policy.PolicyService, through which
// `karmor vm policy add` sends policies. Regenerate with `go generate ./api/policypb`.
package policypb

//go:generate sh ../../scripts/protoc-go.sh policy.proto
