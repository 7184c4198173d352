//go:build vm

package enforcer

import (
	"context"
	"testing"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// In a kernel booted with bpf in its lsm= list the probe must succeed, and selection must pick
// bpf. (On our host kernel it is refused; select_test.go covers that fallback.)
func TestProbeBPFLSMInGuest(t *testing.T) {
	vmguest.RequireGuest(t)
	if err := ProbeBPFLSM(); err != nil {
		t.Fatalf("ProbeBPFLSM in a bpf-enabled kernel: %v", err)
	}
	lsms, err := ReadLSMs(DefaultLSMPath)
	if err != nil {
		t.Fatal(err)
	}
	sel := Select(context.Background(), lsms, DefaultOrder, map[string]Factory{
		BPF: func(context.Context) (Backend, error) {
			if err := ProbeBPFLSM(); err != nil {
				return nil, err
			}
			return &fakeBackend{BPF}, nil
		},
	})
	if sel.Selected != BPF {
		t.Fatalf("selected %s, attempts %+v", sel.Selected, sel.Attempts)
	}
}
