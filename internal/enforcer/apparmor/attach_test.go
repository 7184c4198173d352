package apparmor

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/internal/rules"
)

func TestUnconfined(t *testing.T) {
	root := t.TempDir()
	proc := func(pid, comm, cmdline, label string, stacked bool) {
		t.Helper()
		dir := filepath.Join(root, pid)
		attr := filepath.Join(dir, "attr")
		if stacked {
			attr = filepath.Join(attr, "apparmor")
		}
		if err := os.MkdirAll(attr, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{"comm": comm + "\n", "cmdline": cmdline, filepath.Join(attr[len(dir)+1:], "current"): label} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	proc("1", "init", "/sbin/init\x00", "unconfined\n", true)
	proc("2", "kthreadd", "", "unconfined\n", true)                // kernel thread
	proc("10", "sshd", "sshd\x00", "unconfined\n", false)          // older kernel: attr/current
	proc("11", "sshd", "sshd\x00", "unconfined\n", true)           //
	proc("12", "bash", "-bash\x00", "ward-host (enforce)\n", true) // started after Ward
	proc("13", "ward", "ward\x00run\x00", "unconfined\n", true)    // Ward itself
	proc("14", "cupsd", "cupsd\x00", "/usr/sbin/cupsd (enforce)\n", true)
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	total, byName, err := Unconfined(root, 13)
	if err != nil {
		t.Fatal(err)
	}
	want := []NameCount{{"sshd", 2}, {"init", 1}}
	if total != 3 || !reflect.DeepEqual(byName, want) {
		t.Errorf("Unconfined = %d %v, want 3 %v", total, byName, want)
	}
}

func TestOtherProfiles(t *testing.T) {
	labels := []string{"ward-exempt", "ward-host", "ward-host//usr/bin/cat", "ward-host/usr/bin/cat", "ward-default_web_nginx",
		"nvidia_modprobe", "nvidia_modprobe//kmod", "/usr/sbin/cupsd", "lsb_release", "cri-containerd.apparmor.d", "lsb_release",
		"docker-default", "containers-default-0.57.4"}
	want := []string{"/usr/sbin/cupsd", "lsb_release", "nvidia_modprobe"}
	if got := otherProfiles(labels); !slices.Equal(got, want) {
		t.Errorf("otherProfiles = %v, want %v", got, want)
	}
}

func TestRuntimeExecutables(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/local/bin", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte("#!"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/runc")
	write("usr/local/bin/containerd-shim-runc-v2")
	write("usr/bin/cat") // not a runtime
	// /usr/sbin/runc -> ../bin/runc, and an absolute link resolved inside root, not here.
	if err := os.Symlink("../bin/runc", filepath.Join(root, "usr/sbin/runc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/local/bin/containerd-shim-runc-v2", filepath.Join(root, "usr/bin/containerd-shim-runc-v2")); err != nil {
		t.Fatal(err)
	}
	got := runtimeExecutables(root)
	slices.Sort(got)
	got = slices.Compact(got)
	want := []string{"/usr/bin/runc", "/usr/local/bin/containerd-shim-runc-v2"}
	if !slices.Equal(got, want) {
		t.Errorf("runtimeExecutables = %v, want %v", got, want)
	}
}

// aareRegexp translates the AppArmor pattern subset attachAllExcept writes (literals, backslash
// escapes, \xHH, ?, **, [^...], nested {a,b}) into a Go regexp, to check which paths it matches.
func aareRegexp(t *testing.T, p string) *regexp.Regexp {
	t.Helper()
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			i++
			if p[i] == 'x' { // \xHH, a byte
				b.WriteString(`\x` + p[i+1:i+3])
				i += 2
				continue
			}
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		case '?':
			b.WriteString("[^/]")
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '[':
			end := strings.IndexByte(p[i:], ']')
			b.WriteString(p[i : i+end+1])
			i += end
		case '{':
			b.WriteString("(?:")
		case ',':
			b.WriteString("|")
		case '}':
			b.WriteString(")")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		t.Fatalf("pattern %s: %v", p, err)
	}
	return re
}

func TestAttachAllExcept(t *testing.T) {
	// Both shims, and tool1 beside tool10 and tool11: siblings that all end one byte on (the
	// parser refused the group of one this once wrote for each).
	excluded := []string{"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v1", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc",
		"/usr/local/bin/crun", "/usr/bin/kubelet", "/opt/t/tool1", "/opt/t/tool10", "/opt/t/tool11"}
	a, err := attachAllExcept(excluded)
	if err != nil {
		t.Fatal(err)
	}
	re := aareRegexp(t, strings.Trim(a, `"`))
	for _, p := range excluded {
		if re.MatchString(p) {
			t.Errorf("%s matches the attachment %s", p, a)
		}
	}
	for _, p := range []string{"/bin/sh", "/usr/bin/cat", "/usr/bin/containerd-shim", "/usr/bin/containerd2",
		"/usr/bin/containerd-shim-runc-v3", "/opt/t/tool12", "/opt/t/tool2", "/opt/t/tool100", "/usr/sbin/run", "/usr/sbin/runcx", "/usr/local/bin/crun.real", "/usr/bin/kubectl",
		"/usr/bin", "/usr/sbin/runc.d/x", "/opt/usr/sbin/runc", "/u", "/x"} {
		if !re.MatchString(p) {
			t.Errorf("%s does not match the attachment %s", p, a)
		}
	}
	if a, err := attachAllExcept(nil); err != nil || a != "/**" {
		t.Errorf("attachAllExcept(nil) = %q, %v; want /**", a, err)
	}
	if _, err := attachAllExcept([]string{"usr/bin/x"}); err == nil {
		t.Error("a relative path was accepted")
	}

	// The real parser reads it as a host profile's attachment.
	set := &rules.Set{Workload: host}
	prof, _, err := Render(set, Options{AttachAll: true, AttachExcept: excluded})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prof.Text), "profile ward-host "+a+" flags=") {
		t.Fatalf("host profile without the attachment %s:\n%s", a, prof.Text)
	}
	path := filepath.Join(t.TempDir(), prof.Name)
	if err := os.WriteFile(path, prof.Text, 0o644); err != nil {
		t.Fatal(err)
	}
	parseProfile(t, path)
}
