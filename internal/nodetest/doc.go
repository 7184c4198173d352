// Package nodetest is Ward's end-to-end suite on a real Kubernetes node (docs/kubernetes.md,
// "A real node"): the control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) runs on the host, the node is a VM (tools/vmrun, boot profile "node") running
// containerd, runc and the kubelet, and Ward is installed from deploy/ with kubectl.
//
// The tests carry the build tag node and run with `make test-node`, which builds and caches the
// cluster binaries and passes them in the environment. They fail, never skip, when something is
// missing.
package nodetest
