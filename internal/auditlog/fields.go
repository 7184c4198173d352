package auditlog

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stamp parses the "SECONDS.MILLIS:SERIAL):" that follows "audit(" in every record, and returns
// the time, the serial and the text after the stamp.
func Stamp(s string) (t time.Time, serial uint64, rest string, err error) {
	stamp, rest, ok := strings.Cut(s, "):")
	if !ok {
		return t, 0, "", fmt.Errorf("no end of audit(...) in %q", s)
	}
	sec, ser, ok := strings.Cut(stamp, ":")
	if !ok {
		return t, 0, "", fmt.Errorf("timestamp %q", stamp)
	}
	secs, frac, _ := strings.Cut(sec, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return t, 0, "", fmt.Errorf("timestamp %q", stamp)
	}
	var ms int64
	if frac != "" {
		if ms, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return t, 0, "", fmt.Errorf("timestamp %q", stamp)
		}
	}
	if serial, err = strconv.ParseUint(ser, 10, 64); err != nil {
		return t, 0, "", fmt.Errorf("serial %q", ser)
	}
	return time.Unix(n, ms*int64(time.Millisecond)).UTC(), serial, rest, nil
}

// Fields splits a record's `k=v k="v w" k=HEX` text into pairs. The values of hexKeys that are
// not quoted are decoded from hex where they are hex: the audit subsystem writes a string that
// holds a space, a quote or a control character that way (audit_log_untrustedstring). Text
// without a key ends the list (some kernels add a suffix). An unterminated quote ends it too:
// the last pair holds the rest of the text, and err says so.
func Fields(s string, hexKeys map[string]bool) (fields [][2]string, err error) {
	for {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if s == "" || eq <= 0 {
			return fields, nil
		}
		k := s[:eq]
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return append(fields, [2]string{k, s[1:]}), fmt.Errorf("unterminated quote in field %s", k)
			}
			v, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
			if hexKeys[k] && v != "?" && v != "(null)" {
				if b, err := hex.DecodeString(v); err == nil {
					v = string(b)
				}
			}
		}
		fields = append(fields, [2]string{k, v})
	}
}
