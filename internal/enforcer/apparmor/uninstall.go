package apparmor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Uninstall unloads and deletes every profile of Ward's in dir ("" means DefaultDir): the files
// that carry Ward's header, and the unfinished loads Ward left. Profiles without the header are
// never touched. securityFS ("" means DefaultSecurityFS) is then read to unload the profiles the
// kernel still holds under a Ward name whose file is gone (a profile directory removed by hand);
// a machine without AppArmor has nothing loaded. It returns the profiles removed; running it
// again removes nothing and succeeds.
func Uninstall(ctx context.Context, dir, securityFS string, r Runner) ([]string, error) {
	l := NewLoader(dir, r)
	if securityFS == "" {
		securityFS = DefaultSecurityFS
	}
	var removed []string
	var errs []error
	if _, err := os.Stat(l.Dir()); err == nil {
		names, err := l.Prune(ctx, nil)
		removed = append(removed, names...)
		if err != nil {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("uninstall apparmor profiles: %w", err))
	}
	loaded, err := loadedWardProfiles(filepath.Join(securityFS, "profiles"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range loaded {
		if err := os.WriteFile(filepath.Join(securityFS, ".remove"), []byte(name), 0); err != nil {
			errs = append(errs, fmt.Errorf("uninstall apparmor profile %s: unload through %s/.remove: %w", name, securityFS, err))
			continue
		}
		removed = append(removed, name)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, err
	}
	return removed, nil
}

// loadedWardProfiles lists the kernel's loaded profiles named like Ward's ("ward-..."), skipping
// their child profiles (which go with their parent). A missing list means AppArmor is not active.
func loadedWardProfiles(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("uninstall apparmor profiles: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ward-host (enforce)"
		name, _, _ := strings.Cut(sc.Text(), " (")
		if strings.HasPrefix(name, "ward-") && !strings.Contains(name, "//") && checkName(name) == nil {
			out = append(out, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("uninstall apparmor profiles: read %s: %w", path, err)
	}
	return out, nil
}
