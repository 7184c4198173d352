// Package enforcer is the boundary between Ward's meaning of a policy (internal/rules) and the
// Linux security modules that enforce it. It defines the Backend every module implements, reads
// which modules the kernel has, and picks the first one in the configured order that really works
// (listed is not usable: a kernel may list bpf and still refuse LSM programs). Each backend lives
// in its own sub-package and never imports another.
package enforcer

import (
	"context"
	"errors"

	"github.com/wardsec/ward/internal/rules"
)

// ErrNotSupported is returned by a backend's probe when the kernel or the machine cannot run it.
// Any other probe error means the probe itself failed.
var ErrNotSupported = errors.New("not supported")

// DefaultStateDir is where Ward keeps its state unless configured otherwise (the daemon's
// --state): accepted policies, container records, the hook socket, the LSM probe, and the
// SELinux backend's records in its selinux subdirectory.
const DefaultStateDir = "/var/lib/ward"

// Names of the backends as the `lsm` setting spells them.
const (
	BPF      = "bpf"
	AppArmor = "apparmor"
	SELinux  = "selinux"
	None     = "none"
)

// AlertName is the value of an alert's Enforcer field for a backend, in KubeArmor's vocabulary.
func AlertName(backend string) string {
	switch backend {
	case BPF:
		return "BPFLSM"
	case AppArmor:
		return "AppArmor"
	case SELinux:
		return "SELinux"
	}
	return "eBPF Monitor"
}

// Backend enforces rule sets in the kernel.
type Backend interface {
	// Name is one of BPF, AppArmor, SELinux, None.
	Name() string
	// Apply makes the kernel enforce exactly these sets (one per workload) and nothing else that
	// this backend loaded before. It must be atomic per workload: on error the previously applied
	// rules of a workload stay in force, and Apply says which workload and rule failed.
	Apply(ctx context.Context, sets []*rules.Set) error
	// Events delivers what the kernel reported: denials and audited accesses. The channel is
	// closed by Close.
	Events() <-chan Event
	// Close stops enforcement this backend set up and releases its kernel objects.
	Close() error
}

// Limiter is a backend that knows ways around its rules that a kernel module cannot close
// (issue 17). Select records them with the attempt, so that ward run logs them at start and
// ward probe prints them.
type Limiter interface {
	Limitations() []string
}

// WorkloadApplier changes one workload's rules without touching the others'. Safe for concurrent use; calls for different workloads do not wait on each other beyond short critical sections.
type WorkloadApplier interface {
	ApplyWorkload(ctx context.Context, set *rules.Set) error // same guarantees as Apply, for one workload (set.Workload); adds or replaces it
	RemoveWorkload(ctx context.Context, id string) error     // removes the workload's rules (no-op when unknown)
}

// Event is one kernel report of an access, before attribution. Access is filled as completely
// as the module's record allows; rules.Decide on the workload's set names the policy.
type Event struct {
	Backend  string
	Workload string // workload ID, when the backend knows it
	PID      uint32
	PPID     uint32
	UID      uint32
	Comm     string
	Access   rules.Access
	// Errno is 0 when the access was permitted (audit), otherwise the error returned to the
	// process (EACCES, EPERM).
	Errno int
	// FailClosed is set when the module denied because it could not tell which rules apply
	// (the path could not be resolved) and some could deny it, or would have denied for a
	// workload in audited mode (Errno 0): no rule decided, so the alert names none.
	FailClosed bool
	// Detail is the module's own record, for the alert's Data field.
	Detail string
	// Exe is the acting executable's path when Access.Source does not name it (AppArmor's
	// records name a fromSource program's child profile only): the alert's Source and
	// ProcessName, never an input of rules.Decide. Read from /proc when the record arrives, so
	// empty when the process is gone.
	Exe string
}
