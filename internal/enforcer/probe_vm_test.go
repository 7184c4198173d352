//go:build vm

package enforcer_test

import (
	"context"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/enforcer/bpflsm"
	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// In a kernel booted with bpf in its lsm= list, selection with the production BPF-LSM factory
// must pick bpf. (On our host kernel it is refused; select_test.go covers that fallback.)
func TestSelectBPFLSMInGuest(t *testing.T) {
	vmguest.RequireGuest(t)
	lsms, err := enforcer.ReadLSMs(enforcer.DefaultLSMPath)
	if err != nil {
		t.Fatal(err)
	}
	sel := enforcer.Select(context.Background(), lsms, enforcer.DefaultOrder, map[string]enforcer.Factory{
		enforcer.BPF: bpflsm.Factory(bpflsm.Options{}),
	})
	if sel.Backend != nil {
		defer sel.Backend.Close()
	}
	if sel.Selected != enforcer.BPF {
		t.Fatalf("selected %s, attempts %+v", sel.Selected, sel.Attempts)
	}
}
