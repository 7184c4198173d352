package apparmor

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

const (
	allow = policy.ActionAllow
	audit = policy.ActionAudit
	block = policy.ActionBlock
)

type ruleOpt func(*policy.Rule)

func readOnly(r *policy.Rule)  { r.ReadOnly = true }
func ownerOnly(r *policy.Rule) { r.OwnerOnly = true }
func recursive(r *policy.Rule) { r.Recursive = true }
func from(exe string) ruleOpt {
	return func(r *policy.Rule) { r.FromSource = append(r.FromSource, policy.FromSource{Path: exe}) }
}
func pts(v bool) ruleOpt           { return func(r *policy.Rule) { r.PTS = &v } }
func args(a ...string) ruleOpt     { return func(r *policy.Rule) { r.AllowedArgs = a } }
func syscalls(s ...string) ruleOpt { return func(r *policy.Rule) { r.Syscalls = s } }

func rule(op policy.Operation, m policy.MatchKind, value string, action policy.Action, opts ...ruleOpt) policy.Rule {
	r := policy.Rule{Operation: op, Match: m, Value: value, Action: action}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func file(m policy.MatchKind, v string, a policy.Action, o ...ruleOpt) policy.Rule {
	return rule(policy.OpFile, m, v, a, o...)
}
func proc(m policy.MatchKind, v string, a policy.Action, o ...ruleOpt) policy.Rule {
	return rule(policy.OpProcess, m, v, a, o...)
}
func netw(v string, a policy.Action, o ...ruleOpt) policy.Rule {
	return rule(policy.OpNetwork, policy.MatchProtocol, v, a, o...)
}
func capa(v string, a policy.Action, o ...ruleOpt) policy.Rule {
	return rule(policy.OpCapabilities, policy.MatchCapability, v, a, o...)
}

// hostPolicy numbers its rules' fields the way internal/policy does, so that warnings and line
// origins name them.
func hostPolicy(name string, rs ...policy.Rule) policy.Policy {
	count := map[string]int{}
	for i := range rs {
		sec := map[policy.Operation]string{policy.OpFile: "file", policy.OpProcess: "process", policy.OpNetwork: "network",
			policy.OpCapabilities: "capabilities", policy.OpSyscall: "syscalls"}[rs[i].Operation]
		list := map[policy.MatchKind]string{policy.MatchPath: "matchPaths", policy.MatchDirectory: "matchDirectories",
			policy.MatchPattern: "matchPatterns", policy.MatchExecName: "matchPaths", policy.MatchProtocol: "matchProtocols",
			policy.MatchCapability: "matchCapabilities", policy.MatchDNSQuery: "matchDNSQueries", policy.MatchSyscall: "matchSyscalls"}[rs[i].Match]
		k := "spec." + sec + "." + list
		rs[i].Field = k + "[" + strconv.Itoa(count[k]) + "]"
		count[k]++
	}
	return policy.Policy{
		Kind: policy.KindHostPolicy, Name: name,
		Selector: policy.Selector{NodeLabels: map[string]string{"kubearmor.io/hostname": "*"}},
		Rules:    rs,
	}
}

func containerPolicy(ns, name string, rs ...policy.Rule) policy.Policy {
	p := hostPolicy(name, rs...)
	p.Kind, p.Namespace = policy.KindPolicy, ns
	p.Selector = policy.Selector{MatchLabels: map[string]string{"app": "web"}}
	return p
}

var host = workload.Host("node1", nil)

var web = workload.Workload{
	Kind: workload.KindContainer, Hostname: "node1", Namespace: "shop", Pod: "web-7d9f", Container: "nginx",
	ContainerID: "0123456789abcdef", Labels: map[string]string{"app": "web"},
}

// fixtureHost is a host whose parser directory has the usual includes, as Debian's apparmor
// package installs them (and as the parser on the test machine finds them).
var fixtureHost = Host{Includes: func(name string) bool { return name == "abi/3.0" || name == "tunables/global" }}

type renderCase struct {
	name     string
	w        workload.Workload
	postures rules.Postures
	policies []policy.Policy
	opts     Options
	// warnings must each appear in one warning (substring), and their number must match.
	warnings []string
}

var blockAll = rules.Postures{File: block, Network: block, Capabilities: block}

func renderCases() []renderCase {
	return []renderCase{
		{name: "empty", w: host, opts: Options{}},
		{name: "file_block", w: host, policies: []policy.Policy{hostPolicy("files",
			file(policy.MatchPath, "/etc/shadow", block),
			file(policy.MatchPath, "/etc/hosts", block, readOnly),
			file(policy.MatchPath, "/home/user/notes", block, ownerOnly),
			file(policy.MatchPath, "/home/user/key", block, readOnly, ownerOnly),
			file(policy.MatchDirectory, "/etc/ssl/", block),
			file(policy.MatchDirectory, "/var/secret/", block, recursive),
			file(policy.MatchPattern, "/proc/*/mem", block),
		)}},
		{name: "file_audit", w: host, policies: []policy.Policy{hostPolicy("files",
			file(policy.MatchPath, "/etc/passwd", audit),
			file(policy.MatchPath, "/etc/group", audit, readOnly),
			file(policy.MatchDirectory, "/home/", audit, ownerOnly, recursive),
			file(policy.MatchPattern, "/var/log/**/*.log", audit, readOnly, ownerOnly),
		)}},
		{name: "file_allow_posture_block", w: host, postures: blockAll, policies: []policy.Policy{hostPolicy("allowlist",
			file(policy.MatchDirectory, "/usr/", allow, recursive, readOnly),
			file(policy.MatchDirectory, "/tmp/", allow, recursive),
			file(policy.MatchPath, "/home/user/.profile", allow, ownerOnly),
			file(policy.MatchPattern, "/etc/*.conf", allow, readOnly),
			file(policy.MatchPath, "/etc/shadow", block),
		)}},
		{name: "file_allow_posture_audit", w: host, policies: []policy.Policy{hostPolicy("allowlist",
			file(policy.MatchDirectory, "/usr/", allow, recursive, readOnly),
			file(policy.MatchPath, "/etc/hosts", audit),
		)}},
		{name: "process_block", w: host, policies: []policy.Policy{hostPolicy("procs",
			proc(policy.MatchPath, "/usr/bin/wget", block),
			proc(policy.MatchExecName, "nc", block),
			proc(policy.MatchDirectory, "/tmp/", block),
			proc(policy.MatchDirectory, "/var/tmp/", block, recursive),
			proc(policy.MatchPattern, "/home/*/bin/*", block),
			proc(policy.MatchPath, "/usr/bin/sudo", block, ownerOnly),
			proc(policy.MatchPath, "/usr/bin/vi", block, readOnly),
		)}},
		{name: "process_audit_allow", w: host, postures: blockAll, policies: []policy.Policy{hostPolicy("procs",
			proc(policy.MatchDirectory, "/usr/bin/", allow, recursive),
			proc(policy.MatchExecName, "sh", allow),
			proc(policy.MatchPath, "/usr/bin/curl", audit),
			proc(policy.MatchPath, "/usr/local/bin/tool", allow, ownerOnly),
		)}},
		{name: "network_block", w: host, policies: []policy.Policy{hostPolicy("net",
			netw("udp", block),
			netw("raw", block),
		)}, warnings: []string{"network inet dgram: AppArmor cannot tell protocols apart, Block (policy net, spec.network.matchProtocols[0]) blocks the cell while icmp is Allow", "network inet6 dgram"}},
		{name: "network_allow_posture_block", w: host, postures: blockAll, policies: []policy.Policy{hostPolicy("net",
			netw("tcp", allow),
			netw("udp", allow),
			netw("icmp", allow),
			netw("icmpv6", allow),
		)}, warnings: []string{"network inet stream: sctp sockets of type stream share the cell with tcp, which is Allow", "network inet raw: AppArmor cannot tell protocols apart, Block (default posture) blocks the cell while icmp is Allow",
			"network inet6 stream: sctp", "network inet6 raw"}},
		{name: "network_audit", w: host, policies: []policy.Policy{hostPolicy("net",
			netw("tcp", audit),
			netw("all", allow),
			netw("packet", block),
		)}},
		{name: "network_dccp_block", w: host, policies: []policy.Policy{hostPolicy("net",
			netw("dccp", block),
			netw("sctp", audit),
		)}},
		// KubeArmor's e2e ksp-ubuntu-1-block-net-af-rds: address families; AF_MCTP is newer than
		// parsers Ward supports, so it is reported, not rendered.
		{name: "network_family_block", w: host, policies: []policy.Policy{hostPolicy("net",
			netw("af_rds", block),
			netw("af_netlink", audit),
			netw("af_inet6", block),
			netw("af_mctp", block),
		)}, warnings: []string{"AppArmor has no name for DCCP sockets: they are denied in both inet and inet6",
			"AppArmor's parser may not know the address family AF_MCTP: the rule is not enforced by AppArmor"}},
		{name: "network_family_allow_posture_block", w: host, postures: blockAll, policies: []policy.Policy{hostPolicy("net",
			netw("af_unix", allow),
			netw("af_netlink", allow),
		)}},
		{name: "network_sctp_block", w: host, policies: []policy.Policy{hostPolicy("net",
			netw("sctp", block),
		)}, warnings: []string{"network inet stream: sctp sockets of type stream share the cell with tcp, which is Allow (no rule)",
			"network inet raw", "network inet6 stream: sctp", "network inet6 raw"}},
		{name: "capabilities", w: host, postures: blockAll, policies: []policy.Policy{hostPolicy("caps",
			capa("net_bind_service", allow),
			capa("chown", audit),
			capa("sys_admin", block),
		)}},
		{name: "capabilities_block_only", w: host, policies: []policy.Policy{hostPolicy("caps",
			capa("net_raw", block),
			capa("sys_ptrace", audit),
		)}},
		{name: "from_source", w: host, postures: blockAll, policies: []policy.Policy{hostPolicy("sources",
			file(policy.MatchPath, "/etc/shadow", block),
			file(policy.MatchDirectory, "/etc/ssl/", block, recursive, from("/usr/bin/cat")),
			proc(policy.MatchPath, "/usr/bin/cat", block, from("/usr/bin/bash")),
			proc(policy.MatchDirectory, "/usr/", allow, recursive, from("/usr/bin/bash")),
			netw("tcp", allow, from("/usr/bin/curl")),
			capa("net_raw", block, from("/usr/bin/ping")),
		)}, warnings: []string{"network inet stream: sctp", "network inet raw", "network inet6 stream: sctp", "network inet6 raw"}},
		// Sources the same rules are limited to share one child, named after the first: cat and
		// head (one rule, and one more rule limited to both) share usr/bin/cat; tail, with a rule
		// of its own besides, has its own child.
		{name: "from_source_shared", w: host, policies: []policy.Policy{hostPolicy("sources",
			file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/head"), from("/usr/bin/cat"), from("/usr/bin/tail")),
			netw("raw", block, from("/usr/bin/cat"), from("/usr/bin/head")),
			file(policy.MatchPath, "/etc/hosts", audit, from("/usr/bin/tail")),
		)}},
		// Specific before general (issue 13 item 2): cat's child profile leaves out the general
		// Block of the directory cat may read, keeps its writes denied (the Allow is readOnly),
		// and keeps the Block of a directory holding a file cat may read (warned: AppArmor's
		// deny wins there).
		{name: "from_source_specific", w: host, policies: []policy.Policy{
			hostPolicy("block-secrets",
				file(policy.MatchDirectory, "/run/secrets/", block, recursive),
				file(policy.MatchDirectory, "/var/log/", block, recursive),
				proc(policy.MatchPath, "/usr/bin/curl", block),
			),
			hostPolicy("cat-secrets",
				file(policy.MatchDirectory, "/run/secrets/", allow, recursive, readOnly, from("/usr/bin/cat")),
				file(policy.MatchPath, "/var/log/auth.log", allow, from("/usr/bin/cat")),
				proc(policy.MatchPath, "/usr/bin/curl", allow, from("/usr/bin/cat")),
			),
		}, warnings: []string{"spec.file.matchDirectories[1]: AppArmor cannot let the Allow rule spec.file.matchPaths[0] of policy cat-secrets (fromSource /usr/bin/cat) decide before this rule"}},
		{name: "escaping", w: host, policies: []policy.Policy{hostPolicy("odd",
			file(policy.MatchPath, "/data/My Files/{a,b}[1]*?^\"x\\y@{HOME}#!", block),
			file(policy.MatchDirectory, "/srv/a,b/", block, recursive),
			file(policy.MatchPattern, "/srv/[!a-c]x/**/f?le[]]{x}", block),
			proc(policy.MatchExecName, "my prog", block),
		)}},
		{name: "raw_apparmor", w: web, policies: []policy.Policy{func() policy.Policy {
			p := containerPolicy("shop", "raw", file(policy.MatchPath, "/etc/shadow", block))
			p.AppArmor = "deny /sys/** w,\n  mount,\n"
			return p
		}()}},
		{name: "audited_container", w: func() workload.Workload { w := web; w.Mode = workload.ModeAudited; return w }(),
			postures: blockAll, policies: []policy.Policy{containerPolicy("shop", "audited",
				file(policy.MatchPath, "/etc/shadow", block),
				file(policy.MatchDirectory, "/usr/", allow, recursive),
				proc(policy.MatchPath, "/usr/bin/wget", block),
				capa("net_raw", block),
			)}},
		{name: "unsupported", w: web, policies: []policy.Policy{func() policy.Policy {
			p := containerPolicy("shop", "misc",
				rule(policy.OpSyscall, policy.MatchSyscall, "", audit, syscalls("unlink")),
				rule(policy.OpNetwork, policy.MatchDNSQuery, "example.com", block),
				file(policy.MatchPath, "/etc/motd", block, pts(false)),
				proc(policy.MatchPath, "/usr/bin/ls", allow, args("-l")),
				proc(policy.MatchPath, "/usr/bin/ps", audit, pts(true)),
			)
			p.Presets = []policy.Preset{{Name: "filelessExec", Action: block}}
			return p
		}()}, warnings: []string{"the syscall rule is not enforced", "the DNS rule is not enforced", "file.matchPaths[0].pts: pts is not enforced",
			"process.matchPaths[0].allowedArgs: allowedArgs is not enforced", "process.matchPaths[1].pts: pts is not enforced", "preset filelessExec is not enforced"}},
		{name: "attach", w: host, opts: Options{Attach: []string{"/usr/sbin/nginx", "/opt/my app/run"}},
			policies: []policy.Policy{hostPolicy("a", file(policy.MatchPath, "/etc/shadow", block))}},
		{name: "attach_all", w: host, opts: Options{AttachAll: true},
			policies: []policy.Policy{hostPolicy("a", file(policy.MatchPath, "/etc/shadow", block))}},
		// Attached to every program, each child has an entry profile attached to its sources'
		// paths, with the child's rules: cat and head share one, curl has its own. runc (the
		// runtime, left out of the attachment) and Ward's own binary get none, and a warning.
		// Children and entries the kernel holds that the new text lacks stay, retired: no
		// attachment, no exec enters them (but an entry named by its path keeps its execs), the
		// rules their executable has now. The current ones (the entry of /usr/bin/cat is named by
		// its path now, so its attached form retires), an old Ward's child named by its path and
		// another profile's are left out.
		{name: "retired", w: host, opts: Options{AttachAll: true, Held: []string{"ward-host//usr/bin/cat", "ward-host//usr/bin/old",
			"ward-host/usr/bin/cat", "ward-host/usr/bin/gone", "ward-host///usr/bin/legacy", "ward-other//usr/bin/x", "ward-host", "ward-host//null-1",
			"/usr/bin/cat", "/usr/bin/went"}},
			policies: []policy.Policy{hostPolicy("retire",
				file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/cat")),
				file(policy.MatchPath, "/etc/passwd", block),
			)}},
		// A container's retired child is a peer for signals like the others.
		{name: "retired_container", w: web, opts: Options{Held: []string{ProfileName(web) + "//usr/bin/gone"}},
			policies: []policy.Policy{containerPolicy("shop", "retire", file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/cat")))}},
		{name: "attach_all_sources", w: host,
			// curl has a profile of its own, named by its path: a warning on its rule.
			opts: Options{AttachAll: true, AttachExcept: []string{"/usr/bin/runc"}, Exempt: []string{"/usr/local/bin/ward"},
				Others: []string{"/usr/bin/curl", "nvidia_modprobe"}},
			policies: []policy.Policy{hostPolicy("sources",
				file(policy.MatchPath, "/etc/shadow", block, from("/usr/bin/cat"), from("/usr/bin/head")),
				netw("raw", block, from("/usr/bin/curl")),
				file(policy.MatchPath, "/etc/hosts", block, from("/usr/bin/runc")),
				file(policy.MatchPath, "/etc/passwd", block, from("/usr/local/bin/ward")),
			)}, warnings: []string{"fromSource /usr/bin/curl has an AppArmor profile of its own, named by its path",
				"fromSource /usr/bin/runc is a program the host profile leaves unconfined",
				"fromSource /usr/local/bin/ward is a program the host profile leaves unconfined"}},
	}
}

func compileSet(t *testing.T, c renderCase) *rules.Set {
	t.Helper()
	set, err := rules.Compile(c.policies, c.w, c.postures)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return set
}

func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			if c.name != "empty" {
				opts.Host = fixtureHost
			}
			set := compileSet(t, c)
			prof, warns, err := Render(set, opts)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if len(prof.Lines) != bytes.Count(prof.Text, []byte("\n")) {
				t.Errorf("line map has %d entries for %d lines", len(prof.Lines), bytes.Count(prof.Text, []byte("\n")))
			}
			checkWarnings(t, warns, c.warnings)

			got := append([]byte(nil), prof.Text...)
			for _, w := range warns {
				got = append(got, "# WARNING: "+w.String()+"\n"...)
			}
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("profile differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			// Byte-stable: the same set renders the same bytes.
			again, _, _ := Render(compileSet(t, c), opts)
			if !bytes.Equal(again.Text, prof.Text) {
				t.Error("two renders of the same set differ")
			}
			// The golden file, warnings and all, is a profile the real parser accepts.
			parseProfile(t, golden)
		})
	}
}

func checkWarnings(t *testing.T, got []enforcer.Warning, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d warnings, want %d:\n%s", len(got), len(want), warningList(got))
		return
	}
	for i, w := range want {
		if !strings.Contains(got[i].String(), w) {
			t.Errorf("warning %d = %q, want it to mention %q", i, got[i].String(), w)
		}
	}
}

func warningList(ws []enforcer.Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("  " + w.String() + "\n")
	}
	return b.String()
}

// parserPath finds apparmor_parser. A test that needs it fails when it is missing, unless
// WARD_SKIP_APPARMOR_PARSER=1 says so explicitly: CI installs the apparmor package.
func parserPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("WARD_SKIP_APPARMOR_PARSER") == "1" {
		t.Skip("WARD_SKIP_APPARMOR_PARSER=1: not compiling with apparmor_parser")
	}
	for _, p := range []string{"apparmor_parser", "/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("apparmor_parser not found: install the apparmor package, or set WARD_SKIP_APPARMOR_PARSER=1 to skip")
	return ""
}

// parseProfile compiles a profile file with the real parser without loading it (-Q -K).
func parseProfile(t *testing.T, path string) {
	t.Helper()
	parser := parserPath(t)
	out, err := exec.Command(parser, "-Q", "-K", "-q", path).CombinedOutput()
	if err != nil {
		t.Fatalf("apparmor_parser -Q -K %s: %v\n%s", path, err, out)
	}
}

func TestParserRejectsBrokenProfile(t *testing.T) {
	// Shows parseProfile can fail: the same check on a profile with a syntax error.
	parser := parserPath(t)
	p := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(p, []byte("profile broken {\n  /etc/shadow rwx,\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(parser, "-Q", "-K", "-q", p).CombinedOutput(); err == nil {
		t.Fatalf("apparmor_parser accepted a broken profile:\n%s", out)
	}
}
