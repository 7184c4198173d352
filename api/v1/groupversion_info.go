package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is the group and version of every kind here.
var SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// SchemeBuilder registers the kinds with a runtime.Scheme. It is apimachinery's builder rather than
// controller-runtime's so that this package, which internal/policy imports, pulls in no client.
var (
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	AddToScheme   = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&KubeArmorPolicy{}, &KubeArmorPolicyList{},
		&KubeArmorClusterPolicy{}, &KubeArmorClusterPolicyList{},
		&KubeArmorHostPolicy{}, &KubeArmorHostPolicyList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
