package selinux

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
)

// DefaultStateDir is where the loader remembers the module it installed and every label it
// changed, with the label the file had before.
const DefaultStateDir = enforcer.DefaultStateDir + "/selinux"

// xattrName is where the kernel keeps a file's SELinux context.
const xattrName = "security.selinux"

// Labeler reads and writes files' SELinux contexts, without following symbolic links.
type Labeler interface {
	// Get returns the file's context, or "" when it has none.
	Get(path string) (string, error)
	// Set writes the context; "" removes it.
	Set(path, context string) error
}

// XattrLabeler reads and writes the security.selinux extended attribute, as chcon does.
type XattrLabeler struct{}

// Get implements Labeler.
func (XattrLabeler) Get(path string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, xattrName, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, unix.ENODATA):
			return "", nil
		case err != nil:
			return "", fmt.Errorf("read label of %s: %w", path, err)
		}
		return string(bytes.TrimRight(buf[:n], "\x00")), nil
	}
}

// Set implements Labeler.
func (XattrLabeler) Set(path, ctx string) error {
	var err error
	if ctx == "" {
		err = unix.Lremovexattr(path, xattrName)
		if errors.Is(err, unix.ENODATA) {
			err = nil
		}
	} else {
		err = unix.Lsetxattr(path, xattrName, []byte(ctx), 0)
	}
	if err != nil {
		return fmt.Errorf("label %s %q: %w", path, ctx, err)
	}
	return nil
}

// Relabel is what the state file remembers of one file Ward labelled.
type Relabel struct {
	// Original is the context the file had before Ward labelled it ("" for none).
	Original string `json:"original"`
	// Label is the context Ward gave it.
	Label string `json:"label"`
	// Ino and Dev identify the file, so that a file replaced since is not given the old file's
	// label back, and so that AVC records (which name the inode) find the path.
	Ino uint64 `json:"ino"`
	Dev uint64 `json:"dev"`
	// Handle is the file's handle (name_to_handle_at, "TYPE:HEX"), which finds the file again
	// after it, or a directory above it, was renamed: its label travels with it, and so must
	// Ward's record of it, or removing the policy would leave the moved file locked.
	Handle string `json:"handle,omitempty"`
	// Kind is the file's class as AVC records name it (file, dir, lnk_file; "" in a state an
	// older Ward wrote): with Ino it tells apart files of several file systems.
	Kind string `json:"kind,omitempty"`
}

// Labelled is a file Ward labelled: its path and its class (Relabel.Kind).
type Labelled struct {
	Path, Kind string
}

// kindOf names a file type as SELinux's classes do.
func kindOf(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return "file"
	case syscall.S_IFDIR:
		return "dir"
	case syscall.S_IFLNK:
		return "lnk_file"
	}
	return ""
}

type state struct {
	Labels map[string]Relabel `json:"labels"`
}

// Loader installs Ward's module and labels files, remembering in its state directory what it
// changed.
type Loader struct {
	dir     string
	runner  enforcer.Runner
	labeler Labeler

	mu    sync.Mutex
	st    state
	byIno map[uint64][]Labelled
}

// NewLoader returns a loader that keeps its state in dir ("" means DefaultStateDir), runs
// semodule through r (nil means enforcer.ExecRunner) and labels through lb (nil means XattrLabeler). It
// reads the state a previous run left, so that its labels can still be undone.
func NewLoader(dir string, r enforcer.Runner, lb Labeler) (*Loader, error) {
	if dir == "" {
		dir = DefaultStateDir
	}
	if r == nil {
		r = enforcer.ExecRunner{}
	}
	if lb == nil {
		lb = XattrLabeler{}
	}
	l := &Loader{dir: dir, runner: r, labeler: lb, st: state{Labels: map[string]Relabel{}}}
	b, err := os.ReadFile(l.statePath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read selinux state: %w", err)
	default:
		if err := json.Unmarshal(b, &l.st); err != nil {
			return nil, fmt.Errorf("read selinux state %s: %w", l.statePath(), err)
		}
		if l.st.Labels == nil {
			l.st.Labels = map[string]Relabel{}
		}
	}
	l.index()
	return l, nil
}

func (l *Loader) statePath() string  { return filepath.Join(l.dir, "labels.json") }
func (l *Loader) modulePath() string { return filepath.Join(l.dir, ModuleName+".cil") }

// index maps inode numbers to the labelled paths with them: one number may name files on
// several file systems (each numbers its own), and AVC records name the device only by its
// superblock's name, not the st_dev the state keeps.
func (l *Loader) index() {
	l.byIno = map[uint64][]Labelled{}
	for p, r := range l.st.Labels {
		l.byIno[r.Ino] = append(l.byIno[r.Ino], Labelled{Path: p, Kind: r.Kind})
	}
	for _, ls := range l.byIno {
		slices.SortFunc(ls, func(a, b Labelled) int { return strings.Compare(a.Path, b.Path) })
	}
}

// save writes the state atomically: a crash leaves the old or the new file, never half of one.
func (l *Loader) save() error {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmt.Errorf("write selinux state: %w", err)
	}
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return fmt.Errorf("write selinux state: %w", err)
	}
	tmp := l.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write selinux state: %w", err)
	}
	if err := os.Rename(tmp, l.statePath()); err != nil {
		return fmt.Errorf("write selinux state: %w", err)
	}
	return nil
}

// Installed returns the module text the loader last installed, or nil.
func (l *Loader) Installed() []byte {
	b, _ := os.ReadFile(l.modulePath())
	return b
}

// Install installs or updates Ward's module with semodule (which rebuilds the whole policy and
// loads it), unless the store already holds exactly this text: a rebuild takes seconds.
func (l *Loader) Install(ctx context.Context, m *Module) error {
	if bytes.Equal(l.Installed(), m.Text) {
		return nil
	}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmt.Errorf("install selinux module: %w", err)
	}
	// semodule names the module after the file, so the file is ward.cil; a copy beside it is
	// what is handed over, so that ward.cil only ever holds an installed module.
	stage := filepath.Join(l.dir, "stage")
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return fmt.Errorf("install selinux module: %w", err)
	}
	p := filepath.Join(stage, ModuleName+".cil")
	if err := os.WriteFile(p, m.Text, 0o600); err != nil {
		return fmt.Errorf("install selinux module: %w", err)
	}
	if out, err := l.runner.Run(ctx, "semodule", "-i", p); err != nil {
		return fmt.Errorf("install selinux module: semodule -i: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.WriteFile(l.modulePath(), m.Text, 0o600); err != nil {
		return fmt.Errorf("install selinux module: %w", err)
	}
	return nil
}

// Uninstall removes Ward's module from the store, when the loader installed one.
func (l *Loader) Uninstall(ctx context.Context) error {
	if l.Installed() == nil {
		return nil
	}
	if out, err := l.runner.Run(ctx, "semodule", "-r", ModuleName); err != nil {
		return fmt.Errorf("remove selinux module: semodule -r: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Remove(l.modulePath()); err != nil {
		return fmt.Errorf("remove selinux module: %w", err)
	}
	return nil
}

// Uninstaller is SELinux's enforcer.Uninstaller: it gives every file Ward labelled its original
// context back and removes Ward's module, as the state Ward kept in State says. Without that
// state Ward never ran SELinux here, and there is nothing to remove.
type Uninstaller struct {
	State   string          // the Loader's directory; "" means DefaultStateDir
	Runner  enforcer.Runner // nil means enforcer.ExecRunner
	Labeler Labeler         // nil means XattrLabeler
}

var _ enforcer.Uninstaller = Uninstaller{}

// Uninstall implements enforcer.Uninstaller.
func (u Uninstaller) Uninstall(ctx context.Context, did func(string)) error {
	state := u.State
	if state == "" {
		state = DefaultStateDir
	}
	if _, err := os.Stat(state); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, err := NewLoader(state, u.Runner, u.Labeler)
	if err != nil {
		return fmt.Errorf("%s: %w", enforcer.SELinux, err)
	}
	labels := len(l.Labels())
	installed := l.Installed() != nil
	var errs []error
	if err := l.Restore(); err != nil {
		errs = append(errs, err)
	} else if labels > 0 {
		enforcer.Did(did, fmt.Sprintf("restored the original SELinux label of %d files", labels))
	}
	if err := l.Uninstall(ctx); err != nil {
		errs = append(errs, err)
	} else if installed {
		enforcer.Did(did, "removed SELinux module "+ModuleName)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", enforcer.SELinux, err)
	}
	return nil
}

// walkDir and readDir list directories for Plan (tests make them fail).
var (
	walkDir = filepath.WalkDir
	readDir = os.ReadDir
)

// Plan walks the module's targets and returns the context every path must get. Paths that do not
// exist and paths whose signature the module lacks produce warnings. known lists the paths Ward
// labelled before (Loader.Labels): below a directory the walk cannot read, they keep their
// place in the plan, so that a tree Ward protects never loses its labels because Ward could not
// list it (the module lets Ward's domain list Ward's types; this is the second line).
func Plan(m *Module, known []string) (map[string]string, []enforcer.Warning) {
	want := map[string]string{}
	var warns []enforcer.Warning
	warn := func(format string, args ...any) {
		w := enforcer.Warning{Backend: enforcer.SELinux, RuleID: -1, Message: fmt.Sprintf(format, args...)}
		if m.set != nil {
			w.Workload = m.set.Workload.ID()
		}
		warns = append(warns, w)
	}
	add := func(p, named string) {
		typ, ok := m.TypeFor(named)
		switch {
		case !ok:
			warn("%s: no type in the module for its combination of rules; its label is left alone", named)
		case typ != "":
			want[p] = Label(typ)
		}
	}
	// keep adds the known paths below dir, which could not be read.
	keep := func(real, named, dir string, err error) {
		warn("cannot list %s (%v): the files Ward labelled there before keep their labels", dir, err)
		for _, k := range known {
			if strings.HasPrefix(k, dir+"/") {
				add(k, named+strings.TrimPrefix(k, real))
			}
		}
	}
	for _, t := range m.Targets {
		// A rule names a path; the kernel checks the label of the file it resolves to.
		real, err := filepath.EvalSymlinks(t.Path)
		if err != nil {
			// Labelled before and gone from its path since: renamed, or a directory above it
			// was. The label went with the file, and the rule still holds it there.
			var moved []string
			for _, k := range known {
				if k == t.Path || strings.HasPrefix(k, t.Path+"/") {
					moved = append(moved, k)
					add(k, k)
				}
			}
			if len(moved) > 0 {
				warn("%s is gone from its path (renamed, or a directory above it was): the %d files Ward labelled there keep their labels where they are now", t.Path, len(moved))
				continue
			}
			warn("%s does not exist: it is not enforced until it exists and the policy is applied again", t.Path)
			continue
		}
		add(real, t.Path)
		switch {
		case t.Tree:
			walkDir(real, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					if d == nil || d.IsDir() {
						keep(real, t.Path, p, err)
					}
					return nil
				}
				if p == real {
					return nil
				}
				add(p, t.Path+strings.TrimPrefix(p, real))
				return nil
			})
		case t.Children:
			entries, err := readDir(real)
			if err != nil {
				for _, k := range known {
					if filepath.Dir(k) == real {
						add(k, t.Path+"/"+filepath.Base(k))
					}
				}
				warn("cannot list %s (%v): the files Ward labelled there before keep their labels", real, err)
			}
			for _, e := range entries {
				add(filepath.Join(real, e.Name()), t.Path+"/"+e.Name())
			}
		}
	}
	return want, warns
}

// Label gives every path of want its context and restores the original context of every path
// Ward labelled before that want no longer names. Each original context is written to the state
// file before the file is relabelled, so that a crash at any point can be undone.
func (l *Loader) Label(want map[string]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		ctx := want[p]
		old, known := l.st.Labels[p]
		at := p // where the file is now
		var st syscall.Stat_t
		err := syscall.Lstat(at, &st)
		if known && (err != nil || st.Ino != old.Ino || st.Dev != old.Dev) {
			// Not at its path: renamed, or a directory above it was (found by its handle).
			if now, ok := l.locate(p, old); ok {
				at = now
				err = syscall.Lstat(at, &st)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("label %s: %w", p, err))
			continue
		}
		if known && (old.Ino != st.Ino || old.Dev != st.Dev) {
			known = false // replaced since: its current label is its own
		}
		cur, err := l.labeler.Get(at)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if known && cur == ctx {
			if old.Kind == "" {
				// Written by a Ward that kept no class: saved with the state below.
				old.Kind = kindOf(st.Mode)
				l.st.Labels[p] = old
			}
			continue
		}
		r := Relabel{Original: l.original(p, cur), Label: ctx, Ino: st.Ino, Dev: st.Dev, Handle: handleOf(at), Kind: kindOf(st.Mode)}
		if known {
			r.Original = old.Original
		}
		l.st.Labels[p] = r
		if err := l.save(); err != nil {
			return err
		}
		if err := l.labeler.Set(at, ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for p := range l.st.Labels {
		if _, ok := want[p]; !ok {
			if err := l.restore(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	l.index()
	if err := l.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isWard reports whether a context carries one of Ward's types.
func isWard(ctx string) bool { return strings.HasPrefix(typeOfContext(ctx), "ward_") }

// original is the context to restore p to, given its current context. A file created in a
// directory Ward labelled inherits the directory's Ward type; restoring that would keep it
// protected (and unreadable) for ever, so it gets what it would have inherited without Ward: the
// original of the nearest ancestor Ward labelled, or the nearest ancestor's own context.
func (l *Loader) original(p, cur string) string {
	if !isWard(cur) {
		return cur
	}
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		if r, ok := l.st.Labels[dir]; ok && !isWard(r.Original) {
			return r.Original
		}
		if c, err := l.labeler.Get(dir); err == nil && c != "" && !isWard(c) {
			return c
		}
		if dir == "/" || dir == "." {
			return cur
		}
	}
}

// restore gives one file its original context back and forgets it.
func (l *Loader) restore(p string) error {
	r := l.st.Labels[p]
	at, ok := l.locate(p, r)
	if !ok {
		delete(l.st.Labels, p) // gone or replaced: nothing of ours to undo
		return nil
	}
	if cur, err := l.labeler.Get(at); err == nil && cur != r.Label {
		// Someone relabelled it since (restorecon, chcon): theirs wins.
		delete(l.st.Labels, p)
		return nil
	}
	if err := l.labeler.Set(at, r.Original); err != nil {
		return fmt.Errorf("restore label: %w", err)
	}
	delete(l.st.Labels, p)
	return nil
}

// locate returns where the file Ward labelled as p is now: p itself, or, when p is gone or
// another file, the path its handle leads to (it was renamed, or a directory above it was).
func (l *Loader) locate(p string, r Relabel) (string, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err == nil && st.Ino == r.Ino && st.Dev == r.Dev {
		return p, true
	}
	typ, hexHandle, ok := strings.Cut(r.Handle, ":")
	t, err := strconv.ParseInt(typ, 10, 32)
	raw, herr := hex.DecodeString(hexHandle)
	if !ok || err != nil || herr != nil {
		return "", false
	}
	// open_by_handle_at needs any descriptor on the file's file system: the nearest existing
	// directory above the old path that is on it.
	dir := filepath.Dir(p)
	for syscall.Lstat(dir, &st) != nil || st.Dev != r.Dev {
		if dir == "/" || dir == "." {
			return "", false
		}
		dir = filepath.Dir(dir)
	}
	mfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) // not O_PATH: open_by_handle_at refuses those
	if err != nil {
		return "", false
	}
	defer unix.Close(mfd)
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(int32(t), raw), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if unix.Fstat(fd, &fst) != nil || fst.Ino != r.Ino || fst.Dev != r.Dev {
		return "", false
	}
	now, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !strings.HasPrefix(now, "/") || strings.HasSuffix(now, " (deleted)") {
		return "", false
	}
	return now, true
}

// handleOf returns p's file handle as Relabel.Handle keeps it, or "" where the file system has
// none.
func handleOf(p string) string {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%x", h.Type(), h.Bytes())
}

// Restore gives every file Ward labelled its original context back.
func (l *Loader) Restore() error {
	return l.Label(nil)
}

// Labels returns what the state file holds.
func (l *Loader) Labels() map[string]Relabel {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Relabel, len(l.st.Labels))
	for k, v := range l.st.Labels {
		out[k] = v
	}
	return out
}

// PathsOf returns the files Ward labelled with an inode number (as AVC records name files),
// sorted by path: more than one when file systems' numbers collide.
func (l *Loader) PathsOf(ino uint64) []Labelled {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.byIno[ino])
}
