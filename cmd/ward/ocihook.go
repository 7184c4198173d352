package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/workload/hookapi"
)

func newOCIHookCmd() *cobra.Command {
	var o hookapi.HookOptions
	cmd := &cobra.Command{
		Use:   "oci-hook [createRuntime|poststop]",
		Short: "OCI runtime hook: register a container with the daemon before it runs, forget it after",
		Long: `oci-hook is run by an OCI runtime (runc, crun, podman, CRI-O) with the container's
state on stdin. At createRuntime it reads the bundle's config.json and the container's
cgroup and namespaces from /proc, asks the daemon to register the container, and exits
0 only once the daemon says the container's rules are in force in the kernel; the
runtime starts the container's first instruction after that. At poststop it asks the
daemon to forget the container. Without the stage argument it is taken from the
state's status. See docs/containers.md for the install steps and the label mapping.

When no daemon answers, --on-unreachable=fail (the default) fails the hook, and so the
container start; --on-unreachable=allow lets the container start unprotected.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{hookapi.StageCreateRuntime, hookapi.StagePoststop},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Stage = args[0]
			}
			// The runtime shows the hook's stderr when the hook fails; the log goes there.
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("component", "oci-hook")
			if err := hookapi.RunHook(cmd.Context(), cmd.InOrStdin(), o); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ward oci-hook:", err)
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Socket, "socket", filepath.Join(enforcer.DefaultStateDir, hookapi.SocketName), "the daemon's hook socket (<state>/"+hookapi.SocketName+")")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Second, "how long to wait for the daemon to apply the container's rules")
	f.StringVar(&o.Unreachable, "on-unreachable", hookapi.UnreachableFail, "when no daemon answers: fail (the container does not start) or allow (it starts unprotected)")
	f.StringVar(&o.ProcRoot, "proc", "/proc", "procfs mount")
	f.StringVar(&o.CgroupRoot, "cgroup-root", "/sys/fs/cgroup", "cgroup v2 mount")
	return cmd
}
