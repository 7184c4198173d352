//go:build kube

package daemon

import (
	"testing"

	"github.com/wardsec/ward/internal/testutil/kubeapi"
)

var srv *kubeapi.Server

func TestMain(m *testing.M) { kubeapi.Main(m, &srv) }
