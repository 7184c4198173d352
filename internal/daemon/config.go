// Package daemon wires Ward together on one node: configuration, LSM selection, policy sources,
// the reconcile loop that keeps the kernel's rules equal to the accepted policies, and the event
// pipeline. It is the only package that knows all the others.
package daemon

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload/kube"
)

// Config is the daemon's configuration. Keys use KubeArmor's names where KubeArmor has one
// (kubearmor-compat.md §7), so an existing configuration file reads the same.
type Config struct {
	Policies    string `json:"policies"`
	State       string `json:"state"`
	LSM         string `json:"lsm"`
	GRPC        string `json:"gRPC"`
	Health      string `json:"health"`
	Metrics     string `json:"metrics"`
	Cluster     string `json:"cluster"`
	Host        string `json:"host"`
	LogPath     string `json:"logPath"`
	AppArmorDir string `json:"apparmorDir"`
	BPFFsPath   string `json:"bpfFsPath"`

	DefaultFilePosture             string `json:"defaultFilePosture"`
	DefaultNetworkPosture          string `json:"defaultNetworkPosture"`
	DefaultCapabilitiesPosture     string `json:"defaultCapabilitiesPosture"`
	HostDefaultFilePosture         string `json:"hostDefaultFilePosture"`
	HostDefaultNetworkPosture      string `json:"hostDefaultNetworkPosture"`
	HostDefaultCapabilitiesPosture string `json:"hostDefaultCapabilitiesPosture"`

	Visibility                string `json:"visibility"`
	HostVisibility            string `json:"hostVisibility"`
	EnableKubeArmorPolicy     bool   `json:"enableKubeArmorPolicy"`
	EnableKubeArmorHostPolicy bool   `json:"enableKubeArmorHostPolicy"`
	UntrackedNs               string `json:"untrackedNs"`

	SystemMonitor bool `json:"systemMonitor"`

	// K8s is "true", "false" or "auto" (Kubernetes mode when running in a pod with a service
	// account); Kubeconfig points at the API server from outside the cluster.
	K8s        string `json:"k8s"`
	Kubeconfig string `json:"kubeconfig"`
	// NRI is the container runtime's NRI socket Ward registers containers through: "auto"
	// (nri.DefaultSocket, waited for while absent), "off", or a socket path.
	NRI string `json:"nri"`
	// Webhook is the address of the admission webhook that gives new pods Ward's AppArmor
	// profiles (Kubernetes mode); empty disables it.
	Webhook string `json:"webhook"`

	AlertThrottling bool `json:"alertThrottling"`
	MaxAlertPerSec  int  `json:"maxAlertPerSec"`
	ThrottleSec     int  `json:"throttleSec"`
}

// setting describes one configuration key: its flag, its default and its help text. The same
// table drives flags, environment variables and the file, so they cannot disagree.
type setting struct {
	key  string
	def  string
	help string
}

var settings = []setting{
	{"policies", "/etc/ward/policies", "directory of policy files, watched for changes"},
	{"state", enforcer.DefaultStateDir, "directory for accepted policies and daemon state"},
	{"lsm", "bpf,apparmor,selinux", "security modules to try, in order; none disables enforcement"},
	{"gRPC", "127.0.0.1:32767", "address of the gRPC LogService and PolicyService (a bare port means all addresses)"},
	{"health", "127.0.0.1:32766", "address of the grpc.health.v1 service; empty disables it"},
	{"metrics", "", "address to serve Prometheus metrics on /metrics (e.g. 127.0.0.1:9090); empty disables it"},
	{"cluster", "default", "cluster name put in alerts"},
	{"host", "", "host name put in alerts and matched by host policies (default: the machine's)"},
	{"logPath", "stdout", "where alerts and logs go as JSON lines: stdout, a file path, or none"},
	{"apparmorDir", "/etc/apparmor.d", "directory the AppArmor backend writes its profiles to"},
	{"bpfFsPath", "/sys/fs/bpf", "bpffs mount point"},
	{"defaultFilePosture", "audit", "posture of allow-listed file and process rules for containers: audit or block"},
	{"defaultNetworkPosture", "audit", "posture of allow-listed network rules for containers: audit or block"},
	{"defaultCapabilitiesPosture", "audit", "posture of allow-listed capability rules for containers: audit or block"},
	{"hostDefaultFilePosture", "audit", "posture of allow-listed file and process rules for the host: audit or block"},
	{"hostDefaultNetworkPosture", "audit", "posture of allow-listed network rules for the host: audit or block"},
	{"hostDefaultCapabilitiesPosture", "audit", "posture of allow-listed capability rules for the host: audit or block"},
	{"visibility", "process,file,network,capabilities", "what containers report as logs beyond alerts"},
	{"hostVisibility", "process,network", "what the host reports as logs beyond alerts (every file open of a whole host is a flood)"},
	{"enableKubeArmorPolicy", "true", "enforce KubeArmorPolicy and KubeArmorClusterPolicy"},
	{"enableKubeArmorHostPolicy", "true", "enforce KubeArmorHostPolicy"},
	{"untrackedNs", "kube-system,kubearmor", "namespaces that get no enforcement"},
	{"systemMonitor", "true", "trace syscalls for logs, syscall-rule alerts and monitor-mode alerts"},
	{"k8s", "auto", "Kubernetes mode (policies, pods, namespaces and this node from the API server): true, false, or auto (on when running in a pod)"},
	{"kubeconfig", "", "kubeconfig file for Kubernetes mode outside the cluster (default: the pod's service account)"},
	{"nri", "auto", "register containers as an NRI plugin of the container runtime (containerd 2.x, CRI-O): auto (the socket /var/run/nri/nri.sock, used once it exists), off, or the socket's path"},
	{"webhook", "", "address of the admission webhook that gives new pods Ward's AppArmor profiles when AppArmor is the enforcer (Kubernetes mode, deploy/webhook.yaml; e.g. :9443); empty disables it"},
	{"alertThrottling", "true", "throttle alerts per workload"},
	{"maxAlertPerSec", "10", "alerts per second per workload before throttling"},
	{"throttleSec", "30", "seconds of dropping alerts once the threshold is crossed"},
}

// EnvPrefix prefixes the environment variable of each key: WARD_LOGPATH, WARD_DEFAULTFILEPOSTURE.
const EnvPrefix = "WARD_"

// EnvName returns the environment variable for a key.
func EnvName(key string) string { return EnvPrefix + strings.ToUpper(key) }

// AddFlags registers every setting on a flag set. Flag names are the keys (`--logPath`); the
// lower-case spelling (`--logpath`, `--grpc`) is accepted too, since users type both.
func AddFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		fs.String(s.key, s.def, s.help+" (env "+EnvName(s.key)+")")
	}
	fs.String("config", "", "YAML configuration file with the same keys (env "+EnvName("config")+")")
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		for _, s := range settings {
			if strings.EqualFold(name, s.key) {
				return pflag.NormalizedName(s.key)
			}
		}
		return pflag.NormalizedName(name)
	})
}

// LoadConfig resolves every setting: a flag given on the command line wins, then the
// environment, then the configuration file, then the embedded default. getenv is os.Getenv in
// production.
func LoadConfig(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	values := map[string]string{}
	for _, s := range settings {
		values[s.key] = s.def
	}
	path := getenv(EnvName("config"))
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		file, err := readConfigFile(path)
		if err != nil {
			return Config{}, err
		}
		for k, v := range file {
			values[k] = v
		}
	}
	for _, s := range settings {
		if v := getenv(EnvName(s.key)); v != "" {
			values[s.key] = v
		}
		if f := fs.Lookup(s.key); f != nil && f.Changed {
			values[s.key] = f.Value.String()
		}
	}
	return buildConfig(values)
}

// readConfigFile reads a YAML file of settings. Unknown keys are errors: a misspelt key must not
// silently leave a default in force.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	known := map[string]string{}
	for _, s := range settings {
		known[strings.ToLower(s.key)] = s.key
	}
	out := map[string]string{}
	for k, v := range raw {
		key, ok := known[strings.ToLower(k)]
		if !ok {
			var names []string
			for _, s := range settings {
				names = append(names, s.key)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("config %s: unknown key %q; allowed: %s", path, k, strings.Join(names, ", "))
		}
		switch t := v.(type) {
		case string:
			out[key] = t
		case bool:
			out[key] = strconv.FormatBool(t)
		case float64:
			out[key] = strconv.FormatFloat(t, 'f', -1, 64)
		case []any:
			parts := make([]string, len(t))
			for i, e := range t {
				parts[i] = fmt.Sprint(e)
			}
			out[key] = strings.Join(parts, ",")
		default:
			return nil, fmt.Errorf("config %s: %s: expected a string, number, boolean or list, got %T", path, k, v)
		}
	}
	return out, nil
}

func buildConfig(v map[string]string) (Config, error) {
	c := Config{
		Policies: v["policies"], State: v["state"], LSM: v["lsm"], GRPC: v["gRPC"], Health: v["health"],
		Metrics: v["metrics"], Cluster: v["cluster"], Host: v["host"], LogPath: v["logPath"],
		AppArmorDir: v["apparmorDir"], BPFFsPath: v["bpfFsPath"],
		Visibility: v["visibility"], HostVisibility: v["hostVisibility"], UntrackedNs: v["untrackedNs"],
		Kubeconfig: v["kubeconfig"], NRI: strings.TrimSpace(v["nri"]), Webhook: strings.TrimSpace(v["webhook"]),
	}
	var err error
	posture := func(key string) string {
		if err != nil {
			return ""
		}
		if _, e := policy.ParsePosture(v[key]); e != nil {
			err = fmt.Errorf("%s: %w", key, e)
		}
		return strings.ToLower(strings.TrimSpace(v[key]))
	}
	c.DefaultFilePosture = posture("defaultFilePosture")
	c.DefaultNetworkPosture = posture("defaultNetworkPosture")
	c.DefaultCapabilitiesPosture = posture("defaultCapabilitiesPosture")
	c.HostDefaultFilePosture = posture("hostDefaultFilePosture")
	c.HostDefaultNetworkPosture = posture("hostDefaultNetworkPosture")
	c.HostDefaultCapabilitiesPosture = posture("hostDefaultCapabilitiesPosture")
	boolean := func(key string) bool {
		if err != nil {
			return false
		}
		b, e := strconv.ParseBool(v[key])
		if e != nil {
			err = fmt.Errorf("%s: %q is not a boolean: allowed are true, false", key, v[key])
		}
		return b
	}
	c.EnableKubeArmorPolicy = boolean("enableKubeArmorPolicy")
	c.EnableKubeArmorHostPolicy = boolean("enableKubeArmorHostPolicy")
	c.AlertThrottling = boolean("alertThrottling")
	c.SystemMonitor = boolean("systemMonitor")
	integer := func(key string) int {
		if err != nil {
			return 0
		}
		n, e := strconv.Atoi(v[key])
		if e != nil || n < 0 {
			err = fmt.Errorf("%s: %q is not a non-negative integer", key, v[key])
		}
		return n
	}
	switch k := strings.ToLower(strings.TrimSpace(v["k8s"])); k {
	case "true", "false", "auto":
		c.K8s = k
	default:
		if err == nil {
			err = fmt.Errorf("k8s: %q is not allowed: allowed are true, false, auto", v["k8s"])
		}
	}
	if c.NRI != "auto" && c.NRI != "off" && !strings.HasPrefix(c.NRI, "/") && err == nil {
		err = fmt.Errorf("nri: %q is not allowed: allowed are auto, off, or an absolute socket path", v["nri"])
	}
	c.MaxAlertPerSec = integer("maxAlertPerSec")
	c.ThrottleSec = integer("throttleSec")
	if err != nil {
		return Config{}, err
	}
	if _, err := enforcer.ParseOrder(c.LSM); err != nil {
		return Config{}, err
	}
	if c.GRPC != "" && !strings.Contains(c.GRPC, ":") {
		c.GRPC = ":" + c.GRPC // KubeArmor's gRPC setting is a bare port
	}
	if c.Host == "" {
		if c.Host, err = os.Hostname(); err != nil {
			return Config{}, fmt.Errorf("host name: %w (set host)", err)
		}
	}
	return c, nil
}

// toAction is the action of a posture buildConfig accepted; anything else audits.
func toAction(p string) policy.Action {
	if a, err := policy.ParsePosture(p); err == nil {
		return a
	}
	return policy.ActionAudit
}

// HostPostures are the postures of the host workload.
func (c *Config) HostPostures() rules.Postures {
	return rules.Postures{File: toAction(c.HostDefaultFilePosture), Network: toAction(c.HostDefaultNetworkPosture), Capabilities: toAction(c.HostDefaultCapabilitiesPosture)}
}

// ContainerPostures are the postures of containers, before namespace annotations.
func (c *Config) ContainerPostures() rules.Postures {
	return rules.Postures{File: toAction(c.DefaultFilePosture), Network: toAction(c.DefaultNetworkPosture), Capabilities: toAction(c.DefaultCapabilitiesPosture)}
}

// KubernetesMode reports whether the daemon takes policies and workloads from the API server.
func (c *Config) KubernetesMode() bool {
	switch c.K8s {
	case "true":
		return true
	case "auto":
		return c.Kubeconfig != "" || kube.InCluster()
	}
	return false
}
