package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardsec/ward/internal/events"
	"github.com/wardsec/ward/internal/logclient"
)

func newLogsCmd() *cobra.Command {
	o := logclient.Options{GRPC: logclient.DefaultAddr, LogFilter: events.FilterPolicy}
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Stream alerts and logs from a Ward (or KubeArmor) LogService",
		Long: `logs connects to the gRPC LogService (--gRPC, default localhost:32767) and prints
alerts (--logFilter policy, the default), logs (system) or both (all), as text blocks or,
with --json, as one JSON object per line with KubeArmor's field names. The flags are
karmor's: filters on namespace, operation, type, container, pod, resource, source and
labels; --limit stops after that many events.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return logclient.Watch(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.GRPC, "gRPC", o.GRPC, "host:port of the LogService")
	f.StringVar(&o.LogFilter, "logFilter", o.LogFilter, "what to stream: policy (alerts), system (logs) or all")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object per line")
	f.StringVarP(&o.Namespace, "namespace", "n", "", "only this namespace")
	f.StringVar(&o.Operation, "operation", "", "only this operation: Process, File, Network, Capabilities, Syscall")
	f.StringVar(&o.LogType, "logType", "", "only this type: MatchedPolicy, MatchedHostPolicy, ContainerLog, HostLog, SystemEvent")
	f.StringVar(&o.Container, "container", "", "only this container name")
	f.StringVar(&o.Pod, "pod", "", "only this pod")
	f.StringVar(&o.Resource, "resource", "", "only resources containing this text")
	f.StringVar(&o.Source, "source", "", "only sources containing this text")
	f.StringVarP(&o.Labels, "labels", "l", "", "only events whose labels include these (k=v,k=v)")
	f.IntVar(&o.Limit, "limit", 0, "stop after this many events (0: no limit)")
	// Users type karmor's spellings in any case (--grpc, --logfilter); accept them all.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		for _, canonical := range []string{"gRPC", "logFilter", "logType"} {
			if strings.EqualFold(name, canonical) {
				return pflag.NormalizedName(canonical)
			}
		}
		return pflag.NormalizedName(name)
	})
	return cmd
}
