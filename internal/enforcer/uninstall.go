package enforcer

import "context"

// Uninstaller removes what one backend left in the kernel and on disk after its daemon stopped
// (a stopped daemon's rules keep enforcing on purpose). `ward uninstall`, which the uninstall
// DaemonSet runs on every node, goes through the three backends' Uninstallers in turn, and the
// daemon's restart tests clean up through them.
type Uninstaller interface {
	// Uninstall removes everything the backend's daemon put in place, calls did with a sentence
	// for each thing it removed or restored ("removed AppArmor profile ward-host"; did may be
	// nil), and returns what it could not remove, its message starting with the backend's name.
	// Running it again removes nothing and succeeds; a machine where the backend never ran has
	// nothing to remove.
	Uninstall(ctx context.Context, did func(string)) error
}

// Did calls did with s when did is not nil, for Uninstallers.
func Did(did func(string), s string) {
	if did != nil {
		did(s)
	}
}
