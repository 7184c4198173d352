package apparmor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
)

// Uninstaller is AppArmor's enforcer.Uninstaller: it unloads and deletes every profile of Ward's
// in Dir, the files that carry Ward's header and the unfinished loads Ward left. Profiles without
// the header are never touched. SecurityFS is then read to unload the profiles the kernel still
// holds under a Ward name whose file is gone (a profile directory removed by hand); a machine
// without AppArmor has nothing loaded.
type Uninstaller struct {
	Dir        string          // "" means DefaultDir
	SecurityFS string          // "" means DefaultSecurityFS
	Runner     enforcer.Runner // nil means enforcer.ExecRunner
}

var _ enforcer.Uninstaller = Uninstaller{}

// Uninstall implements enforcer.Uninstaller.
func (u Uninstaller) Uninstall(ctx context.Context, did func(string)) error {
	l := NewLoader(u.Dir, u.Runner)
	securityFS := u.SecurityFS
	if securityFS == "" {
		securityFS = DefaultSecurityFS
	}
	removed := func(name string) { enforcer.Did(did, "removed AppArmor profile "+name) }
	var errs []error
	if _, err := os.Stat(l.Dir()); err == nil {
		names, err := l.Prune(ctx, nil)
		for _, name := range names {
			removed(name)
		}
		if err != nil {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("uninstall apparmor profiles: %w", err))
	}
	loaded, err := loadedWardProfiles(filepath.Join(securityFS, "profiles"))
	if err != nil {
		errs = append(errs, fmt.Errorf("uninstall apparmor profiles: %w", err))
	}
	for _, name := range loaded {
		if err := unloadLabel(securityFS, name); err != nil {
			errs = append(errs, fmt.Errorf("uninstall: %w", err))
			continue
		}
		removed(name)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", enforcer.AppArmor, err)
	}
	return nil
}

// unloadLabel unloads the profile the kernel holds as label through its .remove, for profiles
// no file of Ward's holds any more: apparmor_parser -R removes only what a file names.
func unloadLabel(securityFS, label string) error {
	if err := os.WriteFile(filepath.Join(securityFS, ".remove"), []byte(label), 0); err != nil {
		return fmt.Errorf("unload apparmor profile %s through %s/.remove: %w", label, securityFS, err)
	}
	return nil
}

// loadedLabels lists the labels of every profile the kernel holds, children too. A missing list
// means AppArmor is not active.
func loadedLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ward-host//usr/bin/cat (enforce)"
		label, _, _ := strings.Cut(sc.Text(), " (")
		out = append(out, label)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// loadedWardProfiles lists the kernel's loaded top-level profiles named like Ward's ("ward-..."):
// the workloads' profiles and their entry profiles (EntryName), but not their child profiles,
// which go with their parent. A missing list means AppArmor is not active.
func loadedWardProfiles(path string) ([]string, error) {
	labels, err := loadedLabels(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range labels {
		if isWardProfile(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// isWardProfile says whether a label is one of Ward's top-level profiles by its name: a
// workload's profile or an entry named NAME/CHILD (EntryName), not a child (NAME//CHILD).
func isWardProfile(label string) bool {
	top, _ := SplitLabel(label)
	return strings.HasPrefix(label, "ward-") && !strings.Contains(label, "//") && checkName(top) == nil
}
