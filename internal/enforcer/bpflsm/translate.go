package bpflsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// The constants below are bpf/ward.c's enums, as bpf2go emits them into
// ward_x86_bpfel.go, under short names and in the Go types the map keys use.

// Operations: the index of a workload's per-operation flags byte.
const (
	opFile         = uint8(wardOpOP_FILE)
	opProcess      = uint8(wardOpOP_PROCESS)
	opNetwork      = uint8(wardOpOP_NETWORK)
	opCapabilities = uint8(wardOpOP_CAPABILITIES)
	numOps         = uint8(wardOpNUM_OPS)
)

// Per-operation workload flags.
const (
	wfRules        = uint8(wardWorkloadFlagWF_RULES)
	wfSourceRules  = uint8(wardWorkloadFlagWF_SOURCE_RULES)
	wfAllowGlobal  = uint8(wardWorkloadFlagWF_ALLOW_GLOBAL)
	wfAllowSources = uint8(wardWorkloadFlagWF_ALLOW_SOURCES)
	wfPostureBlock = uint8(wardWorkloadFlagWF_POSTURE_BLOCK)
	wfBlockRules   = uint8(wardWorkloadFlagWF_BLOCK_RULES)
	wfInodes       = uint8(wardWorkloadFlagWF_INODES)
	wfPatterns     = uint8(wardWorkloadFlagWF_PATTERNS)
)

// Key kinds.
const (
	kindPath     = uint8(wardKeyKindKIND_PATH)
	kindExecName = uint8(wardKeyKindKIND_EXECNAME)
	kindCode     = uint8(wardKeyKindKIND_CODE)
	kindSrcAllow = uint8(wardKeyKindKIND_SRCALLOW)
	kindInode    = uint8(wardKeyKindKIND_INODE)
	kindDirInode = uint8(wardKeyKindKIND_DIRINODE)
	kindName     = uint8(wardKeyKindKIND_NAME)
)

// Bit shifts of each action's 12 modifier combinations in a rule value.
const (
	blockShift = uint(wardActionShiftBLOCK_SHIFT)
	auditShift = uint(wardActionShiftAUDIT_SHIFT)
	allowShift = uint(wardActionShiftALLOW_SHIFT)
)

// Codes of network and capability keys: ward.c's CODE(kind, 0).
const (
	codeProto  = uint64(wardCodeKindCODE_PROTO) << wardCodeKindCODE_KIND_SHIFT
	codeType   = uint64(wardCodeKindCODE_TYPE) << wardCodeKindCODE_KIND_SHIFT
	codeFamily = uint64(wardCodeKindCODE_FAMILY) << wardCodeKindCODE_KIND_SHIFT
	codeAll    = uint64(wardCodeKindCODE_ALL) << wardCodeKindCODE_KIND_SHIFT
	codeCap    = uint64(wardCodeKindCODE_CAP) << wardCodeKindCODE_KIND_SHIFT
)

// HostKey is the workload key of the host: every task whose cgroup is not a
// registered container's.
const HostKey uint64 = 0

// Host gives the translation the facts it needs about the machine's files:
// where a rule's path leads when it is a symlink, and which inode it names.
// Tests pass a fake; the loader passes the real filesystem (OSHost).
type Host interface {
	// EvalSymlinks returns the path with every symlink resolved, or an error
	// when it does not exist.
	EvalSymlinks(path string) (string, error)
	// Inode returns the kernel's device number (major<<20|minor) and inode
	// number of an existing file.
	Inode(path string) (dev uint32, ino uint64, ok bool)
	// HardLinks returns the regular files with more than one name below
	// dir (directly in it unless recursive), visiting at most limit
	// entries; complete is false when the limit cut the walk short.
	HardLinks(dir string, recursive bool, limit int) (paths []string, complete bool)
	// MountRoot says whether an existing directory is the root of a mount (a file system's
	// mount point or a bind mount's), or may be: its dentry then has another name than the
	// path's last component.
	MountRoot(path string) bool
}

// inodeHash is the hash of KIND_INODE and KIND_DIRINODE keys, as bpf/ward.c
// computes it from a dentry: s_dev << 32 ^ i_ino.
func inodeHash(host Host, p string) (uint64, bool) {
	if host == nil {
		return 0, false
	}
	dev, ino, ok := host.Inode(p)
	return uint64(dev)<<32 ^ ino, ok
}

// MaxLinkScan bounds the entries Translate visits below each directory rule's
// directory to find files with several names.
const MaxLinkScan = 100000

var opNames = [numOps]string{"file", "process", "network", "capabilities"}

// Key is a rule map key without its generation, which the loader fills in.
type Key struct {
	Workload uint64
	Op       uint8
	Kind     uint8
	Hash     uint64
	Src      uint64
}

// Value holds, per match kind, the (action, modifier combination) bits of the
// rules at a key.
type Value struct {
	Exact, Direct, Recursive uint64
}

// Translation is the map contents for one workload.
type Translation struct {
	Workload uint64
	// host answered the translation's questions (the workload's files): events are attributed
	// with it.
	host Host
	// Flags hold one byte per operation (wf* bits).
	Flags   uint32
	Audited bool
	Entries map[Key]Value
	// DirDepths and ExactDepths have bit d set (d = number of '/', 63 for
	// 63 and more) when a directory key or an exact path key of that depth
	// exists, per operation; the kernel skips lookups at other depths.
	DirDepths, ExactDepths [numOps]uint64
	// Names has the bit of the last component of every exact file path key and of every
	// file directory rule's directory (nameBit), or every bit where a name cannot tell that no
	// rule applies (patterns, fromSource rules, allow-lists, a rule on /): file_open resolves
	// the path of a file only if its name's bit, or an ancestor's, is set or an inode key names
	// it (wl_val.names). Each of those names has a KIND_NAME key (NameHash), which the kernel
	// looks up where a file's name has its bit: varied names set most of the filter's bits.
	Names NameFilter
	// DirNames has the names of the directory rules' directories only (and of what is
	// mounted on them), which a file's ancestors are tested against (wl_val.dir_names): an
	// exact path's name says nothing about the directories above a file.
	DirNames NameFilter
	// NamesEpoch is the kernel's count of renames of directories of watched names
	// (ward_epoch[1]) read before the translation looked the rules' directories up: the
	// kernel trusts Names for the ancestors of a file only while none was renamed since
	// (Backend.translate sets it).
	NamesEpoch uint32
	// Codes has bit 1<<(code>>56) set for every kind of code key (protocol,
	// type, family, all, capability) of network in its low 16 bits and of
	// capabilities in the high 16; in each, the low byte for rules of any
	// source, the high byte for fromSource rules. The kernel looks up only
	// those kinds (wl_val.codes).
	Codes uint32
	// Named holds the network and capability codes the workload's keys name, or every code of
	// an operation it allow-lists or has an "all" rule of: the kernel decides a socket or
	// capability no workload names without looking a workload up (ward_config).
	Named NamedCodes
	// Globs are the DFA transitions of the workload's patterns.
	Globs map[GlobKey]GlobVal
	// Inodes names the rule path behind each inode key, so that an event
	// decided by inode (a hard link, a renamed file) is attributed to the
	// rule's path.
	Inodes map[uint64]string
	// DirInodes names the directory rule's directory behind each directory
	// inode key: an event decided by it (a bind mount, a renamed ancestor)
	// is attributed to the same file below the rule's directory.
	DirInodes map[uint64]string
	// DirInodeOps has bit 1<<op set when op has directory inode keys: the
	// kernel then looks up a file's ancestor directories by inode
	// (wl_val.dir_inodes).
	DirInodeOps uint32
	// Aliases maps where a rule's symlinked path (or directory, with its
	// slash) leads to the path as the rule names it, so that events about
	// the target are attributed to the rule.
	Aliases map[string]string
	// Sources names the executable behind each source identity, for events.
	Sources map[uint64]string
	// Warnings list rules or rule parts the kernel cannot enforce (enforcer.Support).
	Warnings []enforcer.Warning
}

// Hash is FNV-1a 64 of s, the hash bpf/ward.c computes over paths.
func Hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// WorkloadKey is the map key of a workload: its cgroup id, or HostKey.
func WorkloadKey(w *workload.Workload) (uint64, error) {
	if w.Kind == workload.KindHost {
		return HostKey, nil
	}
	if w.CgroupID == 0 {
		return 0, fmt.Errorf("workload %s: no cgroup id", w.ID())
	}
	return w.CgroupID, nil
}

func opOf(op policy.Operation) (uint8, bool) {
	switch op {
	case policy.OpFile:
		return opFile, true
	case policy.OpProcess:
		return opProcess, true
	case policy.OpNetwork:
		return opNetwork, true
	case policy.OpCapabilities:
		return opCapabilities, true
	}
	return 0, false
}

// combo is a rule's modifier combination: readOnly | ownerOnly<<1 | pts<<2
// with pts 0 unset, 1 true, 2 false.
func combo(r *rules.Rule) uint {
	c := uint(0)
	if r.ReadOnly {
		c |= 1
	}
	if r.OwnerOnly {
		c |= 2
	}
	if r.PTS != nil {
		if *r.PTS {
			c |= 1 << 2
		} else {
			c |= 2 << 2
		}
	}
	return c
}

func actionBit(r *rules.Rule) (uint64, error) {
	c := combo(r)
	switch r.Action {
	case policy.ActionBlock:
		return 1 << (blockShift + c), nil
	case policy.ActionAudit:
		return 1 << (auditShift + c), nil
	case policy.ActionAllow:
		return 1 << (allowShift + c), nil
	}
	return 0, fmt.Errorf("unknown action %q", r.Action)
}

// Translate turns a workload's rule set into map contents. It fails on a rule
// it cannot enforce rather than dropping it; parts of a policy that this
// backend does not enforce by design (syscall monitoring, DNS, allowedArgs,
// presets, device rules: enforcer.Support) are skipped and returned as
// warnings. The phases: each rule's entries, the allow-list flags of each
// operation, the patterns' automata, then the workload's flag word.
func Translate(set *rules.Set, host Host) (*Translation, error) {
	wk, err := WorkloadKey(&set.Workload)
	if err != nil {
		return nil, err
	}
	tr := &translator{host: host, workload: set.Workload.ID(), t: &Translation{
		Workload:  wk,
		host:      host,
		Audited:   set.Workload.Mode == workload.ModeAudited,
		Entries:   map[Key]Value{},
		Inodes:    map[uint64]string{},
		DirInodes: map[uint64]string{},
		Sources:   map[uint64]string{},
		Aliases:   map[string]string{},
		Globs:     map[GlobKey]GlobVal{},
		Warnings:  enforcer.CheckSet(enforcer.BPF, set),
	}}
	tr.mountTable = sync.OnceValues(func() ([]Mount, bool) { return mountsOf(host) })
	for i := range set.Rules {
		if err := tr.rule(&set.Rules[i]); err != nil {
			return nil, err
		}
	}
	tr.allowLists(set)
	if err := tr.automata(); err != nil {
		return nil, err
	}
	for o, f := range tr.flags {
		tr.t.Flags |= uint32(f) << (8 * o)
	}
	// An allow-list's posture decides every code of its operation.
	if tr.flags[opNetwork]&(wfAllowGlobal|wfAllowSources) != 0 {
		tr.t.Named.add(codeAll)
	}
	if tr.flags[opCapabilities]&(wfAllowGlobal|wfAllowSources) != 0 {
		tr.t.Named.Caps = ^uint64(0)
	}
	// A file's name and its ancestors' say that no rule applies to it only where every file
	// rule is an exact path or a directory for any source and no allow-list makes the posture
	// decide the files no rule names.
	if tr.flags[opFile]&(wfPatterns|wfSourceRules|wfAllowGlobal|wfAllowSources) != 0 {
		tr.t.Names.fill()
		tr.t.DirNames.fill()
	}
	tr.nameKeys()
	return tr.t, nil
}

// NamedCodes are code numbers by kind, bit n for number n (ward.c's struct config): the
// capabilities, address families, socket types and protocols (0-255) that rules name.
type NamedCodes struct {
	Caps, Families uint64
	Types          uint32 // the kernel tests type & SOCK_TYPE_MASK (0-15)
	Protos         [4]uint64
}

// add names code c (a KIND_CODE key's hash). A rule for every socket names every network code.
// The kernel looks up every number past the bitmaps (capabilities, families and types from 64,
// protocols from 256), so those need no bit.
func (n *NamedCodes) add(c uint64) {
	num := c & 0xffffffff
	switch kind := c &^ 0xffffffff; {
	case kind == codeCap && num < 64:
		n.Caps |= 1 << num
	case kind == codeFamily && num < 64:
		n.Families |= 1 << num
	case kind == codeType && num < 32:
		n.Types |= 1 << num
	case kind == codeProto && num < 256:
		n.Protos[num>>6] |= 1 << (num & 63)
	case kind == codeAll:
		n.Families, n.Types = ^uint64(0), ^uint32(0)
		n.Protos = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	}
}

// union adds o's codes to n.
func (n *NamedCodes) union(o NamedCodes) {
	n.Caps |= o.Caps
	n.Families |= o.Families
	n.Types |= o.Types
	for i := range n.Protos {
		n.Protos[i] |= o.Protos[i]
	}
}

// translator is Translate's state while it goes through a set's rules.
type translator struct {
	t        *Translation
	host     Host
	patterns [numOps][]globPattern
	flags    [numOps]uint8
	workload string
	scans    map[string][]string // HardLinks' results by recursive:directory
	// mountTable reads the workload's mount table at the first directory rule on a mount
	// point (mountedName) and returns that read for the rest of the translation.
	mountTable func() ([]Mount, bool)
	// names are the names added to t.Names, for their KIND_NAME keys (name).
	names map[string]struct{}
}

func (tr *translator) add(k Key, exact, direct, recursive uint64) {
	k.Workload = tr.t.Workload
	v := tr.t.Entries[k]
	v.Exact |= exact
	v.Direct |= direct
	v.Recursive |= recursive
	tr.t.Entries[k] = v
}

// fileName adds the name of an exact path's file to the names filter, dirName a directory
// rule's directory's and mountName the name of what is mounted on one to it and to the
// directories' filter: each also with its KIND_NAME key (name), so that the filters and the keys
// name the same.
func (tr *translator) fileName(p string) {
	tr.t.Names.addPath(p)
	tr.name(fileBase(p))
}

func (tr *translator) dirName(dir string) {
	tr.t.Names.addDir(dir)
	tr.t.DirNames.addDir(dir)
	tr.name(dirBase(dir))
}

func (tr *translator) mountName(name string) {
	tr.t.Names.add(name)
	tr.t.DirNames.add(name)
	tr.name(name)
}

// name records a name just added to the names filter, whose KIND_NAME key nameKeys adds: the
// kernel's second test of a file's name whose bit is set (ward.c's name_listed). Only names
// that fit a dentry's inline buffer are hashed there; a longer one is always resolved.
func (tr *translator) name(name string) {
	if len(name) == 0 || len(name) >= nameInline {
		return
	}
	if tr.names == nil {
		tr.names = map[string]struct{}{}
	}
	tr.names[name] = struct{}{}
}

// nameKeys adds the KIND_NAME keys of the filter's names, unless the filter is full: the
// kernel then never looks them up (wl_val.name_keys).
func (tr *translator) nameKeys() {
	if tr.t.Names.Full() {
		return
	}
	for n := range tr.names {
		tr.add(Key{Op: opFile, Kind: kindName, Hash: NameHash(n)}, 0, 0, 0)
	}
}

// rule adds one rule's entries, once per acting executable it is limited to (or once for all).
func (tr *translator) rule(r *rules.Rule) error {
	where := fmt.Sprintf("policy %s: %s", r.PolicyName, r.Field)
	op, ok := opOf(r.Operation)
	if !ok || len(r.AllowedArgs) > 0 || r.Match == policy.MatchDNSQuery {
		return nil // syscalls, allowedArgs, DNS: in t.Warnings
	}
	bit, err := actionBit(r)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	srcs := []uint64{0}
	if len(r.FromSource) > 0 {
		srcs = nil
		for _, fs := range r.FromSource {
			if fs.Path == "" {
				return fmt.Errorf("%s: fromSource directory %q is not supported by BPF-LSM", where, fs.Dir)
			}
			srcs = append(srcs, tr.t.sources(tr.host, fs.Path)...)
		}
		tr.flags[op] |= wfSourceRules
	}
	tr.flags[op] |= wfRules
	if r.Action == policy.ActionBlock {
		tr.flags[op] |= wfBlockRules
	}
	for _, src := range srcs {
		if err := tr.match(r, op, Key{Op: op, Src: src}, bit); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// match adds the entries of one rule's target for one acting executable (base.Src).
func (tr *translator) match(r *rules.Rule, op uint8, base Key, bit uint64) error {
	t, host := tr.t, tr.host
	switch r.Match {
	case policy.MatchPath:
		for _, p := range resolved(host, r.Value) {
			k := base
			k.Kind, k.Hash = kindPath, Hash(p)
			tr.add(k, bit, 0, 0)
			t.ExactDepths[op] |= depthBit(p)
			if op == opFile {
				tr.fileName(p)
			}
			if p != r.Value {
				t.Aliases[p] = r.Value
			}
		}
		if host != nil && (op == opFile || op == opProcess) {
			if h, ok := inodeHash(host, r.Value); ok {
				k := base
				k.Kind, k.Hash = kindInode, h
				tr.add(k, bit, 0, 0)
				t.Inodes[k.Hash] = r.Value
				tr.flags[op] |= wfInodes
			}
		}
	case policy.MatchDirectory:
		dir := strings.TrimSuffix(r.Value, "/")
		for _, p := range resolved(host, dir) {
			k := base
			k.Kind, k.Hash = kindPath, Hash(strings.TrimSuffix(p, "/")+"/")
			t.DirDepths[op] |= depthBit(strings.TrimSuffix(p, "/") + "/")
			if op == opFile {
				tr.dirName(p)
			}
			if p != dir {
				t.Aliases[strings.TrimSuffix(p, "/")+"/"] = r.Value
			}
			if r.Recursive {
				tr.add(k, 0, 0, bit)
			} else {
				tr.add(k, 0, bit, 0)
			}
		}
		// The directory is also matched by its inode, against every
		// ancestor of a file (bpf/ward.c dir_step): the rule then holds
		// however the file is reached (bind mount, chroot, renamed ancestor).
		if host != nil && (op == opFile || op == opProcess) {
			if h, ok := inodeHash(host, dir); ok {
				k := base
				k.Kind, k.Hash = kindDirInode, h
				if r.Recursive {
					tr.add(k, 0, 0, bit)
				} else {
					tr.add(k, 0, bit, 0)
				}
				t.DirInodes[k.Hash] = dir
				t.DirInodeOps |= 1 << op
				// The inode key matches the dentry mounted there, whose name is
				// not the directory's (a file system's root is named "/", a bind
				// mount's the name of its source), and which the names walk meets
				// wherever else it is mounted: that name goes into the filter too.
				if op == opFile && host.MountRoot(dir) {
					if name, ok := tr.mountedName(dir); ok {
						tr.mountName(name)
					} else {
						t.Names.fill()
						t.DirNames.fill()
					}
				}
			}
			tr.hardLinks(r, dir, base, bit)
		}
	case policy.MatchExecName:
		k := base
		k.Kind, k.Hash = kindExecName, Hash(r.Value)
		tr.add(k, bit, 0, 0)
	case policy.MatchProtocol:
		codes, err := protocolCodes(r.Value)
		if err != nil {
			return err
		}
		for _, c := range codes {
			k := base
			k.Kind, k.Hash = kindCode, c
			tr.add(k, bit, 0, 0)
			t.Codes |= codeKindBit(op, k)
			t.Named.add(c)
		}
	case policy.MatchCapability:
		n, ok := policy.CapabilityNumber(r.Value)
		if !ok {
			return fmt.Errorf("unknown capability %q", r.Value)
		}
		k := base
		k.Kind, k.Hash = kindCode, codeCap|uint64(n)
		tr.add(k, bit, 0, 0)
		t.Codes |= codeKindBit(op, k)
		t.Named.add(k.Hash)
	case policy.MatchPattern:
		if base.Src != 0 {
			return errors.New("fromSource on a pattern is not supported by BPF-LSM")
		}
		toks, err := globTokens(r.Value)
		if err != nil {
			return err
		}
		tr.patterns[op] = append(tr.patterns[op], globPattern{toks: toks, bits: bit})
	default:
		return fmt.Errorf("%s matching is not supported by BPF-LSM", r.Match)
	}
	return nil
}

// hardLinks keys by inode, with a directory rule's bits, every file below
// the directory that has another name: a hard link made before the policy,
// elsewhere, reaches the file without passing through the directory (new
// links to protected files are denied by path_link). Bounded by MaxLinkScan
// entries per rule: beyond, a warning says the rest is matched by path only.
func (tr *translator) hardLinks(r *rules.Rule, dir string, base Key, bit uint64) {
	t, host := tr.t, tr.host
	ps := resolved(host, dir)
	root := ps[len(ps)-1]
	// Once per directory: a rule is matched once per acting executable and
	// operation.
	sk := fmt.Sprintf("%t:%s", r.Recursive, root)
	paths, scanned := tr.scans[sk]
	if !scanned {
		var complete bool
		paths, complete = host.HardLinks(root, r.Recursive, MaxLinkScan)
		if tr.scans == nil {
			tr.scans = map[string][]string{}
		}
		tr.scans[sk] = paths
		if !complete {
			t.Warnings = append(t.Warnings, enforcer.Warning{
				Backend: enforcer.BPF, Workload: tr.workload, Policy: r.PolicyName, Rule: r.Field, RuleID: -1,
				What:    "hard links made before the policy",
				Message: fmt.Sprintf("more than %d entries below %s: files with several names beyond them are matched by this path only, not by inode", MaxLinkScan, dir),
			})
		}
	}
	for _, p := range paths {
		h, ok := inodeHash(host, p)
		if !ok {
			continue
		}
		k := base
		k.Kind, k.Hash = kindInode, h
		tr.add(k, bit, 0, 0)
		if rel, err := filepath.Rel(root, p); err == nil {
			p = filepath.Join(dir, rel)
		}
		if _, ok := t.Inodes[k.Hash]; !ok {
			t.Inodes[k.Hash] = p
		}
		tr.flags[base.Op] |= wfInodes
	}
}

// allowLists sets each operation's allow-list flags: global, per acting executable, and whether
// the default posture blocks what the list leaves out.
func (tr *translator) allowLists(set *rules.Set) {
	for _, op := range []policy.Operation{policy.OpFile, policy.OpProcess, policy.OpNetwork, policy.OpCapabilities} {
		o, _ := opOf(op)
		global, sources := set.AllowList(op)
		if global {
			tr.flags[o] |= wfAllowGlobal
		}
		if len(sources) > 0 {
			tr.flags[o] |= wfAllowSources
			for _, s := range sources {
				for _, src := range tr.t.sources(tr.host, s) {
					tr.add(Key{Op: o, Kind: kindSrcAllow, Src: src}, 0, 0, 0)
				}
			}
		}
		if (global || len(sources) > 0) && set.Postures.For(op) == policy.ActionBlock {
			tr.flags[o] |= wfPostureBlock
		}
	}
}

// automata compiles each operation's patterns into one DFA in the glob map.
func (tr *translator) automata() error {
	for o, pats := range tr.patterns {
		if len(pats) == 0 {
			continue
		}
		dfa, err := buildDFA(pats)
		if err != nil {
			return fmt.Errorf("%s patterns: %w", opNames[o], err)
		}
		for st, row := range dfa {
			for c, v := range row {
				tr.t.Globs[GlobKey{Workload: tr.t.Workload, Op: uint8(o), State: st, Byte: c}] = v
			}
		}
		tr.flags[o] |= wfPatterns
	}
	return nil
}

// codeKindBit is the bit of Translation.Codes that says a code key of k's kind exists.
func codeKindBit(op uint8, k Key) uint32 {
	b := uint32(1) << (k.Hash >> wardCodeKindCODE_KIND_SHIFT & 7)
	if k.Src != 0 {
		b <<= 8
	}
	return b << (16 * uint32(op-opNetwork))
}

// srcInodeTag marks a source identified by inode (bpf/ward.c SRC_INODE_TAG).
const srcInodeTag = uint64(wardSrcInodeTagSRC_INODE_TAG_HIGH) << wardSrcInodeTagSRC_INODE_TAG_SHIFT

// sources returns the identities of an acting executable: the hash of its
// path (and of its symlink target), which file_open computes with
// bpf_d_path, and, when it exists, its inode, which socket_create and capable
// use because the kernel refuses bpf_d_path there.
func (t *Translation) sources(host Host, p string) []uint64 {
	var out []uint64
	for _, q := range resolved(host, p) {
		h := Hash(q)
		t.Sources[h] = p
		out = append(out, h)
	}
	if host != nil {
		if h, ok := inodeHash(host, p); ok {
			h ^= srcInodeTag
			t.Sources[h] = p
			out = append(out, h)
		}
	}
	return out
}

// resolved returns the path and, when it differs, where its symlinks lead:
// the kernel sees the opened file's real path, so a rule on a symlink must
// name the target too.
func resolved(host Host, p string) []string {
	out := []string{p}
	if host == nil {
		return out
	}
	if r, err := host.EvalSymlinks(p); err == nil && filepath.Clean(r) != filepath.Clean(p) {
		out = append(out, filepath.Clean(r))
	}
	return out
}

// DirAlias returns the path as the directory rules name it for a path the
// kernel saw below a protected directory reached another way (a bind mount,
// a renamed ancestor): the nearest ancestor of p whose inode is a directory
// rule's names the rule's directory, and the rest of p follows. Where no
// ancestor of the path is one, the file may lie in a bind mount of a
// subdirectory of a protected directory: dir_walk walks the file's dentries,
// past the mount's root to its filesystem's, and so does aboveMount. It
// returns p when neither finds one.
func (t *Translation) DirAlias(host Host, p string) string {
	if len(t.DirInodes) == 0 || host == nil || !strings.HasPrefix(p, "/") {
		return p
	}
	p = filepath.Clean(p)
	for q := p; ; q = filepath.Dir(q) {
		if d, ok := t.dirRuleAt(host, q); ok {
			return joinRest(d, p[len(q):])
		}
		if q == "/" {
			return t.aboveMount(host, p)
		}
	}
}

// aboveMount is DirAlias's walk above the root of the mount p lies in, through the mount
// table: each directory of the filesystem above the mounted one is looked up where some mount
// shows it.
func (t *Translation) aboveMount(host Host, p string) string {
	mounts, ok := mountsOf(host)
	if !ok {
		return p
	}
	m, rest, ok := mountOf(mounts, p)
	if !ok || m.Root == "/" {
		return p
	}
	inFS := filepath.Join(m.Root, rest)
	for a := filepath.Dir(m.Root); ; a = filepath.Dir(a) {
		for _, v := range viewOf(mounts, m.Dev, a) {
			if d, ok := t.dirRuleAt(host, v); ok {
				r, _ := below(inFS, a)
				return joinRest(d, r)
			}
		}
		if a == "/" {
			return p
		}
	}
}

// dirRuleAt returns the directory rule's directory whose inode p is.
func (t *Translation) dirRuleAt(host Host, p string) (string, bool) {
	h, ok := inodeHash(host, p)
	if !ok {
		return "", false
	}
	d, ok := t.DirInodes[h]
	return d, ok
}

// joinRest appends a relative rest (with or without its leading slash) to a rule's directory.
func joinRest(dir, rest string) string {
	if rest = strings.TrimPrefix(rest, "/"); rest == "" {
		return dir
	}
	return strings.TrimSuffix(dir, "/") + "/" + rest
}

// mountedName returns the name of the dentry mounted on dir, as ward.c's names walk tests it:
// the last component of a bind mount's source, which the walk tests as any ancestor's, or "/"
// for a filesystem's root, which it tests at the root of every file's filesystem but the task's
// root mount's. False when the mount table does not tell, or when a filesystem's root mounted
// there is the workload's root mount's filesystem: the filter must then be full.
func (tr *translator) mountedName(dir string) (string, bool) {
	mounts, ok := tr.mountTable()
	if !ok {
		return "", false
	}
	real, err := tr.host.EvalSymlinks(dir)
	if err != nil {
		return "", false
	}
	m, rest, ok := mountOf(mounts, filepath.Clean(real))
	if !ok || rest != "" {
		return "", false
	}
	if m.Root != "/" {
		return filepath.Base(m.Root), true
	}
	if root, _, ok := mountOf(mounts, "/"); !ok || root.Dev == m.Dev {
		return "", false
	}
	return "/", true
}

// depthBit is the depth mask bit of a path: its number of '/', capped at 63.
func depthBit(p string) uint64 {
	return 1 << min(strings.Count(p, "/"), 63)
}

// NameFilter is wl_val.names: nameBits bits, a file or directory name's bit by nameBit.
type NameFilter [nameBits / 64]uint64

// nameBits is the size of the names filter (ward.c's NAME_WORDS * 64): with the 64 bits it
// once had, a hundred directory names set most of them, and a file's every ancestor must
// miss.
const nameBits = 4096

func (f *NameFilter) add(name string) {
	i := nameBit(name)
	f[i/64] |= 1 << (i % 64)
}

// addPath adds the name of an exact path's file: its last component.
func (f *NameFilter) addPath(p string) {
	f.add(fileBase(p))
}

// addDir adds the name of a directory rule's directory (with or without its slash): a file
// below it has that name among its ancestors', the directory itself as its own. The root has no
// name to test: the filter is then full.
func (f *NameFilter) addDir(dir string) {
	if name := dirBase(dir); name == "/" || name == "." {
		f.fill()
	} else {
		f.add(name)
	}
}

// fileBase is the name of an exact path's file, dirBase of a directory rule's directory.
func fileBase(p string) string  { return p[strings.LastIndex(p, "/")+1:] }
func dirBase(dir string) string { return filepath.Base(strings.TrimSuffix(dir, "/")) }

// Has says whether name's bit is set.
func (f *NameFilter) Has(name string) bool {
	i := nameBit(name)
	return f[i/64]&(1<<(i%64)) != 0
}

// covers says whether every bit of o is set in f.
func (f *NameFilter) covers(o *NameFilter) bool {
	for i := range f {
		if o[i]&^f[i] != 0 {
			return false
		}
	}
	return true
}

// union sets the bits of o in f.
func (f *NameFilter) union(o *NameFilter) {
	for i := range f {
		f[i] |= o[i]
	}
}

// RuleNames are the names a set's file rules give their paths' last components and
// directories, as written (Translate adds where their symlinks lead): none where the names
// filter will be full (a pattern, a fromSource rule, an allow-list, a rule on /), which the kernel never
// trusts, so that renames of those names do not turn the other workloads' filters off.
// Backend.translate checks what Translate found either way.
func RuleNames(set *rules.Set) NameFilter {
	var f NameFilter
	for _, r := range set.Rules {
		if r.Operation != policy.OpFile {
			continue
		}
		if r.Match == policy.MatchPattern || len(r.FromSource) > 0 || r.Action == policy.ActionAllow {
			return NameFilter{}
		}
		switch r.Match {
		case policy.MatchPath:
			f.addPath(r.Value)
		case policy.MatchDirectory:
			f.addDir(r.Value)
		}
	}
	if f.Full() {
		return NameFilter{}
	}
	return f
}

func (f *NameFilter) fill() {
	for i := range f {
		f[i] = ^uint64(0)
	}
}

// Full says whether every bit is set: no name tells that no rule applies.
func (f *NameFilter) Full() bool {
	for _, w := range f {
		if w != ^uint64(0) {
			return false
		}
	}
	return true
}

// nameInline is the size of a dentry's inline name buffer on the kernels Ward runs on
// (DNAME_INLINE_LEN, 32 on 64-bit 6.1): ward.c's name_listed hashes the names shorter than it.
const nameInline = 32

// nameMul is NameHash's multiplier (ward.c's NAME_MUL).
const nameMul = 0x9E3779B97F4A7C15

// NameHash is the hash of a KIND_NAME key: a name shorter than nameInline, read as the
// little-endian words that hold its bytes (one to four), with zeros past its end, mixed with
// its length, as ward.c's name_listed computes it from a dentry's inline name (a word past the
// name's end would only cost the kernel loads and multiplications). Unlike nameBit it takes
// every byte, so two names that differ anywhere differ here but for a 64-bit collision, which
// only makes the kernel resolve a path it need not have.
func NameHash(name string) uint64 {
	var b [nameInline]byte
	copy(b[:], name)
	h := (uint64(len(name)) + 1) * nameMul
	for i := 0; i < len(name); i += 8 {
		h = (h ^ binary.LittleEndian.Uint64(b[i:])) * nameMul
	}
	return h ^ h>>32
}

// nameBit is the bit of a file or directory name in NameFilter, as bpf/ward.c's unnamed
// computes it from a dentry's name: its length (low byte), first and last byte, mixed by a
// multiplication so that names alike in one of them spread over the filter. A filter, not a
// match: a name whose bit is set is resolved and looked up as before.
func nameBit(name string) uint {
	var first, last byte
	if name != "" {
		first, last = name[0], name[len(name)-1]
	}
	k := uint64(len(name)&0xff)<<16 | uint64(first)<<8 | uint64(last)
	return uint(k * 0x9E3779B97F4A7C15 >> 52)
}

// Alias returns the path as the rules name it for a path the kernel saw:
// the same path, or, below a rule's symlink target, the symlink's path.
func (t *Translation) Alias(p string) string { return rules.UnaliasPath(t.Aliases, p) }

// SortedKeys returns the entries' keys in a stable order, for golden output.
func (t *Translation) SortedKeys() []Key {
	keys := make([]Key, 0, len(t.Entries))
	for k := range t.Entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Hash != b.Hash {
			return a.Hash < b.Hash
		}
		return a.Src < b.Src
	})
	return keys
}

var protoNumbers = map[string]int{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "dccp": 33}
var sockTypes = map[string]int{"stream": 1, "dgram": 2, "raw": 3, "rdm": 4, "seqpacket": 5, "dccp": 6}

func protocolCodes(name string) ([]uint64, error) {
	switch name {
	case "all":
		return []uint64{codeAll}, nil
	case "packet":
		return []uint64{codeFamily | unix.AF_PACKET}, nil
	}
	if f, ok := policy.FamilyOfProtocol(name); ok {
		// An address family (AF_RDS): the kernel program looks up the socket's family code for
		// every socket (check_socket).
		if n, ok := policy.AddressFamily(f); ok {
			return []uint64{codeFamily | uint64(n)}, nil
		}
	}
	if n, ok := protoNumbers[name]; ok {
		return []uint64{codeProto | uint64(n)}, nil
	}
	if n, ok := sockTypes[name]; ok {
		return []uint64{codeType | uint64(n)}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q", name)
}
