//go:build vm

package bpflsm

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// verifierLimit is the kernel's limit of instructions the verifier processes per program
// (BPF_COMPLEXITY_LIMIT_INSNS); a program that needs more is refused ("BPF program is too
// large") and the backend cannot load.
const verifierLimit = 1_000_000

// TestVerifierHeadroom loads every program with the verifier's statistics and prints how many
// instructions it processed, against the limit. It fails when a program uses more than 90 % of
// it: the file hooks inline check_path, whose branches multiply the verifier's states, and a
// change that adds a branch there can take a program from well below the limit to over it.
func TestVerifierHeadroom(t *testing.T) {
	vmguest.RequireGuest(t)
	spec, err := loadWard()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats},
	})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			t.Fatalf("%v:\n%+v", err, verr)
		}
		t.Fatal(err)
	}
	defer coll.Close()
	re := regexp.MustCompile(`processed (\d+) insns`)
	stackRe := regexp.MustCompile(`stack depth [0-9+]+`)
	names := make([]string, 0, len(coll.Programs))
	for n := range coll.Programs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m := re.FindStringSubmatch(coll.Programs[n].VerifierLog)
		if m == nil {
			t.Errorf("%s: no instruction count in the verifier's log: %q", n, coll.Programs[n].VerifierLog)
			continue
		}
		insns, _ := strconv.Atoi(m[1])
		// The frames' sizes too: the hook's, with dir_walk's and a callback's, share 512 bytes.
		stack := stackRe.FindString(coll.Programs[n].VerifierLog)
		t.Logf("%-28s %8d instructions processed, %5.1f %% of the limit; %s", n, insns, 100*float64(insns)/verifierLimit, stack)
		if insns > verifierLimit*9/10 {
			t.Errorf("%s: the verifier processed %d instructions, more than 90 %% of its limit of %d", n, insns, verifierLimit)
		}
	}
}
