//go:build !vm

package selinux

import (
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// Helpers only the host tests use (the VM tests build without this file).

func ownerOnly(r *policy.Rule) { r.OwnerOnly = true }
func pts(v bool) ruleOpt       { return func(r *policy.Rule) { r.PTS = &v } }
func args(a ...string) ruleOpt { return func(r *policy.Rule) { r.AllowedArgs = a } }

// testOpts renders for Ward running as kernel_t, as in the VM.
var testOpts = Options{Admin: "kernel_t"}

var blockAll = rules.Postures{File: block, Network: block, Capabilities: block}
