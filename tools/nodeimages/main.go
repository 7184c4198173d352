// Command nodeimages writes the container images the end-to-end node suite loads into containerd
// (docs/kubernetes.md, "A real node"), as docker-archive tarballs that `ctr images import`
// takes, without a registry or a container engine:
//
//	nodeimages -pause PATH -out DIR
//	    DIR/pause.tar    registry.k8s.io/pause:3.10, the sandbox image (PATH is tools/nodeimages/pause)
//	    DIR/busybox.tar  ward.test/busybox:1, the host's static busybox with its applets linked,
//	                     and /secret
//
// The images are reproducible: file times are zero and the config has no creation time, so the
// same inputs give the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	PauseName   = "registry.k8s.io/pause:3.10"
	BusyboxName = "ward.test/busybox:1"
	// Secret is /secret in the busybox image.
	Secret = "ward-e2e-secret\n"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "nodeimages: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nodeimages", flag.ContinueOnError)
	pause := fs.String("pause", "", "the pause binary (static)")
	out := fs.String("out", "", "directory for pause.tar and busybox.tar")
	busybox := fs.String("busybox", "/bin/busybox", "a static busybox")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *pause != "" && *out != "":
		l := newLayer()
		if err := l.file("/pause", *pause, 0o755); err != nil {
			return err
		}
		if err := write(filepath.Join(*out, "pause.tar"), PauseName, l, []string{"/pause"}, nil); err != nil {
			return err
		}
		l = newLayer()
		if err := l.file("/bin/busybox", *busybox, 0o755); err != nil {
			return err
		}
		list, err := exec.Command(*busybox, "--list-full").Output()
		if err != nil {
			return fmt.Errorf("%s --list-full: %w", *busybox, err)
		}
		for _, applet := range strings.Fields(string(list)) {
			if applet != "bin/busybox" {
				l.symlink("/"+applet, "/bin/busybox")
			}
		}
		l.dir("/tmp", 0o1777)
		// What the suite's policies protect: present from the container's first instruction.
		l.bytes("/secret", []byte(Secret), 0o644)
		return write(filepath.Join(*out, "busybox.tar"), BusyboxName, l, []string{"/bin/sh"}, nil)
	default:
		fs.Usage()
		return errors.New("give -pause and -out")
	}
}

// layer collects the files of a one-layer image, keyed by path so that a file named twice (a
// library two tools load) is written once, and written in path order so the tar is the same
// every time.
type layer struct {
	entries map[string]entry
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func newLayer() *layer { return &layer{entries: map[string]entry{}} }

func (l *layer) parents(p string) {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		if _, ok := l.entries[d]; !ok {
			l.dir(d, 0o755)
		}
	}
}

func (l *layer) dir(p string, mode int64) {
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode}}
}

func (l *layer) symlink(p, target string) {
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(p, "/"), Linkname: target, Mode: 0o777}}
}

func (l *layer) bytes(p string, data []byte, mode int64) {
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data))}, data: data}
}

// file copies a host file (following symlinks) to p.
func (l *layer) file(p, src string, mode int64) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	l.bytes(p, data, mode)
	return nil
}

func (l *layer) tar() ([]byte, error) {
	paths := make([]string, 0, len(l.entries))
	for p := range l.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := l.entries[p]
		e.hdr.ModTime = time.Unix(0, 0)
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
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

func write(path, ref string, l *layer, entrypoint, cmd []string) error {
	data, err := l.tar()
	if err != nil {
		return err
	}
	lay, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, lay)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		Entrypoint: entrypoint,
		Cmd:        cmd,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
