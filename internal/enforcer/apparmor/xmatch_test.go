package apparmor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// This file replays, on the DFAs the real apparmor_parser compiles, the kernel's choice among
// profile attachments for a program an unconfined process executes (security/apparmor: domain.c
// find_attach, match.c leftmatch_fb, as in Debian's 6.1 and 6.12 kernels, which count
// differently: kernelLeftmatch). The kernel's choice is shown in the VM
// (TestOtherProfileBesideRuntime); replaying it here shows it for every path a test names,
// without a kernel.

// xmatchDFA is a compiled attachment: the flex-style tables of a profile's xmatch DFA.
type xmatchDFA struct {
	accept, base         []uint32
	def, next, check, ec []uint32
}

const (
	tableAccept = 1
	tableBase   = 2
	tableCheck  = 3
	tableDef    = 4
	tableEC     = 5
	tableNext   = 8
)

// compileAttachment compiles `profile NAME ATTACHMENT {}` and returns its xmatch DFA: the first
// DFA of the binary policy, which holds the profile's attachment before its rules.
func compileAttachment(t *testing.T, attachment string) *xmatchDFA {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p")
	if err := os.WriteFile(path, []byte("profile p "+attachment+" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(parserPath(t), "-Q", "-S", "-q", path).Output()
	if err != nil {
		t.Fatalf("apparmor_parser -Q -S %s: %v", attachment, err)
	}
	d, err := parseDFA(out)
	if err != nil {
		t.Fatalf("%s: %v", attachment, err)
	}
	return d
}

func parseDFA(blob []byte) (*xmatchDFA, error) {
	const magic = 0x1B5E783D
	start := bytes.Index(blob, binary.BigEndian.AppendUint32(nil, magic))
	if start < 0 || len(blob) < start+14 {
		return nil, fmt.Errorf("no DFA in the compiled policy")
	}
	be := binary.BigEndian
	hsize, ssize := int(be.Uint32(blob[start+4:])), int(be.Uint32(blob[start+8:]))
	if start+ssize > len(blob) {
		return nil, fmt.Errorf("DFA of %d bytes runs past the policy", ssize)
	}
	tables := map[uint16][]uint32{}
	for p := start + hsize; p+12 <= start+ssize; {
		id, width, n := be.Uint16(blob[p:]), int(be.Uint16(blob[p+2:])), int(be.Uint32(blob[p+8:]))
		p += 12
		if p+n*width > start+ssize {
			return nil, fmt.Errorf("table %d runs past the DFA", id)
		}
		vals := make([]uint32, n)
		for i := range vals {
			switch width {
			case 1:
				vals[i] = uint32(blob[p+i])
			case 2:
				vals[i] = uint32(be.Uint16(blob[p+2*i:]))
			case 4:
				vals[i] = be.Uint32(blob[p+4*i:])
			default:
				return nil, fmt.Errorf("table %d has %d-byte entries", id, width)
			}
		}
		tables[id] = vals
		p += n * width
		p = start + (p-start+7)&^7
	}
	d := &xmatchDFA{accept: tables[tableAccept], base: tables[tableBase], def: tables[tableDef],
		next: tables[tableNext], check: tables[tableCheck], ec: tables[tableEC]}
	if d.accept == nil || d.base == nil || d.def == nil || d.next == nil || d.check == nil {
		return nil, fmt.Errorf("DFA lacks a table: %v", tables)
	}
	return d, nil
}

func (d *xmatchDFA) step(state uint32, c byte) uint32 {
	i := d.base[state] & 0xffffff
	if d.ec != nil {
		i += d.ec[c]
	} else {
		i += uint32(c)
	}
	if d.check[i] == state {
		return d.next[i]
	}
	return d.def[state]
}

// kernelLeftmatch names the two versions of the kernel's leftmatch_fb that Ward meets.
type kernelLeftmatch int

const (
	// leftmatch61 is Debian's 6.1 (6.1.192): a move to a state numbered no higher than the one
	// before is a loop even when that state is not among the last 32, and then the count loses
	// more than it counted and, unsigned, wraps to its largest.
	leftmatch61 kernelLeftmatch = iota
	// leftmatch612 is Debian's 6.12 (6.12.118): such a move is a loop only when the state is
	// among the last ones (not counting the start state), so the count of a path that loops
	// nowhere is its length.
	leftmatch612
)

func (k kernelLeftmatch) String() string { return [...]string{"6.1", "6.12"}[k] }

// leftmatch is the kernel's leftmatch_fb: the state name ends in, and the count the kernel
// ranks the attachment by. The count stops where the DFA moves to a state numbered no higher
// than the one before and found among the last 32 (a loop, to the kernel), less the distance
// back to it; on 6.1 a state not among them is a loop too (above).
func (d *xmatchDFA) leftmatch(name string, k kernelLeftmatch) (state, count uint32) {
	const size = 32
	var history [size]uint32
	var pos, length uint32
	state = 1
	for i := 0; i < len(name); i++ {
		history[pos] = state
		state = d.step(state, name[i])
		if history[pos] >= state {
			adjust, p, found := uint32(0), pos, false
			for ; adjust <= length; adjust++ {
				if k == leftmatch612 && adjust == length {
					break // 6.12 looks at len entries back from pos, 6.1 at len+1
				}
				if history[p] == state {
					found = true
					break
				}
				p = (p + size - 1) % size
			}
			if found || k == leftmatch61 {
				for _, c := range []byte(name[i+1:]) {
					state = d.step(state, c)
				}
				count -= adjust
				break
			}
		}
		pos = (pos + 1) % size
		if k == leftmatch61 {
			length = (length + 1) % size
		} else {
			length = min(length+1, size)
		}
		count++
	}
	if state == 0 {
		count = 0
	}
	return state, count
}

type attachedProfile struct {
	name string
	dfa  *xmatchDFA
}

// findAttach is the kernel's find_attach for profiles with attachments and without xattrs: the
// profile whose attachment matches with the largest count, none on a tie. It also returns
// every match's count, for the failure message.
func findAttach(profiles []attachedProfile, path string, k kernelLeftmatch) (string, string) {
	var winner string
	var best uint32
	conflict := false
	var counts []string
	for _, p := range profiles {
		state, count := p.dfa.leftmatch(path, k)
		if p.dfa.accept[state]&1 == 0 { // MAY_EXEC
			continue
		}
		counts = append(counts, fmt.Sprintf("%s %d", p.name, count))
		// The kernel keeps max(count, xmatch_len); the attachments here are literal up to
		// their first pattern character, so xmatch_len is never the larger.
		switch {
		case winner != "" && count < best:
		case winner != "" && count == best:
			conflict = true
		default:
			winner, best, conflict = p.name, count, false
		}
	}
	if conflict {
		winner = ""
	}
	return winner, strings.Join(counts, ", ")
}

// TestAttachmentRanks replays which profile the kernel gives a program among Ward's host
// attachment, Ward's entry profiles and other profiles' attachments: the host attachment loses
// to every other (attachAllExcept), an entry wins over an exact path (attachment).
func TestAttachmentRanks(t *testing.T) {
	excluded := []string{"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc",
		"/usr/bin/crun", "/usr/bin/kubelet", "/usr/bin/dockerd", "/usr/sbin/apparmor_parser", "/usr/local/bin/ward"}
	host, err := attachAllExcept(excluded)
	if err != nil {
		t.Fatal(err)
	}
	// Wherever a path leaves the pattern's literal prefixes, the host attachment's count is the
	// prefix it shares with a left-out path and the byte that parts from it: never wrapped.
	hostDFA := compileAttachment(t, host)
	for _, ex := range excluded {
		for i := 1; i < len(ex); i++ {
			prefix := ex[:i]
			next := map[byte]bool{}
			for _, other := range excluded {
				if len(other) > i && strings.HasPrefix(other, prefix) {
					next[other[i]] = true
				}
			}
			for _, c := range []byte("Z#~") {
				if next[c] {
					continue
				}
				path := prefix + string(c) + "tool"
				for _, k := range []kernelLeftmatch{leftmatch61, leftmatch612} {
					if _, count := hostDFA.leftmatch(path, k); count != uint32(i+1) {
						t.Errorf("%s: %s leaves the host attachment after %q: count %d, want %d", k, path, prefix+string(c), count, i+1)
					}
				}
				break
			}
		}
	}
	entry := func(paths ...string) *xmatchDFA {
		a, err := attachment(paths)
		if err != nil {
			t.Fatal(err)
		}
		return compileAttachment(t, a)
	}
	profiles := []attachedProfile{
		{"ward-host", hostDFA},
		{"sbin", compileAttachment(t, "/usr/sbin/ward-test-distro/cat")},
		{"man", compileAttachment(t, "/usr/bin/man")},
		{"firefox", compileAttachment(t, "/usr/lib/firefox/firefox{,*[^s][^h]}")},
		{"opt", compileAttachment(t, "/opt/app/**")},
		{"local", compileAttachment(t, "/usr/local/bin/ward-tool")},
		// Entry profiles in their attached form (Render's for paths that cannot name a profile):
		// of a shared child, and of a program another profile attaches to by the same exact
		// path (a tie, neither attached, without the attachment's NUL alternative).
		{"entry", entry("/usr/bin/cat", "/usr/bin/head")},
		{"cupsd", compileAttachment(t, "/usr/sbin/cupsd")},
		{"entry-cupsd", entry("/usr/sbin/cupsd")},
		// The ties docs/apparmor.md and Limitations name: an exact path that is a left-out one
		// and one byte more, or that a left-out one continues: the host profile's count is the
		// whole path there too, and the kernel attaches neither.
		{"runcx", compileAttachment(t, "/usr/sbin/runcx")},
		{"docker", compileAttachment(t, "/usr/bin/docker")},
		{"runcxy", compileAttachment(t, "/usr/sbin/runcxy")},
	}
	want := map[string]string{
		"/usr/sbin/ward-test-distro/cat":   "sbin",
		"/usr/bin/man":                     "man",
		"/usr/lib/firefox/firefox":         "firefox",
		"/opt/app/bin/server":              "opt",
		"/usr/local/bin/ward-tool":         "local",
		"/usr/bin/cat":                     "entry",
		"/usr/bin/head":                    "entry",
		"/usr/bin/tail":                    "ward-host",
		"/bin/sh":                          "ward-host",
		"/usr/bin/containerd-shim":         "ward-host",
		"/usr/bin/containerd-shim-runc-v2": "",
		"/usr/sbin/runc":                   "",
		"/usr/sbin/apparmor_parser":        "",
		"/usr/local/bin/ward":              "",
		"/usr/sbin/runcx":                  "",
		"/usr/bin/docker":                  "",
		"/usr/sbin/runcxy":                 "runcxy",
		"/usr/sbin/cupsd":                  "entry-cupsd",
	}
	expectAttach(t, profiles, want, leftmatch61)
	// 6.12 counts a path on which the DFA loops nowhere by its length, with or without the
	// entry's NUL alternative: the entry and another profile's exact attachment of the same path
	// tie, and the kernel attaches neither (so did TestOtherProfileBesideRuntime on 6.12 before
	// entries were named by their paths, which the kernel takes before any attachment). Every
	// other path ranks as on 6.1.
	want["/usr/sbin/cupsd"] = ""
	expectAttach(t, profiles, want, leftmatch612)
}

// expectAttach checks, for each path, which of profiles findAttach gives it ("" for none).
func expectAttach(t *testing.T, profiles []attachedProfile, want map[string]string, k kernelLeftmatch) {
	t.Helper()
	for path, w := range want {
		if got, counts := findAttach(profiles, path, k); got != w {
			t.Errorf("%s: %s attaches to %q, want %q (counts: %s)", k, path, got, w, counts)
		}
	}
}

// TestLeftmatchReplaysKernel checks the replay against what the kernel did in the VM (Debian's
// 6.1 kernel). Guest scripts: `/{usr/**,[^u]**}` won over an exact attachment under /usr/sbin,
// `/usr/**` and `/**` lost to it. TestOtherProfileBesideRuntime with the host attachment
// written without its markers: the program of the other profile's pattern under /usr/sbin ran
// unconfined, and the one of its exact path in /usr/bin ran in ward-host. Without the wrapped
// count the replay would give the other profile all of them.
func TestLeftmatchReplaysKernel(t *testing.T) {
	exact := attachedProfile{"exact", compileAttachment(t, "/usr/sbin/wardx/busybox")}
	for _, c := range []struct{ attachment, want string }{
		{"/{usr/**,[^u]**}", "other"},
		{"/usr/**", "exact"},
		{"/**", "exact"},
	} {
		other := attachedProfile{"other", compileAttachment(t, c.attachment)}
		for _, order := range [][]attachedProfile{{exact, other}, {other, exact}} {
			expectAttach(t, order, map[string]string{"/usr/sbin/wardx/busybox": c.want}, leftmatch61)
		}
	}

	host, err := attachAllExcept([]string{"/usr/bin/ward-test-runtime", "/usr/sbin/apparmor_parser"})
	if err != nil {
		t.Fatal(err)
	}
	unmarked := regexp.MustCompile(`\{,\\x00m[0-9]+\}`).ReplaceAllString(host, "")
	if unmarked == host {
		t.Fatalf("no marker to take out of %s", host)
	}
	profiles := []attachedProfile{
		{"ward-host", compileAttachment(t, unmarked)},
		{"distro", compileAttachment(t, "/{usr/sbin,opt}/ward-test-distro/cat")},
		{"exact", compileAttachment(t, "/usr/bin/ward-test-exact/cat")},
	}
	expectAttach(t, profiles, map[string]string{
		"/usr/sbin/ward-test-distro/cat": "",
		"/opt/ward-test-distro/cat":      "distro",
		"/usr/bin/ward-test-exact/cat":   "ward-host",
	}, leftmatch61)
}
