package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

//go:embed init.sh
var initScript []byte

// baseModules are loaded in every guest: the 9p transport over virtio that
// carries the run and source shares. Everything else the tests need is built
// into Debian's kernel.
var baseModules = []string{"virtio_pci", "9pnet_virtio", "9p"}

const busyboxPath = "/bin/busybox"

// buildInitramfs assembles the initramfs for a kernel and a boot profile and
// stores it in cacheDir under the hash of its bytes, so an unchanged archive
// is written once and a changed input (a new busybox, parser or kernel)
// gives a new file instead of a stale one.
func buildInitramfs(cacheDir string, k kernel, p bootProfile) (string, error) {
	a := newCPIO()
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "etc", "bin", "sbin", "usr/bin", "usr/sbin", "var/cache", "var/lib"} {
		a.Dir(d, 0o755)
	}
	a.Dir("tmp", 0o1777)
	a.CharDev("dev/console", 0o600, 5, 1)
	a.CharDev("dev/null", 0o666, 1, 3)
	a.File("init", 0o755, initScript)
	a.File("etc/ward/profile.sh", 0o644, []byte(p.guestScript()))
	if p.TmpfsRoot {
		// init.sh looks for this before its first mount.
		a.File("etc/ward/tmpfs-root", 0o644, nil)
	}
	a.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	a.File("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))

	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return "", fmt.Errorf("read busybox (install busybox-static): %w", err)
	}
	a.File("bin/busybox", 0o755, bb)
	list, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "bin/busybox" {
			a.Symlink(applet, "/bin/busybox")
		}
	}

	for _, tool := range p.Tools {
		if err := addExecutable(a, tool); err != nil {
			return "", fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	for _, tree := range p.Trees {
		if err := addTree(a, tree); err != nil {
			return "", fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	if p.Files != nil {
		files, err := p.Files(cacheDir)
		if err != nil {
			return "", fmt.Errorf("profile %s: %w", p.Name, err)
		}
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names) // the archive, and so its hash, must not depend on map order
		for _, name := range names {
			a.File(name, 0o644, files[name])
		}
	}

	mods, err := moduleClosure(k.ModulesDir(), append(append([]string{}, baseModules...), p.Modules...))
	if err != nil {
		return "", err
	}
	var loadList strings.Builder
	for _, m := range mods {
		data, err := readModule(m)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(k.ModulesDir(), strings.TrimSuffix(m, ".xz"))
		a.File(filepath.Join("lib/modules", rel), 0o644, data)
		fmt.Fprintln(&loadList, rel)
	}
	a.File("lib/modules/load.list", 0o644, []byte(loadList.String()))

	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	dir := filepath.Join(cacheDir, "initramfs")
	out := filepath.Join(dir, p.Name+"-"+k.Release+"-"+hex.EncodeToString(sum[:8])+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".initramfs-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write initramfs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write initramfs: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("write initramfs: %w", err)
	}
	return out, nil
}

var lddLine = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)`)

// addExecutable copies a host executable and the shared libraries it loads
// (as ldd reports them) to the same paths in the archive.
func addExecutable(a *cpioArchive, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read tool: %w", err)
	}
	a.File(path, 0o755, data)
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil
		}
		return fmt.Errorf("ldd %s: %w\n%s", path, err, out)
	}
	for _, m := range lddLine.FindAllStringSubmatch(string(out), -1) {
		lib, err := os.ReadFile(m[1]) // follows symlinks: the archive holds the file itself
		if err != nil {
			return fmt.Errorf("read library of %s: %w", path, err)
		}
		a.File(m[1], 0o755, lib)
	}
	return nil
}

// addTree copies a host file or directory, keeping symlinks as symlinks.
func addTree(a *cpioArchive, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			a.Dir(p, uint32(info.Mode().Perm()))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			a.Symlink(p, target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			a.File(p, uint32(info.Mode().Perm()), data)
		}
		return nil
	})
}
