package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// Records keeps the containers registered by the OCI hook, one JSON file each under Dir
// (<state>/containers), so that a restarted daemon enforces on running containers at its first
// reconcile instead of forgetting them until they restart: the persisted-registrations source.
type Records struct {
	Dir string
	// Proc and Cgroup are where Restore reads a recorded process's identity ("/proc" and
	// "/sys/fs/cgroup" when empty).
	Proc, Cgroup string
}

// record is one container's file.
type record struct {
	Workload Workload `json:"workload"`
	Pid      int      `json:"pid"`
}

// File names a container's record. Ids are runtime-chosen, so they must not escape the
// directory.
func (r Records) File(id string) (string, error) {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return "", fmt.Errorf("container id %q: not usable as a file name", id)
	}
	return filepath.Join(r.Dir, id+".json"), nil
}

// Save records a container and the pid of its init process.
func (r Records) Save(w Workload, pid int) error {
	file, err := r.File(w.ContainerID)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(record{Workload: w, Pid: pid}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(file, append(b, '\n'), 0o600)
}

// Remove forgets a container; an unknown one is not an error.
func (r Records) Remove(id string) error {
	file, err := r.File(id)
	if err != nil {
		return err
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Restore returns the recorded containers whose init process still runs in the same cgroup. A
// record whose process is gone, or whose pid now belongs to another cgroup (pids are reused),
// is deleted: its poststop came while the daemon was down.
func (r Records) Restore(log *slog.Logger) []Workload {
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("restore hook containers", "error", err)
		}
		return nil
	}
	proc, cgroup := r.Proc, r.Cgroup
	if proc == "" {
		proc = "/proc"
	}
	if cgroup == "" {
		cgroup = "/sys/fs/cgroup"
	}
	var out []Workload
	for _, e := range entries {
		file := filepath.Join(r.Dir, e.Name())
		var rec record
		b, err := os.ReadFile(file)
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			log.Warn("restore hook container", "file", file, "error", err)
			continue
		}
		id, err := ReadKernelIdentity(proc, cgroup, rec.Pid)
		if err != nil || id.CgroupID != rec.Workload.CgroupID {
			log.Info("hook container gone while the daemon was down", "container", rec.Workload.ContainerID)
			os.Remove(file)
			continue
		}
		log.Info("hook container restored", "container", rec.Workload.ContainerID, "cgroup_id", id.CgroupID)
		out = append(out, rec.Workload)
	}
	return out
}
