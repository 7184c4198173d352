package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/wardsec/ward/api/v1"
)

// APIVersion is the only apiVersion the policy kinds have.
const APIVersion = v1.Group + "/" + v1.Version

const supportedKinds = "KubeArmorPolicy, KubeArmorClusterPolicy, KubeArmorHostPolicy"

// Parse reads every document of a YAML (or JSON) file and returns its normalised policies. If any
// document has a problem, Parse returns no policies and an Errors listing every problem in the
// file: a file is taken whole or not at all, so a caller keeps its previous state.
func Parse(file string, data []byte) ([]Policy, []Warning, error) {
	return parse(file, data, "")
}

// ParseObject reads exactly one policy object, as the gRPC PolicyService receives it.
func ParseObject(file string, data []byte) (Policy, []Warning, error) {
	return ParseObjectKind(file, data, "")
}

// ParseObjectKind is ParseObject for callers that know the kind from elsewhere: karmor's
// PolicyService payloads carry only metadata and spec, the RPC (containerPolicy, hostPolicy)
// saying which kind it is. apiVersion and kind default to APIVersion and kind when absent.
func ParseObjectKind(file string, data []byte, kind Kind) (Policy, []Warning, error) {
	ps, warns, err := parse(file, data, kind)
	if err != nil {
		return Policy{}, warns, err
	}
	if len(ps) != 1 {
		return Policy{}, warns, Errors{{File: file, Msg: fmt.Sprintf("expected one policy object, got %d", len(ps))}}
	}
	return ps[0], warns, nil
}

func parse(file string, data []byte, defaultKind Kind) ([]Policy, []Warning, error) {
	roots, errs := splitDocuments(file, data)
	var (
		policies []Policy
		warns    []Warning
		seen     = map[string]Source{}
	)
	for _, r := range roots {
		d := newDocState(file, r.doc)
		p := d.document(r.node, defaultKind)
		if p != nil && len(d.errs) == 0 {
			if first, dup := seen[p.Key()]; dup {
				d.errorAt(p.Source.Line, "metadata.name", p.Name, "policy %s is defined twice (first in doc %d, line %d)",
					p.Key(), first.Doc, first.Line)
			} else {
				seen[p.Key()] = p.Source
				policies = append(policies, *p)
			}
		}
		errs = append(errs, d.errs...)
		warns = append(warns, d.warns...)
	}
	if len(policies) == 0 && len(errs) == 0 && defaultKind == "" {
		warns = append(warns, Warning{File: file, Msg: "no policies in this file"})
	}
	sortWarnings(warns)
	if len(errs) > 0 {
		errs.sort()
		return nil, warns, errs
	}
	return policies, warns, nil
}

type rootDoc struct {
	doc  int
	node *yaml.Node
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserErrors are the messages of the YAML parser proper (libyaml's parserc), as opposed to
// its scanner; see splitDocuments.
var parserErrors = map[string]bool{
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// splitDocuments cuts a multi-document stream into its documents. A syntax error ends the
// stream: the YAML decoder cannot resynchronise after one.
func splitDocuments(file string, data []byte) (docs []rootDoc, errs Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(jsonAsYAML(data)))
	for i := 1; ; i++ {
		var n yaml.Node
		err := decodeNode(dec, &n)
		if err == io.EOF {
			return docs, errs
		}
		if err != nil {
			e := &Error{File: file, Doc: i, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Msg = "invalid YAML: " + m[2]
			}
			if parserErrors[strings.TrimPrefix(e.Msg, "invalid YAML: ")] {
				// The YAML library prints the 0-based line for parser (not scanner) errors, and
				// none at all for line 0.
				e.Line++
			}
			return docs, append(errs, e)
		}
		docs = append(docs, rootDoc{doc: i, node: &n})
	}
}

// decodeNode turns a panic inside the YAML library into an error: whatever bytes arrive, Ward's
// daemon must not crash on a policy.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// jsonAsYAML prepares JSON for the YAML parser, which reads JSON except for two things valid JSON
// may contain: tabs as whitespace and the escape \/. Only text that is valid JSON is touched, so a
// YAML document never changes meaning.
func jsonAsYAML(data []byte) []byte {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') || !json.Valid(t) {
		return data
	}
	if !bytes.ContainsAny(data, "\t/") {
		return data
	}
	out := make([]byte, 0, len(data))
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
			if c == '/' {
				out[len(out)-1] = '/' // replace the backslash
				continue
			}
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == '\t':
			c = ' '
		}
		out = append(out, c)
	}
	return out
}

// view is the part of a policy the checks and the normaliser read, whatever its kind.
type view struct {
	kind     Kind
	meta     *metav1.ObjectMeta
	selector *v1.SelectorType     // KubeArmorPolicy, KubeArmorClusterPolicy
	nodeSel  *v1.NodeSelectorType // KubeArmorHostPolicy
	spec     *v1.RuleSpec
	presets  []v1.PresetType
	device   *v1.DeviceType
	line     int
}

// document decodes, checks and normalises one document. It returns nil for an empty document
// and for one with errors (which are in d.errs).
func (d *docState) document(root *yaml.Node, defaultKind Kind) *Policy {
	if len(root.Content) == 0 {
		return nil
	}
	n := root.Content[0]
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		return nil // "---" followed by nothing, or only comments
	}
	d.lines[""] = n.Line
	if n.Kind != yaml.MappingNode {
		d.errorAt(n.Line, "", "", "expected a policy object (a mapping), got %s", describe(n))
		return nil
	}
	kind, ok := d.header(n, defaultKind)
	if !ok {
		return nil
	}
	var v view
	v.kind, v.line = kind, n.Line
	switch kind {
	case KindPolicy:
		var o v1.KubeArmorPolicy
		d.decode(n, reflect.ValueOf(&o).Elem(), "")
		v.meta, v.selector, v.spec, v.presets = &o.ObjectMeta, &o.Spec.Selector, &o.Spec.RuleSpec, o.Spec.Presets
	case KindClusterPolicy:
		var o v1.KubeArmorClusterPolicy
		d.decode(n, reflect.ValueOf(&o).Elem(), "")
		v.meta, v.selector, v.spec, v.presets = &o.ObjectMeta, &o.Spec.Selector, &o.Spec.RuleSpec, o.Spec.Presets
	case KindHostPolicy:
		var o v1.KubeArmorHostPolicy
		d.decode(n, reflect.ValueOf(&o).Elem(), "")
		v.meta, v.nodeSel, v.spec, v.device = &o.ObjectMeta, &o.Spec.NodeSelector, &o.Spec.RuleSpec, &o.Spec.Device
	}
	// Check even a document the walker found faults in, so that one run reports every problem;
	// covered() keeps the walker's findings from being reported twice.
	d.decoded = true
	d.validate(&v, len(d.errs) > 0)
	if len(d.errs) > 0 {
		return nil
	}
	return d.normalise(&v)
}

// header checks apiVersion and kind before anything else, because the kind decides which fields
// exist.
func (d *docState) header(n *yaml.Node, defaultKind Kind) (Kind, bool) {
	var apiVersion, kind *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		val := n.Content[i+1]
		for val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		switch n.Content[i].Value {
		case "apiVersion":
			apiVersion = val
		case "kind":
			kind = val
		}
	}
	ok := true
	switch {
	case apiVersion == nil && defaultKind != "":
	case apiVersion == nil || isNull(apiVersion):
		d.errorAt(n.Line, "apiVersion", "", "required: must be %s", APIVersion)
		ok = false
	case apiVersion.Kind != yaml.ScalarNode:
		d.errorAt(apiVersion.Line, "apiVersion", "", "expected a string, got %s", describe(apiVersion))
		ok = false
	case apiVersion.Value != APIVersion:
		hint := ""
		if strings.HasPrefix(apiVersion.Value, "security.accuknox.com/") {
			// KubeArmor's group before it was renamed; its CRDs are security.kubearmor.com
			// only, so its API server refuses these documents too.
			hint = " (security.accuknox.com is KubeArmor's old group, which its CRDs no longer serve: change the group)"
		}
		d.errorAt(apiVersion.Line, "apiVersion", apiVersion.Value, "%q is not supported: must be %s%s", apiVersion.Value, APIVersion, hint)
		ok = false
	}
	switch {
	case kind == nil && defaultKind != "":
		return defaultKind, ok
	case kind == nil || isNull(kind):
		d.errorAt(n.Line, "kind", "", "required: must be one of %s", supportedKinds)
		return "", false
	case kind.Kind != yaml.ScalarNode:
		d.errorAt(kind.Line, "kind", "", "expected a string, got %s", describe(kind))
		return "", false
	}
	k := Kind(kind.Value)
	switch {
	case k == KindPolicy || k == KindClusterPolicy || k == KindHostPolicy:
		if defaultKind != "" && k != defaultKind {
			d.errorAt(kind.Line, "kind", kind.Value, "%s where a %s was expected", k, defaultKind)
			return "", false
		}
		return k, ok
	case kind.Value == v1.KindNetworkPolicy:
		d.errorAt(kind.Line, "kind", kind.Value, "kind KubeArmorNetworkPolicy is not supported: it is KubeArmor's "+
			"nftables firewall policy, enforced by a component Ward does not have; use network rules "+
			"(matchProtocols) in a KubeArmorPolicy or KubeArmorHostPolicy instead")
	default:
		d.errorAt(kind.Line, "kind", kind.Value, "%q is not supported: must be one of %s", kind.Value, supportedKinds)
	}
	return "", false
}
