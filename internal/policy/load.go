package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileResult is what one file yields: its policies, or the errors that kept all of them out.
type FileResult struct {
	File     string
	Policies []Policy
	Warnings []Warning
	Err      error // Errors; nil when Policies may be used
}

// isPolicyFile says which files in a directory are read; files named explicitly are read
// whatever their name.
func isPolicyFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// LoadFiles parses each file, and each policy file under each directory (recursively, in lexical
// order), separately: one bad file does not keep the others out. A policy defined in two files
// is an error in the second.
func LoadFiles(paths ...string) []FileResult {
	var results []FileResult
	for _, p := range paths {
		results = append(results, loadPath(p)...)
	}
	seen := map[string]Source{}
	for i := range results {
		r := &results[i]
		if r.Err != nil {
			continue
		}
		if err := Duplicates(seen, r.File, r.Policies); err != nil {
			r.Policies, r.Err = nil, err
			continue
		}
		for _, p := range r.Policies {
			seen[p.Key()] = p.Source
		}
	}
	return results
}

// Duplicates refuses the policies of file whose key another file in defined (key -> where it is
// defined) has already: the first definition stays, the second is the error.
func Duplicates(defined map[string]Source, file string, ps []Policy) error {
	var errs Errors
	for _, p := range ps {
		if first, dup := defined[p.Key()]; dup && first.File != file {
			errs = append(errs, &Error{File: file, Line: p.Source.Line, Doc: p.Source.Doc, Field: "metadata.name",
				Value: p.Name, Msg: fmt.Sprintf("policy %s is defined twice (first in %s:%d)", p.Key(), first.File, first.Line)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Load reads files and directories as LoadFiles does and returns all their policies, or, if any
// file has a problem, no policies and every file's errors.
func Load(paths ...string) ([]Policy, []Warning, error) {
	var (
		policies []Policy
		warns    []Warning
		errs     Errors
	)
	for _, r := range LoadFiles(paths...) {
		warns = append(warns, r.Warnings...)
		var es Errors
		if errors.As(r.Err, &es) {
			errs = append(errs, es...)
		} else if r.Err != nil {
			errs = append(errs, &Error{File: r.File, Msg: r.Err.Error()})
		}
		policies = append(policies, r.Policies...)
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, warns, errs
	}
	return policies, warns, nil
}

func loadPath(p string) []FileResult {
	info, err := os.Stat(p)
	if err != nil {
		return []FileResult{{File: p, Err: Errors{fileError(p, err)}}}
	}
	if !info.IsDir() {
		return []FileResult{loadFile(p)}
	}
	files, errs := Files(p)
	results := make([]FileResult, 0, len(files)+len(errs))
	for _, e := range errs {
		results = append(results, FileResult{File: e.File, Err: Errors{e}})
	}
	for _, f := range files {
		results = append(results, loadFile(f))
	}
	if len(results) == 0 {
		results = append(results, FileResult{File: p, Warnings: []Warning{{File: p, Msg: "no policy files (*.yaml, *.yml, *.json) in this directory"}}})
	}
	return results
}

// Files lists the policy files under dir: recursively, in lexical order, *.yaml, *.yml and
// *.json, hidden entries skipped. The errors name the entries that could not be read.
func Files(dir string) ([]string, []*Error) {
	var files []string
	var errs []*Error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fileError(path, err))
			return nil
		}
		// Hidden entries are skipped: a Kubernetes ConfigMap volume holds each file twice, once
		// through a symlink and once under "..<timestamp>/".
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isPolicyFile(d.Name()) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				return nil
			}
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		errs = append(errs, fileError(dir, err))
	}
	return files, errs
}

func loadFile(p string) FileResult {
	data, err := os.ReadFile(p)
	if err != nil {
		return FileResult{File: p, Err: Errors{fileError(p, err)}}
	}
	ps, ws, err := Parse(p, data)
	return FileResult{File: p, Policies: ps, Warnings: ws, Err: err}
}

// fileError drops the operation and path that os errors repeat: the file is already named.
func fileError(p string, err error) *Error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{File: p, Msg: err.Error()}
}
