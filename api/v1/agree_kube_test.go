//go:build kube

package v1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	v1 "github.com/wardsec/ward/api/v1"
	"github.com/wardsec/ward/internal/policy"
)

// agreeCase is one input given both to Ward's validator and to the API server serving
// deploy/crds. accept is Ward's verdict. apiDiffers, when set, is the reason the CRD cannot
// reach the same verdict (the API server then gives the opposite one); every other case must
// agree exactly.
type agreeCase struct {
	kind       string
	spec       string // YAML; a selector (ksp) or node selector (hsp) is added when absent
	accept     bool
	apiDiffers string
}

const fileRule = "file: {matchPaths: [{path: /etc/passwd}]}\n"

var path200, path201 = "/" + strings.Repeat("a", 199), "/" + strings.Repeat("a", 200)

func agreeCases() map[string]agreeCase {
	ksp, csp, hsp := v1.KindPolicy, v1.KindClusterPolicy, v1.KindHostPolicy
	return map[string]agreeCase{
		// Actions: any letter case at every level (KubeArmor's CRD refuses all but Allow/Audit/Block).
		"action-Block":         {ksp, fileRule + "action: Block", true, ""},
		"action-block":         {ksp, fileRule + "action: block", true, ""},
		"action-BLOCK":         {ksp, fileRule + "action: BLOCK", true, ""},
		"action-aUdIt-item":    {ksp, "file: {matchPaths: [{path: /etc/passwd, action: aUdIt}]}", true, ""},
		"action-allow-section": {ksp, "file: {action: allow, matchPaths: [{path: /etc/passwd}]}", true, ""},
		"action-kelvin-sign":   {ksp, fileRule + "action: \"bloc\u212a\"", true, ""}, // strings.EqualFold folds U+212A to k
		"action-deny":          {ksp, fileRule + "action: deny", false, ""},
		"action-empty":         {ksp, fileRule + "action: \"\"", false, ""},
		"action-block-space":   {ksp, fileRule + "action: \"block \"", false, ""},
		"preset-action-block":  {ksp, "presets: [{name: exec, action: block}]", true, ""},
		"preset-unknown":       {ksp, "presets: [{name: protectAll}]", false, ""},
		// Severity.
		"severity-1":  {ksp, fileRule + "severity: 1", true, ""},
		"severity-10": {ksp, fileRule + "severity: 10", true, ""},
		"severity-0":  {ksp, fileRule + "severity: 0", false, ""},
		"severity-11": {ksp, fileRule + "severity: 11", false, ""},
		// A key with no value: the API server prunes the null, Ward treats it as not set.
		"severity-null": {ksp, fileRule + "severity: null", true, ""},
		// Paths and directories.
		"path-200":                    {ksp, "file: {matchPaths: [{path: " + path200 + "}]}", true, ""},
		"path-201":                    {ksp, "file: {matchPaths: [{path: " + path201 + "}]}", false, ""},
		"path-relative":               {ksp, "file: {matchPaths: [{path: etc/shadow}]}", false, ""},
		"path-trailing":               {ksp, "file: {matchPaths: [{path: /etc/}]}", false, ""},
		"path-root":                   {ksp, "file: {matchPaths: [{path: /}]}", false, ""},
		"path-double":                 {ksp, "file: {matchPaths: [{path: //etc/passwd}]}", true, ""},
		"path-tab":                    {ksp, "file: {matchPaths: [{path: \"/etc/pa\\tss\"}]}", false, ""},
		"path-utf8-200":               {ksp, "file: {matchPaths: [{path: \"/" + strings.Repeat("é", 199) + "\"}]}", true, ""},
		"dir-root":                    {ksp, "file: {matchDirectories: [{dir: /}]}", true, ""},
		"dir-etc":                     {ksp, "process: {matchDirectories: [{dir: /etc/, recursive: true}]}", true, ""},
		"dir-no-slash":                {ksp, "file: {matchDirectories: [{dir: /etc}]}", true, ""}, // read as /etc/, with a warning
		"dir-relative":                {ksp, "file: {matchDirectories: [{dir: etc/}]}", false, ""},
		"syscall-dir-source-no-slash": {ksp, "syscalls: {matchSyscalls: [{syscall: [unlink], fromSource: [{dir: /bin}]}]}", true, ""},
		"fromsource-rel":              {ksp, "file: {matchPaths: [{path: /etc/passwd, fromSource: [{path: bash}]}]}", false, ""},
		"fromsource-none":             {ksp, "file: {matchPaths: [{path: /etc/passwd, fromSource: [{}]}]}", false, ""},
		"execname":                    {ksp, "process: {matchPaths: [{execname: nc}]}", true, ""},
		"execname-slash":              {ksp, "process: {matchPaths: [{execname: /bin/nc}]}", false, ""},
		"path-and-exec":               {ksp, "process: {matchPaths: [{path: /bin/nc, execname: nc}]}", false, ""},
		"neither-path":                {ksp, "process: {matchPaths: [{ownerOnly: true}]}", false, ""},
		"args-20":                     {ksp, "process: {matchPaths: [{path: /bin/nc, allowedArgs: [" + strings.Repeat("a,", 19) + "a]}]}", true, ""},
		"args-21":                     {ksp, "process: {matchPaths: [{path: /bin/nc, allowedArgs: [" + strings.Repeat("a,", 20) + "a]}]}", false, ""},
		"pattern":                     {ksp, "file: {matchPatterns: [{pattern: /etc/*.conf}]}", true, ""},
		"pattern-bad-glob": {ksp, "file: {matchPatterns: [{pattern: \"/etc/[a\"}]}", false,
			"a glob's syntax (an unclosed [) cannot be stated as an OpenAPI pattern or checked by CEL"},
		// Network.
		"protocol-tcp":         {ksp, "network: {matchProtocols: [{protocol: tcp}]}", true, ""},
		"protocol-TCP":         {ksp, "network: {matchProtocols: [{protocol: TCP}]}", true, ""},
		"protocol-Tcp":         {ksp, "network: {matchProtocols: [{protocol: Tcp}]}", true, ""},
		"protocol-tcp,udp":     {ksp, "network: {matchProtocols: [{protocol: \"tcp,udp\"}]}", true, ""},
		"protocol-spaces":      {ksp, "network: {matchProtocols: [{protocol: \" TCP , icmpv6 \"}]}", true, ""},
		"protocol-kelvin":      {ksp, "network: {matchProtocols: [{protocol: \"pac\u212aet\"}]}", true, ""}, // unicode.ToLower maps U+212A to k
		"protocol-dotted-I":    {ksp, "network: {matchProtocols: [{protocol: \"\u0130CMP\"}]}", true, ""},   // and U+0130 to i
		"protocol-long-s":      {ksp, "network: {matchProtocols: [{protocol: \"\u017fctp\"}]}", false, ""},  // but not U+017F to s
		"protocol-http":        {ksp, "network: {matchProtocols: [{protocol: http}]}", false, ""},
		"protocol-tcp,http":    {ksp, "network: {matchProtocols: [{protocol: \"tcp,http\"}]}", false, ""},
		"protocol-xtcp":        {ksp, "network: {matchProtocols: [{protocol: xtcp}]}", false, ""}, // KubeArmor's pattern, anchored only at the end, took it
		"protocol-empty-entry": {ksp, "network: {matchProtocols: [{protocol: \"tcp,,udp\"}]}", false, ""},
		"protocol-af-rds":      {ksp, "network: {matchProtocols: [{protocol: AF_RDS}]}", true, ""},
		"protocol-af-list":     {ksp, "network: {matchProtocols: [{protocol: \"tcp, af_Netlink ,AF_LOCAL\"}]}", true, ""},
		"protocol-af-ieee":     {ksp, "network: {matchProtocols: [{protocol: AF_IEEE802154}]}", true, ""},
		"protocol-af-unknown":  {ksp, "network: {matchProtocols: [{protocol: AF_WARD}]}", false, ""},
		"protocol-af-bare":     {ksp, "network: {matchProtocols: [{protocol: AF_}]}", false, ""},
		"protocol-af-kelvin":   {ksp, "network: {matchProtocols: [{protocol: \"AF_\u212aEY\"}]}", false, ""}, // families are ASCII only
		"protocol-rds-bare":    {ksp, "network: {matchProtocols: [{protocol: rds}]}", false, ""},
		"domain-list":          {ksp, "network: {matchDNSQueries: [{domain: \"example.com, example.org\"}]}", true, ""},
		"domain-space":         {ksp, "network: {matchDNSQueries: [{domain: \"exa mple.com\"}]}", false, ""},
		"domain-empty-entry":   {ksp, "network: {matchDNSQueries: [{domain: \"a.com,\"}]}", false, ""},
		// Capabilities.
		"cap-net_raw":       {ksp, "capabilities: {matchCapabilities: [{capability: net_raw}]}", true, ""},
		"cap-cap_net_raw":   {ksp, "capabilities: {matchCapabilities: [{capability: cap_net_raw}]}", true, ""},
		"cap-CAP_NET_RAW":   {ksp, "capabilities: {matchCapabilities: [{capability: CAP_NET_RAW}]}", true, ""},
		"cap-list":          {ksp, "capabilities: {matchCapabilities: [{capability: \"net_raw, sys_admin\"}]}", true, ""},
		"cap-perfmon":       {ksp, "capabilities: {matchCapabilities: [{capability: perfmon}]}", true, ""}, // missing from KubeArmor's list
		"cap-typo":          {ksp, "capabilities: {matchCapabilities: [{capability: sys_admim}]}", false, ""},
		"cap-double-prefix": {ksp, "capabilities: {matchCapabilities: [{capability: cap_cap_chown}]}", false, ""},
		"cap-xnet_raw":      {ksp, "capabilities: {matchCapabilities: [{capability: xnet_raw}]}", false, ""},
		// Syscalls.
		"syscall":             {ksp, "syscalls: {matchSyscalls: [{syscall: [openat, unlinkat]}]}", true, ""},
		"syscall-typo":        {ksp, "syscalls: {matchSyscalls: [{syscall: [execv]}]}", false, ""},
		"syscall-none":        {ksp, "syscalls: {matchSyscalls: [{fromSource: [{path: /bin/rm}]}]}", false, ""},
		"syscall-dir-source":  {ksp, "syscalls: {matchSyscalls: [{syscall: [unlink], fromSource: [{dir: /bin/, recursive: true}]}]}", true, ""},
		"syscall-both-source": {ksp, "syscalls: {matchSyscalls: [{syscall: [unlink], fromSource: [{path: /bin/rm, dir: /bin/}]}]}", false, ""},
		"syscall-path-recurs": {ksp, "syscalls: {matchSyscalls: [{syscall: [unlink], fromSource: [{path: /bin/rm, recursive: true}]}]}", false, ""},
		"syscall-paths-dir":   {ksp, "syscalls: {matchPaths: [{path: /tmp/, recursive: true, syscall: [unlink]}]}", true, ""},
		"syscall-paths-rel":   {ksp, "syscalls: {matchPaths: [{path: tmp/, syscall: [unlink]}]}", false, ""},
		// Selectors and kinds.
		"ksp-expr-label":      {ksp, "selector: {matchExpressions: [{key: label, operator: In, values: [app=web]}]}\n" + fileRule, true, ""},
		"ksp-expr-namespace":  {ksp, "selector: {matchExpressions: [{key: namespace, operator: In, values: [web]}]}\n" + fileRule, false, ""},
		"ksp-expr-operator":   {ksp, "selector: {matchExpressions: [{key: label, operator: Exists, values: [app=web]}]}\n" + fileRule, false, ""},
		"ksp-expr-no-values":  {ksp, "selector: {matchExpressions: [{key: label, operator: In}]}\n" + fileRule, false, ""},
		"ksp-empty-selector":  {ksp, "selector: {}\n" + fileRule, true, ""},
		"csp-namespace":       {csp, "selector: {matchExpressions: [{key: namespace, operator: NotIn, values: [kube-system]}]}\n" + fileRule, true, ""},
		"csp-no-selector":     {csp, fileRule, true, ""},
		"csp-matchlabels":     {csp, "selector: {matchLabels: {app: x}}\n" + fileRule, false, ""},
		"hsp":                 {hsp, fileRule, true, ""},
		"hsp-no-nodeselector": {hsp, "nodeSelector: {}\n" + fileRule, false, ""},
		"hsp-protocol-source": {hsp, "network: {matchProtocols: [{protocol: tcp, fromSource: [{path: /usr/bin/curl}]}]}", true, ""},
		"hsp-protocol-nosrc":  {hsp, "network: {matchProtocols: [{protocol: tcp}]}", true, ""},
		"hsp-cap-nosrc":       {hsp, "capabilities: {matchCapabilities: [{capability: net_raw}]}", true, ""},
		"hsp-device":          {hsp, "device: {matchDevice: [{class: MASS-STORAGE, subClass: 6}]}", true, ""},
		"hsp-device-level":    {hsp, "device: {matchDevice: [{class: HID, level: 256}]}", false, ""},
		"hsp-apparmor-only":   {hsp, "apparmor: \"deny /etc/shadow r,\"", true, ""},
		"hsp-device-class": {hsp, "device: {matchDevice: [{class: FLOPPY}]}", false,
			"USB class names and numbers (any case, decimal or 0x hex) are Ward's table; the CRD only requires a class"},
		// Whole-spec rules.
		"no-rules":        {ksp, "severity: 5", false, ""},
		"apparmor-blank":  {ksp, "apparmor: \"   \"", false, ""},
		"unknown-field":   {ksp, "process: {matchPath: [{path: /bin/sh}]}", false, ""},
		"unknown-in-item": {ksp, "file: {matchPaths: [{path: /etc/passwd, readonly: true}]}", false, ""},
		"label-value-no-eq": {ksp, "selector: {matchExpressions: [{key: label, operator: In, values: [app]}]}\n" + fileRule, false,
			"checking each value of an unbounded list with CEL exceeds the API server's cost budget unless the CRD caps lengths Ward does not cap"},
		"label-key-invalid": {ksp, "selector: {matchLabels: {\"bad key!\": x}}\n" + fileRule, false,
			"map keys have no OpenAPI pattern; a CEL rule over them has the same cost problem"},
		"container-name-empty": {ksp, "selector: {matchLabels: {kubearmor.io/container.name: \"[]\"}}\n" + fileRule, true, ""},
	}
}

func TestCRDAndValidatorAgree(t *testing.T) {
	ctx := context.Background()
	cases := agreeCases()
	agreed := 0
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			spec := c.spec
			switch {
			case c.kind == v1.KindPolicy && !strings.Contains(spec, "selector:"):
				spec = "selector: {matchLabels: {app: x}}\n" + spec
			case c.kind == v1.KindHostPolicy && !strings.Contains(spec, "nodeSelector:"):
				spec = "nodeSelector: {matchLabels: {kubernetes.io/hostname: node1}}\n" + spec
			}
			var specObj map[string]any
			if err := sigsyaml.Unmarshal([]byte(spec), &specObj); err != nil {
				t.Fatalf("test input: %v\n%s", err, spec)
			}
			meta := map[string]any{"name": "agree-" + strings.ToLower(strings.NewReplacer(",", "-", "_", "-").Replace(name))}
			if c.kind == v1.KindPolicy {
				meta["namespace"] = "agree"
			}
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": v1.Group + "/" + v1.Version, "kind": c.kind, "metadata": meta, "spec": specObj,
			}}
			doc, err := obj.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			_, _, wardErr := policy.ParseObject(name, doc)
			_, apiErr := create(ctx, obj, true)
			ward, api := wardErr == nil, apiErr == nil
			if ward != c.accept {
				t.Fatalf("Ward: accept=%v, want %v (%v)\n%s", ward, c.accept, wardErr, doc)
			}
			want := c.accept
			if c.apiDiffers != "" {
				want = !want
			}
			if api != want {
				t.Fatalf("API server: accept=%v, want %v (%v); Ward: %v\n%s", api, want, apiErr, wardErr, doc)
			}
			if c.apiDiffers == "" {
				agreed++
			}
			t.Logf("ward=%v api=%v  ward: %v  api: %v", ward, api, wardErr, apiErr)
		})
	}
	t.Logf("%d cases, %d agree, %d documented differences", len(cases), agreed, len(cases)-agreed)
}
