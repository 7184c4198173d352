//go:build vm

package vmtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/testutil/vmguest"
)

// TestBPFLSMDeniesAndReports loads the self-test program on lsm/file_open,
// aimed at one file and this process, and checks the errno of the denied
// open, that other opens and other processes are left alone, and the
// ring-buffer event.
func TestBPFLSMDeniesAndReports(t *testing.T) {
	vmguest.RequireGuest(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	other := filepath.Join(dir, "other")
	for _, p := range []string{target, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		t.Fatal(err)
	}

	spec, err := loadSelftest()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel encodes devices as major<<20|minor, userspace differently.
	kdev := unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)
	for name, v := range map[string]any{
		selftestVarTargetTgid: uint32(os.Getpid()),
		selftestVarTargetIno:  st.Ino,
		selftestVarTargetDev:  kdev,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
	}
	var objs selftestObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			t.Fatalf("load program: %+v", verr)
		}
		t.Fatalf("load program: %v", err)
	}
	defer objs.Close()
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatalf("open ring buffer: %v", err)
	}
	defer rd.Close()
	lsm, err := link.AttachLSM(link.LSMOptions{Program: objs.SelftestFileOpen})
	if err != nil {
		t.Fatalf("attach lsm/file_open: %v", err)
	}
	attached := true
	defer func() {
		if attached {
			lsm.Close()
		}
	}()

	if f, err := os.Open(other); err != nil {
		t.Errorf("open of another file was denied: %v", err)
	} else {
		f.Close()
	}
	// Another process opening the target is not the target.
	if out, err := exec.Command("cat", target).CombinedOutput(); err != nil {
		t.Errorf("another process could not open the target: %v\n%s", err, out)
	}
	f, err := os.Open(target)
	if err == nil {
		f.Close()
		t.Fatal("open of the target succeeded, want EPERM")
	}
	if !errors.Is(err, unix.EPERM) {
		t.Fatalf("open of the target: %v, want EPERM", err)
	}

	rd.SetDeadline(time.Now().Add(5 * time.Second))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("read the denial event: %v", err)
	}
	var ev selftestEvent
	if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &ev); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	path := unix.ByteSliceToString(int8sToBytes(ev.Path[:]))
	if ev.Tgid != uint32(os.Getpid()) || ev.Ino != st.Ino || ev.Verdict != -int32(unix.EPERM) || path != target || ev.PathLen != int32(len(target)+1) {
		t.Errorf("event = tgid %d ino %d verdict %d path %q (len %d); want tgid %d ino %d verdict %d path %q",
			ev.Tgid, ev.Ino, ev.Verdict, path, ev.PathLen, os.Getpid(), st.Ino, -int32(unix.EPERM), target)
	}
	// Exactly one event: the allowed opens reported nothing.
	rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if rec, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("unexpected second event (%d bytes) or error %v", len(rec.RawSample), err)
	}

	// Detached, the program no longer decides.
	if err := lsm.Close(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	attached = false
	if f, err := os.Open(target); err != nil {
		t.Errorf("open of the target after detaching: %v", err)
	} else {
		f.Close()
	}
}

func int8sToBytes(s []int8) []byte {
	b := make([]byte, len(s))
	for i, c := range s {
		b[i] = byte(c)
	}
	return b
}
