package rules

import (
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload"
)

// Helpers that build normalised rules the way internal/policy emits them.

type ruleOpt func(*policy.Rule)

func readOnly(r *policy.Rule)  { r.ReadOnly = true }
func ownerOnly(r *policy.Rule) { r.OwnerOnly = true }
func recursive(r *policy.Rule) { r.Recursive = true }
func from(exe string) ruleOpt {
	return func(r *policy.Rule) { r.FromSource = append(r.FromSource, policy.FromSource{Path: exe}) }
}
func pts(v bool) ruleOpt { return func(r *policy.Rule) { r.PTS = &v } }
func args(a ...string) ruleOpt {
	return func(r *policy.Rule) { r.AllowedArgs = a }
}
func meta(sev int, msg string, tags ...string) ruleOpt {
	return func(r *policy.Rule) { r.Severity, r.Message, r.Tags = sev, msg, tags }
}
func field(f string) ruleOpt { return func(r *policy.Rule) { r.Field = f } }

func rule(op policy.Operation, m policy.MatchKind, value string, action policy.Action, opts ...ruleOpt) policy.Rule {
	r := policy.Rule{Operation: op, Match: m, Value: value, Action: action, Field: "spec." + string(m)}
	for _, o := range opts {
		o(&r)
	}
	return r
}

const (
	allow = policy.ActionAllow
	audit = policy.ActionAudit
	block = policy.ActionBlock
)

func hostPolicy(name string, rules ...policy.Rule) policy.Policy {
	return policy.Policy{
		Kind: policy.KindHostPolicy, Name: name,
		Selector: policy.Selector{NodeLabels: map[string]string{"kubearmor.io/hostname": "*"}},
		Rules:    rules,
	}
}

func fileAccess(path string, opts ...func(*Access)) Access {
	a := Access{Op: policy.OpFile, Path: path, Source: "/usr/bin/cat"}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func execAccess(path, parent string, opts ...func(*Access)) Access {
	a := Access{Op: policy.OpProcess, Path: path, Source: parent}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func write(a *Access)            { a.Write = true }
func uid(u uint32) func(*Access) { return func(a *Access) { a.UID = u } }
func owner(o uint32) func(*Access) {
	return func(a *Access) { a.Owner = o }
}
func tty(a *Access)                 { a.TTY = true }
func source(s string) func(*Access) { return func(a *Access) { a.Source = s } }
func argv(v ...string) func(*Access) {
	return func(a *Access) { a.Args = v }
}

type want struct {
	action  policy.Action
	policy  string
	rule    string
	posture bool
	alert   bool
}

var (
	allowed = want{action: allow}
)

func blocked(pol, rule string) want { return want{action: block, policy: pol, rule: rule, alert: true} }
func audited(pol, rule string) want { return want{action: audit, policy: pol, rule: rule, alert: true} }
func allowedBy(pol, rule string) want {
	return want{action: allow, policy: pol, rule: rule}
}
func postured(a policy.Action) want {
	return want{action: a, policy: DefaultPosturePolicy, posture: true, alert: true}
}

type decideCase struct {
	name     string
	policies []policy.Policy
	postures Postures
	access   Access
	want     want
}

func runDecideCases(t *testing.T, cases []decideCase) {
	t.Helper()
	host := workload.Host("node1", nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := Compile(c.policies, host, c.postures)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got := set.Decide(c.access)
			if got.Action != c.want.action || got.Policy != c.want.policy || got.Rule != c.want.rule ||
				got.Posture != c.want.posture || got.Alert != c.want.alert {
				t.Errorf("Decide(%+v)\n got: action=%s policy=%q rule=%q posture=%v alert=%v\nwant: action=%s policy=%q rule=%q posture=%v alert=%v",
					c.access, got.Action, got.Policy, got.Rule, got.Posture, got.Alert,
					c.want.action, c.want.policy, c.want.rule, c.want.posture, c.want.alert)
			}
		})
	}
}

var (
	auditPostures = DefaultPostures()
	blockPostures = Postures{File: block, Network: block, Capabilities: block}
)

func TestDecideActions(t *testing.T) {
	p := func(r policy.Rule) []policy.Policy { return []policy.Policy{hostPolicy("p", r)} }
	pathRule := func(a policy.Action, opts ...ruleOpt) policy.Rule {
		return rule(policy.OpFile, policy.MatchPath, "/etc/secret", a, append([]ruleOpt{field("spec.file.matchPaths[0]")}, opts...)...)
	}
	const f = "spec.file.matchPaths[0]"
	runDecideCases(t, []decideCase{
		{"block denies the path", p(pathRule(block)), auditPostures, fileAccess("/etc/secret"), blocked("p", f)},
		{"block denies writes too", p(pathRule(block)), auditPostures, fileAccess("/etc/secret", write), blocked("p", f)},
		{"block leaves other paths alone", p(pathRule(block)), auditPostures, fileAccess("/etc/other"), allowed},
		{"audit permits and reports", p(pathRule(audit)), auditPostures, fileAccess("/etc/secret"), audited("p", f)},
		{"audit leaves other paths unreported", p(pathRule(audit)), auditPostures, fileAccess("/etc/other"), allowed},
		{"allow permits silently", p(pathRule(allow)), auditPostures, fileAccess("/etc/secret"), allowedBy("p", f)},
		{"allow makes an allow-list: others get the audit posture", p(pathRule(allow)), auditPostures, fileAccess("/etc/other"), postured(audit)},
		{"allow makes an allow-list: others get the block posture", p(pathRule(allow)), blockPostures, fileAccess("/etc/other"), postured(block)},
		{"no allow rule: posture never applies", p(pathRule(block)), blockPostures, fileAccess("/etc/other"), allowed},
		{"file allow-list leaves network alone", p(pathRule(allow)), blockPostures,
			Access{Op: policy.OpNetwork, Family: "inet", SockType: "stream", Protocol: "tcp"}, allowed},
		{"file allow-list leaves process execution alone", p(pathRule(allow)), blockPostures,
			execAccess("/usr/bin/ls", "/bin/sh"), allowed},
	})
}

func TestDecideModifiers(t *testing.T) {
	p := func(a policy.Action, opts ...ruleOpt) []policy.Policy {
		return []policy.Policy{hostPolicy("p", rule(policy.OpFile, policy.MatchPath, "/data/f", a,
			append([]ruleOpt{field("r")}, opts...)...))}
	}
	read := func(u, o uint32) Access { return fileAccess("/data/f", uid(u), owner(o)) }
	wr := func(u, o uint32) Access { return fileAccess("/data/f", uid(u), owner(o), write) }
	runDecideCases(t, []decideCase{
		// Block+readOnly: reads pass, writes are denied.
		{"block readOnly read", p(block, readOnly), auditPostures, read(0, 0), allowed},
		{"block readOnly write", p(block, readOnly), auditPostures, wr(0, 0), blocked("p", "r")},
		// Block+ownerOnly: the owner passes (reads and writes), everyone else is denied.
		{"block ownerOnly owner read", p(block, ownerOnly), auditPostures, read(1000, 1000), allowed},
		{"block ownerOnly owner write", p(block, ownerOnly), auditPostures, wr(1000, 1000), allowed},
		{"block ownerOnly other read", p(block, ownerOnly), auditPostures, read(1001, 1000), blocked("p", "r")},
		{"block ownerOnly other write", p(block, ownerOnly), auditPostures, wr(1001, 1000), blocked("p", "r")},
		// Block+both: the owner may read; the owner's writes and all access by others are denied.
		{"block both owner read", p(block, readOnly, ownerOnly), auditPostures, read(5, 5), allowed},
		{"block both owner write", p(block, readOnly, ownerOnly), auditPostures, wr(5, 5), blocked("p", "r")},
		{"block both other read", p(block, readOnly, ownerOnly), auditPostures, read(6, 5), blocked("p", "r")},
		{"block both other write", p(block, readOnly, ownerOnly), auditPostures, wr(6, 5), blocked("p", "r")},
		// Allow+readOnly: reads allowed, writes go to the posture.
		{"allow readOnly read", p(allow, readOnly), blockPostures, read(0, 0), allowedBy("p", "r")},
		{"allow readOnly write to posture", p(allow, readOnly), blockPostures, wr(0, 0), postured(block)},
		{"allow ownerOnly other to posture", p(allow, ownerOnly), auditPostures, read(1, 0), postured(audit)},
		{"allow ownerOnly owner", p(allow, ownerOnly), auditPostures, read(3, 3), allowedBy("p", "r")},
		// Audit is a dry run of Block: it reports exactly the accesses Block would deny, and
		// permits them.
		{"audit readOnly read unreported", p(audit, readOnly), auditPostures, read(0, 0), allowed},
		{"audit readOnly write reported", p(audit, readOnly), auditPostures, wr(0, 0), audited("p", "r")},
		{"audit ownerOnly owner read unreported", p(audit, ownerOnly), auditPostures, read(7, 7), allowed},
		{"audit ownerOnly owner write unreported", p(audit, ownerOnly), auditPostures, wr(7, 7), allowed},
		{"audit ownerOnly other read reported", p(audit, ownerOnly), auditPostures, read(8, 7), audited("p", "r")},
		{"audit ownerOnly other write reported", p(audit, ownerOnly), auditPostures, wr(8, 7), audited("p", "r")},
		{"audit both owner read unreported", p(audit, readOnly, ownerOnly), auditPostures, read(5, 5), allowed},
		{"audit both owner write reported", p(audit, readOnly, ownerOnly), auditPostures, wr(5, 5), audited("p", "r")},
		{"audit both other read reported", p(audit, readOnly, ownerOnly), auditPostures, read(6, 5), audited("p", "r")},
		{"audit both other write reported", p(audit, readOnly, ownerOnly), auditPostures, wr(6, 5), audited("p", "r")},
		{"audit pts=false with terminal reported", p(audit, pts(false)), auditPostures, fileAccess("/data/f", tty), audited("p", "r")},
		{"audit pts=false without terminal unreported", p(audit, pts(false)), auditPostures, fileAccess("/data/f"), allowed},
		// A dry run never opens an allow-list: the posture stays out of it.
		{"audit readOnly read under block posture", p(audit, readOnly), blockPostures, read(0, 0), allowed},
		// pts: the value says whether terminal access is inside the permitted set.
		{"block pts=false with terminal", p(block, pts(false)), auditPostures, fileAccess("/data/f", tty), blocked("p", "r")},
		{"block pts=false without terminal", p(block, pts(false)), auditPostures, fileAccess("/data/f"), allowed},
	})
}

func TestDecideProcess(t *testing.T) {
	exe := func(a policy.Action, opts ...ruleOpt) policy.Rule {
		return rule(policy.OpProcess, policy.MatchPath, "/usr/bin/curl", a, append([]ruleOpt{field("proc")}, opts...)...)
	}
	one := func(r policy.Rule) []policy.Policy { return []policy.Policy{hostPolicy("p", r)} }
	runDecideCases(t, []decideCase{
		{"block exec", one(exe(block)), auditPostures, execAccess("/usr/bin/curl", "/bin/sh"), blocked("p", "proc")},
		{"block exec ownerOnly: owner runs", one(exe(block, ownerOnly)), auditPostures,
			execAccess("/usr/bin/curl", "/bin/sh", uid(1000), owner(1000)), allowed},
		{"block exec ownerOnly: others denied", one(exe(block, ownerOnly)), auditPostures,
			execAccess("/usr/bin/curl", "/bin/sh", uid(1001), owner(1000)), blocked("p", "proc")},
		{"fromSource is the parent performing the exec", one(exe(block, from("/bin/bash"))), auditPostures,
			execAccess("/usr/bin/curl", "/bin/bash"), blocked("p", "proc")},
		{"fromSource: other parents unaffected", one(exe(block, from("/bin/bash"))), auditPostures,
			execAccess("/usr/bin/curl", "/bin/sh"), allowed},
		{"execname matches the base name anywhere", one(rule(policy.OpProcess, policy.MatchExecName, "curl", block, field("en"))),
			auditPostures, execAccess("/opt/x/curl", "/bin/sh"), blocked("p", "en")},
		{"execname does not match other names", one(rule(policy.OpProcess, policy.MatchExecName, "curl", block, field("en"))),
			auditPostures, execAccess("/opt/x/curlx", "/bin/sh"), allowed},
		{"process allow-list uses the file posture", one(exe(allow)), Postures{File: block, Network: audit, Capabilities: audit},
			execAccess("/usr/bin/wget", "/bin/sh"), postured(block)},
		{"process allow-list permits the listed program", one(exe(allow)), blockPostures,
			execAccess("/usr/bin/curl", "/bin/sh"), allowedBy("p", "proc")},
		{"process allow-list leaves file reads alone", one(exe(allow)), blockPostures,
			fileAccess("/etc/hosts"), allowed},
		{"allowedArgs: listed arguments run", one(exe(allow, args("-s", "-I"))), blockPostures,
			execAccess("/usr/bin/curl", "/bin/sh", argv("-s")), allowedBy("p", "proc")},
		{"allowedArgs: other arguments go to the posture", one(exe(allow, args("-s"))), blockPostures,
			execAccess("/usr/bin/curl", "/bin/sh", argv("-o", "/tmp/x")), postured(block)},
		{"block allowedArgs: other arguments are denied", one(exe(block, args("--version"))), auditPostures,
			execAccess("/usr/bin/curl", "/bin/sh", argv("http://x")), blocked("p", "proc")},
		{"block allowedArgs: listed arguments pass", one(exe(block, args("--version"))), auditPostures,
			execAccess("/usr/bin/curl", "/bin/sh", argv("--version")), allowed},
	})
}

func TestDecideDirectoriesAndPatterns(t *testing.T) {
	dir := func(d string, opts ...ruleOpt) []policy.Policy {
		return []policy.Policy{hostPolicy("p", rule(policy.OpFile, policy.MatchDirectory, d, block, append([]ruleOpt{field("d")}, opts...)...))}
	}
	pat := func(pattern string) []policy.Policy {
		return []policy.Policy{hostPolicy("p", rule(policy.OpFile, policy.MatchPattern, pattern, block, field("g")))}
	}
	runDecideCases(t, []decideCase{
		{"dir: direct child", dir("/etc/ssl/"), auditPostures, fileAccess("/etc/ssl/key.pem"), blocked("p", "d")},
		{"dir: the directory itself", dir("/etc/ssl/"), auditPostures, fileAccess("/etc/ssl"), blocked("p", "d")},
		{"dir: grandchild not covered without recursive", dir("/etc/ssl/"), auditPostures, fileAccess("/etc/ssl/private/key.pem"), allowed},
		{"dir recursive: grandchild", dir("/etc/ssl/", recursive), auditPostures, fileAccess("/etc/ssl/private/key.pem"), blocked("p", "d")},
		{"dir: sibling with common prefix not covered", dir("/etc/ssl/", recursive), auditPostures, fileAccess("/etc/sslx/a"), allowed},
		{"dir: root recursive covers everything", dir("/", recursive), auditPostures, fileAccess("/a/b/c/d"), blocked("p", "d")},
		{"dir: root direct children", dir("/"), auditPostures, fileAccess("/a"), blocked("p", "d")},
		{"dir: root not recursive", dir("/"), auditPostures, fileAccess("/a/b"), allowed},
		{"pattern *", pat("/etc/*.key"), auditPostures, fileAccess("/etc/a.key"), blocked("p", "g")},
		{"pattern * stays in one component", pat("/etc/*.key"), auditPostures, fileAccess("/etc/x/a.key"), allowed},
		{"pattern **", pat("/home/**/id_rsa"), auditPostures, fileAccess("/home/u/.ssh/id_rsa"), blocked("p", "g")},
		{"pattern ?", pat("/dev/tty?"), auditPostures, fileAccess("/dev/tty1"), blocked("p", "g")},
		{"pattern [...]", pat("/dev/sd[ab]"), auditPostures, fileAccess("/dev/sdc"), allowed},
		{"pattern anchored at root", pat("/**/shadow"), auditPostures, fileAccess("/etc/shadow"), blocked("p", "g")},
	})
}

func TestDecidePrecedence(t *testing.T) {
	hp := func(name string, rs ...policy.Rule) policy.Policy { return hostPolicy(name, rs...) }
	f := func(m policy.MatchKind, v string, a policy.Action, fld string, opts ...ruleOpt) policy.Rule {
		return rule(policy.OpFile, m, v, a, append([]ruleOpt{field(fld)}, opts...)...)
	}
	runDecideCases(t, []decideCase{
		{"block beats allow on the same path",
			[]policy.Policy{hp("a", f(policy.MatchPath, "/x", allow, "allow")), hp("b", f(policy.MatchPath, "/x", block, "block"))},
			auditPostures, fileAccess("/x"), blocked("b", "block")},
		{"block on a directory beats allow on a path inside it",
			[]policy.Policy{hp("p", f(policy.MatchDirectory, "/srv/", block, "dir", recursive), f(policy.MatchPath, "/srv/ok", allow, "path"))},
			auditPostures, fileAccess("/srv/ok"), blocked("p", "dir")},
		{"audit beats allow: the access is permitted and reported",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", allow, "allow"), f(policy.MatchDirectory, "/", audit, "audit", recursive))},
			auditPostures, fileAccess("/x"), audited("p", "audit")},
		{"same action: the exact path names the verdict over the directory",
			[]policy.Policy{hp("p", f(policy.MatchDirectory, "/srv/", block, "dir", recursive), f(policy.MatchPath, "/srv/a", block, "path"))},
			auditPostures, fileAccess("/srv/a"), blocked("p", "path")},
		{"same action: the deeper directory names the verdict",
			[]policy.Policy{hp("p", f(policy.MatchDirectory, "/srv/", block, "outer", recursive), f(policy.MatchDirectory, "/srv/in/", block, "inner", recursive))},
			auditPostures, fileAccess("/srv/in/a"), blocked("p", "inner")},
		{"same action: a directory names the verdict over a pattern",
			[]policy.Policy{hp("p", f(policy.MatchPattern, "/srv/**", block, "pat"), f(policy.MatchDirectory, "/srv/", block, "dir", recursive))},
			auditPostures, fileAccess("/srv/a/b"), blocked("p", "dir")},
		{"two policies, block and audit: block wins",
			[]policy.Policy{hp("audit-all", f(policy.MatchDirectory, "/", audit, "a", recursive)), hp("block-x", f(policy.MatchPath, "/x", block, "b"))},
			auditPostures, fileAccess("/x"), blocked("block-x", "b")},
		{"two policies, same action, same target: the first by name",
			[]policy.Policy{hp("zeta", f(policy.MatchPath, "/x", block, "z")), hp("alpha", f(policy.MatchPath, "/x", block, "a"))},
			auditPostures, fileAccess("/x"), blocked("alpha", "a")},
		{"allow readOnly with a write, block posture",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/cfg", allow, "ro", readOnly))},
			blockPostures, fileAccess("/cfg", write), postured(block)},
		{"fromSource scoped rule names the verdict over an unscoped one",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", audit, "any"), f(policy.MatchPath, "/x", audit, "cat", from("/usr/bin/cat")))},
			auditPostures, fileAccess("/x"), audited("p", "cat")},
	})
}

// TestDecideSpecificBeforeGeneral: a rule limited by fromSource decides before the rules without
// one; among rules of equal specificity Block beats Audit beats Allow.
func TestDecideSpecificBeforeGeneral(t *testing.T) {
	const sa = "/run/secrets/kubernetes.io/serviceaccount/"
	const token = sa + "token"
	hp := func(name string, rs ...policy.Rule) policy.Policy { return hostPolicy(name, rs...) }
	f := func(m policy.MatchKind, v string, a policy.Action, fld string, opts ...ruleOpt) policy.Rule {
		return rule(policy.OpFile, m, v, a, append([]ruleOpt{field(fld)}, opts...)...)
	}
	// The service-account case: a general Block of the directory, and an Allow of it for cat.
	lenient := []policy.Policy{
		hp("block-sa", f(policy.MatchDirectory, sa, block, "dir", recursive)),
		hp("allow-cat", f(policy.MatchDirectory, sa, allow, "cat", recursive, from("/bin/cat"))),
	}
	readOnlyCat := []policy.Policy{hp("p",
		f(policy.MatchDirectory, sa, block, "dir", recursive),
		f(policy.MatchDirectory, sa, allow, "cat", recursive, readOnly, from("/bin/cat")))}
	runDecideCases(t, []decideCase{
		{"the named program may read what the general rule blocks", lenient, auditPostures,
			fileAccess(token, source("/bin/cat")), allowedBy("allow-cat", "cat")},
		{"the named program may write it too", lenient, auditPostures,
			fileAccess(token, source("/bin/cat"), write), allowedBy("allow-cat", "cat")},
		{"every other program is blocked", lenient, auditPostures,
			fileAccess(token, source("/bin/head")), blocked("block-sa", "dir")},
		{"scoped allow readOnly: the program's write falls to the general block", readOnlyCat, auditPostures,
			fileAccess(token, source("/bin/cat"), write), blocked("p", "dir")},
		{"scoped allow readOnly: the program's read is allowed", readOnlyCat, auditPostures,
			fileAccess(token, source("/bin/cat")), allowedBy("p", "cat")},
		{"a scoped audit decides before a general block",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", block, "all"), f(policy.MatchPath, "/x", audit, "cat", from("/bin/cat")))},
			auditPostures, fileAccess("/x", source("/bin/cat")), audited("p", "cat")},
		{"scoped on a directory decides before general on the exact path",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/d/x", block, "path"), f(policy.MatchDirectory, "/d/", allow, "cat", from("/bin/cat")))},
			auditPostures, fileAccess("/d/x", source("/bin/cat")), allowedBy("p", "cat")},
		{"two scoped rules: block beats allow",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", allow, "allow", from("/bin/cat")), f(policy.MatchDirectory, "/", block, "block", recursive, from("/bin/cat")))},
			auditPostures, fileAccess("/x", source("/bin/cat")), blocked("p", "block")},
		{"two scoped rules: audit beats allow",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", allow, "allow", from("/bin/cat")), f(policy.MatchPath, "/x", audit, "audit", from("/bin/cat")))},
			auditPostures, fileAccess("/x", source("/bin/cat")), audited("p", "audit")},
		{"two general rules: block beats audit",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", audit, "audit"), f(policy.MatchDirectory, "/", block, "block", recursive))},
			auditPostures, fileAccess("/x"), blocked("p", "block")},
		{"a scoped rule of another program does not apply",
			[]policy.Policy{hp("p", f(policy.MatchPath, "/x", block, "all"), f(policy.MatchPath, "/x", allow, "cat", from("/bin/cat")))},
			auditPostures, fileAccess("/x", source("/bin/less")), blocked("p", "all")},
		{"process: the named parent may run what the general rule blocks",
			[]policy.Policy{hp("p",
				rule(policy.OpProcess, policy.MatchPath, "/usr/bin/curl", block, field("all")),
				rule(policy.OpProcess, policy.MatchPath, "/usr/bin/curl", allow, field("bash"), from("/bin/bash")))},
			auditPostures, execAccess("/usr/bin/curl", "/bin/bash"), allowedBy("p", "bash")},
		{"process: other parents are blocked",
			[]policy.Policy{hp("p",
				rule(policy.OpProcess, policy.MatchPath, "/usr/bin/curl", block, field("all")),
				rule(policy.OpProcess, policy.MatchPath, "/usr/bin/curl", allow, field("bash"), from("/bin/bash")))},
			auditPostures, execAccess("/usr/bin/curl", "/bin/sh"), blocked("p", "all")},
		{"network: the named program may open what the general rule blocks",
			[]policy.Policy{hp("p",
				rule(policy.OpNetwork, policy.MatchProtocol, "tcp", block, field("all")),
				rule(policy.OpNetwork, policy.MatchProtocol, "tcp", allow, field("curl"), from("/usr/bin/curl")))},
			auditPostures, withSource(NetworkAccess("tcp"), "/usr/bin/curl"), allowedBy("p", "curl")},
	})
}

// TestDecideScopedAllowList: an Allow rule limited by fromSource still makes its operation an
// allow-list for the whole workload; every program falls to the posture outside the Allow rules.
func TestDecideScopedAllowList(t *testing.T) {
	hp := func(name string, rs ...policy.Rule) policy.Policy { return hostPolicy(name, rs...) }
	catSecrets := []policy.Policy{hp("p", rule(policy.OpFile, policy.MatchDirectory, "/secrets/", allow, field("cat-only"), recursive, from("/usr/bin/cat")))}
	runDecideCases(t, []decideCase{
		{"the named program inside its rule is allowed", catSecrets, blockPostures,
			fileAccess("/secrets/a", source("/usr/bin/cat")), allowedBy("p", "cat-only")},
		{"the named program outside its rule gets the posture", catSecrets, blockPostures,
			fileAccess("/etc/hosts", source("/usr/bin/cat")), postured(block)},
		{"another program gets the posture", catSecrets, blockPostures,
			fileAccess("/etc/hosts", source("/usr/bin/less")), postured(block)},
		{"another program inside the rule's target gets the posture", catSecrets, blockPostures,
			fileAccess("/secrets/a", source("/usr/bin/less")), postured(block)},
		{"audit posture: another program is reported", catSecrets, auditPostures,
			fileAccess("/etc/hosts", source("/usr/bin/less")), postured(audit)},
		{"process: another parent gets the posture",
			[]policy.Policy{hp("p", rule(policy.OpProcess, policy.MatchPath, "/usr/bin/curl", allow, field("bash"), from("/bin/bash")))},
			blockPostures, execAccess("/usr/bin/wget", "/bin/sh"), postured(block)},
		{"network: another program gets the network posture",
			[]policy.Policy{hp("p", rule(policy.OpNetwork, policy.MatchProtocol, "tcp", allow, field("curl"), from("/usr/bin/curl")))},
			Postures{File: audit, Network: block, Capabilities: audit}, withSource(NetworkAccess("udp"), "/usr/bin/wget"), postured(block)},
		{"capabilities: another program gets the capabilities posture",
			[]policy.Policy{hp("p", rule(policy.OpCapabilities, policy.MatchCapability, "net_raw", allow, field("ping"), from("/bin/ping")))},
			Postures{File: audit, Network: audit, Capabilities: block},
			Access{Op: policy.OpCapabilities, Capability: "net_raw", Source: "/bin/sh"}, postured(block)},
		{"a scoped file allow leaves process execution alone", catSecrets, blockPostures,
			execAccess("/usr/bin/ls", "/bin/sh"), allowed},
	})
}

func withSource(a Access, src string) Access {
	a.Source = src
	return a
}

func TestDecideNetworkAndCapabilities(t *testing.T) {
	net := func(proto string, a policy.Action, opts ...ruleOpt) policy.Rule {
		return rule(policy.OpNetwork, policy.MatchProtocol, proto, a, append([]ruleOpt{field("n-" + proto)}, opts...)...)
	}
	capr := func(c string, a policy.Action) policy.Rule {
		return rule(policy.OpCapabilities, policy.MatchCapability, c, a, field("c-"+c))
	}
	one := func(rs ...policy.Rule) []policy.Policy { return []policy.Policy{hostPolicy("p", rs...)} }
	tcp := NetworkAccess("tcp")
	udp := NetworkAccess("udp")
	icmp := NetworkAccess("icmp")
	raw := Access{Op: policy.OpNetwork, Family: "inet", SockType: "raw", Protocol: "icmp"}
	capAccess := func(c string) Access { return Access{Op: policy.OpCapabilities, Capability: c, Source: "/bin/ping"} }
	runDecideCases(t, []decideCase{
		{"block tcp", one(net("tcp", block)), auditPostures, tcp, blocked("p", "n-tcp")},
		{"block tcp leaves udp", one(net("tcp", block)), auditPostures, udp, allowed},
		{"block icmp", one(net("icmp", block)), auditPostures, icmp, blocked("p", "n-icmp")},
		{"block raw by socket type", one(net("raw", block)), auditPostures, raw, blocked("p", "n-raw")},
		{"block all", one(net("all", block)), auditPostures, udp, blocked("p", "n-all")},
		{"stream covers tcp", one(net("stream", audit)), auditPostures, tcp, audited("p", "n-stream")},
		{"network allow-list: udp to posture", one(net("tcp", allow)), Postures{File: audit, Network: block, Capabilities: audit}, udp, postured(block)},
		{"network allow-list: tcp allowed", one(net("tcp", allow)), blockPostures, tcp, allowedBy("p", "n-tcp")},
		{"network specific name beats all for naming", one(net("all", audit), net("udp", audit)), auditPostures, udp, audited("p", "n-udp")},
		{"network fromSource", one(net("tcp", block, from("/usr/bin/curl"))), auditPostures, tcp, allowed},
		// KubeArmor's e2e ksp-ubuntu-1-block-net-af-rds: an address family matches the socket's domain.
		{"block address family", one(net("af_rds", block)), auditPostures, NetworkAccess("af_rds"), blocked("p", "n-af_rds")},
		{"address family leaves other families", one(net("af_rds", block)), auditPostures, tcp, allowed},
		{"address family of any type", one(net("af_inet", audit)), auditPostures, raw, audited("p", "n-af_inet")},
		{"address family allow-list", one(net("af_unix", allow)), Postures{File: audit, Network: block, Capabilities: audit}, udp, postured(block)},
		{"address family allowed by allow-list", one(net("af_unix", allow)), blockPostures, NetworkAccess("af_unix"), allowedBy("p", "n-af_unix")},
		{"block capability", one(capr("net_raw", block)), auditPostures, capAccess("net_raw"), blocked("p", "c-net_raw")},
		{"block capability leaves others", one(capr("net_raw", block)), auditPostures, capAccess("chown"), allowed},
		{"capability allow-list with its own posture", one(capr("net_bind_service", allow)),
			Postures{File: audit, Network: audit, Capabilities: block}, capAccess("chown"), postured(block)},
	})
}

func TestDecideSyscalls(t *testing.T) {
	sc := rule(policy.OpSyscall, policy.MatchSyscall, "", audit, field("s"))
	sc.Syscalls = []string{"unlink", "rmdir"}
	scPath := rule(policy.OpSyscall, policy.MatchDirectory, "/var/log/", audit, field("sp"), recursive)
	scPath.Syscalls = []string{"unlinkat"}
	one := []policy.Policy{hostPolicy("p", sc, scPath)}
	runDecideCases(t, []decideCase{
		{"listed syscall is audited", one, blockPostures, Access{Op: policy.OpSyscall, Syscall: "rmdir", Path: "/tmp/x"}, audited("p", "s")},
		{"other syscall is not", one, blockPostures, Access{Op: policy.OpSyscall, Syscall: "open", Path: "/tmp/x"}, allowed},
		{"syscall under a path", one, blockPostures, Access{Op: policy.OpSyscall, Syscall: "unlinkat", Path: "/var/log/a/b"}, audited("p", "sp")},
		{"syscall outside the path", one, blockPostures, Access{Op: policy.OpSyscall, Syscall: "unlinkat", Path: "/etc/a"}, allowed},
		{"path rule needs its syscall", one, blockPostures, Access{Op: policy.OpSyscall, Syscall: "openat", Path: "/var/log/a"}, allowed},
	})
}

func TestDecideCarriesPolicyFields(t *testing.T) {
	p := hostPolicy("meta", rule(policy.OpFile, policy.MatchPath, "/x", block, field("f"), meta(8, "no x", "CIS", "PCI")))
	set, err := Compile([]policy.Policy{p}, workload.Host("n", nil), auditPostures)
	if err != nil {
		t.Fatal(err)
	}
	v := set.Decide(fileAccess("/x"))
	if v.Severity != 8 || v.Message != "no x" || len(v.Tags) != 2 || v.Tags[0] != "CIS" || v.PolicyKind != policy.KindHostPolicy || v.DisplayAction != "Block" {
		t.Errorf("verdict lost policy fields: %+v", v)
	}
}

func TestDecideAuditedMode(t *testing.T) {
	p := hostPolicy("p", rule(policy.OpFile, policy.MatchPath, "/x", block, field("f")), rule(policy.OpFile, policy.MatchPath, "/ok", allow, field("a")))
	w := workload.Host("n", nil)
	w.Mode = workload.ModeAudited
	set, err := Compile([]policy.Policy{p}, w, blockPostures)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/x", "/elsewhere"} {
		v := set.Decide(fileAccess(path))
		if v.Action != audit || v.DisplayAction != "Audit (Block)" || !v.Alert {
			t.Errorf("%s in audited mode: got %s/%q alert=%v, want Audit/\"Audit (Block)\" with an alert", path, v.Action, v.DisplayAction, v.Alert)
		}
	}
	if v := set.Decide(fileAccess("/ok")); v.Action != allow || v.Alert {
		t.Errorf("allowed path in audited mode: got %+v", v)
	}
}

func TestDecideDisabledMode(t *testing.T) {
	p := hostPolicy("p", rule(policy.OpFile, policy.MatchPath, "/x", block, field("f")))
	w := workload.Host("n", nil)
	w.Mode = workload.ModeDisabled
	set, err := Compile([]policy.Policy{p}, w, blockPostures)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Rules) != 0 {
		t.Fatalf("disabled workload got %d rules", len(set.Rules))
	}
	if v := set.Decide(fileAccess("/x")); v.Action != allow || v.Alert {
		t.Errorf("disabled workload: got %+v, want a silent allow", v)
	}
}

func TestAllowListReport(t *testing.T) {
	p := hostPolicy("p",
		rule(policy.OpFile, policy.MatchPath, "/a", allow, field("a"), from("/bin/b")),
		rule(policy.OpFile, policy.MatchPath, "/a", allow, field("a"), from("/bin/a")),
		rule(policy.OpNetwork, policy.MatchProtocol, "tcp", allow, field("n")),
	)
	set, err := Compile([]policy.Policy{p}, workload.Host("n", nil), auditPostures)
	if err != nil {
		t.Fatal(err)
	}
	// Allow rules limited by fromSource make the category an allow-list for every program.
	if g, src := set.AllowList(policy.OpFile); !g || len(src) != 0 {
		t.Errorf("file allow-list = %v %v, want global", g, src)
	}
	if g, _ := set.AllowList(policy.OpNetwork); !g {
		t.Error("network allow-list should be global")
	}
	if g, src := set.AllowList(policy.OpCapabilities); g || src != nil {
		t.Errorf("capabilities allow-list = %v %v, want none", g, src)
	}
}

// TestDecideKubeArmorVerdicts: verdicts KubeArmor's own end-to-end tests assert, written here as
// Ward cases (policies reduced to the rule that matters).
func TestDecideKubeArmorVerdicts(t *testing.T) {
	hp := func(name string, rs ...policy.Rule) []policy.Policy { return []policy.Policy{hostPolicy(name, rs...)} }
	shm := hp("audit-shm-readonly", rule(policy.OpFile, policy.MatchDirectory, "/dev/shm/", audit, field("d"), readOnly))
	usrBin := hp("block-usr-bin", rule(policy.OpProcess, policy.MatchDirectory, "/usr/bin/", block, field("d"), recursive))
	udp := hp("audit-udp", rule(policy.OpNetwork, policy.MatchProtocol, "udp", audit, field("n")))
	runDecideCases(t, []decideCase{
		// multiubuntu: "it can audit access to a dir except readonly access is allowed".
		{"audit readOnly dir: touch is reported", shm, auditPostures,
			fileAccess("/dev/shm/new", source("/usr/bin/touch"), write), audited("audit-shm-readonly", "d")},
		{"audit readOnly dir: cat passes unreported", shm, auditPostures,
			fileAccess("/dev/shm/new", source("/usr/bin/cat")), allowed},
		// nonk8s host policy with dir: /usr/bin (no slash, normalised by internal/policy).
		{"block /usr/bin recursively: ls is denied", usrBin, auditPostures,
			execAccess("/usr/bin/ls", "/bin/bash"), blocked("block-usr-bin", "d")},
		// nonk8s hsp-audit-network-protocol: no fromSource, every program is audited.
		{"audit udp without fromSource", udp, auditPostures,
			withSource(NetworkAccess("udp"), "/usr/bin/dig"), audited("audit-udp", "n")},
	})
}

// An access whose path cannot be resolved is blocked where a rule of its operation blocks or the
// operation is an allow-list, audited in audited mode, and allowed silently otherwise; the
// verdict names no policy.
func TestUnresolved(t *testing.T) {
	compile := func(r policy.Rule, mode workload.Mode) *Set {
		w := workload.Host("n", nil)
		w.Mode = mode
		set, err := Compile([]policy.Policy{hostPolicy("p", r)}, w, auditPostures)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	blockSet := compile(rule(policy.OpFile, policy.MatchPath, "/etc/shadow", block), "")
	auditSet := compile(rule(policy.OpFile, policy.MatchPath, "/etc/shadow", audit), "")
	allowSet := compile(rule(policy.OpFile, policy.MatchPath, "/etc/hosts", allow), "")
	audited := compile(rule(policy.OpFile, policy.MatchPath, "/etc/shadow", block), workload.ModeAudited)
	for _, c := range []struct {
		name    string
		set     *Set
		op      policy.Operation
		display string
	}{
		{"Block rule", blockSet, policy.OpFile, "Block"},
		{"Block rule of another operation", blockSet, policy.OpProcess, "Allow"},
		{"Audit rule only", auditSet, policy.OpFile, "Allow"},
		{"allow-list", allowSet, policy.OpFile, "Block"},
		{"audited mode", audited, policy.OpFile, "Audit (Block)"},
	} {
		v := c.set.Unresolved(c.op)
		if v.DisplayAction != c.display || v.Policy != "" || v.Alert != (c.display != "Allow") {
			t.Errorf("%s: %+v, want %s, no policy", c.name, v, c.display)
		}
	}
}
