package events

import (
	"syscall"
	"unicode"
	"unicode/utf8"
)

// ResultText is the Result field for an access that returned errno: "Passed" for success, and
// otherwise the C library's wording ("Permission denied"), which is what KubeArmor users match on.
// Go's errno strings are the same text in lower case, so only the first letter changes.
func ResultText(errno syscall.Errno) string {
	switch errno {
	case 0:
		return "Passed"
	case syscall.EACCES:
		return "Permission denied"
	case syscall.EPERM:
		return "Operation not permitted"
	}
	s := errno.Error()
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
