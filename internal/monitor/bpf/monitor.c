// SPDX-License-Identifier: GPL-2.0
// Ward's system monitor: syscall tracepoints that report process, file and
// network activity (with each call's result) to user space through a ring
// buffer. It observes; it never changes an outcome.
//
// One program handles every sys_enter_* tracepoint and one every sys_exit_*
// tracepoint (they share the context layout), so the object stays small and
// loads fast whatever the number of traced syscalls; user space attaches them
// only to the syscalls it wants, and an untraced syscall never runs BPF code.
// Enter saves the arguments per thread; exit reads the user strings (the
// kernel has faulted them in by then, so the read rarely fails), the socket
// behind a descriptor and the result, and emits one record. A successful
// execve replaces the memory that held its arguments, so it is reported from
// sched_process_exec, which carries the kernel's copy of the file name.
//go:build ignore

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define PATH_MAX 4096
#define NAME_MAX 255
#define S_IFMT 00170000
#define S_IFSOCK 0140000

// x86_64 syscall numbers whose arguments the exit program interprets.
#define NR_open 2
#define NR_socket 41
#define NR_connect 42
#define NR_accept 43
#define NR_bind 49
#define NR_execve 59
#define NR_rename 82
#define NR_fchmod 91
#define NR_fchown 93
#define NR_creat 85
#define NR_openat 257
#define NR_renameat 264
#define NR_accept4 288
#define NR_renameat2 316
#define NR_execveat 322
#define NR_openat2 437
#define NR_MAX 512

// Wake the reader only once this much data is waiting; 0 wakes it for every
// record. Set by the loader. A wakeup per record costs the traced process more
// than the record itself (the reader then sleeps at once and must be woken
// again); user space also reads on a timer, which bounds the delay of a few
// records that stay below the threshold.
volatile const __u64 wakeup_bytes;

// Event flags.
#define F_OWNER 1 // owner holds the opened file's uid
#define F_TTY 2 // the process has a controlling terminal
#define F_SOCK 4 // sock_* describe the socket behind the descriptor
#define F_PATH_FAULT 8 // a path argument could not be read
#define F_EXEC 16 // reported from sched_process_exec (a successful exec)
#define F_NAME 32 // dir_* and the name after the paths: the dentry the call reached

struct event {
	__u64 cgroup_id;
	__s64 ret;
	__u64 args[6];
	__u64 aux; // openat2: open_how.flags
	__u64 exe_ino; // the executable of the process when the record was made
	__u64 src_ino; // exec: the executable that called exec
	__u64 dir_ino; // F_NAME: the inode of the directory the opened file's dentry is in
	__u32 exe_dev; // kernel encoding (major << 20 | minor)
	__u32 src_dev;
	__u32 dir_dev; // F_NAME: that directory's device, kernel encoding
	__u32 pid; // thread id
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 fsuid;
	__u32 owner;
	__s32 nr;
	__u16 path_len; // bytes of the first path in data, NUL included
	__u16 path2_len;
	__u16 name_len; // F_NAME: bytes of the dentry name after the paths, NUL included
	__u16 sock_family;
	__u16 sock_type;
	__u16 sock_protocol;
	__u8 flags;
	__u8 addr_len;
	__u8 addr[28]; // sockaddr of connect, bind, accept
	char comm[16];
};

// Keeps struct event in the object's BTF so bpf2go -type can emit it.
const struct event *unused_event __attribute__((unused));

struct record {
	struct event e;
	char data[2 * PATH_MAX];
};

// Arguments saved at enter, per thread.
struct inflight {
	__s64 nr;
	__u64 args[6];
	__u64 src_ino;
	__u32 src_dev;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); // resized by the loader
} events SEC(".maps");

// The call in flight, per thread. Task storage is found through the task
// itself (no hashing, no lock) and freed with the task, so a thread killed
// during a call leaves nothing behind. nr < 0 marks it empty.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

// Which syscalls to report, by number, filled by the loader. The programs are
// attached only to these calls' tracepoints already; the check also keeps a
// call user space cannot decode from ever being saved.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} enabled SEC(".maps");

// Processes (tgid) whose calls are not reported, such as the daemon itself.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} ignored SEC(".maps");

// Records the ring buffer had no room for.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// Where a record is built: too large for the stack.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record);
} scratch SEC(".maps");

static __always_inline int is_exec(__s64 nr)
{
	return nr == NR_execve || nr == NR_execveat;
}

// Task fields are read through the BTF task pointer: the verifier turns these
// loads into fault-handled direct loads, much cheaper than one
// bpf_probe_read_kernel call per pointer as BPF_CORE_READ makes. A NULL on
// the way (a kernel thread has no mm) reads as 0.
static __always_inline void exe_id(struct task_struct *t, __u64 *ino, __u32 *dev)
{
	struct mm_struct *mm = t->mm;
	if (!mm)
		return;
	struct file *exe = mm->exe_file;
	if (!exe)
		return;
	struct inode *inode = exe->f_inode;
	*ino = inode->i_ino;
	*dev = inode->i_sb->s_dev;
}

SEC("tracepoint/syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 nr = (__u32)(int)ctx->id;
	if (nr >= NR_MAX)
		return 0;
	__u8 *on = bpf_map_lookup_elem(&enabled, &nr);
	if (!on || !*on)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (bpf_map_lookup_elem(&ignored, &tgid))
		return 0;

	struct task_struct *t = bpf_get_current_task_btf();
	struct inflight *in = bpf_task_storage_get(&inflight, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in)
		return 0;
	in->nr = nr;
	// One helper read: field by field loads let clang derive pointers from ctx,
	// which the verifier refuses.
	bpf_probe_read_kernel(in->args, sizeof(in->args), ctx->args);
	// After a successful exec the caller's executable is gone from the task.
	in->src_ino = 0;
	in->src_dev = 0;
	if (is_exec(nr))
		exe_id(t, &in->src_ino, &in->src_dev);
	return 0;
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || fd >= max)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

// The dentry a call reached through f: its directory's inode in the event, and
// its name's address, which put_name copies after the paths. When that is the
// named directory's entry of the named name, the call followed no symbolic link
// there, and user space need not look (an lstat per event).
static __always_inline const unsigned char *dentry_of(struct event *e, struct file *f)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct dentry *dir = BPF_CORE_READ(d, d_parent);
	e->dir_ino = BPF_CORE_READ(dir, d_inode, i_ino);
	e->dir_dev = BPF_CORE_READ(dir, d_sb, s_dev);
	return BPF_CORE_READ(d, d_name.name);
}

static __always_inline void put_name(struct record *r, __u32 off, const unsigned char *name)
{
	if (!name || !r->e.dir_ino || off > PATH_MAX)
		return;
	long n = bpf_probe_read_kernel_str(&r->data[off], NAME_MAX + 1, name);
	if (n > 0 && n <= NAME_MAX + 1) {
		r->e.name_len = n;
		r->e.flags |= F_NAME;
	}
}

static __always_inline void sock_of(struct event *e, struct file *f)
{
	if (!f)
		return;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	e->sock_family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sock_type = BPF_CORE_READ(sk, sk_type);
	e->sock_protocol = BPF_CORE_READ(sk, sk_protocol);
	e->flags |= F_SOCK;
}

static __always_inline void fill(struct event *e, struct task_struct *t, __u64 id)
{
	e->pid = (__u32)id;
	e->tgid = id >> 32;
	e->ppid = t->real_parent->tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->fsuid = t->cred->fsuid.val;
	e->cgroup_id = bpf_get_current_cgroup_id();
	if (t->signal->tty)
		e->flags |= F_TTY;
	exe_id(t, &e->exe_ino, &e->exe_dev);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

// Reads a user string into r->data at off and returns the bytes used.
static __always_inline __u32 read_path(struct record *r, __u32 off, __u64 ptr)
{
	if (off > PATH_MAX)
		return 0;
	long n = bpf_probe_read_user_str(&r->data[off], PATH_MAX, (const void *)ptr);
	if (n < 0) {
		r->e.flags |= F_PATH_FAULT;
		return 0;
	}
	if (n > PATH_MAX)
		n = PATH_MAX;
	return n;
}

static __always_inline void output(void *ctx, struct record *r)
{
	__u64 size = sizeof(r->e) + r->e.path_len + r->e.path2_len + r->e.name_len;
	if (size > sizeof(*r))
		size = sizeof(*r);
	// Wake the reader when this record makes the waiting data cross the
	// threshold, not for every record above it: a reader that falls behind
	// is already awake, and forced wakeups would then cost every record.
	__u64 flags = 0;
	if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = avail < wakeup_bytes && avail + size >= wakeup_bytes ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, r, size, flags) < 0) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
	}
}

static __always_inline struct record *start(struct inflight *in, __s64 nr, __u64 id)
{
	__u32 zero = 0;
	struct record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return NULL;
	__builtin_memset(&r->e, 0, sizeof(r->e));
	fill(&r->e, bpf_get_current_task_btf(), id);
	r->e.nr = nr;
#pragma unroll
	for (int i = 0; i < 6; i++)
		r->e.args[i] = in->args[i];
	r->e.src_ino = in->src_ino;
	r->e.src_dev = in->src_dev;
	return r;
}

SEC("tracepoint/syscalls/sys_exit")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct inflight *in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!in || in->nr < 0)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	long ret = ctx->ret;
	__s64 nr = in->nr;
	in->nr = -1;
	// A successful exec was reported by sched_process_exec; its arguments
	// lived in the memory the exec replaced.
	if (is_exec(nr) && ret == 0)
		return 0;
	struct record *r = start(in, nr, id);
	if (!r)
		return 0;
	struct event *e = &r->e;
	e->ret = ret;

	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 addr = 0, addrlen = 0;
	const unsigned char *name = NULL;
	switch (nr) {
	case NR_socket:
		if (ret >= 0)
			sock_of(e, fd_file(t, ret));
		break;
	case NR_connect:
	case NR_bind:
		sock_of(e, fd_file(t, e->args[0]));
		addr = e->args[1];
		addrlen = e->args[2];
		break;
	case NR_accept:
	case NR_accept4:
		sock_of(e, fd_file(t, ret >= 0 ? ret : (long)e->args[0]));
		if (ret >= 0 && e->args[1] && e->args[2]) {
			__u32 l = 0;
			bpf_probe_read_user(&l, sizeof(l), (const void *)e->args[2]);
			addr = e->args[1];
			addrlen = l;
		}
		break;
	case NR_fchmod:
	case NR_fchown: {
		// The file changed through the descriptor: its owner, which user
		// space would otherwise look up by the descriptor's path.
		struct file *f = fd_file(t, (int)e->args[0]);
		if (f) {
			e->owner = BPF_CORE_READ(f, f_inode, i_uid.val);
			e->flags |= F_OWNER;
		}
		break;
	}
	case NR_open:
	case NR_creat:
	case NR_openat:
	case NR_openat2:
		if (ret >= 0) {
			struct file *f = fd_file(t, ret);
			if (f) {
				e->owner = BPF_CORE_READ(f, f_inode, i_uid.val);
				e->flags |= F_OWNER;
				name = dentry_of(e, f);
			}
		}
		if (nr == NR_openat2) {
			__u64 flags = 0;
			if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)e->args[2]) == 0)
				e->aux = flags;
		}
		break;
	}
	if (addr) {
		if (addrlen > sizeof(e->addr))
			addrlen = sizeof(e->addr);
		if (bpf_probe_read_user(e->addr, addrlen & 31, (const void *)addr) == 0)
			e->addr_len = addrlen;
	}

	// Which arguments are paths: the dirfd-taking variants put the path
	// second; renames carry two. User space interprets the rest.
	int p1 = -1, p2 = -1;
	switch (nr) {
	case 2: // open
	case 59: // execve
	case 76: // truncate
	case 83: // mkdir
	case 84: // rmdir
	case 85: // creat
	case 87: // unlink
	case 90: // chmod
	case 92: // chown
	case 94: // lchown
		p1 = 0;
		break;
	case 82: // rename
		p1 = 0;
		p2 = 1;
		break;
	case 257: // openat
	case 258: // mkdirat
	case 260: // fchownat
	case 263: // unlinkat
	case 268: // fchmodat
	case 322: // execveat
	case 437: // openat2
	case 452: // fchmodat2
		p1 = 1;
		break;
	case 264: // renameat
	case 316: // renameat2
		p1 = 1;
		p2 = 3;
		break;
	}
	__u32 n1 = 0, n2 = 0;
	if ((unsigned int)p1 < 6)
		n1 = read_path(r, 0, e->args[p1]);
	if ((unsigned int)p2 < 6)
		n2 = read_path(r, n1, e->args[p2]);
	e->path_len = n1;
	e->path2_len = n2;
	put_name(r, n1 + n2, name);
	output(ctx, r);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	// A non-leader thread that calls exec takes over the leader's pid, but it
	// keeps its task, and so the arguments it saved.
	struct inflight *in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!in || !is_exec(in->nr))
		return 0;
	__s64 nr = in->nr;
	in->nr = -1;
	struct record *r = start(in, nr, bpf_get_current_pid_tgid());
	if (!r)
		return 0;
	r->e.flags |= F_EXEC;
	unsigned short off = ctx->__data_loc_filename & 0xffff;
	long n = bpf_probe_read_kernel_str(r->data, PATH_MAX, (void *)ctx + off);
	if (n < 0) {
		r->e.flags |= F_PATH_FAULT;
		n = 0;
	}
	if (n > PATH_MAX)
		n = PATH_MAX;
	r->e.path_len = n;
	// The program now mapped: the named file, or for a script its
	// interpreter. Its owner is the named file's only when its dentry is the
	// named entry, which user space checks (owner is sent without F_OWNER).
	struct file *exe = NULL;
	struct mm_struct *mm = bpf_get_current_task_btf()->mm;
	if (mm)
		exe = mm->exe_file;
	if (exe) {
		r->e.owner = exe->f_inode->i_uid.val;
		put_name(r, n, dentry_of(&r->e, exe));
	}
	output(ctx, r);
	return 0;
}
