package apparmor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/internal/auditlog"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

func TestParseRecord(t *testing.T) {
	when := time.Unix(1764343200, 123*int64(time.Millisecond)).UTC()
	for _, c := range []struct {
		name string
		line string
		want Record
	}{
		{
			name: "kmsg file denial",
			line: `5,1633,2838276917,-;audit: type=1400 audit(1764343200.123:77): apparmor="DENIED" operation="open" class="file" profile="ward-host" name="/etc/shadow" pid=1234 comm="cat" requested_mask="r" denied_mask="r" fsuid=1000 ouid=0` + "\n SUBSYSTEM=audit",
			want: Record{Type: 1400, Time: when, Serial: 77, Apparmor: "DENIED", Operation: "open", Class: "file", Profile: "ward-host",
				Name: "/etc/shadow", PID: 1234, Comm: "cat", RequestedMask: "r", DeniedMask: "r", FSUID: 1000, OUID: 0, HasOwner: true},
		},
		{
			name: "dmesg audit",
			line: `[   12.345678] audit: type=1400 audit(1764343200.123:78): apparmor="AUDIT" operation="open" class="file" profile="ward-host" name="/etc/passwd" pid=8 comm="cat" requested_mask="r" fsuid=0 ouid=0`,
			want: Record{Type: 1400, Time: when, Serial: 78, Apparmor: "AUDIT", Operation: "open", Class: "file", Profile: "ward-host",
				Name: "/etc/passwd", PID: 8, Comm: "cat", RequestedMask: "r", HasOwner: true},
		},
		{
			name: "auditd log with hex name and comm",
			line: `type=AVC msg=audit(1764343200.123:79): apparmor="DENIED" operation="mkdir" class="file" profile="ward-host" name=2F746D702F6D792066696C652F pid=9 comm=6D7920636D64 requested_mask="c" denied_mask="c" fsuid=0 ouid=0`,
			want: Record{Type: 1400, Time: when, Serial: 79, Apparmor: "DENIED", Operation: "mkdir", Class: "file", Profile: "ward-host",
				Name: "/tmp/my file/", PID: 9, Comm: "my cmd", RequestedMask: "c", DeniedMask: "c", HasOwner: true},
		},
		{
			name: "netlink payload, network in a child profile",
			line: `audit(1764343200.123:80): apparmor="DENIED" operation="create" class="net" profile="ward-host///usr/bin/curl" pid=99 comm="curl" family="inet" sock_type="dgram" protocol=17 requested_mask="create" denied_mask="create"`,
			want: Record{Time: when, Serial: 80, Apparmor: "DENIED", Operation: "create", Class: "net", Profile: "ward-host///usr/bin/curl",
				PID: 99, Comm: "curl", Family: "inet", SockType: "dgram", Protocol: 17, RequestedMask: "create", DeniedMask: "create"},
		},
		{
			name: "capability",
			line: `audit: type=1400 audit(1764343200.123:81): apparmor="DENIED" operation="capable" class="cap" profile="ward-host" pid=5 comm="ping" capability=13  capname="net_raw"`,
			want: Record{Type: 1400, Time: when, Serial: 81, Apparmor: "DENIED", Operation: "capable", Class: "cap", Profile: "ward-host",
				PID: 5, Comm: "ping", Capability: 13, CapName: "net_raw"},
		},
		{
			name: "exec with target and info",
			line: `audit: type=1400 audit(1764343200.123:82): apparmor="DENIED" operation="exec" class="file" info="no new privs" error=-1 profile="ward-host" name="/usr/bin/wget" pid=7 comm="sh" requested_mask="x" denied_mask="x" fsuid=0 ouid=0 target="ward-host///usr/bin/wget"`,
			want: Record{Type: 1400, Time: when, Serial: 82, Apparmor: "DENIED", Operation: "exec", Class: "file", Info: "no new privs", Error: -1,
				Profile: "ward-host", Name: "/usr/bin/wget", PID: 7, Comm: "sh", RequestedMask: "x", DeniedMask: "x", HasOwner: true,
				Target: "ward-host///usr/bin/wget"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRecord(c.line)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("ParseRecord =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

func TestParseRecordRejects(t *testing.T) {
	for _, line := range []string{
		`audit: type=1400 audit(1764343200.123:83): avc:  denied  { read } for pid=1 comm="cat" scontext=a tcontext=b tclass=file`,
		`[    0.000000] Linux version 6.1.0`,
		``,
	} {
		if _, err := ParseRecord(line); !errors.Is(err, ErrNotAppArmor) {
			t.Errorf("ParseRecord(%q) = %v, want ErrNotAppArmor", line, err)
		}
	}
	for _, line := range []string{
		`audit: type=1400 audit(17643x.1:2): apparmor="DENIED"`,
		`audit: type=1400 audit(1764343200.123:84): apparmor="DENIED" name="/etc/sha`,
		`audit: type=1400 audit(1764343200.123:85 apparmor="DENIED"`,
	} {
		if _, err := ParseRecord(line); err == nil || errors.Is(err, ErrNotAppArmor) {
			t.Errorf("ParseRecord(%q) = %v, want a format error", line, err)
		}
	}
}

func TestAttribute(t *testing.T) {
	set, err := rules.Compile([]policy.Policy{
		hostPolicy("files",
			file(policy.MatchPath, "/etc/shadow", block),
			file(policy.MatchPath, "/home/user/key", block, ownerOnly),
			file(policy.MatchDirectory, "/var/log/", audit, recursive, readOnly),
			file(policy.MatchDirectory, "/secret/", block, recursive, from("/usr/bin/cat")),
		),
		hostPolicy("procs", proc(policy.MatchPath, "/usr/bin/wget", block)),
		hostPolicy("net", netw("tcp", allow, from("/usr/bin/curl"))),
		hostPolicy("caps", capa("net_raw", block)),
	}, host, rules.Postures{File: block, Network: block, Capabilities: block})
	if err != nil {
		t.Fatal(err)
	}
	const head = `audit: type=1400 audit(1764343200.123:90): `
	for _, c := range []struct {
		line       string
		op         policy.Operation
		action     policy.Action
		policy     string
		rule       string
		posture    bool
		wantSource string
	}{
		{`apparmor="DENIED" operation="open" class="file" profile="ward-host" name="/etc/shadow" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
			policy.OpFile, block, "files", "spec.file.matchPaths[0]", false, ""},
		{`apparmor="DENIED" operation="open" class="file" profile="ward-host" name="/home/user/key" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=1000 ouid=0`,
			policy.OpFile, block, "files", "spec.file.matchPaths[1]", false, ""},
		// Audit+readOnly is a dry run of Block+readOnly: a write is what it reports.
		{`apparmor="AUDIT" operation="open" class="file" profile="ward-host" name="/var/log/syslog" pid=1 comm="cat" requested_mask="w" fsuid=0 ouid=0`,
			policy.OpFile, audit, "files", "spec.file.matchDirectories[0]", false, ""},
		{`apparmor="DENIED" operation="open" class="file" profile="ward-host///usr/bin/cat" name="/secret/a/b" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
			policy.OpFile, block, "files", "spec.file.matchDirectories[1]", false, "/usr/bin/cat"},
		{`apparmor="DENIED" operation="exec" class="file" profile="ward-host" name="/usr/bin/wget" pid=1 comm="sh" requested_mask="x" denied_mask="x" fsuid=0 ouid=0`,
			policy.OpProcess, block, "procs", "spec.process.matchPaths[0]", false, ""},
		// ld.so /usr/bin/wget: the kernel denies mapping the blocked program.
		{`apparmor="DENIED" operation="file_mmap" class="file" profile="ward-host" name="/usr/bin/wget" pid=1 comm="ld-linux-x86-64" requested_mask="rm" denied_mask="m" fsuid=0 ouid=0`,
			policy.OpProcess, block, "procs", "spec.process.matchPaths[0]", false, ""},
		{`apparmor="DENIED" operation="create" class="net" profile="ward-host///usr/bin/curl" pid=1 comm="curl" family="inet" sock_type="dgram" protocol=0 requested_mask="create" denied_mask="create"`,
			policy.OpNetwork, block, rules.DefaultPosturePolicy, "", true, "/usr/bin/curl"},
		{`apparmor="DENIED" operation="capable" class="cap" profile="ward-host" pid=1 comm="ping" capability=13  capname="net_raw"`,
			policy.OpCapabilities, block, "caps", "spec.capabilities.matchCapabilities[0]", false, ""},
	} {
		rec, err := ParseRecord(head + c.line)
		if err != nil {
			t.Fatal(err)
		}
		a, v := Attribute(set, rec)
		if a.Op != c.op || a.Source != c.wantSource || v.Action != c.action || v.Policy != c.policy || v.Rule != c.rule || v.Posture != c.posture {
			t.Errorf("Attribute(%s)\n = %+v\n   %s %s %s %s posture=%v\nwant op %s source %q: %s %s %s posture=%v",
				c.line, a, v.Action, v.Policy, v.Rule, v.DisplayAction, v.Posture, c.op, c.wantSource, c.action, c.policy, c.rule, c.posture)
		}
	}

	// The udp socket above is decided as udp: protocol 0 of an inet dgram socket.
	rec, _ := ParseRecord(head + `apparmor="DENIED" operation="create" class="net" profile="ward-host" pid=1 comm="x" family="inet" sock_type="dgram" protocol=0`)
	if a, _ := Attribute(set, rec); a.Protocol != "udp" {
		t.Errorf("protocol 0 of inet dgram = %q, want udp", a.Protocol)
	}
	rec, _ = ParseRecord(head + `apparmor="DENIED" operation="signal" class="signal" profile="ward-host" pid=1 comm="x" requested_mask="send" denied_mask="send" signal=term peer="unconfined"`)
	if a, v := Attribute(set, rec); a.Op != "" || v.Policy != "" {
		t.Errorf("signal record attributed to %+v %+v", a, v)
	}
}

func TestAuditMessage(t *testing.T) {
	payload := `audit(1764343200.123:5): apparmor="DENIED" operation="open" profile="ward-host" name="/etc/shadow" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	// As the kernel sends it: nlmsg_len counts the payload only; type 1400 little-endian.
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), 0, 0, 0x78, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	typ, data, ok := auditlog.Message(append(append(hdr, payload...), 0))
	if !ok || typ != TypeAVC || string(data) != payload {
		t.Fatalf("auditMessage = %d %q %v", typ, data, ok)
	}
	rec, err := ParseRecord("type=1400 " + string(data))
	if err != nil || rec.Type != TypeAVC || rec.Name != "/etc/shadow" {
		t.Errorf("ParseRecord = %+v, %v", rec, err)
	}
	if _, _, ok := auditlog.Message(hdr[:8]); ok {
		t.Error("short datagram accepted")
	}
}

// A denied rename of a directory above a blocked path, and a denied hard link to a blocked file
// or program, are attributed to the Block rule, with an access of the rule's own path.
func TestAttributeAncestorAndLink(t *testing.T) {
	set, err := rules.Compile([]policy.Policy{hostPolicy("guard",
		file(policy.MatchPath, "/etc/shadow", block),
		proc(policy.MatchPath, "/usr/bin/wget", block),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		line, path, rule string
		op               policy.Operation
	}{
		{`apparmor="DENIED" operation="rename_src" profile="ward-host" name="/etc/" pid=1 comm="mv" requested_mask="wd" denied_mask="wd" fsuid=0 ouid=0`,
			"/etc/shadow", "spec.file.matchPaths[0]", policy.OpFile},
		{`apparmor="DENIED" operation="rename_src" profile="ward-host" name="/usr/" pid=1 comm="mv" requested_mask="wd" denied_mask="wd" fsuid=0 ouid=0`,
			"/usr/bin/wget", "spec.process.matchPaths[0]", policy.OpProcess},
		{`apparmor="DENIED" operation="link" profile="ward-host" name="/tmp/x" pid=1 comm="ln" requested_mask="wracdkm" denied_mask="wracdkm" fsuid=0 ouid=0 target="/etc/shadow"`,
			"/etc/shadow", "spec.file.matchPaths[0]", policy.OpFile},
		{`apparmor="DENIED" operation="link" profile="ward-host" name="/tmp/w" pid=1 comm="ln" requested_mask="xm" denied_mask="xm" fsuid=0 ouid=0 target="/usr/bin/wget"`,
			"/usr/bin/wget", "spec.process.matchPaths[0]", policy.OpProcess},
	} {
		rec, err := ParseRecord("audit(1764343200.123:1): " + c.line)
		if err != nil {
			t.Fatal(err)
		}
		a, v := Attribute(set, rec)
		if a.Op != c.op || a.Path != c.path || v.Action != block || v.Policy != "guard" || v.Rule != c.rule {
			t.Errorf("%s: %+v attributed to %s %s %s, want %s %s by guard %s", c.line, a, v.Action, v.Policy, v.Rule, c.op, c.path, c.rule)
		}
	}
	// A directory above no blocked path stays unattributed (Decide allows the write).
	rec, _ := ParseRecord(`audit(1764343200.123:2): apparmor="DENIED" operation="rename_src" profile="ward-host" name="/srv/" pid=1 comm="mv" requested_mask="wd" denied_mask="wd" fsuid=0 ouid=0`)
	if _, v := Attribute(set, rec); v.Action == block {
		t.Errorf("/srv/ attributed to %+v", v)
	}
}

func TestAncestorDirs(t *testing.T) {
	for _, c := range []struct {
		r    policy.Rule
		want []string
	}{
		{file(policy.MatchPath, "/etc/shadow", block), []string{"/", "/etc/"}},
		{file(policy.MatchDirectory, "/run/secrets/", block), []string{"/", "/run/", "/run/secrets/"}},
		{proc(policy.MatchPattern, "/home/*/bin/*", block), []string{"/", "/home/"}},
		{proc(policy.MatchExecName, "nc", block), nil},
		{file(policy.MatchPath, "/top", block), []string{"/"}},
	} {
		got := ancestorDirs(&rules.Rule{Rule: c.r})
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s %s: %q, want %q", c.r.Match, c.r.Value, got, c.want)
		}
	}
}
