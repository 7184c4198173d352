package events

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// decodeFields reads a message knowing only the wire format: varints become decimal strings,
// length-delimited fields raw strings, repeated fields several values.
func decodeFields(b []byte) (map[int][]string, error) {
	out := map[int][]string{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			out[int(num)] = append(out[int(num)], strconv.FormatInt(int64(v), 10))
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			out[int(num)] = append(out[int(num)], string(v))
			b = b[n:]
		default:
			return nil, fmt.Errorf("field %d: unexpected wire type %d", num, typ)
		}
	}
	return out, nil
}
