package auditlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMessage(t *testing.T) {
	payload := `audit(1764343200.123:5): apparmor="DENIED" operation="open" profile="ward-host" name="/etc/shadow"`
	// As the kernel sends it: nlmsg_len counts the payload only; type 1400 little-endian; a
	// trailing NUL and newline are not part of the record.
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), 0, 0, 0x78, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	typ, data, ok := Message(append(append(hdr, payload...), '\n', 0))
	if !ok || typ != TypeAVC || string(data) != payload {
		t.Fatalf("Message = %d %q %v", typ, data, ok)
	}
	if _, _, ok := Message(hdr[:8]); ok {
		t.Error("short datagram accepted")
	}
}

func TestInHostNetNS(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := inHostNetNS(a, a); err != nil {
		t.Errorf("same namespace: %v", err)
	}
	if err := inHostNetNS(a, b); err == nil || !strings.Contains(err.Error(), "hostNetwork") {
		t.Errorf("another namespace: %v, want an error naming hostNetwork", err)
	}
	if err := inHostNetNS(a, filepath.Join(dir, "missing")); err != nil {
		t.Errorf("unreadable host namespace: %v, want nil", err)
	}
}
