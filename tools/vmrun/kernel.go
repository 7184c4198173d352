package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// kernelPackagePattern matches Debian bookworm's 6.1 kernel images. Only that
// line is served to these machines, under several ABI numbers.
var kernelPackagePattern = regexp.MustCompile(`^linux-image-6\.1\.0-(\d+)-amd64$`)

// kernel is an unpacked Debian kernel package in the cache.
type kernel struct {
	Package string // e.g. linux-image-6.1.0-56-amd64
	Version string // the package version, e.g. 6.1.192-2
	Release string // uname -r, e.g. 6.1.0-56-amd64
	Dir     string // the unpacked package tree
}

func (k kernel) Image() string { return filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Release) }

func (k kernel) ModulesDir() string { return filepath.Join(k.Dir, "lib", "modules", k.Release) }

// newestKernelPackage asks apt which kernel packages it serves and picks the
// highest ABI number, so the harness follows Debian's security updates
// without a pinned name going stale.
func newestKernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "search", "--names-only", `^linux-image-6\.1\.0-[0-9]+-amd64$`).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache search: %w", err)
	}
	best, bestABI := "", -1
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		m := kernelPackagePattern.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		abi, _ := strconv.Atoi(m[1])
		if abi > bestABI {
			best, bestABI = name, abi
		}
	}
	if best == "" {
		return "", errors.New("apt-cache serves no linux-image-6.1.0-*-amd64 package")
	}
	return best, nil
}

// candidateVersion returns the version apt would download for pkg.
func candidateVersion(pkg string) (string, error) {
	out, err := exec.Command("apt-cache", "policy", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %w", pkg, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("apt-cache policy %s: no candidate version", pkg)
}

// ensureKernel returns an unpacked kernel, downloading it into cacheDir on
// first use. pkg may be empty to pick the newest served package. When apt
// cannot answer (no network), the newest kernel already in the cache is used.
func ensureKernel(cacheDir, pkg string, logf func(string, ...any)) (kernel, error) {
	explicit := pkg != ""
	if !explicit {
		var err error
		pkg, err = newestKernelPackage()
		if err != nil {
			if k, cerr := newestCachedKernel(cacheDir); cerr == nil {
				logf("using cached %s: %v", k.Package, err)
				return k, nil
			}
			return kernel{}, err
		}
	}
	if !kernelPackagePattern.MatchString(pkg) {
		return kernel{}, fmt.Errorf("kernel package %q: want linux-image-6.1.0-NN-amd64", pkg)
	}
	if explicit {
		// A named package that is already unpacked needs no apt round trip:
		// make test-vm resolves the name once and boots many VMs with it.
		if k, err := cachedKernel(cacheDir, pkg); err == nil {
			return k, nil
		}
	}
	version, err := candidateVersion(pkg)
	if err != nil {
		if k, cerr := cachedKernel(cacheDir, pkg); cerr == nil {
			return k, nil
		}
		return kernel{}, err
	}
	k := kernel{
		Package: pkg,
		Version: version,
		Release: strings.TrimPrefix(pkg, "linux-image-"),
		Dir:     filepath.Join(cacheDir, "kernel", pkg+"_"+sanitizeVersion(version)),
	}
	if _, err := os.Stat(k.Image()); err == nil {
		return k, nil
	}

	debDir := filepath.Join(cacheDir, "deb")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return kernel{}, err
	}
	debs, _ := filepath.Glob(filepath.Join(debDir, pkg+"_*.deb"))
	deb := ""
	for _, d := range debs {
		if strings.HasPrefix(filepath.Base(d), pkg+"_"+strings.ReplaceAll(version, ":", "%3a")+"_") {
			deb = d
		}
	}
	if deb == "" {
		logf("downloading %s %s", pkg, version)
		cmd := exec.Command("apt-get", "download", "-q", pkg+"="+version)
		cmd.Dir = debDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return kernel{}, fmt.Errorf("apt-get download %s: %w\n%s", pkg, err, out)
		}
		debs, _ = filepath.Glob(filepath.Join(debDir, pkg+"_*.deb"))
		for _, d := range debs {
			if strings.Contains(filepath.Base(d), "_"+strings.ReplaceAll(version, ":", "%3a")+"_") {
				deb = d
			}
		}
		if deb == "" {
			return kernel{}, fmt.Errorf("apt-get download %s: no .deb in %s", pkg, debDir)
		}
	}

	// Unpack next to the final place and rename, so an interrupted run never
	// leaves a half-unpacked tree that looks complete.
	tmp, err := os.MkdirTemp(filepath.Dir(k.Dir), ".unpack-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(k.Dir), 0o755); err != nil {
			return kernel{}, err
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(k.Dir), ".unpack-"); err != nil {
			return kernel{}, err
		}
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return kernel{}, fmt.Errorf("dpkg-deb -x %s: %w\n%s", deb, err, out)
	}
	if err := os.Rename(tmp, k.Dir); err != nil {
		// Another vmrun (go test runs packages in parallel) may have
		// unpacked the same package first; its tree is as good as ours.
		if _, serr := os.Stat(k.Image()); serr != nil {
			return kernel{}, fmt.Errorf("install kernel tree: %w", err)
		}
	}
	if _, err := os.Stat(k.Image()); err != nil {
		return kernel{}, fmt.Errorf("kernel package %s: %w", pkg, err)
	}
	return k, nil
}

func sanitizeVersion(v string) string { return strings.NewReplacer(":", "_", "/", "_").Replace(v) }

func cachedKernel(cacheDir, pkg string) (kernel, error) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "kernel", pkg+"_*"))
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		k := kernel{
			Package: pkg,
			Version: strings.TrimPrefix(filepath.Base(dirs[i]), pkg+"_"),
			Release: strings.TrimPrefix(pkg, "linux-image-"),
			Dir:     dirs[i],
		}
		if _, err := os.Stat(k.Image()); err == nil {
			return k, nil
		}
	}
	return kernel{}, fmt.Errorf("no cached kernel %s in %s", pkg, cacheDir)
}

func newestCachedKernel(cacheDir string) (kernel, error) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "kernel", "linux-image-*"))
	best, bestABI := "", -1
	for _, d := range dirs {
		name, _, _ := strings.Cut(filepath.Base(d), "_")
		m := kernelPackagePattern.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if abi, _ := strconv.Atoi(m[1]); abi > bestABI {
			best, bestABI = name, abi
		}
	}
	if best == "" {
		return kernel{}, fmt.Errorf("no cached kernel in %s", cacheDir)
	}
	return cachedKernel(cacheDir, best)
}

// moduleClosure returns the module files needed to load the named modules,
// dependencies first. Debian's package carries no modules.dep (depmod runs at
// install time), so dependencies are read from each module's .modinfo.
func moduleClosure(modulesDir string, names []string) ([]string, error) {
	byName := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modulesDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			byName[normaliseModule(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(name string) error {
		name = normaliseModule(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		file, ok := byName[name]
		if !ok {
			return fmt.Errorf("module %s not found in %s", name, modulesDir)
		}
		state[name] = 1
		deps, err := moduleDepends(file)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		state[name] = 2
		order = append(order, file)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func normaliseModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

func moduleDepends(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", file, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
