package workload

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// OCIState is the state an OCI runtime writes to a hook's stdin (runtime-spec runtime.md,
// "State"). Only what Ward reads is declared.
type OCIState struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

// OCIConfig is the part of a bundle's config.json that Ward reads. The runtime-spec module is
// not imported for these few fields.
type OCIConfig struct {
	Hostname    string            `json:"hostname"`
	Annotations map[string]string `json:"annotations"`
	Process     *struct {
		Args []string `json:"args"`
	} `json:"process"`
}

// ReadOCIState decodes the state a runtime hands a hook.
func ReadOCIState(r io.Reader) (OCIState, error) {
	var s OCIState
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s); err != nil {
		return OCIState{}, fmt.Errorf("read oci state: %w", err)
	}
	if s.ID == "" {
		return OCIState{}, errors.New("read oci state: no container id")
	}
	return s, nil
}

// ReadOCIConfig reads config.json of a bundle directory.
func ReadOCIConfig(bundle string) (OCIConfig, error) {
	var c OCIConfig
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return OCIConfig{}, fmt.Errorf("read bundle config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return OCIConfig{}, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	return c, nil
}

// Annotations that say who a container is. CRI runtimes set the Kubernetes ones: CRI-O copies
// the kubelet's container labels (io.kubernetes.pod.*, io.kubernetes.container.name), containerd
// sets its own (io.kubernetes.cri.*). Outside Kubernetes users set Ward's with `--annotation`
// (podman) or in config.json.
const (
	AnnotationPodNamespace  = "io.kubernetes.pod.namespace"
	AnnotationPodName       = "io.kubernetes.pod.name"
	AnnotationPodUID        = "io.kubernetes.pod.uid"
	AnnotationContainerName = "io.kubernetes.container.name"
	// containerd's CRI plugin.
	AnnotationCRISandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationCRISandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationCRISandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationCRIContainerName    = "io.kubernetes.cri.container-name"
	// AnnotationCRIContainerType and AnnotationCRIOContainerType are "sandbox" on a pod's
	// sandbox (pause) container and "container" on the others (containerd, CRI-O).
	AnnotationCRIContainerType  = "io.kubernetes.cri.container-type"
	AnnotationCRIOContainerType = "io.kubernetes.cri-o.ContainerType"
	// AnnotationCRIOLabels is CRI-O's JSON object of the container's labels.
	AnnotationCRIOLabels = "io.kubernetes.cri-o.Labels"
	// AnnotationName names a container outside Kubernetes.
	AnnotationName = "ward.io/container-name"
	// AnnotationNamespace puts a container outside Kubernetes into a namespace other than
	// DefaultContainerNamespace.
	AnnotationNamespace = "ward.io/namespace"
	// AnnotationLabelPrefix prefixes annotations that become labels: ward.io/label.app=web
	// gives the label app=web.
	AnnotationLabelPrefix = "ward.io/label."
	// AnnotationPolicy is KubeArmor's per-workload switch (enabled, audited, disabled).
	AnnotationPolicy = "kubearmor-policy"
)

// Image name annotations, first match wins: containerd's CRI plugin, CRI-O, the OCI image spec.
var imageAnnotations = []string{"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName", "org.opencontainers.image.ref.name"}

// DefaultContainerNamespace is the namespace of a container that no annotation places, as in
// KubeArmor outside Kubernetes.
const DefaultContainerNamespace = "container_namespace"

// FromOCI builds a container workload from the runtime's state and the bundle's configuration.
// Kernel identity (cgroup, namespaces) is not set here: see ReadKernelIdentity. Warnings name
// annotations that were present but unusable; they do not stop the container.
func FromOCI(st OCIState, cfg OCIConfig) (w Workload, warnings []string) {
	ann := map[string]string{}
	for k, v := range cfg.Annotations {
		ann[k] = v
	}
	// The state carries the same annotations in runtimes that set them; it is what the
	// runtime acted on, so it wins.
	for k, v := range st.Annotations {
		ann[k] = v
	}
	w = Workload{Kind: KindContainer, ContainerID: st.ID, Labels: map[string]string{}}
	w.Namespace = first(ann, AnnotationPodNamespace, AnnotationCRISandboxNamespace, AnnotationNamespace)
	if w.Namespace == "" {
		w.Namespace = DefaultContainerNamespace
	}
	w.Container = first(ann, AnnotationContainerName, AnnotationCRIContainerName, AnnotationName)
	if w.Container == "" {
		// Nothing names it: the id is the one name every runtime has.
		w.Container = st.ID
	}
	w.Pod = first(ann, AnnotationPodName, AnnotationCRISandboxName)
	w.PodUID = first(ann, AnnotationPodUID, AnnotationCRISandboxUID)
	if w.Pod == "" {
		// KubeArmor outside Kubernetes reports the container name as the pod name.
		w.Pod = w.Container
	}
	w.Image = first(ann, imageAnnotations...)
	if raw, ok := ann[AnnotationCRIOLabels]; ok {
		var l map[string]string
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			warnings = append(warnings, fmt.Sprintf("annotation %s: %v", AnnotationCRIOLabels, err))
		}
		for k, v := range l {
			w.Labels[k] = v
		}
	}
	for k, v := range ann {
		if name, ok := strings.CutPrefix(k, AnnotationLabelPrefix); ok && name != "" {
			w.Labels[name] = v
		}
	}
	if a, ok := ann[AnnotationPolicy]; ok {
		m, known := ParseMode(a)
		if !known {
			warnings = append(warnings, fmt.Sprintf("annotation %s: unknown value %q, treated as enabled; allowed: enabled, audited, disabled", AnnotationPolicy, a))
		}
		w.Mode = m
	}
	return w, warnings
}

// IsSandbox says whether the container is a pod's sandbox (the pause container that holds the
// pod's namespaces). It runs no user code and is not a workload: the pod's containers are.
func IsSandbox(st OCIState, cfg OCIConfig) bool {
	for _, m := range []map[string]string{st.Annotations, cfg.Annotations} {
		if m[AnnotationCRIContainerType] == "sandbox" || m[AnnotationCRIOContainerType] == "sandbox" {
			return true
		}
	}
	return false
}

func first(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

// KernelIdentity is what the kernel knows a process's workload by.
type KernelIdentity struct {
	// CgroupID is the inode number of the process's cgroup v2 directory, which is the id
	// bpf_get_current_cgroup_id returns for its tasks.
	CgroupID uint64
	// CgroupPath is that directory, relative to the cgroup v2 root.
	CgroupPath string
	PidNS      uint32
	MntNS      uint32
}

// Apply copies the identity into a workload.
func (k KernelIdentity) Apply(w *Workload) {
	w.CgroupID, w.PidNS, w.MntNS = k.CgroupID, k.PidNS, k.MntNS
}

// ReadKernelIdentity reads a process's cgroup and namespaces. procRoot is normally /proc and
// cgroupRoot the cgroup v2 mount, normally /sys/fs/cgroup (taken as inputs so tests can use
// fixtures). The path in /proc/<pid>/cgroup is relative to the reader's cgroup namespace, so the
// caller must be in the host's cgroup namespace, as an OCI runtime's createRuntime hook is.
func ReadKernelIdentity(procRoot, cgroupRoot string, pid int) (KernelIdentity, error) {
	if pid <= 0 {
		return KernelIdentity{}, fmt.Errorf("kernel identity: bad pid %d", pid)
	}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	path, err := readUnifiedCgroup(filepath.Join(dir, "cgroup"))
	if err != nil {
		return KernelIdentity{}, err
	}
	var st syscall.Stat_t
	full := filepath.Join(cgroupRoot, path)
	if err := syscall.Stat(full, &st); err != nil {
		return KernelIdentity{}, fmt.Errorf("stat cgroup of pid %d: %w", pid, err)
	}
	k := KernelIdentity{CgroupID: st.Ino, CgroupPath: path}
	if k.PidNS, err = readNamespace(dir, "pid"); err != nil {
		return KernelIdentity{}, err
	}
	if k.MntNS, err = readNamespace(dir, "mnt"); err != nil {
		return KernelIdentity{}, err
	}
	return k, nil
}

// CheckCgroup2 says whether root is a cgroup v2 mount. On a host with only cgroup v1 at
// /sys/fs/cgroup the cgroup path of a container may still exist there as a plain directory,
// and its inode would be no cgroup id at all.
func CheckCgroup2(root string) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil {
		return fmt.Errorf("cgroup root: %w", err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("cgroup root %s is not a cgroup v2 mount (filesystem magic %#x): Ward needs the unified hierarchy (on a hybrid host pass its mount, often /sys/fs/cgroup/unified)", root, fs.Type)
	}
	return nil
}

// readUnifiedCgroup returns the cgroup v2 path of /proc/<pid>/cgroup: the "0::" line, which is
// the only line on a pure v2 host and the unified hierarchy on a hybrid one.
func readUnifiedCgroup(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("read cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("%s: cgroup path %q is not absolute", file, p)
			}
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read cgroup: %w", err)
	}
	return "", fmt.Errorf("%s: no cgroup v2 entry (0::): Ward needs the unified cgroup hierarchy", file)
}

// readNamespace returns a namespace's inode number from the /proc/<pid>/ns/<kind> link, whose
// target reads "<kind>:[<inode>]".
func readNamespace(procDir, kind string) (uint32, error) {
	target, err := os.Readlink(filepath.Join(procDir, "ns", kind))
	if err != nil {
		return 0, fmt.Errorf("read %s namespace: %w", kind, err)
	}
	num, ok := strings.CutPrefix(target, kind+":[")
	num, ok2 := strings.CutSuffix(num, "]")
	if !ok || !ok2 {
		return 0, fmt.Errorf("read %s namespace: unexpected link %q", kind, target)
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("read %s namespace: %q: %w", kind, target, err)
	}
	return uint32(n), nil
}
