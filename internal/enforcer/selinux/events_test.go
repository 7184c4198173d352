//go:build !vm

package selinux

import (
	"testing"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

func TestParseAVC(t *testing.T) {
	cases := []struct {
		line string
		want AVC
	}{
		{
			line: `6,812,39381102,-;audit: type=1400 audit(1764345600.123:77): avc:  denied  { read } for  pid=212 comm="reader" name="secret.txt" dev="tmpfs" ino=1234 scontext=system_u:system_r:kernel_t:s0 tcontext=system_u:object_r:ward_bbb_t:s0 tclass=file permissive=0`,
			want: AVC{Denied: true, Perms: []string{"read"}, PID: 212, Comm: "reader", Name: "secret.txt", Dev: "tmpfs", Ino: 1234,
				SContext: "system_u:system_r:kernel_t:s0", TContext: "system_u:object_r:ward_bbb_t:s0", TClass: "file", Serial: 77},
		},
		{
			line: `audit(1764345600.5:78): avc:  granted  { read open } for  pid=213 comm=6D7920636174 path="/wt/my file" dev="tmpfs" ino=9 scontext=system_u:system_r:kernel_t:s0 tcontext=system_u:object_r:ward_uaa_t:s0 tclass=file`,
			want: AVC{Perms: []string{"read", "open"}, PID: 213, Comm: "my cat", Path: "/wt/my file", Dev: "tmpfs", Ino: 9,
				SContext: "system_u:system_r:kernel_t:s0", TContext: "system_u:object_r:ward_uaa_t:s0", TClass: "file", Serial: 78},
		},
		{
			line: `type=AVC msg=audit(1764345600.5:79): avc:  denied  { write } for  pid=1 comm="w" name="c" dev="vda1" ino=3 scontext=u:r:d:s0 tcontext=u:object_r:ward_aba_t:s0 tclass=file permissive=1`,
			want: AVC{Denied: true, Perms: []string{"write"}, PID: 1, Comm: "w", Name: "c", Dev: "vda1", Ino: 3,
				SContext: "u:r:d:s0", TContext: "u:object_r:ward_aba_t:s0", TClass: "file", Permissive: true, Serial: 79},
		},
	}
	for _, c := range cases {
		got, err := ParseAVC(c.line)
		if err != nil {
			t.Errorf("ParseAVC(%q): %v", c.line, err)
			continue
		}
		got.Time = c.want.Time
		if got.Denied != c.want.Denied || got.PID != c.want.PID || got.Comm != c.want.Comm || got.Name != c.want.Name ||
			got.Path != c.want.Path || got.Dev != c.want.Dev || got.Ino != c.want.Ino || got.SContext != c.want.SContext ||
			got.TContext != c.want.TContext || got.TClass != c.want.TClass || got.Permissive != c.want.Permissive ||
			got.Serial != c.want.Serial || len(got.Perms) != len(c.want.Perms) {
			t.Errorf("ParseAVC(%q)\n got %+v\nwant %+v", c.line, got, c.want)
		}
		for i := range c.want.Perms {
			if i < len(got.Perms) && got.Perms[i] != c.want.Perms[i] {
				t.Errorf("perms %v, want %v", got.Perms, c.want.Perms)
			}
		}
	}
	for _, bad := range []string{
		`audit: type=1400 audit(1.2:3): apparmor="DENIED" operation="open"`,
		`audit(1.2:3): avc:  received policyload notice (seqno=2)`,
		`hello`,
	} {
		if _, err := ParseAVC(bad); err == nil {
			t.Errorf("ParseAVC(%q) accepted it", bad)
		}
	}
}

func TestAttribute(t *testing.T) {
	set, err := rules.Compile([]policy.Policy{hostPolicy("p",
		file(policy.MatchPath, "/wt/secret.txt", block),
		file(policy.MatchPath, "/wt/config.txt", block, readOnly),
		proc(policy.MatchPath, "/wt/bin/tool", block),
		file(policy.MatchPath, "/wt/other.txt", block, from("/wt/bin/other")),
		file(policy.MatchPath, "/wt/home.txt", block, ownerOnly),
	)}, host, rules.Postures{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Render(set, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	res := Resolver{
		// Numbers collide across file systems. Inode 1 is also /wt/home.txt's on another, a file
		// whose rule would explain a read as well: the record's name tells them apart. Inode 6
		// is a file's, /wt/secret.txt, and a directory's, /wt/home.txt (a made-up pair whose
		// rules would both explain a read): the record's class tells them apart when the name
		// does not (a file with several names is recorded under any).
		PathsOf: func(ino uint64) []Labelled {
			return map[uint64][]Labelled{
				1: {{"/wt/home.txt", "file"}, {"/wt/secret.txt", "file"}},
				2: {{"/wt/config.txt", ""}},
				4: {{"/wt/other.txt", "file"}},
				5: {{"/wt/home.txt", "file"}},
				6: {{"/wt/home.txt", "dir"}, {"/wt/secret.txt", "file"}},
			}[ino]
		},
		SourceOf: func(d string) string {
			for i, dom := range m.Domains {
				if dom == d {
					return m.Sources[i]
				}
			}
			return ""
		},
	}
	ctx := func(typ string) string { return "system_u:object_r:" + typ + ":s0" }
	cases := []struct {
		rec        AVC
		op         policy.Operation
		path, src  string
		write      bool
		action     policy.Action
		rule       string
		attributed bool
	}{
		{AVC{Denied: true, Perms: []string{"read"}, Name: "secret.txt", Ino: 1, SContext: ctx("kernel_t"), TContext: ctx("ward_bbb_t"), TClass: "file"},
			policy.OpFile, "/wt/secret.txt", "", false, block, "spec.file.matchPaths[0]", true},
		{AVC{Denied: true, Perms: []string{"write"}, Name: "config.txt", Ino: 2, SContext: ctx("kernel_t"), TContext: ctx("ward_aba_t"), TClass: "file"},
			policy.OpFile, "/wt/config.txt", "", true, block, "spec.file.matchPaths[1]", true},
		{AVC{Denied: true, Perms: []string{"execute"}, Path: "/wt/bin/tool", Ino: 3, SContext: ctx("kernel_t"), TContext: ctx("ward_aab_t"), TClass: "file"},
			policy.OpProcess, "/wt/bin/tool", "", false, block, "spec.process.matchPaths[0]", true},
		{AVC{Denied: true, Perms: []string{"open", "read"}, Name: "other.txt", Ino: 4, SContext: "system_u:system_r:" + m.Domains[0] + ":s0", TContext: ctx("ward_f_x_t"), TClass: "file"},
			policy.OpFile, "/wt/other.txt", "/wt/bin/other", false, block, "spec.file.matchPaths[2]", true},
		// The record does not say who owns the file: the denial is explained by a non-owner.
		{AVC{Denied: true, Perms: []string{"read"}, Name: "home.txt", Ino: 5, SContext: ctx("kernel_t"), TContext: ctx("ward_bbb_t"), TClass: "file"},
			policy.OpFile, "/wt/home.txt", "", false, block, "spec.file.matchPaths[3]", true},
		// Opened by another name (a bind mount, a hard link, a renamed ancestor): the record's
		// path explains nothing, the inode names the file Ward labelled.
		{AVC{Denied: true, Perms: []string{"read"}, Path: "/mnt/bound/secret.txt", Ino: 1, SContext: ctx("kernel_t"), TContext: ctx("ward_bbb_t"), TClass: "file"},
			policy.OpFile, "/wt/secret.txt", "", false, block, "spec.file.matchPaths[0]", true},
		{AVC{Denied: true, Perms: []string{"read"}, Name: "another-name", Ino: 6, SContext: ctx("kernel_t"), TContext: ctx("ward_bbb_t"), TClass: "file"},
			policy.OpFile, "/wt/secret.txt", "", false, block, "spec.file.matchPaths[0]", true},
		{AVC{Denied: true, Perms: []string{"create"}, SContext: ctx("kernel_t"), TContext: ctx("kernel_t"), TClass: "tcp_socket"},
			"", "", "", false, "", "", false},
	}
	for i, c := range cases {
		a, v := Attribute(set, c.rec, res)
		if a.Op != c.op || a.Path != c.path || a.Source != c.src || a.Write != c.write {
			t.Errorf("%d: access %+v, want op %s path %s source %s write %v", i, a, c.op, c.path, c.src, c.write)
		}
		if !c.attributed {
			if v.Policy != "" {
				t.Errorf("%d: attributed to %s", i, v.Policy)
			}
			continue
		}
		if v.Action != c.action || v.Policy != "p" || v.Rule != c.rule {
			t.Errorf("%d: verdict %s %s %s, want %s p %s", i, v.Action, v.Policy, v.Rule, c.action, c.rule)
		}
	}
}
