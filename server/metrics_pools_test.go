package server

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"example.com/gateway/store/storetest"
)

// TestMetricsPools: each connection pool reports under its pool label,
// including the background pool serve opens after the Server exists.
func TestMetricsPools(t *testing.T) {
	t.Parallel()
	s := &Server{DB: storetest.New(t)}
	s.Metrics = newMetrics(s.pools)
	s.Background = storetest.New(t) // set later, as Run does
	if err := s.Background.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	families, err := s.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	max := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "gateway_db_connections_max" {
			continue
		}
		for _, m := range f.GetMetric() {
			max[label(m, "pool")] = m.GetGauge().GetValue()
		}
	}
	if len(max) != 2 || max["requests"] != float64(s.DB.Stats().MaxOpenConnections) ||
		max["background"] != float64(s.Background.Stats().MaxOpenConnections) {
		t.Errorf("gateway_db_connections_max by pool = %v, want requests and background", max)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
