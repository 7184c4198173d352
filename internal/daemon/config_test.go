package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/wardsec/ward/internal/policy"
)

func loadWith(t *testing.T, args []string, env map[string]string, file string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	AddFlags(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "ward.yaml")
		if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(fs, func(k string) string { return env[k] })
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadWith(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Policies != "/etc/ward/policies" || c.State != "/var/lib/ward" || c.LSM != "bpf,apparmor,selinux" ||
		c.GRPC != "127.0.0.1:32767" || c.LogPath != "stdout" || c.Host == "" || !c.AlertThrottling ||
		c.MaxAlertPerSec != 10 || c.ThrottleSec != 30 || c.HostPostures().File != policy.ActionAudit {
		t.Errorf("defaults = %+v", c)
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := "logPath: /from/file\nlsm: apparmor\ndefaultFilePosture: block\ngRPC: 40000\nhostDefaultNetworkPosture: block\n"
	env := map[string]string{"WARD_LOGPATH": "/from/env", "WARD_LSM": "selinux,bpf"}
	c, err := loadWith(t, []string{"--logPath", "/from/flag"}, env, file)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogPath != "/from/flag" {
		t.Errorf("flag must win: logPath = %q", c.LogPath)
	}
	if c.LSM != "selinux,bpf" {
		t.Errorf("env must beat the file: lsm = %q", c.LSM)
	}
	if c.ContainerPostures().File != policy.ActionBlock || c.HostPostures().Network != policy.ActionBlock {
		t.Errorf("file values lost: %+v", c)
	}
	if c.GRPC != ":40000" {
		t.Errorf("a bare port means all addresses: gRPC = %q", c.GRPC)
	}
	// Lower-case flag spellings are the same flags.
	c, err = loadWith(t, []string{"--logpath", "none", "--grpc", "127.0.0.1:1"}, nil, "")
	if err != nil || c.LogPath != "none" || c.GRPC != "127.0.0.1:1" {
		t.Errorf("lower-case flags: %+v %v", c, err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		file string
		want string
	}{
		{file: "logpth: x\n", want: `unknown key "logpth"; allowed:`},
		{args: []string{"--defaultFilePosture", "deny"}, want: `defaultFilePosture: "deny" is not a posture: allowed are audit, block`},
		{env: map[string]string{"WARD_LSM": "smack"}, want: `unknown module "smack": allowed are bpf, apparmor, selinux, none`},
		{file: "maxAlertPerSec: lots\n", want: `maxAlertPerSec: "lots" is not a non-negative integer`},
		{file: "alertThrottling: maybe\n", want: `alertThrottling: "maybe" is not a boolean`},
		{file: "[not a map\n", want: "config "},
	}
	for _, c := range cases {
		_, err := loadWith(t, c.args, c.env, c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %v env %v file %q: error %v, want it to contain %q", c.args, c.env, c.file, err, c.want)
		}
	}
}
