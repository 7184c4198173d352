package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wardsec/ward/internal/workload"
)

func TestPodOwner(t *testing.T) {
	yes := true
	pod := func(labels map[string]string, refs ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Labels: labels, OwnerReferences: refs}}
	}
	ctrl := func(kind, name string) metav1.OwnerReference {
		return metav1.OwnerReference{Kind: kind, Name: name, Controller: &yes}
	}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want workload.Owner
	}{
		{"bare pod", pod(nil), workload.Owner{Kind: "Pod", Name: "p", Namespace: "shop"}},
		{"deployment's replicaset", pod(map[string]string{"pod-template-hash": "5d9c7b"}, ctrl("ReplicaSet", "web-5d9c7b")),
			workload.Owner{Kind: "Deployment", Name: "web", Namespace: "shop"}},
		{"replicaset of its own", pod(nil, ctrl("ReplicaSet", "web-rs")), workload.Owner{Kind: "ReplicaSet", Name: "web-rs", Namespace: "shop"}},
		{"daemonset", pod(nil, ctrl("DaemonSet", "agent")), workload.Owner{Kind: "DaemonSet", Name: "agent", Namespace: "shop"}},
		{"owner that is not the controller", pod(nil, metav1.OwnerReference{Kind: "ConfigMap", Name: "x"}),
			workload.Owner{Kind: "Pod", Name: "p", Namespace: "shop"}},
	} {
		if got := podOwner(c.pod); got == nil || *got != c.want {
			t.Errorf("%s: owner %+v, want %+v", c.name, got, c.want)
		}
	}
}
