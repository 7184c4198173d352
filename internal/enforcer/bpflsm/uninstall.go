package bpflsm

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/wardsec/ward/internal/enforcer"
)

// Uninstaller is BPF-LSM's enforcer.Uninstaller: it removes the pins under PinDir (Uninstall), so
// that the programs the stopped daemon left attached detach.
type Uninstaller struct {
	PinDir string // absolute; Options.PinDir of the daemon
}

var _ enforcer.Uninstaller = Uninstaller{}

// Uninstall implements enforcer.Uninstaller.
func (u Uninstaller) Uninstall(ctx context.Context, did func(string)) error {
	if _, err := os.Lstat(u.PinDir); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("bpf-lsm: %w", err)
	}
	if err := Uninstall(ctx, u.PinDir); err != nil {
		return fmt.Errorf("bpf-lsm: %w", err)
	}
	enforcer.Did(did, fmt.Sprintf("removed BPF-LSM pins %s (programs detached)", u.PinDir))
	return nil
}
