package monitor

// The monitor's BPF program. clang-14 is Debian 12's; the libbpf headers come
// from /usr/include/bpf (libbpf-dev), vmlinux.h from the shared include
// directory (see its update.sh). `make generate-monitor` runs this; the
// generated .go and .o files are committed so building needs no clang.
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target amd64 -type event monitor bpf/monitor.c -- -I../enforcer/bpflsm/bpf/include -Wall -Werror
