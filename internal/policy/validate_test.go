package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// ksp builds a KubeArmorPolicy whose spec body starts on line 6; body lines carry their own
// two-space indent.
func ksp(body ...string) string {
	return "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: t\nspec:\n" +
		strings.Join(body, "\n") + "\n"
}

// csp is ksp for a KubeArmorClusterPolicy.
func csp(body ...string) string {
	return strings.Replace(ksp(body...), "kind: KubeArmorPolicy", "kind: KubeArmorClusterPolicy", 1)
}

// hsp builds a KubeArmorHostPolicy whose nodeSelector fills lines 6-8; body starts on line 9.
func hsp(body ...string) string {
	return "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: t\nspec:\n" +
		"  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: node1\n" + strings.Join(body, "\n") + "\n"
}

// fileRule is a valid file rule body, for inputs whose problem is elsewhere.
var fileRule = []string{"  file:", "    matchPaths:", "    - path: /etc/passwd"}

func with(body []string, more ...string) []string {
	return append(append([]string{}, body...), more...)
}

// validationCases pairs each invalid input with the exact output of Errors.Error(). The file is
// always "t.yaml".
var validationCases = []struct {
	name, in, want string
}{
	// Structure: the walker.
	{"unknown field", ksp("  file:", "    matchPath:", "    - path: /etc/passwd"),
		`t.yaml:7: doc 1: spec.file.matchPath: unknown field "matchPath"; allowed: matchPaths, matchDirectories, matchPatterns, severity, tags, message, action (did you mean "matchPaths"?)`},
	{"unknown field in item", ksp("  file:", "    matchPaths:", "    - path: /etc/passwd", "      readonly: true"),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].readonly: unknown field "readonly"; allowed: path, readOnly, ownerOnly, pts, fromSource, severity, tags, message, action (did you mean "readOnly"?)`},
	{"unknown top-level field", ksp(fileRule...) + "specs: {}\n",
		`t.yaml:9: doc 1: specs: unknown field "specs"; allowed: kind, apiVersion, metadata, spec, status (did you mean "spec"?)`},
	{"list expected", ksp("  file:", "    matchPaths: /etc/passwd"),
		`t.yaml:7: doc 1: spec.file.matchPaths: expected a list, got a string`},
	{"mapping expected", ksp("  file: [a]"),
		`t.yaml:6: doc 1: spec.file: expected a mapping, got a list`},
	{"string expected", ksp(with(fileRule, "      message: 12")...),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].message: expected a string, got an integer: quote it ("12") if a string is meant`},
	{"integer expected", ksp(with(fileRule, `      severity: "5"`)...),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].severity: expected an integer, got a string`},
	{"boolean expected", ksp(with(fileRule, "      readOnly: yes")...),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].readOnly: expected a boolean, got a string`},
	{"duplicate key", ksp("  file:", "    matchPaths:", "    - path: /etc/passwd", "      path: /etc/shadow"),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].path: duplicate field "path" (first at line 8)`},
	{"mismatch not reported twice", ksp("  process:", "    matchPaths:", "    - path: [/bin/sh]", "  file:", "    matchPath: []"),
		"t.yaml:8: doc 1: spec.process.matchPaths[0].path: expected a string, got a list\n" +
			`t.yaml:10: doc 1: spec.file.matchPath: unknown field "matchPath"; allowed: matchPaths, matchDirectories, matchPatterns, severity, tags, message, action (did you mean "matchPaths"?)`},
	{"merge key", ksp(with(fileRule, "      <<: {readOnly: true}")...),
		`t.yaml:9: doc 1: spec.file.matchPaths[0]: merge keys (<<) are not supported: write the fields out`},
	{"int32 overflow", hsp("  device:", "    matchDevice:", "    - class: HID", "      level: 99999999999"),
		`t.yaml:12: doc 1: spec.device.matchDevice[0].level: 99999999999 is out of range`},
	{"not a mapping", "- a\n- b\n",
		`t.yaml:1: doc 1: expected a policy object (a mapping), got a list`},
	{"syntax error", ksp("  file:", "    matchPaths:", "    - path: [/etc/passwd"),
		`t.yaml:8: doc 1: invalid YAML: did not find expected ',' or ']'`},
	{"syntax error: block", "a: 1\n b: 2\nc:\n- x\n  - y\n",
		`t.yaml:2: doc 1: invalid YAML: mapping values are not allowed in this context`},
	{"syntax error: key", "a:\n  b: 1\n c: 2\n",
		`t.yaml:3: doc 1: invalid YAML: did not find expected key`},
	{"syntax error: first line", "]\n",
		`t.yaml:1: doc 1: invalid YAML: did not find expected node content`},
	{"syntax error: tab", "a:\n\tb: 1\n",
		`t.yaml:2: doc 1: invalid YAML: found character that cannot start any token`},
	{"syntax error in doc 2", ksp(fileRule...) + "---\nkind: [\n",
		`t.yaml:11: doc 2: invalid YAML: did not find expected node content`},

	// Header.
	{"apiVersion missing", strings.Replace(ksp(fileRule...), "apiVersion: security.kubearmor.com/v1\n", "", 1),
		`t.yaml:1: doc 1: apiVersion: required: must be security.kubearmor.com/v1`},
	{"apiVersion wrong", strings.Replace(ksp(fileRule...), "/v1", "/v2", 1),
		`t.yaml:1: doc 1: apiVersion: "security.kubearmor.com/v2" is not supported: must be security.kubearmor.com/v1`},
	// The older forms in KubeArmor's own repository, which its API server refuses too.
	{"apiVersion accuknox", strings.Replace(ksp(fileRule...), "security.kubearmor.com", "security.accuknox.com", 1),
		`t.yaml:1: doc 1: apiVersion: "security.accuknox.com/v1" is not supported: must be security.kubearmor.com/v1 (security.accuknox.com is KubeArmor's old group, which its CRDs no longer serve: change the group)`},
	{"file fromSource dir", ksp("  file:", "    matchPaths:", "    - path: /etc/passwd", "      fromSource:", "      - dir: /bin/"),
		`t.yaml:10: doc 1: spec.file.matchPaths[0].fromSource[0].dir: unknown field "dir"; allowed: path; fromSource takes dir only in syscalls rules (KubeArmor's CRD has no dir here either, and its API server refuses the field): name each program by path` + "\n" +
			`t.yaml:10: doc 1: spec.file.matchPaths[0].fromSource[0].path: required: an absolute path such as /usr/bin/curl`},
	{"spec selinux", ksp("  selinux:", "    matchMountedVolumes:", "    - path: /var/log"),
		`t.yaml:6: doc 1: spec.selinux: unknown field "selinux"; allowed: selector, process, file, network, capabilities, syscalls, apparmor, severity, tags, message, action, presets; spec.selinux (matchMountedVolumes) belongs to an early KubeArmor schema that its CRDs no longer have, and its API server refuses the field: write file rules (spec.file), which the SELinux backend enforces for host policies`},
	{"spec fromSource", ksp(append(fileRule, "  fromSource:", "  - path: /bin/cat")...),
		`t.yaml:9: doc 1: spec.fromSource: unknown field "fromSource"; allowed: selector, process, file, network, capabilities, syscalls, apparmor, severity, tags, message, action, presets; fromSource belongs on a rule, such as spec.file.matchPaths[0].fromSource (KubeArmor's CRDs have no spec.fromSource either)`},
	{"windows path", ksp("  process:", "    matchPaths:", "    - path: C:/Windows/System32/cmd.exe"),
		`t.yaml:8: doc 1: spec.process.matchPaths[0].path: "C:/Windows/System32/cmd.exe" is not an absolute path: must start with "/" and not end with "/" (a Windows path: Ward enforces Linux hosts only, and KubeArmor's CRD refuses it too)`},
	{"preset as a string", ksp("  presets:", "  - filelessExec"),
		`t.yaml:7: doc 1: spec.presets[0]: expected a mapping, got a string (write - name: filelessExec; KubeArmor's CRD takes presets as {name, action} as well)`},
	{"kind missing", strings.Replace(ksp(fileRule...), "kind: KubeArmorPolicy\n", "", 1),
		`t.yaml:1: doc 1: kind: required: must be one of KubeArmorPolicy, KubeArmorClusterPolicy, KubeArmorHostPolicy`},
	{"kind unknown", strings.Replace(ksp(fileRule...), "KubeArmorPolicy", "KubeArmorPolicies", 1),
		`t.yaml:2: doc 1: kind: "KubeArmorPolicies" is not supported: must be one of KubeArmorPolicy, KubeArmorClusterPolicy, KubeArmorHostPolicy`},
	{"network policy", strings.Replace(ksp(fileRule...), "KubeArmorPolicy", "KubeArmorNetworkPolicy", 1),
		`t.yaml:2: doc 1: kind: kind KubeArmorNetworkPolicy is not supported: it is KubeArmor's nftables firewall policy, enforced by a component Ward does not have; use network rules (matchProtocols) in a KubeArmorPolicy or KubeArmorHostPolicy instead`},

	// Metadata.
	{"name missing", strings.Replace(ksp(fileRule...), "  name: t\n", "  labels: {a: b}\n", 1),
		`t.yaml:3: doc 1: metadata.name: required: a DNS-1123 subdomain such as block-passwd`},
	{"name invalid", strings.Replace(ksp(fileRule...), "name: t", "name: Block_Passwd", 1),
		`t.yaml:4: doc 1: metadata.name: "Block_Passwd" is not a valid name: must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters)`},
	{"namespace invalid", strings.Replace(ksp(fileRule...), "name: t", "name: t\n  namespace: My-NS", 1),
		`t.yaml:5: doc 1: metadata.namespace: "My-NS" is not a valid namespace: must be a DNS-1123 label (lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)`},

	// SMTA.
	{"severity too high", ksp(with(fileRule, "  severity: 11")...),
		`t.yaml:9: doc 1: spec.severity: 11 is out of range: must be 1..10`},
	{"severity zero written", ksp(with(fileRule, "      severity: 0")...),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].severity: 0 is out of range: must be 1..10`},
	{"action unknown", ksp(with(fileRule, "      action: Deny")...),
		`t.yaml:9: doc 1: spec.file.matchPaths[0].action: "Deny" is not an action: must be Allow, Audit or Block`},
	{"action empty", ksp("  file:", `    action: ""`, "    matchPaths:", "    - path: /etc/passwd"),
		`t.yaml:7: doc 1: spec.file.action: "" is not an action: must be Allow, Audit or Block`},
	{"syscalls have no action", ksp("  syscalls:", "    action: Block", "    matchSyscalls:", "    - syscall: [unlink]"),
		`t.yaml:7: doc 1: spec.syscalls.action: unknown field "action"; allowed: matchSyscalls, matchPaths, severity, tags, message`},

	// Paths.
	{"relative path", ksp("  file:", "    matchPaths:", "    - path: etc/passwd"),
		`t.yaml:8: doc 1: spec.file.matchPaths[0].path: "etc/passwd" is not an absolute path: must start with "/" and not end with "/"`},
	{"path with trailing slash", ksp("  file:", "    matchPaths:", "    - path: /etc/"),
		`t.yaml:8: doc 1: spec.file.matchPaths[0].path: "/etc/" is not an absolute path: must start with "/" and not end with "/" (use matchDirectories for a directory)`},
	{"path missing", ksp("  file:", "    matchPaths:", "    - readOnly: true"),
		`t.yaml:8: doc 1: spec.file.matchPaths[0].path: required: an absolute path such as /etc/passwd`},
	{"path too long", ksp("  file:", "    matchPaths:", "    - path: /"+strings.Repeat("a", 200)),
		`t.yaml:8: doc 1: spec.file.matchPaths[0].path: path is 201 characters long: at most 200 are allowed`},
	{"path control character", ksp("  file:", "    matchPaths:", `    - path: "/etc/pass\nwd"`),
		`t.yaml:8: doc 1: spec.file.matchPaths[0].path: "/etc/pass\nwd" contains a control character: a path must be printable`},
	{"dir relative", ksp("  process:", "    matchDirectories:", "    - dir: usr/bin/"),
		`t.yaml:8: doc 1: spec.process.matchDirectories[0].dir: "usr/bin/" is not a directory: must be an absolute path ending in "/", such as /etc/`},
	{"syscall source dir relative", ksp("  syscalls:", "    matchSyscalls:", "    - syscall: [unlink]", "      fromSource:", "      - dir: bin"),
		`t.yaml:10: doc 1: spec.syscalls.matchSyscalls[0].fromSource[0].dir: "bin" is not a directory: must be an absolute path ending in "/", such as /etc/`},
	{"dir missing", ksp("  file:", "    matchDirectories:", "    - recursive: true"),
		`t.yaml:8: doc 1: spec.file.matchDirectories[0].dir: required: an absolute directory path ending in "/", such as /etc/`},
	{"fromSource relative", ksp("  process:", "    matchPaths:", "    - path: /bin/sh", "      fromSource:", "      - path: bash"),
		`t.yaml:10: doc 1: spec.process.matchPaths[0].fromSource[0].path: "bash" is not an absolute path: must start with "/" and not end with "/"`},
	{"execname with slash", ksp("  process:", "    matchPaths:", "    - execname: /bin/sh"),
		`t.yaml:8: doc 1: spec.process.matchPaths[0].execname: "/bin/sh" is not an executable name: must not contain "/" (use path for a full path)`},
	{"path and execname", ksp("  process:", "    matchPaths:", "    - path: /bin/sh", "      execname: sh"),
		`t.yaml:8: doc 1: spec.process.matchPaths[0]: set path or execname, not both`},
	{"neither path nor execname", ksp("  process:", "    matchPaths:", "    - ownerOnly: true"),
		`t.yaml:8: doc 1: spec.process.matchPaths[0]: path or execname is required`},
	{"too many allowedArgs", ksp("  process:", "    matchPaths:", "    - path: /bin/ls",
		"      allowedArgs: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u]"),
		`t.yaml:9: doc 1: spec.process.matchPaths[0].allowedArgs: 21 arguments listed: at most 20 are allowed`},
	{"pattern missing", ksp("  file:", "    matchPatterns:", "    - readOnly: true"),
		`t.yaml:8: doc 1: spec.file.matchPatterns[0].pattern: required: a glob pattern such as /etc/*.conf`},
	{"pattern invalid", ksp("  process:", "    matchPatterns:", "    - pattern: /tmp/[a-"),
		`t.yaml:8: doc 1: spec.process.matchPatterns[0].pattern: "/tmp/[a-" is not a valid pattern: check the brackets and backslashes (*, **, ?, [...] and \ are special)`},

	// Network and capabilities.
	{"protocol unknown", ksp("  network:", "    matchProtocols:", "    - protocol: tcp,http"),
		`t.yaml:8: doc 1: spec.network.matchProtocols[0].protocol: "http" is not a protocol: must be one of tcp, udp, icmp, icmpv6, raw, sctp, stream, dgram, rdm, seqpacket, dccp, packet, all, or an address family such as AF_RDS (or a comma-separated list of them)`},
	{"protocol garbage KubeArmor accepts", ksp("  network:", "    matchProtocols:", "    - protocol: xyztcp"),
		`t.yaml:8: doc 1: spec.network.matchProtocols[0].protocol: "xyztcp" is not a protocol: must be one of tcp, udp, icmp, icmpv6, raw, sctp, stream, dgram, rdm, seqpacket, dccp, packet, all, or an address family such as AF_RDS (or a comma-separated list of them)`},
	{"address family unknown", ksp("  network:", "    matchProtocols:", "    - protocol: AF_WARD"),
		`t.yaml:8: doc 1: spec.network.matchProtocols[0].protocol: "AF_WARD" is not a Linux address family: must be one of ` + familyList()},
	{"protocol empty entry", ksp("  network:", "    matchProtocols:", "    - protocol: tcp,,udp"),
		`t.yaml:8: doc 1: spec.network.matchProtocols[0].protocol: "tcp,,udp" has an empty entry: write one value or a comma-separated list such as "tcp,udp"`},
	{"protocol missing", ksp("  network:", "    matchProtocols:", "    - protocol: ''"),
		`t.yaml:8: doc 1: spec.network.matchProtocols[0].protocol: required: a protocol such as tcp,udp`},
	{"domain with space", ksp("  network:", "    matchDNSQueries:", "    - domain: exa mple.com"),
		`t.yaml:8: doc 1: spec.network.matchDNSQueries[0].domain: "exa mple.com" is not a domain name: it contains a space or control character`},
	{"domain missing", ksp("  network:", "    matchDNSQueries:", "    - fromSource: [{path: /bin/curl}]"),
		`t.yaml:8: doc 1: spec.network.matchDNSQueries[0].domain: required: a domain such as example.com`},
	{"capability unknown", ksp("  capabilities:", "    matchCapabilities:", "    - capability: net_rawx"),
		`t.yaml:8: doc 1: spec.capabilities.matchCapabilities[0].capability: "net_rawx" is not a capability: must be one of chown, dac_override, dac_read_search, fowner, fsetid, kill, setgid, setuid, setpcap, linux_immutable, net_bind_service, net_broadcast, net_admin, net_raw, ipc_lock, ipc_owner, sys_module, sys_rawio, sys_chroot, sys_ptrace, sys_pacct, sys_admin, sys_boot, sys_nice, sys_resource, sys_time, sys_tty_config, mknod, lease, audit_write, audit_control, setfcap, mac_override, mac_admin, syslog, wake_alarm, block_suspend, audit_read, perfmon, bpf, checkpoint_restore`},
	{"capability missing", ksp("  capabilities:", "    matchCapabilities:", "    - action: Block"),
		`t.yaml:8: doc 1: spec.capabilities.matchCapabilities[0].capability: required: a capability such as net_raw`},

	// Syscalls.
	{"syscall unknown", ksp("  syscalls:", "    matchSyscalls:", "    - syscall: [unlink, unlnkat]"),
		`t.yaml:8: doc 1: spec.syscalls.matchSyscalls[0].syscall[1]: "unlnkat" is not an x86_64 system call (did you mean "unlinkat"?): must be a name from the kernel's table, such as openat`},
	{"syscall list missing", ksp("  syscalls:", "    matchSyscalls:", "    - fromSource: [{path: /bin/rm}]"),
		`t.yaml:8: doc 1: spec.syscalls.matchSyscalls[0].syscall: required: list the system calls to audit, such as [unlink, unlinkat]`},
	{"syscall source path and dir", ksp("  syscalls:", "    matchSyscalls:", "    - syscall: [unlink]", "      fromSource:", "      - path: /bin/rm", "        dir: /bin/"),
		`t.yaml:10: doc 1: spec.syscalls.matchSyscalls[0].fromSource[0]: set path or dir, not both`},
	{"syscall source recursive path", ksp("  syscalls:", "    matchSyscalls:", "    - syscall: [unlink]", "      fromSource:", "      - path: /bin/rm", "        recursive: true"),
		`t.yaml:11: doc 1: spec.syscalls.matchSyscalls[0].fromSource[0].recursive: applies only to dir`},
	{"syscall source empty", ksp("  syscalls:", "    matchSyscalls:", "    - syscall: [unlink]", "      fromSource:", "      - {}"),
		`t.yaml:10: doc 1: spec.syscalls.matchSyscalls[0].fromSource[0]: path or dir is required`},
	{"syscall path relative", ksp("  syscalls:", "    matchPaths:", "    - path: tmp/", "      syscall: [rmdir]"),
		`t.yaml:8: doc 1: spec.syscalls.matchPaths[0].path: "tmp/" is not an absolute path: must start with "/" (and end with "/" for a directory)`},

	// Presets and devices.
	{"preset unknown", ksp("  presets:", "  - name: protectEnvs"),
		`t.yaml:7: doc 1: spec.presets[0].name: "protectEnvs" is not a preset: must be one of protectEnv, filelessExec, exec, protectProc, anonymousMapExec`},
	{"preset in host policy", hsp("  presets:", "  - name: exec"),
		`t.yaml:9: doc 1: spec.presets: unknown field "presets"; allowed: nodeSelector, process, file, network, capabilities, syscalls, apparmor, severity, tags, message, action, device`},
	{"device in container policy", ksp("  device:", "    matchDevice:", "    - class: HID"),
		`t.yaml:6: doc 1: spec.device: unknown field "device"; allowed: selector, process, file, network, capabilities, syscalls, apparmor, severity, tags, message, action, presets`},
	{"device class unknown", hsp("  device:", "    matchDevice:", "    - class: FLOPPY"),
		`t.yaml:11: doc 1: spec.device.matchDevice[0].class: "FLOPPY" is not a USB device class: must be one of AUDIO, COMMUNICATION-CDC, HID, PHYSICAL, IMAGE, PRINTER, MASS-STORAGE, HUB, CDC-DATA, SMART-CARD, CONTENT-SECURITY, VIDEO, PERSONAL-HEALTHCARE, AUDIO/VIDEO, BILLBOARD, TYPE-C-BRIDGE, BULK-DISPLAY, MCTP, I3C, DIAGNOSTIC, WIRELESS-CONTROLLER, MISCELLANEOUS, APPLICATION-SPECIFIC, VENDOR-SPECIFIC, or its number`},
	{"device subclass out of range", hsp("  device:", "    matchDevice:", "    - class: HID", "      subClass: 256"),
		`t.yaml:12: doc 1: spec.device.matchDevice[0].subClass: 256 is out of range: must be 0..255`},
	{"device class missing", hsp("  device:", "    matchDevice:", "    - level: 1"),
		`t.yaml:11: doc 1: spec.device.matchDevice[0].class: required: a USB class name such as MASS-STORAGE, or its number such as 0x08`},

	// Selectors.
	{"ksp namespace key", ksp(with([]string{"  selector:", "    matchExpressions:", "    - key: namespace", "      operator: In", "      values: [prod]"}, fileRule...)...),
		`t.yaml:8: doc 1: spec.selector.matchExpressions[0].key: "namespace" is not a selector key for KubeArmorPolicy: must be label`},
	{"operator unknown", csp(with([]string{"  selector:", "    matchExpressions:", "    - key: label", "      operator: Exists", "      values: [a=b]"}, fileRule...)...),
		`t.yaml:9: doc 1: spec.selector.matchExpressions[0].operator: "Exists" is not an operator: must be In or NotIn`},
	{"values missing", csp(with([]string{"  selector:", "    matchExpressions:", "    - key: namespace", "      operator: In"}, fileRule...)...),
		`t.yaml:8: doc 1: spec.selector.matchExpressions[0].values: required: list at least one value`},
	{"label value not k=v", ksp(with([]string{"  selector:", "    matchExpressions:", "    - key: label", "      operator: In", "      values: [nginx]"}, fileRule...)...),
		`t.yaml:10: doc 1: spec.selector.matchExpressions[0].values[0]: "nginx" is not a label: must be key=value such as app=nginx`},
	{"namespace value invalid", csp(with([]string{"  selector:", "    matchExpressions:", "    - key: namespace", "      operator: In", "      values: [Prod_1]"}, fileRule...)...),
		`t.yaml:10: doc 1: spec.selector.matchExpressions[0].values[0]: "Prod_1" is not a namespace name: must be a DNS-1123 label such as prod`},
	{"csp key unknown", csp(with([]string{"  selector:", "    matchExpressions:", "    - key: pod", "      operator: In", "      values: [a]"}, fileRule...)...),
		`t.yaml:8: doc 1: spec.selector.matchExpressions[0].key: "pod" is not a selector key for KubeArmorClusterPolicy: must be namespace or label`},
	{"csp matchLabels", csp(with([]string{"  selector:", "    matchLabels:", "      app: nginx"}, fileRule...)...),
		`t.yaml:7: doc 1: spec.selector.matchLabels: not used by KubeArmorClusterPolicy: use matchExpressions with key namespace or label (for example key: label, operator: In, values: [app=nginx])`},
	{"label key invalid", ksp(with([]string{"  selector:", "    matchLabels:", "      -app: nginx"}, fileRule...)...),
		`t.yaml:8: doc 1: spec.selector.matchLabels[-app]: "-app" is not a label key: must be a name of at most 63 letters, digits, "-", "_" and "." (starting and ending with a letter or digit), optionally after a DNS subdomain prefix and "/", such as app.kubernetes.io/name`},
	{"host nodeSelector missing", strings.Replace(hsp(fileRule...), "  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: node1\n", "", 1),
		`t.yaml:5: doc 1: spec.nodeSelector.matchLabels: required: a KubeArmorHostPolicy selects nodes by label, for example kubernetes.io/hostname: node1`},
	{"host nodeSelector empty", strings.Replace(hsp(fileRule...), "    matchLabels:\n      kubernetes.io/hostname: node1\n", "    matchLabels: {}\n", 1),
		`t.yaml:7: doc 1: spec.nodeSelector.matchLabels: required: a KubeArmorHostPolicy selects nodes by label, for example kubernetes.io/hostname: node1`},

	// Whole policy.
	{"no rules", ksp("  action: Block", "  process:", "    severity: 3"),
		`t.yaml:5: doc 1: spec: no rules: set at least one of process, file, network, capabilities, syscalls, presets or apparmor`},
	{"no rules host", hsp("  severity: 3"),
		`t.yaml:5: doc 1: spec: no rules: set at least one of process, file, network, capabilities, syscalls, device or apparmor`},
	{"no spec", "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: t\n",
		`t.yaml:1: doc 1: spec: no rules: set at least one of process, file, network, capabilities, syscalls, presets or apparmor`},
	{"defined twice", ksp(fileRule...) + "---\n" + ksp(fileRule...),
		`t.yaml:10: doc 2: metadata.name: policy KubeArmorPolicy/container_namespace/t is defined twice (first in doc 1, line 1)`},
	{"errors in two documents", ksp("  file:", "    matchPaths:", "    - path: a") + "---\n" + ksp("  file:", "    matchPaths:", "    - path: b"),
		"t.yaml:8: doc 1: spec.file.matchPaths[0].path: \"a\" is not an absolute path: must start with \"/\" and not end with \"/\"\n" +
			"t.yaml:17: doc 2: spec.file.matchPaths[0].path: \"b\" is not an absolute path: must start with \"/\" and not end with \"/\""},
	{"several errors in one document", ksp("  severity: 0", "  file:", "    matchPaths:", "    - path: a", "      action: nope"),
		"t.yaml:6: doc 1: spec.severity: 0 is out of range: must be 1..10\n" +
			"t.yaml:9: doc 1: spec.file.matchPaths[0].path: \"a\" is not an absolute path: must start with \"/\" and not end with \"/\"\n" +
			"t.yaml:10: doc 1: spec.file.matchPaths[0].action: \"nope\" is not an action: must be Allow, Audit or Block"},
	{"json", "{\n\t\"apiVersion\": \"security.kubearmor.com\\/v1\",\n\t\"kind\": \"KubeArmorPolicy\",\n\t\"metadata\": {\"name\": \"t\"},\n\t\"spec\": {\"file\": {\"matchPath\": []}}\n}\n",
		`t.yaml:5: doc 1: spec.file.matchPath: unknown field "matchPath"; allowed: matchPaths, matchDirectories, matchPatterns, severity, tags, message, action (did you mean "matchPaths"?)`},
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range validationCases {
		t.Run(tc.name, func(t *testing.T) {
			ps, _, err := Parse("t.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; want:\n%s", tc.want)
			}
			if ps != nil {
				t.Errorf("policies returned together with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s\ninput:\n%s", got, tc.want, numbered(tc.in))
			}
		})
	}
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, l)
	}
	return b.String()
}
