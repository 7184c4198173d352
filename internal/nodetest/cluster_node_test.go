//go:build node

package nodetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wardsec/ward/internal/testutil/kubeapi"
)

// The environment make test-node sets: where each cached build is.
const (
	envAPIServer  = "WARD_KUBE_APISERVER"  // the kube-apiserver binary
	envK8sBin     = "WARD_NODE_K8S"        // kubelet, kube-controller-manager, kube-scheduler, kubectl
	envContainerd = "WARD_NODE_CONTAINERD" // containerd, its shim, ctr, the CNI plugins
	envImages     = "WARD_NODE_IMAGES"     // pause.tar, busybox.tar
	envWardImage  = "WARD_NODE_WARD_IMAGE" // Ward's image archive
	envWardRef    = "WARD_NODE_WARD_REF"   // the name it carries
	envVMRun      = "WARD_NODE_VMRUN"      // tools/vmrun
)

const (
	nodeName  = "localhost" // the kubelet's --hostname-override: the API server dials it through the host forward
	adminTok  = "ward-node-admin"
	nodeTok   = "ward-node-kubelet"
	busybox   = "ward.test/busybox:1"
	guestHost = "10.0.2.2" // the host as qemu's user network shows it to the guest
)

// cluster is a control plane on the host and one node in a VM.
type cluster struct {
	dir, nodeDir string
	bin          map[string]string // name → path
	dirs         map[string]string // env name → directory
	apiPort      int
	kubeletPort  int
	kubeconfig   string
	Config       *rest.Config
	Client       kubernetes.Interface
	WardImage    string // the reference deploy/ is pointed at

	procs    []*proc
	vm       *proc
	vmStart  time.Time
	ReadyIn  time.Duration // qemu started → node Ready
	cmdCount int
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// need returns an environment variable or fails the test saying how to get it.
func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Fatalf("%s is not set: run the node suite with `make test-node`, which builds and caches what it needs", env)
	}
	if _, err := os.Stat(v); err != nil {
		t.Fatalf("%s: %v (make test-node builds it)", env, err)
	}
	return v
}

// startCluster brings up the control plane and the node and waits until the node is Ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{bin: map[string]string{}, dirs: map[string]string{}}
	c.bin["kube-apiserver"] = need(t, envAPIServer)
	for _, e := range []string{envK8sBin, envContainerd, envImages} {
		c.dirs[e] = need(t, e)
	}
	for _, b := range []string{"kube-controller-manager", "kube-scheduler", "kubectl", "kubelet"} {
		c.bin[b] = filepath.Join(c.dirs[envK8sBin], b)
	}
	c.bin["vmrun"] = need(t, envVMRun)
	wardImage := need(t, envWardImage)
	c.WardImage = os.Getenv(envWardRef)
	if c.WardImage == "" {
		t.Fatalf("%s is not set (the name inside %s)", envWardRef, wardImage)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd: %v (install etcd-server with .ci/install-k8s-deps.sh)", err)
	}
	for name, p := range c.bin {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// Not t.TempDir: the node's logs are worth keeping when a run fails, and the VM writes
	// files the test's cleanup would race.
	c.dir, err = os.MkdirTemp("", "ward-node-")
	if err != nil {
		t.Fatal(err)
	}
	c.nodeDir = filepath.Join(c.dir, "node")
	if err := os.MkdirAll(filepath.Join(c.nodeDir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.stop(t) })

	ports, err := kubeapi.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.apiPort, c.kubeletPort = ports[2], ports[3]

	pki, err := writePKI(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminTok + ",admin,admin-uid,system:masters\n" +
		nodeTok + ",system:node:" + nodeName + ",node-uid,system:nodes\n"
	if err := os.WriteFile(filepath.Join(c.dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	apiURL := "https://127.0.0.1:" + strconv.Itoa(c.apiPort)
	c.kubeconfig = filepath.Join(c.dir, "admin.conf")
	if err := writeKubeconfig(c.kubeconfig, apiURL, pki.caPEM, adminTok); err != nil {
		t.Fatal(err)
	}

	c.start(t, "etcd", etcd,
		"--name=ward-node", "--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=ward-node="+peerURL)
	c.waitHTTP(t, etcdURL+"/health", "", 60*time.Second)
	c.start(t, "kube-apiserver", c.bin["kube-apiserver"],
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.apiPort),
		"--tls-cert-file="+pki.certFile, "--tls-private-key-file="+pki.keyFile,
		"--token-auth-file="+filepath.Join(c.dir, "tokens.csv"),
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--allow-privileged=true",
		// The Service's endpoint would be 127.0.0.1, which the reconciler refuses; pods reach
		// the API server through the node's relay of 10.96.0.1 (testdata/node.sh).
		"--endpoint-reconciler-type=none",
		// The kubelet is reached by its name, localhost, on the port the host forwards.
		"--kubelet-preferred-address-types=Hostname",
		"--enable-priority-and-fairness=false", "--profiling=false", "--v=1")
	c.waitHTTP(t, apiURL+"/readyz", adminTok, 5*time.Minute)
	c.start(t, "kube-controller-manager", c.bin["kube-controller-manager"],
		"--kubeconfig="+c.kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[4]),
		"--root-ca-file="+pki.caFile, "--service-account-private-key-file="+pki.saKey,
		"--use-service-account-credentials=false", "--controllers=*", "--v=1")
	c.start(t, "kube-scheduler", c.bin["kube-scheduler"],
		"--kubeconfig="+c.kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[5]), "--v=1")

	c.Config = &rest.Config{
		Host:            apiURL,
		BearerToken:     adminTok,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM},
		QPS:             50, Burst: 100,
	}
	c.Client, err = kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	c.writeNodeFiles(t, pki.caPEM, wardImage)
	c.startVM(t)
	c.waitNodeReady(t, 15*time.Minute)
	return c
}

func (c *cluster) start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(c.dir, name+".log"), done: make(chan error, 1)}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// If the test binary dies, take the cluster with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait(); close(p.done); f.Close() }()
	if name == "vmrun" {
		c.vm = p
	} else {
		c.procs = append(c.procs, p)
	}
	return p
}

func (c *cluster) waitHTTP(t *testing.T, url, token string, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			select {
			case err := <-p.done:
				t.Fatalf("%s exited: %v\n%s", p.name, err, tail(p.log, 3000))
			default:
			}
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v: %v", url, limit, last)
}

// writeNodeFiles writes what testdata/node.sh reads from the node directory.
func (c *cluster) writeNodeFiles(t *testing.T, caPEM []byte, wardImage string) {
	t.Helper()
	apiGuest := "https://" + guestHost + ":" + strconv.Itoa(c.apiPort)
	files := map[string]string{
		"env": fmt.Sprintf("API_HOST=%s\nAPI_PORT=%d\n", guestHost, c.apiPort),
		"containerd.toml": `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.k8s.io/pause:3.10"
[plugins."io.containerd.cri.v1.runtime"]
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
# The emulated node runs 10-50 times slower than hardware, and a reconcile round can take more
# than NRI's default 2 s per request here. Real nodes keep containerd's default.
[plugins."io.containerd.nri.v1.nri"]
  plugin_request_timeout = "20s"
`,
		"cni.conflist": `{"cniVersion": "1.0.0", "name": "ward", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]]}}
]}
`,
		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
port: %d
readOnlyPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "10Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
`, c.kubeletPort),
	}
	var kc bytes.Buffer
	if err := kubeconfigTo(&kc, apiGuest, caPEM, nodeTok); err != nil {
		t.Fatal(err)
	}
	files["kubelet.conf"] = kc.String()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.nodeDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile(exe, filepath.Join(c.nodeDir, "nodetest.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(wardImage, filepath.Join(c.nodeDir, "ward.tar"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) startVM(t *testing.T) {
	t.Helper()
	script, err := filepath.Abs("testdata/node.sh")
	if err != nil {
		t.Fatal(err)
	}
	fwd := fmt.Sprintf("tcp:127.0.0.1:%d-:%d", c.kubeletPort, c.kubeletPort)
	// Single-threaded TCG: with a thread per vCPU the node locked up (both CPUs spinning in
	// syscall_trace_enter on an int3 the kernel had already patched away) when a restarted Ward
	// attached its programs while the other CPU ran the patched code.
	args := []string{"-profile", "node", "-m", "3072", "-smp", "2", "-tcg-single",
		"-boot-timeout", "15m", "-timeout", "3h",
		"-hostfwd", fwd,
		"-share", c.nodeDir + ":rw",
		"-share", c.dirs[envK8sBin], "-share", c.dirs[envContainerd], "-share", c.dirs[envImages],
		// The script is read from the module share, which the guest mounts at the same path.
		"--", "sh", script, c.nodeDir, c.dirs[envK8sBin], c.dirs[envContainerd], c.dirs[envImages]}
	c.vmStart = time.Now()
	c.start(t, "vmrun", c.bin["vmrun"], args...)
}

// waitNodeReady waits for the node object's Ready condition, failing with the node's logs.
func (c *cluster) waitNodeReady(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.vm.done:
			t.Fatalf("the node VM exited before Ready: %v\n%s\n%s", err, tail(c.vm.log, 4000), c.nodeLogs())
		default:
		}
		n, err := c.Client.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					c.ReadyIn = time.Since(c.vmStart)
					t.Logf("node Ready %.1fs after qemu started", c.ReadyIn.Seconds())
					return
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("node not Ready after %v\n%s\n%s", limit, tail(c.vm.log, 4000), c.nodeLogs())
}

// nodeLogs is the tail of every log the node wrote, for failure messages.
func (c *cluster) nodeLogs() string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(c.nodeDir, "log", "*.log"))
	sort.Strings(logs)
	for _, l := range logs {
		fmt.Fprintf(&b, "== node %s\n%s\n", filepath.Base(l), tail(l, 3000))
	}
	return b.String()
}

// onNode runs a shell command on the node, outside any pod, and returns its output and status.
func (c *cluster) onNode(t *testing.T, script string, limit time.Duration) (string, int) {
	t.Helper()
	c.cmdCount++
	base := filepath.Join(c.nodeDir, "cmd", strconv.Itoa(c.cmdCount))
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".sh.tmp", []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(base+".sh.tmp", base+".sh"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if rc, err := os.ReadFile(base + ".rc"); err == nil {
			out, _ := os.ReadFile(base + ".out")
			code, err := strconv.Atoi(strings.TrimSpace(string(rc)))
			if err != nil {
				t.Fatalf("node command status %q", rc)
			}
			return string(out), code
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("node command did not finish in %v: %s", limit, script)
	return "", -1
}

// kubectl runs kubectl against the cluster and returns its combined output.
func (c *cluster) kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin["kubectl"], append([]string{"--kubeconfig=" + c.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustKubectl is kubectl that fails the test on a non-zero exit.
func (c *cluster) mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := c.kubectl(ctx, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) stop(t *testing.T) {
	if c.vm != nil {
		_ = os.WriteFile(filepath.Join(c.nodeDir, "stop"), nil, 0o644)
		select {
		case <-c.vm.done:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-c.vm.cmd.Process.Pid, syscall.SIGKILL)
			<-c.vm.done
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if t.Failed() || os.Getenv("WARD_NODE_KEEP") != "" {
		t.Logf("cluster files kept in %s", c.dir)
		return
	}
	_ = os.RemoveAll(c.dir)
}

type pkiFiles struct {
	caFile, certFile, keyFile, saKey, saPub string
	caPEM                                   []byte
}

// writePKI makes a CA, the API server's serving certificate (valid for the names pods, the
// node and the host use) and the service-account key pair.
func writePKI(dir string) (pkiFiles, error) {
	var p pkiFiles
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ward-node-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return p, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return p, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(guestHost), net.ParseIP("10.96.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return p, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return p, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return p, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return p, err
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	p.caFile, p.certFile, p.keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	p.saKey, p.saPub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	return p, errors.Join(
		os.WriteFile(p.caFile, p.caPEM, 0o644),
		os.WriteFile(p.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644),
		os.WriteFile(p.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600),
		os.WriteFile(p.saKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600),
		os.WriteFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o644),
	)
}

func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	var b bytes.Buffer
	if err := kubeconfigTo(&b, server, caPEM, token); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

func kubeconfigTo(w io.Writer, server string, caPEM []byte, token string) error {
	_, err := fmt.Fprintf(w, `apiVersion: v1
kind: Config
clusters:
- name: ward
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: ward
  user:
    token: %s
contexts:
- name: ward
  context: {cluster: ward, user: ward}
current-context: ward
`, server, b64(caPEM), token)
	return err
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func copyFile(src, dst string, mode os.FileMode) error {
	// dst may be a link to src from an earlier call (the second round's uninstall overlay):
	// opening it with O_TRUNC below would empty the source, a file of the clone. Remove it first.
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
