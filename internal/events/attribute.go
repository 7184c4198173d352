package events

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"

	"github.com/wardsec/ward/api/feeder"
	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// Sink receives alerts, logs and messages. The Pipeline is one; JSONLines is another.
type Sink interface {
	WriteAlert(*feeder.Alert) error
	WriteLog(*feeder.Log) error
	WriteMessage(*feeder.Message) error
}

// Attributor turns what the kernel reported (an enforcer.Event, before attribution) into alerts
// and logs: it finds the workload's rule set in force, lets rules.Decide name the policy, builds
// the alert or log and hands it to the sinks. A kernel event goes backend → Attributor → sinks,
// one way; the daemon only connects them.
type Attributor struct {
	// InForce returns the rule set in force for a workload ID (nil: none).
	InForce func(id string) *rules.Set
	// Wanted returns the set last compiled for a workload ID, in force or not (nil: none). A
	// workload whose set the backend has not taken (its first apply is running, or was
	// refused) is still known: its events are attributed with this set, the monitor's as
	// not enforced. Wanted itself may be nil.
	Wanted func(id string) *rules.Set
	// Replaced returns the set a workload had in force before its current one (nil: none).
	Replaced func(id string) *rules.Set
	Builder  *Builder
	Sinks    []Sink
	Log      *slog.Logger
	// Enforcing is set when a backend enforces: the monitor then adds only what the backend
	// cannot report.
	Enforcing bool
	// Visibility and HostVisibility list the operations whose unmatched accesses become logs
	// (comma-separated, KubeArmor's visibility and hostVisibility).
	Visibility, HostVisibility string

	// unknownMu guards unknown, the workload IDs already reported as unknown (once each).
	unknownMu sync.Mutex
	unknown   map[string]bool
}

// Report handles an event of the enforcing backend: the kernel decided, Decide names the policy.
func (a *Attributor) Report(ev enforcer.Event) {
	set, e, _ := a.eventOf(ev)
	if set == nil {
		return
	}
	v := verdict(set, ev)
	if !agrees(v, ev) {
		v = a.transitional(ev, set, v)
	}
	if !v.Alert && ev.Errno != 0 {
		// The kernel denied something Decide would allow: a backend/meaning mismatch. Report it
		// rather than hide it.
		a.Log.Error("kernel denial that no policy explains", "resource", e.Resource, "errno", ev.Errno, "backend", ev.Backend)
	}
	a.alert(e, v)
}

// verdict is what a set means for the backend's event: Decide's verdict, or, when the backend
// denied because it could not tell which rules apply, what the set means for such an access.
func verdict(set *rules.Set, ev enforcer.Event) rules.Verdict {
	if ev.FailClosed {
		return set.Unresolved(ev.Access.Op)
	}
	return set.Decide(ev.Access)
}

// agrees says whether a verdict explains what the kernel did: a denial is a Block, a reported
// access that passed is an alert that is not one.
func agrees(v rules.Verdict, ev enforcer.Event) bool {
	return v.Alert && (ev.Errno != 0) == (v.Action == policy.ActionBlock)
}

// transitional attributes an event that the set in force does not explain with the set being
// applied or the one it replaced, whichever does. The kernel takes a workload's new rules before
// the daemon marks them in force (the backend returns after the load), and a record of the old
// rules can be read after it did: in either window the set in force would call a denial
// allowed, or an audit a block. When neither set explains the event, the verdict in force stands.
func (a *Attributor) transitional(ev enforcer.Event, inForce *rules.Set, v rules.Verdict) rules.Verdict {
	id := ev.Workload
	if id == "" {
		id = "host"
	}
	var others []*rules.Set
	if a.Wanted != nil {
		others = append(others, a.Wanted(id))
	}
	if a.Replaced != nil {
		others = append(others, a.Replaced(id))
	}
	for _, s := range others {
		if s == nil || s == inForce {
			continue
		}
		if ov := verdict(s, ev); agrees(ov, ev) {
			return ov
		}
	}
	return v
}

// ReportObserved handles an event of the system monitor, which sees accesses but decides
// nothing. Alerts for what the enforcing backend handles come from the backend, so the monitor
// adds only what the backend cannot report (syscall rules) or, in monitor mode, what would have
// been blocked; everything else is a log, as visibility asks.
func (a *Attributor) ReportObserved(ev enforcer.Event) {
	set, e, inForce := a.eventOf(ev)
	if set == nil {
		return
	}
	v := set.Decide(ev.Access)
	// A workload whose set the backend has not taken (the first apply is still running, or it
	// was refused) is not enforced: the monitor says what would have been blocked.
	enforced := a.Enforcing && inForce && ev.Access.Op != policy.OpSyscall
	switch {
	case v.Alert && !enforced:
		if v.Action == policy.ActionBlock && ev.Errno == 0 {
			// Nothing enforced it: say it would have been blocked, not that it was.
			v.Action, v.DisplayAction = policy.ActionAudit, "Audit (Block)"
		}
		a.alert(e, v)
	case v.Alert:
		// The backend reports it.
	case a.visible(set.Workload, ev.Access.Op):
		l := a.Builder.Log(e)
		for _, s := range a.Sinks {
			if err := s.WriteLog(l); err != nil {
				a.Log.Error("write log", "error", err)
			}
		}
	}
}

// Message hands a daemon message to the sinks.
func (a *Attributor) Message(level, text string) {
	m := a.Builder.Message("Message", level, text)
	for _, s := range a.Sinks {
		if err := s.WriteMessage(m); err != nil {
			a.Log.Error("write message", "error", err)
		}
	}
}

// visible applies visibility / hostVisibility to logs of unmatched accesses.
func (a *Attributor) visible(w workload.Workload, op policy.Operation) bool {
	list := a.Visibility
	if w.Kind == workload.KindHost {
		list = a.HostVisibility
	}
	want := strings.ToLower(string(op))
	for _, v := range strings.Split(list, ",") {
		if strings.TrimSpace(strings.ToLower(v)) == want {
			return true
		}
	}
	return false
}

// eventOf finds the event's workload set and builds the alert/log input from the event. The set
// is the one in force, or else the one last compiled for the workload (inForce false): until
// the first apply finishes, or after one was refused, the workload is known and its events are
// still attributed. A workload with neither is reported once.
func (a *Attributor) eventOf(ev enforcer.Event) (set *rules.Set, e *Event, inForce bool) {
	id := ev.Workload
	if id == "" {
		id = "host"
	}
	set = a.InForce(id)
	inForce = set != nil
	if set == nil && a.Wanted != nil {
		set = a.Wanted(id)
	}
	if set == nil && id == "host" {
		// Every node has the host workload; it has no set only until the daemon's first round
		// has compiled one, and what the monitor sees before that is not a stranger's.
		a.Log.Debug("event before the host's first round, dropped")
		return nil, nil, false
	}
	if set == nil {
		a.unknownMu.Lock()
		seen := a.unknown[id]
		if a.unknown == nil {
			a.unknown = map[string]bool{}
		}
		a.unknown[id] = true
		a.unknownMu.Unlock()
		if !seen {
			a.Log.Warn("event for an unknown workload, dropped (said once per workload)", "workload", id)
		}
		return nil, nil, false
	}
	exe := ev.Access.Source
	if exe == "" {
		exe = ev.Exe
	}
	return set, &Event{
		Workload:  set.Workload,
		Process:   Process{PID: int32(ev.PID), PPID: int32(ev.PPID), HostPID: int32(ev.PID), HostPPID: int32(ev.PPID), UID: int32(ev.UID), ProcessName: exe},
		Operation: ev.Access.Op,
		Source:    exe,
		Resource:  resourceOf(ev.Access),
		Data:      ev.Detail,
		Enforcer:  enforcer.AlertName(ev.Backend),
		Errno:     syscall.Errno(ev.Errno),
	}, inForce
}

func (a *Attributor) alert(e *Event, v rules.Verdict) {
	alert := a.Builder.Alert(e, v)
	for _, s := range a.Sinks {
		if err := s.WriteAlert(alert); err != nil {
			a.Log.Error("write alert", "error", err)
		}
	}
}

func resourceOf(acc rules.Access) string {
	switch acc.Op {
	case policy.OpNetwork:
		return fmt.Sprintf("domain=%s type=%s protocol=%s", acc.Family, acc.SockType, acc.Protocol)
	case policy.OpCapabilities:
		return acc.Capability
	}
	return acc.Path
}
