// Command kube-apiserver is a stock Kubernetes API server built from k8s.io/kubernetes, so that
// Ward's CRDs and its Kubernetes mode are tested against the real validation and watch code
// rather than a fake. It is a separate module so that the main module does not depend on
// k8s.io/kubernetes.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
