package policy

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	v1 "github.com/wardsec/ward/api/v1"
)

// maxPathLen is the length limit KubeArmor's CRDs put on a path.
const maxPathLen = 200

// maxAllowedArgs is KubeArmor's limit on process.matchPaths[].allowedArgs.
const maxAllowedArgs = 20

// The numeric ranges the CRDs state too (TestBoundsAgreeWithCRDs walks both side by side).
const (
	minSeverity, maxSeverity = 1, 10
	// minDeviceNumber and maxDeviceNumber bound a USB subClass, protocol and level.
	minDeviceNumber, maxDeviceNumber = 0, 255
)

// containerNameLabel restricts a KubeArmorPolicy to some containers of the selected pods.
const containerNameLabel = "kubearmor.io/container.name"

// validate checks everything the CRDs state (§3 of the compatibility notes) and the cross-field
// rules they cannot express. Every message names the bad value and what is allowed.
// When the walker already found problems (partial is set), a missing rule may be a misspelt one,
// so "no rules" is not reported.
func (d *docState) validate(v *view, partial bool) {
	d.checkMeta(v)
	switch v.kind {
	case KindPolicy, KindClusterPolicy:
		d.checkSelector(v)
	case KindHostPolicy:
		if len(v.nodeSel.MatchLabels) == 0 {
			d.errorf("spec.nodeSelector.matchLabels", "", "required: a %s selects nodes by label, "+
				"for example kubernetes.io/hostname: node1", v.kind)
		}
		d.checkLabelKeys("spec.nodeSelector.matchLabels", v.nodeSel.MatchLabels)
	}
	s := v.spec
	d.checkSMTA("spec", s.SMTA)
	d.checkProcess(s.Process)
	d.checkFile(s.File)
	// fromSource is optional for network and capability rules of host policies too, as in
	// KubeArmor (tests/nonk8s_env/host_policy/res/hsp-audit-network-protocol.yaml has none).
	d.checkNetwork(s.Network)
	d.checkCapabilities(s.Capabilities)
	d.checkSyscalls(s.Syscalls)
	for i, p := range v.presets {
		f := fmt.Sprintf("spec.presets[%d]", i)
		switch {
		case p.Name == "":
			d.errorf(f+".name", "", "required: one of %s", strings.Join(presetNames, ", "))
		case !slices.Contains(presetNames, p.Name):
			d.errorf(f+".name", p.Name, "%q is not a preset: must be one of %s", p.Name, strings.Join(presetNames, ", "))
		}
		d.checkAction(f+".action", p.Action)
	}
	if v.device != nil {
		d.checkDevice(*v.device)
	}
	if countRules(v) == 0 && !partial {
		sections := "process, file, network, capabilities, syscalls, presets or apparmor"
		if v.kind == KindHostPolicy {
			sections = "process, file, network, capabilities, syscalls, device or apparmor"
		}
		d.errorf("spec", "", "no rules: set at least one of %s", sections)
	}
}

func countRules(v *view) int {
	s := v.spec
	n := len(s.Process.MatchPaths) + len(s.Process.MatchDirectories) + len(s.Process.MatchPatterns) +
		len(s.File.MatchPaths) + len(s.File.MatchDirectories) + len(s.File.MatchPatterns) +
		len(s.Network.MatchProtocols) + len(s.Network.MatchDNSQueries) +
		len(s.Capabilities.MatchCapabilities) + len(s.Syscalls.MatchSyscalls) + len(s.Syscalls.MatchPaths) +
		len(v.presets)
	if v.device != nil {
		n += len(v.device.MatchDevice)
	}
	if strings.TrimSpace(s.AppArmor) != "" {
		n++
	}
	return n
}

func (d *docState) checkMeta(v *view) {
	m := v.meta
	switch {
	case m.Name == "":
		d.errorf("metadata.name", "", "required: a DNS-1123 subdomain such as block-passwd")
	case !isDNS1123Subdomain(m.Name):
		d.errorf("metadata.name", m.Name, "%q is not a valid name: must be a DNS-1123 subdomain (lower-case "+
			"letters, digits, \"-\" and \".\", starting and ending with a letter or digit, at most 253 characters)", m.Name)
	}
	if m.Namespace == "" {
		return
	}
	if v.kind != KindPolicy {
		d.warnf("metadata.namespace", m.Namespace, "ignored: %s is cluster-scoped", v.kind)
		return
	}
	if !isDNS1123Label(m.Namespace) {
		d.errorf("metadata.namespace", m.Namespace, "%q is not a valid namespace: must be a DNS-1123 label "+
			"(lower-case letters, digits and \"-\", starting and ending with a letter or digit, at most 63 characters)", m.Namespace)
	}
}

func (d *docState) checkSelector(v *view) {
	sel := v.selector
	if v.kind == KindClusterPolicy && len(sel.MatchLabels) > 0 {
		d.errorf("spec.selector.matchLabels", "", "not used by KubeArmorClusterPolicy: use matchExpressions "+
			"with key namespace or label (for example key: label, operator: In, values: [app=nginx])")
	}
	d.checkLabelKeys("spec.selector.matchLabels", sel.MatchLabels)
	// kubearmor.io/container.name: "" or "[]" names no container, which KubeArmor (and its
	// multicontainer e2e tests) read as every container of the selected pods.
	keys := "label"
	if v.kind == KindClusterPolicy {
		keys = "namespace or label"
	}
	for i, e := range sel.MatchExpressions {
		f := fmt.Sprintf("spec.selector.matchExpressions[%d]", i)
		keyOK := e.Key == "label" || (v.kind == KindClusterPolicy && e.Key == "namespace")
		switch {
		case e.Key == "":
			d.errorf(f+".key", "", "required: must be %s", keys)
		case !keyOK:
			d.errorf(f+".key", e.Key, "%q is not a selector key for %s: must be %s", e.Key, v.kind, keys)
		}
		switch e.Operator {
		case "In", "NotIn":
		case "":
			d.errorf(f+".operator", "", "required: must be In or NotIn")
		default:
			d.errorf(f+".operator", e.Operator, "%q is not an operator: must be In or NotIn", e.Operator)
		}
		if len(e.Values) == 0 {
			d.errorf(f+".values", "", "required: list at least one value")
		}
		for j, val := range e.Values {
			vf := fmt.Sprintf("%s.values[%d]", f, j)
			switch e.Key {
			case "label":
				if k, _, ok := strings.Cut(val, "="); !ok || k == "" {
					d.errorf(vf, val, "%q is not a label: must be key=value such as app=nginx", val)
				}
			case "namespace":
				if !isDNS1123Label(val) {
					d.errorf(vf, val, "%q is not a namespace name: must be a DNS-1123 label such as prod", val)
				}
			}
		}
	}
}

func (d *docState) checkLabelKeys(f string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		if !isQualifiedName(k) {
			d.errorf(f+"["+k+"]", k, "%q is not a label key: must be a name of at most 63 letters, digits, "+
				"\"-\", \"_\" and \".\" (starting and ending with a letter or digit), optionally after a "+
				"DNS subdomain prefix and \"/\", such as app.kubernetes.io/name", k)
		}
	}
}

// containerNames reads the value of kubearmor.io/container.name: "[a,b]", "[a]" or "a".
func containerNames(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func (d *docState) checkSMTA(f string, s v1.SMTA) {
	d.checkSeverity(f+".severity", s.Severity)
	d.checkAction(f+".action", s.Action)
}

func (d *docState) checkSeverity(f string, s v1.Severity) {
	if (s != 0 || d.written(f)) && (s < minSeverity || s > maxSeverity) {
		d.errorf(f, fmt.Sprint(int(s)), "%d is out of range: must be %d..%d", s, minSeverity, maxSeverity)
	}
}

func (d *docState) checkAction(f string, a v1.ActionType) {
	if a == "" && !d.written(f) {
		return
	}
	if _, ok := parseAction(string(a)); !ok {
		d.errorf(f, string(a), "%q is not an action: must be Allow, Audit or Block", string(a))
	}
}

// parseAction accepts an action in any letter case, as KubeArmor's daemon does at the spec level;
// Ward accepts it at every level so that one policy means the same everywhere.
func parseAction(s string) (Action, bool) {
	for _, a := range []Action{ActionAllow, ActionAudit, ActionBlock} {
		if strings.EqualFold(s, string(a)) {
			return a, true
		}
	}
	return "", false
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// checkFilePath enforces ^\/+.*[^\/]$ and the 200-character limit.
func (d *docState) checkFilePath(f, p, example string) {
	n := utf8.RuneCountInString(p)
	switch {
	case p == "":
		d.errorf(f, "", "required: an absolute path such as %s", example)
	case !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		msg := fmt.Sprintf("%q is not an absolute path: must start with \"/\" and not end with \"/\"", p)
		switch {
		case strings.HasPrefix(p, "/"):
			msg += " (use matchDirectories for a directory)"
		case windowsPathRe.MatchString(p):
			// KubeArmor's Windows agent takes these (tests/nonk8s_env/windows_policy); its CRD
			// pattern refuses them, and Ward enforces on Linux only.
			msg += " (a Windows path: Ward enforces Linux hosts only, and KubeArmor's CRD refuses it too)"
		}
		d.errorf(f, p, "%s", msg)
	case hasControl(p):
		d.errorf(f, p, "%q contains a control character: a path must be printable", p)
	case n > maxPathLen:
		d.errorf(f, p, "path is %d characters long: at most %d are allowed", n, maxPathLen)
	}
}

var windowsPathRe = regexp.MustCompile(`^[A-Za-z]:[/\\]`)

// checkDir enforces an absolute directory path. A value without the trailing slash is read as
// the directory it names (KubeArmor's daemon and its own tests take "dir: /usr/bin" so), and
// normalised in place with a warning naming the field. The warning says what KubeArmor's CRD
// says of the field: process and file matchDirectories[].dir carry the pattern ^\/$|^\/.*\/$, so
// a KubeArmor API server refuses the value there (crdSlash); syscalls...fromSource[].dir is a
// plain string in that CRD, so there the slash is only the clearer spelling.
func (d *docState) checkDir(f string, p *string, crdSlash bool) {
	switch {
	case *p == "":
		d.errorf(f, "", "required: an absolute directory path ending in \"/\", such as /etc/")
	case !strings.HasPrefix(*p, "/"):
		d.errorf(f, *p, "%q is not a directory: must be an absolute path ending in \"/\", such as /etc/", *p)
	case hasControl(*p):
		d.errorf(f, *p, "%q contains a control character: a path must be printable", *p)
	case !strings.HasSuffix(*p, "/"):
		why := "so that it cannot be mistaken for a file"
		if crdSlash {
			why = "KubeArmor's CRD requires it here: a KubeArmor API server refuses the value without it"
		}
		d.warnf(f, *p, "%q is read as the directory %q: end a directory with \"/\" (%s)", *p, *p+"/", why)
		*p += "/"
	}
}

func (d *docState) checkFromSource(f string, srcs []v1.MatchSourceType) {
	for i, s := range srcs {
		d.checkFilePath(fmt.Sprintf("%s[%d].path", f, i), s.Path, "/usr/bin/curl")
	}
}

func (d *docState) checkPattern(f, p string) {
	if p == "" {
		d.errorf(f, "", "required: a glob pattern such as /etc/*.conf")
		return
	}
	if _, err := path.Match(p, ""); err != nil {
		d.errorf(f, p, "%q is not a valid pattern: check the brackets and backslashes (*, **, ?, [...] and \\ are special)", p)
	} else if hasControl(p) {
		d.errorf(f, p, "%q contains a control character: a pattern must be printable", p)
	}
}

func (d *docState) checkProcess(p v1.ProcessType) {
	d.checkSMTA("spec.process", p.SMTA)
	for i, m := range p.MatchPaths {
		f := fmt.Sprintf("spec.process.matchPaths[%d]", i)
		switch {
		case m.Path != "" && m.ExecName != "":
			d.errorf(f, "", "set path or execname, not both")
		case m.ExecName != "":
			if strings.Contains(m.ExecName, "/") || hasControl(m.ExecName) {
				d.errorf(f+".execname", m.ExecName, "%q is not an executable name: must not contain \"/\" (use path for a full path)", m.ExecName)
			}
		case m.Path == "":
			d.errorf(f, "", "path or execname is required")
		default:
			d.checkFilePath(f+".path", m.Path, "/usr/bin/sleep")
		}
		if len(m.AllowedArgs) > maxAllowedArgs {
			d.errorf(f+".allowedArgs", "", "%d arguments listed: at most %d are allowed", len(m.AllowedArgs), maxAllowedArgs)
		}
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
	for i, m := range p.MatchDirectories {
		f := fmt.Sprintf("spec.process.matchDirectories[%d]", i)
		d.checkDir(f+".dir", &p.MatchDirectories[i].Directory, true)
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
	for i, m := range p.MatchPatterns {
		f := fmt.Sprintf("spec.process.matchPatterns[%d]", i)
		d.checkPattern(f+".pattern", m.Pattern)
		d.checkSMTA(f, m.SMTA)
	}
}

func (d *docState) checkFile(p v1.FileType) {
	d.checkSMTA("spec.file", p.SMTA)
	for i, m := range p.MatchPaths {
		f := fmt.Sprintf("spec.file.matchPaths[%d]", i)
		d.checkFilePath(f+".path", m.Path, "/etc/passwd")
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
	for i, m := range p.MatchDirectories {
		f := fmt.Sprintf("spec.file.matchDirectories[%d]", i)
		d.checkDir(f+".dir", &p.MatchDirectories[i].Directory, true)
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
	for i, m := range p.MatchPatterns {
		f := fmt.Sprintf("spec.file.matchPatterns[%d]", i)
		d.checkPattern(f+".pattern", m.Pattern)
		d.checkSMTA(f, m.SMTA)
	}
}

// splitList splits a comma list (KubeArmor lets protocol, capability and domain hold several
// values) and drops the spaces around each value. ok is false when an entry is empty.
func splitList(s string) (vals []string, ok bool) {
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, false
		}
		vals = append(vals, v)
	}
	return vals, true
}

// checkList checks a comma-list field, calling check on each value.
func (d *docState) checkList(f, s, what, example string, check func(string) bool) {
	if strings.TrimSpace(s) == "" {
		d.errorf(f, "", "required: %s such as %s", what, example)
		return
	}
	vals, ok := splitList(s)
	if !ok {
		d.errorf(f, s, "%q has an empty entry: write one value or a comma-separated list such as %q", s, example)
		return
	}
	for _, v := range vals {
		if !check(v) {
			return
		}
	}
}

func (d *docState) checkNetwork(n v1.NetworkType) {
	d.checkSMTA("spec.network", n.SMTA)
	for i, m := range n.MatchProtocols {
		f := fmt.Sprintf("spec.network.matchProtocols[%d]", i)
		d.checkList(f+".protocol", m.Protocol, "a protocol", "tcp,udp", func(p string) bool {
			if _, ok := canonicalProtocol(p); !ok {
				if strings.HasPrefix(strings.ToLower(p), familyPrefix) {
					d.errorf(f+".protocol", m.Protocol, "%q is not a Linux address family: must be one of %s", p, familyList())
					return false
				}
				d.errorf(f+".protocol", m.Protocol, "%q is not a protocol: must be one of %s, or an address family such as AF_RDS (or a comma-separated list of them)",
					p, strings.Join(protocols, ", "))
				return false
			}
			return true
		})
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
	for i, m := range n.MatchDNSQueries {
		f := fmt.Sprintf("spec.network.matchDNSQueries[%d]", i)
		d.checkList(f+".domain", m.Domain, "a domain", "example.com", func(dom string) bool {
			if strings.ContainsFunc(dom, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
				d.errorf(f+".domain", m.Domain, "%q is not a domain name: it contains a space or control character", dom)
				return false
			}
			return true
		})
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
}

func (d *docState) checkCapabilities(c v1.CapabilitiesType) {
	d.checkSMTA("spec.capabilities", c.SMTA)
	for i, m := range c.MatchCapabilities {
		f := fmt.Sprintf("spec.capabilities.matchCapabilities[%d]", i)
		d.checkList(f+".capability", m.Capability, "a capability", "net_raw", func(c string) bool {
			if _, ok := canonicalCapability(c); !ok {
				d.errorf(f+".capability", m.Capability, "%q is not a capability: must be one of %s", c, capabilityList())
				return false
			}
			return true
		})
		d.checkFromSource(f+".fromSource", m.FromSource)
		d.checkSMTA(f, m.SMTA)
	}
}

func (d *docState) checkSyscallNames(f string, names []string) {
	if len(names) == 0 {
		d.errorf(f, "", "required: list the system calls to audit, such as [unlink, unlinkat]")
		return
	}
	for i, n := range names {
		if _, ok := syscallNumbers[n]; ok {
			continue
		}
		msg := fmt.Sprintf("%q is not an x86_64 system call", n)
		if s := suggest(n, syscallNames); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.errorf(fmt.Sprintf("%s[%d]", f, i), n, "%s: must be a name from the kernel's table, such as openat", msg)
	}
}

func (d *docState) checkSyscallSources(f string, srcs []v1.SyscallFromSourceType) {
	for i, s := range srcs {
		sf := fmt.Sprintf("%s[%d]", f, i)
		switch {
		case s.Path != "" && s.Directory != "":
			d.errorf(sf, "", "set path or dir, not both")
		case s.Path != "":
			d.checkFilePath(sf+".path", s.Path, "/usr/bin/curl")
			if s.Recursive {
				d.errorf(sf+".recursive", "", "applies only to dir")
			}
		case s.Directory != "":
			d.checkDir(sf+".dir", &srcs[i].Directory, false)
		default:
			d.errorf(sf, "", "path or dir is required")
		}
	}
}

func (d *docState) checkSyscalls(s v1.SyscallsType) {
	d.checkSeverity("spec.syscalls.severity", s.Severity)
	for i, m := range s.MatchSyscalls {
		f := fmt.Sprintf("spec.syscalls.matchSyscalls[%d]", i)
		d.checkSyscallNames(f+".syscall", m.Syscalls)
		d.checkSyscallSources(f+".fromSource", m.FromSource)
		d.checkSeverity(f+".severity", m.Severity)
	}
	for i, m := range s.MatchPaths {
		f := fmt.Sprintf("spec.syscalls.matchPaths[%d]", i)
		// Either a file (^\/+.*[^\/]$) or a directory (^\/$|^\/.*\/$): any absolute path.
		n := utf8.RuneCountInString(m.Path)
		switch {
		case m.Path == "":
			d.errorf(f+".path", "", "required: an absolute file path, or a directory path ending in \"/\"")
		case !strings.HasPrefix(m.Path, "/"):
			d.errorf(f+".path", m.Path, "%q is not an absolute path: must start with \"/\" (and end with \"/\" for a directory)", m.Path)
		case hasControl(m.Path):
			d.errorf(f+".path", m.Path, "%q contains a control character: a path must be printable", m.Path)
		case n > maxPathLen:
			d.errorf(f+".path", m.Path, "path is %d characters long: at most %d are allowed", n, maxPathLen)
		case m.Recursive && !strings.HasSuffix(m.Path, "/"):
			d.warnf(f+".recursive", "", "ignored: %q is a file; end it with \"/\" to mean a directory", m.Path)
		}
		d.checkSyscallNames(f+".syscall", m.Syscalls)
		d.checkSyscallSources(f+".fromSource", m.FromSource)
		d.checkSeverity(f+".severity", m.Severity)
	}
}

func (d *docState) checkDevice(dev v1.DeviceType) {
	d.checkSMTA("spec.device", dev.SMTA)
	for i, m := range dev.MatchDevice {
		f := fmt.Sprintf("spec.device.matchDevice[%d]", i)
		if m.Class == "" {
			d.errorf(f+".class", "", "required: a USB class name such as MASS-STORAGE, or its number such as 0x08")
		} else if _, ok := canonicalUSBClass(m.Class); !ok {
			d.errorf(f+".class", m.Class, "%q is not a USB device class: must be one of %s, or its number", m.Class, usbClassList())
		}
		for _, x := range []struct {
			name string
			v    *int32
		}{{"subClass", m.SubClass}, {"protocol", m.Protocol}, {"level", m.Level}} {
			if x.v != nil && (*x.v < minDeviceNumber || *x.v > maxDeviceNumber) {
				d.errorf(f+"."+x.name, fmt.Sprint(*x.v), "%d is out of range: must be %d..%d", *x.v, minDeviceNumber, maxDeviceNumber)
			}
		}
		d.checkSMTA(f, m.SMTA)
	}
}

// syscallNames is sorted so that suggestions do not depend on map order.
var syscallNames = sortedKeys(syscallNumbers)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Kubernetes' name rules (k8s.io/apimachinery/pkg/util/validation), written out here because that
// package drags in net/http.
var (
	dns1123LabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	qualifiedNameRe    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
)

func isDNS1123Label(s string) bool { return len(s) <= 63 && dns1123LabelRe.MatchString(s) }

func isDNS1123Subdomain(s string) bool { return len(s) <= 253 && dns1123SubdomainRe.MatchString(s) }

func isQualifiedName(s string) bool {
	prefix, name, ok := strings.Cut(s, "/")
	if !ok {
		name, prefix = prefix, ""
	} else if !isDNS1123Subdomain(prefix) {
		return false
	}
	return len(name) <= 63 && qualifiedNameRe.MatchString(name)
}
