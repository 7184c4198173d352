package hookapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wardsec/ward/internal/workload"
)

// Hook stages Ward is installed for. createRuntime runs in the runtime's namespaces after the
// container's namespaces and cgroup exist and before pivot_root and the user's process: the pid
// in the state is the container's init, its cgroup and namespaces are final, and the daemon's
// socket and /proc are the host's. createContainer and startContainer run inside the
// container's mount namespace, where neither the socket nor the hook binary need exist.
// prestart is createRuntime's deprecated predecessor and runs at the same point.
const (
	StageCreateRuntime = "createRuntime"
	StagePrestart      = "prestart"
	StagePoststop      = "poststop"
)

// Unreachable policies: what the hook does when no daemon answers.
const (
	// UnreachableFail fails the hook, so the runtime does not start the container: a container
	// never runs unprotected because the daemon was down (fail closed).
	UnreachableFail = "fail"
	// UnreachableAllow lets the container start unregistered (fail open).
	UnreachableAllow = "allow"
)

// HookOptions configure one run of the hook.
type HookOptions struct {
	// Stage is the hook's stage; empty means from the state's status ("creating" registers,
	// "stopped" unregisters).
	Stage string
	// Socket is the daemon's hook socket.
	Socket string
	// Timeout bounds the whole call, including the wait for the rules to be applied.
	Timeout time.Duration
	// Unreachable is UnreachableFail (the default) or UnreachableAllow.
	Unreachable string
	// ProcRoot and CgroupRoot are /proc and the cgroup v2 mount.
	ProcRoot   string
	CgroupRoot string
	// CheckCgroupRoot checks that CgroupRoot is a cgroup v2 mount; nil means
	// workload.CheckCgroup2. Tests with fixture directories replace it.
	CheckCgroupRoot func(root string) error
	Logger          *slog.Logger
}

// RunHook does the hook's whole job: read the OCI state from stdin, and register (with the
// container's labels and kernel identity) or unregister the container. An error means the
// runtime must not go on (at createRuntime it fails the start).
func RunHook(ctx context.Context, stdin io.Reader, o HookOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	switch o.Unreachable {
	case "":
		o.Unreachable = UnreachableFail
	case UnreachableFail, UnreachableAllow:
	default:
		return fmt.Errorf("on-unreachable %q: allowed: %s, %s", o.Unreachable, UnreachableFail, UnreachableAllow)
	}
	st, err := workload.ReadOCIState(stdin)
	if err != nil {
		return err
	}
	stage := o.Stage
	if stage == "" {
		switch st.Status {
		case "creating", "created":
			stage = StageCreateRuntime
		case "stopped":
			stage = StagePoststop
		default:
			return fmt.Errorf("container %s: status %q does not say the stage; pass it: createRuntime or poststop", st.ID, st.Status)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	log := o.Logger.With("container", st.ID, "stage", stage)

	var req Request
	switch stage {
	case StageCreateRuntime, StagePrestart:
		var warnings []string
		var sandbox bool
		req, sandbox, warnings, err = registerRequest(st, o)
		if err != nil {
			return err
		}
		if sandbox {
			log.Info("pod sandbox container: not a workload, not registered")
			return nil
		}
		for _, w := range warnings {
			log.Warn("container annotation", "warning", w)
		}
	case StagePoststop:
		if workload.IsSandbox(st, workload.OCIConfig{}) {
			return nil // never registered
		}
		req = Request{Op: OpUnregister, ID: st.ID}
	default:
		return fmt.Errorf("stage %q: ward oci-hook runs at createRuntime (or prestart) and poststop", stage)
	}
	resp, err := Call(ctx, o.Socket, req)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnreachable) && req.Op == OpUnregister:
		// Nothing to undo in a daemon that is not running; a restarted daemon drops
		// registrations whose process is gone.
		log.Warn("daemon unreachable; nothing to unregister", "error", err)
		return nil
	case errors.Is(err, ErrUnreachable) && o.Unreachable == UnreachableAllow:
		log.Warn("daemon unreachable; container starts unprotected (on-unreachable=allow)", "error", err)
		return nil
	default:
		return fmt.Errorf("container %s: %w", st.ID, err)
	}
	if req.Op == OpRegister {
		log.Info("container registered, rules in force", "cgroup_id", req.Workload.CgroupID, "policies", len(resp.Policies), "rules", resp.Rules)
	} else {
		log.Info("container unregistered")
	}
	return nil
}

// registerRequest builds the registration of a container, or reports that it is a pod's
// sandbox, which is not registered (its poststop then unregisters an unknown id, a no-op).
func registerRequest(st workload.OCIState, o HookOptions) (req Request, sandbox bool, warnings []string, err error) {
	cfg, err := workload.ReadOCIConfig(st.Bundle)
	if err != nil {
		return Request{}, false, nil, fmt.Errorf("container %s: %w", st.ID, err)
	}
	if workload.IsSandbox(st, cfg) {
		return Request{}, true, nil, nil
	}
	w, warnings := workload.FromOCI(st, cfg)
	check := o.CheckCgroupRoot
	if check == nil {
		check = workload.CheckCgroup2
	}
	if err := check(o.CgroupRoot); err != nil {
		return Request{}, false, nil, fmt.Errorf("container %s: %w", st.ID, err)
	}
	id, err := workload.ReadKernelIdentity(o.ProcRoot, o.CgroupRoot, st.Pid)
	if err != nil {
		return Request{}, false, nil, fmt.Errorf("container %s: %w", st.ID, err)
	}
	id.Apply(&w)
	return Request{Op: OpRegister, Workload: w, Pid: st.Pid}, false, warnings, nil
}
