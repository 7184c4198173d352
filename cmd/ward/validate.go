package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/apparmor"
	"github.com/wardsec/ward/internal/policy"
)

func newValidateCmd() *cobra.Command {
	var lsm string
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check KubeArmor policy files without applying them",
		Long: `Validate parses, checks and normalises every policy in the given files and
directories (*.yaml, *.yml and *.json, recursively) exactly as the daemon would.

When everything is valid it prints one line per file and exits 0. Otherwise it
prints one line per problem, FILE:LINE: doc N: FIELD: message, and exits 1.
Warnings go to standard error either way. With --lsm, a warning also names every
part of a valid policy that module does not enforce as written (allowedArgs on
bpf, for example), FILE: policy NAME: FIELD: what is not enforced by whom: why.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module := ""
			if lsm != "" {
				m, err := simulatedLSM(lsm)
				if err != nil {
					return err
				}
				module = m
			}
			results := policy.LoadFiles(args...)
			failed := false
			for _, r := range results {
				for _, w := range r.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), w.String())
				}
				if r.Err != nil {
					failed = true
				}
			}
			out := cmd.OutOrStdout()
			if failed {
				for _, r := range results {
					var errs policy.Errors
					if errors.As(r.Err, &errs) {
						for _, e := range errs {
							fmt.Fprintln(out, e.Error())
						}
					} else if r.Err != nil {
						fmt.Fprintf(out, "%s: %v\n", r.File, r.Err)
					}
				}
				return exitError{code: 1}
			}
			for _, r := range results {
				fmt.Fprintf(out, "%s: ok: %s\n", r.File, summary(r.Policies))
				if module == "" {
					continue
				}
				for i := range r.Policies {
					ws := enforcer.Check(module, &r.Policies[i])
					if module == enforcer.AppArmor {
						ws = append(ws, apparmor.CheckSources(&r.Policies[i])...)
					}
					for _, w := range ws {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: %s\n", r.File, w)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&lsm, "lsm", "", "also say what this module (bpf, apparmor, selinux, none) does not enforce as written")
	return cmd
}

// summary reads "2 policies (KubeArmorHostPolicy block-passwd, KubeArmorPolicy container_namespace/web)".
func summary(ps []policy.Policy) string {
	noun := "policies"
	if len(ps) == 1 {
		noun = "policy"
	}
	if len(ps) == 0 {
		return "0 policies"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		name := p.Name
		if p.Namespace != "" {
			name = p.Namespace + "/" + p.Name
		}
		names[i] = string(p.Kind) + " " + name
	}
	return fmt.Sprintf("%d %s (%s)", len(ps), noun, strings.Join(names, ", "))
}
