package apparmor

import (
	"fmt"
	"strings"

	"github.com/wardsec/ward/internal/glob"
)

// aareSpecial are the characters AppArmor reads as pattern syntax, quoting or variables in a
// path (apparmor.d(5), "Globbing (AARE)"). A literal path from matchPaths or matchDirectories
// escapes each of them with a backslash, so that `/data/{a,b}` names exactly that file and not
// two others. `#` and `!` are not pattern characters, but escaping them costs nothing and keeps
// a path from ever reading as a comment.
const aareSpecial = `\"*?[]{}^,@#!`

// checkPrintable rejects characters that cannot be written inside a profile line at all.
func checkPrintable(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("path %q holds control character %#x, which a profile line cannot carry", s, c)
		}
	}
	return nil
}

// escapeLiteral escapes every AppArmor pattern character of a literal path.
func escapeLiteral(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(aareSpecial, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// quote wraps an AARE or a profile name in double quotes when it holds anything beyond the
// characters every AppArmor version reads unquoted. Backslash escapes keep their meaning inside
// quotes.
func quote(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._-+*?{},", c) >= 0) {
			return `"` + s + `"`
		}
	}
	return s
}

// globAARE translates a matchPatterns glob (internal/glob) into an AppArmor pattern with the same
// meaning: `*` and `?` stay within one component in both, `**` crosses components in both, and a
// negated class `[!...]` also excludes "/" as Ward's glob does. Every other character is literal
// and escaped.
func globAARE(pattern string) (string, error) {
	if _, err := glob.Compile(pattern); err != nil {
		return "", err
	}
	if err := checkPrintable(pattern); err != nil {
		return "", err
	}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			n := 1
			for i+1 < len(pattern) && pattern[i+1] == '*' {
				i++
				n++
			}
			if n > 1 {
				b.WriteString("**")
			} else {
				b.WriteString("*")
			}
		case '?':
			b.WriteByte('?')
		case '[':
			end := glob.ClassEnd(pattern, i)
			if end < 0 {
				return "", fmt.Errorf("pattern %q: unterminated character class", pattern)
			}
			class := pattern[i+1 : end]
			b.WriteByte('[')
			if class[0] == '!' || class[0] == '^' {
				b.WriteString("^/")
				class = class[1:]
			}
			for j := 0; j < len(class); j++ {
				if strings.IndexByte(`\"[]^`, class[j]) >= 0 {
					b.WriteByte('\\')
				}
				b.WriteByte(class[j])
			}
			b.WriteByte(']')
			i = end
		default:
			if strings.IndexByte(aareSpecial, c) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
