// Package selinux is Ward's SELinux backend, for host policies. Render translates the host's
// rules.Set into one CIL policy module and a labelling plan (pure, byte-stable, golden-tested);
// Loader installs the module with semodule and labels files through the security.selinux
// extended attribute, remembering every original label in a state file so that a removed policy,
// a restart or a crash returns the node to its own labels; ParseAVC and Attribute turn the
// kernel's AVC records back into accesses and verdicts of rules.Decide.
//
// How SELinux is made to mean what rules.Decide means:
//
// SELinux has no deny rules: an access is permitted only when some allow rule grants it. On a
// host almost every process runs in an unconfined domain (unconfined_t, init_t, kernel_t in the
// test VM), and the base policy grants those domains everything on every type that carries the
// file_type attribute (refpolicy's files_unconfined: allow files_unconfined_type file_type:file
// *). Ward's file types carry no such attribute. A file labelled with a Ward type is therefore
// reachable only through the rules of Ward's module, for every domain, unconfined ones included:
// Block is the absence of a grant (the kernel denies and writes an "avc: denied" record), Audit
// is a grant plus auditallow (an "avc: granted" record), Allow is a plain grant.
//
// Each labelled path gets the type of its verdict signature: the verdict of rules.Decide for a
// read, a write and an exec of that path, for every class of acting executable (any program,
// and each fromSource executable). Paths with the same signature share a type, so the type's
// rules are Decide's verdicts by construction. Signatures that do not depend on the acting
// executable use 26 fixed types (ward_<read><write><exec>_t, letters a=allow, u=audit,
// b=block), so a policy without fromSource changes only labels, never the module. fromSource
// executables are labelled with an entry type that moves the process into a Ward domain on exec
// (ward_d_<hash>_t); a Ward domain is as unconfined as the base policy's unconfined domains
// except where Ward's types or an allow-list say otherwise.
//
// What SELinux cannot express produces a Warning, never a silent allow; docs/selinux.md lists
// every case.
package selinux

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

// ModuleName is the name of Ward's policy module in the SELinux module store.
const ModuleName = "ward"

// HeaderPrefix starts the module text, so that a module in the store can be recognised as Ward's.
const HeaderPrefix = "; Managed by Ward: do not edit. ward-module: "

// DefaultUnconfinedAttributes are the attributes that make a domain unconfined in refpolicy
// (Debian) and in Fedora/RHEL's targeted policy, minus the ones that would let it load policy.
// A Ward domain gets them so that only Ward's rules and allow-lists limit it.
var DefaultUnconfinedAttributes = []string{
	"domain",
	"unconfined_domain_type",
	"kern_unconfined",
	"devices_unconfined_type",
	"corenet_unconfined_type",
	"storage_unconfined_type",
	// The base policy's neverallow rules name these: a domain that reads or writes every file
	// type (shadow_t, policy_config_t) or sets its own context must carry them.
	"can_read_shadow_passwords",
	"can_write_shadow_passwords",
	"can_relabelto_shadow_passwords",
	"can_relabelto_binary_policy",
	"set_curr_context",
}

// Options are the facts about the base policy that change the module.
type Options struct {
	// UnconfinedAttributes: DefaultUnconfinedAttributes when nil.
	UnconfinedAttributes []string
	// FilesUnconfined is the attribute that grants every access to every file_type
	// ("files_unconfined_type" when empty). A Ward domain under a file or process allow-list
	// does not get it.
	FilesUnconfined string
	// FilesystemUnconfined grants every access to files whose type is a file system's
	// ("filesystem_unconfined_type" when empty): files on tmpfs, for example. Like
	// FilesUnconfined it is left out of a Ward domain under an allow-list.
	FilesystemUnconfined string
	// FileType is the attribute of every ordinary file type ("file_type" when empty).
	FileType string
	// FilesystemType is the attribute of every filesystem type ("filesystem_type" when
	// empty); Ward's types may be associated with any of them.
	FilesystemType string
	// Role is the role of processes Ward's domains run under (system_r and unconfined_r when
	// empty).
	Roles []string
	// Admin is the domain Ward runs in (the type of /proc/self/attr/current), required. Only it
	// may relabel files that carry Ward's types and list the directories Ward protects: an
	// unconfined domain that could relabel a protected file could give it back its readable
	// label, and Ward must read a protected tree to label it again at every apply.
	Admin string
}

func (o *Options) defaults() {
	if o.UnconfinedAttributes == nil {
		o.UnconfinedAttributes = DefaultUnconfinedAttributes
	}
	if o.FilesUnconfined == "" {
		o.FilesUnconfined = "files_unconfined_type"
	}
	if o.FilesystemUnconfined == "" {
		o.FilesystemUnconfined = "filesystem_unconfined_type"
	}
	if o.FileType == "" {
		o.FileType = "file_type"
	}
	if o.FilesystemType == "" {
		o.FilesystemType = "filesystem_type"
	}
	if o.Roles == nil {
		o.Roles = []string{"system_r", "unconfined_r"}
	}
}

// Target is one place the loader labels.
type Target struct {
	// Path is a file, a directory, or a fromSource executable, absolute and clean.
	Path string `json:"path"`
	// Children: Path is a directory whose direct children are labelled too. Tree: its whole
	// subtree is.
	Children bool `json:"children,omitempty"`
	Tree     bool `json:"tree,omitempty"`
}

// Module is a rendered policy module with its labelling plan.
type Module struct {
	// Text is the CIL module.
	Text []byte
	// Targets lists what the loader labels, sorted by path.
	Targets []Target
	// Sources are the fromSource executables, sorted; Domains[i] is the Ward domain of
	// Sources[i].
	Sources []string
	Domains []string

	set     *rules.Set
	dynamic map[string]string // signature key -> type of signatures that depend on the source
	// listed is true when some fromSource executable runs under an allow-list: its domain is
	// denied what Ward does not label, so a path its Allow rules name must be labelled even
	// when every verdict is allow.
	listed bool
}

// Action letters in type names and signatures.
func letter(a policy.Action) byte {
	switch a {
	case policy.ActionBlock:
		return 'b'
	case policy.ActionAudit:
		return 'u'
	}
	return 'a'
}

// cell is the verdict of a read, a write and an exec for one class of acting executable, as
// three letters.
type cell [3]byte

func (c cell) allAllow() bool { return c == cell{'a', 'a', 'a'} }

// strictest returns the stricter of two actions: Block over Audit over Allow.
func strictest(a, b policy.Action) policy.Action {
	rank := map[policy.Action]int{policy.ActionAllow: 0, policy.ActionAudit: 1, policy.ActionBlock: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// decide is rules.Decide over what SELinux cannot tell apart: the file owner (ownerOnly) and the
// terminal (pts). It returns the strictest verdict among those variants, so that a rule SELinux
// cannot express exactly fails closed (and Render warns about it).
func decide(s *rules.Set, op policy.Operation, p, source string, write bool) policy.Action {
	act := policy.ActionAllow
	for _, uid := range []uint32{0, 1} {
		for _, tty := range []bool{false, true} {
			v := s.Decide(rules.Access{Op: op, Path: p, Source: source, Write: write, UID: uid, Owner: 0, TTY: tty})
			act = strictest(act, v.Action)
		}
	}
	return act
}

// postureBlocksRead reports whether only the file posture blocks reads of p by source: every
// variant decide looks at that blocks is the posture's, none a rule's.
func postureBlocksRead(s *rules.Set, p, source string) bool {
	for _, uid := range []uint32{0, 1} {
		for _, tty := range []bool{false, true} {
			v := s.Decide(rules.Access{Op: policy.OpFile, Path: p, Source: source, UID: uid, Owner: 0, TTY: tty})
			if v.Action == policy.ActionBlock && !v.Posture {
				return false
			}
		}
	}
	return true
}

// signature computes the cells of a path: index 0 for any executable that is not a fromSource
// one, then one per source.
func signature(s *rules.Set, sources []string, p string) []cell {
	isSource := slices.Contains(sources, p)
	cells := make([]cell, 1+len(sources))
	for i := range cells {
		src := ""
		if i > 0 {
			src = sources[i-1]
		}
		read := decide(s, policy.OpFile, p, src, false)
		// The kernel checks read and open on the program it executes, so a grant to execute
		// is a grant to read: a file whose reads are blocked cannot be executed either. The
		// exception is a fromSource program whose reads only the file posture blocks (an Allow
		// rule made the file category an allow-list): running it follows the process rules,
		// or its own rules could never apply, and reading it is granted with the run
		// (readableSources warns).
		exec := decide(s, policy.OpProcess, p, src, false)
		if read == policy.ActionBlock && (!isSource || !postureBlocksRead(s, p, src)) {
			exec = policy.ActionBlock
		}
		cells[i] = cell{letter(read), letter(decide(s, policy.OpFile, p, src, true)), letter(exec)}
	}
	return cells
}

// readableSources lists the fromSource programs that some executable may run although the file
// posture blocks its reads of them: SELinux grants those reads with the run (signature).
func readableSources(s *rules.Set, sources []string) []string {
	var out []string
	for _, src := range sources {
		for i := 0; i <= len(sources); i++ {
			by := ""
			if i > 0 {
				by = sources[i-1]
			}
			if decide(s, policy.OpFile, src, by, false) == policy.ActionBlock &&
				decide(s, policy.OpProcess, src, by, false) != policy.ActionBlock && postureBlocksRead(s, src, by) {
				out = append(out, src)
				break
			}
		}
	}
	return out
}

func sigKey(cells []cell, entry string) string {
	var b strings.Builder
	for _, c := range cells {
		b.Write(c[:])
		b.WriteByte('.')
	}
	b.WriteString(entry)
	return b.String()
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:5])
}

// StaticType is the fixed type of a signature that does not depend on the acting executable.
func StaticType(c cell) string { return "ward_" + string(c[:]) + "_t" }

// domainOf and entryOf name a fromSource executable's domain and its entry type.
func domainOf(src string) string { return "ward_d_" + shortHash(src) + "_t" }
func entryOf(src string) string  { return "ward_x_" + shortHash(src) + "_t" }

// TypeFor returns the type Ward gives a path: "" when the path keeps its own label (every
// access allowed without an alert), and ok false when the path's signature is not in the module
// (a path covered in a way the plan did not foresee, such as a pattern that also matches a
// fromSource-scoped directory; the loader leaves it alone and warns).
func (m *Module) TypeFor(p string) (typ string, ok bool) {
	isSource := slices.Contains(m.Sources, p)
	cells := signature(m.set, m.Sources, p)
	if !isSource && uniform(cells) {
		if cells[0].allAllow() && !m.listed {
			return "", true
		}
		return StaticType(cells[0]), true
	}
	entry := ""
	if isSource {
		entry = p
	}
	t, ok := m.dynamic[sigKey(cells, entry)]
	return t, ok
}

func uniform(cells []cell) bool {
	for _, c := range cells[1:] {
		if c != cells[0] {
			return false
		}
	}
	return true
}

// Permissions Ward grants. getattr on files and getattr and search on directories are always
// granted: a Block rule keeps a file's contents, not its existence, and a blocked directory must
// stay traversable so that a non-recursive rule does not hide its subdirectories.
var (
	fileRead  = "open read ioctl lock map"
	fileWrite = "write append create setattr unlink link rename"
	fileExec  = "open read map execute execute_no_trans"
	dirRead   = "open read ioctl lock"
	dirWrite  = "write add_name remove_name reparent rmdir create setattr unlink link rename"
	lnkRead   = "read"
	lnkWrite  = "write create setattr unlink link rename"
)

// writePerms are the permissions whose denial or audit is a write access for rules.Decide.
var writePerms = map[string]bool{}

func init() {
	// Changing a file's label is changing the file: a relabel denied on a protected file is a
	// write the rule blocked (Ward's own domain is the only one the module lets relabel).
	for _, s := range []string{fileWrite, dirWrite, lnkWrite, "relabelfrom relabelto"} {
		for _, p := range strings.Fields(s) {
			writePerms[p] = true
		}
	}
}

// cil accumulates the module text.
type cil struct{ b strings.Builder }

func (c *cil) line(format string, args ...any) {
	fmt.Fprintf(&c.b, format, args...)
	c.b.WriteByte('\n')
}

// classGrant is what one class of objects may do under one action letter: a grant, a grant
// with auditallow, or nothing (Block: the kernel denies and logs avc: denied).
type classGrant struct {
	act          byte
	class, perms string
}

// allow writes subject's rules on typ: getattr (and search on directories) always, then each
// grant as its action letter says.
func (c *cil) allow(subject, typ string, grants ...classGrant) {
	c.line("(allow %s %s (file (getattr)))", subject, typ)
	c.line("(allow %s %s (dir (getattr search)))", subject, typ)
	c.line("(allow %s %s (lnk_file (getattr)))", subject, typ)
	for _, g := range grants {
		if g.act == 'b' {
			continue // not granted: the kernel denies it and logs avc: denied
		}
		c.line("(allow %s %s (%s (%s)))", subject, typ, g.class, g.perms)
		if g.act == 'u' {
			c.line("(auditallow %s %s (%s (%s)))", subject, typ, g.class, g.perms)
		}
	}
}

// grant writes the rules that make subject's accesses to typ follow one cell.
func (c *cil) grant(subject, typ string, cl cell) {
	c.allow(subject, typ,
		classGrant{cl[0], "file", fileRead}, classGrant{cl[0], "dir", dirRead}, classGrant{cl[0], "lnk_file", lnkRead},
		classGrant{cl[1], "file", fileWrite}, classGrant{cl[1], "dir", dirWrite}, classGrant{cl[1], "lnk_file", lnkWrite},
		classGrant{cl[2], "file", fileExec})
}

// grantPosture writes what a Ward domain under an allow-list may do with the files Ward does not
// label: file accesses follow the file posture, running programs the process posture. Mapping
// code (shared libraries, the dynamic loader) needs "execute" without being a run of a program,
// so it follows the file posture; running a program is "execute_no_trans".
func (c *cil) grantPosture(subject, typ string, file, process byte) {
	c.allow(subject, typ,
		classGrant{file, "file", fileRead + " execute"}, classGrant{file, "dir", dirRead}, classGrant{file, "lnk_file", lnkRead},
		classGrant{file, "file", fileWrite}, classGrant{file, "dir", dirWrite}, classGrant{file, "lnk_file", lnkWrite},
		classGrant{process, "file", "open read map execute execute_no_trans"})
}

// Render translates the host's rule set into Ward's module and labelling plan, in phases: the
// labelling plan (targets and fromSource executables), the signatures that need a type of their
// own, then the module text (header, fixed types, a domain per fromSource executable, the
// source-dependent types).
func Render(s *rules.Set, opts Options) (*Module, []enforcer.Warning, error) {
	if s == nil {
		return nil, nil, errors.New("render selinux module: nil rule set")
	}
	if s.Workload.Kind != workload.KindHost {
		return nil, nil, fmt.Errorf("render selinux module: workload %s: the SELinux backend enforces host policies only", s.Workload.ID())
	}
	opts.defaults()
	if opts.Admin == "" {
		return nil, nil, errors.New("render selinux module: no admin domain (Options.Admin, the domain Ward runs in)")
	}
	r := &renderer{
		set: s, opts: opts, m: &Module{set: s, dynamic: map[string]string{}},
		// What SELinux does not enforce as written comes from the backend-neutral support
		// table; the approximations of this translation are added by warn.
		warns: enforcer.CheckSet(enforcer.SELinux, s),
	}
	r.plan()
	dyns := r.dynamicSignatures()
	r.header()
	r.staticTypes()
	for i := range r.m.Sources {
		r.sourceDomain(i)
	}
	r.dynamicTypes(dyns)
	r.m.Text = []byte(r.c.b.String())
	return r.m, r.warns, nil
}

// renderer holds what Render's phases share.
type renderer struct {
	set   *rules.Set
	opts  Options
	m     *Module
	warns []enforcer.Warning
	c     cil
}

// warn records an approximation of this translation, about rule r or (nil) the workload.
func (r *renderer) warn(rule *rules.Rule, format string, args ...any) {
	w := enforcer.Warning{Backend: enforcer.SELinux, Workload: r.set.Workload.ID(), RuleID: -1, Message: fmt.Sprintf(format, args...)}
	if rule != nil {
		w.Policy, w.PolicyKind, w.Namespace, w.Rule, w.RuleID = rule.PolicyName, rule.PolicyKind, rule.Namespace, rule.Field, rule.ID
	}
	r.warns = append(r.warns, w)
}

// allowLists reports whether a file and a process allow-list reach the fromSource executable
// src (an allow-list for every executable reaches it too).
func (r *renderer) allowLists(src string) (file, process bool) {
	fileGlobal, fileSources := r.set.AllowList(policy.OpFile)
	procGlobal, procSources := r.set.AllowList(policy.OpProcess)
	return fileGlobal || slices.Contains(fileSources, src), procGlobal || slices.Contains(procSources, src)
}

// plan fills the labelling plan: the targets, the fromSource executables and their domains, and
// warns about what cannot be expressed.
func (r *renderer) plan() {
	s, m := r.set, r.m
	targets := map[string]Target{}
	addTarget := func(t Target) {
		old := targets[t.Path]
		old.Path = t.Path
		old.Children = old.Children || t.Children
		old.Tree = old.Tree || t.Tree
		targets[t.Path] = old
	}
	sourceSet := map[string]bool{}
	for i := range s.Rules {
		rule := &s.Rules[i]
		if rule.Operation != policy.OpFile && rule.Operation != policy.OpProcess {
			continue // network, capabilities, syscalls: enforcer.Support says so
		}
		for _, fs := range rule.FromSource {
			if fs.Path != "" {
				sourceSet[fs.Path] = true
			}
		}
		switch rule.Match {
		case policy.MatchPath:
			addTarget(Target{Path: rule.Value})
		case policy.MatchDirectory:
			dir := strings.TrimSuffix(rule.Value, "/")
			if dir == "" {
				r.warn(rule, "a rule on / would relabel the whole file system; it is not enforced")
				continue
			}
			addTarget(Target{Path: dir, Children: !rule.Recursive, Tree: rule.Recursive})
			if !rule.Recursive {
				r.warn(rule, "files created later in a subdirectory of %s inherit the rule's label from the subdirectory only if it existed when the policy was applied; a subdirectory created later gets the directory's label, so its children are covered too", rule.Value)
			}
		}
	}
	for src := range sourceSet {
		m.Sources = append(m.Sources, src)
		addTarget(Target{Path: src})
	}
	slices.Sort(m.Sources)
	for _, src := range m.Sources {
		m.Domains = append(m.Domains, domainOf(src))
		if file, process := r.allowLists(src); file || process {
			m.listed = true
		}
	}
	for _, t := range targets {
		m.Targets = append(m.Targets, t)
	}
	slices.SortFunc(m.Targets, func(a, b Target) int { return strings.Compare(a.Path, b.Path) })
	// An allow-list for every executable reaches only the paths Ward labels: the support
	// table (enforcer.FeatureAllowList) warns about each Allow rule; this names the programs.
	for _, src := range readableSources(s, m.Sources) {
		r.warn(nil, "SELinux checks read on the program an exec runs: %s may run as the process rules say, so every program that may run it may also read it, although the %s file posture blocks that read", src, s.Postures.For(policy.OpFile))
	}
}

// dyn is a signature that depends on the acting executable, or the signature of a fromSource
// executable itself (entry is its path): each gets a type of its own.
type dyn struct {
	key   string
	cells []cell
	entry string
}

// dynamicSignatures lists the signatures that need a type of their own, sorted by key. The
// representative paths are every target, a child of every directory target and a grandchild
// of every tree. "\x01" is a name no rule names, so the representatives stand for every other
// path below the target. The loader computes the same signatures for the real paths.
func (r *renderer) dynamicSignatures() []dyn {
	var dyns []dyn
	seen := map[string]bool{}
	consider := func(p string) {
		isSource := slices.Contains(r.m.Sources, p)
		cells := signature(r.set, r.m.Sources, p)
		if !isSource && uniform(cells) {
			return // a static type
		}
		entry := ""
		if isSource {
			entry = p
		}
		k := sigKey(cells, entry)
		if !seen[k] {
			seen[k] = true
			dyns = append(dyns, dyn{key: k, cells: cells, entry: entry})
		}
	}
	for _, t := range r.m.Targets {
		consider(t.Path)
		if t.Children || t.Tree {
			consider(t.Path + "/\x01")
		}
		if t.Tree {
			consider(t.Path + "/\x01/\x01")
		}
	}
	slices.SortFunc(dyns, func(a, b dyn) int { return strings.Compare(a.key, b.key) })
	return dyns
}

// header writes the module's header and the attributes every Ward type and domain carries.
func (r *renderer) header() {
	c, opts := &r.c, r.opts
	c.line("%s%s", HeaderPrefix, ModuleName)
	c.line("; Ward's file types carry no %s attribute, so no base-policy rule reaches them:", opts.FileType)
	c.line("; every access to a file Ward labels is decided by the rules below.")
	c.line("(typeattribute ward_file_type)")
	c.line("(typeattribute ward_source_domain)")
	c.line("; Every domain that is not one of Ward's fromSource domains.")
	c.line("(typeattribute ward_others)")
	c.line("(typeattributeset ward_others (and domain (not ward_source_domain)))")
	c.line("; Ward's types live on any file system. Only the domain Ward runs in may relabel a file")
	c.line("; that carries one (no unconfined domain may give a protected file its readable label")
	c.line("; back) and list a directory that carries one (Ward walks a protected tree at every")
	c.line("; apply; without this the walk would fail and the tree would lose its labels).")
	c.line("(allow ward_file_type %s (filesystem (associate)))", opts.FilesystemType)
	c.line("(typeattribute ward_admin)")
	c.line("(typeattributeset ward_admin (%s))", opts.Admin)
	for _, cls := range []string{"file", "dir", "lnk_file"} {
		c.line("(allow ward_admin ward_file_type (%s (getattr relabelfrom relabelto)))", cls)
	}
	c.line("(allow ward_admin ward_file_type (dir (getattr search open read)))")
}

// staticTypes writes the 27 fixed types, one per verdict of a read, a write and an exec.
func (r *renderer) staticTypes() {
	c := &r.c
	c.line("")
	c.line("; Fixed types: the verdict of a read, a write and an exec for every executable")
	c.line("; (letters a=allow, u=audit, b=block).")
	for _, rd := range "aub" {
		for _, w := range "aub" {
			for _, x := range "aub" {
				// ward_aaa_t is used only under a fromSource allow-list; elsewhere a path whose
				// accesses are all allowed keeps its own label.
				cl := cell{byte(rd), byte(w), byte(x)}
				t := StaticType(cl)
				c.line("(type %s)", t)
				c.line("(roletype object_r %s)", t)
				c.line("(typeattributeset ward_file_type (%s))", t)
				c.grant("domain", t, cl)
			}
		}
	}
}

// sourceDomain writes the domain of the i-th fromSource executable and its entry type.
func (r *renderer) sourceDomain(i int) {
	c, opts, s := &r.c, r.opts, r.set
	src, d := r.m.Sources[i], r.m.Domains[i]
	x := entryOf(src)
	c.line("")
	c.line("; fromSource %s runs in %s, entered by executing %s.", src, d, x)
	c.line("(type %s)", d)
	for _, role := range opts.Roles {
		c.line("(roletype %s %s)", role, d)
	}
	c.line("(typeattributeset ward_source_domain (%s))", d)
	fileList, procList := r.allowLists(src)
	for _, a := range opts.UnconfinedAttributes {
		c.line("(typeattributeset %s (%s))", a, d)
	}
	if !fileList && !procList {
		c.line("(typeattributeset %s (%s))", opts.FilesUnconfined, d)
		c.line("(typeattributeset %s (%s))", opts.FilesystemUnconfined, d)
	} else {
		// An allow-list: files Ward does not label follow the posture for this domain.
		c.line("; An allow-list covers %s: files Ward does not label follow the posture.", src)
		post := func(list bool, op policy.Operation) byte {
			if !list {
				return 'a'
			}
			return letter(s.Postures.For(op))
		}
		for _, typ := range []string{opts.FileType, opts.FilesystemType} {
			c.grantPosture(d, typ, post(fileList, policy.OpFile), post(procList, policy.OpProcess))
		}
	}
	c.line("(type %s)", x)
	c.line("(roletype object_r %s)", x)
	c.line("(typeattributeset ward_file_type (%s))", x)
	c.line("(typetransition domain %s process %s)", x, d)
	c.line("(allow domain %s (process (transition)))", d)
	c.line("(allow %s %s (file (entrypoint open read map execute getattr)))", d, x)
	c.line("(allow %s domain (process (sigchld)))", d)
	c.line("(allow %s domain (fd (use)))", d)
}

// dynamicTypes writes a type per source-dependent signature (a fromSource executable's own is
// its entry type), with each domain's rules on it, and records them in the module.
func (r *renderer) dynamicTypes(dyns []dyn) {
	c, m := &r.c, r.m
	for _, d := range dyns {
		typ := "ward_f_" + shortHash(d.key) + "_t"
		if d.entry != "" {
			typ = entryOf(d.entry)
		} else {
			c.line("")
			c.line("(type %s)", typ)
			c.line("(roletype object_r %s)", typ)
			c.line("(typeattributeset ward_file_type (%s))", typ)
		}
		m.dynamic[d.key] = typ
		c.line("; %s: the verdicts depend on the acting executable.", typ)
		c.grant("ward_others", typ, d.cells[0])
		for i, cl := range d.cells[1:] {
			c.line("; as %s", m.Sources[i])
			c.grant(m.Domains[i], typ, cl)
		}
	}
}

// Label is a full SELinux file context for a Ward type.
func Label(typ string) string { return "system_u:object_r:" + typ + ":s0" }

// typeOfContext returns the type field of a context "user:role:type:level".
func typeOfContext(ctx string) string {
	parts := strings.SplitN(ctx, ":", 4)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}
