package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/wardsec/ward/api/policypb"
	"github.com/wardsec/ward/internal/policy"
)

// Store holds the accepted policies from both sources: the watched directory and the
// PolicyService. Each file, and each policy sent over gRPC, is accepted whole or not at all; a
// rejected change leaves what was accepted before in force.
type Store struct {
	dir      string
	stateDir string

	mu    sync.Mutex
	files map[string][]policy.Policy // accepted policies per file of the directory
	rpc   map[string]policy.Policy   // accepted policies from the PolicyService, by key
}

// NewStore returns a store reading dir and keeping gRPC-applied policies under stateDir.
func NewStore(dir, stateDir string) *Store {
	return &Store{dir: dir, stateDir: stateDir, files: map[string][]policy.Policy{}, rpc: map[string]policy.Policy{}}
}

// ReloadResult says what a directory reload did.
type ReloadResult struct {
	Changed  bool
	Accepted []string // files accepted (new or changed content)
	Rejected []error  // one per rejected file; those files keep their previous policies
	Removed  []string
	Warnings []policy.Warning
}

// ReloadDir reads the policy directory again. A missing directory holds no policies.
func (s *Store) ReloadDir() ReloadResult {
	var res ReloadResult
	var results []policy.FileResult
	if _, err := os.Stat(s.dir); err == nil {
		results = policy.LoadFiles(s.dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		res.Rejected = append(res.Rejected, fmt.Errorf("policy directory: %w", err))
		return res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.File] = true
		res.Warnings = append(res.Warnings, r.Warnings...)
		if r.Err != nil {
			res.Rejected = append(res.Rejected, r.Err)
			continue
		}
		if prev, ok := s.files[r.File]; ok && samePolicies(prev, r.Policies) {
			continue
		}
		s.files[r.File] = r.Policies
		res.Accepted = append(res.Accepted, r.File)
		res.Changed = true
	}
	for f := range s.files {
		if !seen[f] {
			delete(s.files, f)
			res.Removed = append(res.Removed, f)
			res.Changed = true
		}
	}
	sort.Strings(res.Removed)
	return res
}

func samePolicies(a, b []policy.Policy) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// Policies returns every accepted policy, directory first. A policy sent over gRPC with the
// key of a directory policy is shadowed by the file, which the operator controls on disk.
func (s *Store) Policies() []policy.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []policy.Policy
	seen := map[string]bool{}
	files := make([]string, 0, len(s.files))
	for f := range s.files {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		for _, p := range s.files[f] {
			seen[p.Key()] = true
			out = append(out, p)
		}
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
		s.rpc[p.Key()] = p
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
	if err := writeFileAtomic(path, b); err != nil {
		return policypb.PolicyStatus_Failure, err
	}
	s.rpc[key] = p
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
		ns = "default"
	}
	if kind != policy.KindPolicy {
		ns = ""
	}
	return policy.Policy{Kind: kind, Name: m.Metadata.Name, Namespace: ns}, nil
}

// writeFileAtomic writes via a temporary file and a rename, so a crash never leaves half a
// policy in the state directory.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
