package events

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func dropCount(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	return testutil.ToFloat64(m.drops.WithLabelValues(reason))
}
