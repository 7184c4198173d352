package enforcer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the kernel's bound on the links one path resolution follows (MAXSYMLINKS).
const maxSymlinks = 40

// EvalSymlinksIn resolves every symlink of absolute path p as a process whose root is root sees
// it ("/" for Ward's own; /proc/<pid>/root for another mount namespace's), and returns the path
// below that root. It resolves one component at a time, so that the part below root that it
// hands to the kernel never holds a symlink: the kernel would resolve an absolute one from
// Ward's root.
func EvalSymlinksIn(root, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: not an absolute path", p)
	}
	root = strings.TrimSuffix(root, "/")
	done, rest, links := "/", strings.Split(p, "/"), 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		fi, err := os.Lstat(root + next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		target, err := os.Readlink(root + next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, nil
}
