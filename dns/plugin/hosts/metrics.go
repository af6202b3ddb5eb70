package hosts

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CoreDNS's hosts metrics.
type metrics struct {
	// entries is coredns_hosts_entries{hostsfile}: the combined number
	// of entries in hosts and Corefile.
	entries *prometheus.GaugeVec
	// reloadTime is coredns_hosts_reload_timestamp_seconds: the
	// modification time of the hosts file read last.
	reloadTime prometheus.Gauge
}

// newMetrics builds the gauges and registers them on reg (nil: not
// registered), reusing those another hosts plugin registered there.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "coredns", Subsystem: "hosts", Name: "entries",
			Help: "The combined number of entries in hosts and Corefile.",
		}, []string{"hostsfile"}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "coredns", Subsystem: "hosts", Name: "reload_timestamp_seconds",
			Help: "The timestamp of the last reload of hosts file.",
		}),
	}
	if reg == nil {
		return m
	}
	if err := reg.Register(m.entries); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				m.entries = ex
			}
		}
	}
	if err := reg.Register(m.reloadTime); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(prometheus.Gauge); ok {
				m.reloadTime = ex
			}
		}
	}
	return m
}
