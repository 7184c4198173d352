package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/internal/daemon"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/enforcer/selinux"
	"github.com/wardsec/ward/internal/monitor"
)

// backendFactories lists the enforcement backends compiled into this binary. pinDir is where
// BPF-LSM pins its links and maps so that enforcement outlives the daemon; "" (ward probe) pins
// nothing, so a probe never touches what a running daemon enforces.
func backendFactories(apparmorDir, stateDir, pinDir string, log *slog.Logger) map[string]enforcer.Factory {
	return map[string]enforcer.Factory{
		enforcer.BPF:      bpflsm.Factory(bpflsm.Options{Logger: log, PinDir: pinDir}),
		enforcer.AppArmor: apparmor.Factory(apparmor.Config{Dir: apparmorDir, Logger: log}),
		enforcer.SELinux:  selinux.Factory(selinux.Config{StateDir: selinuxStateDir(stateDir), Logger: log}),
	}
}

// selinuxStateDir is where the SELinux backend records the labels it changed, and where ward
// uninstall reads what to restore.
func selinuxStateDir(state string) string { return filepath.Join(state, "selinux") }

// bpfPinDir is where the daemon pins BPF-LSM's objects, and where ward uninstall removes them.
func bpfPinDir(cfg daemon.Config) string { return filepath.Join(cfg.BPFFsPath, "ward") }

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node daemon: enforce the policies of a directory and the PolicyService",
		Long: `run is Ward's main job on a node. It picks the best security module the kernel
offers (--lsm, default bpf,apparmor,selinux, trying each for real and falling back),
loads the policies of --policies (watched for changes) and those sent to the gRPC
PolicyService (karmor vm policy add), keeps accepted policies under --state, and
reports alerts as JSON lines (--logPath) and over gRPC. A policy file that fails
validation is refused with its precise error; the rules already in force stay.

Every setting can also come from the environment (WARD_<KEY>, e.g. WARD_LOGPATH)
or a YAML file (--config) with the same keys; flags win, then the environment,
then the file. With no configuration at all, run uses the embedded defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := daemon.LoadConfig(cmd.Flags(), os.Getenv)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ward run:", err)
				return exitError{code: 2}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := daemon.Options{Config: cfg, Logger: log, Factories: backendFactories(cfg.AppArmorDir, cfg.State, bpfPinDir(cfg), log), Stdout: cmd.OutOrStdout()}
			if cfg.SystemMonitor {
				opts.Monitor = func(workloadOf func(uint64, uint32) string) (daemon.EventSource, error) {
					return monitor.New(monitor.Options{Logger: log, IgnoreSelf: true, Workload: workloadOf})
				}
			}
			return daemon.Run(ctx, opts)
		},
	}
	daemon.AddFlags(cmd.Flags())
	return cmd
}

func newProbeCmd() *cobra.Command {
	var asJSON bool
	var lsm, lsmPath string
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Show the security modules found, each attempt to use one, and the choice",
		Long: `probe reads the kernel's active security modules and tries each module of the
--lsm order for real (a module can be listed and still refuse to work), exactly as
'ward run' would, then prints every attempt with its reason and the selection.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			order, err := enforcer.ParseOrder(lsm)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ward probe:", err)
				return exitError{code: 2}
			}
			lsms, err := daemon.ReadActiveLSMs(lsmPath)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "ward probe: warning:", err)
			}
			sel := enforcer.Select(cmd.Context(), lsms, order, backendFactories(apparmor.DefaultDir, enforcer.DefaultStateDir, "", slog.New(slog.NewTextHandler(io.Discard, nil))))
			if sel.Backend != nil {
				defer sel.Backend.Close()
			}
			return printSelection(cmd.OutOrStdout(), sel, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object with lsms, attempts and selected")
	cmd.Flags().StringVar(&lsm, "lsm", "bpf,apparmor,selinux", "security modules to try, in order")
	cmd.Flags().StringVar(&lsmPath, "lsm-path", enforcer.DefaultLSMPath, "file listing the kernel's active modules")
	return cmd
}

func printSelection(w io.Writer, sel enforcer.Selection, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sel)
	}
	fmt.Fprintf(w, "Active LSMs: %v\n\n", sel.LSMs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LSM\tRESULT\tREASON")
	for _, a := range sel.Attempts {
		res := "rejected"
		if a.OK {
			res = "ok"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.LSM, res, a.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nSelected: %s (alerts say Enforcer=%q)\n", sel.Selected, enforcer.AlertName(sel.Selected))
	for _, a := range sel.Attempts {
		if a.OK && len(a.Limitations) > 0 {
			fmt.Fprintf(w, "\nLimitations of %s (ways around a rule that the module cannot close):\n", a.LSM)
			for _, l := range a.Limitations {
				fmt.Fprintf(w, "  - %s\n", l)
			}
		}
	}
	return nil
}
