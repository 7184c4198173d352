package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wardsec/ward/internal/enforcer"
	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/workload/kube"
)

// kubeSyncWait bounds how long the first reconcile waits for the informers' caches: long enough
// that a healthy API server's whole state goes into the first rule sets, short enough that an
// unreachable one does not keep the node's local policies out of the kernel.
const kubeSyncWait = 30 * time.Second

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
		return statusWith(old, d.sel.Selected, enforcer.Check(d.sel.Selected, p))
	}
	d.kube = k
	synced := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := k.Run(ctx, func() { close(synced) }); err != nil {
			d.log.Error("kubernetes mode", "error", err)
		}
	}()
	select {
	case <-synced:
		d.log.Info("kubernetes mode: informer caches synced", "node", d.cfg.Host)
	case <-time.After(kubeSyncWait):
		d.log.Warn("kubernetes mode: informer caches not synced yet; enforcing local policies meanwhile", "waited", kubeSyncWait.String())
	case <-ctx.Done():
	}
	return nil
}
