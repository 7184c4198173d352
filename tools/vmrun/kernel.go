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

// kernelLines are the Debian kernel lines the harness boots, by name, each the pattern of its
// packages' names with the number that orders them. Bookworm serves its own 6.1 (the default:
// the kernel these machines run) and 6.12, trixie's, whose BPF verifier checks loop callbacks
// as loops (docs/vm-harness.md, "Kernels").
var kernelLines = map[string]*regexp.Regexp{
	"6.1":  regexp.MustCompile(`^linux-image-6\.1\.0-(\d+)-amd64$`),
	"6.12": regexp.MustCompile(`^linux-image-6\.12\.(\d+)\+deb12-amd64$`),
}

// defaultKernelLine is the line booted when no kernel is named.
const defaultKernelLine = "6.1"

// kernelLineOf returns the line whose pattern pkg matches, "" for none.
func kernelLineOf(pkg string) string {
	for name, re := range kernelLines {
		if re.MatchString(pkg) {
			return name
		}
	}
	return ""
}

// kernelLineNames lists the lines, for messages.
func kernelLineNames() string {
	names := make([]string, 0, len(kernelLines))
	for name, re := range kernelLines {
		names = append(names, fmt.Sprintf("%s (%s)", name, re))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// kernel is an unpacked Debian kernel package in the cache.
type kernel struct {
	Package string // e.g. linux-image-6.1.0-56-amd64
	Version string // the package version, e.g. 6.1.192-2
	Release string // uname -r, e.g. 6.1.0-56-amd64
	Dir     string // the unpacked package tree
}

func (k kernel) Image() string { return filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Release) }

func (k kernel) ModulesDir() string { return filepath.Join(k.Dir, "lib", "modules", k.Release) }

// newestKernelPackage asks apt which packages of a kernel line it serves and
// picks the highest number, so the harness follows Debian's security updates
// without a pinned name going stale.
func newestKernelPackage(line string) (string, error) {
	re := kernelLines[line]
	out, err := exec.Command("apt-cache", "search", "--names-only", "^linux-image-").Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache search: %w", err)
	}
	best := newestMatching(strings.Split(string(out), "\n"), re)
	if best == "" {
		return "", fmt.Errorf("apt-cache serves no package of kernel line %s (%s)", line, re)
	}
	return best, nil
}

// newestMatching returns the name (the first word of a line) that re matches with the highest
// number, "" for none.
func newestMatching(lines []string, re *regexp.Regexp) string {
	best, bestN := "", -1
	for _, line := range lines {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n > bestN {
			best, bestN = name, n
		}
	}
	return best
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
// first use. pkg is a package name, or a kernel line's name (kernelLines) or
// empty (the default line) to pick the newest served package of that line.
// When apt cannot answer (no network), the line's newest kernel already in
// the cache is used.
func ensureKernel(cacheDir, pkg string, logf func(string, ...any)) (kernel, error) {
	if pkg == "" {
		pkg = defaultKernelLine
	}
	explicit := true
	if _, isLine := kernelLines[pkg]; isLine {
		line := pkg
		explicit = false
		var err error
		pkg, err = newestKernelPackage(line)
		if err != nil {
			if k, cerr := newestCachedKernel(cacheDir, line); cerr == nil {
				logf("using cached %s: %v", k.Package, err)
				return k, nil
			}
			return kernel{}, err
		}
	}
	if kernelLineOf(pkg) == "" {
		return kernel{}, fmt.Errorf("kernel %q: want a kernel line (%s) or a package of one", pkg, kernelLineNames())
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

func newestCachedKernel(cacheDir, line string) (kernel, error) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "kernel", "linux-image-*"))
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		name, _, _ := strings.Cut(filepath.Base(d), "_")
		names = append(names, name)
	}
	best := newestMatching(names, kernelLines[line])
	if best == "" {
		return kernel{}, fmt.Errorf("no cached kernel of line %s in %s", line, cacheDir)
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
		if name, ok := moduleName(d.Name()); ok && !d.IsDir() {
			byName[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	// A module built into the kernel (modules.builtin: 6.12 builds virtio_pci in)
	// needs no file and no loading.
	builtin, err := os.ReadFile(filepath.Join(modulesDir, "modules.builtin"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list built-in modules: %w", err)
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	for _, line := range strings.Fields(string(builtin)) {
		state[normaliseModule(strings.TrimSuffix(filepath.Base(line), ".ko"))] = 2
	}
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

// moduleName is the module a file of the modules tree holds: NAME.ko, or NAME.ko.xz as
// Debian's 6.12 kernels ship them.
func moduleName(file string) (string, bool) {
	base, ok := strings.CutSuffix(strings.TrimSuffix(file, ".xz"), ".ko")
	return normaliseModule(base), ok
}

// readModule returns a module file's ELF image, decompressed where it is xz-compressed: the
// guest's busybox insmod hands the bytes to init_module, which takes an uncompressed image.
func readModule(file string) ([]byte, error) {
	if !strings.HasSuffix(file, ".xz") {
		return os.ReadFile(file)
	}
	out, err := exec.Command("xz", "-dc", file).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("decompress %s (xz-utils): %w", file, err)
	}
	return out, nil
}

func moduleDepends(file string) ([]string, error) {
	data, err := readModule(file)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", file)
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", file, err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
