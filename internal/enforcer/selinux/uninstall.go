package selinux

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/wardsec/ward/internal/enforcer"
)

// Uninstaller is SELinux's enforcer.Uninstaller: it gives every file Ward labelled its original
// context back and removes Ward's module, as the state Ward kept in State says. Without that
// state Ward never ran SELinux here, and there is nothing to remove.
type Uninstaller struct {
	State   string  // the Loader's directory; "" means DefaultStateDir
	Runner  Runner  // nil means ExecRunner
	Labeler Labeler // nil means XattrLabeler
}

var _ enforcer.Uninstaller = Uninstaller{}

// Uninstall implements enforcer.Uninstaller.
func (u Uninstaller) Uninstall(ctx context.Context, did func(string)) error {
	state := u.State
	if state == "" {
		state = DefaultStateDir
	}
	if _, err := os.Stat(state); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, err := NewLoader(state, u.Runner, u.Labeler)
	if err != nil {
		return fmt.Errorf("%s: %w", enforcer.SELinux, err)
	}
	labels := len(l.Labels())
	installed := l.Installed() != nil
	var errs []error
	if err := l.Restore(); err != nil {
		errs = append(errs, err)
	} else if labels > 0 {
		enforcer.Did(did, fmt.Sprintf("restored the original SELinux label of %d files", labels))
	}
	if err := l.Uninstall(ctx); err != nil {
		errs = append(errs, err)
	} else if installed {
		enforcer.Did(did, "removed SELinux module "+ModuleName)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", enforcer.SELinux, err)
	}
	return nil
}
