package enforcer

import (
	"context"
	"os/exec"
)

// Runner runs a command and returns its combined output. The AppArmor loader runs
// apparmor_parser through it and the SELinux loader semodule, so that tests can stand in for
// the kernel and the module store.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
