package bpflsm

import (
	"errors"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
)

// TestNewOnThisKernel: the development hosts list bpf but refuse LSM
// programs (reference/machines.md); New must say so with ErrNotSupported so
// that selection falls back. On a kernel that allows them, New must work.
func TestNewOnThisKernel(t *testing.T) {
	b, err := New(Options{})
	if err == nil {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		t.Log("this kernel runs BPF-LSM programs")
		return
	}
	if !errors.Is(err, enforcer.ErrNotSupported) {
		t.Fatalf("New: %v, want an error wrapping ErrNotSupported", err)
	}
	t.Logf("refused as expected: %v", err)
}
