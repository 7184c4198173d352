// Package glob implements the path patterns of matchPatterns: `*` matches within one path
// component, `**` across components, `?` one character other than `/`, and `[...]` a class
// (`[!...]` or `[^...]` negated). Everything else is literal. Patterns are compiled to RE2
// expressions, so matching is linear in the path whatever the pattern.
package glob

import (
	"fmt"
	"regexp"
	"strings"
)

// Glob is a compiled pattern.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// Compile parses a pattern.
func Compile(pattern string) (*Glob, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(".*")
				for i+1 < len(pattern) && pattern[i+1] == '*' {
					i++
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			end := ClassEnd(pattern, i)
			if end < 0 {
				return nil, fmt.Errorf("unterminated character class at offset %d", i)
			}
			class := pattern[i+1 : end]
			neg := false
			if class[0] == '!' || class[0] == '^' {
				neg, class = true, class[1:]
			}
			b.WriteByte('[')
			if neg {
				b.WriteString("^/")
			}
			for j := 0; j < len(class); j++ {
				if class[j] == '\\' || class[j] == '[' || class[j] == ']' || class[j] == '^' {
					b.WriteByte('\\')
				}
				b.WriteByte(class[j])
			}
			b.WriteByte(']')
			i = end
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return &Glob{pattern: pattern, re: re}, nil
}

// ClassEnd returns the index of the `]` that closes the class opened at i, or -1. A `]` right
// after the opening (or after its negation) is a literal member, as in shells. The translators
// split patterns with it, so that they and Decide agree on where a class ends.
func ClassEnd(p string, i int) int {
	j := i + 1
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		j++
	}
	if j < len(p) && p[j] == ']' {
		j++
	}
	for ; j < len(p); j++ {
		if p[j] == ']' {
			if j == i+1 {
				return -1
			}
			return j
		}
	}
	return -1
}

// Match reports whether the whole path matches.
func (g *Glob) Match(path string) bool { return g.re.MatchString(path) }

// String returns the pattern as written.
func (g *Glob) String() string { return g.pattern }

// LiteralDir returns the longest directory prefix (ending in "/") of a pattern that holds no
// pattern character: every path the pattern matches lies under it. Indexes use it so that a
// lookup only tries patterns that can match.
func LiteralDir(pattern string) string {
	meta := strings.IndexAny(pattern, "*?[")
	if meta < 0 {
		meta = len(pattern)
	}
	slash := strings.LastIndexByte(pattern[:meta], '/')
	if slash < 0 {
		return ""
	}
	return pattern[:slash+1]
}

// HasMeta reports whether s contains a pattern character.
func HasMeta(s string) bool { return strings.ContainsAny(s, "*?[") }
