// Package events turns what the enforcers observe into KubeArmor-shaped alerts and logs, and
// delivers them: throttled per workload, written as JSON lines, streamed over gRPC
// (feeder.LogService) and counted in Prometheus metrics.
//
// The event model is the generated feeder.Alert, feeder.Log and feeder.Message: one set of Go
// types, so the JSON lines, the gRPC stream and the metrics cannot disagree about a field.
package events
