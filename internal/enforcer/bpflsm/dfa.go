package bpflsm

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/wardsec/ward/internal/glob"
)

// Glob patterns are enforced in the kernel: all patterns of one workload and
// operation are compiled into one DFA over the bytes of the path, whose
// accepting states carry the patterns' action bits. The kernel steps the DFA
// along the same pass that hashes the path's prefixes and stops at the first
// byte without a transition (a dead state), so a path costs one lookup per
// byte of its longest prefix that some pattern can still match: typically the
// literal directory of the patterns and nothing for unrelated paths.

// maxDFAStates bounds the subset construction; a policy whose patterns need
// more states is refused, not approximated.
const maxDFAStates = 4096

// GlobKey is a DFA transition: from State on Byte, for one workload and
// operation (the generation is filled by the loader).
type GlobKey struct {
	Workload uint64
	Op       uint8
	State    uint32
	Byte     uint8
}

// GlobVal is the transition's target and the action bits of the target when
// it accepts.
type GlobVal struct {
	Next   uint32
	Accept uint64
}

type globToken struct {
	set  [256]bool
	star bool
}

// globTokens splits a pattern as internal/glob does: `*` within a
// component, `**` across components, `?` one byte other than `/`, `[...]` a
// class, anything else literal. Classes are decided by the same regular
// expression fragment internal/glob builds, tested on every byte.
func globTokens(pattern string) ([]globToken, error) {
	var toks []globToken
	notSlash := func() (s [256]bool) {
		for i := range s {
			s[i] = i != '/'
		}
		return
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				var all [256]bool
				for j := range all {
					all[j] = true
				}
				toks = append(toks, globToken{set: all, star: true})
				for i+1 < len(pattern) && pattern[i+1] == '*' {
					i++
				}
			} else {
				toks = append(toks, globToken{set: notSlash(), star: true})
			}
		case '?':
			toks = append(toks, globToken{set: notSlash()})
		case '[':
			end := glob.ClassEnd(pattern, i)
			if end < 0 {
				return nil, fmt.Errorf("unterminated character class at offset %d", i)
			}
			class := pattern[i+1 : end]
			var b strings.Builder
			b.WriteString("^[")
			if class[0] == '!' || class[0] == '^' {
				b.WriteString("^/")
				class = class[1:]
			}
			for j := 0; j < len(class); j++ {
				if class[j] == '\\' || class[j] == '[' || class[j] == ']' || class[j] == '^' {
					b.WriteByte('\\')
				}
				b.WriteByte(class[j])
			}
			b.WriteString("]$")
			re, err := regexp.Compile(b.String())
			if err != nil {
				return nil, err
			}
			var t globToken
			for j := 0; j < 256; j++ {
				t.set[j] = re.MatchString(string([]byte{byte(j)}))
			}
			toks = append(toks, t)
			i = end
		default:
			var t globToken
			t.set[c] = true
			toks = append(toks, t)
		}
	}
	return toks, nil
}

type globPattern struct {
	toks []globToken
	bits uint64
}

type nfaPos struct{ p, i int }

// buildDFA compiles patterns into transitions from state 0.
func buildDFA(pats []globPattern) (map[uint32]map[uint8]GlobVal, error) {
	closure := func(set map[nfaPos]bool) map[nfaPos]bool {
		stack := make([]nfaPos, 0, len(set))
		for p := range set {
			stack = append(stack, p)
		}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			toks := pats[x.p].toks
			if x.i < len(toks) && toks[x.i].star {
				y := nfaPos{x.p, x.i + 1}
				if !set[y] {
					set[y] = true
					stack = append(stack, y)
				}
			}
		}
		return set
	}
	name := func(set map[nfaPos]bool) string {
		parts := make([]string, 0, len(set))
		for x := range set {
			parts = append(parts, strconv.Itoa(x.p)+"."+strconv.Itoa(x.i))
		}
		sort.Strings(parts)
		return strings.Join(parts, ",")
	}
	accept := func(set map[nfaPos]bool) uint64 {
		var b uint64
		for x := range set {
			if x.i == len(pats[x.p].toks) {
				b |= pats[x.p].bits
			}
		}
		return b
	}
	start := map[nfaPos]bool{}
	for p := range pats {
		start[nfaPos{p, 0}] = true
	}
	start = closure(start)
	ids := map[string]uint32{name(start): 0}
	sets := []map[nfaPos]bool{start}
	out := map[uint32]map[uint8]GlobVal{}
	for s := 0; s < len(sets); s++ {
		for c := 0; c < 256; c++ {
			next := map[nfaPos]bool{}
			for x := range sets[s] {
				toks := pats[x.p].toks
				if x.i >= len(toks) || !toks[x.i].set[c] {
					continue
				}
				if toks[x.i].star {
					next[x] = true
				} else {
					next[nfaPos{x.p, x.i + 1}] = true
				}
			}
			if len(next) == 0 {
				continue
			}
			next = closure(next)
			n := name(next)
			id, ok := ids[n]
			if !ok {
				if len(sets) >= maxDFAStates {
					return nil, fmt.Errorf("patterns need more than %d DFA states", maxDFAStates)
				}
				id = uint32(len(sets))
				ids[n] = id
				sets = append(sets, next)
			}
			if out[uint32(s)] == nil {
				out[uint32(s)] = map[uint8]GlobVal{}
			}
			out[uint32(s)][uint8(c)] = GlobVal{Next: id, Accept: accept(next)}
		}
	}
	return out, nil
}
