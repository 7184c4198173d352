// Package apparmor is Ward's AppArmor backend. Render translates one workload's rules.Set into one
// AppArmor profile (pure, byte-stable, golden-tested); Loader writes and loads profiles with
// apparmor_parser (kernel I/O); ParseRecord and Attribute turn the kernel's AppArmor audit records
// back into accesses and verdicts of rules.Decide.
//
// The translation follows rules.Decide. AppArmor gives it most of what it needs: a profile denies
// whatever it does not grant, `deny` beats every grant whatever the order, and `audit` marks are
// unioned, so "Block beats Audit beats Allow among rules of equal specificity" holds by
// construction. Rules limited by fromSource decide before the others for their executable: they
// live in its child profile, which leaves out, for the same target, the accesses of the general
// rules that a fromSource rule decides (as KubeArmor's checkIfGlobalRuleToBeAdded does).
// Where AppArmor cannot tell two accesses apart that Decide treats differently, the profile
// denies both (fail closed) and Render returns a Warning that says what differs; docs/apparmor.md
// lists every such case.
package apparmor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// HeaderPrefix starts the first line of every profile file Ward writes. The loader removes and
// unloads only files that start with it, so profiles written by people or packages are never
// touched.
const HeaderPrefix = "# Managed by Ward: do not edit. ward-profile: "

// ABI is the AppArmor policy abi every profile pins (an include of the parser's base directory).
const ABI = "abi/3.0"

// ExemptProfile is the profile that keeps Ward's own executables unconfined when the host
// profile attaches to every program (RenderExempt). A container profile's name always holds
// "_", so it cannot clash with one.
const ExemptProfile = "ward-exempt"

// Host holds the facts about the machine that change the rendered text. Render reads no files
// itself: ReadHost fills this from a real parser directory, tests use a fixture.
type Host struct {
	// Includes reports whether an include file exists relative to the parser's base directory
	// (for example "tunables/global" or "abi/3.0"). Nil means none does.
	Includes func(name string) bool
}

func (h Host) has(name string) bool { return h.Includes != nil && h.Includes(name) }

// Options change how a profile is rendered.
type Options struct {
	Host Host
	// Attach lists executables that enter the workload's profile when they are executed by an
	// unconfined process (attachment by path, for host processes). Empty means a process enters
	// the profile only when started under it: OCI process.apparmorProfile, aa-exec,
	// change_onexec, or systemd's AppArmorProfile=.
	Attach []string
	// AttachAll makes the profile attach to every executable ("/**"): whatever program an
	// unconfined process starts enters the profile, and its children inherit it. A profile with
	// a more specific attachment still wins for its own program (AppArmor's longest-left-match
	// rule), so other profiles keep their programs. The daemon sets it for the host profile.
	AttachAll bool
	// AttachExcept are executables AttachAll leaves out: an unconfined process that starts one
	// leaves it unconfined (the node's container runtime).
	AttachExcept []string
	// Exempt are executables another profile of Ward's attaches to (ExemptProfile's). AttachAll
	// leaves them out, as it does AttachExcept, and a fromSource executable among either gets no
	// entry profile (entries).
	Exempt []string
	// Held lists the child and entry profiles of this profile that the kernel holds now, by
	// label (NAME//CHILD, NAME/CHILD, as SplitLabel reads them; /PATH for an entry named by its
	// path, PathEntries, which the caller knows as its own). Those the new text would lack
	// are rendered retired (retired): the kernel keeps a child that a replaced profile no longer
	// holds, with its old rules, for the processes in it, and an unloaded profile's processes
	// become unconfined.
	Held []string
	// Others lists the other top-level profiles the kernel holds (otherProfiles). A fromSource
	// executable one of them is named by (the older form of a distribution's profile,
	// "/usr/sbin/cupsd { }") gets a warning: the kernel gives an exec such a profile before any
	// attachment, so the entry profile never takes the program.
	Others []string
	// Name overrides ProfileName. Kubernetes users name a profile in the pod template, before
	// the pod (and its generated name) exists, so the daemon may choose a name that is stable
	// across a workload's pods, such as one derived from the owner. It must pass checkName.
	Name string
}

// Profile is one rendered profile file.
type Profile struct {
	// Name is the top-level profile's name and the file's name in the profile directory.
	Name string
	// Text is the whole file.
	Text []byte
	// Lines[i] says where line i+1 of Text came from, so that a parser error can name the policy
	// and rule that caused it.
	Lines []Origin
	// Sources are the fromSource executables, sorted, each as the first rule naming it
	// (Origin.Source is the executable).
	Sources []Origin
	// Children is the number of child profiles: one per set of sources the same rules are
	// limited to. It is what a parser's limit on exec targets counts (MaxChildren).
	Children int
	// Shared maps a child profile that more than one source runs in (named after the first) to
	// those sources: a record from it names the child, not which of them acted.
	Shared map[string][]string
	// Entries are the entry profiles in the same file, each a top-level twin of a child: named by
	// its source's path (PathEntries), or attached to its sources' paths (EntryName), rendered
	// with AttachAll. Loading the file does not unload an entry it no longer holds: a later
	// render writes that one retired (Held).
	Entries []string
	// Retired are the labels of the profiles rendered retired (Options.Held): no exec enters them;
	// the loader unloads each once no process runs in it.
	Retired []string
}

// Origin says why a profile line exists.
type Origin struct {
	Kind OriginKind
	// Policy and Rule (a field path such as spec.file.matchPaths[0]) name the rule or the raw
	// spec.apparmor text behind the line; RuleID is its index in the Set, or -1.
	Policy string
	Rule   string
	RuleID int
	// Source is the fromSource executable whose child profile holds the line, or "".
	Source string
}

// OriginKind classifies profile lines.
type OriginKind string

// Kinds of lines.
const (
	OriginHeader   OriginKind = "header"
	OriginBaseline OriginKind = "baseline" // what any confined process needs for itself
	OriginPosture  OriginKind = "posture"  // the category's default (permit, or the posture)
	OriginRule     OriginKind = "rule"
	OriginRaw      OriginKind = "raw" // a policy's spec.apparmor text
)

// Origin returns the origin of a 1-based line number.
func (p *Profile) Origin(line int) (Origin, bool) {
	if line < 1 || line > len(p.Lines) {
		return Origin{}, false
	}
	return p.Lines[line-1], true
}

// ProfileName is the AppArmor profile name of a workload: "ward-host" for the host, otherwise
// "ward-" and the namespace, pod and container joined by "_" (a character Kubernetes names cannot
// hold). A name that needed any character replaced gets a hash of the original parts, so that two
// workloads never share a profile.
func ProfileName(w workload.Workload) string {
	if w.Kind == workload.KindHost {
		return "ward-host"
	}
	parts := []string{w.Namespace, w.Pod, w.Container}
	if w.Container == "" && w.ContainerID != "" {
		parts[2] = w.ContainerID
	}
	changed := false
	for i, p := range parts {
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			c := p[j]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
				b.WriteByte(c)
			} else {
				b.WriteByte('_')
				changed = true
			}
		}
		if b.Len() == 0 {
			b.WriteByte('-')
		}
		parts[i] = b.String()
	}
	name := "ward-" + strings.Join(parts, "_")
	if changed || len(name) > 200 {
		sum := sha256.Sum256([]byte(w.Namespace + "\x00" + w.Pod + "\x00" + w.Container + "\x00" + w.ContainerID))
		if len(name) > 180 {
			name = name[:180]
		}
		name += "-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// Permission letters. Decide knows reads and writes; AppArmor splits them finer. Reads are r
// (open for reading, listing a directory), m (mapping executable code) and k (locking: it does
// not change the file). Writes are w (write, create, delete, rename, chmod, chown, truncate; w
// includes append) and l (making a hard link at the path). Executions are x, in process rules only.
const (
	permsRead  = "rmk"
	permsWrite = "wl"
	permsAll   = "rwlkm"
)

// ctx is one profile of a workload: the workload's own (source "") or the child profile of one
// fromSource executable.
type ctx struct {
	source string
	label  string // the kernel's name for it: NAME or NAME//SOURCE
	indent string
	// anc holds the directories above this profile's blocked paths, with the first rule that
	// needs each (ancestorDirs).
	anc map[string]*rules.Rule
}

type renderer struct {
	set     *rules.Set
	opts    Options
	name    string
	sources []string
	named   map[string]Origin // each source's first rule, for Profile.Sources
	// child maps each source to the child profile it runs in (childOf); children lists each
	// child's sources, the first naming it.
	child    map[string]string
	children [][]string
	labels   []string
	lines    []string
	origins  []Origin
	warnings []enforcer.Warning
	warned   map[string]bool
	// entryAttach holds, per child, the sources its entry attaches to (planEntries); entryNames
	// the entry profiles rendered (entries); retiredChildren and retiredLabels what retired
	// holds and renderRetired wrote.
	entryAttach     [][]string
	entryNames      []string
	retiredChildren []string
	retiredLabels   []string
}

// profileName is the name a workload's profile is rendered under: Name, else ProfileName.
func (o Options) profileName(w workload.Workload) string {
	if o.Name != "" {
		return o.Name
	}
	return ProfileName(w)
}

// Render translates a workload's rule set into its AppArmor profile. Every profile it returns
// compiles with apparmor_parser (the tests check each golden file with the real parser). Rules
// AppArmor cannot enforce exactly come back as warnings, never as a silent allow. The error is
// for sets that cannot be written at all (a path with control characters, a raw spec.apparmor
// text that would close the profile).
func Render(set *rules.Set, opts Options) (Profile, []enforcer.Warning, error) {
	if set == nil {
		return Profile{}, nil, errors.New("render profile: nil rule set")
	}
	if opts.Name != "" {
		if err := checkName(opts.Name); err != nil {
			return Profile{}, nil, fmt.Errorf("render profile: %w", err)
		}
	}
	r := &renderer{set: set, opts: opts, name: opts.profileName(set.Workload), warned: map[string]bool{}}
	if err := r.collectSources(); err != nil {
		return Profile{}, nil, fmt.Errorf("render profile %s: %w", r.name, err)
	}
	if err := r.render(); err != nil {
		return Profile{}, nil, fmt.Errorf("render profile %s: %w", r.name, err)
	}
	text := strings.Join(r.lines, "\n") + "\n"
	prof := Profile{Name: r.name, Text: []byte(text), Lines: r.origins, Children: len(r.children), Entries: r.entryNames, Retired: r.retiredLabels}
	for _, src := range r.sources {
		prof.Sources = append(prof.Sources, r.named[src])
	}
	for _, members := range r.children {
		if len(members) > 1 {
			if prof.Shared == nil {
				prof.Shared = map[string][]string{}
			}
			prof.Shared[childName(members[0])] = members
		}
	}
	return prof, r.warnings, nil
}

// childName is the name of the child profile of fromSource executable source: its path without
// the leading "/", so the kernel names it NAME//usr/bin/curl. A child named by its path
// ("NAME///usr/bin/curl") cannot be the target of an exec transition: the parser (3.0.8) stores
// such a target as "/usr/bin/curl", which the kernel then looks for among the top-level profiles
// and does not find ("profile transition not found", checked in the VM), so a fromSource program
// could neither execute itself nor another fromSource program.
func childName(source string) string { return strings.TrimPrefix(source, "/") }

// collectSources lists the fromSource executables and the child profile each runs in (childOf).
func (r *renderer) collectSources() error {
	r.named = map[string]Origin{}
	rule := func(i int) *policy.Rule { return &r.set.Rules[i].Rule }
	for _, ref := range sourceRefs(len(r.set.Rules), rule) {
		ru := &r.set.Rules[ref.rule]
		if err := checkPrintable(ref.path); err != nil {
			return fmt.Errorf("policy %s: %s: fromSource: %w", ru.PolicyName, ru.Field, err)
		}
		if strings.ContainsAny(ref.path, `"\`) {
			return fmt.Errorf("policy %s: %s: fromSource %q: a child profile name cannot hold '\"' or '\\'", ru.PolicyName, ru.Field, ref.path)
		}
		r.named[ref.path] = Origin{Kind: OriginRule, Policy: ru.PolicyName, Rule: ref.field(rule), RuleID: ru.ID, Source: ref.path}
		r.sources = append(r.sources, ref.path)
	}
	slices.Sort(r.sources)
	r.childOf()
	r.labels = []string{r.name}
	for _, members := range r.children {
		r.labels = append(r.labels, r.name+"//"+childName(members[0]))
	}
	// The processes in a retired child are the workload's: they signal and are signalled.
	r.retiredChildren = r.retired(true)
	for _, child := range r.retiredChildren {
		r.labels = append(r.labels, r.name+"//"+child)
	}
	return nil
}

// childOf gives the sources that the same rules are limited to one child profile, named after
// the first of them (groupSources). Each child is an exec target of every child (xmode) and a
// parser holds few per profile (MaxChildren), so a policy that lists twenty programs in one
// rule's fromSource needs one child, not twenty.
func (r *renderer) childOf() {
	r.children = groupSources(r.sources, len(r.set.Rules), func(i int) *policy.Rule { return &r.set.Rules[i].Rule })
	r.child = map[string]string{}
	for _, members := range r.children {
		for _, src := range members {
			r.child[src] = childName(members[0])
		}
	}
}

func (r *renderer) emit(o Origin, indent, format string, args ...any) {
	r.lines = append(r.lines, indent+fmt.Sprintf(format, args...))
	r.origins = append(r.origins, o)
}

func (r *renderer) warn(ru *rules.Rule, format string, args ...any) {
	field := ""
	if ru != nil {
		field = ru.Field
	}
	r.warnAt(ru, field, format, args...)
}

// warnAt warns about rule ru (nil for none) at field, once per text.
func (r *renderer) warnAt(ru *rules.Rule, field, format string, args ...any) {
	w := enforcer.Warning{Backend: enforcer.AppArmor, Workload: r.set.Workload.ID(), RuleID: -1, Message: fmt.Sprintf(format, args...)}
	if ru != nil {
		w.Policy, w.PolicyKind, w.Namespace, w.Rule, w.RuleID = ru.PolicyName, ru.PolicyKind, ru.Namespace, field, ru.ID
	}
	key := w.String()
	if r.warned[key] {
		return
	}
	r.warned[key] = true
	r.warnings = append(r.warnings, w)
}

// warnSource warns at the field that first names fromSource executable source.
func (r *renderer) warnSource(source, format string, args ...any) {
	o := r.named[source]
	r.warnAt(&r.set.Rules[o.RuleID], o.Rule, format, args...)
}

func ruleOrigin(ru *rules.Rule, c *ctx) Origin {
	return Origin{Kind: OriginRule, Policy: ru.PolicyName, Rule: ru.Field, RuleID: ru.ID, Source: c.source}
}

// verdictOrigin attributes a line derived from a Decide verdict.
func verdictOrigin(v rules.Verdict, c *ctx) Origin {
	if v.RuleID >= 0 && !v.Posture {
		return Origin{Kind: OriginRule, Policy: v.Policy, Rule: v.Rule, RuleID: v.RuleID, Source: c.source}
	}
	return Origin{Kind: OriginPosture, Policy: v.Policy, RuleID: -1, Source: c.source}
}

func (r *renderer) render() error {
	h := Origin{Kind: OriginHeader, RuleID: -1}
	w := r.set.Workload
	r.emit(h, "", "%s%s", HeaderPrefix, r.name)
	if w.Kind == workload.KindHost {
		r.emit(h, "", "# Workload: host %s", w.Hostname)
	} else {
		r.emit(h, "", "# Workload: container %s/%s/%s %s", w.Namespace, w.Pod, w.Container, w.ContainerID)
	}
	if len(r.set.Policies) == 0 {
		r.emit(h, "", "# Policies: none")
	}
	for _, p := range r.set.Policies {
		r.emit(h, "", "# Policy: %s", p)
	}
	r.emit(h, "", "")
	// The abi is pinned: without it the parser compiles for whatever feature set it defaults to,
	// and one without network mediation drops every network rule with no more than a warning.
	// New refuses a parser that lacks this abi, so the selection falls back instead.
	r.emit(h, "", "abi <%s>,", ABI)
	if r.opts.Host.has("tunables/global") {
		r.emit(h, "", "#include <tunables/global>")
	}
	r.emit(h, "", "")

	r.warnUnsupported()

	attach := ""
	if r.opts.AttachAll {
		if len(r.opts.Attach) > 0 {
			return errors.New("attach: AttachAll and Attach exclude each other")
		}
		// The programs Ward's other profiles attach to (entries, ward-exempt) are left out of
		// this one's attachment too, not left to the kernel's ranking of the two: an entry for
		// /usr/bin/x and the exempt apparmor_parser lost to this pattern in the VM, where crun
		// is /usr/bin/crun, before its tails had markers (attachAllExcept).
		except := slices.Concat(r.opts.AttachExcept, r.opts.Exempt)
		for _, members := range r.planEntries() {
			except = append(except, members...)
		}
		a, err := attachAllExcept(except)
		if err != nil {
			return err
		}
		attach = " " + a
	}
	if len(r.opts.Attach) > 0 {
		a, err := attachment(r.opts.Attach)
		if err != nil {
			return err
		}
		attach = " " + a
	}
	// attach_disconnected: paths outside the process's mount namespace (a container's files seen
	// from a detached mount) still get a name starting at "/" instead of an unconditional denial.
	r.emit(h, "", "profile %s%s flags=(attach_disconnected) {", quote(r.name), attach)
	top := &ctx{label: r.name, indent: "  "}
	if err := r.body(top); err != nil {
		return err
	}
	for _, members := range r.children {
		s := members[0]
		c := &ctx{source: s, label: r.name + "//" + childName(s), indent: "    "}
		o := Origin{Kind: OriginHeader, RuleID: -1, Source: s}
		r.emit(o, "", "")
		if len(members) == 1 {
			r.emit(o, "  ", "# Child profile for fromSource %s: the workload's rules plus the rules limited to it.", s)
		} else {
			r.emit(o, "  ", "# Child profile for fromSource %s: the workload's rules plus the rules limited to them, the same for each.", strings.Join(members, ", "))
		}
		r.emit(o, "  ", "profile %s flags=(attach_disconnected) {", quote(childName(s)))
		if err := r.body(c); err != nil {
			return err
		}
		r.emit(o, "  ", "}")
	}
	for _, child := range r.retiredChildren {
		if err := r.renderRetired(r.name+"//"+child, child, child, "  "); err != nil {
			return err
		}
	}
	r.emit(h, "", "}")
	if err := r.entries(); err != nil {
		return err
	}
	for _, e := range r.retired(false) {
		label := r.name + "/" + e
		if strings.HasPrefix(e, "/") {
			label = e // named by its path: it keeps that name, the program's rules, and its execs
		}
		if err := r.renderRetired(label, label, childName(e), ""); err != nil {
			return err
		}
	}
	return nil
}

// retired lists the children, or the entries, by child name (an entry named by its path by that
// path), that the kernel holds for this profile (Options.Held) and the new text lacks; entries
// are known once rendered. When a
// profile is replaced, the kernel keeps the children the new text lacks, with their old rules,
// for the processes that run in them; and when a profile is unloaded, its processes become
// unconfined. So neither is dropped while in use: each stays, retired (renderRetired), until no
// process runs in it.
func (r *renderer) retired(children bool) []string {
	current := map[string]bool{}
	for _, members := range r.children {
		current[r.name+"//"+childName(members[0])] = true
	}
	for _, e := range r.entryNames {
		current[e] = true
	}
	var out []string
	for _, label := range r.opts.Held {
		if strings.HasPrefix(label, "/") {
			// An entry named by its path (PathEntries) that the new text lacks: listed by its label.
			if !children && !current[label] && pathNamed(label) {
				current[label] = true
				out = append(out, label)
			}
			continue
		}
		name, child := SplitLabel(label)
		// An old Ward's child named by its path ("NAME///usr/bin/curl") is left as it is, and
		// so are the kernel's own null- profiles (a complain-mode exec without a profile).
		if name != r.name || child == "" || current[label] || strings.HasPrefix(label, name+"//") != children ||
			strings.HasPrefix(child, "/") || strings.HasPrefix(child, "null-") || checkPrintable(child) != nil || strings.ContainsAny(child, `"\`) {
			continue
		}
		current[label] = true
		out = append(out, child)
	}
	slices.Sort(out)
	return out
}

// renderRetired renders a retired child or entry profile (retired), named name in the text and
// label in the kernel: without an attachment and the target of no exec rule, so no process
// enters it, and with the rules that fromSource executable "/"+child has now, so the processes
// that still run in it get them. An entry named by its path still takes that program's execs
// from outside Ward's profiles until it is unloaded, with those same rules.
func (r *renderer) renderRetired(label, name, child, indent string) error {
	s := "/" + child
	c := &ctx{source: s, label: label, indent: indent + "  "}
	o := Origin{Kind: OriginHeader, RuleID: -1, Source: s}
	r.emit(o, "", "")
	if name == s {
		r.emit(o, indent, "# Retired entry named by its path: it still takes the execs of %s from outside Ward's profiles, with the rules that program has now, until no process runs in it.", s)
	} else {
		r.emit(o, indent, "# Retired: no exec enters this profile now. It has the rules of fromSource %s, for the processes still in it, until none is.", s)
	}
	r.emit(o, indent, "profile %s flags=(attach_disconnected) {", quote(name))
	if err := r.body(c); err != nil {
		return err
	}
	r.emit(o, indent, "}")
	r.retiredLabels = append(r.retiredLabels, label)
	return nil
}

// EntryName is the name of the entry profile of the child profile that fromSource executable
// source runs in: the workload's profile name, "/", and the child's name ("ward-host/usr/bin/curl"
// for the child "ward-host//usr/bin/curl"). Ward's own profile names never hold "/", so the first
// one splits a label into the two (SplitLabel).
func EntryName(profile, source string) string { return profile + "/" + childName(source) }

// SplitLabel splits the label of one of Ward's profiles into the top-level profile's name and the
// child's: "NAME//CHILD" is a child profile, "NAME/CHILD" the entry profile of that child
// (EntryName); a label with neither is the workload's own profile.
func SplitLabel(label string) (profile, child string) {
	if p, c, ok := strings.Cut(label, "//"); ok {
		return p, c
	}
	p, c, _ := strings.Cut(label, "/")
	if p == "" {
		// A profile named by a path ("/usr/bin/foo") is not Ward's; keep it whole.
		return label, ""
	}
	return p, c
}

// entries renders, for a profile attached to every program (the host's), each child profile again
// as a top-level profile for its sources. A child is entered only by its parent's exec rule, so a
// fromSource program that a process outside Ward's profiles starts (systemd starting a service, a
// shell older than the profile) would enter the workload's profile by its attachment instead,
// without the rules limited to it. The workload's attachment leaves the sources out (render), so
// the entry is the only one of Ward's profiles an unconfined exec of one can enter. Each source
// whose path can name a profile (pathNamed) gets an entry named by that path, without an
// attachment: the kernel gives an exec such a profile before it looks at any attachment
// (find_attach), so it wins over another profile attached to the same path too, which an
// attachment of Ward's cannot do on every kernel (docs/apparmor.md, "Other profiles'
// programs"). The other sources share one entry attached to their paths (EntryName). Its body is
// the child's, exec rules and all, so a program it starts goes where the child's would. Sources
// the node's container runtime or Ward itself run as (AttachExcept, Exempt) get none: those must
// stay unconfined when started from outside.
func (r *renderer) entries() error {
	for i, attach := range r.entryAttach {
		members := r.children[i]
		if len(attach) == 0 {
			continue
		}
		s := members[0]
		var attached []string
		for _, p := range attach {
			if !pathNamed(p) || slices.Contains(r.opts.Others, p) {
				attached = append(attached, p) // another profile has the name: planEntries warns
				continue
			}
			c := &ctx{source: s, label: p, indent: "  "}
			o := Origin{Kind: OriginHeader, RuleID: -1, Source: s}
			r.emit(o, "", "")
			r.emit(o, "", "# Entry profile for fromSource %s, named by its path: the rules of child profile %s//%s, for a start by a process outside Ward's profiles.", p, r.name, childName(s))
			r.emit(o, "", "profile %s flags=(attach_disconnected) {", quote(p))
			if err := r.body(c); err != nil {
				return err
			}
			r.emit(o, "", "}")
			r.entryNames = append(r.entryNames, p)
		}
		if len(attached) == 0 {
			continue
		}
		attach = attached
		a, err := attachment(attach)
		if err != nil {
			return err
		}
		name := EntryName(r.name, s)
		c := &ctx{source: s, label: name, indent: "  "}
		o := Origin{Kind: OriginHeader, RuleID: -1, Source: s}
		r.emit(o, "", "")
		r.emit(o, "", "# Entry profile for fromSource %s: the rules of child profile %s//%s, for a start by a process outside Ward's profiles.", strings.Join(attach, ", "), r.name, childName(s))
		r.emit(o, "", "profile %s %s flags=(attach_disconnected) {", quote(name), a)
		if err := r.body(c); err != nil {
			return err
		}
		r.emit(o, "", "}")
		r.entryNames = append(r.entryNames, name)
	}
	return nil
}

// pathNamed says whether an entry profile can be named by fromSource executable p: a path of
// letters, digits and "/._+-" only. The parser takes a profile name with a pattern character for
// an attachment, and the kernel then ranks it as one; quoting and escapes are left out too.
func pathNamed(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._+-", c) >= 0) {
			return false
		}
	}
	return true
}

// PathEntries lists the entry profiles named by their paths (entries) among the top-level
// profiles of a text of Ward's: lines "profile /PATH flags=...", not indented. They are Ward's
// although their labels do not say so; the Backend knows them from the texts it loaded.
func PathEntries(text []byte) []string {
	var out []string
	for line := range strings.Lines(string(text)) {
		rest, ok := strings.CutPrefix(line, "profile /")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		if p := "/" + name; pathNamed(p) {
			out = append(out, p)
		}
	}
	return out
}

// planEntries lists, for each child, the sources its entry profile attaches to (entries), and
// warns about the sources left without one. Only a profile attached to every program (AttachAll)
// has entries, and only it calls this.
func (r *renderer) planEntries() [][]string {
	r.entryAttach = make([][]string, len(r.children))
	for i, members := range r.children {
		for _, s := range members {
			if slices.Contains(r.opts.AttachExcept, s) || slices.Contains(r.opts.Exempt, s) {
				r.warnSource(s, "fromSource %s is a program the host profile leaves unconfined when a process outside Ward's profiles starts it (a container runtime's, or Ward's own): "+
					"the rules limited to it apply only when it is started from inside the host profile", s)
				continue
			}
			if slices.Contains(r.opts.Others, s) {
				r.warnSource(s, "fromSource %s has an AppArmor profile of its own, named by its path: the kernel gives it that profile when a process outside Ward's profiles starts it, "+
					"so the rules limited to it apply only when it is started from inside the host profile (BPF-LSM applies them either way)", s)
			}
			r.entryAttach[i] = append(r.entryAttach[i], s)
		}
	}
	return r.entryAttach
}

// RenderExempt renders ExemptProfile: the executables listed (Ward itself, and the
// apparmor_parser it runs) stay unconfined when an unconfined process starts them, so that a
// profile attached to every program (Options.AttachAll) never confines Ward. It lives in a file
// of its own, loaded before the attached profile and removed after it: the kernel refuses a
// policy change from a task whose own profile was replaced or removed during the same request.
func RenderExempt(paths []string) (Profile, error) {
	a, err := attachment(paths)
	if err != nil {
		return Profile{}, fmt.Errorf("render profile %s: %w", ExemptProfile, err)
	}
	h := Origin{Kind: OriginHeader, RuleID: -1}
	r := &renderer{}
	r.emit(h, "", "%s%s", HeaderPrefix, ExemptProfile)
	r.emit(h, "", "# Ward's own executables stay unconfined when an unconfined process starts them.")
	r.emit(h, "", "")
	r.emit(h, "", "abi <%s>,", ABI)
	r.emit(h, "", "")
	r.emit(h, "", "profile %s %s flags=(unconfined) {", ExemptProfile, a)
	r.emit(h, "", "}")
	return Profile{Name: ExemptProfile, Text: []byte(strings.Join(r.lines, "\n") + "\n"), Lines: r.origins}, nil
}

// attachment joins executables into one attachment pattern, which takes them from another
// profile's attachment: Ward attaches a profile to a program only where a policy or the
// configuration names it (a fromSource program's entry, Ward's own executables, Options.Attach).
// The kernel (6.1 find_attach) ranks attachments by the length of their left match and attaches
// neither of two equally long ones, so against another profile attached to the same exact path
// the program ran unconfined. The pattern ends in one more alternative, a NUL, which no path the
// kernel matches can reach but which makes the parser's DFA end every listed path in the state
// that NUL reaches from "/", numbered before the path's own states: the kernel takes the move
// back to it for a loop it cannot place and its count wraps to the largest there is, so this
// attachment wins over any that does not wrap too (attachAllExcept says more;
// TestAttachmentRanks).
func attachment(paths []string) (string, error) {
	var alts []string
	for _, p := range paths {
		if err := checkPrintable(p); err != nil {
			return "", fmt.Errorf("attach: %w", err)
		}
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("attach: %q is not an absolute path", p)
		}
		alts = append(alts, escapeLiteral(p[1:]))
	}
	slices.Sort(alts)
	return quote("/{" + strings.Join(alts, ",") + `,\x00}`), nil
}

// warnUnsupported reports what AppArmor does not enforce as written, from the backend-neutral
// support table (syscall and DNS rules, presets, device rules, pts, allowedArgs).
func (r *renderer) warnUnsupported() {
	for _, w := range enforcer.CheckSet(enforcer.AppArmor, r.set) {
		r.warned[w.String()] = true
		r.warnings = append(r.warnings, w)
	}
}

// applies reports whether a rule belongs in a profile: unlimited rules go everywhere, rules
// limited by fromSource only into their executable's child profile.
func applies(ru *rules.Rule, c *ctx) bool {
	if len(ru.FromSource) == 0 {
		return true
	}
	for _, fs := range ru.FromSource {
		if fs.Path != "" && fs.Path == c.source {
			return true
		}
	}
	return false
}

// effective is the action a rule has for this workload: a workload in audited mode reports what
// it would block (rules.Decide step 6).
func (r *renderer) effective(a policy.Action) policy.Action {
	if a == policy.ActionBlock && r.set.Workload.Mode == workload.ModeAudited {
		return policy.ActionAudit
	}
	return a
}

// blanket says how a profile treats the accesses of a category that no rule covers: permit them
// (not an allow-list), permit and audit (posture audit), or nothing at all, so that AppArmor's
// implicit denial applies (posture block).
type blanket int

const (
	blanketPermit blanket = iota
	blanketAudit
	blanketNone
)

func (r *renderer) blanketFor(op policy.Operation, c *ctx) blanket {
	global, sources := r.set.AllowList(op)
	if !global && (c.source == "" || !slices.Contains(sources, c.source)) {
		return blanketPermit
	}
	switch r.effective(r.set.Postures.For(op)) {
	case policy.ActionBlock:
		return blanketNone
	case policy.ActionAudit:
		return blanketAudit
	}
	return blanketPermit
}

func (b blanket) prefix() string {
	if b == blanketAudit {
		return "audit "
	}
	return ""
}

func (r *renderer) body(c *ctx) error {
	r.baseline(c)
	if err := r.files(c); err != nil {
		return err
	}
	if err := r.processes(c); err != nil {
		return err
	}
	r.ancestors(c)
	r.network(c)
	r.capabilities(c)
	return r.raw(c)
}

// baseline grants what any confined process needs for itself and that no policy category
// covers. Signals between the workload's own processes and threads: the Go runtime preempts its
// threads with SIGURG and dies without it. Signals from outside: the runtime stops containers
// with SIGTERM and SIGKILL. ptrace (read) within the workload backs /proc/<pid> reads of its own
// processes; readby lets host tools such as ps look in. Fine-grained unix socket rules are not a
// policy category (socket creation is, under the network rules).
func (r *renderer) baseline(c *ctx) {
	o := Origin{Kind: OriginBaseline, RuleID: -1, Source: c.source}
	if r.set.Workload.Kind == workload.KindHost {
		r.hostBaseline(c, o)
		return
	}
	r.emit(o, c.indent, "# Baseline: what any process needs for itself.")
	r.emit(o, c.indent, "signal (receive),")
	for _, l := range r.labels {
		r.emit(o, c.indent, "signal (send) peer=%s,", quote(l))
	}
	for _, l := range r.labels {
		r.emit(o, c.indent, "ptrace (read, trace, readby, tracedby) peer=%s,", quote(l))
	}
	r.emit(o, c.indent, "ptrace (readby),")
	r.emit(o, c.indent, "unix,")
}

// hostBaseline grants a host process everything that no policy category covers: with the
// profile attached to every program, it is what services, shells and container runtimes started
// after Ward run under, and they signal, trace, mount and change profiles (runc puts a container
// in its own profile) as they did unconfined. Changing to unconfined, to the exempt profile or
// into another policy namespace would leave the host profile behind, so those are denied.
func (r *renderer) hostBaseline(c *ctx, o Origin) {
	r.emit(o, c.indent, "# Baseline: a host process keeps whatever no policy category covers.")
	for _, l := range []string{"signal,", "ptrace,", "unix,", "dbus,", "mount,", "remount,", "umount,", "pivot_root,",
		"change_profile -> **,", "audit deny change_profile -> unconfined,",
		"audit deny change_profile -> " + ExemptProfile + ",", "audit deny change_profile -> :*:**,"} {
		r.emit(o, c.indent, "%s", l)
	}
}

// permitted is the set of accesses a rule's modifiers describe (rules.Decide step 2), as four
// cells: read or write, by the file's owner or by another user.
type cells struct{ ownerRead, ownerWrite, otherRead, otherWrite bool }

func permittedCells(ru *rules.Rule) cells {
	return cells{
		ownerRead:  true,
		ownerWrite: !ru.ReadOnly,
		otherRead:  !ru.OwnerOnly,
		otherWrite: !ru.ReadOnly && !ru.OwnerOnly,
	}
}

// blockedCells is what a Block rule denies, and what an Audit rule (a dry run of the Block)
// reports: the accesses outside its permitted set, or every access when neither readOnly nor
// ownerOnly describes a set (pts and allowedArgs, which AppArmor cannot see, are left out: the
// Block then denies all, and Render warns).
func blockedCells(ru *rules.Rule, p cells) cells {
	if !ru.ReadOnly && !ru.OwnerOnly {
		return cells{true, true, true, true}
	}
	return p.complement()
}

func (c cells) complement() cells {
	return cells{!c.ownerRead, !c.ownerWrite, !c.otherRead, !c.otherWrite}
}

func (c cells) minus(d cells) cells {
	return cells{c.ownerRead && !d.ownerRead, c.ownerWrite && !d.ownerWrite, c.otherRead && !d.otherRead, c.otherWrite && !d.otherWrite}
}

// appliedCells are the accesses a rule applies to (rules.Decide step 2): an Allow's permitted set,
// the complement for a Block or an Audit.
func (r *renderer) appliedCells(ru *rules.Rule) cells {
	p := permittedCells(ru)
	if r.effective(ru.Action) == policy.ActionAllow {
		return p
	}
	return blockedCells(ru, p)
}

// sameTarget reports whether two rules of an operation cover the same paths.
func sameTarget(a, b *rules.Rule) bool {
	return a.Operation == b.Operation && a.Match == b.Match && a.Value == b.Value && a.Recursive == b.Recursive
}

// overlaps reports whether two rules' targets may share a path without being the same: a path or
// directory inside the other's directory. Patterns are taken to overlap whatever they are.
func overlaps(a, b *rules.Rule) bool {
	if sameTarget(a, b) {
		return false
	}
	if a.Match == policy.MatchPattern || b.Match == policy.MatchPattern || a.Match == policy.MatchExecName || b.Match == policy.MatchExecName {
		return true
	}
	inside := func(x, dir *rules.Rule) bool {
		if dir.Match != policy.MatchDirectory {
			return x.Value == dir.Value
		}
		d := strings.TrimSuffix(dir.Value, "/") + "/"
		v := strings.TrimSuffix(x.Value, "/")
		if !strings.HasPrefix(v+"/", d) {
			return false
		}
		return dir.Recursive || !strings.Contains(strings.TrimPrefix(v, d), "/")
	}
	return inside(a, b) || inside(b, a)
}

// specificFirst removes from a general rule's cells, in a fromSource child profile, the accesses
// that a rule limited to that executable decides on the same target (rules.Decide step 3). A
// fromSource rule on an overlapping but different target cannot be carved out of the general
// rule's line (AppArmor's deny beats every grant and audit marks are unioned): Render warns.
func (r *renderer) specificFirst(ru *rules.Rule, c *ctx, p cells) cells {
	if c.source == "" || len(ru.FromSource) > 0 {
		return p
	}
	for i := range r.set.Rules {
		sr := &r.set.Rules[i]
		if sr.Operation != ru.Operation || len(sr.FromSource) == 0 || !applies(sr, c) {
			continue
		}
		switch {
		case sameTarget(sr, ru):
			p = p.minus(r.appliedCells(sr))
		case overlaps(sr, ru) && rank(r.effective(ru.Action)) > rank(r.effective(sr.Action)):
			// A stricter general line wins in AppArmor (deny over grant, audit marks unioned);
			// a stricter fromSource line wins anyway, as Decide wants.
			r.warn(ru, "AppArmor cannot let the %s rule %s of policy %s (fromSource %s) decide before this rule where their targets overlap: in that program's child profile this rule's %s still applies there",
				sr.Action, sr.Field, sr.PolicyName, c.source, strings.ToLower(string(r.effective(ru.Action))))
		}
	}
	return p
}

// lines turns cells into (qualifier, perms) pairs: one unqualified line for what owner and
// others share, then `owner` and `other` lines for the rest. AppArmor's `other` qualifier
// applies a rule to tasks whose fsuid differs from the file's owner, the exact complement of
// `owner`.
func (c cells) lines(read, write string) [][2]string {
	perms := func(r, w bool) string {
		s := ""
		if r {
			s += read
		}
		if w {
			s += write
		}
		return order(s)
	}
	common := perms(c.ownerRead && c.otherRead, c.ownerWrite && c.otherWrite)
	own := perms(c.ownerRead && !c.otherRead, c.ownerWrite && !c.otherWrite)
	oth := perms(c.otherRead && !c.ownerRead, c.otherWrite && !c.ownerWrite)
	var out [][2]string
	if common != "" {
		out = append(out, [2]string{"", common})
	}
	if own != "" {
		out = append(out, [2]string{"owner ", own})
	}
	if oth != "" {
		out = append(out, [2]string{"other ", oth})
	}
	return out
}

// order writes permissions in AppArmor's customary order.
func order(s string) string {
	var b strings.Builder
	for _, p := range "rwlkmx" {
		if strings.ContainsRune(s, p) {
			b.WriteRune(p)
		}
	}
	return b.String()
}

// skipUnseen reports whether a rule's line is left out because it has pts or allowedArgs, which
// AppArmor cannot see: a Block is applied whatever the terminal or arguments (it denies more),
// an Audit reports more, and an Allow is left out (the posture decides instead). The support
// table (enforcer.Support) warns about each.
func skipUnseen(ru *rules.Rule, act policy.Action) bool {
	return act == policy.ActionAllow && (ru.PTS != nil || len(ru.AllowedArgs) > 0)
}

// files renders file rules: the blanket for uncovered accesses, then one group of lines per rule.
func (r *renderer) files(c *ctx) error {
	b := r.blanketFor(policy.OpFile, c)
	o := Origin{Kind: OriginPosture, RuleID: -1, Source: c.source}
	r.emit(o, c.indent, "# Files.")
	if b != blanketNone {
		// Not `file,`: that also grants `ix` on every path, which would let the process rules'
		// allow-list be bypassed and clash with exec transitions.
		r.emit(o, c.indent, "%s/{,**} %s,", b.prefix(), permsAll)
	}
	for i := range r.set.Rules {
		ru := &r.set.Rules[i]
		if ru.Operation != policy.OpFile || !applies(ru, c) {
			continue
		}
		act := r.effective(ru.Action)
		if skipUnseen(ru, act) {
			continue
		}
		target, err := fileTarget(ru)
		if err != nil {
			return fmt.Errorf("policy %s: %s: %w", ru.PolicyName, ru.Field, err)
		}
		p := r.specificFirst(ru, c, r.appliedCells(ru))
		prefix := ""
		switch act {
		case policy.ActionBlock:
			prefix = "audit deny "
		case policy.ActionAudit:
			prefix = "audit "
		}
		ls := p.lines(permsRead, permsWrite)
		for _, l := range ls {
			r.emit(ruleOrigin(ru, c), c.indent, "%s%s%s %s,", prefix, l[0], quote(target), l[1])
		}
		if act == policy.ActionBlock && len(ls) > 0 {
			r.noteAncestors(ru, c)
		}
	}
	return nil
}

// fileTarget is the AARE a file rule covers. AppArmor names a directory with a trailing slash
// and a file without, while rules.Decide compares clean paths; so a path also covers itself as a
// directory, and a directory rule covers the directory itself (as Decide does), its children and
// (non-recursive) its child directories, or (recursive) everything below.
func fileTarget(ru *rules.Rule) (string, error) {
	switch ru.Match {
	case policy.MatchPath:
		if err := checkPrintable(ru.Value); err != nil {
			return "", err
		}
		return escapeLiteral(ru.Value) + "{,/}", nil
	case policy.MatchDirectory:
		if err := checkPrintable(ru.Value); err != nil {
			return "", err
		}
		if ru.Recursive {
			return escapeLiteral(ru.Value) + "{,**}", nil
		}
		return escapeLiteral(ru.Value) + "{,*,*/}", nil
	case policy.MatchPattern:
		g, err := globAARE(ru.Value)
		if err != nil {
			return "", err
		}
		if strings.HasSuffix(g, "**") || strings.HasSuffix(g, "/") {
			return g, nil
		}
		return g + "{,/}", nil
	}
	return "", fmt.Errorf("file rule with match kind %q", ru.Match)
}

// processTarget is the AARE of the programs a process rule covers.
func processTarget(ru *rules.Rule) (string, error) {
	switch ru.Match {
	case policy.MatchPath:
		if err := checkPrintable(ru.Value); err != nil {
			return "", err
		}
		return escapeLiteral(ru.Value), nil
	case policy.MatchExecName:
		if err := checkPrintable(ru.Value); err != nil {
			return "", err
		}
		return "/{,**/}" + escapeLiteral(ru.Value), nil
	case policy.MatchDirectory:
		if err := checkPrintable(ru.Value); err != nil {
			return "", err
		}
		if ru.Recursive {
			return escapeLiteral(ru.Value) + "**", nil
		}
		return escapeLiteral(ru.Value) + "*", nil
	case policy.MatchPattern:
		return globAARE(ru.Value)
	}
	return "", fmt.Errorf("process rule with match kind %q", ru.Match)
}

// xmode is the exec mode a grant uses in a profile. AppArmor merges overlapping exec rules only
// when an exact path overrides patterns, so the modes are chosen to never clash: in the workload
// profile everything runs `ix` (inheriting the profile) except each fromSource executable, which
// enters its child profile; in a child profile everything returns to the workload profile, since
// a program the child starts is no longer the fromSource executable, except the fromSource
// executables, which enter their own child.
func (r *renderer) xmode(c *ctx, exact string) string {
	child, isSource := r.child[exact]
	switch {
	case c.source == "" && isSource:
		return "cx -> " + quote(child)
	case c.source == "":
		return "ix"
	case isSource:
		return "px -> " + quote(r.name+"//"+child)
	}
	return "px -> " + quote(r.name)
}

func (r *renderer) processes(c *ctx) error {
	b := r.blanketFor(policy.OpProcess, c)
	o := Origin{Kind: OriginPosture, RuleID: -1, Source: c.source}
	r.emit(o, c.indent, "# Executions.")
	if b != blanketNone {
		r.emit(o, c.indent, "%s/{,**} %s,", b.prefix(), r.xmode(c, ""))
	}
	for i := range r.set.Rules {
		ru := &r.set.Rules[i]
		if ru.Operation != policy.OpProcess || !applies(ru, c) {
			continue
		}
		act := r.effective(ru.Action)
		if skipUnseen(ru, act) {
			continue
		}
		target, err := processTarget(ru)
		if err != nil {
			return fmt.Errorf("policy %s: %s: %w", ru.PolicyName, ru.Field, err)
		}
		// readOnly means nothing for an execution (it writes nothing): only ownerOnly splits the
		// permitted set, and Block+readOnly or Audit+readOnly cover no execution.
		p := r.specificFirst(ru, c, r.appliedCells(ru))
		p.ownerWrite, p.otherWrite = false, false
		switch act {
		case policy.ActionBlock:
			// m as well as x: running a blocked program through the dynamic loader
			// (ld.so /path/prog) maps it executable instead of executing it.
			ls := p.lines("mx", "")
			for _, l := range ls {
				r.emit(ruleOrigin(ru, c), c.indent, "audit deny %s%s %s,", l[0], quote(target), l[1])
			}
			if len(ls) > 0 {
				r.noteAncestors(ru, c)
			}
		default:
			if ru.Match == policy.MatchPath && slices.Contains(r.sources, ru.Value) {
				continue // granted by the transition lines below, from Decide
			}
			prefix := ""
			if act == policy.ActionAudit {
				prefix = "audit "
			}
			exact := ""
			if ru.Match == policy.MatchPath {
				exact = ru.Value
			}
			for _, l := range p.lines("x", "") {
				r.emit(ruleOrigin(ru, c), c.indent, "%s%s%s %s,", prefix, l[0], quote(target), r.xmode(c, exact))
			}
		}
	}
	r.transitions(c)
	return nil
}

// transitions grant the exec of each fromSource executable with the mode that enters its child
// profile. The grant and the transition are one AppArmor rule, so whether to grant is asked of
// rules.Decide for this profile's acting executable, for the file's owner and for other users;
// Block rules add their deny lines on top as everywhere else.
func (r *renderer) transitions(c *ctx) {
	for _, s := range r.sources {
		a := rules.Access{Op: policy.OpProcess, Path: s, Source: c.source}
		own, oth := r.decideOwner(a)
		mode := r.xmode(c, s)
		grant := func(v rules.Verdict, q string) {
			switch v.Action {
			case policy.ActionAllow:
				r.emit(verdictOrigin(v, c), c.indent, "%s%s %s,", q, quote(escapeLiteral(s)), mode)
			case policy.ActionAudit:
				r.emit(verdictOrigin(v, c), c.indent, "audit %s%s %s,", q, quote(escapeLiteral(s)), mode)
			}
		}
		if own.Action == oth.Action {
			grant(own, "")
			continue
		}
		grant(own, "owner ")
		grant(oth, "other ")
	}
}

// decideOwner asks Decide for the owner of the target and for another user, each with and
// without a terminal (AppArmor sees neither), keeping the stricter verdict.
func (r *renderer) decideOwner(a rules.Access) (owner, other rules.Verdict) {
	a.UID, a.Owner = 0, 0
	owner = r.decideTTY(a)
	a.UID = 1000
	other = r.decideTTY(a)
	return owner, other
}

func (r *renderer) decideTTY(a rules.Access) rules.Verdict {
	a.TTY = false
	v1 := r.set.Decide(a)
	a.TTY = true
	v2 := r.set.Decide(a)
	return worst(v1, v2)
}

func rank(a policy.Action) int {
	switch a {
	case policy.ActionBlock:
		return 3
	case policy.ActionAudit:
		return 2
	}
	return 1
}

func worst(vs ...rules.Verdict) rules.Verdict {
	w := vs[0]
	for _, v := range vs[1:] {
		if rank(v.Action) > rank(w.Action) {
			w = v
		}
	}
	return w
}

func (r *renderer) capabilities(c *ctx) {
	b := r.blanketFor(policy.OpCapabilities, c)
	o := Origin{Kind: OriginPosture, RuleID: -1, Source: c.source}
	r.emit(o, c.indent, "# Capabilities.")
	if b != blanketNone {
		r.emit(o, c.indent, "%scapability,", b.prefix())
	}
	var names []string
	for _, ru := range r.set.RulesFor(policy.OpCapabilities) {
		if ru.Match == policy.MatchCapability && !slices.Contains(names, ru.Value) {
			names = append(names, ru.Value)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		v := r.decideTTY(rules.Access{Op: policy.OpCapabilities, Capability: n, Source: c.source})
		if v.Posture || v.RuleID < 0 {
			continue // the blanket line says it
		}
		switch v.Action {
		case policy.ActionBlock:
			r.emit(verdictOrigin(v, c), c.indent, "audit deny capability %s,", n)
		case policy.ActionAudit:
			r.emit(verdictOrigin(v, c), c.indent, "audit capability %s,", n)
		case policy.ActionAllow:
			if b == blanketNone {
				r.emit(verdictOrigin(v, c), c.indent, "capability %s,", n)
			}
		}
	}
}

// raw passes each covering policy's spec.apparmor text through, line by line, into every
// profile of the workload.
func (r *renderer) raw(c *ctx) error {
	for _, ra := range r.set.AppArmor {
		if !balanced(ra.Text) {
			return fmt.Errorf("policy %s: spec.apparmor: unbalanced braces would end the profile early", ra.PolicyName)
		}
		if err := checkPrintable(strings.ReplaceAll(strings.ReplaceAll(ra.Text, "\n", " "), "\t", " ")); err != nil {
			return fmt.Errorf("policy %s: spec.apparmor: %w", ra.PolicyName, err)
		}
		o := Origin{Kind: OriginRaw, Policy: ra.PolicyName, Rule: "spec.apparmor", RuleID: -1, Source: c.source}
		r.emit(o, c.indent, "# spec.apparmor of policy %s.", ra.PolicyName)
		for _, l := range strings.Split(strings.TrimRight(ra.Text, "\n"), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				r.emit(o, c.indent, "%s", l)
			}
		}
	}
	return nil
}

// balanced reports whether raw profile text opens every brace before closing it and closes all it
// opens, outside quotes, backslash escapes and comments: text that closes the profile could add
// rules to no profile or start a profile of its own.
func balanced(text string) bool {
	depth := 0
	for _, line := range strings.Split(text, "\n") {
		quoted := false
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case c == '\\':
				i++
			case c == '"':
				quoted = !quoted
			case quoted:
			case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
				i = len(line)
			case c == '{':
				depth++
			case c == '}':
				depth--
				if depth < 0 {
					return false
				}
			}
		}
	}
	return depth == 0
}
