package vmbench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
)

// The files the report's accesses use, made by Setup.
const (
	Cached   = "/wt/bench/a/b/c/d/e/f.txt"
	Uncached = "/wt/bench/a/b/c/d/e/g.txt" // has a second name, /wt/bench/g-link
	ExecBin  = "/wt/bench/exec/true"       // a copy of the static busybox: runs `true`
	HelperAt = "/wt/bench/helper"          // a copy of the test binary: the workload process
	Rounds   = 5
)

// Variant is one workload of the report: its rules, as the spec of a host policy.
type Variant struct {
	Label string // the report's "rules for the workload"
	Name  string // short name: cgroups, container ids, profiles
	Spec  string // the policy's spec body (YAML, indented by two), without selector and action
}

// Group is one access of the report measured in several variants; the first variant is the
// workload without rules of the access's operation.
type Group struct {
	Label    string
	Key      string // for b.ReportMetric
	Access   Access
	Arg      string
	N        int // iterations per round (before Iterations scales them)
	Variants []string
}

// NoRules is the report's label of a group's first variant: the workload has no rules of the
// access's operation, another workload has (so the program is attached and must return at once).
const NoRules = "attached, no rules of this operation"

// Unattached is the report's label of the access while no workload has rules of its operation:
// BPF-LSM then does not attach the operation's programs.
const Unattached = "no workload has rules of this operation (not attached)"

// Floor is the report's label of the access with a program that returns at once on every hook
// Ward's BPF-LSM programs attach to, in their place: what any program there costs.
const Floor = "floor: a program that returns at once on each of Ward's hooks"

// Baseline is the report's label of the access with no Ward program and no profile.
const Baseline = "no Ward program"

// OneOfEach is the report's label of one exact path and one directory rule: the kinds of file
// rules the 10,000-rule variants have, one of each. Growth from it to those is growth with the
// number of rules alone; from "1 rule" (an exact path only), it is also the cost of the
// directory rules' kind.
const OneOfEach = "1 rule + 1 directory rule"

// Variants are the workloads every backend is measured with. A workload "without rules of an
// operation" has rules of another, so that it is registered and found: what is measured is the
// outer check that must return at once.
//
// WARD_TEST_BENCH_SCALE scales the rule counts as it scales the iterations (Iterations), so
// that the run inside the functional suite stays short; the labels say the counts used.
func Variants() []Variant {
	n10k, n9900, n100 := Iterations(10000), Iterations(9900), Iterations(100)
	var file10k, proc10k, net100 strings.Builder
	file10k.WriteString("  file:\n    matchPaths:\n")
	for i := 0; i < n9900; i++ {
		fmt.Fprintf(&file10k, "    - path: /wt/bench/a/b/c/d/e/file%d\n", i)
	}
	// The same rules, the exact paths' names varied as a file system's are: the names above
	// differ only in their digits, which leaves most of BPF-LSM's names filter clear.
	varied := "  file:\n    matchPaths:\n"
	for _, name := range VariedNames(n9900) {
		varied += "    - path: /wt/bench/a/b/c/d/e/" + name + "\n"
	}
	var dirs strings.Builder
	dirs.WriteString("    matchDirectories:\n")
	for i := 0; i < n100; i++ {
		fmt.Fprintf(&dirs, "    - dir: /wt/bench/d%d/\n      recursive: true\n", i)
	}
	file10k.WriteString(dirs.String())
	varied += dirs.String()
	// A directory rule at every depth of the target's path, and one elsewhere named like the
	// target's directory: BPF-LSM can then not tell from the names of the file and its
	// ancestors that no rule applies, and resolves the path (docs/bpflsm.md, "Names before
	// paths"). Setup makes these directories: their inodes are keyed too, and looked up among
	// the file's ancestors' (dir_walk), as a real policy's directories are.
	deep := file10k.String()
	for _, d := range DeepDirs {
		deep += fmt.Sprintf("    - dir: %s/\n      recursive: true\n", d)
	}
	// A directory rule on a mount point (MountDir, a tmpfs as a pod's service account token
	// is): its inode key is the mounted root's, named "/", which BPF-LSM's names filter then
	// holds; the target, in the root mount, is still decided by its names.
	mnt := file10k.String() + "    - dir: " + MountDir + "/\n      recursive: true\n"
	// Process rules beside the executed binary, so that its directory's depth is looked up.
	proc10k.WriteString("  process:\n    matchPaths:\n")
	for i := 0; i < n10k; i++ {
		fmt.Fprintf(&proc10k, "    - path: /wt/bench/exec/prog%d\n", i)
	}
	// Distinct network rules: protocols are few, so they differ by source.
	net100.WriteString("  network:\n    matchProtocols:\n")
	for i := 0; i < n100; i++ {
		fmt.Fprintf(&net100, "    - protocol: raw\n      fromSource:\n      - path: /wt/bench/src%d\n", i)
	}
	capRule := "  capabilities:\n    matchCapabilities:\n    - capability: net_raw\n"
	files := thousands(n9900 + n100)
	return []Variant{
		{"capability rules only", "caponly", capRule},
		{"file rules only", "fileonly", "  file:\n    matchPaths:\n    - path: /wt/bench/other.txt\n"},
		{"1 rule", "file1", "  file:\n    matchPaths:\n    - path: /wt/bench/a/b/c/d/e/other.txt\n"},
		{OneOfEach, "file1dir", "  file:\n    matchPaths:\n    - path: /wt/bench/a/b/c/d/e/other.txt\n" +
			"    matchDirectories:\n    - dir: /wt/bench/d0/\n      recursive: true\n"},
		{files + " rules", "file10k", file10k.String()},
		{files + " rules, the exact paths' names varied", "file10kvaried", varied},
		{files + " rules + a directory rule on a mount point (a tmpfs)", "file10kmnt", mnt},
		{files + " rules + a directory rule at every depth, one named like the file's directory", "file10kdeep", deep},
		{"1 rule", "proc1", "  process:\n    matchPaths:\n    - path: /wt/bench/exec/other\n"},
		{thousands(n10k) + " rules", "proc10k", proc10k.String()},
		{thousands(n100) + " rules (Block raw, each from its own source)", "net100", net100.String()},
		{"1 rule (Block net_raw)", "cap1", capRule},
	}
}

// RulePaths are the exact paths of the variants' file and process rules (not their sources),
// which Setup makes: read from the compiled rules, as the backends read them.
func RulePaths() ([]string, error) {
	seen := map[string]bool{}
	var paths []string
	for _, v := range Variants() {
		set, err := v.Set(workload.Workload{Kind: workload.KindContainer})
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", v.Name, err)
		}
		for _, r := range set.Rules {
			exact := r.Match == policy.MatchPath && (r.Operation == policy.OpFile || r.Operation == policy.OpProcess)
			if exact && !seen[r.Value] {
				seen[r.Value] = true
				paths = append(paths, r.Value)
			}
		}
	}
	return paths, nil
}

// VariedNames are n distinct file names of 2 to 16 letters, digits, '-' and '_', most with one
// of twenty common extensions, drawn from a fixed seed: what a rule set written from a real
// file system's files names, where names differ in their length, first and last byte.
func VariedNames(n int) []string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789-_"
	exts := []string{"", ".conf", ".json", ".so", ".py", ".txt", ".key", ".pem", ".sh", ".yaml", ".log", ".db", ".h",
		".c", ".go", ".js", ".xml", ".ini", ".crt", ".cfg"}
	rng := rand.New(rand.NewPCG(16, 10000))
	seen := map[string]bool{"f.txt": true, "g.txt": true, "other.txt": true}
	names := make([]string, 0, n)
	for len(names) < n {
		b := make([]byte, 2+rng.IntN(15))
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		name := string(b) + exts[rng.IntN(len(exts))]
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Groups are the report's accesses, in the report's order.
func Groups() []Group {
	open := []string{"caponly", "file1", "file1dir", "file10k", "file10kvaried", "file10kmnt", "file10kdeep"}
	// 5,000 opens a round, about 60 ms of guest time. Every close frees its file through RCU,
	// and the RCU softirq frees them in batches: with 500 a round (6 ms), a round held about 30
	// of its runs or about 60 (counted from /proc/softirqs), consecutive rounds alternated by
	// 1.5-3 % with them, and the fastest of five moved by up to 2.5 % between boots. The cost
	// of an open also falls for about 20,000 opens after a pause, and 500 a round measured that
	// fall: the ratios it gave were up to 0.02 lower than the steady state's (docs/performance.md).
	return []Group{
		{"open+close, cached", "open-cached", Open, Cached, 5000, open},
		// A file with two names is never cached per inode by BPF-LSM: every open of it
		// resolves, hashes and looks up its path, as the first open of any file does.
		{"open+close, first open", "open-first", Open, Uncached, 5000, open},
		{"execve (static binary)", "exec", Exec, ExecBin, 10, []string{"caponly", "proc1", "proc10k"}},
		{"send+recv, connected TCP, a byte each way", "sendrecv", SendRecv, "", 500, []string{"caponly", "net100"}},
		{"capable() (vhangup)", "capable", Capable, "", 5000, []string{"fileonly", "cap1"}},
	}
}

// Set compiles the variant's policy (a KubeArmorPolicy, action Block) for w, a container
// workload: Set puts it in the policy's namespace and gives it the selected label.
func (v Variant) Set(w workload.Workload) (*rules.Set, error) {
	doc := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: bench-" + v.Name + ", namespace: bench}\n" +
		"spec:\n  selector: {matchLabels: {bench: \"" + v.Name + "\"}}\n" + v.Spec + "  action: Block\n"
	ps, _, err := policy.Parse("bench-"+v.Name+".yaml", []byte(doc))
	if err != nil {
		return nil, err
	}
	w.Namespace, w.Labels = "bench", map[string]string{"bench": v.Name}
	return rules.Compile(ps, w, rules.DefaultPostures())
}

// MountDir is where Setup mounts a tmpfs, the directory of a variant's rule on a mount point.
const MountDir = "/wt/bench/mnt"

// DeepDirs are the directories of the deepest variant's rules, which Setup makes: one beside
// each ancestor of the target, and one elsewhere named like the target's directory.
var DeepDirs = []string{"/zz", "/wt/zz", "/wt/bench/zz", "/wt/bench/a/zz", "/wt/bench/a/b/zz",
	"/wt/bench/a/b/c/zz", "/wt/bench/a/b/c/d/zz", "/wt/zz/e"}

// Setup makes the files the accesses use and DeepDirs, mounts a tmpfs on MountDir and copies
// self to HelperAt.
func Setup(self string) error {
	if err := mountTmpfs(MountDir); err != nil {
		return err
	}
	for _, d := range DeepDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, p := range []string{Cached, Uncached} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			return err
		}
	}
	if err := os.Link(Uncached, "/wt/bench/g-link"); err != nil && !os.IsExist(err) {
		return err
	}
	// The files and programs the rules name exist, as a real policy's do: BPF-LSM then keys
	// their inodes too (a hard link or a rename keeps its rule), and tests the inode of a file
	// it decides by names against those keys.
	paths, err := RulePaths()
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(ExecBin), 0o755); err != nil {
		return err
	}
	for src, dst := range map[string]string{"/bin/busybox": ExecBin, self: HelperAt} {
		if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("cp %s %s: %w: %s", src, dst, err, out)
		}
		if err := os.Chmod(dst, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// mountTmpfs mounts a tmpfs on dir once: a file it makes there says the tmpfs is in place.
func mountTmpfs(dir string) error {
	marker := filepath.Join(dir, ".tmpfs")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	return os.WriteFile(marker, nil, 0o644)
}
