package bpflsm

// clang-14 is Debian 12's; the libbpf headers come from /usr/include/bpf
// (libbpf-dev), vmlinux.h from bpf/include (see its update.sh). `make
// generate-bpflsm` runs this; the generated .go and .o files are committed so
// building needs no clang.
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target amd64 -type event -type rule_key -type rule_val -type wl_val -type glob_key -type glob_val -type config -type op -type workload_flag -type key_kind -type code_kind -type verdict -type event_flag -type src_inode_tag -type action_shift -type socket_hook -type slot_layout ward bpf/ward.c -- -I./bpf/include -Wall -Werror -O2
