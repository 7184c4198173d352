package kube

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// InCluster reports whether this process runs in a Kubernetes pod with a service account, the
// case where Kubernetes mode needs no configuration at all.
func InCluster() bool {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return false
	}
	_, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token")
	return err == nil
}

// RESTConfig returns how to reach the API server: the kubeconfig file when one is named
// (running outside the cluster), else the pod's service account.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var c *rest.Config
	var err error
	if kubeconfig != "" {
		if c, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	} else if c, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("in-cluster config (set kubeconfig outside a pod): %w", err)
	}
	if c.QPS == 0 && c.Burst == 0 {
		// client-go's default (5 requests/s, bursts of 10) would take 200 s to write the
		// statuses of 1,000 new policies; watches are long requests and barely count. The
		// kubelet's own defaults, which every node already runs, are these.
		c.QPS, c.Burst = kubeQPS, kubeBurst
	}
	return c, nil
}

// The daemon's request rate to the API server, as the kubelet's (--kube-api-qps, --kube-api-burst).
const (
	kubeQPS   = 50
	kubeBurst = 100
)
