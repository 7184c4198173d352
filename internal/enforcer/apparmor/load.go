package apparmor

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
)

// DefaultDir is where AppArmor's own service looks for profiles at boot, so that Ward's profiles
// are in force again before Ward starts.
const DefaultDir = "/etc/apparmor.d"

// ErrNotManaged is returned when asked to remove a profile file that does not carry Ward's
// header: Ward never touches profiles it did not write.
var ErrNotManaged = errors.New("profile file is not managed by Ward")

// Loader writes profiles into a profile directory and loads them into the kernel with
// apparmor_parser.
type Loader struct {
	dir    string
	parser string
	runner enforcer.Runner
}

// NewLoader returns a loader for a profile directory ("" means DefaultDir) that runs
// apparmor_parser through r (nil means enforcer.ExecRunner).
func NewLoader(dir string, r enforcer.Runner) *Loader {
	if dir == "" {
		dir = DefaultDir
	}
	if r == nil {
		r = enforcer.ExecRunner{}
	}
	return &Loader{dir: dir, parser: "apparmor_parser", runner: r}
}

// Dir returns the profile directory.
func (l *Loader) Dir() string { return l.dir }

// ReadHost reports which includes a parser base directory (normally DefaultDir) holds, for
// Options.Host.
func ReadHost(dir string) Host {
	return Host{Includes: func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}}
}

// ParseError is apparmor_parser's refusal of a profile, with the policy and rule behind the line
// it named when the line map knows them. Error() gives a one-line summary; %+v adds the parser's
// whole output.
type ParseError struct {
	Profile string
	// Line is the line the parser named in the profile file, or 0.
	Line   int
	Origin Origin
	// Sources and Children are the profile's fromSource executables and its number of child
	// profiles (Profile.Sources, Profile.Children), named when the parser refused that number.
	Sources  []Origin
	Children int
	Output   string
	Err      error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apparmor_parser rejected profile %s", e.Profile)
	if e.Line > 0 {
		fmt.Fprintf(&b, " at line %d", e.Line)
	}
	switch {
	case e.Origin.Policy != "" && e.Origin.Rule != "":
		fmt.Fprintf(&b, " (policy %s, %s)", e.Origin.Policy, e.Origin.Rule)
	case e.Origin.Kind != "" && e.Line > 0:
		fmt.Fprintf(&b, " (%s line)", e.Origin.Kind)
	}
	if msg := firstError(e.Output); msg != "" {
		b.WriteString(": " + msg)
	} else if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if strings.Contains(e.Output, transitionsRefused) && len(e.Sources) > 0 {
		b.WriteString(" " + tooManySources(e.Children, e.Sources))
	}
	return b.String()
}

// tooManySources says which rules gave a profile more child profiles than the parser holds
// exec targets for, and what would fit.
func tooManySources(children int, srcs []Origin) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The workload has %d fromSource executables (", len(srcs))
	const shown = 3
	for i, o := range srcs[:min(len(srcs), shown)] {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s from policy %s, %s", o.Source, o.Policy, o.Rule)
	}
	if len(srcs) > shown {
		fmt.Fprintf(&b, "; and %d more", len(srcs)-shown)
	}
	fmt.Fprintf(&b, ") in %d child profiles (executables the same rules are limited to share one), and "+
		"each child profile needs an exec transition to every child and to the workload's profile: this "+
		"apparmor_parser holds fewer (Debian 12's 3.0.8 holds 12 per profile, so at most %d child profiles "+
		"per workload). Limit the same rules to fromSource executables that may share a child, name fewer "+
		"of them in the policies that select the workload, or use BPF-LSM, which has no such limit.", children, MaxChildren)
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// Format prints the parser's whole output with %+v.
func (e *ParseError) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('+') {
		fmt.Fprintf(f, "%s\n%s", e.Error(), strings.TrimRight(e.Output, "\n"))
		return
	}
	fmt.Fprint(f, e.Error())
}

// firstError picks the parser's error message, skipping its notices about the cache.
func firstError(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "Cache read/write disabled") || strings.HasPrefix(l, "Warning") {
			continue
		}
		return l
	}
	return ""
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// Load replaces a workload's profile. The text is written to a temporary file in the profile
// directory and loaded from there; only when the kernel accepted it is the file renamed over the
// previous one. A rejected profile therefore leaves both the loaded profile and the file on disk
// as they were.
func (l *Loader) Load(ctx context.Context, p Profile) error {
	if err := checkName(p.Name); err != nil {
		return fmt.Errorf("load profile: %w", err)
	}
	if !strings.HasPrefix(string(p.Text), HeaderPrefix+p.Name+"\n") {
		return fmt.Errorf("load profile %s: text does not start with Ward's header", p.Name)
	}
	// The temporary file has the profile's own name, in a hidden directory beside the final
	// one: apparmor_parser -W names its cache entry after the file's base name, so the cache
	// written now is the one the boot-time load of the final file finds.
	tmpDir, err := os.MkdirTemp(l.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("load profile %s: %w", p.Name, err)
	}
	defer os.RemoveAll(tmpDir)
	tmpName := filepath.Join(tmpDir, p.Name)
	if err := writeSynced(tmpName, p.Text); err != nil {
		return fmt.Errorf("load profile %s: %w", p.Name, err)
	}

	out, err := l.runner.Run(ctx, l.parser, "-r", "-W", tmpName)
	if err != nil {
		pe := &ParseError{Profile: p.Name, Sources: p.Sources, Children: p.Children, Output: string(out), Err: err}
		for _, m := range lineRE.FindAllStringSubmatch(string(out), -1) {
			// Only a line number in our own file maps back; one in an include does not.
			if n, _ := strconv.Atoi(m[1]); strings.Contains(string(out), tmpName) && n > 0 {
				pe.Line = n
				pe.Origin, _ = p.Origin(n)
				break
			}
		}
		return fmt.Errorf("load profile %s: %w", p.Name, pe)
	}

	if err := os.Rename(tmpName, filepath.Join(l.dir, p.Name)); err != nil {
		return fmt.Errorf("load profile %s: loaded, but keeping it on disk failed: %w", p.Name, err)
	}
	if d, err := os.Open(l.dir); err == nil {
		d.Sync() // the rename survives a crash; a failure here loses nothing loaded
		d.Close()
	}
	return nil
}

// tmpPrefix starts the hidden directories that hold a profile while the kernel checks it.
const tmpPrefix = ".ward-tmp-"

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkName keeps a profile name usable as a file name in the profile directory.
func checkName(name string) error {
	if name == "" || name[0] == '.' {
		return fmt.Errorf("invalid profile name %q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("invalid profile name %q", name)
		}
	}
	return nil
}

// Managed reports whether a profile file carries Ward's header, and the profile it names.
func Managed(path string) (name string, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	first, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && first == "" {
		return "", false, nil
	}
	name, ok = strings.CutPrefix(strings.TrimRight(first, "\n"), HeaderPrefix)
	return name, ok, nil
}

// Remove unloads a profile and deletes its file, if the file is Ward's.
func (l *Loader) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("remove profile: %w", err)
	}
	path := filepath.Join(l.dir, name)
	got, ok, err := Managed(path)
	if err != nil {
		return fmt.Errorf("remove profile %s: %w", name, err)
	}
	if !ok || got != name {
		return fmt.Errorf("remove profile %s: %w", name, ErrNotManaged)
	}
	if out, err := l.runner.Run(ctx, l.parser, "-R", path); err != nil && !strings.Contains(string(out), "doesn't exist") {
		// Keep the file: it still describes what the kernel enforces.
		return fmt.Errorf("remove profile %s: apparmor_parser -R: %w: %s", name, err, firstError(string(out)))
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove profile %s: %w", name, err)
	}
	return nil
}

// Prune unloads and deletes every profile file of Ward's that is not in keep, and the temporary
// files of loads that never finished. Files without Ward's header are left alone.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (l *Loader) Prune(ctx context.Context, keep []string) (removed []string, err error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("prune profiles: %w", err)
	}
	// The exempt profile goes last: the parser that removes the others may be running in it,
	// and the kernel refuses a policy change from a task whose own profile changed meanwhile.
	slices.SortStableFunc(entries, func(a, b os.DirEntry) int {
		return cmp.Compare(boolInt(a.Name() == ExemptProfile), boolInt(b.Name() == ExemptProfile))
	})
	var errs []error
	for _, e := range entries {
		path := filepath.Join(l.dir, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), tmpPrefix) {
			// Left by a load that never finished (Ward was killed during it).
			if err := os.RemoveAll(path); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		name, ok, err := Managed(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || name != e.Name() || slices.Contains(keep, name) {
			continue
		}
		if err := l.Remove(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("prune profiles: %w", err)
	}
	return removed, nil
}
