// Command mkimage writes Ward's container image as one tar archive, without a registry or a
// container engine: `make image` runs it (docs/kubernetes.md, "The image").
//
// The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) that also holds
// a Docker-style manifest.json naming the same blobs, as `docker save` writes since Docker 25, so
// that `ctr images import`, `podman load`, skopeo's oci-archive: and docker-archive: transports
// and crane all read the same file.
//
// It is reproducible: every time stamp is the -created time (SOURCE_DATE_EPOCH, default 0),
// entries are sorted, owners are root, and file contents are copied, never their metadata, so the
// same inputs give the same digest on any machine.
//
// Each -add names a file of this machine and where it goes in the image. A dynamically linked
// ELF file brings its program interpreter and the shared libraries it needs (DT_NEEDED,
// recursively), found in the -libdirs, at the same paths as on this machine.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec is what goes into the image.
type Spec struct {
	// Name is the image reference the archive carries (index.json and manifest.json).
	Name string
	// Files maps an image path to the file of this machine it is copied from.
	Files []File
	// Dirs are empty directories to create, with their modes.
	Dirs []Dir
	// LibDirs are searched for the shared libraries of dynamically linked files.
	LibDirs    []string
	Entrypoint []string
	Cmd        []string
	Env        []string
	Labels     map[string]string
	Created    time.Time
}

// File is one file copied into the image.
type File struct {
	Src, Dst string
	// Mode is the Unix mode (0755); 0 takes the source's permissions.
	Mode uint32
}

// Dir is one directory of the image.
type Dir struct {
	Path string
	Mode uint32 // Unix mode bits, 01777 for /tmp
}

// DefaultLibDirs are where Debian (amd64) keeps shared libraries.
var DefaultLibDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string) error {
	fl := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	out := fl.String("o", "", "archive to write")
	ref := fl.String("name", "", "image reference, e.g. localhost/ward:dev")
	var adds, dirs, env, labels, entry, cmd listFlag
	fl.Var(&adds, "add", "SRC:DST[:MODE] copy a file (an ELF brings its libraries); repeatable")
	fl.Var(&dirs, "dir", "PATH:MODE an empty directory; repeatable")
	fl.Var(&env, "env", "KEY=VALUE in the image config; repeatable")
	fl.Var(&labels, "label", "KEY=VALUE in the image config; repeatable")
	fl.Var(&entry, "entrypoint", "entrypoint word; repeatable")
	fl.Var(&cmd, "cmd", "default argument word; repeatable")
	libdirs := fl.String("libdirs", strings.Join(DefaultLibDirs, ":"), "where shared libraries are looked up")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || *ref == "" {
		return errors.New("-o and -name are required")
	}
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	s := Spec{Name: *ref, LibDirs: filepath.SplitList(*libdirs), Entrypoint: entry, Cmd: cmd, Env: env,
		Labels: map[string]string{}, Created: created}
	for _, a := range adds {
		f, err := parseFile(a)
		if err != nil {
			return err
		}
		s.Files = append(s.Files, f)
	}
	for _, d := range dirs {
		p, m, ok := strings.Cut(d, ":")
		mode, err := strconv.ParseUint(m, 8, 32)
		if !ok || err != nil || !path.IsAbs(p) {
			return fmt.Errorf("-dir %q: want /PATH:OCTALMODE", d)
		}
		s.Dirs = append(s.Dirs, Dir{Path: p, Mode: uint32(mode)})
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("-label %q: want KEY=VALUE", l)
		}
		s.Labels[k] = v
	}
	img, err := Build(s)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := WriteArchive(f, img, s.Name, s.Created); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", *out, s.Name, d)
	return nil
}

func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func parseFile(a string) (File, error) {
	parts := strings.Split(a, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !path.IsAbs(parts[1]) {
		return File{}, fmt.Errorf("-add %q: want SRC:/DST[:OCTALMODE]", a)
	}
	f := File{Src: parts[0], Dst: parts[1]}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 8, 32)
		if err != nil {
			return File{}, fmt.Errorf("-add %q: mode %q: want octal", a, parts[2])
		}
		f.Mode = uint32(m)
	}
	return f, nil
}

// entry is one file or directory of the layer.
type entry struct {
	mode uint32 // Unix mode bits: permissions and sticky
	data []byte
	dir  bool
}

// Build makes the image: one layer with the files, their libraries and the directories.
func Build(s Spec) (v1.Image, error) {
	if _, err := name.ParseReference(s.Name); err != nil {
		return nil, fmt.Errorf("image name %q: %w", s.Name, err)
	}
	entries := map[string]entry{}
	var addFile func(src, dst string, mode uint32) error
	addFile = func(src, dst string, mode uint32) error {
		if _, ok := entries[dst]; ok {
			return nil
		}
		data, err := os.ReadFile(src) // follows symlinks: the image holds contents only
		if err != nil {
			return err
		}
		if mode == 0 {
			st, err := os.Stat(src)
			if err != nil {
				return err
			}
			mode = uint32(st.Mode().Perm())
		}
		entries[dst] = entry{mode: mode, data: data}
		deps, err := elfDeps(data, s.LibDirs)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, d := range deps {
			// Libraries go to the path the loader asks for (the interpreter) or where they were
			// found, so the image resolves them as this machine does.
			if err := addFile(d, d, 0); err != nil {
				return fmt.Errorf("%s: library: %w", src, err)
			}
		}
		return nil
	}
	for _, f := range s.Files {
		if err := addFile(f.Src, path.Clean(f.Dst), f.Mode); err != nil {
			return nil, fmt.Errorf("add %s: %w", f.Src, err)
		}
	}
	for _, d := range s.Dirs {
		entries[path.Clean(d.Path)] = entry{mode: d.Mode, dir: true}
	}
	// Every parent directory has an entry of its own.
	for _, p := range keys(entries) {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = entry{mode: 0o755, dir: true}
			}
		}
	}
	layerTar, err := layerTar(entries, s.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: s.Created}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: created, CreatedBy: "mkimage", Comment: "ward and the tools its backends run"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = created
	cf.Config = v1.Config{Entrypoint: s.Entrypoint, Cmd: s.Cmd, Env: s.Env, Labels: s.Labels, WorkingDir: "/"}
	return mutate.ConfigFile(img, cf)
}

// keys returns the keys of m, so that the caller may add to m while it ranges.
func keys(m map[string]entry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func layerTar(entries map[string]entry, created time.Time) ([]byte, error) {
	paths := keys(entries)
	slices.Sort(paths) // a parent sorts before its children
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := entries[p]
		h := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: int64(e.mode), ModTime: created, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// elfDeps returns the program interpreter and the shared libraries an ELF file needs, each a
// path of this machine; nothing for a file that is not ELF or is statically linked.
func elfDeps(data []byte, libDirs []string) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, nil // not ELF: a script or data file
	}
	defer f.Close()
	var deps []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("read interpreter: %w", err)
			}
			deps = append(deps, strings.TrimRight(string(b), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("read needed libraries: %w", err)
	}
	for _, lib := range libs {
		found := ""
		for _, d := range libDirs {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				found = filepath.Join(d, lib)
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("library %s not found in %s", lib, strings.Join(libDirs, ":"))
		}
		deps = append(deps, found)
	}
	return deps, nil
}

// WriteArchive writes img as an OCI image layout with a Docker manifest.json beside index.json,
// every entry stamped with created.
func WriteArchive(w io.Writer, img v1.Image, ref string, created time.Time) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	tag := r.Identifier()
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2, MediaType: types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1, Digest: digest, Size: int64(len(manifest)),
			Platform: &v1.Platform{Architecture: "amd64", OS: "linux"},
			Annotations: map[string]string{
				// containerd's import names the image after the first, OCI tools after the second.
				"io.containerd.image.name":          ref,
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	})
	if err != nil {
		return err
	}
	docker := []map[string]any{{"Config": blob(configName), "RepoTags": []string{ref}, "Layers": []string{}}}
	type file struct {
		name string
		data func() ([]byte, error)
	}
	files := []file{
		{"oci-layout", func() ([]byte, error) { return []byte(`{"imageLayoutVersion":"1.0.0"}`), nil }},
		{"index.json", func() ([]byte, error) { return index, nil }},
		{blob(digest), func() ([]byte, error) { return manifest, nil }},
		{blob(configName), func() ([]byte, error) { return config, nil }},
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		docker[0]["Layers"] = append(docker[0]["Layers"].([]string), blob(d))
		files = append(files, file{blob(d), func() ([]byte, error) {
			rc, err := l.Compressed()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}})
	}
	dockerJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}
	files = append(files, file{"manifest.json", func() ([]byte, error) { return dockerJSON, nil }})

	tw := tar.NewWriter(w)
	dirs := []string{"blobs/", "blobs/sha256/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: created, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, f := range files {
		b, err := f.data()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)),
			ModTime: created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}
