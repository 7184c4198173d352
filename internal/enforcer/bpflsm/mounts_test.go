package bpflsm

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMountInfo(t *testing.T) {
	in := `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:25 / /wt/fs rw,nosuid - tmpfs tmpfs rw
31 22 254:1 /wt/with\040space/a /srv/with\134slash rw - ext4 /dev/vda1 rw
`
	got, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Dev: 254<<20 | 1, Root: "/", Point: "/"},
		{Dev: 25, Root: "/", Point: "/wt/fs"},
		{Dev: 254<<20 | 1, Root: "/wt/with space/a", Point: `/srv/with\slash`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountInfo:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"22 1 254:1 /\n", "22 1 nodev / / rw - x y z\n"} {
		if _, err := parseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMountInfo(%q): no error", bad)
		}
	}
}

func TestMountOf(t *testing.T) {
	mounts := []Mount{
		{Dev: 1, Root: "/", Point: "/"},
		{Dev: 2, Root: "/", Point: "/srv"},
		{Dev: 3, Root: "/", Point: "/srv"}, // mounted over the one before: it is what /srv shows
		{Dev: 4, Root: "/a", Point: "/srv/a"},
	}
	for _, c := range []struct {
		p    string
		dev  uint32
		rest string
	}{{"/etc/x", 1, "etc/x"}, {"/srv/x", 3, "x"}, {"/srv", 3, ""}, {"/srv/a/b", 4, "b"}, {"/srvx", 1, "srvx"}} {
		m, rest, ok := mountOf(mounts, c.p)
		if !ok || m.Dev != c.dev || rest != c.rest {
			t.Errorf("mountOf(%q) = %+v %q %v, want device %d, rest %q", c.p, m, rest, ok, c.dev, c.rest)
		}
	}
}

// TestRootHostMounts: a workload's mount table is read through the task its root is reached by.
func TestRootHostMounts(t *testing.T) {
	own, err := OSHost{}.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(own) == 0 {
		t.Fatal("no mounts in /proc/self/mountinfo")
	}
	if _, _, ok := mountOf(own, "/"); !ok {
		t.Errorf("no mount holds /: %+v", own)
	}
	viaRoot, err := rootHost{root: "/proc/self/root"}.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(viaRoot, own) {
		t.Errorf("rootHost{/proc/self/root}.Mounts() differs from OSHost's:\n%+v\n%+v", viaRoot, own)
	}
	if _, err := (rootHost{root: "/proc/999999999/root"}).Mounts(); err == nil {
		t.Error("the mount table of a task that does not exist: no error")
	}
}
