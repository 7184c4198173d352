package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload/attach"
	"github.com/wardsec/ward/internal/workload/kube"
)

// kubeSyncWait bounds how long the first reconcile waits for the informers' caches: long enough
// that a healthy API server's whole state goes into the first rule sets, short enough that an
// unreachable one does not keep the node's local policies out of the kernel.
var kubeSyncWait = 30 * time.Second

// startKube connects to the API server and starts the informers of Kubernetes mode. Policies,
// pods, namespaces and this node's labels then reach the reconcile loop through the registry and
// d.enqueue. It returns once the caches are filled or kubeSyncWait has passed.
func (d *Daemon) startKube(ctx context.Context, wg *sync.WaitGroup) error {
	rc, err := kube.RESTConfig(d.cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes mode: %w", err)
	}
	k, err := kube.NewSource(rc, d.cfg.Host, d.reg, d.enqueue, d.log)
	if err != nil {
		return fmt.Errorf("kubernetes mode: %w", err)
	}
	k.PolicyStatus = func(p *policy.Policy, old string) string {
		// What the support table says of the policy, and what the backend reported of the
		// workloads it covers (a pod that runs without Ward's AppArmor profile).
		return statusWith(old, d.sel.Selected, append(enforcer.Check(d.sel.Selected, p), d.unenforcedOf(p.Key())...))
	}
	d.kube = k
	// Until the informers have synced, the cluster's policies and namespace postures are the
	// ones last seen: a restart while the API server is slow or down keeps the pods' rules.
	written, err := k.LoadSnapshot(d.kubeSnapshotPath())
	switch {
	case err != nil:
		d.log.Error("kubernetes mode: cannot read the snapshot of the cluster's policies; until the API server answers only local policies apply",
			"path", d.kubeSnapshotPath(), "error", err)
	case !written.IsZero():
		d.log.Info("kubernetes mode: cluster policies as last seen, until the API server's lists arrive",
			"policies", len(k.Policies()), "written", written.Format(time.RFC3339))
	}
	synced := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := k.Run(ctx, func() { close(synced) }); err != nil {
			d.log.Error("kubernetes mode", "error", err)
		}
	}()
	if d.cfg.Webhook != "" {
		if err := d.startWebhook(ctx, wg, rc); err != nil {
			return err
		}
	}
	select {
	case <-synced:
		d.log.Info("kubernetes mode: informer caches synced", "node", d.cfg.Host)
	case <-time.After(kubeSyncWait):
		d.log.Warn("kubernetes mode: informer caches not synced yet; enforcing local policies and the cluster's as last seen meanwhile",
			"waited", kubeSyncWait.String(), "cluster_policies", len(k.Policies()))
	case <-ctx.Done():
	}
	return nil
}

// kubeSnapshotPath is where the daemon keeps the cluster's policies as last seen.
func (d *Daemon) kubeSnapshotPath() string { return filepath.Join(d.cfg.State, kube.SnapshotFile) }

// saveKubeSnapshot records the cluster's policies after a round, once the informers have synced
// and when they changed.
func (d *Daemon) saveKubeSnapshot() {
	if d.kube == nil {
		return
	}
	if err := d.kube.SaveSnapshot(d.kubeSnapshotPath()); err != nil {
		d.log.Warn("kubernetes mode: cannot write the snapshot of the cluster's policies; a restart without the API server would not keep them",
			"path", d.kubeSnapshotPath(), "error", err)
	}
}

// serviceAccountNamespace is where a pod's service account token names the pod's namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// defaultNamespace is deploy/'s namespace, used for the webhook's Secret when Ward runs outside
// a pod (with a kubeconfig).
const defaultNamespace = "kubearmor"

// startWebhook serves the admission webhook that gives new pods Ward's AppArmor profiles. Every
// node's daemon serves it; it changes pods only while this node's enforcer is AppArmor
// (docs/kubernetes.md, "AppArmor nodes").
func (d *Daemon) startWebhook(ctx context.Context, wg *sync.WaitGroup, rc *rest.Config) error {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("admission webhook: %w", err)
	}
	ns := defaultNamespace
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
		ns = strings.TrimSpace(string(b))
	}
	h := &attach.Handler{
		Options: attach.Options{Untracked: d.untrackedNamespaces()},
		Enabled: func() bool { return d.sel.Selected == enforcer.AppArmor },
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := attach.Serve(ctx, attach.ServeOptions{Addr: d.cfg.Webhook, Client: client, Namespace: ns, Handler: h, Log: d.log})
		if err != nil && ctx.Err() == nil {
			d.log.Error("admission webhook stopped: new pods do not get Ward's AppArmor profiles", "error", err)
			d.message("Warning", "admission webhook stopped: "+err.Error())
		}
	}()
	return nil
}
