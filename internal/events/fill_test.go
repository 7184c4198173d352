package events

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fill sets every field of m to a non-zero value derived from its number.
func fill(m proto.Message) {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		n := int64(f.Number())
		switch {
		case f.IsMap():
			mp := r.Mutable(f).Map()
			mp.Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString(fmt.Sprint("v", n)))
		case f.IsList():
			l := r.Mutable(f).List()
			l.Append(protoreflect.ValueOfString(fmt.Sprint("a", n)))
			l.Append(protoreflect.ValueOfString(fmt.Sprint("b", n)))
		case f.Kind() == protoreflect.MessageKind:
			sub := r.Mutable(f).Message()
			fill(sub.Interface())
		case f.Kind() == protoreflect.StringKind:
			r.Set(f, protoreflect.ValueOfString(fmt.Sprintf("%s-%d", f.Name(), n)))
		case f.Kind() == protoreflect.Int32Kind:
			r.Set(f, protoreflect.ValueOfInt32(int32(n*11)))
		case f.Kind() == protoreflect.Int64Kind:
			r.Set(f, protoreflect.ValueOfInt64(n*1_000_003))
		default:
			panic(fmt.Sprintf("fill: unhandled kind %v", f.Kind()))
		}
	}
}
