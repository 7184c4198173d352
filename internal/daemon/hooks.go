package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wardsec/ward/internal/rules"
	"github.com/wardsec/ward/internal/workload"
	"github.com/wardsec/ward/internal/workload/hookapi"
	"github.com/wardsec/ward/internal/workload/nri"
)

// hookWait bounds how long a hook request waits for its reconcile. The hook has its own,
// shorter, time-out; this one only keeps a wedged backend from piling up goroutines.
const hookWait = 2 * time.Minute

// startHooks restores the containers registered before a restart and serves the OCI hook
// socket <state>/ward.sock. A daemon that cannot listen still enforces on the host and the
// containers it knows; hooks configured to fail closed then keep new containers from starting
// rather than let them run unprotected, so this is reported and not fatal.
func (d *Daemon) startHooks(ctx context.Context, wg *sync.WaitGroup) {
	for _, w := range d.hookRecords().Restore(d.log) {
		d.reg.Upsert(w)
	}
	path := filepath.Join(d.cfg.State, hookapi.SocketName)
	// A socket file left by a daemon that did not stop cleanly refuses the bind.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Error("oci hook socket", "path", path, "error", err)
	}
	l, err := net.Listen("unix", path)
	if err == nil {
		// The state directory is 0700 already; the mode says the same on the file itself.
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		d.log.Error("oci hook socket: containers cannot register", "path", path, "error", err)
		d.message("Error", "oci hook socket: "+err.Error())
		if l != nil {
			l.Close()
		}
		return
	}
	d.log.Info("oci hook socket listening", "path", path)
	wg.Add(1)
	go func() {
		defer wg.Done()
		hookapi.Serve(ctx, l, d.handleHook, d.log)
		os.Remove(path)
	}()
}

// startNRI runs Ward's NRI plugin (internal/workload/nri), which registers containers through
// the same handler as the OCI hook's socket. It needs no runtime configuration: containerd 2.x and
// CRI-O listen on their NRI socket by default. With "auto" the plugin waits for the default
// socket to appear, so a node without NRI only logs it once.
func (d *Daemon) startNRI(ctx context.Context, wg *sync.WaitGroup) {
	if d.cfg.NRI == "off" {
		return
	}
	sock := d.cfg.NRI
	if sock == "auto" {
		sock = nri.DefaultSocket
	}
	p, err := nri.New(nri.Options{Socket: sock, Handler: d.handleHook, Hostname: d.cfg.Host,
		Retry: nriRetry, Logger: d.log})
	if err != nil {
		d.log.Error("nri plugin", "error", err)
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Run(ctx)
	}()
}

// nriRetry is how often the NRI plugin tries to reach a runtime that is not (or no longer) there.
const nriRetry = 2 * time.Second

// hookRecords are the containers the hook registered, kept under <state>/containers.
func (d *Daemon) hookRecords() workload.Records {
	return workload.Records{Dir: filepath.Join(d.cfg.State, "containers")}
}

func (d *Daemon) handleHook(ctx context.Context, req hookapi.Request) hookapi.Response {
	ctx, cancel := context.WithTimeout(ctx, hookWait)
	defer cancel()
	switch req.Op {
	case hookapi.OpRegister:
		return d.hookRegister(ctx, req)
	case hookapi.OpPrepare:
		return d.hookPrepare(ctx, req)
	case hookapi.OpUnregister:
		return d.hookUnregister(ctx, req.ID)
	}
	return hookapi.Response{Error: fmt.Sprintf("unknown op %q; allowed: %s, %s, %s", req.Op, hookapi.OpRegister, hookapi.OpPrepare, hookapi.OpUnregister)}
}

func (d *Daemon) hookRegister(ctx context.Context, req hookapi.Request) hookapi.Response {
	w := req.Workload
	switch {
	case w.Kind != workload.KindContainer:
		return hookapi.Response{Error: fmt.Sprintf("workload kind %q: only containers register through the hook", w.Kind)}
	case w.CgroupID == 0:
		// Enforcement is keyed on the cgroup: without it the container would run unprotected.
		return hookapi.Response{Error: fmt.Sprintf("container %s: no cgroup id", w.ContainerID)}
	}
	recs := d.hookRecords()
	if _, err := recs.File(w.ContainerID); err != nil {
		return hookapi.Response{Error: err.Error()}
	}
	w.Hostname = d.cfg.Host
	if err := recs.Save(w, req.Pid); err != nil {
		// Enforcement works without the record; only a restart would forget the container.
		d.log.Warn("record hook container", "container", w.ContainerID, "error", err)
	}
	d.log.Info("container registered by oci hook", "container", w.ContainerID, "name", w.Container,
		"namespace", w.Namespace, "cgroup_id", w.CgroupID, "pidns", w.PidNS, "mntns", w.MntNS)
	d.reg.Upsert(w)
	// Acknowledge only once a reconcile has applied a set built from this very registration:
	// the runtime starts the container's first instruction as soon as the hook exits.
	var set *rules.Set
	err := d.waitInForce(ctx, func(inForce func(string) *rules.Set) bool {
		set = inForce(w.ID())
		return set != nil && set.Workload.CgroupID == w.CgroupID && set.Workload.PidNS == w.PidNS && set.Workload.MntNS == w.MntNS
	})
	if err != nil {
		return hookapi.Response{Error: fmt.Sprintf("container %s: rules not applied: %v", w.ContainerID, err)}
	}
	return hookapi.Response{OK: true, Policies: set.Policies, Rules: len(set.Rules)}
}

// hookPrepare registers a container before the runtime creates it (NRI's CreateContainer): no
// kernel identity and no record (no process to check after a restart), and an answer once a set
// built from this registration is applied, so that the AppArmor profile the runtime is about to
// attach is loaded.
func (d *Daemon) hookPrepare(ctx context.Context, req hookapi.Request) hookapi.Response {
	w := req.Workload
	switch {
	case w.Kind != workload.KindContainer:
		return hookapi.Response{Error: fmt.Sprintf("workload kind %q: only containers register through the hook", w.Kind)}
	case w.CgroupID != 0 || w.PidNS != 0 || w.MntNS != 0:
		return hookapi.Response{Error: fmt.Sprintf("container %s: prepare carries no kernel identity; use register", w.ContainerID)}
	}
	if _, err := d.hookRecords().File(w.ContainerID); err != nil {
		return hookapi.Response{Error: err.Error()}
	}
	w.Hostname = d.cfg.Host
	d.log.Info("container prepared by nri", "container", w.ContainerID, "name", w.Container,
		"namespace", w.Namespace, "pod", w.Pod, "apparmor_profile", w.AppArmorProfile)
	d.reg.Upsert(w)
	var set *rules.Set
	err := d.waitInForce(ctx, func(inForce func(string) *rules.Set) bool {
		set = inForce(w.ID())
		return set != nil && set.Workload.AppArmorProfile == w.AppArmorProfile
	})
	if err != nil {
		return hookapi.Response{Error: fmt.Sprintf("container %s: rules not applied: %v", w.ContainerID, err)}
	}
	return hookapi.Response{OK: true, Policies: set.Policies, Rules: len(set.Rules)}
}

func (d *Daemon) hookUnregister(ctx context.Context, id string) hookapi.Response {
	recs := d.hookRecords()
	if _, err := recs.File(id); err != nil {
		return hookapi.Response{Error: err.Error()}
	}
	if err := recs.Remove(id); err != nil {
		d.log.Warn("remove hook container record", "container", id, "error", err)
	}
	d.log.Info("container unregistered by oci hook", "container", id)
	d.reg.Remove(id)
	if err := d.waitInForce(ctx, func(inForce func(string) *rules.Set) bool { return inForce(id) == nil }); err != nil {
		return hookapi.Response{Error: fmt.Sprintf("container %s: rules not removed: %v", id, err)}
	}
	return hookapi.Response{OK: true}
}
