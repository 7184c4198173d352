package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestSelinuxService asks the host service for two policies as the guest does: one with a module
// secilc accepts, which must come back as a binary policy, and one it refuses, which must come
// back as secilc's complaint.
func TestSelinuxService(t *testing.T) {
	if os.Getenv("WARD_SKIP_SELINUX_TOOLS") == "1" {
		t.Skip("WARD_SKIP_SELINUX_TOOLS=1")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		selinuxService(ctx, dir)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	request := func(name string, module []byte) {
		if err := os.WriteFile(filepath.Join(dir, name+".cil.tmp"), module, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, name+".cil.tmp"), filepath.Join(dir, name+".cil")); err != nil {
			t.Fatal(err)
		}
	}
	request("good", selinux.StaticModule(vmAdminDomain))
	request("bad", []byte("(allow no_such_type_t self (file (read)))\n"))
	answer := func(name string) (ext string, b []byte) {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			for _, ext := range []string{".policy", ".err"} {
				if b, err := os.ReadFile(filepath.Join(dir, name+ext)); err == nil {
					return ext, b
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no answer to %s within 2 minutes", name)
		return "", nil
	}
	if ext, b := answer("good"); ext != ".policy" || len(b) < 1<<20 {
		t.Errorf("good: got %s of %d bytes (%.200s), want a policy", ext, len(b), b)
	}
	if ext, b := answer("bad"); ext != ".err" || !bytes.Contains(b, []byte("bad.cil:1")) {
		t.Errorf("bad: got %s %.300q, want secilc's complaint about bad.cil:1", ext, b)
	}
}
