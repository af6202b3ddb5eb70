package kubernetes

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// programmingLatency is CoreDNS's DNSProgrammingLatency: the time from the
// change that triggered an EndpointSlice update (its
// endpoints.kubernetes.io/last-change-trigger-time annotation) to the
// moment the new records are served. As in CoreDNS only the
// "headless_with_selector" service_kind is observed. It is one collector
// for the process, registered on every Registerer a plugin instance is
// given (never on the global registry).
var programmingLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Namespace: "coredns",
	Subsystem: "kubernetes",
	Name:      "dns_programming_duration_seconds",
	// From 1 millisecond to ~17 minutes.
	Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
	Help:    "Histogram of the time (in seconds) it took to program a dns instance.",
}, []string{"service_kind"})

// registerMetrics registers the plugin's metrics on reg (nil: none). A
// second registration on the same registry (another server block, a
// reload) is not an error.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(programmingLatency); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return err
	}
	return nil
}
