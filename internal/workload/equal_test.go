package workload

import (
	"reflect"
	"testing"
)

// TestEqualSeesEveryField changes each field of a workload in turn, through reflection so that a
// field added to Workload is covered without editing this test, and wants Equal to see it.
func TestEqualSeesEveryField(t *testing.T) {
	base := func() Workload {
		return Workload{Kind: KindContainer, Hostname: "n1", Namespace: "ns", Pod: "p", Container: "c",
			PodUID: "u", ContainerID: "id", Image: "img", Labels: map[string]string{"app": "a"}, Mode: ModeDisabled,
			AppArmorProfile: "ward-x", Owner: &Owner{Kind: "Deployment", Name: "d", Namespace: "ns"},
			CgroupID: 7, PidNS: 8, MntNS: 9}
	}
	a, b := base(), base()
	if !a.Equal(&b) {
		t.Fatal("two workloads built alike are not Equal")
	}
	typ := reflect.TypeOf(a)
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		b := base()
		v := reflect.ValueOf(&b).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.String:
			v.SetString(v.String() + "-other")
		case reflect.Uint32, reflect.Uint64:
			v.SetUint(v.Uint() + 1)
		case reflect.Map:
			v.SetMapIndex(reflect.ValueOf("app"), reflect.ValueOf("other"))
		case reflect.Pointer:
			o := *b.Owner
			o.Name = "other"
			v.Set(reflect.ValueOf(&o))
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, f.Type.Kind())
		}
		if a.Equal(&b) || b.Equal(&a) {
			t.Errorf("workloads that differ in %s are Equal", f.Name)
		}
	}
	b = base()
	b.Owner = nil
	if a.Equal(&b) || b.Equal(&a) {
		t.Error("a workload without an owner is Equal to one with an owner")
	}
	a.Owner, a.Labels, b.Labels = nil, nil, map[string]string{}
	if !a.Equal(&b) {
		t.Error("no labels and empty labels are not Equal")
	}
}
