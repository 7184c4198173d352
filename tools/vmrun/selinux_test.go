package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/enforcer/selinux"
)

// TestSelinuxFiles builds the selinux profile's policy for real (secilc against the installed
// reference policy, .ci/install-selinux-deps.sh) and checks what the guest gets, and that the
// second build comes from the cache.
func TestSelinuxFiles(t *testing.T) {
	if os.Getenv("WARD_SKIP_SELINUX_TOOLS") == "1" {
		t.Skip("WARD_SKIP_SELINUX_TOOLS=1")
	}
	cache := t.TempDir()
	files, err := selinuxFiles(cache)
	if err != nil {
		t.Fatal(err)
	}
	if p := files[selinuxPolicy]; len(p) < 1<<20 {
		t.Errorf("policy is %d bytes", len(p))
	}
	if !bytes.Contains(files[selinuxBase], []byte(harnessCIL)) {
		t.Errorf("base.cil lacks the harness rules")
	}
	rec := strings.TrimPrefix(filepath.Join(selinux.DefaultStateDir, selinux.ModuleName+".cil"), "/")
	if !bytes.Equal(files[rec], selinux.StaticModule(vmAdminDomain)) {
		t.Errorf("the module record %s is not the static module", rec)
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "selinux", "*.policy"))
	if len(cached) != 1 {
		t.Fatalf("cache holds %v", cached)
	}
	if err := os.WriteFile(cached[0], []byte("cached"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := selinuxFiles(cache)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[selinuxPolicy]) != "cached" {
		t.Errorf("the second build did not use the cache")
	}
}
