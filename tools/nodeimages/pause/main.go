// Command pause is the sandbox image's process: it holds a pod's namespaces open and does nothing
// else, like Kubernetes' own pause, until SIGINT or SIGTERM. As PID 1 of the pod it also reaps
// the zombies of processes that end up reparented to it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
