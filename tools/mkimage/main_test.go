package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fixture writes two input files and returns a spec that copies them.
func fixture(t *testing.T, dir string, mtime time.Time) Spec {
	t.Helper()
	files := map[string]string{"ward": "#!/bin/sh\necho ward\n", "tool": "tool data"}
	var spec Spec
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	spec = Spec{
		Name: "localhost/ward:test",
		Files: []File{
			{Src: filepath.Join(dir, "ward"), Dst: "/usr/bin/ward", Mode: 0o755},
			{Src: filepath.Join(dir, "tool"), Dst: "/usr/share/ward/tool"},
		},
		Dirs:       []Dir{{Path: "/tmp", Mode: 0o1777}},
		Entrypoint: []string{"/usr/bin/ward"}, Cmd: []string{"run"},
		Labels:  map[string]string{"b": "2", "a": "1"},
		Created: time.Unix(0, 0).UTC(),
	}
	return spec
}

func archive(t *testing.T, s Spec) []byte {
	t.Helper()
	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img, s.Name, s.Created); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReproducible builds the image twice from inputs that differ only in what the image must
// not carry (file times, the directory they are in, permissions of a file whose mode is set)
// and requires the same bytes, so the same digest.
func TestReproducible(t *testing.T) {
	a := archive(t, fixture(t, t.TempDir(), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
	s := fixture(t, t.TempDir(), time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	if err := os.Chmod(s.Files[0].Src, 0o644); err != nil {
		t.Fatal(err)
	}
	b := archive(t, s)
	if !bytes.Equal(a, b) {
		t.Fatalf("two builds of the same inputs differ (%d and %d bytes)", len(a), len(b))
	}
	// A changed content must change the archive: the comparison above can fail.
	if err := os.WriteFile(s.Files[1].Src, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := archive(t, s); bytes.Equal(a, c) {
		t.Fatal("a changed input file left the archive unchanged")
	}
}

// TestArchiveReadBack reads the archive both ways tools do: as a Docker archive (manifest.json,
// what crane and podman load read) and as an OCI layout (what ctr images import reads), and
// requires the same image, with the files, modes and times Build was asked for.
func TestArchiveReadBack(t *testing.T) {
	s := fixture(t, t.TempDir(), time.Now())
	data := archive(t, s)
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dimg, err := tarball.ImageFromPath(p, nil)
	if err != nil {
		t.Fatalf("read as docker archive: %v", err)
	}
	// A Docker archive holds no manifest: readers make a Docker one, so the image is the same
	// when its config and layers are.
	dcfg, err := dimg.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	dlayers, err := dimg.Layers()
	if err != nil || len(dlayers) != 1 {
		t.Fatalf("docker archive layers: %d, %v", len(dlayers), err)
	}
	dlayer, err := dlayers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	untar(t, data, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read as oci layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	m := im.Manifests[0]
	if got := m.Annotations["io.containerd.image.name"]; got != s.Name {
		t.Errorf("io.containerd.image.name = %q, want %q", got, s.Name)
	}
	if got := m.Annotations["org.opencontainers.image.ref.name"]; got != "test" {
		t.Errorf("org.opencontainers.image.ref.name = %q, want test", got)
	}
	if m.Platform == nil || m.Platform.Architecture != "amd64" || m.Platform.OS != "linux" {
		t.Errorf("platform = %+v, want linux/amd64", m.Platform)
	}
	oimg, err := idx.Image(m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if ocfg, err := oimg.ConfigName(); err != nil || ocfg != dcfg {
		t.Fatalf("oci layout config %s (%v), docker archive config %s", ocfg, err, dcfg)
	}
	cf, err := oimg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, s.Entrypoint) || !slices.Equal(cf.Config.Cmd, s.Cmd) || cf.Config.Labels["a"] != "1" {
		t.Errorf("config = %+v", cf.Config)
	}
	if !cf.Created.Time.Equal(s.Created) {
		t.Errorf("created = %v, want %v", cf.Created, s.Created)
	}

	layers, err := oimg.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	if d, err := layers[0].Digest(); err != nil || d != dlayer {
		t.Fatalf("oci layout layer %s (%v), docker archive layer %s", d, err, dlayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	type ent struct {
		mode int64
		body string
	}
	got := map[string]ent{}
	var order []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(s.Created) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want %v and root", h.Name, h.ModTime, h.Uid, h.Gid, s.Created)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = ent{h.Mode, string(b)}
		order = append(order, h.Name)
	}
	if !slices.IsSorted(order) {
		t.Errorf("layer entries not sorted: %v", order)
	}
	want := map[string]ent{
		"tmp/":                {0o1777, ""},
		"usr/":                {0o755, ""},
		"usr/bin/":            {0o755, ""},
		"usr/bin/ward":        {0o755, "#!/bin/sh\necho ward\n"},
		"usr/share/":          {0o755, ""},
		"usr/share/ward/":     {0o755, ""},
		"usr/share/ward/tool": {0o600, "tool data"},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("layer holds %v, want exactly %d entries", order, len(want))
	}
}

// TestELFLibraries adds a dynamically linked program of this machine (Debian's /bin/true) and
// requires its interpreter and libc in the image; a library that cannot be found is an error.
func TestELFLibraries(t *testing.T) {
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	deps, err := elfDeps(data, DefaultLibDirs)
	if err != nil {
		t.Fatal(err)
	}
	var interp, libc bool
	for _, d := range deps {
		interp = interp || strings.HasSuffix(d, "/ld-linux-x86-64.so.2")
		libc = libc || strings.HasSuffix(d, "/libc.so.6")
	}
	if !interp || !libc {
		t.Errorf("deps of /bin/true = %v, want the loader and libc.so.6", deps)
	}
	if _, err := elfDeps(data, []string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "libc.so.6 not found") {
		t.Errorf("no library directory: err = %v, want libc.so.6 not found", err)
	}
	if deps, err := elfDeps([]byte("#!/bin/sh\n"), DefaultLibDirs); err != nil || deps != nil {
		t.Errorf("a script: deps %v, err %v; want none", deps, err)
	}
}

func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
