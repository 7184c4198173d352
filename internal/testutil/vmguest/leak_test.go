package vmguest

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

func TestNewFDs(t *testing.T) {
	before := map[string]string{"3": "anon_inode:bpf-map", "5": "anon_inode:bpf-prog"}
	after := map[string]string{"3": "anon_inode:bpf-map", "5": "anon_inode:bpf_link", "7": "anon_inode:btf"}
	got := strings.Join(newFDs(before, after), ", ")
	if want := "fd 5 (anon_inode:bpf_link), fd 7 (anon_inode:btf)"; got != want {
		t.Fatalf("newFDs = %q, want %q", got, want)
	}
	// The same links, closed and opened again on other numbers: no leak.
	before = map[string]string{"3": "anon_inode:bpf_link", "4": "anon_inode:bpf_link"}
	if got := newFDs(before, map[string]string{"8": "anon_inode:bpf_link", "9": "anon_inode:bpf_link"}); len(got) != 0 {
		t.Errorf("links reopened on other descriptors reported as leaked: %q", got)
	}
	// One more link than before: reported.
	if got := newFDs(before, map[string]string{"3": "anon_inode:bpf_link", "4": "anon_inode:bpf_link", "9": "anon_inode:bpf_link"}); strings.Join(got, ", ") != "fd 9 (anon_inode:bpf_link)" {
		t.Errorf("a leaked link: newFDs = %q", got)
	}
}

// TestRunCheckedFailsOnLeak leaks a real BPF map (maps can be created on the
// host kernel too) and checks that the package would fail.
func TestRunCheckedFailsOnLeak(t *testing.T) {
	var m *ebpf.Map
	code := runChecked(func() int {
		var err error
		m, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatalf("create a BPF map (needs root and the bpf syscall): %v", err)
		}
		return 0
	})
	m.Close()
	if code == 0 {
		t.Fatal("runChecked passed although a BPF map was left open")
	}
	if code := runChecked(func() int { return 0 }); code != 0 {
		t.Fatalf("runChecked failed with nothing leaked: %d", code)
	}
	if code := runChecked(func() int { return 3 }); code != 3 {
		t.Fatalf("runChecked changed the tests' own status 3 to %d", code)
	}
}
