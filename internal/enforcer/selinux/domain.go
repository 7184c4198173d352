package selinux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Domain is what Ward's own process may do under SELinux, checked with the kernel's access
// computation (selinuxfs "access", what libselinux's security_compute_av uses) at start.
type Domain struct {
	// Context is Ward's process context; Type its domain.
	Context, Type string
	// Relabel: the domain may relabel an ordinary file (relabelfrom on a file type, relabelto on
	// Ward's block type when the module is loaded). Without it no label can be applied.
	Relabel Answer
	// LoadPolicy: the domain may load a policy (semodule rebuilds and loads the whole policy:
	// needed to install or change Ward's module).
	LoadPolicy Answer
	// Why says which check decided, for the log.
	Why string
}

// Answer is yes, no or unknown (the kernel would not say).
type Answer string

// The answers of a domain check.
const (
	Yes     Answer = "yes"
	No      Answer = "no"
	Unknown Answer = "unknown"
)

// selfContext reads the context of the calling process.
func selfContext(procRoot string) (string, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "self/attr/current"))
	if err != nil {
		return "", fmt.Errorf("read own selinux context: %w", err)
	}
	ctx := strings.TrimRight(string(b), "\x00\n")
	if typeOfContext(ctx) == "" {
		return "", fmt.Errorf("read own selinux context: %q has no type", ctx)
	}
	return ctx, nil
}

// checkDomain asks the kernel what the process context ctx may do. target is the context of an
// ordinary file Ward may have to label (the label of /etc); fsCtx that of selinuxfs.
func checkDomain(allowed func(selinuxfs, scon, tcon, class string, perms ...string) (bool, error), selinuxfs, ctx, target, fsCtx string) Domain {
	d := Domain{Context: ctx, Type: typeOfContext(ctx), Relabel: Unknown, LoadPolicy: Unknown}
	var why []string
	ask := func(tcon, class string, perms ...string) Answer {
		ok, err := allowed(selinuxfs, ctx, tcon, class, perms...)
		if err != nil {
			why = append(why, fmt.Sprintf("%s %s on %s: %v", class, strings.Join(perms, " "), typeOfContext(tcon), err))
			return Unknown
		}
		if !ok {
			why = append(why, fmt.Sprintf("%s { %s } on %s denied", class, strings.Join(perms, " "), typeOfContext(tcon)))
			return No
		}
		return Yes
	}
	if target != "" {
		d.Relabel = ask(target, "file", "relabelfrom", "relabelto")
		if d.Relabel == Yes {
			// Ward's own types: only when the module is loaded is the context valid.
			if _, err := allowed(selinuxfs, ctx, Label(StaticType(cell{'b', 'b', 'b'})), "file", "getattr"); err == nil {
				d.Relabel = ask(Label(StaticType(cell{'b', 'b', 'b'})), "file", "relabelfrom", "relabelto")
			}
		}
	}
	if fsCtx != "" {
		d.LoadPolicy = ask(fsCtx, "security", "load_policy")
	}
	d.Why = strings.Join(why, "; ")
	return d
}

// allowed computes the access vector of scon to tcon for class through selinuxfs's access file
// (write "scon tcon class", read "allowed decided ..." in hex) and reports whether every one of
// perms is allowed.
func allowed(selinuxfs, scon, tcon, class string, perms ...string) (bool, error) {
	idx, err := os.ReadFile(filepath.Join(selinuxfs, "class", class, "index"))
	if err != nil {
		return false, err
	}
	var want uint64
	for _, p := range perms {
		b, err := os.ReadFile(filepath.Join(selinuxfs, "class", class, "perms", p))
		if err != nil {
			return false, err
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 6)
		if err != nil || n == 0 {
			return false, fmt.Errorf("permission %s of %s: %q", p, class, b)
		}
		want |= 1 << (n - 1)
	}
	f, err := os.OpenFile(filepath.Join(selinuxfs, "access"), os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := f.WriteString(scon + " " + tcon + " " + strings.TrimSpace(string(idx))); err != nil {
		return false, err
	}
	buf := make([]byte, 256)
	n, err := f.Read(buf)
	if err != nil {
		return false, err
	}
	fields := strings.Fields(string(buf[:n]))
	if len(fields) < 1 {
		return false, errors.New("empty answer from selinuxfs access")
	}
	av, err := strconv.ParseUint(fields[0], 16, 32)
	if err != nil {
		return false, fmt.Errorf("answer %q from selinuxfs access: %w", buf[:n], err)
	}
	return av&want == want, nil
}
