// Package policystore holds the accepted policies of standalone mode: those of the watched
// policy directory and those applied through the gRPC PolicyService (kept in the state
// directory across restarts). Each carries a version, so the reconcile recompiles only what a
// change concerns.
package policystore

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/google/renameio/v2"

	"github.com/wardsec/ward/api/policypb"
	"github.com/wardsec/ward/internal/policy"
)

// Store holds the accepted policies from both sources: the watched directory and the
// PolicyService. Each file, and each policy sent over gRPC, is accepted whole or not at all; a
// rejected change leaves what was accepted before in force.
//
// Every accepted policy carries a version that changes whenever its content may have, so that
// the reconcile recompiles only the workloads a change concerns.
type Store struct {
	dir      string
	stateDir string

	mu    sync.Mutex
	gen   uint64
	files map[string]storedFile // accepted policies per file of the directory
	// rejected remembers the content of files refused as they stand, so an unchanged bad file
	// is not parsed and reported again at every reconcile.
	rejected map[string][sha256.Size]byte
	rpc      map[string]Versioned // accepted policies from the PolicyService, by key
	// defined maps each policy of files to where it is defined, kept with files: a policy
	// edit's reload checks the changed file against it (policy.Duplicates), and building it
	// from every file then made a fifth of the round's garbage with 1,000 policies.
	defined map[string]policy.Source
}

type storedFile struct {
	sum      [sha256.Size]byte
	policies []policy.Policy
	// versioned is what Versioned returns of the file: its policies by pointer, with their keys
	// and their Version ("file:" and the store's generation at acceptance), made once.
	versioned []Versioned
}

// Versioned is an accepted policy, its key and its version: equal versions mean equal content.
// Policy is shared with the store, which never changes an accepted policy: a change is a new
// one. Neither may its readers.
type Versioned struct {
	Policy  *policy.Policy
	Key     string
	Version string
}

// NewVersioned returns p with its key and version v. Whoever made p must not change it afterwards.
func NewVersioned(p *policy.Policy, v string) Versioned {
	return Versioned{Policy: p, Key: p.Key(), Version: v}
}

// New returns a store reading dir and keeping gRPC-applied policies under stateDir.
func New(dir, stateDir string) *Store {
	return &Store{dir: dir, stateDir: stateDir, files: map[string]storedFile{},
		rejected: map[string][sha256.Size]byte{}, rpc: map[string]Versioned{}, defined: map[string]policy.Source{}}
}

// ReloadResult says what a directory reload did.
type ReloadResult struct {
	Changed  bool
	Accepted []string // files accepted (new or changed content)
	Rejected []error  // one per rejected file; those files keep their previous policies
	Removed  []string
	Warnings []policy.Warning
}

// policyFiles lists the policy files under dir as policy.LoadFiles reads a directory.
func policyFiles(dir string) ([]string, []error) {
	files, perrs := policy.Files(dir)
	errs := make([]error, len(perrs))
	for i, e := range perrs {
		errs[i] = fmt.Errorf("policy directory: %w", e)
	}
	return files, errs
}

// ReloadDir reads the policy directory again. Only files whose content changed are parsed. A
// missing directory holds no policies. A policy defined in two files is refused in the file that
// defined it last: the one already in force stays.
func (s *Store) ReloadDir() ReloadResult {
	var res ReloadResult
	var files []string
	if _, err := os.Stat(s.dir); err == nil {
		var errs []error
		files, errs = policyFiles(s.dir)
		res.Rejected = append(res.Rejected, errs...)
	} else if !errors.Is(err, os.ErrNotExist) {
		res.Rejected = append(res.Rejected, fmt.Errorf("policy directory: %w", err))
		return res
	}
	return s.reload(res, files, func(string) bool { return true })
}

// ReloadPaths reads again only what the watcher reported: policy files, and directories below
// the policy directory (walked). A change costs the same with 10 or 10,000 policies loaded. It
// returns ok=false, having done nothing, when a path is anything else (a hidden entry, as when a
// ConfigMap volume swaps its "..data" link, or the directory itself): then only ReloadDir knows.
func (s *Store) ReloadPaths(paths []string) (ReloadResult, bool) {
	var res ReloadResult
	var files, scopes []string
	for _, p := range paths {
		rel, err := filepath.Rel(s.dir, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return res, false
		}
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			if strings.HasPrefix(part, ".") {
				return res, false
			}
		}
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			fs, errs := policyFiles(p)
			files = append(files, fs...)
			res.Rejected = append(res.Rejected, errs...)
		case err == nil || errors.Is(err, os.ErrNotExist):
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
				if err == nil {
					files = append(files, p)
				}
			default:
				if err != nil {
					// Gone, and not a policy file's name: it may have been a directory.
					scopes = append(scopes, p)
					continue
				}
				continue // another kind of file: not read, as in ReloadDir
			}
		default:
			return res, false
		}
		scopes = append(scopes, p)
	}
	sort.Strings(files)
	files = slices.Compact(files)
	// reload asks for every accepted file: the directories' prefixes are built once.
	prefixes := make([]string, len(scopes))
	for i, sc := range scopes {
		prefixes[i] = sc + string(filepath.Separator)
	}
	inScope := func(f string) bool {
		for i, sc := range scopes {
			if f == sc || strings.HasPrefix(f, prefixes[i]) {
				return true
			}
		}
		return false
	}
	return s.reload(res, files, inScope), true
}

// reload brings the accepted files within scope in line with files, the policy files that exist
// there now.
func (s *Store) reload(res ReloadResult, files []string, inScope func(string) bool) ReloadResult {
	type content struct {
		file string
		data []byte
		sum  [sha256.Size]byte
	}
	var changed, stillRejected []content
	seen := make(map[string]bool, len(files))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range files {
		seen[f] = true
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				seen[f] = false // removed since the walk
				continue
			}
			res.Rejected = append(res.Rejected, fmt.Errorf("%s: %w", f, err))
			continue
		}
		c := content{file: f, data: data, sum: sha256.Sum256(data)}
		if prev, ok := s.files[f]; ok && prev.sum == c.sum {
			continue
		}
		if sum, ok := s.rejected[f]; ok && sum == c.sum {
			stillRejected = append(stillRejected, c)
			continue
		}
		changed = append(changed, c)
	}
	for f := range s.files {
		if !seen[f] && inScope(f) {
			s.forget(f)
			delete(s.files, f)
			res.Removed = append(res.Removed, f)
			res.Changed = true
		}
	}
	for f := range s.rejected {
		if !seen[f] && inScope(f) {
			delete(s.rejected, f)
		}
	}
	sort.Strings(res.Removed)
	if len(res.Removed) > 0 || len(changed) > 0 {
		// A file refused for defining a policy twice may be fine now that another changed; the
		// ones out of scope are read again, since they are not in files.
		for f, sum := range s.rejected {
			if !seen[f] {
				if data, err := os.ReadFile(f); err == nil && sha256.Sum256(data) == sum {
					stillRejected = append(stillRejected, content{file: f, data: data, sum: sum})
				}
			}
		}
		changed = append(changed, stillRejected...)
		sort.Slice(changed, func(i, j int) bool { return changed[i].file < changed[j].file })
	}
	for _, c := range changed {
		ps, warns, err := policy.Parse(c.file, c.data)
		res.Warnings = append(res.Warnings, warns...)
		if err == nil {
			err = policy.Duplicates(s.defined, c.file, ps)
		}
		if err != nil {
			s.rejected[c.file] = c.sum
			res.Rejected = append(res.Rejected, err)
			continue
		}
		delete(s.rejected, c.file)
		if prev, ok := s.files[c.file]; ok && samePolicies(prev.policies, ps) {
			// Same policies, other bytes (a comment): nothing to recompile.
			prev.sum = c.sum
			s.files[c.file] = prev
			continue
		}
		s.forget(c.file)
		s.gen++
		sf := storedFile{sum: c.sum, policies: ps, versioned: make([]Versioned, len(ps))}
		for i := range ps {
			sf.versioned[i] = NewVersioned(&ps[i], "file:"+strconv.FormatUint(s.gen, 10))
			s.defined[sf.versioned[i].Key] = ps[i].Source
		}
		s.files[c.file] = sf
		res.Accepted = append(res.Accepted, c.file)
		res.Changed = true
	}
	return res
}

// forget drops file f's policies from s.defined. The caller holds s.mu.
func (s *Store) forget(f string) {
	for _, v := range s.files[f].versioned {
		if s.defined[v.Key].File == f {
			delete(s.defined, v.Key)
		}
	}
}

func samePolicies(a, b []policy.Policy) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// Policies returns every accepted policy, directory first. A policy sent over gRPC with the
// key of a directory policy is shadowed by the file, which the operator controls on disk.
func (s *Store) Policies() []policy.Policy {
	vs := s.Versioned()
	out := make([]policy.Policy, len(vs))
	for i := range vs {
		out[i] = *vs[i].Policy
	}
	return out
}

// Versioned returns what Policies returns, with each policy's version.
//
// Every round of the reconcile calls it: what it allocates is sized once (with 1,000 policies a
// growing slice, a map of every key and a version string per file made most of a policy edit's
// garbage).
func (s *Store) Versioned() []Versioned {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.rpc)
	files := make([]string, 0, len(s.files))
	for f, sf := range s.files {
		files = append(files, f)
		n += len(sf.versioned)
	}
	sort.Strings(files)
	out := make([]Versioned, 0, n)
	for _, f := range files {
		out = append(out, s.files[f].versioned...)
	}
	if len(s.rpc) == 0 {
		return out
	}
	seen := make(map[string]bool, len(out))
	for i := range out {
		seen[out[i].Key] = true
	}
	keys := make([]string, 0, len(s.rpc))
	for k := range s.rpc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !seen[k] {
			out = append(out, s.rpc[k])
		}
	}
	return out
}

// policyEvent is the PolicyService payload (what `karmor vm policy add` sends).
type policyEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// stored is a gRPC-applied policy as kept in the state directory.
type stored struct {
	Kind   policy.Kind     `json:"kind"`
	Object json.RawMessage `json:"object"`
}

func (s *Store) rpcDir() string { return filepath.Join(s.stateDir, "policies") }

func stateFileName(key string) string {
	r := strings.NewReplacer("/", "_", "\\", "_", "..", "_")
	return r.Replace(key) + ".json"
}

// Restore reloads the gRPC-applied policies kept in the state directory. Files that no longer
// parse (for example after a downgrade) are reported and left on disk untouched.
func (s *Store) Restore() []error {
	entries, err := os.ReadDir(s.rpcDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return []error{fmt.Errorf("restore policies: %w", err)}
	}
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(s.rpcDir(), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("restore policy: %w", err))
			continue
		}
		var st stored
		if err := json.Unmarshal(b, &st); err != nil {
			errs = append(errs, fmt.Errorf("restore policy %s: %w", path, err))
			continue
		}
		p, _, err := policy.ParseObjectKind(path, st.Object, st.Kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("restore policy %s: %w", path, err))
			continue
		}
		s.gen++
		s.rpc[p.Key()] = NewVersioned(&p, "rpc:"+strconv.FormatUint(s.gen, 10))
	}
	return errs
}

// ApplyEvent handles one PolicyService request for a kind. It returns the status KubeArmor's
// clients expect and, for Invalid and Failure, the reason.
func (s *Store) ApplyEvent(kind policy.Kind, payload []byte) (policypb.PolicyStatus, error) {
	var ev policyEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return policypb.PolicyStatus_Invalid, fmt.Errorf("payload is not a policy event {\"type\":...,\"object\":...}: %w", err)
	}
	if len(ev.Object) == 0 {
		return policypb.PolicyStatus_Invalid, errors.New("payload has no object")
	}
	typ := strings.ToUpper(ev.Type)
	if typ != "ADDED" && typ != "MODIFIED" && typ != "DELETED" {
		return policypb.PolicyStatus_Invalid, fmt.Errorf("type %q: allowed are ADDED, MODIFIED, DELETED", ev.Type)
	}
	p, _, err := policy.ParseObjectKind("grpc:"+string(kind), ev.Object, kind)
	if err != nil {
		if typ != "DELETED" {
			return policypb.PolicyStatus_Invalid, err
		}
		// A delete only needs the identity; the spec may be empty.
		p, err = identityOnly(kind, ev.Object)
		if err != nil {
			return policypb.PolicyStatus_Invalid, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := p.Key()
	path := filepath.Join(s.rpcDir(), stateFileName(key))
	_, exists := s.rpc[key]
	if typ == "DELETED" {
		if !exists {
			return policypb.PolicyStatus_NotExist, nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return policypb.PolicyStatus_Failure, fmt.Errorf("delete policy: %w", err)
		}
		delete(s.rpc, key)
		return policypb.PolicyStatus_Deleted, nil
	}
	b, err := json.Marshal(stored{Kind: p.Kind, Object: ev.Object})
	if err != nil {
		return policypb.PolicyStatus_Failure, err
	}
	if err := os.MkdirAll(s.rpcDir(), 0o700); err != nil {
		return policypb.PolicyStatus_Failure, fmt.Errorf("write state: %w", err)
	}
	// A temporary file and a rename: a crash never leaves half a policy in the state directory.
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return policypb.PolicyStatus_Failure, fmt.Errorf("write state: %w", err)
	}
	s.gen++
	s.rpc[key] = NewVersioned(&p, "rpc:"+strconv.FormatUint(s.gen, 10))
	if exists {
		return policypb.PolicyStatus_Modified, nil
	}
	return policypb.PolicyStatus_Applied, nil
}

// identityOnly reads kind, namespace and name of an object whose spec does not validate.
func identityOnly(kind policy.Kind, obj []byte) (policy.Policy, error) {
	var m struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(obj, &m); err != nil || m.Metadata.Name == "" {
		return policy.Policy{}, errors.New("object has no metadata.name")
	}
	ns := m.Metadata.Namespace
	if kind == policy.KindPolicy && ns == "" {
		ns = policy.DefaultNamespace
	}
	if kind != policy.KindPolicy {
		ns = ""
	}
	return policy.Policy{Kind: kind, Name: m.Metadata.Name, Namespace: ns}, nil
}
