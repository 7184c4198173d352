package apparmor

// Limitations implements enforcer.Limiter: the ways around a rule that AppArmor cannot close
// (docs/apparmor.md, "What stays open"), said at start and by ward probe.
func (b *Backend) Limitations() []string {
	return []string{
		"rules name paths: a hard link made before the profile was loaded, to a protected file or a blocked program, reaches it by its other name (new hard links are denied; each apply warns, naming the rule, about a blocked file or program that has other names)",
		"a detached mount (open_tree with OPEN_TREE_CLONE) of a file system's root names its files from that root, and one attached elsewhere with move_mount names them under the new path; AppArmor (kernel 6.1) mediates neither, and the host profile grants mount: both need CAP_SYS_ADMIN, so block capability sys_admin to close them",
		"a blocked program used as a script's #! interpreter runs: AppArmor checks only the script at exec and passes every open made for an exec (the interpreter's) unchecked, with read and map permission cached for it; no profile rule can reach it (BPF-LSM checks it)",
		"a fromSource program run through a hard link made before the profile was loaded runs in the workload's profile, without its fromSource rules",
		"a file opened by its handle (open_by_handle_at) after its dentry left the cache is not linked below its directory: the profile's attach_disconnected names it from its file system's root, so rules naming its path do not apply to that open (its later opens by path do); it needs CAP_DAC_READ_SEARCH, so block capability dac_read_search to close it (BPF-LSM denies such an open where a Block rule could apply)",
	}
}
