// Package kubeapi runs a real kube-apiserver (built from k8s.io/kubernetes by make test-kube) and
// etcd on loopback for tests, so that CRD validation, field validation and watches are the API
// server's own and not a fake clientset's idea of them.
//
// Nothing here skips: a kube test that cannot start the server fails, because a suite that passes
// by not running proves nothing.
package kubeapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// EnvAPIServer names the kube-apiserver binary; make test-kube sets it to the cached build.
const EnvAPIServer = "WARD_KUBE_APISERVER"

// DefaultAPIServer is where mk/k8s.mk caches the build of this tree's tools/kube-apiserver:
// $WARD_CACHE_DIR/k8s, else $XDG_CACHE_HOME/ward/k8s, else $HOME/.cache/ward/k8s, named by the
// hash of that directory's go.mod, go.sum and main.go. It lets `go test -tags kube` run without
// make once make kube-apiserver has built it; the two must compute the same name.
func DefaultAPIServer() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "kube-apiserver", "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no tools/kube-apiserver above the working directory")
		}
		dir = parent
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, "tools", "kube-apiserver", f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache := os.Getenv("WARD_CACHE_DIR")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "ward")
	}
	bin := filepath.Join(cache, "k8s", "kube-apiserver-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%w (make kube-apiserver builds it)", err)
	}
	return bin, nil
}

// AdminToken is the bearer token of the system:masters user the server is started with.
const AdminToken = "ward-test-admin-token"

// Server is a running etcd plus kube-apiserver pair.
type Server struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Dir holds the data, keys and logs; it is removed by Stop.
	Dir string

	etcd, apiserver *exec.Cmd
	exited          map[*exec.Cmd]chan error
}

// Options adjust the server for a test package.
type Options struct {
	// Authorization is kube-apiserver's --authorization-mode; RBAC when empty, so that the
	// daemon's ClusterRole is exercised as in a cluster (the admin token is system:masters and
	// passes RBAC anyway).
	Authorization string
	// ExtraTokens are more lines for the token file: token,user,uid,"group1,group2".
	ExtraTokens []string
}

// Start starts etcd and kube-apiserver on random loopback ports and waits until /readyz answers
// ok. The caller must call Stop.
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin := os.Getenv(EnvAPIServer)
	if bin == "" {
		var err error
		if bin, err = DefaultAPIServer(); err != nil {
			return nil, fmt.Errorf("%s is not set and the default build is not found: %w", EnvAPIServer, err)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-apiserver binary: %w (make kube-apiserver builds it)", err)
	}
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("etcd: %w (install etcd-server with .ci/install-k8s-deps.sh)", err)
	}
	dir, err := os.MkdirTemp("", "ward-kubeapi-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, exited: map[*exec.Cmd]chan error{}}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()

	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.etcd, err = s.start(etcdBin, "etcd.log",
		"--name=ward-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=ward-test="+peerURL,
	)
	if err != nil {
		return nil, err
	}
	if err := s.waitHTTP(ctx, s.etcd, clientURL+"/health", nil, 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd: %w\n%s", err, s.tail("etcd.log"))
	}

	keyFile, pubFile, err := writeServiceAccountKey(dir)
	if err != nil {
		return nil, err
	}
	tokens := append([]string{AdminToken + ",admin,admin-uid,system:masters"}, opt.ExtraTokens...)
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(joinLines(tokens)), 0o600); err != nil {
		return nil, err
	}
	authz := opt.Authorization
	if authz == "" {
		authz = "RBAC"
	}
	port := strconv.Itoa(ports[2])
	s.apiserver, err = s.start(bin, "kube-apiserver.log",
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+port,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokenFile,
		"--authorization-mode="+authz,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pubFile,
		"--service-account-signing-key-file="+keyFile,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--allow-privileged=true",
		// The "kubernetes" Service endpoints would point at 127.0.0.1, which the reconciler
		// refuses; no pod here needs that Service.
		"--endpoint-reconciler-type=none",
		// No controller-manager runs, so nothing creates the default ServiceAccount that this
		// admission plugin insists on for every pod.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return nil, err
	}
	base := "https://127.0.0.1:" + port
	hdr := http.Header{"Authorization": {"Bearer " + AdminToken}}
	if err := s.waitHTTP(ctx, s.apiserver, base+"/readyz", hdr, 120*time.Second); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w\n%s", err, s.tail("kube-apiserver.log"))
	}
	s.Config = &rest.Config{
		Host:        base,
		BearerToken: AdminToken,
		// The server made its own certificate in cert-dir; the connection never leaves loopback.
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             -1, // no client-side rate limit: tests create objects in bulk
	}
	ok = true
	return s, nil
}

// TokenConfig is Config with another bearer token (one of Options.ExtraTokens).
func (s *Server) TokenConfig(token string) *rest.Config {
	c := rest.CopyConfig(s.Config)
	c.BearerToken = token
	return c
}

// Logs returns the tail of kube-apiserver's log, for failure messages.
func (s *Server) Logs() string { return s.tail("kube-apiserver.log") }

// Stop ends both processes and removes Dir.
func (s *Server) Stop() {
	for _, c := range []*exec.Cmd{s.apiserver, s.etcd} {
		if c == nil || c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited[c]:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-s.exited[c]
		}
	}
	if s.Dir != "" {
		_ = os.RemoveAll(s.Dir)
	}
}

func (s *Server) start(bin, log string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(filepath.Join(s.Dir, log))
	if err != nil {
		return nil, err
	}
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = f, f
	// If the test binary dies (a timeout panic, a kill), take the servers with it.
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	done := make(chan error, 1)
	s.exited[c] = done
	go func() { done <- c.Wait(); close(done); f.Close() }()
	return c, nil
}

func (s *Server) waitHTTP(ctx context.Context, c *exec.Cmd, url string, hdr http.Header, limit time.Duration) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header = hdr
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		select {
		case err := <-s.exited[c]:
			return fmt.Errorf("exited before ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", limit, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) tail(log string) string {
	b, err := os.ReadFile(filepath.Join(s.Dir, log))
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// FreePorts asks the kernel for n unused loopback ports. They are released before use, so
// another process could take one in between; on loopback in a test that is rare enough.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeServiceAccountKey makes the key pair kube-apiserver signs and checks service-account
// tokens with. ECDSA P-256 because generating it is instant, unlike RSA.
func writeServiceAccountKey(dir string) (keyFile, pubFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	err = errors.Join(
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600),
		os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600),
	)
	return keyFile, pubFile, err
}

func joinLines(lines []string) string {
	var s string
	for _, l := range lines {
		s += l + "\n"
	}
	return s
}
