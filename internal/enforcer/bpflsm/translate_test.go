package bpflsm

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/bits"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/conformance"
	"github.com/wardsec/ward/internal/glob"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// fakeHost is a filesystem of symlinks and inodes for translation tests.
type fakeHost struct {
	links  map[string]string
	inodes map[string]uint64
	// linked lists the files with several names under each directory.
	linked map[string][]string
	// mounts lists the mount points.
	mounts map[string]bool
	// table is the mount table Mounts returns, and reads counts the calls when set.
	table []Mount
	reads *int
}

func (h fakeHost) MountRoot(p string) bool { return h.mounts[p] }

func (h fakeHost) Mounts() ([]Mount, error) {
	if h.reads != nil {
		*h.reads++
	}
	return h.table, nil
}

func (h fakeHost) HardLinks(dir string, recursive bool, limit int) ([]string, bool) {
	var out []string
	for _, p := range h.linked[dir] {
		if recursive || !strings.Contains(strings.TrimPrefix(p, dir+"/"), "/") {
			out = append(out, p)
		}
	}
	if len(out) > limit {
		return out[:limit], false
	}
	return out, true
}

func (h fakeHost) EvalSymlinks(p string) (string, error) {
	if t, ok := h.links[p]; ok {
		return t, nil
	}
	if _, ok := h.inodes[p]; ok {
		return p, nil
	}
	return "", fmt.Errorf("%s: no such file", p)
}

func (h fakeHost) Inode(p string) (uint32, uint64, bool) {
	if t, ok := h.links[p]; ok {
		p = t
	}
	ino, ok := h.inodes[p]
	return 7, ino, ok
}

func compile(t *testing.T, yaml string, post rules.Postures) *rules.Set {
	t.Helper()
	ps, _, err := policy.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(ps, workload.Host("h", nil), post)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func hostPolicy(body string) string {
	return `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: p}
spec:
  nodeSelector: {matchLabels: {kubearmor.io/hostname: "*"}}
` + body
}

func TestTranslateEntries(t *testing.T) {
	set := compile(t, hostPolicy(`  file:
    matchPaths:
    - path: /wt/secret.txt
    - path: /wt/link
      readOnly: true
      ownerOnly: true
      fromSource: [{path: /wt/bin/other}]
    matchDirectories:
    - dir: /wt/flat/
    - dir: /wt/deep/
      recursive: true
      action: Audit
  action: Block
`), rules.DefaultPostures())
	h := fakeHost{links: map[string]string{"/wt/link": "/wt/target"}, inodes: map[string]uint64{"/wt/target": 42, "/wt/bin/other": 9}}
	tr, err := Translate(set, h)
	if err != nil {
		t.Fatal(err)
	}
	other := Hash("/wt/bin/other")
	otherIno := (uint64(7)<<32 ^ 9) ^ srcInodeTag
	want := map[Key]Value{
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/secret.txt")}:             {Exact: 1 << 0},
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/link"), Src: other}:       {Exact: 1 << 3},
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/target"), Src: other}:     {Exact: 1 << 3},
		{Op: opFile, Kind: kindInode, Hash: uint64(7)<<32 ^ 42, Src: other}:    {Exact: 1 << 3},
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/link"), Src: otherIno}:    {Exact: 1 << 3},
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/target"), Src: otherIno}:  {Exact: 1 << 3},
		{Op: opFile, Kind: kindInode, Hash: uint64(7)<<32 ^ 42, Src: otherIno}: {Exact: 1 << 3},
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/flat/")}:                  {Direct: 1 << 0},
		{Op: opFile, Kind: kindPath, Hash: Hash("/wt/deep/")}:                  {Recursive: 1 << auditShift},
	}
	if len(tr.Entries) != len(want) {
		for _, k := range tr.SortedKeys() {
			t.Logf("got %+v = %+v", k, tr.Entries[k])
		}
		t.Fatalf("got %d entries, want %d", len(tr.Entries), len(want))
	}
	for k, v := range want {
		if got, ok := tr.Entries[k]; !ok || got != v {
			t.Errorf("entry %+v = %+v (present %v), want %+v", k, got, ok, v)
		}
	}
	if f := uint8(tr.Flags); f != wfRules|wfSourceRules|wfBlockRules|wfInodes {
		t.Errorf("file flags %#x", f)
	}
	if tr.Flags>>8 != 0 {
		t.Errorf("flags for other operations: %#x", tr.Flags)
	}
	if got := tr.Alias("/wt/target"); got != "/wt/link" {
		t.Errorf("alias of the symlink target: %q", got)
	}
	if tr.Inodes[uint64(7)<<32^42] != "/wt/link" {
		t.Errorf("inode attribution %v", tr.Inodes)
	}
}

func TestTranslateRefusesAndWarns(t *testing.T) {
	// Only syscall rules take a fromSource directory today; refuse it anyway.
	set := &rules.Set{Workload: workload.Host("h", nil), Rules: []rules.Rule{{Rule: policy.Rule{
		Field: "spec.file.matchPaths[0]", Operation: policy.OpFile, Match: policy.MatchPath, Value: "/wt/a",
		Action: policy.ActionBlock, FromSource: []policy.FromSource{{Dir: "/wt/bin/"}},
	}}}}
	if _, err := Translate(set, nil); err == nil || !strings.Contains(err.Error(), "fromSource directory") {
		t.Errorf("fromSource dir: err %v", err)
	}
	set = compile(t, hostPolicy(`  process:
    matchPaths:
    - path: /bin/ls
      allowedArgs: [-l]
  action: Block
`), rules.DefaultPostures())
	// Presets and device rules have no translation: they are reported, not dropped silently.
	set.Presets = []rules.Preset{{Preset: policy.Preset{Name: "protectEnv", Action: policy.ActionBlock}, PolicyName: "p"}}
	set.Devices = []rules.Device{{DeviceRule: policy.DeviceRule{Field: "spec.device.matchDevice[0]", Class: "MASS-STORAGE", Action: policy.ActionBlock}, PolicyName: "p"}}
	tr, err := Translate(set, nil)
	var got []string
	for _, w := range tr.Warnings {
		got = append(got, w.Rule)
	}
	if want := []string{"spec.process.matchPaths[0].allowedArgs", "spec.presets[0]", "spec.device.matchDevice[0]"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("err %v warnings at %q, want %q", err, got, want)
	}
	if len(tr.Entries) != 0 {
		t.Errorf("the allowedArgs rule was translated: %v", tr.Entries)
	}
	set.Workload = workload.Workload{Kind: workload.KindContainer, ContainerID: "c"}
	if _, err := Translate(set, nil); err == nil {
		t.Error("container without cgroup id translated")
	}
}

// unnamedByNames is bpf/ward.c's unnamed for path p, without inodes: its name, and with
// directory rules every ancestor's up to the root ("/", as the root dentry is named), have no
// bit in tr.Names.
func unnamedByNames(tr *Translation, p string) bool {
	if tr.Names.Has(p[strings.LastIndexByte(p, '/')+1:]) {
		return false
	}
	if tr.DirDepths[opFile] == 0 {
		return true
	}
	for q := filepath.Dir(p); ; q = filepath.Dir(q) {
		if tr.Names.Has(filepath.Base(q)) {
			return false
		}
		if q == "/" {
			return true
		}
	}
}

// simulate is bpf/ward.c's decision in Go, over a Translation: the same
// prefix hashing, lookups, DFA steps and bit reduction. Comparing it with
// rules.Decide on the conformance table checks the translation on the host;
// the VM test checks the kernel against the same table.
func simulate(tr *Translation, a rules.Access) policy.Action {
	var op uint8
	switch a.Op {
	case policy.OpFile:
		op = opFile
	case policy.OpProcess:
		op = opProcess
	case policy.OpNetwork:
		op = opNetwork
	case policy.OpCapabilities:
		op = opCapabilities
	}
	flags := uint8(tr.Flags >> (8 * op))
	if flags&wfRules == 0 {
		return policy.ActionAllow
	}
	src := uint64(0)
	if flags&wfSourceRules != 0 {
		src = Hash(a.Source)
	}
	look := func(kind uint8, h, s uint64) Value {
		return tr.Entries[Key{Workload: tr.Workload, Op: op, Kind: kind, Hash: h, Src: s}]
	}
	// bits of rules for any source; sbits of rules limited to this one,
	// which decide first.
	var bits, sbits uint64
	both := func(kind uint8, h uint64, f func(Value) uint64) {
		bits |= f(look(kind, h, 0))
		if src != 0 {
			sbits |= f(look(kind, h, src))
		}
	}
	switch op {
	case opFile, opProcess:
		p := a.Path
		last := strings.LastIndexByte(p, '/')
		// file_open's unnamed: a file whose name and (with directory rules) whose ancestors'
		// names have no bit in Names matches no path rule (no inode keys here: Translate has
		// no host).
		if op == opFile && unnamedByNames(tr, p) {
			break
		}
		depth := 0
		for i := 0; i <= last; i++ {
			if p[i] == '/' {
				depth++
				if tr.DirDepths[op]&(1<<min(depth, 63)) == 0 {
					continue
				}
				both(kindPath, Hash(p[:i+1]), func(v Value) uint64 {
					if i == last {
						return v.Recursive | v.Direct
					}
					return v.Recursive
				})
			}
		}
		if tr.ExactDepths[op]&(1<<min(depth, 63)) != 0 {
			both(kindPath, Hash(p), func(v Value) uint64 { return v.Exact })
		}
		if tr.DirDepths[op]&(1<<min(depth+1, 63)) != 0 {
			both(kindPath, Hash(p+"/"), func(v Value) uint64 { return v.Direct | v.Recursive })
		}
		if op == opProcess {
			both(kindExecName, Hash(p[last+1:]), func(v Value) uint64 { return v.Exact })
		}
		if flags&wfPatterns != 0 {
			state, alive, acc := uint32(0), true, uint64(0)
			for i := 0; i < len(p) && alive; i++ {
				g, ok := tr.Globs[GlobKey{Workload: tr.Workload, Op: op, State: state, Byte: p[i]}]
				state, acc, alive = g.Next, g.Accept, ok
			}
			if alive {
				bits |= acc
			}
		}
	case opNetwork:
		n := rules.NetworkAccess(a.Protocol)
		if a.Protocol == "" {
			n = a
		}
		codes := []uint64{codeAll}
		if c, err := protocolCodes(n.Protocol); err == nil && n.Protocol != "" {
			codes = append(codes, c...)
		}
		if c, err := protocolCodes(n.SockType); err == nil && n.SockType != "" {
			codes = append(codes, c...)
		}
		if f, ok := policy.AddressFamily(n.Family); ok {
			// As check_socket: the socket's family code, always looked up.
			codes = append(codes, codeFamily|uint64(f))
		}
		if !slices.ContainsFunc(codes, tr.Named.names) {
			return policy.ActionAllow // check_socket returns before the workload lookup
		}
		for _, c := range codes {
			both(kindCode, c, func(v Value) uint64 { return v.Exact })
		}
	case opCapabilities:
		c := codeCap | uint64(capNumber(a.Capability))
		if !tr.Named.names(c) {
			return policy.ActionAllow // ward_capable returns before the workload lookup
		}
		both(kindCode, c, func(v Value) uint64 { return v.Exact })
	}
	perm := uint64(0)
	for c := 0; c < 12; c++ {
		ro, oo, pts := c&1 != 0, c&2 != 0, c>>2
		if pts == 3 {
			continue
		}
		if (!ro || !a.Write) && (!oo || a.UID == a.Owner) && (pts == 0 || (pts == 1) == a.TTY) {
			perm |= 1 << c
		}
	}
	const mask = 0xfff
	verdict := func(bits uint64) (policy.Action, bool) {
		outside := ^perm&mask | 1
		switch {
		case (bits>>blockShift)&mask&outside != 0:
			return policy.ActionBlock, true
		case (bits>>auditShift)&mask&outside != 0:
			return policy.ActionAudit, true
		case (bits>>allowShift)&mask&perm != 0:
			return policy.ActionAllow, true
		}
		return "", false
	}
	if v, ok := verdict(sbits); ok {
		return v
	}
	if v, ok := verdict(bits); ok {
		return v
	}
	listed := flags&wfAllowGlobal != 0
	if !listed && flags&wfAllowSources != 0 {
		_, listed = tr.Entries[Key{Workload: tr.Workload, Op: op, Kind: kindSrcAllow, Src: Hash(a.Source)}]
	}
	if !listed {
		return policy.ActionAllow
	}
	if flags&wfPostureBlock != 0 {
		return policy.ActionBlock
	}
	return policy.ActionAudit
}

// names says whether the kernel's check of ward_config lets code c through to the workload
// lookup (check_socket, ward_capable): numbers past the bitmaps always pass.
func (n NamedCodes) names(c uint64) bool {
	num := c & 0xffffffff
	switch c &^ 0xffffffff {
	case codeCap:
		return num >= 64 || n.Caps&(1<<num) != 0
	case codeFamily:
		return num >= 64 || n.Families&(1<<num) != 0
	case codeType:
		return n.Types&(1<<(num&0xf)) != 0
	case codeProto:
		return num >= 256 || n.Protos[num>>6]&(1<<(num&63)) != 0
	}
	return false // CODE_ALL has no bit: an "all" rule names every code of the others
}

// TestTranslationAgreesWithDecide runs the conformance table through the
// translation and the Go model of the kernel's decision.
func TestTranslationAgreesWithDecide(t *testing.T) {
	cases, err := conformance.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		ps, post, err := c.Load()
		if err != nil {
			t.Fatal(err)
		}
		sets, err := caseSets(&c, ps, post)
		if err != nil {
			t.Fatal(err)
		}
		trs := make([]*Translation, len(sets))
		for i, set := range sets {
			if trs[i], err = Translate(set, nil); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
		}
		for i, a := range c.Accesses {
			wi, err := c.WorkloadIndex(&a)
			if err != nil {
				t.Fatal(err)
			}
			set, tr := sets[wi], trs[wi]
			acc := a.Access()
			key := fmt.Sprintf("%s/%d", c.Name, i)
			got, want := simulate(tr, acc), set.Decide(acc).Action
			reason, known := knownDifferences[key]
			switch {
			case got != want && !known:
				t.Errorf("%s (%s): kernel model says %s, Decide %s", key, a.Describe(), got, want)
			case got == want && known:
				t.Errorf("%s (%s): listed as a known difference (%s) but the kernel model agrees with Decide now", key, a.Describe(), reason)
			}
		}
	}
}

// TestDFAMatchesGlob compares the DFA with internal/glob on patterns and paths.
func TestDFAMatchesGlob(t *testing.T) {
	patterns := []string{"/wt/keys/*.pem", "/etc/**/*.conf", "/a/?/b", "/x/[a-c]*", "/x/[!a-c]z", "/**", "/d/**/e", "/f/*"}
	paths := []string{"/wt/keys/a.pem", "/wt/keys/sub/a.pem", "/wt/keys/.pem", "/etc/a.conf", "/etc/x/y/a.conf",
		"/etc/x/a.confx", "/a/b/b", "/a/bb/b", "/a//b", "/x/abc", "/x/d", "/x/dz", "/x/az", "/x//z", "/d/e", "/d/x/e",
		"/d//e", "/f/", "/f/g", "/f/g/h", "/", ""}
	for i, p := range patterns {
		toks, err := globTokens(p)
		if err != nil {
			t.Fatal(err)
		}
		// Each pattern alone, and all together with its own bit.
		dfa, err := buildDFA([]globPattern{{toks: toks, bits: 1}})
		if err != nil {
			t.Fatal(err)
		}
		g, err := glob.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			state, alive, acc := uint32(0), true, uint64(0)
			for j := 0; j < len(path) && alive; j++ {
				v, ok := dfa[state][path[j]]
				state, acc, alive = v.Next, v.Accept, ok
			}
			got := alive && acc&1 != 0 && path != ""
			if got != g.Match(path) {
				t.Errorf("pattern %d %q on %q: dfa %v, glob %v", i, p, path, got, g.Match(path))
			}
		}
	}
	var all []globPattern
	for i, p := range patterns {
		toks, _ := globTokens(p)
		all = append(all, globPattern{toks: toks, bits: 1 << i})
	}
	dfa, err := buildDFA(all)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		state, alive, acc := uint32(0), true, uint64(0)
		for j := 0; j < len(path) && alive; j++ {
			v, ok := dfa[state][path[j]]
			state, acc, alive = v.Next, v.Accept, ok
		}
		for i, p := range patterns {
			g, _ := glob.Compile(p)
			got := alive && path != "" && acc&(1<<i) != 0
			if got != g.Match(path) {
				t.Errorf("combined DFA, pattern %q on %q: %v, glob %v", p, path, got, g.Match(path))
			}
		}
	}
}

// capNumber is policy's number for a capability the case generator drew from policy's names.
func capNumber(name string) int {
	n, _ := policy.CapabilityNumber(name)
	return n
}

// checkEntriesOfKind checks every entry of kind against want and returns how
// many there are.
func checkEntriesOfKind(t *testing.T, tr *Translation, kind uint8, want map[Key]Value) int {
	t.Helper()
	n := 0
	for k, v := range tr.Entries {
		if k.Kind != kind {
			continue
		}
		n++
		if w, ok := want[k]; !ok || w != v {
			t.Errorf("entry %+v = %+v, want %+v (present %v)", k, v, w, ok)
		}
	}
	return n
}

// Directory rules also key their directory's inode, so that the kernel finds
// a file below it however it was reached, and an event through another path
// (a bind mount of the directory) is attributed below the rule's directory.
func TestTranslateDirInodes(t *testing.T) {
	set := compile(t, hostPolicy(`  file:
    matchDirectories:
    - dir: /wt/flat/
    - dir: /wt/deep/
      recursive: true
    - dir: /wt/absent/
      recursive: true
  process:
    matchDirectories:
    - dir: /wt/deep/
      recursive: true
  action: Block
`), rules.DefaultPostures())
	h := fakeHost{inodes: map[string]uint64{"/wt/flat": 40, "/wt/deep": 50, "/mnt/bound": 50, "/mnt": 60}}
	tr, err := Translate(set, h)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Key]Value{
		{Op: opFile, Kind: kindDirInode, Hash: uint64(7)<<32 ^ 40}:    {Direct: 1 << 0},
		{Op: opFile, Kind: kindDirInode, Hash: uint64(7)<<32 ^ 50}:    {Recursive: 1 << 0},
		{Op: opProcess, Kind: kindDirInode, Hash: uint64(7)<<32 ^ 50}: {Recursive: 1 << 0},
	}
	if n := checkEntriesOfKind(t, tr, kindDirInode, want); n != len(want) {
		t.Errorf("%d directory inode entries, want %d (none for a directory that does not exist)", n, len(want))
	}
	if tr.DirInodeOps != 1<<opFile|1<<opProcess {
		t.Errorf("DirInodeOps %#x", tr.DirInodeOps)
	}
	type alias struct{ in, want string }
	aliases := func(what string, cases []alias) {
		t.Helper()
		for _, c := range cases {
			if got := tr.DirAlias(h, c.in); got != c.want {
				t.Errorf("%sDirAlias(%q) = %q, want %q", what, c.in, got, c.want)
			}
		}
	}
	aliases("", []alias{
		{"/mnt/bound/a/b.txt", "/wt/deep/a/b.txt"},
		{"/mnt/bound", "/wt/deep"},
		{"/wt/deep/x", "/wt/deep/x"},
		{"/mnt/other/x", "/mnt/other/x"},
		{"relative/x", "relative/x"},
	})
	// A bind mount of a subdirectory of the protected directory: no ancestor of the opened
	// path is the protected directory, the dentries above the mount's root are (dir_walk).
	// The root filesystem (device 7) shows /wt/deep at /wt/deep; /srv/sub is /wt/deep/a/sub
	// bound there; /data is another filesystem whose /x is bound at /opt/x.
	h.table = []Mount{
		{Dev: 7, Root: "/", Point: "/"},
		{Dev: 7, Root: "/wt/deep/a/sub", Point: "/srv/sub"},
		{Dev: 9, Root: "/", Point: "/data"},
		{Dev: 9, Root: "/x", Point: "/opt/x"},
	}
	aliases("with mounts: ", []alias{
		{"/srv/sub/f.txt", "/wt/deep/a/sub/f.txt"},
		{"/srv/sub/d/e/f.txt", "/wt/deep/a/sub/d/e/f.txt"},
		{"/srv/sub", "/wt/deep/a/sub"},
		{"/opt/x/f.txt", "/opt/x/f.txt"},         // another filesystem: no rule's directory above
		{"/srv/other/f.txt", "/srv/other/f.txt"}, // in the root mount: the path walk said all
	})
	// The protected directory itself reachable through a bind mount only: the view is found
	// through that mount's point.
	h.table = []Mount{
		{Dev: 7, Root: "/", Point: "/"},
		{Dev: 7, Root: "/wt/deep", Point: "/mnt/bound"},
		{Dev: 7, Root: "/wt/deep/a/sub", Point: "/srv/sub"},
	}
	h.inodes = map[string]uint64{"/mnt/bound": 50}
	aliases("protected directory seen through a bind mount only: ", []alias{{"/srv/sub/f.txt", "/wt/deep/a/sub/f.txt"}})
	// Files with several names below the directories (hard links made
	// before the policy) are keyed by inode with the rule's bits: below a
	// recursive rule at any depth, below a direct one only directly in it.
	h = fakeHost{
		inodes: map[string]uint64{"/wt/flat": 40, "/wt/deep": 50, "/wt/deep/a/x": 51, "/wt/deep/y": 52, "/wt/flat/z": 41, "/wt/flat/sub/w": 42},
		linked: map[string][]string{"/wt/deep": {"/wt/deep/a/x", "/wt/deep/y"}, "/wt/flat": {"/wt/flat/z", "/wt/flat/sub/w"}},
	}
	tr, err = Translate(set, h)
	if err != nil {
		t.Fatal(err)
	}
	wantInodes := map[Key]Value{
		{Op: opFile, Kind: kindInode, Hash: uint64(7)<<32 ^ 51}:    {Exact: 1 << 0},
		{Op: opFile, Kind: kindInode, Hash: uint64(7)<<32 ^ 52}:    {Exact: 1 << 0},
		{Op: opFile, Kind: kindInode, Hash: uint64(7)<<32 ^ 41}:    {Exact: 1 << 0},
		{Op: opProcess, Kind: kindInode, Hash: uint64(7)<<32 ^ 51}: {Exact: 1 << 0},
		{Op: opProcess, Kind: kindInode, Hash: uint64(7)<<32 ^ 52}: {Exact: 1 << 0},
	}
	if n := checkEntriesOfKind(t, tr, kindInode, wantInodes); n != len(wantInodes) {
		t.Errorf("%d inode entries, want %d", n, len(wantInodes))
	}
	if f := uint8(tr.Flags); f&wfInodes == 0 {
		t.Errorf("file flags %#x lack wfInodes", f)
	}
	if tr.Inodes[uint64(7)<<32^51] != "/wt/deep/a/x" {
		t.Errorf("inode attribution %v", tr.Inodes)
	}
	if len(tr.Warnings) != 0 {
		t.Errorf("warnings %v", tr.Warnings)
	}
	// Past the scan's bound, a warning says what is matched by path only.
	many := fakeHost{inodes: h.inodes, linked: map[string][]string{"/wt/deep": make([]string, MaxLinkScan+1)}}
	tr, err = Translate(set, many)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Warnings) != 1 || !strings.Contains(tr.Warnings[0].Message, "matched by this path only") {
		t.Errorf("warnings past the bound: %v", tr.Warnings)
	}
	// Without a host (golden tests, simulate) nothing is keyed by inode.
	tr, err = Translate(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.DirInodeOps != 0 || len(tr.DirInodes) != 0 {
		t.Errorf("no host: DirInodeOps %#x DirInodes %v", tr.DirInodeOps, tr.DirInodes)
	}
}

// nameKeys returns the hashes of a translation's KIND_NAME keys.
func nameKeys(tr *Translation) map[uint64]bool {
	keys := map[uint64]bool{}
	for k := range tr.Entries {
		if k.Kind == kindName {
			keys[k.Hash] = true
		}
	}
	return keys
}

// checkNameKeys fails unless tr's KIND_NAME keys are those of names, file rules' keys.
func checkNameKeys(t *testing.T, step string, tr *Translation, names ...string) {
	t.Helper()
	want := map[uint64]bool{}
	for _, n := range names {
		want[NameHash(n)] = true
		if k := (Key{Op: opFile, Kind: kindName, Hash: NameHash(n)}); tr.Entries[k] != (Value{}) {
			t.Errorf("%s: the key of %q has bits %+v, want none", step, n, tr.Entries[k])
		}
	}
	if got := nameKeys(tr); !maps.Equal(got, want) {
		t.Errorf("%s: %d name keys, want %d (of %q)", step, len(got), len(want), names)
	}
}

// TestFileNames: Names has the bits of the exact file rules' names and of the directory
// rules' directories, and no other, where every file rule is an exact path or a directory for
// any source and no allow-list applies; every bit otherwise. DirNames has the directories'
// only, and each name in a filter that is not full has its KIND_NAME key.
func TestFileNames(t *testing.T) {
	policyWith := func(file, action string) string {
		return "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: names}\n" +
			"spec:\n  nodeSelector: {matchLabels: {kubearmor.io/hostname: \"*\"}}\n  file:\n" + file +
			"  process:\n    matchDirectories:\n    - dir: /usr/bin/\n  action: " + action + "\n"
	}
	of := func(names ...string) NameFilter {
		var f NameFilter
		for _, n := range names {
			f.add(n)
		}
		return f
	}
	var all NameFilter
	all.fill()
	exact := "    matchPaths:\n    - path: /etc/shadow\n    - path: /srv/a/key.pem\n"
	long := "/srv/" + strings.Repeat("l", nameInline) // too long to be hashed by the kernel: no key
	for _, c := range []struct {
		name, file, action string
		want, dirs         NameFilter
		keys               []string
	}{
		{"exact paths only", exact, "Block", of("shadow", "key.pem"), NameFilter{}, []string{"shadow", "key.pem"}},
		{"directory rules", exact + "    matchDirectories:\n    - dir: /srv/b/\n    - dir: /srv/deep/er/\n      recursive: true\n",
			"Block", of("shadow", "key.pem", "b", "er"), of("b", "er"), []string{"shadow", "key.pem", "b", "er"}},
		{"a name too long to hash", exact + "    - path: " + long + "\n", "Block", of("shadow", "key.pem", filepath.Base(long)), NameFilter{},
			[]string{"shadow", "key.pem"}},
		{"a directory rule on /", exact + "    matchDirectories:\n    - dir: /\n      recursive: true\n", "Block", all, all, nil},
		{"a pattern", "    matchPatterns:\n    - pattern: /srv/*.key\n", "Block", all, all, nil},
		{"a fromSource rule", "    matchPaths:\n    - path: /etc/shadow\n      fromSource:\n      - path: /bin/cat\n", "Block", all, all, nil},
		{"an allow-list", exact, "Allow", all, all, nil},
	} {
		set := compile(t, policyWith(c.file, c.action), rules.DefaultPostures())
		tr, err := Translate(set, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if tr.Names != c.want {
			t.Errorf("%s: Names has %d bits, want %d (%v)", c.name, ones(tr.Names), ones(c.want), c.want)
		}
		if tr.DirNames != c.dirs {
			t.Errorf("%s: DirNames has %d bits, want %d", c.name, ones(tr.DirNames), ones(c.dirs))
		}
		checkNameKeys(t, c.name, tr, c.keys...)
	}
	// A directory rule's directory that is a mount point: its inode key is the mounted root's,
	// whose name is not the directory's.
	dirs := exact + "    matchDirectories:\n    - dir: /srv/b/\n"
	// With the mount table, the mounted root's name is added instead: a bind mount's source's
	// last component, or "/" for a filesystem's root that is not the root mount's filesystem
	// (ward.c tests it at the root of files outside the root mount).
	mp := map[string]bool{"/srv/b": true}
	rootFS := Mount{Dev: 7, Root: "/", Point: "/"}
	for _, c := range []struct {
		name   string
		mounts map[string]bool
		table  []Mount
		want   NameFilter
		dirs   []string // the directories' names; nil for a full filter
	}{
		{"a directory rule on a directory", nil, nil, of("shadow", "key.pem", "b"), []string{"b"}},
		{"a directory rule on a mount point, no mount table", mp, nil, all, nil},
		{"a directory rule on a file system's root", mp, []Mount{rootFS, {Dev: 9, Root: "/", Point: "/srv/b"}}, of("shadow", "key.pem", "b", "/"), []string{"b", "/"}},
		{"a directory rule on a bind mount", mp, []Mount{rootFS, {Dev: 7, Root: "/var/lib/kube-api-access", Point: "/srv/b"}}, of("shadow", "key.pem", "b", "kube-api-access"), []string{"b", "kube-api-access"}},
		{"a directory rule on a bind mount of the root mount's file system's root", mp, []Mount{rootFS, {Dev: 7, Root: "/", Point: "/srv/b"}}, all, nil},
		{"a directory rule on a mount point the table lacks", mp, []Mount{rootFS}, all, nil},
	} {
		host := fakeHost{inodes: map[string]uint64{"/srv/b": 5}, mounts: c.mounts, table: c.table}
		tr, err := Translate(compile(t, policyWith(dirs, "Block"), rules.DefaultPostures()), host)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if tr.Names != c.want {
			t.Errorf("%s: Names has %d bits, want %d", c.name, ones(tr.Names), ones(c.want))
		}
		wantDirs, keys := all, []string(nil)
		if c.dirs != nil {
			wantDirs, keys = of(c.dirs...), append([]string{"shadow", "key.pem"}, c.dirs...)
		}
		if tr.DirNames != wantDirs {
			t.Errorf("%s: DirNames has %d bits, want %d", c.name, ones(tr.DirNames), ones(wantDirs))
		}
		checkNameKeys(t, c.name, tr, keys...)
	}
}

// TestNameHash: the hash takes every byte of a name and its length, and nothing past its
// end, as ward.c's name_listed reads a dentry's inline buffer in four words with the bytes past
// the name's end zeroed; names alike in their length, first and last byte (which share a bit of
// the names filter) differ.
func TestNameHash(t *testing.T) {
	seen := map[uint64]string{}
	for _, n := range []string{"a", "b", "ab", "sat", "sbt", "sct", "key.pem", "key.pen", "12345678", "123456789",
		strings.Repeat("x", 31), strings.Repeat("x", 30) + "y", "x" + strings.Repeat("\x00", 7), "x\x00"} {
		h := NameHash(n)
		if o, ok := seen[h]; ok {
			t.Errorf("NameHash(%q) = NameHash(%q)", n, o)
		}
		seen[h] = n
	}
	// The kernel's words: little-endian, zero past the end, only those that hold the name's
	// bytes, mixed with the length.
	mul := uint64(nameMul)
	for _, c := range []struct {
		name  string
		words []uint64
	}{
		{"sat", []uint64{uint64('s') | uint64('a')<<8 | uint64('t')<<16}},
		{"12345678", []uint64{binary.LittleEndian.Uint64([]byte("12345678"))}},
		{"123456789", []uint64{binary.LittleEndian.Uint64([]byte("12345678")), '9'}},
	} {
		h := uint64(len(c.name)+1) * mul
		for _, w := range c.words {
			h = (h ^ w) * mul
		}
		if got, want := NameHash(c.name), h^h>>32; got != want {
			t.Errorf("NameHash(%s) = %#x, want %#x", c.name, got, want)
		}
	}
}

// TestMountTableReadOnce: a translation reads the workload's mount table once, however many
// directory rules are on mount points (each asks for the mounted root's name), and not at all
// without one.
func TestMountTableReadOnce(t *testing.T) {
	policy := func(dirs ...string) string {
		p := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: mounts}\n" +
			"spec:\n  nodeSelector: {matchLabels: {kubearmor.io/hostname: \"*\"}}\n  file:\n    matchDirectories:\n"
		for _, d := range dirs {
			p += "    - dir: " + d + "\n"
		}
		return p + "  action: Block\n"
	}
	table := []Mount{{Dev: 7, Root: "/", Point: "/"}, {Dev: 8, Root: "/", Point: "/srv/a"}, {Dev: 9, Root: "/", Point: "/srv/b"}, {Dev: 10, Root: "/", Point: "/srv/c"}}
	for _, c := range []struct {
		dirs []string
		want int
	}{
		{[]string{"/srv/a/", "/srv/b/", "/srv/c/"}, 1},
		{[]string{"/srv/d/"}, 0},
	} {
		reads := 0
		host := fakeHost{
			inodes: map[string]uint64{"/srv/a": 5, "/srv/b": 6, "/srv/c": 7, "/srv/d": 8},
			mounts: map[string]bool{"/srv/a": true, "/srv/b": true, "/srv/c": true},
			table:  table, reads: &reads,
		}
		tr, err := Translate(compile(t, policy(c.dirs...), rules.DefaultPostures()), host)
		if err != nil {
			t.Fatal(err)
		}
		if reads != c.want {
			t.Errorf("rules on %v: the mount table was read %d times, want %d", c.dirs, reads, c.want)
		}
		if c.want > 0 && !tr.Names.Has("/") {
			t.Errorf("rules on %v: the mounted roots' name \"/\" is not in the filter", c.dirs)
		}
	}
}

// TestRuleNames: the names watched before a translation are those of its filter, and none
// where the filter will be full; where they fall short (a symlink), Backend.translate watches
// what Translate found.
func TestRuleNames(t *testing.T) {
	policyWith := func(file, action string) string {
		return "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: names}\n" +
			"spec:\n  nodeSelector: {matchLabels: {kubearmor.io/hostname: \"*\"}}\n  file:\n" + file +
			"  process:\n    matchDirectories:\n    - dir: /usr/bin/\n  action: " + action + "\n"
	}
	dirs := "    matchPaths:\n    - path: /etc/shadow\n    matchDirectories:\n    - dir: /srv/b/\n"
	for _, c := range []struct {
		name, file, action string
	}{
		{"exact paths and directories", dirs, "Block"},
		{"a pattern", dirs + "    matchPatterns:\n    - pattern: /srv/*.key\n", "Block"},
		{"a fromSource rule", "    matchPaths:\n    - path: /etc/shadow\n      fromSource:\n      - path: /bin/cat\n", "Block"},
		{"an allow-list", dirs, "Allow"},
	} {
		set := compile(t, policyWith(c.file, c.action), rules.DefaultPostures())
		tr, err := Translate(set, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, want := RuleNames(set), tr.Names
		if want.Full() {
			want = NameFilter{}
		}
		if got != want {
			t.Errorf("%s: RuleNames has %d bits, want %d", c.name, ones(got), ones(want))
		}
	}
}

func ones(f NameFilter) int {
	n := 0
	for _, w := range f {
		n += bits.OnesCount64(w)
	}
	return n
}
