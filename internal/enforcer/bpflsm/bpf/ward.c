// SPDX-License-Identifier: GPL-2.0
// Ward's BPF-LSM enforcer. docs/bpflsm.md explains the design; in short:
//
//  - Every hook first finds the current task's workload: the cgroup id of the
//    task in `workloads`, else of its nearest registered cgroup ancestor, else
//    the host entry (key 0). A workload without
//    rules of the hook's operation costs one or two hash lookups and nothing
//    else.
//  - Paths come from bpf_d_path into a per-CPU buffer (up to PATH_MAX, any
//    depth). One pass over the string hashes every prefix ending in '/'; each
//    such directory, the path itself, the path as a directory and the base
//    name are looked up in `rules`: O(path depth) lookups whatever the number
//    of rules.
//  - A rule entry holds, per match kind, which (action, modifier combination)
//    pairs exist there. The hook works out which modifier combinations permit
//    this access and reduces the bits to a verdict: the bits of rules limited
//    to the acting executable (fromSource) first, then the others, each
//    Block > Audit > Allow; then the allow-list posture.
//  - Rule keys carry the workload's generation: user space writes a new
//    generation, flips the workload entry in one update, then deletes the old.
//go:build ignore

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

// bpf_d_path is offered to GPL programs only.
char LICENSE[] SEC("license") = "GPL";

// The kernel's own values (not in vmlinux.h, which has no macros).
#define EPERM 1
#define ENOENT 2
#define PF_KTHREAD 0x00200000
#define DCACHE_DISCONNECTED 0x20
#define PATH_MAX 4096
#define COUNTERS 5
#define FMODE_WRITE 0x2
#define __FMODE_EXEC 0x20
#define SOCK_TYPE_MASK 0xf
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFDIR 0040000

// A compiler barrier: memory accesses are not moved across it.
#define barrier() asm volatile("" ::: "memory")

// What user space shares with this file is an enum, not a #define: bpf2go
// -type (gen.go) emits each enum into ward_x86_bpfel.go, and the loader uses
// those constants, so the two sides cannot disagree. BTF of clang-14 keeps
// only 32-bit enum values: 64-bit values are built from a kind and a shift.
// Each enum is kept in the object's BTF by an unused pointer, as the structs
// below are.

// Operations, also the index of a workload's per-operation flags byte.
enum op {
	OP_FILE = 0,
	OP_PROCESS = 1,
	OP_NETWORK = 2,
	OP_CAPABILITIES = 3,
	NUM_OPS = 4,
};

// Per-operation flags (one byte per operation in wl_val.flags).
enum workload_flag {
	WF_RULES = 0x01,         // the workload has rules of this operation
	WF_SOURCE_RULES = 0x02,  // some of them are limited by fromSource
	WF_ALLOW_GLOBAL = 0x04,  // allow-list for every source
	WF_ALLOW_SOURCES = 0x08, // allow-list for the sources in KIND_SRCALLOW keys
	WF_POSTURE_BLOCK = 0x10, // the posture is block (else audit)
	WF_BLOCK_RULES = 0x20,   // some rule of this operation blocks
	WF_INODES = 0x40,        // exact paths are also matched by inode
	WF_PATTERNS = 0x80,      // glob patterns: step the DFA in `globs`
};

// Key kinds.
enum key_kind {
	KIND_PATH = 1,     // hash of a path (exact bits) or of a directory with its '/' (dir bits)
	KIND_EXECNAME = 2, // hash of a base name
	KIND_CODE = 3,     // protocol, socket type, family or capability code
	KIND_SRCALLOW = 4, // hash 0; src names an allow-listed source
	KIND_INODE = 5,    // hash is (dev << 32 | ino) of a rule's exact path
	KIND_DIRINODE = 6, // hash is (dev << 32 | ino) of a directory rule's directory (direct, recursive bits)
	KIND_NAME = 7,     // hash of a name with its bit in wl_val.names (name_listed; no bits)
};

// The hash of a KIND_CODE key: CODE(kind, number), the kind in the top byte.
enum code_kind {
	CODE_PROTO = 1,  // a protocol number
	CODE_TYPE = 2,   // a socket type
	CODE_FAMILY = 3, // an address family
	CODE_ALL = 4,    // every socket (number 0)
	CODE_CAP = 5,    // a capability
	CODE_KIND_SHIFT = 56,
};

#define CODE(kind, n) (((__u64)(kind) << CODE_KIND_SHIFT) | (__u32)(n))

// Verdicts (event.action).
enum verdict {
	V_ALLOW = 0,
	V_AUDIT = 1,
	V_BLOCK = 2,
};

// Event flags.
enum event_flag {
	EF_WRITE = 0x01,
	EF_TTY = 0x02,
	EF_UNRESOLVED = 0x04, // the path could not be resolved: denied, fail closed
	EF_INODE = 0x08,      // decided by inode (hard link, renamed file)
	EF_POSTURE = 0x10,
	EF_AUDITED = 0x20,    // a Block turned into an alert (workload in audited mode)
	EF_NO_SOURCE = 0x40,  // the acting executable could not be resolved
	EF_DIRINODE = 0x80,   // decided by an ancestor directory's inode (bind mount, renamed ancestor)
};

// Marks a source identified by inode rather than by path hash: the tag
// 0x5a5a in the top 16 bits (SRC_INODE_TAG).
enum src_inode_tag {
	SRC_INODE_TAG_HIGH = 0x5a5a,
	SRC_INODE_TAG_SHIFT = 48,
};

#define SRC_INODE_TAG ((__u64)SRC_INODE_TAG_HIGH << SRC_INODE_TAG_SHIFT)

// Bits of a rule value: 12 modifier combinations per action.
enum action_shift {
	BLOCK_SHIFT = 0,
	AUDIT_SHIFT = 16,
	ALLOW_SHIFT = 32,
};

#define COMBO_MASK 0xfffULL

// FNV-1a 64, the path hash (user space uses hash/fnv).
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

// wl_val.names is a filter of NAME_WORDS * 64 bits (nameBit in translate.go).
#define NAME_WORDS 64

// The multiplier of name_listed's hash (translate.go's nameMul).
#define NAME_MUL 0x9E3779B97F4A7C15ULL

// Network hooks (event.hook). socket_create decides new sockets; the others
// decide every later use of a socket, so that a rule also covers sockets
// created before it, inherited across exec, or received over a unix socket:
// connect, accept, bind, listen, and sendmsg/recvmsg, through which every
// send and receive passes (write(2) and read(2) on a socket included).
enum socket_hook {
	HOOK_CREATE = 0,
	HOOK_CONNECT = 1,
	HOOK_ACCEPT = 2,
	HOOK_BIND = 3,
	HOOK_LISTEN = 4,
	HOOK_SENDMSG = 5,
	HOOK_RECVMSG = 6,
};

const enum op *unused_op __attribute__((unused));
const enum workload_flag *unused_workload_flag __attribute__((unused));
const enum key_kind *unused_key_kind __attribute__((unused));
const enum code_kind *unused_code_kind __attribute__((unused));
const enum verdict *unused_verdict __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const enum src_inode_tag *unused_src_inode_tag __attribute__((unused));
const enum action_shift *unused_action_shift __attribute__((unused));
const enum socket_hook *unused_socket_hook __attribute__((unused));

struct wl_val {
	__u32 gen;
	__u32 flags;   // 8 bits per operation
	__u32 audited; // workload in audited mode: Block becomes an alert
	// The code kinds (bit 1 << (code >> CODE_KIND_SHIFT)) with KIND_CODE keys: for
	// network in the low 16 bits, capabilities the high 16; in each, the
	// low byte for rules of any source, the high byte for fromSource rules.
	// A hook looks a code up only where some rule could be.
	__u32 codes;
	// Per operation, the depths (number of '/', bit 63 for 63 and more) at
	// which PATH keys exist: directory keys and exact keys. A hook looks a
	// prefix or the path up only at a depth where some rule could be.
	__u64 dir_depths[NUM_OPS];
	__u64 exact_depths[NUM_OPS];
	// Bit 1 << op: KIND_DIRINODE keys of op exist, so that a file's
	// ancestor directories are looked up by inode (dir_walk). Workloads
	// without directory rules never walk.
	__u32 dir_inodes;
	// ward_epoch[1] as user space read it before it looked up the rules'
	// directories (their inodes, where their symlinks lead): names below
	// holds those directories' names only while no directory of a name in
	// any workload's filter was renamed, and no mount moved, since (unnamed).
	__u32 names_epoch;
	// 1 when every name with its bit in names has a KIND_NAME key of this
	// generation (name_listed): never for a full filter.
	__u32 name_keys;
	__u32 pad;
	// A filter of NAME_WORDS * 64 bits: a bit per (length, first byte, last
	// byte) of the last component of every exact file path key and of every
	// file directory rule's directory (nameBit in translate.go, tested by
	// unnamed): a file whose name has no bit here matches no path rule by
	// its name. Every bit where that does not hold: the workload has file
	// patterns, fromSource rules, an allow-list or a rule on / (translate.go).
	__u64 names[NAME_WORDS];
	// The same for the directory rules' directories only (and the names of
	// what is mounted on them), which a file's ancestors are tested
	// against: an exact path's name says nothing about the directories
	// above a file. Full wherever names is.
	__u64 dir_names[NAME_WORDS];
};

struct rule_key {
	__u64 cgroup; // workload: cgroup id, 0 for the host
	__u64 hash;
	__u64 src; // FNV-1a of the acting executable's path, 0 for any
	__u32 gen;
	__u8 op;
	__u8 kind;
	__u16 pad;
};

struct rule_val {
	__u64 exact;     // the path itself, the base name, the code, the inode
	__u64 direct;    // key is a directory: its direct children and itself
	__u64 recursive; // key is a directory: all its descendants and itself
};

struct event {
	__u64 cgroup;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid; // fsuid, the uid ownerOnly compares
	__u32 owner;
	__u32 op;
	__u32 action;
	__s32 errno_; // 0 permitted, else the positive errno returned
	__u32 flags;
	__s32 family;
	__s32 type;
	__s32 protocol;
	__s32 cap;
	__s32 path_len; // bpf_d_path's result, or -errno
	__u32 hook;     // network: the HOOK_* that decided
	__u64 src; // the source identity used (path hash or tagged inode), 0 if none
	__s64 syscall;  // the system call being served (orig_ax), -1 when none
	__u64 args[3];  // its first three arguments, for the alert's Data
	char comm[16];
	char path[PATH_MAX];
	char source[PATH_MAX];
};

// Keeps struct event in the object's BTF so bpf2go -type can emit it.
const struct event *unused_event __attribute__((unused));
const struct rule_key *unused_rule_key __attribute__((unused));
const struct rule_val *unused_rule_val __attribute__((unused));
const struct wl_val *unused_wl_val __attribute__((unused));

// A workload's wl_val is an entry of wl_entries; workloads maps its key
// (cgroup id, 0 for the host) to that entry's index, and its slot in wl_slots
// names the same entry, where the slot is the workload's alone. A hook finds
// a task's own cgroup's workload with two array reads; the hash lookup (about
// 170 guest ns: the key's hash and comparison, out of line in the kernel) is
// left to the tasks whose slot names no entry of theirs (docs/bpflsm.md,
// "Workload slots").
//
// The slot of cgroup id cg is slot[cg & (WL_SLOTS - 1)]: one word that user
// space stores whole (the daemon maps the array), the entry's index + 1 in its
// low bits (0 for none) and the id's bits WL_SLOT_BITS-31 as a tag from bit
// SLOT_TAG_SHIFT. A slot two registered workloads share, and the slot of an
// id wider than 32 bits (its tag does not fit), name no entry. The host's key
// is 0: its slot is slot 0 with tag 0.
//
// User space writes a new state into an entry nothing names, then switches
// workloads and the slot to it, so a hook reads one whole state, the old or
// the new. It rewrites an entry only after a grace period since the last map
// or slot that named it changed (graceWaiter), so no hook that read the old
// index still reads the entry.
#define WL_ENTRIES 8192
#define WL_SLOT_BITS 14
#define WL_SLOTS (1 << WL_SLOT_BITS)

enum slot_layout {
	SLOT_ENTRY_MASK = 0x3fff,
	SLOT_TAG_SHIFT = 46,
	// An outsiders word: the id's tag from SLOT_TAG_SHIFT, this bit, and
	// wl_slots.registered's low bits below it.
	OUTSIDER_VALID_SHIFT = 45,
};

const enum slot_layout *unused_slot_layout __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WL_ENTRIES);
	__type(key, __u64);
	__type(value, __u32);
} workloads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WL_ENTRIES);
	__type(key, __u32);
	__type(value, struct wl_val);
} wl_entries SEC(".maps");

struct wl_slots {
	__u64 slot[WL_SLOTS];
	// How many times user space added a key to workloads (or named a slot):
	// bumped after each, after the map update, so that every outsiders word
	// written before no longer holds.
	__u64 registered;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wl_slots);
} wl_slots SEC(".maps");

// outsiders keeps, per slot, the last cgroup id of that slot in which
// find_entry found no workload, neither the cgroup's own nor an ancestor's:
// the cgroups of the host's own tasks (system services, user sessions) on a
// node with containers. Their next hook run goes to the host's entry at once,
// without the hash miss and one helper call and hash lookup per ancestor
// (hundreds of guest ns). A word is the id's tag as in a slot, a valid bit,
// and wl_slots.registered as read before that search: a key added to
// workloads since (a new workload, perhaps the cgroup's or an ancestor's)
// makes every word stale. Written by the kernel alone, one 8-byte store; two
// CPUs writing one slot leave either word, each of them true when written.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WL_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} outsiders SEC(".maps");

#define OUTSIDER_EPOCH_MASK ((1ULL << OUTSIDER_VALID_SHIFT) - 1)

// slot_entry is the index + 1 of the entry that cgroup id cg's slot names,
// 0 for none. An id wider than 32 bits has a tag past the slot's 18 bits:
// never equal.
static __always_inline __u32 slot_entry(__u64 cg)
{
	__u32 zero = 0;
	const struct wl_slots *ws = bpf_map_lookup_elem(&wl_slots, &zero);
	if (!ws)
		return 0;
	__u64 s = *(volatile const __u64 *)&ws->slot[cg & (WL_SLOTS - 1)];
	if ((s >> SLOT_TAG_SHIFT) != (cg >> WL_SLOT_BITS))
		return 0;
	return s & SLOT_ENTRY_MASK;
}

// hash_entry is the index + 1 of the entry that workloads names for cg, 0 for
// none.
static __always_inline __u32 hash_entry(__u64 cg)
{
	const __u32 *e = bpf_map_lookup_elem(&workloads, &cg);
	return e ? *e + 1 : 0;
}

// max_entries is set by the loader (Options.MaxRules).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct rule_key);
	__type(value, struct rule_val);
} rules SEC(".maps");

// key_counts counts the KIND_NAME and KIND_INODE keys in rules by a slot of
// their hash (NAME_SLOT, INODE_SLOT): every workload's and generation's, as user space
// writes and deletes them (keyCounts in keycounts.go). A key whose slot
// counts 0 is in no workload's rules, which a hook tells with one load
// where a lookup in rules costs 150-300 guest ns: a name whose bit in the
// names filter it shares with a rule's name (name_listed), and the inode of
// a first open decided by names (unnamed). 20,000 keys take 2 % of the
// slots. A count may be above the number of its keys, never below: a count
// that reached 255 stays there. User space maps the array (BPF_F_MMAPABLE)
// and changes a count with a store of one byte, which no hook can see half
// done.
#define KEY_COUNT_BITS 20
#define KEY_COUNTS (1 << KEY_COUNT_BITS)

struct key_counts {
	__u8 count[KEY_COUNTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct key_counts);
} key_counts SEC(".maps");

// The slot of a KIND_NAME key's hash (which mixes every byte of the name):
// its low bits; of a KIND_INODE key's, (dev << 32) ^ ino, numbers given out
// in sequence: the top bits of it times NAME_MUL (keySlot in keycounts.go).
#define NAME_SLOT(h) ((h) & (KEY_COUNTS - 1))
#define INODE_SLOT(h) (((h) * NAME_MUL) >> (64 - KEY_COUNT_BITS))

// key_counted says whether some workload may have a key in slot. Written as
// a test that returns: as `return !kc || count`, file_open took 270k
// instructions to verify, against 175k.
static __always_inline bool key_counted(__u64 slot)
{
	__u32 zero = 0;
	const struct key_counts *kc = bpf_map_lookup_elem(&key_counts, &zero);
	if (kc && !*(volatile __u8 *)&kc->count[slot & (KEY_COUNTS - 1)])
		return false;
	return true;
}

// Glob patterns: one DFA per workload and operation, state 0 the start. A
// missing transition is the dead state.
struct glob_key {
	__u64 cgroup;
	__u32 gen;
	__u32 state;
	__u8 op;
	__u8 byte;
	__u16 pad;
	__u32 pad2;
};

struct glob_val {
	__u32 next;
	__u32 pad;
	__u64 accept; // action bits when `next` accepts
};

const struct glob_key *unused_glob_key __attribute__((unused));
const struct glob_val *unused_glob_val __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct glob_key);
	__type(value, struct glob_val);
} globs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

// PREFIXES bounds the directory prefixes of a path walk_chunk records for
// prefix_step: a path deeper than that is hashed again for its lookups
// (deep_step).
#define PREFIXES 64

// mounts names a mount table: the mount namespace's seq, which is never
// reused, and its event, which the kernel moves on for every change of its
// tree (a mount, an unmount, a move, a propagation, an automount's expiry).
// Per-inode cache entries name the file's mount by its address, and the
// kernel hands a freed mount's address to the next mount: an entry written
// through a mount on /a, unmounted, would otherwise decide the same file's
// open through a new mount on a protected directory (TestMountReuse).
struct mounts {
	__u64 ns;
	__u64 event;
};

// mounts_of reads the current task's mount table.
static __always_inline struct mounts mounts_of(struct task_struct *t)
{
	struct mnt_namespace *ns = t->nsproxy->mnt_ns;
	return (struct mounts){.ns = ns->seq, .event = ns->event};
}

// path holds either bpf_d_path's result at offset 0, or a path built
// backwards by walk_dentries ending at PATH_MAX-1; it is twice PATH_MAX so
// that every masked offset plus a component stays inside.
struct scratch {
	char path[2 * PATH_MAX];
	char src[PATH_MAX];
	__u64 epochs; // check_path's: ward_epoch and the cache entry's moves,
	__u32 moves;  // as it read them before resolving the path
	__u32 pad;
	struct mounts mounts; // and the task's mount table (mounts_of)
	// at_ns_root's last answer on this CPU (at_ns_root_now), for that root
	// mount and mount table.
	__u64 nsr_mnt;
	struct mounts nsr_mounts;
	__u32 nsr_at;
	__u32 nsr_pad;
	// The directory path entry check_path may write (dir_fill): whether it
	// may, the file's parent and the rename count, read before the path was
	// resolved, and the rule bits the directory and its ancestors gave.
	__u32 dfill;
	__u32 renames;
	__u64 dparent;
	__u64 anc;
	__u64 dentry; // dir_walk's start (struct dentry *, passed as a number)
	__u64 dsrc;   // and the source, 0 for none
	__u64 dbits;  // dir_walk's result: bits of ancestor directories' inode keys
	__u64 dsbits; // and of those limited to the source
	// The steps dir_walk looks up (bit i: step i; every bit but where the
	// names walk of unnamed showed that no rule's directory can be there).
	__u64 dsteps;
	struct rule_key dkey; // the key dir_step looks up, off the stack
	__u64 exe;            // exe_hash's result
	__u64 mnt;            // mounts_clear's start (struct mount *, as a number)
	// unnamed's state, off check_path's full frame: the dnames key to
	// write on the file's directory when the walk allows it (0: none), and
	// the root's step of dir_walk.
	__u64 nkey;
	__u64 rootstep;
	// check_path's task root (struct dentry *, struct vfsmount *), for the
	// directory entries unnamed and dir_fill test and write.
	__u64 root;
	__u64 root_mnt;
	// The directory prefixes walk_chunk met: the hash of the path up to and
	// with its k-th '/' and that '/''s offset in path; how many it met (or
	// walk_byte, or deep_step: walk_slash says why here), and the offset of
	// the path's end.
	__u64 ph[PREFIXES];
	__u32 poff[PREFIXES];
	__u32 depth;
	__u32 pend;
	__u32 pstart; // where the path starts in path
	// ~0, or 0 where prefixes found that the file's name cannot be a rule's.
	__u64 fmask;
	// prefix_step's key (kind PATH; hash and source its own), the source of
	// fromSource rules (0 for none), and its results.
	struct rule_key pkey;
	__u64 psrc;
	__u64 pbits, psbits, pdirect, psdirect;
	// Counters (count), read by user space: 0 events dropped (ring buffer
	// full), 1 unresolved paths denied, 2 opens decided by the names of the
	// file and its ancestors (unnamed), 3 opens whose ancestors' names a
	// directory's entry vouched for (dnames), 4 opens whose ancestors' rules
	// a directory's path entry vouched for (dpaths).
	__u64 counts[COUNTERS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

// count adds one to counter i of this CPU. The counters live in the scratch
// buffer, which every counting path has already looked up: a per-CPU map of
// their own cost a lookup call each (this kernel does not inline per-CPU
// array lookups), about 20 guest ns of every first open (BenchmarkHookCost).
// The scratch buffer is this CPU's alone while a program runs.
static __always_inline void count(struct scratch *s, __u32 i)
{
	if (s && i < COUNTERS)
		s->counts[i]++;
}

struct wl {
	__u64 cgroup;
	__u32 gen;
	__u32 flags; // this operation's byte
	__u32 audited;
	__u32 codes; // this operation's 16 bits of wl_val.codes
	__u64 dir_depths;
	__u64 exact_depths;
	__u32 dir_inodes; // this operation's bit of wl_val.dir_inodes
	// The workload's entry, for its names filter (unnamed), which is too
	// large to copy for every hook.
	const struct wl_val *v;
};

// ward_config[0], written whole by user space after the workload entries it
// describes: containers is 1 while a container is registered (with none, a hook skips
// the cgroup lookup); ops has WF_RULES in the byte of every operation that
// some workload has rules of, host_flags is the host workload's flags (0
// without a host entry). A hook of an operation nobody has rules of returns
// after this one array read, and a task outside the containers costs a host
// lookup only when the host has rules of the operation.
//
// The other fields name the codes some workload's network and capability keys
// hold (of any source), bit n for number n: a socket or capability none of
// them names cannot match a rule, so its hook returns without the workload
// lookup. User space sets every bit of an operation that some workload
// allow-lists (its posture then decides every code) or has an "all" rule of.
struct config {
	__u32 containers;
	__u32 ops;
	__u32 host_flags;
	__u32 types;     // socket types (type & SOCK_TYPE_MASK)
	__u64 caps;      // capabilities
	__u64 families;  // address families
	__u64 protos[4]; // protocols 0-255
	// The union of the workloads' wl_val.names that are not full: a rename
	// of a directory of one of these names bumps ward_epoch[1] (moved).
	__u64 names[NAME_WORDS];
};

const struct config *unused_config __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} ward_config SEC(".maps");

struct epochs {
	__u32 files; // ward_epoch[0] below
	__u32 names; // ward_epoch[1]
	// Every rename Ward lets through, of anything: check_path writes a
	// directory's path entry (dpaths) only when none ran while it resolved
	// a path below that directory, since the file may have moved.
	__u32 renames;
	__u32 pad;
};

// ward_epoch[0] is bumped by every rename of a directory, which changes the
// paths of every inode below it, and every move of a mount, which changes
// the paths of its files: it invalidates the whole per-inode cache.
// ward_epoch[1] is bumped by every rename of a directory whose name has its
// bit in ward_config.names, and every move of a mount: it invalidates the
// names filters of the workloads (wl_val.names_epoch), which user space
// renews at their next translation.
// A rename, link or unlink of anything else changes the names of one inode
// (two for RENAME_EXCHANGE) and bumps only their entries' moves. Only the
// kernel writes it: kept apart from ward_config so that user space's
// whole-value writes of the container count can never undo a bump.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct epochs);
} ward_epoch SEC(".maps");

// The per-inode cache of the rule bits found for a file's path, so that a
// file opened again by the same workload is decided without resolving and
// hashing its path. An entry is valid only for the same workload
// generation, operation, source, mount, root, mount table and epoch, while
// no rename, link or unlink of the inode happened since it was computed
// (stamp == moves), and only while the file has one name (i_nlink == 1): a
// second name could have other rules.
//
// Entries are read without a lock, on every cached open: a sequence count
// tells a reader that a write ran meanwhile (seq odd, or changed), and the
// reader then treats the entry as missing. Writers, on the opens the entry
// did not decide, hold its lock, so two CPUs filling one inode's entry for
// different workloads at once never leave one's key with the other's bits
// (a workload with Block rules decided by another's permitted bits). The
// ordering needs only compiler barriers: x86 keeps stores in order, and
// loads in order, and Ward's object is built for x86 alone.
struct icache {
	struct bpf_spin_lock lock;
	__u32 seq;
	__u64 cgroup;
	__u64 mnt;
	// The task's mount table when the bits were computed (mounts_of): a
	// mount's address is reused once it is freed.
	struct mounts mounts;
	// The task's root directory and its mount: paths are seen from it.
	// Kept as two pointers: the verifier refuses arithmetic between them.
	__u64 root;
	__u64 root_mnt;
	__u64 src;
	__u64 bits;
	__u64 sbits;
	__u32 gen;
	__u32 epoch;
	__u32 flags;
	__u32 op;
	// moves counts the renames, links and unlinks of this inode (moved);
	// stamp is its value when the entry's bits were computed.
	__u32 moves;
	__u32 stamp;
	// pass: the bits name no rule and the workload has no allow-list and
	// no fromSource rule, so that every open of the file is permitted
	// without an event whatever its mode, owner or terminal (passes).
	__u32 pass;
	__u32 pad;
	// A directory's entry only (dirs): its dnames key, written alone,
	// without the lock.
	__u64 names;
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct icache);
} icache SEC(".maps");

// dirs holds the entries of directories: one inode storage lookup finds
// both, in the directory's first opens.
//
// Its names word (dnames) keeps that unnamed found no name with its bit
// among the directory and its ancestors below the root of its filesystem:
// the next first open of a file in that directory tests the file's own name
// only, instead of walking up again (a name test per ancestor). It is the
// generation of the workload entry whose filter was tested (high half) and
// ward_epoch's files count read before the walk (low half), in one word so
// that two writers never leave a mix of theirs. Generations are never reused
// and name one workload's translation; what can change a directory's
// ancestors (a rename of it or of one above) bumps the files count. The
// word is written only by a walk that reached its filesystem's root
// (s_root): a disconnected dentry may later be spliced below another.
//
// The other fields (dpaths) keep, as a file's per-inode entry does, with no
// bits, moves or source, that the rules of a workload gave nothing to the
// directory's children by its path or its ancestors': no recursive rule on
// it or an ancestor's path, no direct rule on its own, and no directory rule
// by the inode of it or an ancestor (dir_walk). check_path writes them
// after it resolved a file's path below the directory; the next first open
// of another file there by the same workload (unnamed), whose own name no
// rule names, is then decided without the walk of its ancestors' names and
// without its path: where an ancestor's name has its bit, so that the names
// word cannot be written. They are valid for what a path depends on
// (icache_valid): the workload's generation, ward_epoch's files count
// (every rename of a directory, every move of a mount), the file's mount,
// the task's root and mount table.
struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct icache);
} dirs SEC(".maps");

// cacheable says whether inode may have a per-inode cache entry: a regular
// file with one name (a second name could have other rules; a link since an
// entry's fill bumped its moves).
static __always_inline bool cacheable(struct inode *inode)
{
	return (inode->i_mode & S_IFMT) == S_IFREG && inode->i_nlink == 1;
}

// icache_valid says whether entry c still decides an access of workload wl's
// operation op, from source src, on mount mnt, by a task whose root is
// (root, root_mnt) and whose mount table is m: no policy change (gen),
// directory rename or mount move (epoch), no mount or unmount in the task's
// mount namespace (m) and no rename, link or unlink of the inode (moves)
// since the entry was written. Callers read epoch and moves before they resolve a path.
static __always_inline bool icache_valid(const struct icache *c, const struct wl *wl, __u32 op, __u64 src, __u64 mnt,
					 struct dentry *root, struct vfsmount *root_mnt, struct mounts m, __u32 epoch,
					 __u32 moves)
{
	return c->cgroup == wl->cgroup && c->gen == wl->gen && c->epoch == epoch && c->stamp == moves &&
	       c->mnt == mnt && c->root == (__u64)root && c->root_mnt == (__u64)root_mnt && c->src == src &&
	       c->op == op && c->mounts.ns == m.ns && c->mounts.event == m.event;
}

// icache_valid_now is icache_valid for an open of file by task t, of
// workload (cgroup, gen)'s operation op without a source: with the epoch,
// root and mount table as they are now.
static __always_inline bool icache_valid_now(const struct icache *c, struct task_struct *t, struct file *file,
					     __u32 op, __u64 cgroup, __u32 gen, __u32 moves)
{
	__u32 zero = 0;
	__u32 *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
	if (!ep)
		return false;
	struct wl w = {.cgroup = cgroup, .gen = gen};
	return icache_valid(c, &w, op, 0, (__u64)file->f_path.mnt, t->fs->root.dentry, t->fs->root.mnt, mounts_of(t),
			    *ep, moves);
}

// icache_fill writes entry c for the bits an access was decided by, with the
// epoch and moves its caller read before it resolved the path.
static __always_inline void icache_fill(struct icache *c, const struct wl *wl, __u32 op, __u64 src, __u64 mnt,
					struct dentry *root, struct vfsmount *root_mnt, struct mounts m, __u32 epoch,
					__u32 moves, __u64 bits, __u64 sbits, __u32 flags)
{
	bpf_spin_lock(&c->lock);
	c->seq++;
	barrier();
	c->cgroup = wl->cgroup;
	c->mnt = mnt;
	c->mounts = m;
	c->root = (__u64)root;
	c->root_mnt = (__u64)root_mnt;
	c->src = src;
	c->bits = bits;
	c->sbits = sbits;
	c->gen = wl->gen;
	c->epoch = epoch;
	c->stamp = moves;
	c->flags = flags;
	c->op = op;
	c->pass = !bits && !sbits && !(wl->flags & (WF_ALLOW_GLOBAL | WF_ALLOW_SOURCES | WF_SOURCE_RULES));
	barrier();
	c->seq++;
	bpf_spin_unlock(&c->lock);
}

// icache_seq returns the entry's sequence count for a read of it, odd while
// a write is running; icache_same says whether no write ran since.
static __always_inline __u32 icache_seq(const struct icache *c)
{
	__u32 seq = *(volatile const __u32 *)&c->seq;
	barrier();
	return seq;
}

static __always_inline bool icache_same(const struct icache *c, __u32 seq)
{
	barrier();
	return *(volatile const __u32 *)&c->seq == seq;
}

// CG_WALK bounds how many cgroup ancestors find_ancestor looks up.
#define CG_WALK 16

// find_ancestor finds the nearest registered ancestor of the current task's
// cgroup (cgroup v2), so that a process a container moved into a cgroup it
// made below its own keeps the container's rules. It sets *cg to that
// ancestor's id and returns its entry's index + 1 (hash_entry). A task in no
// container's subtree costs one lookup per level above its cgroup, up to
// CG_WALK; the root (level 0) is never a workload.
static __always_inline __u32 find_ancestor(__u64 *cg)
{
	struct task_struct *t = bpf_get_current_task_btf();
	int level = BPF_CORE_READ(t, cgroups, dfl_cgrp, level);
	for (int i = 1; i <= CG_WALK; i++) {
		int l = level - i;
		if (l < 1)
			break;
		__u64 id = bpf_get_current_ancestor_cgroup_id(l);
		__u32 e = hash_entry(id);
		if (e) {
			*cg = id;
			return e;
		}
	}
	return 0;
}

// search_entry returns the index + 1 of the entry of the workload of cgroup
// *cg, by the hash map, else of its nearest registered ancestor (whose id it
// puts in *cg); 0 for none. A global function of its own: the verifier walks
// find_ancestor's loop once, not once for each state find_entry reaches it in.
__noinline int search_entry(__u64 *cg)
{
	if (!cg)
		return 0;
	__u32 e = hash_entry(*cg);
	if (!e)
		e = find_ancestor(cg);
	return e;
}

// find_entry returns the index + 1 of the current task's workload entry (0 for
// none) and sets *key to the workload's key, where the slot of cgroup id cg
// (the task's, or 0 without containers) did not name it: the workload of the
// task's cgroup by the hash map (while containers), else of its nearest
// registered ancestor, else the host's (if host); a cgroup that outsiders
// says has neither goes to the host's at once. A global function, verified
// once: the verifier then explores the hook's rest once for all the ways to
// the entry, where each (slot, hash, ancestor, host) would otherwise take it
// through the rest again with the states of its own (file_open: 363k
// instructions, against 175k with the hash lookup alone).
__noinline int find_entry(__u32 containers, __u32 host, __u64 cg, __u64 *key)
{
	if (!key)
		return 0;
	__u32 e = 0;
	if (containers) {
		// An id wider than 32 bits is looked up every time, as for slots.
		__u32 zero = 0, idx = cg & (WL_SLOTS - 1);
		const struct wl_slots *ws = bpf_map_lookup_elem(&wl_slots, &zero);
		__u64 *out = cg >> 32 ? NULL : bpf_map_lookup_elem(&outsiders, &idx);
		__u64 mark = 0;
		if (ws && out) {
			// Read before the search: a key added after this read makes
			// the word written below stale.
			mark = cg >> WL_SLOT_BITS << SLOT_TAG_SHIFT | 1ULL << OUTSIDER_VALID_SHIFT |
			       (*(volatile const __u64 *)&ws->registered & OUTSIDER_EPOCH_MASK);
			barrier();
			if (*(volatile __u64 *)out == mark)
				goto outside;
		}
		e = search_entry(&cg);
		if (!e && ws && out)
			*(volatile __u64 *)out = mark;
	}
outside:
	if (!e && host) {
		cg = 0;
		e = slot_entry(0);
		if (!e)
			e = hash_entry(0);
	}
	*key = cg;
	return e;
}

// entry_of is find_entry with the slot of the task's cgroup (or of the host,
// without containers) read inline: the way of nearly every hook run, which
// then pays no call (about 30 guest ns, BenchmarkHookCost).
static __always_inline __u32 entry_of(__u32 containers, __u32 host, __u64 *key)
{
	__u64 cg = containers ? bpf_get_current_cgroup_id() : 0;
	__u32 e = containers || host ? slot_entry(cg) : 0;
	if (e) {
		*key = cg;
		return e;
	}
	return find_entry(containers, host, cg, key);
}

// find_workload returns 0 when the current task's workload has rules of op:
// the workload of its cgroup, else of the nearest registered ancestor, else
// the host's.
static __always_inline int find_workload_in(struct config *cfg, __u8 op, struct wl *w)
{
	__u32 bit = WF_RULES << (op * 8);
	if (!(cfg->ops & bit))
		return -1;
	__u64 cg = 0;
	__u32 e = entry_of(cfg->containers, cfg->host_flags & bit, &cg);
	if (!e)
		return -1;
	e--;
	struct wl_val *v = bpf_map_lookup_elem(&wl_entries, &e);
	if (!v)
		return -1;
	__u32 f = (v->flags >> (op * 8)) & 0xff;
	if (!(f & WF_RULES))
		return -1;
	w->cgroup = cg;
	w->gen = v->gen;
	w->flags = f;
	w->audited = v->audited;
	w->codes = op >= OP_NETWORK ? (v->codes >> ((op - OP_NETWORK) * 16)) & 0xffff : 0;
	w->dir_depths = v->dir_depths[op & 3];
	w->exact_depths = v->exact_depths[op & 3];
	w->dir_inodes = (v->dir_inodes >> op) & 1;
	w->v = v;
	return 0;
}

static __always_inline int find_workload(__u8 op, struct wl *w)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&ward_config, &zero);
	if (!cfg)
		return -1;
	return find_workload_in(cfg, op, w);
}

static __always_inline __u64 depth_bit(__u32 d)
{
	return 1ULL << (d > 63 ? 63 : d);
}

// named says whether name key k has its bit in workload entry v's filter.
static __always_inline bool named(const struct wl_val *v, __u64 k)
{
	__u32 b = (k * 0x9E3779B97F4A7C15ULL) >> 52;
	return v->names[(b >> 6) & (NAME_WORDS - 1)] & (1ULL << (b & 63));
}

// dir_named is named for an ancestor of a file, in the directories' filter.
static __always_inline bool dir_named(const struct wl_val *v, __u64 k)
{
	__u32 b = (k * 0x9E3779B97F4A7C15ULL) >> 52;
	return v->dir_names[(b >> 6) & (NAME_WORDS - 1)] & (1ULL << (b & 63));
}

struct walk {
	struct scratch *s;
	__u32 start; // offset of the path in s->path
	__u32 gen;
	__u64 cgroup;
	__u64 src; // 0 when the workload has no fromSource rules for op
	__u64 h;    // FNV-1a of path[0..i]
	__u64 base; // FNV-1a of the current component
	__u64 bits;  // accumulated action bits of rules for any source
	__u64 sbits; // and of rules limited to this source, which decide first
	__u64 last_direct;
	__u64 last_sdirect;
	__u32 state; // DFA state
	__u32 dfa;   // the DFA is still alive
	__u64 accept;
	__u64 dir_depths;
	// The workload's entry, for its names filter (prefix_step).
	const struct wl_val *v;
	__u32 done;
	__u32 mode; // MODE_*: what kind of check this is
	__u8 op;
};

// What a check is for. An open decides with every rule and the posture. A
// mapping for execution (mmap_file: the dynamic loader runs a program without
// exec) and a read or write through a descriptor that is already open
// (file_permission: descriptors opened before a rule, or inherited) are
// decided only by Block rules: the open already reported Audit and applied
// the posture, and these run far more often than opens.
#define MODE_OPEN 0
#define MODE_MAP 1
#define MODE_RW 2

static __always_inline struct rule_val *lookup(struct walk *w, __u8 kind, __u64 hash, __u64 src)
{
	struct rule_key k = {
		.cgroup = w->cgroup,
		.hash = hash,
		.src = src,
		.gen = w->gen,
		.op = w->op,
		.kind = kind,
	};
	return bpf_map_lookup_elem(&rules, &k);
}

// lookup_dir adds a directory prefix's bits: recursive ones at once, direct
// ones only if it turns out to be the parent (the last prefix).
static __always_inline void lookup_dir(struct walk *w)
{
	__u64 direct = 0, sdirect = 0;
	struct rule_val *v = lookup(w, KIND_PATH, w->h, 0);
	if (v) {
		w->bits |= v->recursive;
		direct = v->direct;
	}
	if (w->src) {
		v = lookup(w, KIND_PATH, w->h, w->src);
		if (v) {
			w->sbits |= v->recursive;
			sdirect = v->direct;
		}
	}
	w->last_direct = direct;
	w->last_sdirect = sdirect;
}

// walk_slash ends a path prefix at a '/' (w->h includes it): directory rules
// are looked up only at depths where some exist.
//
// The count of '/' is kept in the scratch buffer (s->depth), whose values the
// verifier does not track, as walk_chunk's is. On the walk's stack it was a
// known number, one more at every step, and a branch on it made it precise:
// from 6.7 on, the verifier checks a bpf_loop callback again until its states
// repeat, which such a count never does, and on 6.12 every file hook was
// refused ("The sequence of 8193 jumps is too complex"). deep_step's count
// is kept there for the same reason.
static __always_inline void walk_slash(struct walk *w)
{
	struct scratch *s = w->s;
	__u32 d = s->depth + 1;
	s->depth = d;
	if (w->dir_depths & depth_bit(d))
		lookup_dir(w);
	else
		w->last_direct = w->last_sdirect = 0;
}

static __always_inline int walk_step(struct walk *w, unsigned char c)
{
	if (c == 0)
		return 1;
	w->h = (w->h ^ c) * FNV_PRIME;
	if (w->dfa) {
		struct glob_key k = {.cgroup = w->cgroup, .gen = w->gen, .state = w->state, .op = w->op, .byte = c};
		struct glob_val *g = bpf_map_lookup_elem(&globs, &k);
		if (g) {
			w->state = g->next;
			w->accept = g->accept;
		} else {
			w->dfa = 0;
		}
	}
	if (c == '/') {
		walk_slash(w);
		w->base = FNV_OFFSET;
	} else {
		w->base = (w->base ^ c) * FNV_PRIME;
	}
	return 0;
}

// walk_chunk handles 8 bytes per bpf_loop iteration: the callback call is a
// noticeable part of the per-byte cost. It serves the walk without patterns
// for a file access, which needs neither the automaton nor the base name
// (KIND_EXECNAME keys are process keys): it keeps the hash in a register,
// which is most of a path's bytes spared half their work, and records every
// '/' for prefix_step: its offset and the hash up to it, in the scratch
// buffer, whose values the verifier does not track. A '/' costs two stores
// then; its lookup, if any, is prefix_step's, after the walk.
//
// Looking the prefix up here, at each '/', cost more and verified worse: with
// the test inline, the verifier checked it in every combination of the eight
// unrolled bytes (twice the instructions to verify, the daemon's start with
// 1,000 policies 7.5 to 13.2 s of guest time); as a global function called at
// every '/' (prefix_at, until this), a call and a scratch lookup per '/'
// made most of the walk's cost (docs/bpflsm.md, "Directory prefixes by
// name").
static long walk_chunk(__u64 i, struct walk *w)
{
	struct scratch *s = w->s;
	__u32 off = w->start + (__u32)i * 8;
	__u64 h = w->h;
#pragma unroll
	for (int j = 0; j < 8; j++) {
		unsigned char c = s->path[(off + j) & (2 * PATH_MAX - 1)];
		if (c == 0) {
			w->h = h;
			w->done = 1;
			s->pend = off + j;
			return 1;
		}
		h = (h ^ c) * FNV_PRIME;
		if (c == '/') {
			__u32 d = s->depth;
			s->ph[d & (PREFIXES - 1)] = h;
			s->poff[d & (PREFIXES - 1)] = off + j;
			s->depth = d + 1;
		}
	}
	w->h = h;
	return 0;
}

// path_named says whether the name in s->path from offset from up to (not
// with) to has its bit in workload entry v's names filter (name_key's key).
static __always_inline bool path_named(const struct wl_val *v, struct scratch *s, __u32 from, __u32 to)
{
	__u32 len = to - from;
	unsigned char first = s->path[from & (2 * PATH_MAX - 1)];
	unsigned char last = s->path[(to - 1) & (2 * PATH_MAX - 1)];
	return named(v, ((__u64)(len & 0xff) << 16) | ((__u64)first << 8) | last);
}

// prefix_lookup looks up directory prefix hash h with s->pkey: recursive
// bits into s->pbits, direct ones into s->pdirect (they apply if this prefix
// is the last, the parent), the same from the source's keys into s->psbits
// and s->psdirect.
static __always_inline void prefix_lookup(struct scratch *s, __u64 h)
{
	s->pkey.hash = h;
	s->pkey.src = 0;
	struct rule_val *r = bpf_map_lookup_elem(&rules, &s->pkey);
	if (r) {
		s->pbits |= r->recursive;
		s->pdirect = r->direct;
	}
	if (s->psrc) {
		s->pkey.src = s->psrc;
		r = bpf_map_lookup_elem(&rules, &s->pkey);
		if (r) {
			s->psbits |= r->recursive;
			s->psdirect = r->direct;
		}
	}
}

struct pctx {
	struct scratch *s;
	const struct wl_val *v;
	__u64 dir_depths;
	__u64 h; // deep_step's hash of the path so far
};

// prefix_step looks up directory prefix i of walk_chunk's (depth i + 1)
// with prefix_lookup, where the workload has directory keys at that depth.
//
// In such a walk every directory key of the workload is a directory whose
// name has its bit in the names filter (translate.go's addDir; the filter is
// full where that does not hold: fromSource rules, an allow-list, a rule on
// /), and a prefix matches a key only if it is that directory's path. So a
// prefix whose last component's name has no bit is not looked up: a workload
// with directory rules at many depths pays a lookup only where a rule's
// directory name is met. The filter is a function of the rules' strings,
// compared here with the path's string, so it needs no epoch, whatever was
// renamed. The root's prefix (depth 1) has no name and is always looked up.
static long prefix_step(__u64 i, struct pctx *c)
{
	struct scratch *s = c->s;
	__u32 k = (__u32)i & (PREFIXES - 1);
	s->pdirect = 0;
	s->psdirect = 0;
	if (!(c->dir_depths & depth_bit(k + 1)))
		return 0;
	if (k > 0 && !path_named(c->v, s, s->poff[(k - 1) & (PREFIXES - 1)] + 1, s->poff[k]))
		return 0;
	prefix_lookup(s, s->ph[k]);
	return 0;
}

// deep_step is prefix_step for a path deeper than walk_chunk recorded: it
// hashes the path again from s->pstart, a byte per iteration, and looks up
// every prefix at a depth with keys.
static long deep_step(__u64 i, struct pctx *c)
{
	struct scratch *s = c->s;
	unsigned char ch = s->path[(s->pstart + (__u32)i) & (2 * PATH_MAX - 1)];
	if (ch == 0)
		return 1;
	c->h = (c->h ^ ch) * FNV_PRIME;
	if (ch != '/')
		return 0;
	__u32 d = s->depth + 1;
	s->depth = d;
	s->pdirect = 0;
	s->psdirect = 0;
	if (c->dir_depths & depth_bit(d))
		prefix_lookup(s, c->h);
	return 0;
}

// prefixes follows walk_chunk: it looks up the prefixes it recorded
// (prefix_step) and tests the file's own name, after the last '/': the path
// can be an exact rule's only if that name has its bit in the names filter
// (translate.go's addPath), and a directory rule's directory only if the
// directory's name has (addDir); s->fmask is 0 when it has not. A path with
// more '/' than walk_chunk recorded is hashed again (deep_step).
//
// A global function, its results in the scratch buffer, whose values the
// verifier does not track: checked once, it leaves check_path's states as
// they were. With these tests inline, or the deep path's walk a second call
// of walk_byte there, the file hooks took up to twice the instructions to
// verify.
__attribute__((noinline)) int prefixes(const struct wl_val *v)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s || !v)
		return 0;
	__u32 depth = s->depth;
	struct pctx c = {.s = s, .v = v, .dir_depths = v->dir_depths[s->pkey.op & 3], .h = FNV_OFFSET};
	if (depth > PREFIXES) {
		s->depth = 0;
		bpf_loop(PATH_MAX, deep_step, &c, 0);
		return 0;
	}
	bpf_loop(depth, prefix_step, &c, 0);
	// A file with no name (the root) is looked up.
	if (depth > 0) {
		__u32 from = s->poff[(depth - 1) & (PREFIXES - 1)] + 1;
		__u32 to = s->pend;
		if (to > from && !path_named(v, s, from, to))
			s->fmask = 0;
	}
	return 0;
}

// walk_byte is the walk with the automaton or the base name, a byte per
// iteration. Eight steps unrolled in one callback, as walk_chunk does, took
// most of the verifier's work in every file hook: each step's branches
// multiplied the states the next step was checked in (from about 10 to 440
// times, docs/bpflsm.md), and the programs' load time with them.
static long walk_byte(__u64 i, struct walk *w)
{
	if (walk_step(w, w->s->path[(w->start + (__u32)i) & (2 * PATH_MAX - 1)])) {
		w->done = 1;
		return 1;
	}
	return 0;
}

// DIR_WALK bounds how many dentries dir_step visits: the file's own and its
// ancestors up to its filesystem's root.
#define DIR_WALK 128

// The state of a walk up a file's dentries (dir_walk), kept small: the
// frames of the hook (file_open's, with check_path inlined, is 456 bytes),
// dir_walk and dir_step share 512 (TestVerifierHeadroom logs them). The rule
// key dir_step looks up, the source and the results are in the scratch
// buffer.
struct dctx {
	struct scratch *s;
	__u64 dentry; // the dentry reached (struct dentry *)
};

// dir_step looks up one dentry's inode among the directory rules' inodes
// (KIND_DIRINODE) and moves to its parent. Dentries are shared by every
// mount of a filesystem and do not change when an ancestor is renamed, so
// a file inside a protected directory is found however it was reached: a
// bind mount, a chroot, a renamed ancestor. Step 0 is the file itself (a
// directory rule covers its directory), step 1 its parent (direct rules
// cover the children), the others its ancestors (recursive rules only).
static long dir_step(__u64 i, struct dctx *c)
{
	struct dentry *d = (struct dentry *)c->dentry;
	__u64 steps = c->s->dsteps >> (i < 63 ? i : 63);
	if (!steps)
		return 1;
	struct inode *ino = (steps & 1) ? BPF_CORE_READ(d, d_inode) : NULL;
	if (ino) {
		__u64 ih = ((__u64)BPF_CORE_READ(d, d_sb, s_dev) << 32) ^ BPF_CORE_READ(ino, i_ino);
		__u64 direct = i < 2 ? ~0ULL : 0;
		struct scratch *s = c->s;
		s->dkey.hash = ih;
		s->dkey.src = 0;
		struct rule_val *v = bpf_map_lookup_elem(&rules, &s->dkey);
		if (v)
			s->dbits |= v->recursive | (v->direct & direct);
		if (s->dsrc) {
			s->dkey.src = s->dsrc;
			v = bpf_map_lookup_elem(&rules, &s->dkey);
			if (v)
				s->dsbits |= v->recursive | (v->direct & direct);
		}
	}
	struct dentry *p = BPF_CORE_READ(d, d_parent);
	if (!p || p == d)
		return 1;
	c->dentry = (__u64)p;
	return 0;
}

// dir_walk is a global function: the verifier checks it once, not once per
// state of check_path that reaches the call (check_path is inlined in every
// file hook and close to the verifier's limit of processed instructions).
// A global function takes scalars only: the dentry to start from and the
// results go through the scratch buffer (the dentry pointer is stored there
// by the caller and read back as a number), which also keeps the callers'
// stack frames as they are. op_n is op | steps << 8, steps 0 when the
// workload has no directory inode keys of op.
__attribute__((noinline)) int dir_walk(__u64 cgroup, __u32 gen, __u32 op_n)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	s->dbits = 0;
	s->dsbits = 0;
	s->dkey = (struct rule_key){.cgroup = cgroup, .gen = gen, .op = op_n & 0xff, .kind = KIND_DIRINODE};
	struct dctx c = {
		.s = s,
		.dentry = s->dentry,
	};
	__u32 n = op_n >> 8;
	bpf_loop(n > DIR_WALK ? DIR_WALK : n, dir_step, &c, 0);
	return 0;
}

struct hash_ctx {
	struct scratch *s;
	__u64 h;
};

static long hash_char(__u64 i, struct hash_ctx *c)
{
	unsigned char ch = c->s->src[i & (PATH_MAX - 1)];
	if (ch == 0)
		return 1;
	c->h = (c->h ^ ch) * FNV_PRIME;
	return 0;
}

// permitted returns the modifier combinations (bit readOnly | ownerOnly<<1 |
// pts<<2, pts 0 unset, 1 true, 2 false) under which this access lies inside
// the set the rule permits.
static __always_inline __u64 permitted(bool write, bool owner, bool tty)
{
	__u64 m = 0;
#pragma unroll
	for (int c = 0; c < 12; c++) {
		bool ro = c & 1, oo = (c >> 1) & 1;
		int pts = c >> 2;
		if (pts == 3)
			continue;
		if ((!ro || !write) && (!oo || owner) && (pts == 0 || (pts == 1) == tty))
			m |= 1ULL << c;
	}
	return m;
}

// verdict reduces rule bits: a Block applies outside its permitted set (an
// unmodified one always), and so does an Audit (a dry run of the Block);
// an Allow applies inside it.
static __always_inline int verdict(__u64 bits, __u64 perm)
{
	__u64 block = (bits >> BLOCK_SHIFT) & COMBO_MASK;
	__u64 audit = (bits >> AUDIT_SHIFT) & COMBO_MASK;
	__u64 allow = (bits >> ALLOW_SHIFT) & COMBO_MASK;
	__u64 outside = (~perm & COMBO_MASK) | 1;
	if (block & outside)
		return V_BLOCK;
	if (audit & outside)
		return V_AUDIT;
	if (allow & perm)
		return V_ALLOW;
	return -1;
}

// t is the current task (bpf_get_current_task_btf): a trusted pointer the
// program reads directly. BPF_CORE_READ costs a helper call per pointer.
static __always_inline bool has_tty(struct task_struct *t)
{
	return t->signal->tty != NULL;
}

// exe_hash puts into s->exe the hash of the current executable's path (its
// text in s->src), 0 when it cannot be resolved.
//
// A global function, as the other bpf_loop walks that run before the rest
// of a file hook (mounts_clear): from 6.7 on the verifier checks a loop's
// callback again until its states repeat, and goes on from each of the
// loop's ways out, a constant hash where the loop ran no step and an unknown
// one where it ran; inline, each took file_open's rest through once more,
// past the limit of processed instructions on 6.12. The caller reads the
// hash back from the scratch buffer: one state, whatever the loop did.
__noinline int exe_hash(void)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	s->exe = 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct mm_struct *mm = t->mm;
	if (!mm)
		return 0;
	struct file *exe = mm->exe_file;
	if (!exe)
		return 0;
	long n = bpf_d_path(&exe->f_path, s->src, PATH_MAX);
	if (n <= 0)
		return 0;
	struct hash_ctx c = {.s = s, .h = FNV_OFFSET};
	bpf_loop(PATH_MAX, hash_char, &c, 0);
	s->exe = c.h;
	return 0;
}

// source_hash is the hash of the current executable's path (exe_hash); 0
// when it cannot be resolved.
static __always_inline __u64 source_hash(struct scratch *s)
{
	exe_hash();
	return s->exe;
}

// source_inode identifies the current executable by its inode, for hooks in
// which the kernel refuses bpf_d_path (socket_create, capable). User space
// writes every fromSource key under both identities.
static __always_inline __u64 source_inode(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct mm_struct *mm = t->mm;
	if (!mm)
		return 0;
	struct file *exe = mm->exe_file;
	if (!exe)
		return 0;
	struct inode *ino = exe->f_inode;
	return (((__u64)ino->i_sb->s_dev << 32) ^ ino->i_ino) ^ SRC_INODE_TAG;
}

static __always_inline bool allow_listed(struct walk *w, __u32 flags, __u64 src)
{
	if (flags & WF_ALLOW_GLOBAL)
		return true;
	if ((flags & WF_ALLOW_SOURCES) && src)
		return lookup(w, KIND_SRCALLOW, 0, src) != NULL;
	return false;
}

static __always_inline int emit(struct walk *w, struct wl *wl, int action, __u32 flags, __u32 owner,
				struct scratch *s, long path_len, bool in_file_open, int family, int type,
				int protocol, int cap, __u64 src, __u32 hook)
{
	int ret = 0;
	if (action == V_BLOCK) {
		if (wl->audited) {
			action = V_AUDIT;
			flags |= EF_AUDITED;
		} else {
			ret = -EPERM;
		}
	}
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(s, 0);
		return ret;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	e->cgroup = wl->cgroup;
	e->pid = (__u32)id;
	e->tgid = id >> 32;
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = BPF_CORE_READ(t, cred, fsuid.val);
	e->owner = owner;
	e->op = w->op;
	e->action = action;
	e->errno_ = -ret;
	e->flags = flags;
	e->family = family;
	e->type = type;
	e->protocol = protocol;
	e->cap = cap;
	e->path_len = path_len;
	e->hook = hook;
	// The system call the hook runs in, for KubeArmor's Data ("syscall=SYS_OPENAT ...").
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	e->syscall = BPF_CORE_READ(regs, orig_ax);
	e->args[0] = BPF_CORE_READ(regs, di);
	e->args[1] = BPF_CORE_READ(regs, si);
	e->args[2] = BPF_CORE_READ(regs, dx);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->path[0] = 0;
	e->src = src;
	if (path_len > 0)
		bpf_probe_read_kernel_str(e->path, PATH_MAX, &s->path[w->start & (PATH_MAX - 1)]);
	e->source[0] = 0;
	// bpf_d_path is refused outside a few hooks; elsewhere user space names
	// the source from e->src or /proc.
	struct mm_struct *mm = in_file_open ? t->mm : NULL;
	if (mm) {
		struct file *exe = mm->exe_file;
		if (exe && bpf_d_path(&exe->f_path, e->source, PATH_MAX) <= 0)
			e->source[0] = 0;
	}
	bpf_ringbuf_submit(e, 0);
	return ret;
}

// Path operations. bpf_d_path is refused in these hooks, so the path is built
// by walking dentries and mounts up to the root of the mount tree, backwards
// into s->path so that it ends at PATH_MAX-1. Any depth fits as long as the
// whole path fits in PATH_MAX; a longer one is unresolved (fail closed).

struct dwalk {
	struct scratch *s;
	__u64 dentry; // struct dentry *, read with bpf_probe_read_kernel
	__u64 mnt;    // struct mount *
	__u64 root;   // the mount's root dentry
	__s32 pos;    // the path starts at s->path[pos]
	__s32 err;
	__u32 done;
};

static long dwalk_step(__u64 i, struct dwalk *w)
{
	struct dentry *d = (struct dentry *)w->dentry;
	struct mount *m = (struct mount *)w->mnt;
	if (w->dentry == w->root) {
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (parent == m || !parent) {
			w->done = 1;
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (__u64)parent;
		w->root = (__u64)BPF_CORE_READ(parent, mnt.mnt_root);
		return 0;
	}
	struct dentry *p = BPF_CORE_READ(d, d_parent);
	if (!p || p == d) {
		w->done = 1;
		return 1;
	}
	__u32 len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	if (len > 255 || w->pos < (__s32)len + 1) {
		w->err = -36; // ENAMETOOLONG
		return 1;
	}
	w->pos -= len;
	bpf_probe_read_kernel(&w->s->path[w->pos & (PATH_MAX - 1)], len & 255, name);
	w->pos -= 1;
	w->s->path[w->pos & (PATH_MAX - 1)] = '/';
	w->dentry = (__u64)p;
	return 0;
}

// build_path writes the path of (mnt, dentry) and returns its start in
// s->path and its length (or a negative errno).
static __always_inline long build_path(struct scratch *s, struct vfsmount *vmnt, struct dentry *dentry, __u32 *start)
{
	struct dwalk w = {
		.s = s,
		.dentry = (__u64)dentry,
		.mnt = (__u64)container_of(vmnt, struct mount, mnt),
		.root = (__u64)BPF_CORE_READ(vmnt, mnt_root),
		.pos = PATH_MAX - 1,
	};
	s->path[PATH_MAX - 1] = 0;
	bpf_loop(PATH_MAX, dwalk_step, &w, 0);
	if (w.err)
		return w.err;
	if (!w.done)
		return -36;
	if (w.pos == PATH_MAX - 1) {
		// The root itself.
		w.pos = PATH_MAX - 2;
		s->path[PATH_MAX - 2] = '/';
	}
	*start = w.pos;
	return PATH_MAX - 1 - w.pos;
}

// name_key is what nameBit (translate.go) hashes of dentry d's name: its
// length, first and last byte. A name shorter than the dentry's inline buffer
// lives in it (d_iname): read with direct loads, as the program reads the
// file and task. A longer one takes two helper calls.
static __always_inline __u64 name_key(struct dentry *d)
{
	__u32 len = d->d_name.len;
	__u64 name = (__u64)d->d_name.name;
	unsigned char first = 0, last = 0;
	if (name == (__u64)&d->d_iname[0] && len > 0 && len < sizeof(d->d_iname)) {
		// The verifier allows a load of 8 bytes anywhere inside a byte
		// array of a kernel struct, not a variable index into it.
		// Only the words holding the first and the last byte: most
		// names fit in the first.
		__u64 w0 = *(__u64 *)&d->d_iname[0];
		__u32 i = len - 1;
		__u64 w = w0;
		if (i >= 24)
			w = *(volatile __u64 *)&d->d_iname[24];
		else if (i >= 16)
			w = *(volatile __u64 *)&d->d_iname[16];
		else if (i >= 8)
			w = *(volatile __u64 *)&d->d_iname[8];
		first = w0 & 0xff;
		last = (w >> ((i & 7) * 8)) & 0xff;
	} else {
		bpf_probe_read_kernel(&first, 1, (const void *)name);
		bpf_probe_read_kernel(&last, 1, (const void *)(name + (len ? len - 1 : 0)));
	}
	return ((__u64)(len & 0xff) << 16) | ((__u64)first << 8) | last;
}

// name_key_read is name_key for a dentry known only as a number (above the
// file's mount): every field with a helper call.
static __always_inline __u64 name_key_read(struct dentry *d)
{
	__u32 len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	unsigned char first = 0, last = 0;
	bpf_probe_read_kernel(&first, 1, name);
	bpf_probe_read_kernel(&last, 1, name + (len ? len - 1 : 0));
	return ((__u64)(len & 0xff) << 16) | ((__u64)first << 8) | last;
}

// name_word is word i (bytes 8i to 8i+7) of a name of len bytes, the bytes
// past its end zero: a dentry's inline buffer keeps a longer former name's
// bytes and the terminating NUL there.
static __always_inline __u64 name_word(__u64 w, __u32 len, __u32 i)
{
	if (len >= 8 * i + 8)
		return w;
	if (len <= 8 * i)
		return 0;
	return w & ((1ULL << ((len - 8 * i) * 8)) - 1);
}

// name_listed says whether the name of dentry d, whose bit is in workload
// wl's names filter, may be a rule's name: it has a KIND_NAME key (its
// hash, translate.go's NameHash), or it is too long to tell here (not in
// the dentry's inline buffer). The filter keys a name by its length, first
// and last byte, which a few hundred varied names spread over most of its
// bits; this tells the rest from the whole name, for a hash lookup where a
// file would otherwise have its path resolved, or one load where no
// workload has a key in the name's slot of key_counts.
//
// Inline. Hashing all four words whatever the name's length, it took
// file_open from 185k to 275k instructions to verify, paid at every load;
// hashing only the words that hold the name, 175k. As a global function
// whose answer the verifier knows as 0 or 1, called for every name, it took
// 190k, but cost every first open about 100 guest ns more, hit or not
// (docs/bpflsm.md, "Name keys").
static __always_inline bool name_listed(const struct wl *wl, struct dentry *d)
{
	__u32 len = d->d_name.len;
	if ((__u64)d->d_name.name != (__u64)&d->d_iname[0] || len == 0 || len >= sizeof(d->d_iname) || len > 31)
		return true;
	__u64 h = ((__u64)len + 1) * NAME_MUL;
	h = (h ^ name_word(*(volatile __u64 *)&d->d_iname[0], len, 0)) * NAME_MUL;
	if (len > 8) {
		h = (h ^ name_word(*(volatile __u64 *)&d->d_iname[8], len, 1)) * NAME_MUL;
		if (len > 16) {
			h = (h ^ name_word(*(volatile __u64 *)&d->d_iname[16], len, 2)) * NAME_MUL;
			if (len > 24)
				h = (h ^ name_word(*(volatile __u64 *)&d->d_iname[24], len, 3)) * NAME_MUL;
		}
	}
	h ^= h >> 32;
	if (!key_counted(NAME_SLOT(h)))
		return false;
	struct rule_key key = {
		.cgroup = wl->cgroup,
		.hash = h,
		.gen = wl->gen,
		.op = OP_FILE,
		.kind = KIND_NAME,
	};
	return bpf_map_lookup_elem(&rules, &key) != NULL;
}

// NAME_WALK bounds the ancestors unnamed tests inside the file's filesystem,
// MOUNT_WALK the steps above it (mount points and their ancestors); a file
// deeper than that is resolved. Each level of the unrolled walk costs the
// verifier about 3,600 instructions in file_open (32 levels: 342k, 16: 285k),
// paid at every load.
#define NAME_WALK 16
#define MOUNT_WALK 64

// The state of the walk above the file's filesystem (mount_step).
struct mwalk {
	const struct wl_val *v;
	__u64 mnt;    // struct mount * of the dentries walked, read with helpers
	__u64 dentry; // the dentry reached; 0 at its filesystem's root
	__u32 clear;  // the top of the mount tree was reached, no name listed
};

// mount_step moves one step up from the root of a filesystem: to the mount
// point of the mount above, then to its ancestors, testing each name. These
// dentries are reached through the mount, which the program can read only
// with helpers (container_of on a kernel pointer is refused): most files
// need no step or one mount point.
static long mount_step(__u64 i, struct mwalk *c)
{
	struct dentry *d = (struct dentry *)c->dentry;
	if (!d) {
		struct mount *m = (struct mount *)c->mnt;
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (!parent || parent == m) {
			c->clear = 1;
			return 1;
		}
		d = BPF_CORE_READ(m, mnt_mountpoint);
		c->mnt = (__u64)parent;
	} else {
		struct dentry *p = BPF_CORE_READ(d, d_parent);
		if (!p || p == d) {
			c->dentry = 0;
			return 0;
		}
		d = p;
	}
	c->dentry = (__u64)d;
	return dir_named(c->v, name_key_read(d));
}

// mounts_clear says whether no name above the filesystem of mount s->mnt
// (struct mount *) has its bit in v's directories' filter (mount_step), up to
// the top of the mount tree: 0 where one has, or the walk ended early. A
// global function, as exe_hash is and for its reason: inline, the loop's ways
// out (not walked, stopped at a name, at the top) each took file_open's rest
// through once more on 6.12. A global function takes no kernel pointer: the
// mount comes through the scratch buffer, as a number.
__noinline int mounts_clear(const struct wl_val *v)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!v || !s)
		return 0;
	struct mwalk c = {.v = v, .mnt = s->mnt};
	bpf_loop(MOUNT_WALK, mount_step, &c, 0);
	return c.clear;
}

// dir_clear says whether c, the entry of file's directory, holds a valid
// path entry (dpaths) for the workload's generation gen, an open through
// mount mnt and what check_path read before anything else (the epoch, the
// task's root and mount table): read again here, they cost a helper call and
// eight reads through kernel pointers in every first open it decides. An
// open decided with check_path's reads is decided as of them, as a file's
// entry is.
static __always_inline bool dir_clear(struct icache *c, struct scratch *s, __u64 mnt, __u64 cgroup, __u32 gen)
{
	__u32 seq = icache_seq(c);
	struct wl w = {.cgroup = cgroup, .gen = gen};
	return !(seq & 1) &&
	       icache_valid(c, &w, OP_FILE, 0, mnt, (struct dentry *)s->root, (struct vfsmount *)s->root_mnt, s->mounts,
			    (__u32)s->epochs, 0) &&
	       icache_same(c, seq);
}

// dir_prepare lets check_path write the path entry of file's directory
// once it resolved the path (s->dfill, dir_fill), reading before the path
// the rename count and the file's parent. It and dir_fill are functions of
// their own: they are called where file_open's frame has no room left, and
// only by the opens that resolve a path.
static __noinline void dir_prepare(struct file *file, struct scratch *s)
{
	__u32 zero = 0;
	struct epochs *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
	if (!ep)
		return;
	s->renames = *(volatile __u32 *)&ep->renames;
	barrier();
	s->dparent = (__u64)file->f_path.dentry->d_parent;
	s->dfill = 1;
}

// dir_fill writes the path entry of file's directory, with the epoch and
// mount table check_path read before it resolved the path, unless the file
// may have moved to another directory since: its parent is another, or a
// rename ran (its hook runs before the rename; with only the parent
// compared, a file moved away and back during the resolution would give its
// directory the bits of the other's path).
static __noinline void dir_fill(struct file *file, __u64 cgroup, __u32 gen, struct scratch *s)
{
	__u32 zero = 0;
	struct epochs *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
	if (!ep)
		return;
	struct dentry *p = file->f_path.dentry->d_parent;
	barrier();
	if ((__u64)p != s->dparent || *(volatile __u32 *)&ep->renames != s->renames)
		return;
	struct icache *c = bpf_inode_storage_get(&dirs, p->d_inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	struct wl w = {.cgroup = cgroup, .gen = gen};
	icache_fill(c, &w, OP_FILE, 0, (__u64)file->f_path.mnt, (struct dentry *)s->root, (struct vfsmount *)s->root_mnt,
		    s->mounts, (__u32)s->epochs, 0, 0, 0, 0);
}

// unnamed says whether no rule of workload wl can apply to an open of file,
// known without its path: no exact rule's path ends with the file's name, no
// directory rule's directory has its name or an ancestor's, and no inode key
// names its inode (hard links, renamed files; WF_INODES says whether the
// workload has such keys). wl is the workload's for OP_FILE; names_epoch is
// ward_epoch[1] as check_path read it before anything else; root_mnt the
// mount of the task's root, the root of its mount namespace.
//
// wl->v->names has a bit per (length, first byte, last byte) of those paths'
// last components and directories' names, or every bit where a name cannot
// tell (patterns, fromSource rules, allow-lists, under which a file no rule
// names is decided by the posture and reported: translate.go's nameBit).
// Where the file's own name has its bit, name_listed tells by the whole name
// whether some rule has it; its ancestors are tested against
// wl->v->dir_names, the directory rules' names only.
// Most first opens of files outside the rules' directories are then decided
// without bpf_d_path and the walk and lookups of their path, most of their
// cost. The root of a mount (a bind-mounted file, a mount point) is named in
// its path by its mount point, not by its own name, and is never unnamed.
//
// Directory rules also match by the inodes of a file's ancestors (dir_walk):
// a protected directory reached through a bind mount, or renamed. The
// ancestors tested are a superset of both the path's components and the
// dentries dir_walk visits: every dentry up to the root of the file's
// filesystem (not only of its mount), then every mount point above and its
// ancestors. A renamed directory no longer has the name the filter holds:
// the filter holds for a workload only while ward_epoch[1], bumped by every
// rename of a directory of a name some filter holds before the rename
// happens (path_rename, moved), still has the value user space read before it
// looked the rules' directories up (a name is in ward_config.names before
// that). It is read again after the walk, so that a rename during it is seen.
//
// A file some name of which has its bit is resolved, but the walk tells
// dir_walk more: a dentry whose inode is a rule directory's key has that
// directory's name (or the mounted root's, which the filter holds too, or it
// was renamed, which the count shows), so dir_walk need look up only the
// steps whose names have their bits (s->dsteps). Each step it skips saves
// two hash lookups and four helper reads. With directory rules the walk
// then goes on past the first name with its bit, to the root.
//
// Inlined, with direct loads inside the file's filesystem: until the
// per-byte walk (walk_byte) took file_open from 85 % of the verifier's limit
// of processed instructions to 17 %, the name test had to be a global
// function taking scalars, which read the file with BPF_CORE_READ (a helper
// call per pointer) and looked the workload up again.
static __always_inline bool unnamed(const struct wl *wl, struct file *file, struct inode *inode, __u64 epochs,
				    struct vfsmount *root_mnt, struct scratch *s)
{
	__u32 names_epoch = epochs >> 32;
	if (wl->flags & (WF_PATTERNS | WF_SOURCE_RULES | WF_ALLOW_GLOBAL | WF_ALLOW_SOURCES))
		return false;
	const struct wl_val *v = wl->v;
	struct dentry *d = file->f_path.dentry;
	struct vfsmount *fmnt = file->f_path.mnt;
	if (d == fmnt->mnt_root)
		return false;
	// Where a name has its bit, dir_walk must look the dentry up: every
	// other step is skipped (s->dsteps) when the walk completes.
	__u64 hits = named(v, name_key(d));
	if (hits && v->name_keys && !name_listed(wl, d))
		hits = 0;
	if (hits && !wl->dir_inodes)
		return false;
	if (wl->dir_depths) {
		if (v->names_epoch != names_epoch)
			return false;
		// The root of the filesystem is named "/" and never in a path:
		// left to the tests below, for the files where it can matter.
		// rootstep is the root's step of dir_walk: when a directory's
		// entry (dnames) spares the walk, its depth is not known, and
		// every step above the file stands for it.
		// The entry is made only when one can be written (below): a
		// directory below a rule's name never has one, and its files pay
		// a lookup that finds no storage.
		struct dentry *p = d->d_parent;
		struct inode *dir = p->d_inode;
		s->nkey = ((__u64)wl->gen << 32) | (__u32)epochs;
		struct icache *dn = bpf_inode_storage_get(&dirs, dir, 0, 0);
		if (dn && *(volatile __u64 *)&dn->names == s->nkey) {
			count(s, 3);
			// Nothing walked, nothing named, no mount above: decided by the
			// word alone, as a file's entry decides by the epoch check_path
			// read first, with no second read of the count (below).
			if (!hits && fmnt == root_mnt)
				goto own;
			s->nkey = 0;
			d = d->d_sb->s_root;
			s->rootstep = ~1ULL;
		} else if (dn && !hits && (inode->i_mode & S_IFMT) == S_IFREG && dir_clear(dn, s, (__u64)fmnt, wl->cgroup, wl->gen)) {
			// Where an ancestor has a name with its bit, a directory's path
			// entry (dpaths) may vouch for the directory and its ancestors:
			// for a regular file only, as a directory's own inode may be a
			// rule's key. The file's type is read here and below, not before
			// the word above: an open the word decides saves the load (10
			// guest ns, BenchmarkHookCost).
			count(s, 4);
			goto own;
		} else {
			// Without one, check_path may write it once it resolved the path.
			if ((inode->i_mode & S_IFMT) == S_IFREG)
				dir_prepare(file, s);
			int i;
			for (i = 0; i < NAME_WALK; i++) {
				d = p;
				p = d->d_parent;
				if (p == d)
					break;
				hits |= (__u64)dir_named(v, name_key(d)) << (i + 1);
			}
			if (i == NAME_WALK)
				return false;
			s->rootstep = 1ULL << (i + 1);
			if ((hits >> 1) || d != d->d_sb->s_root)
				s->nkey = 0;
		}
		// d is the root of the file's filesystem, step rootstep of
		// dir_walk. The steps are kept in the scratch buffer:
		// check_path's frame has no room left. A file of the root mount
		// no name of which has its bit (most first opens) tests nothing
		// more.
		if (hits) {
			s->dsteps = hits | (dir_named(v, name_key(d)) ? s->rootstep : 0);
		} else if (fmnt != root_mnt) {
			// A file in the task's root mount (not chrooted: the root of
			// its namespace) has no mount above it. Another file's
			// filesystem may be mounted on a rule's directory too, whose
			// inode key is this root's: its name "/" is then in the filter
			// (translate.go's mountedName), which only a file outside the
			// root mount's filesystem tests.
			if (dir_named(v, name_key(d))) {
				s->dsteps = s->rootstep;
				hits = 1;
			} else {
				s->mnt = (__u64)container_of(fmnt, struct mount, mnt);
				if (!mounts_clear(v)) {
					// Named above the file's filesystem, where dir_walk
					// does not go: no step of it to look up.
					s->dsteps = 0;
					hits = 1;
				}
			}
		}
		// Read again, so that a rename during the walk is seen; with the
		// entry's generation, the steps hold: otherwise dir_walk looks
		// every step up.
		__u32 zero = 0;
		struct epochs *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
		if (!ep || *(volatile __u32 *)&ep->names != names_epoch) {
			s->dsteps = ~0ULL;
			return false;
		}
		if (*(volatile __u32 *)&v->gen != wl->gen) {
			if (hits)
				s->dsteps = ~0ULL;
		} else if (s->nkey) {
			dn = bpf_inode_storage_get(&dirs, dir, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (dn)
				dn->names = s->nkey;
		}
	}
own:
	if (hits)
		return false;
	if (wl->flags & WF_INODES) {
		__u64 ih = ((__u64)inode->i_sb->s_dev << 32) ^ inode->i_ino;
		if (key_counted(INODE_SLOT(ih))) {
			struct rule_key key = {
				.cgroup = wl->cgroup,
				.hash = ih,
				.gen = wl->gen,
				.op = OP_FILE,
				.kind = KIND_INODE,
			};
			if (bpf_map_lookup_elem(&rules, &key))
				return false;
		}
	}
	// The entry was read in place: a preallocated hash map may reuse it for
	// another generation meanwhile (generations are never reused).
	return *(volatile __u32 *)&v->gen == wl->gen;
}

// ROOT_STACK bounds the mounts a task's root may be stacked on.
#define ROOT_STACK 4

// at_ns_root says whether paths from the root of mount rmnt are the paths from
// the root of the mount namespace whose root mount is nsroot: rmnt is mounted
// on nsroot's root, or on the root of a mount that is, and so on. An
// initramfs's switch_root moves the real root onto its own, and runc's
// pivot_root puts a container's root there, so that is where every process's
// root is but in an initramfs. The mount's fields are read with helpers:
// container_of is refused on a kernel pointer.
static __always_inline bool at_ns_root(struct vfsmount *rmnt, struct mount *nsroot)
{
	struct mount *m = (void *)((__u64)rmnt - bpf_core_field_offset(struct mount, mnt));
	struct dentry *root = nsroot->mnt.mnt_root;
#pragma unroll
	for (int i = 0; i < ROOT_STACK; i++) {
		struct mount *parent;
		struct dentry *point;
		// One helper call for both where they are neighbours (6.1 and
		// every kernel since): the test is a constant once relocated.
		__u32 po = bpf_core_field_offset(struct mount, mnt_parent);
		if (bpf_core_field_offset(struct mount, mnt_mountpoint) == po + 8) {
			struct {
				struct mount *parent;
				struct dentry *point;
			} pp = {};
			bpf_probe_read_kernel(&pp, sizeof(pp), (void *)m + po);
			parent = pp.parent;
			point = pp.point;
		} else {
			parent = BPF_CORE_READ(m, mnt_parent);
			point = BPF_CORE_READ(m, mnt_mountpoint);
		}
		if (parent == nsroot)
			return point == root;
		if (!parent || parent == m || point != BPF_CORE_READ(parent, mnt.mnt_root))
			return false;
		m = parent;
	}
	return false;
}

// at_ns_root_now is at_ns_root for the task whose mount table check_path
// read into s->mounts, answered from the CPU's last answer when it was for
// the same root mount and mount table: its helper reads cost about 120 guest
// ns of every open the per-inode cache does not decide (BenchmarkHookCost),
// and what they read changes only with the mount tree, which moves the
// table's event (a freed mount's address reused needs an unmount first).
static __always_inline bool at_ns_root_now(struct vfsmount *rmnt, struct mount *nsroot, struct scratch *s)
{
	if (s->nsr_mnt == (__u64)rmnt && s->nsr_mounts.ns == s->mounts.ns && s->nsr_mounts.event == s->mounts.event)
		return s->nsr_at;
	bool at = at_ns_root(rmnt, nsroot);
	s->nsr_mnt = (__u64)rmnt;
	s->nsr_mounts = s->mounts;
	s->nsr_at = at;
	return at;
}

// disconnected says whether an opened file's dentry is not linked below its
// directory: a file opened by its handle (open_by_handle_at) after its dentry
// was evicted gets a dentry of its own, its own parent, so neither its path nor
// its ancestors tell which rules apply. Pseudo files (a pipe reopened through
// /proc/self/fd) are their own parents too, but never marked disconnected.
// Kernel threads' opens (nfsd serves file handles) are not workloads'.
// Directories are left out: the kernel connects a directory it opens by its
// handle before the open (exportfs_decode_fh), and to do so opens each
// disconnected parent on the way to read its entries; denying those would
// fail every such open (ESTALE), however far from a rule.
static __always_inline bool disconnected(struct task_struct *t, struct file *file, struct dentry *dentry)
{
	return (dentry->d_flags & DCACHE_DISCONNECTED) && dentry->d_parent == dentry &&
	       dentry != file->f_path.mnt->mnt_root && !(t->flags & PF_KTHREAD) &&
	       (file->f_inode->i_mode & S_IFMT) != S_IFDIR;
}

static __always_inline void walk_init(struct walk *w, struct wl *wl, struct scratch *s, __u8 op, __u32 start)
{
	__builtin_memset(w, 0, sizeof(*w));
	w->s = s;
	w->start = start;
	w->cgroup = wl->cgroup;
	w->gen = wl->gen;
	w->op = op;
	w->h = FNV_OFFSET;
	w->base = FNV_OFFSET;
	w->dfa = !!(wl->flags & WF_PATTERNS);
	w->dir_depths = wl->dir_depths;
	w->v = wl->v;
}

// who reads what a verdict compares besides the rules: the task's fsuid, the
// owner of the file (a file about to be created will belong to its creator;
// in file_open the inode is the file's, a pointer the program may read
// directly) and whether the task has a terminal.
static __always_inline void who(struct task_struct *t, struct file *file, struct inode *inode, __u32 *fsuid,
				__u32 *owner, bool *tty)
{
	__u32 uid = t->cred->fsuid.val;
	*fsuid = uid;
	*owner = file ? inode->i_uid.val : inode ? BPF_CORE_READ(inode, i_uid.val) : uid;
	*tty = has_tty(t);
}

// check_path decides a file or process access to the path in s->path at
// w->start (n: its length, or a negative errno when it could not be resolved).
// in_file_open says whether bpf_d_path may be used for the source; cache,
// whether file may have a per-inode entry (cacheable), as file_open found;
// op, the operation. The other hooks set w up (walk_init) before the call;
// file_open leaves it to check_path, which sets it up at resolved, where a
// resolved path and a cached decision both pass: a first open that unnamed
// decides never touches it (the memset and stores cost about 30 guest ns).
// One place, not one per way in: with a copy of the set-up for the cached
// decision the verifier processed 277,161 instructions of file_open, with
// one 185,135 (TestVerifierHeadroom).
static __always_inline int check_path(struct wl *wl, struct walk *w, struct scratch *s, long n, bool write,
				      struct inode *inode, struct dentry *dentry, bool in_file_open, struct file *file,
				      bool cache, __u8 op)
{
	struct task_struct *t = bpf_get_current_task_btf();
	s->dsteps = ~0ULL; // unnamed may narrow it
	// The task's fsuid and terminal and the file's owner are read where a
	// verdict needs them (who): not by an open unnamed decides.
	__u32 fsuid, owner;
	bool tty;
	__u32 flags = write ? EF_WRITE : 0;

	__u64 src = 0;
	if (wl->flags & (WF_SOURCE_RULES | WF_ALLOW_SOURCES)) {
		src = in_file_open ? source_hash(s) : source_inode();
		if (!src)
			flags |= EF_NO_SOURCE;
	}
	// Where file_open's walk starts in the path (build_path sets it).
	__u32 start = 0;
	bool cached = false;

	__u64 bits = 0, sbits = 0;
	struct icache *c = NULL;
	// Both epochs in one word (struct epochs), and the entry's moves, read
	// before the path is resolved and used when the entry is filled: kept in
	// the scratch buffer, off this frame.
	s->epochs = 0;
	s->moves = 0;
	s->dfill = 0;
	struct dentry *rdentry = NULL;
	struct vfsmount *rmnt = NULL;
	if (file) {
		// A task whose root is not its mount namespace's (chroot) sees paths
		// that bpf_d_path writes relative to that root: its path is built
		// from the mount tree instead, as the path hooks do, so that rules
		// name the same file whatever the task's root, and it never uses the
		// per-inode cache.
		// The root is the namespace's when it is the root of a mount that
		// is the namespace's root mount or stacked on its root (at_ns_root):
		// every process of a system booted through an initramfs, and of a
		// container. Direct loads first: a look at the root mount's parents
		// costs helper calls, paid only by opens the cache does not decide.
		// A root that is a detached mount (an open_tree clone, its own
		// parent) counts as chrooted: both ways of building its paths stop
		// at the clone's root.
		rmnt = t->fs->root.mnt;
		rdentry = t->fs->root.dentry;
		__u64 mnt = (__u64)file->f_path.mnt;
		bool chrooted = rdentry != rmnt->mnt_root;
		if (!chrooted) {
			// file_open: try the per-inode cache before resolving the path.
			// The epoch is read first: a rename after this read makes the
			// entry written below stale at once.
			__u32 zero = 0;
			__u64 *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
			__u64 epochs = ep ? *ep : 0;
			s->epochs = epochs;
			if (cache)
				c = bpf_inode_storage_get(&icache, inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
			// Read before the path, as the epoch: a rename of this file
			// after this read makes the entry written below stale at once.
			__u32 moves = c ? *(volatile __u32 *)&c->moves : 0;
			s->moves = moves;
			struct mnt_namespace *ns = t->nsproxy->mnt_ns;
			s->mounts = (struct mounts){.ns = ns->seq, .event = ns->event};
			// An entry is written only under a root that is its
			// namespace's (below), and what could make that root another
			// since bumps the epoch (move_mount, sb_mount, path_chroot):
			// a valid entry needs no look at the root's mount.
			// A disconnected file's entry holds its rules, but the event
			// could not name the file: decided below as unresolved.
			__u32 seq = c ? icache_seq(c) : 1;
			if (c && !(seq & 1) && icache_valid(c, wl, op, src, mnt, rdentry, rmnt, s->mounts, (__u32)epochs, moves) &&
			    !disconnected(t, file, dentry)) {
				bits = c->bits;
				sbits = c->sbits;
				__u32 cflags = c->flags;
				if (icache_same(c, seq)) {
					flags |= cflags;
					n = 1; // resolved later, only if an event needs the path
					cached = true; // past the walk, to the verdict
					goto resolved;
				}
				bits = sbits = 0;
			}
			struct mount *nsroot = ns->root;
			chrooted = (__u64)rmnt != (__u64)&nsroot->mnt && !at_ns_root_now(rmnt, nsroot, s);
		}
		// Decided as an unresolved path (fail closed where a Block rule
		// or an allow-list could apply), and never cached: an entry would
		// decide the file's later opens by path.
		if (disconnected(t, file, dentry)) {
			n = -ENOENT;
			goto resolved;
		}
		if (chrooted) {
			c = NULL;
			n = build_path(s, file->f_path.mnt, file->f_path.dentry, &start);
			goto resolved;
		}
		// A file no rule can name (unnamed) is permitted without its path,
		// and cached as such: bits of no rule.
		s->root = (__u64)rdentry;
		s->root_mnt = (__u64)rmnt;
		if (op == OP_FILE && unnamed(wl, file, inode, s->epochs, rmnt, s)) {
			count(s, 2);
			if (c)
				icache_fill(c, wl, op, src, mnt, rdentry, rmnt, s->mounts, (__u32)s->epochs, s->moves, 0, 0, 0);
			return 0;
		}
		n = bpf_d_path(&file->f_path, s->path, PATH_MAX);
	}
resolved:
	if (in_file_open)
		walk_init(w, wl, s, op, start);
	// Every caller's walk has its source here, set once.
	if (wl->flags & WF_SOURCE_RULES)
		w->src = src;
	who(t, file, inode, &fsuid, &owner, &tty);
	flags |= tty ? EF_TTY : 0;
	if (cached)
		goto decide;

	if (n <= 0) {
		// Fail closed wherever a Block or an allow-list could apply.
		if (wl->flags & (WF_BLOCK_RULES | WF_ALLOW_GLOBAL | WF_ALLOW_SOURCES)) {
			count(s, 1);
			return emit(w, wl, V_BLOCK, flags | EF_UNRESOLVED, owner, s, n, in_file_open, 0, 0, 0, -1, src, 0);
		}
		return 0;
	}

	s->fmask = ~0ULL;
	s->depth = 0;
	if (!w->dfa && w->op != OP_PROCESS) {
		// The fast walk's directory lookups (prefixes) keep their state
		// in the scratch buffer.
		s->pkey = (struct rule_key){.cgroup = w->cgroup, .gen = w->gen, .op = w->op, .kind = KIND_PATH};
		s->psrc = w->src;
		s->pbits = s->psbits = s->pdirect = s->psdirect = 0;
		s->pend = 0;
		s->pstart = w->start;
		bpf_loop(PATH_MAX / 8, walk_chunk, w, 0);
		prefixes(w->v);
		w->bits |= s->pbits;
		w->sbits |= s->psbits;
		w->last_direct = s->pdirect;
		w->last_sdirect = s->psdirect;
	} else
		bpf_loop(PATH_MAX, walk_byte, w, 0);
	// The last prefix was the parent directory: its direct rules apply.
	w->bits |= w->last_direct;
	w->sbits |= w->last_sdirect;
	s->anc = w->bits | w->sbits;
	if (w->dfa)
		w->bits |= w->accept;
	__u64 h = w->h;
	bits = w->bits;
	sbits = w->sbits;
	// Branch-free: the file's name (s->fmask) narrows the depths where its
	// path is looked up.
	__u64 fmask = s->fmask;
	__u32 depth = s->depth;
	bool exact = (wl->exact_depths & fmask) & depth_bit(depth);
	bool self = (wl->dir_depths & fmask) & depth_bit(depth + 1);
	struct rule_val *v;
	// The path itself.
	if (exact) {
		v = lookup(w, KIND_PATH, h, 0);
		if (v)
			bits |= v->exact;
	}
	// The path as a directory: directory rules cover the directory itself.
	__u64 hdir = (h ^ '/') * FNV_PRIME;
	if (self) {
		v = lookup(w, KIND_PATH, hdir, 0);
		if (v)
			bits |= v->direct | v->recursive;
	}
	if (w->op == OP_PROCESS) {
		v = lookup(w, KIND_EXECNAME, w->base, 0);
		if (v)
			bits |= v->exact;
	}
	if (w->src) {
		v = exact ? lookup(w, KIND_PATH, h, w->src) : NULL;
		if (v)
			sbits |= v->exact;
		v = self ? lookup(w, KIND_PATH, hdir, w->src) : NULL;
		if (v)
			sbits |= v->direct | v->recursive;
		if (w->op == OP_PROCESS) {
			v = lookup(w, KIND_EXECNAME, w->base, w->src);
			if (v)
				sbits |= v->exact;
		}
	}
	// Hard links and renamed files: exact rules also name their inode.
	if ((wl->flags & WF_INODES) && inode) {
		__u64 ih = ((__u64)BPF_CORE_READ(inode, i_sb, s_dev) << 32) ^ BPF_CORE_READ(inode, i_ino);
		__u64 before = bits, sbefore = sbits;
		v = lookup(w, KIND_INODE, ih, 0);
		if (v)
			bits |= v->exact;
		if (w->src) {
			v = lookup(w, KIND_INODE, ih, w->src);
			if (v)
				sbits |= v->exact;
		}
		if (bits != before || sbits != sbefore)
			flags |= EF_INODE;
	}
	// Directory rules by the inodes of the file's ancestors, so that another
	// path to the same dentry (bind mount, renamed ancestor) is decided alike.
	// Branch-free for the verifier: a workload without such keys walks
	// zero steps, and the flag is computed, not branched on.
	s->dentry = (__u64)dentry;
	s->dsrc = w->src;
	dir_walk(w->cgroup, w->gen, w->op | (DIR_WALK * wl->dir_inodes) << 8);
	__u64 dbits = s->dbits, dsbits = s->dsbits;
	__u64 extra = (dbits & ~bits) | (dsbits & ~sbits);
	flags |= (__u32)((extra | -extra) >> 63) * EF_DIRINODE;
	bits |= dbits;
	sbits |= dsbits;
	// Nothing from the directory's path, its ancestors' or their inodes:
	// its other files' first opens need test only their own names.
	if (file && s->dfill && !(s->anc | dbits | dsbits))
		dir_fill(file, wl->cgroup, wl->gen, s);
	if (c)
		icache_fill(c, wl, w->op, src, (__u64)file->f_path.mnt, rdentry, rmnt, s->mounts, (__u32)s->epochs, s->moves,
			    bits, sbits,
			    flags & (EF_INODE | EF_DIRINODE));
decide:;
	__u64 perm = permitted(write, owner == fsuid, tty);
	// Specific before general: the rules limited to this source decide first.
	int vd = verdict(sbits, perm);
	if (vd < 0)
		vd = verdict(bits, perm);
	if (vd == V_ALLOW)
		return 0;
	if (w->mode != MODE_OPEN && vd != V_BLOCK)
		return 0;
	if (vd < 0) {
		if (!allow_listed(w, wl->flags, src))
			return 0;
		vd = (wl->flags & WF_POSTURE_BLOCK) ? V_BLOCK : V_AUDIT;
		flags |= EF_POSTURE;
	}
	if (cached && file) {
		w->start = 0;
		n = bpf_d_path(&file->f_path, s->path, PATH_MAX);
	}
	return emit(w, wl, vd, flags, owner, s, n, in_file_open, 0, 0, 0, -1, src, 0);
}

// passes says whether the per-inode cache permits this open of file (op) by
// workload (cgroup, gen) at once: the entry passes (icache.pass) and
// icache_valid holds. A file opened again by the same workload, with no rule
// that names it, is the most frequent open; the rest of check_path (the
// scratch buffer, the task's credentials and terminal, the verdicts) costs
// as much again as the entry.
//
// Inlined. It was a function of its own while file_open's frame, with its
// callbacks', sat at the verifier's 512 bytes (416 bytes of its own). Since
// check_path reads less before unnamed (who, dir_clear), the frame is 392
// bytes with passes and dir_clear inlined or not, and the call cost about
// 30 guest ns of every cached open (BenchmarkHookCost, 605 → 575 with
// dir_clear inlined too).
static __always_inline bool passes(struct file *file, __u8 op, __u64 cgroup, __u32 gen)
{
	struct icache *c = bpf_inode_storage_get(&icache, file->f_inode, 0, 0);
	if (!c)
		return false;
	__u32 seq = icache_seq(c);
	if ((seq & 1) || !c->pass)
		return false;
	struct task_struct *t = bpf_get_current_task_btf();
	// A passing entry's source is 0 (no fromSource rule). No look at the
	// root's mount: an entry is written only under a root that is its
	// namespace's, and what could change that since bumps the epoch.
	return icache_valid_now(c, t, file, op, cgroup, gen, c->moves) && !disconnected(t, file, file->f_path.dentry) &&
	       icache_same(c, seq);
}

SEC("lsm/file_open")
int BPF_PROG(ward_file_open, struct file *file, int ret)
{
	// An earlier LSM's denial stands.
	if (ret != 0)
		return ret;

	// An open for exec (execve, uselib) is a process access: the acting
	// executable is the one performing the exec, which is current here.
	__u8 op = (file->f_flags & __FMODE_EXEC) ? OP_PROCESS : OP_FILE;
	struct wl wl;
	if (find_workload(op, &wl))
		return 0;
	bool cache = cacheable(file->f_inode);
	if (cache && passes(file, op, wl.cgroup, wl.gen))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct walk w; // set up by check_path
	bool write = op == OP_FILE && (file->f_mode & FMODE_WRITE);
	return check_path(&wl, &w, s, 0, write, file->f_inode, file->f_path.dentry, true, file, cache, op);
}

// bump_epoch invalidates the whole per-inode cache (i 0) or the workloads'
// names filters (i 1): called for every rename of a directory on the system,
// whatever the workload.
static __always_inline void bump_epoch(__u32 i)
{
	__u32 zero = 0;
	struct epochs *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
	if (!ep)
		return;
	if (i)
		__sync_fetch_and_add(&ep->names, 1);
	else
		__sync_fetch_and_add(&ep->files, 1);
}

// moved invalidates the per-inode cache entry of the inode behind dentry,
// whose names a rename, link or unlink is changing (none for a negative
// dentry): its other entries, and every other inode's, stay valid, so a
// node busy with temporary files and atomic replaces keeps its cache. A
// directory's rename changes the paths of everything below it: the whole
// cache goes (bump_epoch). Called for every such change on the system,
// whatever the workload.
static __always_inline void moved(struct dentry *dentry)
{
	struct inode *inode = dentry->d_inode;
	if (!inode)
		return;
	if ((inode->i_mode & S_IFMT) == S_IFDIR) {
		bump_epoch(0);
		// A directory of a name some names filter holds: the filters no
		// longer say where it is (unnamed).
		__u32 zero = 0;
		struct config *cfg = bpf_map_lookup_elem(&ward_config, &zero);
		__u32 b = (name_key(dentry) * 0x9E3779B97F4A7C15ULL) >> 52;
		if (!cfg || (cfg->names[(b >> 6) & (NAME_WORDS - 1)] & (1ULL << (b & 63))))
			bump_epoch(1);
		return;
	}
	struct icache *c = bpf_inode_storage_get(&icache, inode, 0, 0);
	if (c)
		__sync_fetch_and_add(&c->moves, 1);
}

// check_write decides a modification of (mnt, dentry).
static __always_inline int check_write(struct vfsmount *mnt, struct dentry *dentry)
{
	struct wl wl;
	if (find_workload(OP_FILE, &wl))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	__u32 start = 0;
	long n = build_path(s, mnt, dentry, &start);
	struct walk w;
	walk_init(&w, &wl, s, OP_FILE, start);
	return check_path(&wl, &w, s, n, true, BPF_CORE_READ(dentry, d_inode), dentry, false, NULL, false, OP_FILE);
}

#define PROT_EXEC 0x4
#define MAY_WRITE 0x2
#define MAY_READ 0x4
#define MAY_APPEND 0x8

// check_file decides a mapping or a read or write of an open file by its path
// built from the mount tree (bpf_d_path is refused in these hooks).
static __always_inline int check_file(struct wl *wl, __u8 op, __u32 mode, struct file *file, bool write)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	__u32 start = 0;
	long n = build_path(s, file->f_path.mnt, file->f_path.dentry, &start);
	struct walk w;
	walk_init(&w, wl, s, op, start);
	w.mode = mode;
	return check_path(wl, &w, s, n, write, file->f_inode, file->f_path.dentry, false, NULL, false, op);
}

// mmap_file: mapping a file for execution is running its code. The dynamic
// loader (ld.so /path/prog) opens a program for reading and maps it without
// exec, so a blocked program's process rule is checked here too. The
// program the task is executing (mapped by the kernel at exec, after the
// exec check) is not checked again: its source would be itself.
SEC("lsm/mmap_file")
int BPF_PROG(ward_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	if (ret != 0)
		return ret;
	if (!file || !(prot & PROT_EXEC))
		return 0;
	struct wl wl;
	if (find_workload(OP_PROCESS, &wl))
		return 0;
	if (!(wl.flags & WF_BLOCK_RULES))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct mm_struct *mm = t->mm;
	if (mm && mm->exe_file && mm->exe_file->f_inode == file->f_inode)
		return 0;
	return check_file(&wl, OP_PROCESS, MODE_MAP, file, false);
}

// file_permission: every read and write through a descriptor. A descriptor
// opened before the rule (before Ward started, or inherited from such a
// process) never passed file_open's check; this closes it for Block rules.
// It returns at once unless the task's workload has file Block rules, and
// for anything but a regular file. A file that file_open cached for this
// workload, root, source and mount is decided from the cache; the path is
// resolved only for a file the cache does not know, or to report a Block.
SEC("lsm/file_permission")
int BPF_PROG(ward_file_permission, struct file *file, int mask, int ret)
{
	if (ret != 0)
		return ret;
	if (!(mask & (MAY_READ | MAY_WRITE | MAY_APPEND)))
		return 0;
	// Regular files only; a program the kernel reads to execute it (opened
	// for exec) is a process access, decided at exec. Checked before the
	// workload lookup: every read and write of a socket or a pipe passes here.
	struct inode *inode = file->f_inode;
	if ((inode->i_mode & S_IFMT) != S_IFREG || (file->f_flags & __FMODE_EXEC))
		return 0;
	struct wl wl;
	if (find_workload(OP_FILE, &wl))
		return 0;
	if (!(wl.flags & WF_BLOCK_RULES))
		return 0;
	bool write = (mask & (MAY_WRITE | MAY_APPEND)) != 0;
	struct icache *c = bpf_inode_storage_get(&icache, inode, 0, 0);
	if (c && !(wl.flags & (WF_SOURCE_RULES | WF_ALLOW_SOURCES))) {
		struct task_struct *t = bpf_get_current_task_btf();
		__u32 seq = icache_seq(c);
		if (!(seq & 1) && icache_valid_now(c, t, file, OP_FILE, wl.cgroup, wl.gen, c->moves)) {
			// A passing entry permits every access: no verdict to compute.
			if (c->pass && icache_same(c, seq))
				return 0;
			__u64 bits = c->bits;
			__u32 fsuid = t->cred->fsuid.val;
			__u64 perm = permitted(write, inode->i_uid.val == fsuid, has_tty(t));
			if (icache_same(c, seq) && verdict(bits, perm) != V_BLOCK)
				return 0;
		}
	}
	return check_file(&wl, OP_FILE, MODE_RW, file, write);
}

SEC("lsm/path_unlink")
int BPF_PROG(ward_path_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret != 0)
		return ret;
	moved(dentry);
	return check_write(BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_rmdir")
int BPF_PROG(ward_path_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_mkdir")
int BPF_PROG(ward_path_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(dir, mnt), dentry);
}

// path_mknod also guards open(O_CREAT) of a new file.
SEC("lsm/path_mknod")
int BPF_PROG(ward_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode, unsigned int dev, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_symlink")
int BPF_PROG(ward_path_symlink, const struct path *dir, struct dentry *dentry, const char *old_name, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(dir, mnt), dentry);
}

// A hard link to a protected file would be a new name for it: the link is
// a modification of the target as well as of the new name.
SEC("lsm/path_link")
int BPF_PROG(ward_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry, int ret)
{
	if (ret != 0)
		return ret;
	moved(old_dentry);
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	int r = check_write(mnt, old_dentry);
	if (r)
		return r;
	return check_write(mnt, new_dentry);
}

SEC("lsm/path_rename")
int BPF_PROG(ward_path_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret != 0)
		return ret;
	int r = check_write(BPF_CORE_READ(old_dir, mnt), old_dentry);
	if (r)
		return r;
	r = check_write(BPF_CORE_READ(new_dir, mnt), new_dentry);
	if (r)
		return r;
	// Only a rename Ward lets through moves anything: a denied attempt on a
	// protected directory must not turn the names filters off. Still before
	// the rename happens. new_dentry's inode, when there is one, is replaced
	// (it loses this name) or, with RENAME_EXCHANGE, takes old_dentry's place.
	moved(old_dentry);
	moved(new_dentry);
	__u32 zero = 0;
	struct epochs *ep = bpf_map_lookup_elem(&ward_epoch, &zero);
	if (ep)
		__sync_fetch_and_add(&ep->renames, 1);
	return 0;
}

#define MS_MOVE 8192

// A mount moved elsewhere keeps its vfsmount, which per-inode cache entries
// name: the paths of all its files change, so the whole cache goes. mount(2)
// with MS_MOVE reaches sb_mount, move_mount(2) (also attaching a detached
// open_tree clone) move_mount. Neither decides anything: a move is checked by
// the rules of neither path (docs/bpflsm.md).
SEC("lsm/sb_mount")
int BPF_PROG(ward_sb_mount, const char *dev_name, const struct path *path, const char *type, unsigned long flags,
	     void *data, int ret)
{
	if (ret != 0)
		return ret;
	if (flags & MS_MOVE) {
		bump_epoch(0);
		bump_epoch(1);
	}
	return 0;
}

SEC("lsm/move_mount")
int BPF_PROG(ward_move_mount, const struct path *from_path, const struct path *to_path, int ret)
{
	if (ret != 0)
		return ret;
	bump_epoch(0);
	bump_epoch(1);
	return 0;
}

// A chroot to the root of a mount gives the task a root that per-inode cache
// entries may name (check_path: written while that mount's root was its
// namespace's), where the mount may no longer be: pivot_root leaves the old
// root mounted below the new one, whose paths now start elsewhere. Rare, so
// the whole cache goes; a chroot into a directory (sshd's, a build's) gives a
// root no entry names, and costs nothing.
SEC("lsm/path_chroot")
int BPF_PROG(ward_path_chroot, const struct path *path, int ret)
{
	if (ret != 0)
		return ret;
	if (path->dentry == path->mnt->mnt_root)
		bump_epoch(0);
	return 0;
}

SEC("lsm/path_chmod")
int BPF_PROG(ward_path_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry));
}

SEC("lsm/path_chown")
int BPF_PROG(ward_path_chown, const struct path *path, __u64 uid, __u64 gid, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry));
}

SEC("lsm/path_truncate")
int BPF_PROG(ward_path_truncate, const struct path *path, int ret)
{
	if (ret != 0)
		return ret;
	return check_write(BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry));
}

// code_verdict decides a network or capability access from its codes: the
// rules limited to the acting executable first, then the others.
static __always_inline int code_verdict(struct walk *w, __u32 kinds, __u64 *codes, int ncodes, __u64 perm)
{
	__u64 bits = 0, sbits = 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i >= ncodes)
			break;
		__u32 kind = 1U << ((codes[i] >> CODE_KIND_SHIFT) & 7);
		struct rule_val *v = (kinds & kind) ? lookup(w, KIND_CODE, codes[i], 0) : NULL;
		if (v)
			bits |= v->exact;
		if (w->src && (kinds & (kind << 8))) {
			v = lookup(w, KIND_CODE, codes[i], w->src);
			if (v)
				sbits |= v->exact;
		}
	}
	int vd = verdict(sbits, perm);
	return vd < 0 ? verdict(bits, perm) : vd;
}

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

// check_socket decides a network access by the socket's family, type and
// protocol, as policies name them.
static __always_inline int check_socket(int family, int type, int protocol, __u32 hook)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&ward_config, &zero);
	if (!cfg)
		return 0;
	int st = type & SOCK_TYPE_MASK;
	int proto = protocol;
	// The protocol the kernel picks for 0, as policies name it.
	if (proto == 0 && (family == AF_INET || family == AF_INET6)) {
		if (st == SOCK_STREAM)
			proto = 6;
		else if (st == SOCK_DGRAM)
			proto = 17;
	}
	// A socket whose family, type and protocol no rule names (config) is
	// decided here: every send and receive of the node passes this hook.
	// Numbers past the bitmaps are looked up.
	// The word index is hidden from clang: knowing proto < 256 it would drop
	// the mask the verifier needs to bound the read.
	__u32 word = (__u32)proto >> 6;
	asm volatile("" : "+r"(word));
	if ((__u32)family < 64 && (__u32)proto < 256 && !((cfg->families >> family) & 1) &&
	    !((cfg->types >> st) & 1) && !((cfg->protos[word & 3] >> (proto & 63)) & 1))
		return 0;
	struct wl wl;
	if (find_workload_in(cfg, OP_NETWORK, &wl))
		return 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct walk w;
	walk_init(&w, &wl, s, OP_NETWORK, 0);
	struct task_struct *t = bpf_get_current_task_btf();
	bool tty = has_tty(t);
	__u32 flags = tty ? EF_TTY : 0;
	__u64 src = 0;
	if (wl.flags & (WF_SOURCE_RULES | WF_ALLOW_SOURCES)) {
		src = source_inode();
		if (!src)
			flags |= EF_NO_SOURCE;
	}
	if (wl.flags & WF_SOURCE_RULES)
		w.src = src;
	__u64 codes[4] = {CODE(CODE_ALL, 0), CODE(CODE_TYPE, st), CODE(CODE_PROTO, proto), CODE(CODE_FAMILY, family)};
	// Only the kinds of code the workload has keys of are looked up.
	int vd = code_verdict(&w, wl.codes, codes, 4, permitted(false, true, tty));
	if (vd == V_ALLOW)
		return 0;
	if (vd < 0) {
		if (!allow_listed(&w, wl.flags, src))
			return 0;
		vd = (wl.flags & WF_POSTURE_BLOCK) ? V_BLOCK : V_AUDIT;
		flags |= EF_POSTURE;
	}
	return emit(&w, &wl, vd, flags, 0, s, 0, false, family, st, protocol, -1, src, hook);
}

SEC("lsm/socket_create")
int BPF_PROG(ward_socket_create, int family, int type, int protocol, int kern, int ret)
{
	if (ret != 0)
		return ret;
	if (kern)
		return 0;
	return check_socket(family, type, protocol, HOOK_CREATE);
}

// check_sock decides a use of an existing socket. Kernel sockets (used by
// the kernel on a task's behalf, e.g. a network filesystem) are not the
// task's own and are left alone, as socket_create's kern does.
static __always_inline int check_sock(struct socket *sock, __u32 hook)
{
	struct sock *sk = sock->sk;
	if (!sk)
		return 0;
	if (BPF_CORE_READ_BITFIELD(sk, sk_kern_sock))
		return 0;
	return check_socket(sk->__sk_common.skc_family, sk->sk_type, sk->sk_protocol, hook);
}

SEC("lsm/socket_connect")
int BPF_PROG(ward_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret != 0)
		return ret;
	return check_sock(sock, HOOK_CONNECT);
}

SEC("lsm/socket_accept")
int BPF_PROG(ward_socket_accept, struct socket *sock, struct socket *newsock, int ret)
{
	if (ret != 0)
		return ret;
	return check_sock(sock, HOOK_ACCEPT);
}

SEC("lsm/socket_bind")
int BPF_PROG(ward_socket_bind, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret != 0)
		return ret;
	return check_sock(sock, HOOK_BIND);
}

SEC("lsm/socket_listen")
int BPF_PROG(ward_socket_listen, struct socket *sock, int backlog, int ret)
{
	if (ret != 0)
		return ret;
	return check_sock(sock, HOOK_LISTEN);
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(ward_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	if (ret != 0)
		return ret;
	return check_sock(sock, HOOK_SENDMSG);
}

SEC("lsm/socket_recvmsg")
int BPF_PROG(ward_socket_recvmsg, struct socket *sock, struct msghdr *msg, int size, int flags, int ret)
{
	if (ret != 0)
		return ret;
	return check_sock(sock, HOOK_RECVMSG);
}

SEC("lsm/capable")
int BPF_PROG(ward_capable, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts,
	     int ret)
{
	if (ret != 0)
		return ret;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&ward_config, &zero);
	if (!cfg)
		return 0;
	// A capability no rule names (config) is decided here: the kernel checks
	// capabilities on behalf of every process of the node.
	if ((__u32)cap < 64 && !((cfg->caps >> cap) & 1))
		return 0;
	struct wl wl;
	if (find_workload_in(cfg, OP_CAPABILITIES, &wl))
		return 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct walk w;
	walk_init(&w, &wl, s, OP_CAPABILITIES, 0);
	struct task_struct *t = bpf_get_current_task_btf();
	bool tty = has_tty(t);
	__u32 flags = tty ? EF_TTY : 0;
	__u64 src = 0;
	if (wl.flags & (WF_SOURCE_RULES | WF_ALLOW_SOURCES)) {
		src = source_inode();
		if (!src)
			flags |= EF_NO_SOURCE;
	}
	if (wl.flags & WF_SOURCE_RULES)
		w.src = src;
	__u64 codes[4] = {CODE(CODE_CAP, cap)};
	int vd = code_verdict(&w, wl.codes, codes, 1, permitted(false, true, tty));
	if (vd == V_ALLOW)
		return 0;
	if (vd < 0) {
		if (!allow_listed(&w, wl.flags, src))
			return 0;
		vd = (wl.flags & WF_POSTURE_BLOCK) ? V_BLOCK : V_AUDIT;
		flags |= EF_POSTURE;
	}
	return emit(&w, &wl, vd, flags, 0, s, 0, false, 0, 0, 0, cap, src, 0);
}
