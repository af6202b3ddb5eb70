package acl

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CoreDNS's acl metrics. The "view" label is always empty:
// there is no view plugin.
type metrics struct {
	blocked  *prometheus.CounterVec // coredns_acl_blocked_requests_total{server,zone,view}
	filtered *prometheus.CounterVec // coredns_acl_filtered_requests_total{server,zone,view}
	allowed  *prometheus.CounterVec // coredns_acl_allowed_requests_total{server,view}
	dropped  *prometheus.CounterVec // coredns_acl_dropped_requests_total{server,zone,view}
}

// newMetrics builds the counters and registers them on reg (nil: not
// registered). Counters already registered on reg by another acl (other
// server blocks, an earlier Corefile) are reused, so counts add up.
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		blocked: counterVec(reg, prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: pluginName, Name: "blocked_requests_total",
			Help: "Counter of DNS requests being blocked.",
		}, []string{"server", "zone", "view"}),
		filtered: counterVec(reg, prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: pluginName, Name: "filtered_requests_total",
			Help: "Counter of DNS requests being filtered.",
		}, []string{"server", "zone", "view"}),
		allowed: counterVec(reg, prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: pluginName, Name: "allowed_requests_total",
			Help: "Counter of DNS requests being allowed.",
		}, []string{"server", "view"}),
		dropped: counterVec(reg, prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: pluginName, Name: "dropped_requests_total",
			Help: "Counter of DNS requests being dropped.",
		}, []string{"server", "zone", "view"}),
	}
}

func counterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels []string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(opts, labels)
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}
