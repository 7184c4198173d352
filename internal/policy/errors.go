package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a policy document. It names the file, the line, the 1-based document
// index in a multi-document file and the field path (for example spec.file.matchPaths[0].path),
// so that a user can go straight to it.
type Error struct {
	File  string `json:"file,omitempty"`
	Line  int    `json:"line,omitempty"`
	Doc   int    `json:"doc,omitempty"`
	Field string `json:"field,omitempty"`
	// Value is the offending value as written, when there is one.
	Value string `json:"value,omitempty"`
	Msg   string `json:"message"`
}

// Error formats "FILE:LINE: doc N: FIELD.PATH: message"; the line, document and field parts are
// left out when unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.File != "" || e.Line > 0 {
		b.WriteString(": ")
	}
	if e.Doc > 0 {
		fmt.Fprintf(&b, "doc %d: ", e.Doc)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a set of documents, sorted by file and line.
type Errors []*Error

// Error joins the errors with newlines, one problem a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sort orders errors by file, then line, then document; errors at the same place keep the order
// in which they were found (the order of the fields in the document).
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Doc, b.Doc))
	})
}

// Warning is something that is accepted but probably not what the author meant, or is written
// in a form KubeArmor itself would refuse. It has the same fields as Error.
type Warning Error

// String formats "FILE:LINE: doc N: FIELD: warning: message".
func (w Warning) String() string {
	e := Error(w)
	e.Msg = "warning: " + e.Msg
	return e.Error()
}

func sortWarnings(ws []Warning) {
	slices.SortStableFunc(ws, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Doc, b.Doc))
	})
}
