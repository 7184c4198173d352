package workload

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestReadOCIState(t *testing.T) {
	f, err := os.Open("testdata/oci/state-runc.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := ReadOCIState(f)
	if err != nil {
		t.Fatal(err)
	}
	want := OCIState{Version: "1.0.2-dev", ID: "c1", Status: "creating", Pid: 4242, Bundle: "testdata/oci/bundle-annotated",
		Annotations: map[string]string{"ward.io/label.app": "web"}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("state = %+v\nwant    %+v", st, want)
	}
	for in, msg := range map[string]string{
		`{"id":""}`: "no container id",
		`{"id":`:    "read oci state",
		``:          "EOF",
	} {
		if _, err := ReadOCIState(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ReadOCIState(%q) error = %v, want %q", in, err, msg)
		}
	}
}

func TestReadOCIConfig(t *testing.T) {
	c, err := ReadOCIConfig("testdata/oci/bundle-annotated")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "web-1" || c.Process == nil || len(c.Process.Args) != 3 || c.Annotations["ward.io/container-name"] != "web" {
		t.Errorf("config = %+v", c)
	}
	if _, err := ReadOCIConfig("testdata/oci/bundle-bad"); err == nil || !strings.Contains(err.Error(), "bundle-bad: config.json") {
		t.Errorf("bad config: error = %v", err)
	}
	if _, err := ReadOCIConfig("testdata/oci/missing"); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing config: error = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestFromOCI(t *testing.T) {
	load := func(bundle string, ann map[string]string) (Workload, []string) {
		t.Helper()
		c, err := ReadOCIConfig(filepath.Join("testdata/oci", bundle))
		if err != nil {
			t.Fatal(err)
		}
		return FromOCI(OCIState{ID: "id-" + bundle, Annotations: ann}, c)
	}
	tests := []struct {
		bundle   string
		stateAnn map[string]string
		want     Workload
		warnings []string
	}{{
		// Outside Kubernetes: Ward's annotations, the state's copy winning over config.json.
		bundle:   "bundle-annotated",
		stateAnn: map[string]string{"ward.io/label.app": "web"},
		want: Workload{Kind: KindContainer, ContainerID: "id-bundle-annotated", Namespace: DefaultContainerNamespace,
			Pod: "web", Container: "web", Labels: map[string]string{"app": "web", "tier": "front"}, Mode: ModeAudited},
	}, {
		// A CRI runtime: the pod's namespace and names, CRI-O's labels and image.
		bundle: "bundle-cri",
		want: Workload{Kind: KindContainer, ContainerID: "id-bundle-cri", Namespace: "shop", Pod: "web-7d9f", Container: "nginx",
			Image: "docker.io/library/nginx:1.25", Labels: map[string]string{"app": "nginx", "io.kubernetes.pod.namespace": "shop"}},
		warnings: []string{`annotation kubearmor-policy: unknown value "sometimes", treated as enabled; allowed: enabled, audited, disabled`},
	}, {
		// containerd's CRI plugin: its own annotation names, the pod UID included.
		bundle: "bundle-plain",
		stateAnn: map[string]string{
			AnnotationCRIContainerType: "container", "io.kubernetes.cri.sandbox-id": "sb1",
			AnnotationCRISandboxNamespace: "shop", AnnotationCRISandboxName: "web-7d9f",
			AnnotationCRISandboxUID: "uid-1", AnnotationCRIContainerName: "nginx",
			"io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
		},
		want: Workload{Kind: KindContainer, ContainerID: "id-bundle-plain", Namespace: "shop", Pod: "web-7d9f", PodUID: "uid-1",
			Container: "nginx", Image: "docker.io/library/nginx:1.25", Labels: map[string]string{}},
	}, {
		// Nothing says who it is: the id names it, in KubeArmor's default namespace.
		bundle: "bundle-plain",
		want: Workload{Kind: KindContainer, ContainerID: "id-bundle-plain", Namespace: DefaultContainerNamespace,
			Pod: "id-bundle-plain", Container: "id-bundle-plain", Labels: map[string]string{}},
	}, {
		bundle:   "bundle-plain",
		stateAnn: map[string]string{AnnotationCRIOLabels: "not json", AnnotationNamespace: "lab"},
		want: Workload{Kind: KindContainer, ContainerID: "id-bundle-plain", Namespace: "lab",
			Pod: "id-bundle-plain", Container: "id-bundle-plain", Labels: map[string]string{}},
		warnings: []string{"annotation io.kubernetes.cri-o.Labels: invalid character 'o' in literal null (expecting 'u')"},
	}}
	for _, tt := range tests {
		got, warnings := load(tt.bundle, tt.stateAnn)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: workload = %+v\nwant         %+v", tt.bundle, got, tt.want)
		}
		if !reflect.DeepEqual(warnings, tt.warnings) {
			t.Errorf("%s: warnings = %q, want %q", tt.bundle, warnings, tt.warnings)
		}
	}
}

func TestIsSandbox(t *testing.T) {
	for _, tc := range []struct {
		state, cfg map[string]string
		want       bool
	}{
		{state: map[string]string{AnnotationCRIContainerType: "sandbox"}, want: true},
		{cfg: map[string]string{AnnotationCRIOContainerType: "sandbox"}, want: true},
		{state: map[string]string{AnnotationCRIContainerType: "container"}},
		{cfg: map[string]string{AnnotationCRIOContainerType: "container"}},
		{},
	} {
		if got := IsSandbox(OCIState{ID: "x", Annotations: tc.state}, OCIConfig{Annotations: tc.cfg}); got != tc.want {
			t.Errorf("IsSandbox(state %v, config %v) = %v", tc.state, tc.cfg, got)
		}
	}
}

// cgroupFixture makes a cgroup root holding the fixtures' cgroup directories and returns it
// with the inode numbers the identity must report.
func cgroupFixture(t *testing.T) (root string, ino map[string]uint64) {
	t.Helper()
	root = t.TempDir()
	ino = map[string]uint64{}
	for _, p := range []string{"/ward-test/c1", "/ward-test/c2"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		ino[p] = st.Ino
	}
	return root, ino
}

func TestReadKernelIdentity(t *testing.T) {
	root, ino := cgroupFixture(t)
	got, err := ReadKernelIdentity("testdata/proc", root, 4242)
	if err != nil {
		t.Fatal(err)
	}
	want := KernelIdentity{CgroupID: ino["/ward-test/c1"], CgroupPath: "/ward-test/c1", PidNS: 4026532201, MntNS: 4026532200}
	if got != want {
		t.Errorf("pure v2: %+v, want %+v", got, want)
	}
	var w Workload
	got.Apply(&w)
	if w.CgroupID != want.CgroupID || w.PidNS != want.PidNS || w.MntNS != want.MntNS {
		t.Errorf("Apply: %+v", w)
	}
	// Hybrid: v1 lines first, the unified entry counts.
	got, err = ReadKernelIdentity("testdata/proc", root, 4243)
	if err != nil {
		t.Fatal(err)
	}
	if want := (KernelIdentity{CgroupID: ino["/ward-test/c2"], CgroupPath: "/ward-test/c2", PidNS: 4026532301, MntNS: 4026532300}); got != want {
		t.Errorf("hybrid: %+v, want %+v", got, want)
	}
	for pid, msg := range map[int]string{
		4244: "no cgroup v2 entry",                       // v1 only
		4245: `read mnt namespace: unexpected link "net`, // wrong link
		4246: "read cgroup",                              // no such process
		0:    "bad pid 0",
	} {
		if _, err := ReadKernelIdentity("testdata/proc", root, pid); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("pid %d: error = %v, want %q", pid, err, msg)
		}
	}
	// The cgroup directory is gone (the container died before the hook ran).
	if _, err := ReadKernelIdentity("testdata/proc", t.TempDir(), 4242); err == nil || !strings.Contains(err.Error(), "stat cgroup of pid 4242") {
		t.Errorf("missing cgroup: error = %v", err)
	}
}

// TestReadKernelIdentitySelf reads this process's namespaces from the real /proc and checks
// them against the inode numbers stat reports for the same files.
func TestReadKernelIdentitySelf(t *testing.T) {
	dir := filepath.Join("/proc", "self")
	for _, kind := range []string{"pid", "mnt"} {
		n, err := readNamespace(dir, kind)
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, "ns", kind), &st); err != nil {
			t.Fatal(err)
		}
		if uint64(n) != st.Ino {
			t.Errorf("%s namespace = %d, stat says %d", kind, n, st.Ino)
		}
	}
}

func TestCheckCgroup2(t *testing.T) {
	if err := CheckCgroup2(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a cgroup v2 mount") {
		t.Errorf("temp dir: error = %v", err)
	}
}
