package enforcer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// ProbeBPFLSM proves that BPF-LSM works here by loading a tiny program on lsm/file_open,
// attaching it, opening a file and checking that the program ran. Listed is not usable: a kernel
// can list bpf in its LSMs and still refuse LSM programs (lockdown, a missing BTF, or a
// capability), and a kernel without bpf in its lsm= boot list accepts the program but never
// calls it. Errors wrap ErrNotSupported when the kernel refuses.
func ProbeBPFLSM() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("remove memlock limit: %w", err)
	}
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("create probe map: %w", err)
	}
	defer counter.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:       "ward_probe",
		Type:       ebpf.LSM,
		AttachType: ebpf.AttachLSMMac,
		AttachTo:   "file_open",
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, counter.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			// cilium/ebpf suggests raising MEMLOCK on EPERM; it is already unlimited here, so
			// the refusal is the kernel's (lockdown, or a policy against LSM programs).
			return fmt.Errorf("load lsm program: the kernel refused it (EPERM with memlock unlimited): %w", ErrNotSupported)
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("load lsm program: %w: %w", err, ErrNotSupported)
		}
		return fmt.Errorf("load lsm program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach lsm program: %w: %w", err, ErrNotSupported)
	}
	defer l.Close()
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		return fmt.Errorf("trigger probe: %w", err)
	}
	f.Close()
	var n uint64
	if err := counter.Lookup(uint32(0), &n); err != nil {
		return fmt.Errorf("read probe counter: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("lsm program attached but never ran (bpf missing from the lsm= boot list?): %w", ErrNotSupported)
	}
	return nil
}
