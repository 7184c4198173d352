package enforcer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultLSMPath is where the kernel lists its active security modules.
const DefaultLSMPath = "/sys/kernel/security/lsm"

// DefaultOrder is KubeArmor's default preference.
var DefaultOrder = []string{BPF, AppArmor, SELinux}

// ReadLSMs returns the kernel's active security modules in the order the kernel lists them.
func ReadLSMs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read active LSMs: %w", err)
	}
	var out []string
	for _, f := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out, nil
}

// ParseOrder reads the `lsm` setting: a comma list of bpf, apparmor, selinux, or none (which
// disables enforcement).
func ParseOrder(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return append([]string(nil), DefaultOrder...), nil
	}
	var order []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch f {
		case BPF, AppArmor, SELinux:
		case "bpflsm", "bpf-lsm":
			f = BPF
		case None:
			if len(strings.Split(s, ",")) > 1 {
				return nil, fmt.Errorf("lsm %q: none cannot be combined with other modules", s)
			}
			return []string{}, nil
		default:
			return nil, fmt.Errorf("lsm %q: unknown module %q: allowed are bpf, apparmor, selinux, none", s, f)
		}
		if !seen[f] {
			seen[f] = true
			order = append(order, f)
		}
	}
	return order, nil
}

// Factory initialises a backend for real: it loads, attaches or parses whatever proves the module
// works here, and returns an error saying why not (wrapping ErrNotSupported when the machine
// cannot run it).
type Factory func(ctx context.Context) (Backend, error)

// Attempt records one try of the selection.
type Attempt struct {
	LSM    string `json:"lsm"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
	// Limitations are what the selected backend cannot enforce (Limiter).
	Limitations []string `json:"limitations,omitempty"`
}

// Selection is the outcome of Select: the active LSMs, every attempt in order and the choice.
type Selection struct {
	LSMs     []string  `json:"lsms"`
	Attempts []Attempt `json:"attempts"`
	Selected string    `json:"selected"`
	Backend  Backend   `json:"-"`
}

// Select walks order and returns the first backend that initialises. A module the kernel does
// not list is skipped with that reason; one that is listed but fails to initialise is skipped
// with its error. When nothing works the selection is None with a nil Backend, and the caller
// runs in monitor mode.
func Select(ctx context.Context, lsms []string, order []string, factories map[string]Factory) Selection {
	sel := Selection{LSMs: lsms, Selected: None, Attempts: []Attempt{}}
	if sel.LSMs == nil {
		sel.LSMs = []string{}
	}
	active := map[string]bool{}
	for _, l := range lsms {
		active[l] = true
	}
	if len(order) == 0 {
		sel.Attempts = append(sel.Attempts, Attempt{LSM: None, OK: true, Reason: "enforcement disabled by configuration (lsm=none)"})
		return sel
	}
	for _, name := range order {
		if !active[name] {
			sel.Attempts = append(sel.Attempts, Attempt{LSM: name, Reason: fmt.Sprintf("not active in this kernel (active: %s)", strings.Join(lsms, ","))})
			continue
		}
		f, ok := factories[name]
		if !ok {
			sel.Attempts = append(sel.Attempts, Attempt{LSM: name, Reason: "this build of ward has no " + name + " backend"})
			continue
		}
		b, err := f(ctx)
		if err != nil {
			reason := err.Error()
			if !errors.Is(err, ErrNotSupported) {
				reason = "probe error: " + reason
			}
			sel.Attempts = append(sel.Attempts, Attempt{LSM: name, Reason: reason})
			continue
		}
		a := Attempt{LSM: name, OK: true, Reason: "initialised"}
		if l, ok := b.(Limiter); ok {
			a.Limitations = l.Limitations()
		}
		sel.Attempts = append(sel.Attempts, a)
		sel.Selected, sel.Backend = name, b
		return sel
	}
	sel.Attempts = append(sel.Attempts, Attempt{LSM: None, OK: true, Reason: "no module could enforce: running in monitor mode, without enforcement"})
	return sel
}
