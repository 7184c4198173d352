//go:build node

package nodetest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// envProxy makes the test binary, copied into the node, relay the "kubernetes" Service address
// to the host's API server instead of running tests: LISTEN=TARGET (node.sh starts it).
const envProxy = "WARD_NODE_PROXY"

// envListBPF makes it print the BPF programs loaded in the kernel, one name a line, of the type
// given ("lsm" or "all"), for the uninstall check.
const envListBPF = "WARD_NODE_LISTBPF"

func TestMain(m *testing.M) {
	if typ := os.Getenv(envListBPF); typ != "" {
		if err := listBPF(typ); err != nil {
			fmt.Fprintf(os.Stderr, "list BPF programs: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(envProxy); spec != "" {
		if err := relay(spec); err != nil {
			fmt.Fprintf(os.Stderr, "proxy: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func listBPF(typ string) error {
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded in between
		}
		if err != nil {
			return err
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			return err
		}
		if typ == "all" || info.Type == ebpf.LSM {
			fmt.Printf("%d %s %s\n", id, info.Type, info.Name)
		}
	}
}

// relay copies every connection to listen through to target, bytes both ways: TLS goes end to
// end, so pods check the API server's own certificate.
func relay(spec string) error {
	listen, target, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("%s=%q: want LISTEN=TARGET", envProxy, spec)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", target)
			if err != nil {
				fmt.Fprintf(os.Stderr, "proxy: dial %s: %v\n", target, err)
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}
