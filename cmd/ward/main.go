// Command ward is Ward's one binary: the node daemon and the tools around it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ward",
		Short: "Ward enforces KubeArmor policies with the Linux security module a node has",
		Long: `Ward reads KubeArmor policies (KubeArmorPolicy, KubeArmorClusterPolicy,
KubeArmorHostPolicy), works out which workloads each covers, translates the rules
for the best available Linux security module (BPF-LSM, AppArmor, SELinux), and
reports every audited or blocked action as an alert.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newProbeCmd(), newValidateCmd(), newSimulateCmd(), newLogsCmd(), newOCIHookCmd(), newUninstallCmd(), newVersionCmd())
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	if e, ok := err.(exitError); ok {
		os.Exit(e.code)
	}
	fmt.Fprintln(os.Stderr, "ward:", err)
	// Anything cobra or a command returns without its own code is a usage problem.
	os.Exit(2)
}
