package bpflsm

import "testing"

// TestConfigOf: ward_config marks registered containers with a flag that does not change as
// containers come and go (a count read during user space's write could be read as 0, and a
// hook would then look no container up), and gathers the operations and the host's flags.
func TestConfigOf(t *testing.T) {
	host := &applied{tr: &Translation{Flags: uint32(wfRules) << 8}}
	byKey := map[uint64]*applied{HostKey: host}
	if cfg := configOf(byKey, NameFilter{}); cfg.Containers != 0 || cfg.HostFlags != host.tr.Flags || cfg.Ops != host.tr.Flags {
		t.Fatalf("host only: %+v", cfg)
	}
	for n := uint64(1); n <= 300; n++ {
		byKey[n] = &applied{tr: &Translation{Flags: uint32(wfRules)}}
		cfg := configOf(byKey, NameFilter{3: 1})
		if cfg.Containers != 1 {
			t.Fatalf("%d containers: Containers = %d, want 1 whatever their number", n, cfg.Containers)
		}
		if cfg.HostFlags != host.tr.Flags || cfg.Ops != uint32(wfRules)|uint32(wfRules)<<8 || cfg.Names[3] != 1 {
			t.Fatalf("%d containers: %+v", n, cfg)
		}
	}
}
