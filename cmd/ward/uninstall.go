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
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/enforcer/selinux"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

// uninstaller removes what `ward run` put in the kernel and on disk: each backend's leftovers
// through its enforcer.Uninstaller, then with purge the state directory.
type uninstaller struct {
	backends []enforcer.Uninstaller
	state    string
	purge    bool
}

// backendUninstallers are the three backends' Uninstallers for the places cfg names.
func backendUninstallers(cfg daemon.Config) []enforcer.Uninstaller {
	return []enforcer.Uninstaller{
		apparmor.Uninstaller{Dir: cfg.AppArmorDir},
		selinux.Uninstaller{State: selinuxStateDir(cfg.State)},
		bpflsm.Uninstaller{PinDir: bpfPinDir(cfg)},
	}
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
			u := uninstaller{backends: backendUninstallers(cfg), state: cfg.State, purge: purge}
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

	for _, b := range u.backends {
		if err := b.Uninstall(ctx, func(s string) { say("%s", s) }); err != nil {
			errs = append(errs, err)
		}
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

// daemonRunning reports whether a daemon answers on the state directory's hook socket.
func daemonRunning(state string) bool {
	c, err := net.DialTimeout("unix", filepath.Join(state, hookapi.SocketName), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
