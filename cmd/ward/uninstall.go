package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/internal/daemon"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/enforcer/selinux"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

// uninstaller removes what `ward run` put in the kernel and on disk. The fields are the places
// the daemon's configuration names, and the tools it ran, so that tests can substitute them.
type uninstaller struct {
	apparmorDir    string
	securityFS     string // "" means apparmor.DefaultSecurityFS
	apparmorRunner apparmor.Runner
	selinuxState   string
	selinuxRunner  selinux.Runner
	selinuxLabeler selinux.Labeler
	bpfPinDir      string
	state          string
	purge          bool
}

func newUninstallCmd() *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove everything ward run put in the kernel and on disk",
		Long: `uninstall undoes what 'ward run' left in place when it stopped, which keeps
enforcing on purpose: Ward's AppArmor profiles (only files carrying Ward's header, and
profiles the kernel still holds under a Ward name), the SELinux module and every file
label Ward changed (restored to the original), and the pinned BPF-LSM programs and
maps. With --purge it also removes the state directory (accepted policies, container
records). It reads the same configuration as 'ward run' (flags, WARD_* environment,
--config) to find these places. The daemon must be stopped first.

It is idempotent: run again, it removes nothing and succeeds. It prints each thing it
removed; whatever it could not remove is named with the reason, and the exit status
is 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := daemon.LoadConfig(cmd.Flags(), os.Getenv)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ward uninstall:", err)
				return exitError{code: 2}
			}
			u := uninstaller{apparmorDir: cfg.AppArmorDir, selinuxState: selinuxStateDir(cfg.State),
				bpfPinDir: bpfPinDir(cfg), state: cfg.State, purge: purge}
			if err := u.run(cmd.Context(), cmd.OutOrStdout()); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ward uninstall:", err)
				return exitError{code: 1}
			}
			return nil
		},
	}
	daemon.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&purge, "purge", false, "also remove the state directory (accepted policies, container records)")
	return cmd
}

// run removes each backend's leftovers in turn; one failure does not stop the others.
func (u uninstaller) run(ctx context.Context, out io.Writer) error {
	if daemonRunning(u.state) {
		return fmt.Errorf("ward run is running (%s answers): stop it first, or it puts its rules back",
			filepath.Join(u.state, hookapi.SocketName))
	}
	did := 0
	say := func(format string, args ...any) {
		did++
		fmt.Fprintf(out, format+"\n", args...)
	}
	var errs []error

	removed, err := apparmor.Uninstall(ctx, u.apparmorDir, u.securityFS, u.apparmorRunner)
	for _, name := range removed {
		say("removed AppArmor profile %s", name)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("apparmor: %w", err))
	}

	if err := u.selinux(ctx, say); err != nil {
		errs = append(errs, fmt.Errorf("selinux: %w", err))
	}

	if _, statErr := os.Lstat(u.bpfPinDir); statErr == nil {
		if err := bpflsm.Uninstall(u.bpfPinDir); err != nil {
			errs = append(errs, fmt.Errorf("bpf-lsm: %w", err))
		} else {
			say("removed BPF-LSM pins %s (programs detached)", u.bpfPinDir)
		}
	} else if !errors.Is(statErr, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("bpf-lsm: %w", statErr))
	}

	if u.purge {
		switch _, statErr := os.Lstat(u.state); {
		case len(errs) > 0:
			// The state records what could not be undone (the SELinux labels' originals).
			errs = append(errs, fmt.Errorf("state directory %s kept: it records what is left to undo", u.state))
		case errors.Is(statErr, os.ErrNotExist):
		default:
			if err := os.RemoveAll(u.state); err != nil {
				errs = append(errs, fmt.Errorf("state directory: %w", err))
			} else {
				say("removed state directory %s", u.state)
			}
		}
	}
	if did == 0 && len(errs) == 0 {
		fmt.Fprintln(out, "nothing to remove")
	}
	return errors.Join(errs...)
}

// selinux restores the labels Ward changed and removes its module, as the state it kept says.
func (u uninstaller) selinux(ctx context.Context, say func(string, ...any)) error {
	if _, err := os.Stat(u.selinuxState); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, err := selinux.NewLoader(u.selinuxState, u.selinuxRunner, u.selinuxLabeler)
	if err != nil {
		return err
	}
	labels := len(l.Labels())
	installed := l.Installed() != nil
	var errs []error
	if err := l.Restore(); err != nil {
		errs = append(errs, err)
	} else if labels > 0 {
		say("restored the original SELinux label of %d files", labels)
	}
	if err := l.Uninstall(ctx); err != nil {
		errs = append(errs, err)
	} else if installed {
		say("removed SELinux module %s", selinux.ModuleName)
	}
	return errors.Join(errs...)
}

// daemonRunning reports whether a daemon answers on the state directory's hook socket.
func daemonRunning(state string) bool {
	c, err := net.DialTimeout("unix", filepath.Join(state, hookapi.SocketName), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
