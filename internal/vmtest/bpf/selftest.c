// SPDX-License-Identifier: GPL-2.0
// BPF-LSM self-test for the VM harness: on file_open, deny one inode to one
// process with -EPERM and report the denial through a ring buffer. It shows
// that the VM's kernel loads and attaches LSM programs, honours their verdict
// and delivers events, which the host kernel refuses to do.
//go:build ignore

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// bpf_d_path is offered to GPL programs only.
char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define PATH_MAX 4096

// The target, set by the loader before load (rewritten .rodata). The device
// is the kernel's encoding (major << 20 | minor), not userspace's dev_t.
volatile const __u32 target_tgid;
volatile const __u64 target_ino;
volatile const __u32 target_dev;

struct event {
	__u32 tgid;
	__u32 pid;
	__u64 ino;
	__s32 verdict;
	__s32 path_len; // bpf_d_path's result: length with the NUL, or -errno
	char path[256];
};

// Keeps struct event in the object's BTF so bpf2go -type can emit it.
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

SEC("lsm/file_open")
int BPF_PROG(selftest_file_open, struct file *file, int ret)
{
	// An earlier LSM's denial stands.
	if (ret != 0)
		return ret;

	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	struct inode *inode = file->f_inode;
	if (inode->i_ino != target_ino || inode->i_sb->s_dev != target_dev)
		return 0;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->tgid = id >> 32;
		e->pid = (__u32)id;
		e->ino = inode->i_ino;
		e->verdict = -EPERM;
		e->path_len = bpf_d_path(&file->f_path, e->path, sizeof(e->path));
		bpf_ringbuf_submit(e, 0);
	}
	return -EPERM;
}
