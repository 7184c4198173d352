package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work done on one document. Aliases let a small YAML file name the same
// subtree many times over (the "billion laughs"); counting visited nodes stops that expansion.
// A large real policy has a few thousand nodes.
const maxNodes = 100_000

// maxDepth bounds nesting where the Go type does not (values handed to a JSON unmarshaler), so
// that an anchor inside its own value ("&a [*a]") cannot recurse without end.
const maxDepth = 100

// maxErrors is how many errors one document reports; past that they are noise.
const maxErrors = 100

// docState collects what is learnt while decoding one document: its errors and warnings, and
// the line of every field path, so that later checks can point at the line of a value.
type docState struct {
	file  string
	doc   int
	errs  Errors
	warns []Warning
	lines map[string]int
	nodes int
	// decoded is set once the walker is done; the fields it reported are in bad, so that the
	// checks that follow do not report the same mistake again as a missing or empty value.
	decoded bool
	bad     map[string]bool
}

func newDocState(file string, doc int) *docState {
	return &docState{file: file, doc: doc, lines: map[string]int{}, bad: map[string]bool{}}
}

func (d *docState) errorAt(line int, field, value, format string, args ...any) {
	if !d.decoded {
		d.bad[field] = true
	} else if d.covered(field) {
		return
	}
	if len(d.errs) >= maxErrors {
		if len(d.errs) == maxErrors {
			d.errs = append(d.errs, &Error{File: d.file, Line: line, Doc: d.doc,
				Msg: fmt.Sprintf("too many errors: only the first %d are shown", maxErrors)})
		}
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Doc: d.doc, Field: field, Value: value,
		Msg: fmt.Sprintf(format, args...)})
}

// covered reports whether the walker already reported a problem at field, inside it or around it.
func (d *docState) covered(field string) bool {
	for b := range d.bad {
		if b == field || strings.HasPrefix(b, field+".") || strings.HasPrefix(b, field+"[") ||
			strings.HasPrefix(field, b+".") || strings.HasPrefix(field, b+"[") {
			return true
		}
	}
	return false
}

// errorf reports a problem with the field at path, at the line where that field (or the nearest
// enclosing one) was written.
func (d *docState) errorf(field, value, format string, args ...any) {
	d.errorAt(d.lineOf(field), field, value, format, args...)
}

func (d *docState) warnf(field, value, format string, args ...any) {
	d.warns = append(d.warns, Warning{File: d.file, Line: d.lineOf(field), Doc: d.doc, Field: field,
		Value: value, Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of field, or of its nearest written parent: a missing required field
// is reported where its parent item starts.
func (d *docState) lineOf(field string) int {
	for field != "" {
		if l, ok := d.lines[field]; ok {
			return l
		}
		field = parentPath(field)
	}
	return d.lines[""]
}

// written reports whether field appeared in the document, which tells "severity: 0" apart from
// no severity at all.
func (d *docState) written(field string) bool {
	_, ok := d.lines[field]
	return ok
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// field is one JSON-visible field of a struct, with embedded ",inline" structs flattened.
type field struct {
	name  string
	index []int
}

type structInfo struct {
	fields []field
	byName map[string]int
	names  string // for "allowed: ..." messages, in declaration order
}

var structCache sync.Map // reflect.Type -> *structInfo

func structFields(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			// encoding/json inlines an untagged embedded struct; ",inline" is the Kubernetes
			// spelling of the same thing.
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			si.byName[name] = len(si.fields)
			si.fields = append(si.fields, field{name: name, index: idx})
		}
	}
	walk(t, nil)
	names := make([]string, len(si.fields))
	for i, f := range si.fields {
		names[i] = f.name
	}
	si.names = strings.Join(names, ", ")
	actual, _ := structCache.LoadOrStore(t, si)
	return actual.(*structInfo)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decode walks node n against the Go value v, following JSON tags exactly as encoding/json would,
// and fills v. Unlike a plain Unmarshal it reports every unknown field, duplicate key and kind
// mismatch with its path and line instead of dropping or stopping at the first.
func (d *docState) decode(n *yaml.Node, v reflect.Value, path string) {
	n = d.resolve(n, path)
	if n == nil {
		return
	}
	t := v.Type()
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(unmarshalerType) {
		d.decodeUnmarshaler(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Interface:
		if g, ok := d.generic(n, path, 0); ok && g != nil {
			v.Set(reflect.ValueOf(g))
		}
	default:
		d.decodeScalar(n, v, path)
	}
}

// resolve follows aliases and charges the node to the document's budget; nil means stop.
func (d *docState) resolve(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.nodes++
	if d.nodes == maxNodes+1 {
		d.errorf(path, "", "document too large: more than %d nodes after expanding aliases", maxNodes)
	}
	if n == nil || d.nodes > maxNodes {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a timestamp"
	case "!!binary":
		return "binary data"
	}
	return "a value tagged " + n.Tag
}

// mappingKeys iterates over the keys of a mapping node, reporting merge keys, non-scalar keys
// and duplicates, and yields each usable key with its value.
func (d *docState) mappingKeys(n *yaml.Node, path string, bracket bool, yield func(key string, line int, val *yaml.Node, keyPath string)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.errorAt(k.Line, path, "", "expected a string key, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorAt(k.Line, path, "<<", "merge keys (<<) are not supported: write the fields out")
			continue
		}
		var kp string
		if bracket {
			kp = path + "[" + k.Value + "]"
		} else {
			kp = joinPath(path, k.Value)
		}
		if first, dup := seen[k.Value]; dup {
			d.errorAt(k.Line, kp, k.Value, "duplicate field %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		yield(k.Value, k.Line, val, kp)
	}
}

func (d *docState) expect(n *yaml.Node, kind yaml.Kind, path string) bool {
	if n.Kind == kind {
		return true
	}
	if isNull(n) {
		return false // an empty section is the same as an absent one
	}
	want := "a mapping"
	if kind == yaml.SequenceNode {
		want = "a list"
	}
	hint := ""
	if presetItemRe.MatchString(path) && n.Kind == yaml.ScalarNode {
		// An older form KubeArmor's CRD refuses too: presets items are {name, action}.
		hint = fmt.Sprintf(" (write - name: %s; KubeArmor's CRD takes presets as {name, action} as well)", n.Value)
	}
	d.errorAt(n.Line, path, n.Value, "expected %s, got %s%s", want, describe(n), hint)
	return false
}

var presetItemRe = regexp.MustCompile(`^spec\.presets\[\d+\]$`)

var ruleSourceRe = regexp.MustCompile(`^spec\.(process|file|network|capabilities)\..*\.fromSource\[\d+\]$`)

// unknownFieldHint says more about unknown fields that KubeArmor's own older files use, each of
// which a KubeArmor API server (strict field validation, kubectl's default) refuses too, and
// suggests the field a typo meant.
func unknownFieldHint(path, key, allowed string) string {
	switch {
	case key == "dir" && ruleSourceRe.MatchString(path):
		return "; fromSource takes dir only in syscalls rules (KubeArmor's CRD has no dir here either, and its API server refuses the field): name each program by path"
	case path == "spec" && key == "selinux":
		return "; spec.selinux (matchMountedVolumes) belongs to an early KubeArmor schema that its CRDs no longer have, and its API server refuses the field: write file rules (spec.file), which the SELinux backend enforces for host policies"
	case path == "spec" && key == "fromSource":
		return "; fromSource belongs on a rule, such as spec.file.matchPaths[0].fromSource (KubeArmor's CRDs have no spec.fromSource either)"
	}
	if s := suggest(key, strings.Split(allowed, ", ")); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

func (d *docState) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.MappingNode, path) {
		return
	}
	si := structFields(v.Type())
	d.mappingKeys(n, path, false, func(key string, line int, val *yaml.Node, kp string) {
		i, ok := si.byName[key]
		if !ok {
			d.errorAt(line, kp, key, "unknown field %q; allowed: %s%s", key, si.names, unknownFieldHint(path, key, si.names))
			return
		}
		if r := d.resolveAlias(val); r != nil && isNull(r) {
			// A key with no value is an absent key, as the API server treats it (public
			// KubeArmor templates carry "severity:" with nothing after it). Recording no line
			// keeps the checks from reading it as a written zero.
			d.warns = append(d.warns, Warning{File: d.file, Line: line, Doc: d.doc, Field: kp,
				Msg: "no value: treated as not set (inherited or defaulted); remove the key or give it a value"})
			return
		}
		d.lines[kp] = line
		d.decode(val, v.FieldByIndex(si.fields[i].index), kp)
	})
}

// resolveAlias follows aliases without charging the node budget.
func (d *docState) resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (d *docState) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.MappingNode, path) {
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.errorAt(n.Line, path, "", "cannot decode a map with %s keys", t.Key())
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	d.mappingKeys(n, path, true, func(key string, line int, val *yaml.Node, kp string) {
		d.lines[kp] = line
		e := reflect.New(t.Elem()).Elem()
		d.decode(val, e, kp)
		m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
	})
	v.Set(m)
}

func (d *docState) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.SequenceNode, path) {
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		d.lines[ip] = item.Line
		d.decode(item, s.Index(i), ip)
	}
	v.Set(s)
}

func (d *docState) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorAt(n.Line, path, "", "expected %s, got %s", scalarWant(v.Kind()), describe(n))
		return
	}
	tag := n.ShortTag()
	if tag == "!!null" {
		v.SetZero()
		return
	}
	mismatch := func() {
		msg := fmt.Sprintf("expected %s, got %s", scalarWant(v.Kind()), describe(n))
		if v.Kind() == reflect.String {
			msg += fmt.Sprintf(": quote it (%q) if a string is meant", n.Value)
		}
		d.errorAt(n.Line, path, n.Value, "%s", msg)
	}
	switch v.Kind() {
	case reflect.String:
		// A timestamp-looking value is still the string the author wrote.
		if tag != "!!str" && tag != "!!timestamp" {
			mismatch()
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			mismatch()
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil {
			if tag == "!!int" {
				d.errorAt(n.Line, path, n.Value, "%s is out of range", n.Value)
				return
			}
			mismatch()
			return
		}
		if v.OverflowInt(i) {
			d.errorAt(n.Line, path, n.Value, "%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			if tag == "!!int" {
				d.errorAt(n.Line, path, n.Value, "%s is out of range", n.Value)
				return
			}
			mismatch()
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil {
			mismatch()
			return
		}
		v.SetFloat(f)
	default:
		d.errorAt(n.Line, path, "", "cannot decode into %s", v.Type())
	}
}

func scalarWant(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a value"
}

// decodeUnmarshaler hands a leaf with its own JSON decoding (metav1.Time and friends) its value
// as JSON, so that it means exactly what it would mean to the API server.
func (d *docState) decodeUnmarshaler(n *yaml.Node, v reflect.Value, path string) {
	g, ok := d.generic(n, path, 0)
	if !ok {
		return
	}
	b, err := json.Marshal(g)
	if err != nil {
		d.errorAt(n.Line, path, n.Value, "cannot represent as JSON: %v", err)
		return
	}
	if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
		d.errorAt(n.Line, path, n.Value, "invalid value: %v", err)
	}
}

// generic converts a node to the value encoding/json would produce for the same JSON.
func (d *docState) generic(n *yaml.Node, path string, depth int) (any, bool) {
	n = d.resolve(n, path)
	if n == nil {
		return nil, false
	}
	if depth > maxDepth {
		d.errorAt(n.Line, path, "", "nested more than %d levels deep", maxDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		d.mappingKeys(n, path, false, func(key string, line int, val *yaml.Node, kp string) {
			g, gok := d.generic(val, kp, depth+1)
			ok = ok && gok
			m[key] = g
		})
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			g, ok := d.generic(item, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if !ok {
				return nil, false
			}
			s[i] = g
		}
		return s, true
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i, true
			}
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return f, true
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, true
			}
			d.errorAt(n.Line, path, n.Value, "%s is not a finite number", n.Value)
			return nil, false
		}
		return n.Value, true
	}
	d.errorAt(n.Line, path, "", "unexpected %s", describe(n))
	return nil, false
}
