// Package v1 holds the Go types of KubeArmor's policy kinds (group security.kubearmor.com,
// version v1) exactly as users write them. Field names and JSON tags follow KubeArmor's CRDs so
// that existing manifests decode unchanged; meaning (defaults, inheritance, validation) lives in
// internal/policy, not here.
// +kubebuilder:object:generate=true
// +groupName=security.kubearmor.com
package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Group and Version of every kind in this package.
const (
	Group   = "security.kubearmor.com"
	Version = "v1"
)

// Kind names as they appear in `kind:`.
const (
	KindPolicy        = "KubeArmorPolicy"
	KindClusterPolicy = "KubeArmorClusterPolicy"
	KindHostPolicy    = "KubeArmorHostPolicy"
	// KindNetworkPolicy is recognised so that it can be refused with a clear message: it is
	// KubeArmor's nftables firewall policy, a separate enforcer Ward does not implement.
	KindNetworkPolicy = "KubeArmorNetworkPolicy"
)

// Severity is KubeArmor's 1..10 scale; 0 means "not set here, inherit".
// +kubebuilder:validation:Minimum=1
// +kubebuilder:validation:Maximum=10
type Severity int

// ActionType is Allow, Audit or Block (KubeArmor's daemon also accepts other letter cases at the
// spec level; internal/policy normalises them).
//
// Ward accepts every letter case at every level (KubeArmor's CRD accepts only Allow, Audit and
// Block, so a real API server refused `action: block` that its daemon took). (?i) folds exactly as
// strings.EqualFold, which internal/policy uses.
// +kubebuilder:validation:Pattern=`^(?i)(allow|audit|block)$`
type ActionType string

// Tags are free-form labels carried into alerts.
type Tags []string

// SMTA are the four optional fields that appear on a spec, a section and a rule item; an item
// inherits each one it lacks from its section, then from the spec.
type SMTA struct {
	Severity Severity   `json:"severity,omitempty"`
	Tags     Tags       `json:"tags,omitempty"`
	Message  string     `json:"message,omitempty"`
	Action   ActionType `json:"action,omitempty"`
}

// MatchSourceType names the acting executable a rule is limited to.
type MatchSourceType struct {
	// +required
	// +kubebuilder:validation:Pattern=`^\/+[^\p{Cc}]*[^\/\p{Cc}]$`
	// +kubebuilder:validation:MaxLength=200
	Path string `json:"path,omitempty"`
}

// ProcessPathType is one entry of process.matchPaths.
// +kubebuilder:validation:XValidation:rule="has(self.path) != has(self.execname)",message="set path or execname, not both"
type ProcessPathType struct {
	// +kubebuilder:validation:Pattern=`^\/+[^\p{Cc}]*[^\/\p{Cc}]$`
	// +kubebuilder:validation:MaxLength=200
	Path string `json:"path,omitempty"`
	// +kubebuilder:validation:Pattern=`^[^\/\p{Cc}]+$`
	ExecName string `json:"execname,omitempty"`
	// +kubebuilder:validation:MaxItems=20
	AllowedArgs []string          `json:"allowedArgs,omitempty"`
	OwnerOnly   bool              `json:"ownerOnly,omitempty"`
	PTS         *bool             `json:"pts,omitempty"`
	FromSource  []MatchSourceType `json:"fromSource,omitempty"`
	SMTA        `json:",inline"`
}

// ProcessDirectoryType is one entry of process.matchDirectories.
type ProcessDirectoryType struct {
	// +kubebuilder:validation:Pattern=`^\/[^\p{Cc}]*$`
	Directory  string            `json:"dir"`
	Recursive  bool              `json:"recursive,omitempty"`
	OwnerOnly  bool              `json:"ownerOnly,omitempty"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// ProcessPatternType is one entry of process.matchPatterns.
type ProcessPatternType struct {
	// +kubebuilder:validation:Pattern=`^[^\p{Cc}]+$`
	Pattern   string `json:"pattern"`
	OwnerOnly bool   `json:"ownerOnly,omitempty"`
	SMTA      `json:",inline"`
}

// ProcessType is the process section.
type ProcessType struct {
	MatchPaths       []ProcessPathType      `json:"matchPaths,omitempty"`
	MatchDirectories []ProcessDirectoryType `json:"matchDirectories,omitempty"`
	MatchPatterns    []ProcessPatternType   `json:"matchPatterns,omitempty"`
	SMTA             `json:",inline"`
}

// FilePathType is one entry of file.matchPaths.
type FilePathType struct {
	// +kubebuilder:validation:Pattern=`^\/+[^\p{Cc}]*[^\/\p{Cc}]$`
	// +kubebuilder:validation:MaxLength=200
	Path       string            `json:"path"`
	ReadOnly   bool              `json:"readOnly,omitempty"`
	OwnerOnly  bool              `json:"ownerOnly,omitempty"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// FileDirectoryType is one entry of file.matchDirectories.
type FileDirectoryType struct {
	// +kubebuilder:validation:Pattern=`^\/[^\p{Cc}]*$`
	Directory  string            `json:"dir"`
	Recursive  bool              `json:"recursive,omitempty"`
	ReadOnly   bool              `json:"readOnly,omitempty"`
	OwnerOnly  bool              `json:"ownerOnly,omitempty"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// FilePatternType is one entry of file.matchPatterns.
type FilePatternType struct {
	// +kubebuilder:validation:Pattern=`^[^\p{Cc}]+$`
	Pattern   string `json:"pattern"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	OwnerOnly bool   `json:"ownerOnly,omitempty"`
	SMTA      `json:",inline"`
}

// FileType is the file section.
type FileType struct {
	MatchPaths       []FilePathType      `json:"matchPaths,omitempty"`
	MatchDirectories []FileDirectoryType `json:"matchDirectories,omitempty"`
	MatchPatterns    []FilePatternType   `json:"matchPatterns,omitempty"`
	SMTA             `json:",inline"`
}

// NetworkProtocolType is one entry of network.matchProtocols. Protocol may hold a comma list of
// protocol names and Linux address families (AF_RDS, in ASCII letters of either case).
type NetworkProtocolType struct {
	// +kubebuilder:validation:Pattern=`^[\t\n\v\f\r\x{85}\p{Z}]*([tT][cC][pP]|[uU][dD][pP]|[iI\x{130}][cC][mM][pP]|[iI\x{130}][cC][mM][pP][vV]6|[rR][aA][wW]|[sS][cC][tT][pP]|[sS][tT][rR][eE][aA][mM]|[dD][gG][rR][aA][mM]|[rR][dD][mM]|[sS][eE][qQ][pP][aA][cC][kK\x{212A}][eE][tT]|[dD][cC][cC][pP]|[pP][aA][cC][kK\x{212A}][eE][tT]|[aA][lL][lL]|[aA][fF]_([iI][eE][eE][eE]802154|[aA][pP][pP][lL][eE][tT][aA][lL][kK]|[bB][lL][uU][eE][tT][oO][oO][tT][hH]|[sS][eE][cC][uU][rR][iI][tT][yY]|[nN][eE][tT][bB][eE][uU][iI]|[nN][eE][tT][lL][iI][nN][kK]|[qQ][iI][pP][cC][rR][tT][rR]|[wW][aA][nN][pP][iI][pP][eE]|[aA][tT][mM][pP][vV][cC]|[aA][tT][mM][sS][vV][cC]|[bB][rR][iI][dD][gG][eE]|[dD][eE][cC][nN][eE][tT]|[eE][cC][oO][nN][eE][tT]|[nN][eE][tT][rR][oO][mM]|[pP][aA][cC][kK][eE][tT]|[pP][hH][oO][nN][eE][tT]|[iI][nN][eE][tT]6|[lL][oO][cC][aA][lL]|[pP][pP][pP][oO][xX]|[rR][oO][uU][tT][eE]|[rR][xX][rR][pP][cC]|[vV][sS][oO][cC][kK]|[aA][xX]25|[cC][aA][iI][fF]|[fF][iI][lL][eE]|[iI][nN][eE][tT]|[iI][rR][dD][aA]|[iI][sS][dD][nN]|[iI][uU][cC][vV]|[mM][cC][tT][pP]|[mM][pP][lL][sS]|[rR][oO][sS][eE]|[tT][iI][pP][cC]|[uU][nN][iI][xX]|[aA][lL][gG]|[aA][sS][hH]|[cC][aA][nN]|[iI][pP][xX]|[kK][cC][mM]|[kK][eE][yY]|[lL][lL][cC]|[nN][fF][cC]|[rR][dD][sS]|[sS][mM][cC]|[sS][nN][aA]|[xX]25|[xX][dD][pP]|[iI][bB]))[\t\n\v\f\r\x{85}\p{Z}]*(,[\t\n\v\f\r\x{85}\p{Z}]*([tT][cC][pP]|[uU][dD][pP]|[iI\x{130}][cC][mM][pP]|[iI\x{130}][cC][mM][pP][vV]6|[rR][aA][wW]|[sS][cC][tT][pP]|[sS][tT][rR][eE][aA][mM]|[dD][gG][rR][aA][mM]|[rR][dD][mM]|[sS][eE][qQ][pP][aA][cC][kK\x{212A}][eE][tT]|[dD][cC][cC][pP]|[pP][aA][cC][kK\x{212A}][eE][tT]|[aA][lL][lL]|[aA][fF]_([iI][eE][eE][eE]802154|[aA][pP][pP][lL][eE][tT][aA][lL][kK]|[bB][lL][uU][eE][tT][oO][oO][tT][hH]|[sS][eE][cC][uU][rR][iI][tT][yY]|[nN][eE][tT][bB][eE][uU][iI]|[nN][eE][tT][lL][iI][nN][kK]|[qQ][iI][pP][cC][rR][tT][rR]|[wW][aA][nN][pP][iI][pP][eE]|[aA][tT][mM][pP][vV][cC]|[aA][tT][mM][sS][vV][cC]|[bB][rR][iI][dD][gG][eE]|[dD][eE][cC][nN][eE][tT]|[eE][cC][oO][nN][eE][tT]|[nN][eE][tT][rR][oO][mM]|[pP][aA][cC][kK][eE][tT]|[pP][hH][oO][nN][eE][tT]|[iI][nN][eE][tT]6|[lL][oO][cC][aA][lL]|[pP][pP][pP][oO][xX]|[rR][oO][uU][tT][eE]|[rR][xX][rR][pP][cC]|[vV][sS][oO][cC][kK]|[aA][xX]25|[cC][aA][iI][fF]|[fF][iI][lL][eE]|[iI][nN][eE][tT]|[iI][rR][dD][aA]|[iI][sS][dD][nN]|[iI][uU][cC][vV]|[mM][cC][tT][pP]|[mM][pP][lL][sS]|[rR][oO][sS][eE]|[tT][iI][pP][cC]|[uU][nN][iI][xX]|[aA][lL][gG]|[aA][sS][hH]|[cC][aA][nN]|[iI][pP][xX]|[kK][cC][mM]|[kK][eE][yY]|[lL][lL][cC]|[nN][fF][cC]|[rR][dD][sS]|[sS][mM][cC]|[sS][nN][aA]|[xX]25|[xX][dD][pP]|[iI][bB]))[\t\n\v\f\r\x{85}\p{Z}]*)*$`
	Protocol   string            `json:"protocol"`
	PTS        *bool             `json:"pts,omitempty"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// DNSQueryType is one entry of network.matchDNSQueries. Domain may hold a comma list.
type DNSQueryType struct {
	// +kubebuilder:validation:Pattern=`^[\t\n\v\f\r\x{85}\p{Z}]*[^,\p{Z}\p{Cc}]+[\t\n\v\f\r\x{85}\p{Z}]*(,[\t\n\v\f\r\x{85}\p{Z}]*[^,\p{Z}\p{Cc}]+[\t\n\v\f\r\x{85}\p{Z}]*)*$`
	Domain     string            `json:"domain"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// NetworkType is the network section.
type NetworkType struct {
	MatchProtocols  []NetworkProtocolType `json:"matchProtocols,omitempty"`
	MatchDNSQueries []DNSQueryType        `json:"matchDNSQueries,omitempty"`
	SMTA            `json:",inline"`
}

// CapabilityType is one entry of capabilities.matchCapabilities. Capability may hold a comma list.
type CapabilityType struct {
	// +kubebuilder:validation:Pattern=`^[\t\n\v\f\r\x{85}\p{Z}]*([cC][aA][pP]_)?([cC][hH][oO][wW][nN]|[dD][aA][cC]_[oO][vV][eE][rR][rR][iI\x{130}][dD][eE]|[dD][aA][cC]_[rR][eE][aA][dD]_[sS][eE][aA][rR][cC][hH]|[fF][oO][wW][nN][eE][rR]|[fF][sS][eE][tT][iI\x{130}][dD]|[kK\x{212A}][iI\x{130}][lL][lL]|[sS][eE][tT][gG][iI\x{130}][dD]|[sS][eE][tT][uU][iI\x{130}][dD]|[sS][eE][tT][pP][cC][aA][pP]|[lL][iI\x{130}][nN][uU][xX]_[iI\x{130}][mM][mM][uU][tT][aA][bB][lL][eE]|[nN][eE][tT]_[bB][iI\x{130}][nN][dD]_[sS][eE][rR][vV][iI\x{130}][cC][eE]|[nN][eE][tT]_[bB][rR][oO][aA][dD][cC][aA][sS][tT]|[nN][eE][tT]_[aA][dD][mM][iI\x{130}][nN]|[nN][eE][tT]_[rR][aA][wW]|[iI\x{130}][pP][cC]_[lL][oO][cC][kK\x{212A}]|[iI\x{130}][pP][cC]_[oO][wW][nN][eE][rR]|[sS][yY][sS]_[mM][oO][dD][uU][lL][eE]|[sS][yY][sS]_[rR][aA][wW][iI\x{130}][oO]|[sS][yY][sS]_[cC][hH][rR][oO][oO][tT]|[sS][yY][sS]_[pP][tT][rR][aA][cC][eE]|[sS][yY][sS]_[pP][aA][cC][cC][tT]|[sS][yY][sS]_[aA][dD][mM][iI\x{130}][nN]|[sS][yY][sS]_[bB][oO][oO][tT]|[sS][yY][sS]_[nN][iI\x{130}][cC][eE]|[sS][yY][sS]_[rR][eE][sS][oO][uU][rR][cC][eE]|[sS][yY][sS]_[tT][iI\x{130}][mM][eE]|[sS][yY][sS]_[tT][tT][yY]_[cC][oO][nN][fF][iI\x{130}][gG]|[mM][kK\x{212A}][nN][oO][dD]|[lL][eE][aA][sS][eE]|[aA][uU][dD][iI\x{130}][tT]_[wW][rR][iI\x{130}][tT][eE]|[aA][uU][dD][iI\x{130}][tT]_[cC][oO][nN][tT][rR][oO][lL]|[sS][eE][tT][fF][cC][aA][pP]|[mM][aA][cC]_[oO][vV][eE][rR][rR][iI\x{130}][dD][eE]|[mM][aA][cC]_[aA][dD][mM][iI\x{130}][nN]|[sS][yY][sS][lL][oO][gG]|[wW][aA][kK\x{212A}][eE]_[aA][lL][aA][rR][mM]|[bB][lL][oO][cC][kK\x{212A}]_[sS][uU][sS][pP][eE][nN][dD]|[aA][uU][dD][iI\x{130}][tT]_[rR][eE][aA][dD]|[pP][eE][rR][fF][mM][oO][nN]|[bB][pP][fF]|[cC][hH][eE][cC][kK\x{212A}][pP][oO][iI\x{130}][nN][tT]_[rR][eE][sS][tT][oO][rR][eE])[\t\n\v\f\r\x{85}\p{Z}]*(,[\t\n\v\f\r\x{85}\p{Z}]*([cC][aA][pP]_)?([cC][hH][oO][wW][nN]|[dD][aA][cC]_[oO][vV][eE][rR][rR][iI\x{130}][dD][eE]|[dD][aA][cC]_[rR][eE][aA][dD]_[sS][eE][aA][rR][cC][hH]|[fF][oO][wW][nN][eE][rR]|[fF][sS][eE][tT][iI\x{130}][dD]|[kK\x{212A}][iI\x{130}][lL][lL]|[sS][eE][tT][gG][iI\x{130}][dD]|[sS][eE][tT][uU][iI\x{130}][dD]|[sS][eE][tT][pP][cC][aA][pP]|[lL][iI\x{130}][nN][uU][xX]_[iI\x{130}][mM][mM][uU][tT][aA][bB][lL][eE]|[nN][eE][tT]_[bB][iI\x{130}][nN][dD]_[sS][eE][rR][vV][iI\x{130}][cC][eE]|[nN][eE][tT]_[bB][rR][oO][aA][dD][cC][aA][sS][tT]|[nN][eE][tT]_[aA][dD][mM][iI\x{130}][nN]|[nN][eE][tT]_[rR][aA][wW]|[iI\x{130}][pP][cC]_[lL][oO][cC][kK\x{212A}]|[iI\x{130}][pP][cC]_[oO][wW][nN][eE][rR]|[sS][yY][sS]_[mM][oO][dD][uU][lL][eE]|[sS][yY][sS]_[rR][aA][wW][iI\x{130}][oO]|[sS][yY][sS]_[cC][hH][rR][oO][oO][tT]|[sS][yY][sS]_[pP][tT][rR][aA][cC][eE]|[sS][yY][sS]_[pP][aA][cC][cC][tT]|[sS][yY][sS]_[aA][dD][mM][iI\x{130}][nN]|[sS][yY][sS]_[bB][oO][oO][tT]|[sS][yY][sS]_[nN][iI\x{130}][cC][eE]|[sS][yY][sS]_[rR][eE][sS][oO][uU][rR][cC][eE]|[sS][yY][sS]_[tT][iI\x{130}][mM][eE]|[sS][yY][sS]_[tT][tT][yY]_[cC][oO][nN][fF][iI\x{130}][gG]|[mM][kK\x{212A}][nN][oO][dD]|[lL][eE][aA][sS][eE]|[aA][uU][dD][iI\x{130}][tT]_[wW][rR][iI\x{130}][tT][eE]|[aA][uU][dD][iI\x{130}][tT]_[cC][oO][nN][tT][rR][oO][lL]|[sS][eE][tT][fF][cC][aA][pP]|[mM][aA][cC]_[oO][vV][eE][rR][rR][iI\x{130}][dD][eE]|[mM][aA][cC]_[aA][dD][mM][iI\x{130}][nN]|[sS][yY][sS][lL][oO][gG]|[wW][aA][kK\x{212A}][eE]_[aA][lL][aA][rR][mM]|[bB][lL][oO][cC][kK\x{212A}]_[sS][uU][sS][pP][eE][nN][dD]|[aA][uU][dD][iI\x{130}][tT]_[rR][eE][aA][dD]|[pP][eE][rR][fF][mM][oO][nN]|[bB][pP][fF]|[cC][hH][eE][cC][kK\x{212A}][pP][oO][iI\x{130}][nN][tT]_[rR][eE][sS][tT][oO][rR][eE])[\t\n\v\f\r\x{85}\p{Z}]*)*$`
	Capability string            `json:"capability"`
	FromSource []MatchSourceType `json:"fromSource,omitempty"`
	SMTA       `json:",inline"`
}

// CapabilitiesType is the capabilities section.
type CapabilitiesType struct {
	MatchCapabilities []CapabilityType `json:"matchCapabilities,omitempty"`
	SMTA              `json:",inline"`
}

// SyscallFromSourceType limits a syscall rule to an executable path or a directory of them.
// +kubebuilder:validation:XValidation:rule="has(self.path) != has(self.dir)",message="set path or dir, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || !has(self.recursive) || !self.recursive",message="recursive applies only to dir"
type SyscallFromSourceType struct {
	// +kubebuilder:validation:Pattern=`^\/+[^\p{Cc}]*[^\/\p{Cc}]$`
	// +kubebuilder:validation:MaxLength=200
	Path string `json:"path,omitempty"`
	// +kubebuilder:validation:Pattern=`^\/[^\p{Cc}]*$`
	Directory string `json:"dir,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// SyscallMatchType is one entry of syscalls.matchSyscalls.
type SyscallMatchType struct {
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:items:Enum=read;write;open;close;stat;fstat;lstat;poll;lseek;mmap;mprotect;munmap;brk;rt_sigaction;rt_sigprocmask;rt_sigreturn;ioctl;pread64;pwrite64;readv;writev;access;pipe;select;sched_yield;mremap;msync;mincore;madvise;shmget;shmat;shmctl;dup;dup2;pause;nanosleep;getitimer;alarm;setitimer;getpid;sendfile;socket;connect;accept;sendto;recvfrom;sendmsg;recvmsg;shutdown;bind;listen;getsockname;getpeername;socketpair;setsockopt;getsockopt;clone;fork;vfork;execve;exit;wait4;kill;uname;semget;semop;semctl;shmdt;msgget;msgsnd;msgrcv;msgctl;fcntl;flock;fsync;fdatasync;truncate;ftruncate;getdents;getcwd;chdir;fchdir;rename;mkdir;rmdir;creat;link;unlink;symlink;readlink;chmod;fchmod;chown;fchown;lchown;umask;gettimeofday;getrlimit;getrusage;sysinfo;times;ptrace;getuid;syslog;getgid;setuid;setgid;geteuid;getegid;setpgid;getppid;getpgrp;setsid;setreuid;setregid;getgroups;setgroups;setresuid;getresuid;setresgid;getresgid;getpgid;setfsuid;setfsgid;getsid;capget;capset;rt_sigpending;rt_sigtimedwait;rt_sigqueueinfo;rt_sigsuspend;sigaltstack;utime;mknod;uselib;personality;ustat;statfs;fstatfs;sysfs;getpriority;setpriority;sched_setparam;sched_getparam;sched_setscheduler;sched_getscheduler;sched_get_priority_max;sched_get_priority_min;sched_rr_get_interval;mlock;munlock;mlockall;munlockall;vhangup;modify_ldt;pivot_root;_sysctl;prctl;arch_prctl;adjtimex;setrlimit;chroot;sync;acct;settimeofday;mount;umount2;swapon;swapoff;reboot;sethostname;setdomainname;iopl;ioperm;create_module;init_module;delete_module;get_kernel_syms;query_module;quotactl;nfsservctl;getpmsg;putpmsg;afs_syscall;tuxcall;security;gettid;readahead;setxattr;lsetxattr;fsetxattr;getxattr;lgetxattr;fgetxattr;listxattr;llistxattr;flistxattr;removexattr;lremovexattr;fremovexattr;tkill;time;futex;sched_setaffinity;sched_getaffinity;set_thread_area;io_setup;io_destroy;io_getevents;io_submit;io_cancel;get_thread_area;lookup_dcookie;epoll_create;epoll_ctl_old;epoll_wait_old;remap_file_pages;getdents64;set_tid_address;restart_syscall;semtimedop;fadvise64;timer_create;timer_settime;timer_gettime;timer_getoverrun;timer_delete;clock_settime;clock_gettime;clock_getres;clock_nanosleep;exit_group;epoll_wait;epoll_ctl;tgkill;utimes;vserver;mbind;set_mempolicy;get_mempolicy;mq_open;mq_unlink;mq_timedsend;mq_timedreceive;mq_notify;mq_getsetattr;kexec_load;waitid;add_key;request_key;keyctl;ioprio_set;ioprio_get;inotify_init;inotify_add_watch;inotify_rm_watch;migrate_pages;openat;mkdirat;mknodat;fchownat;futimesat;newfstatat;unlinkat;renameat;linkat;symlinkat;readlinkat;fchmodat;faccessat;pselect6;ppoll;unshare;set_robust_list;get_robust_list;splice;tee;sync_file_range;vmsplice;move_pages;utimensat;epoll_pwait;signalfd;timerfd_create;eventfd;fallocate;timerfd_settime;timerfd_gettime;accept4;signalfd4;eventfd2;epoll_create1;dup3;pipe2;inotify_init1;preadv;pwritev;rt_tgsigqueueinfo;perf_event_open;recvmmsg;fanotify_init;fanotify_mark;prlimit64;name_to_handle_at;open_by_handle_at;clock_adjtime;syncfs;sendmmsg;setns;getcpu;process_vm_readv;process_vm_writev;kcmp;finit_module;sched_setattr;sched_getattr;renameat2;seccomp;getrandom;memfd_create;kexec_file_load;bpf;execveat;userfaultfd;membarrier;mlock2;copy_file_range;preadv2;pwritev2;pkey_mprotect;pkey_alloc;pkey_free;statx;io_pgetevents;rseq;pidfd_send_signal;io_uring_setup;io_uring_enter;io_uring_register;open_tree;move_mount;fsopen;fsconfig;fsmount;fspick;pidfd_open;clone3;close_range;openat2;pidfd_getfd;faccessat2;process_madvise;epoll_pwait2;mount_setattr;quotactl_fd;landlock_create_ruleset;landlock_add_rule;landlock_restrict_self;memfd_secret;process_mrelease;futex_waitv;set_mempolicy_home_node
	Syscalls   []string                `json:"syscall,omitempty"`
	FromSource []SyscallFromSourceType `json:"fromSource,omitempty"`
	Severity   Severity                `json:"severity,omitempty"`
	Tags       Tags                    `json:"tags,omitempty"`
	Message    string                  `json:"message,omitempty"`
}

// SyscallMatchPathType is one entry of syscalls.matchPaths; Path is a file or a directory.
type SyscallMatchPathType struct {
	// Either a file or a directory (ending in "/"): any absolute path.
	// +required
	// +kubebuilder:validation:Pattern=`^\/[^\p{Cc}]*$`
	// +kubebuilder:validation:MaxLength=200
	Path      string `json:"path,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:items:Enum=read;write;open;close;stat;fstat;lstat;poll;lseek;mmap;mprotect;munmap;brk;rt_sigaction;rt_sigprocmask;rt_sigreturn;ioctl;pread64;pwrite64;readv;writev;access;pipe;select;sched_yield;mremap;msync;mincore;madvise;shmget;shmat;shmctl;dup;dup2;pause;nanosleep;getitimer;alarm;setitimer;getpid;sendfile;socket;connect;accept;sendto;recvfrom;sendmsg;recvmsg;shutdown;bind;listen;getsockname;getpeername;socketpair;setsockopt;getsockopt;clone;fork;vfork;execve;exit;wait4;kill;uname;semget;semop;semctl;shmdt;msgget;msgsnd;msgrcv;msgctl;fcntl;flock;fsync;fdatasync;truncate;ftruncate;getdents;getcwd;chdir;fchdir;rename;mkdir;rmdir;creat;link;unlink;symlink;readlink;chmod;fchmod;chown;fchown;lchown;umask;gettimeofday;getrlimit;getrusage;sysinfo;times;ptrace;getuid;syslog;getgid;setuid;setgid;geteuid;getegid;setpgid;getppid;getpgrp;setsid;setreuid;setregid;getgroups;setgroups;setresuid;getresuid;setresgid;getresgid;getpgid;setfsuid;setfsgid;getsid;capget;capset;rt_sigpending;rt_sigtimedwait;rt_sigqueueinfo;rt_sigsuspend;sigaltstack;utime;mknod;uselib;personality;ustat;statfs;fstatfs;sysfs;getpriority;setpriority;sched_setparam;sched_getparam;sched_setscheduler;sched_getscheduler;sched_get_priority_max;sched_get_priority_min;sched_rr_get_interval;mlock;munlock;mlockall;munlockall;vhangup;modify_ldt;pivot_root;_sysctl;prctl;arch_prctl;adjtimex;setrlimit;chroot;sync;acct;settimeofday;mount;umount2;swapon;swapoff;reboot;sethostname;setdomainname;iopl;ioperm;create_module;init_module;delete_module;get_kernel_syms;query_module;quotactl;nfsservctl;getpmsg;putpmsg;afs_syscall;tuxcall;security;gettid;readahead;setxattr;lsetxattr;fsetxattr;getxattr;lgetxattr;fgetxattr;listxattr;llistxattr;flistxattr;removexattr;lremovexattr;fremovexattr;tkill;time;futex;sched_setaffinity;sched_getaffinity;set_thread_area;io_setup;io_destroy;io_getevents;io_submit;io_cancel;get_thread_area;lookup_dcookie;epoll_create;epoll_ctl_old;epoll_wait_old;remap_file_pages;getdents64;set_tid_address;restart_syscall;semtimedop;fadvise64;timer_create;timer_settime;timer_gettime;timer_getoverrun;timer_delete;clock_settime;clock_gettime;clock_getres;clock_nanosleep;exit_group;epoll_wait;epoll_ctl;tgkill;utimes;vserver;mbind;set_mempolicy;get_mempolicy;mq_open;mq_unlink;mq_timedsend;mq_timedreceive;mq_notify;mq_getsetattr;kexec_load;waitid;add_key;request_key;keyctl;ioprio_set;ioprio_get;inotify_init;inotify_add_watch;inotify_rm_watch;migrate_pages;openat;mkdirat;mknodat;fchownat;futimesat;newfstatat;unlinkat;renameat;linkat;symlinkat;readlinkat;fchmodat;faccessat;pselect6;ppoll;unshare;set_robust_list;get_robust_list;splice;tee;sync_file_range;vmsplice;move_pages;utimensat;epoll_pwait;signalfd;timerfd_create;eventfd;fallocate;timerfd_settime;timerfd_gettime;accept4;signalfd4;eventfd2;epoll_create1;dup3;pipe2;inotify_init1;preadv;pwritev;rt_tgsigqueueinfo;perf_event_open;recvmmsg;fanotify_init;fanotify_mark;prlimit64;name_to_handle_at;open_by_handle_at;clock_adjtime;syncfs;sendmmsg;setns;getcpu;process_vm_readv;process_vm_writev;kcmp;finit_module;sched_setattr;sched_getattr;renameat2;seccomp;getrandom;memfd_create;kexec_file_load;bpf;execveat;userfaultfd;membarrier;mlock2;copy_file_range;preadv2;pwritev2;pkey_mprotect;pkey_alloc;pkey_free;statx;io_pgetevents;rseq;pidfd_send_signal;io_uring_setup;io_uring_enter;io_uring_register;open_tree;move_mount;fsopen;fsconfig;fsmount;fspick;pidfd_open;clone3;close_range;openat2;pidfd_getfd;faccessat2;process_madvise;epoll_pwait2;mount_setattr;quotactl_fd;landlock_create_ruleset;landlock_add_rule;landlock_restrict_self;memfd_secret;process_mrelease;futex_waitv;set_mempolicy_home_node
	Syscalls   []string                `json:"syscall,omitempty"`
	FromSource []SyscallFromSourceType `json:"fromSource,omitempty"`
	Severity   Severity                `json:"severity,omitempty"`
	Tags       Tags                    `json:"tags,omitempty"`
	Message    string                  `json:"message,omitempty"`
}

// SyscallsType is the syscalls section. It has no action: syscall rules only ever audit.
type SyscallsType struct {
	MatchSyscalls []SyscallMatchType     `json:"matchSyscalls,omitempty"`
	MatchPaths    []SyscallMatchPathType `json:"matchPaths,omitempty"`
	Severity      Severity               `json:"severity,omitempty"`
	Tags          Tags                   `json:"tags,omitempty"`
	Message       string                 `json:"message,omitempty"`
}

// PresetType switches on one of KubeArmor's canned protections.
type PresetType struct {
	// +kubebuilder:validation:Enum=protectEnv;filelessExec;exec;protectProc;anonymousMapExec
	Name   string     `json:"name"`
	Action ActionType `json:"action,omitempty"`
}

// DeviceMatchType is one entry of device.matchDevice (USB devices, host policies only).
type DeviceMatchType struct {
	// +kubebuilder:validation:MinLength=1
	Class string `json:"class"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	SubClass *int32 `json:"subClass,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	Protocol *int32 `json:"protocol,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	Level *int32 `json:"level,omitempty"`
	SMTA  `json:",inline"`
}

// DeviceType is the device section.
type DeviceType struct {
	MatchDevice []DeviceMatchType `json:"matchDevice,omitempty"`
	SMTA        `json:",inline"`
}

// SelectorRequirement is one matchExpressions entry: Key `label` or `namespace`, Operator `In` or
// `NotIn`, Values such as `app=nginx` (labels) or `prod` (namespaces).
type SelectorRequirement struct {
	// +kubebuilder:validation:Enum=label;namespace
	Key string `json:"key"`
	// +kubebuilder:validation:Enum=In;NotIn
	Operator string `json:"operator"`
	// +required
	// +kubebuilder:validation:MinItems=1
	Values []string `json:"values,omitempty"`
}

// SelectorType selects pods (KubeArmorPolicy) or namespaces and pods (KubeArmorClusterPolicy).
type SelectorType struct {
	MatchLabels      map[string]string     `json:"matchLabels,omitempty"`
	MatchExpressions []SelectorRequirement `json:"matchExpressions,omitempty"`
}

// NodeSelectorType selects nodes (KubeArmorHostPolicy).
type NodeSelectorType struct {
	// +required
	// +kubebuilder:validation:MinProperties=1
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// PolicyStatus is the status subresource every kind has.
type PolicyStatus struct {
	Status string `json:"status,omitempty"`
}

// RuleSpec is everything a spec holds apart from its selector; the three kinds share it.
type RuleSpec struct {
	Process      ProcessType      `json:"process,omitempty"`
	File         FileType         `json:"file,omitempty"`
	Network      NetworkType      `json:"network,omitempty"`
	Capabilities CapabilitiesType `json:"capabilities,omitempty"`
	Syscalls     SyscallsType     `json:"syscalls,omitempty"`
	AppArmor     string           `json:"apparmor,omitempty"`
	SMTA         `json:",inline"`
}

// KubeArmorPolicySpec is the spec of a KubeArmorPolicy.
// +kubebuilder:validation:XValidation:rule="(has(self.process) && ((has(self.process.matchPaths) && size(self.process.matchPaths) > 0) || (has(self.process.matchDirectories) && size(self.process.matchDirectories) > 0) || (has(self.process.matchPatterns) && size(self.process.matchPatterns) > 0))) || (has(self.file) && ((has(self.file.matchPaths) && size(self.file.matchPaths) > 0) || (has(self.file.matchDirectories) && size(self.file.matchDirectories) > 0) || (has(self.file.matchPatterns) && size(self.file.matchPatterns) > 0))) || (has(self.network) && ((has(self.network.matchProtocols) && size(self.network.matchProtocols) > 0) || (has(self.network.matchDNSQueries) && size(self.network.matchDNSQueries) > 0))) || (has(self.capabilities) && ((has(self.capabilities.matchCapabilities) && size(self.capabilities.matchCapabilities) > 0))) || (has(self.syscalls) && ((has(self.syscalls.matchSyscalls) && size(self.syscalls.matchSyscalls) > 0) || (has(self.syscalls.matchPaths) && size(self.syscalls.matchPaths) > 0))) || (has(self.apparmor) && size(self.apparmor.trim()) > 0) || (has(self.presets) && size(self.presets) > 0)",message="no rules: set at least one of process, file, network, capabilities, syscalls, presets or apparmor"
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, e.key == 'label')",message="a KubeArmorPolicy selects by key label only"
type KubeArmorPolicySpec struct {
	// +required
	Selector SelectorType `json:"selector"`
	RuleSpec `json:",inline"`
	Presets  []PresetType `json:"presets,omitempty"`
}

// KubeArmorPolicy (ksp) is namespaced and selects pods by labels.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ksp,scope=Namespaced,path=kubearmorpolicies
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`,priority=10
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector.matchLabels`,priority=10
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.status`
type KubeArmorPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeArmorPolicySpec `json:"spec"`
	Status            PolicyStatus        `json:"status,omitempty"`
}

// KubeArmorClusterPolicySpec is the spec of a KubeArmorClusterPolicy.
// +kubebuilder:validation:XValidation:rule="(has(self.process) && ((has(self.process.matchPaths) && size(self.process.matchPaths) > 0) || (has(self.process.matchDirectories) && size(self.process.matchDirectories) > 0) || (has(self.process.matchPatterns) && size(self.process.matchPatterns) > 0))) || (has(self.file) && ((has(self.file.matchPaths) && size(self.file.matchPaths) > 0) || (has(self.file.matchDirectories) && size(self.file.matchDirectories) > 0) || (has(self.file.matchPatterns) && size(self.file.matchPatterns) > 0))) || (has(self.network) && ((has(self.network.matchProtocols) && size(self.network.matchProtocols) > 0) || (has(self.network.matchDNSQueries) && size(self.network.matchDNSQueries) > 0))) || (has(self.capabilities) && ((has(self.capabilities.matchCapabilities) && size(self.capabilities.matchCapabilities) > 0))) || (has(self.syscalls) && ((has(self.syscalls.matchSyscalls) && size(self.syscalls.matchSyscalls) > 0) || (has(self.syscalls.matchPaths) && size(self.syscalls.matchPaths) > 0))) || (has(self.apparmor) && size(self.apparmor.trim()) > 0) || (has(self.presets) && size(self.presets) > 0)",message="no rules: set at least one of process, file, network, capabilities, syscalls, presets or apparmor"
// +kubebuilder:validation:XValidation:rule="!has(self.selector) || !has(self.selector.matchLabels) || size(self.selector.matchLabels) == 0",message="matchLabels is not used by KubeArmorClusterPolicy: use matchExpressions with key namespace or label"
type KubeArmorClusterPolicySpec struct {
	Selector SelectorType `json:"selector,omitempty"`
	RuleSpec `json:",inline"`
	Presets  []PresetType `json:"presets,omitempty"`
}

// KubeArmorClusterPolicy (csp) is cluster-wide and selects namespaces (and labels) by expressions.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=csp,scope=Cluster,path=kubearmorclusterpolicies
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`,priority=10
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector.matchExpressions`,priority=10
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.status`
type KubeArmorClusterPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeArmorClusterPolicySpec `json:"spec"`
	Status            PolicyStatus               `json:"status,omitempty"`
}

// KubeArmorHostPolicySpec is the spec of a KubeArmorHostPolicy.
// +kubebuilder:validation:XValidation:rule="(has(self.process) && ((has(self.process.matchPaths) && size(self.process.matchPaths) > 0) || (has(self.process.matchDirectories) && size(self.process.matchDirectories) > 0) || (has(self.process.matchPatterns) && size(self.process.matchPatterns) > 0))) || (has(self.file) && ((has(self.file.matchPaths) && size(self.file.matchPaths) > 0) || (has(self.file.matchDirectories) && size(self.file.matchDirectories) > 0) || (has(self.file.matchPatterns) && size(self.file.matchPatterns) > 0))) || (has(self.network) && ((has(self.network.matchProtocols) && size(self.network.matchProtocols) > 0) || (has(self.network.matchDNSQueries) && size(self.network.matchDNSQueries) > 0))) || (has(self.capabilities) && ((has(self.capabilities.matchCapabilities) && size(self.capabilities.matchCapabilities) > 0))) || (has(self.syscalls) && ((has(self.syscalls.matchSyscalls) && size(self.syscalls.matchSyscalls) > 0) || (has(self.syscalls.matchPaths) && size(self.syscalls.matchPaths) > 0))) || (has(self.apparmor) && size(self.apparmor.trim()) > 0) || (has(self.device) && has(self.device.matchDevice) && size(self.device.matchDevice) > 0)",message="no rules: set at least one of process, file, network, capabilities, syscalls, device or apparmor"
type KubeArmorHostPolicySpec struct {
	// +required
	NodeSelector NodeSelectorType `json:"nodeSelector"`
	RuleSpec     `json:",inline"`
	Device       DeviceType `json:"device,omitempty"`
}

// KubeArmorHostPolicy (hsp) is cluster-wide and selects nodes.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=hsp,scope=Cluster,path=kubearmorhostpolicies
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`,priority=10
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.nodeSelector.matchLabels`,priority=10
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.status`
type KubeArmorHostPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeArmorHostPolicySpec `json:"spec"`
	Status            PolicyStatus            `json:"status,omitempty"`
}

// KubeArmorPolicyList is a list of KubeArmorPolicy objects, as the API server returns it.
// +kubebuilder:object:root=true
type KubeArmorPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KubeArmorPolicy `json:"items"`
}

// KubeArmorClusterPolicyList is a list of KubeArmorClusterPolicy objects, as the API server returns it.
// +kubebuilder:object:root=true
type KubeArmorClusterPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KubeArmorClusterPolicy `json:"items"`
}

// KubeArmorHostPolicyList is a list of KubeArmorHostPolicy objects, as the API server returns it.
// +kubebuilder:object:root=true
type KubeArmorHostPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KubeArmorHostPolicy `json:"items"`
}
