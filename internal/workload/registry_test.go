package workload

import "testing"

func TestRegistry(t *testing.T) {
	changes := 0
	r := NewRegistry(func() { changes++ })
	r.Upsert(Host("n1", nil))
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "b", Namespace: "ns"})
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "a", Namespace: "ns"})
	r.Upsert(Workload{Kind: KindContainer, ContainerID: "a", Namespace: "other"}) // replaces
	got := r.List()
	if len(got) != 3 || got[0].ID() != "a" || got[1].ID() != "b" || got[2].ID() != "host" {
		t.Fatalf("List = %+v", got)
	}
	if w, ok := r.Get("a"); !ok || w.Namespace != "other" {
		t.Errorf("Get(a) = %+v %v, want the replacement", w, ok)
	}
	r.Remove("a")
	r.Remove("a") // twice: no second change
	if _, ok := r.Get("a"); ok || len(r.List()) != 2 {
		t.Errorf("a still registered")
	}
	if changes != 5 {
		t.Errorf("onChange called %d times, want 5", changes)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeEnabled, "enabled": ModeEnabled, "audited": ModeAudited, "disabled": ModeDisabled} {
		if got, ok := ParseMode(in); !ok || got != want {
			t.Errorf("ParseMode(%q) = %q %v", in, got, ok)
		}
	}
	if _, ok := ParseMode("off"); ok {
		t.Error("ParseMode(off) accepted")
	}
}
