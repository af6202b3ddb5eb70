package forward

import (
	"github.com/prometheus/client_golang/prometheus"
)

// timeBuckets are CoreDNS's plugin.TimeBuckets: 0.25ms to 8s.
var timeBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

// metrics are the collectors CoreDNS 1.14.1 exports for forward: two in
// plugin/forward (coredns_forward_*) and four in plugin/pkg/proxy
// (coredns_proxy_*, labelled proxy_name="forward"). The deprecated
// coredns_forward_requests_total, _responses_total,
// _request_duration_seconds and _healthcheck_failures_total are no longer
// exported by 1.14.1 and are not here either.
type metrics struct {
	healthcheckBroken    prometheus.Counter
	maxConcurrentRejects prometheus.Counter
	requestDuration      *prometheus.HistogramVec
	healthcheckFailures  *prometheus.CounterVec
	connCacheHits        *prometheus.CounterVec
	connCacheMisses      *prometheus.CounterVec
}

// newMetrics builds the collectors and registers them on reg (nil: not
// registered). Collectors already registered on reg by another forward
// instance (another server block, or the previous Corefile on reload)
// are shared.
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		healthcheckBroken: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns",
			Subsystem: "forward",
			Name:      "healthcheck_broken_total",
			Help:      "Counter of the number of complete failures of the healthchecks.",
		})),
		maxConcurrentRejects: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns",
			Subsystem: "forward",
			Name:      "max_concurrent_rejects_total",
			Help:      "Counter of the number of queries rejected because the concurrent queries were at maximum.",
		})),
		requestDuration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:                   "coredns",
			Subsystem:                   "proxy",
			Name:                        "request_duration_seconds",
			Buckets:                     timeBuckets,
			NativeHistogramBucketFactor: 1.05,
			Help:                        "Histogram of the time each request took.",
		}, []string{"proxy_name", "to", "rcode"})),
		healthcheckFailures: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns",
			Subsystem: "proxy",
			Name:      "healthcheck_failures_total",
			Help:      "Counter of the number of failed healthchecks.",
		}, []string{"proxy_name", "to"})),
		connCacheHits: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns",
			Subsystem: "proxy",
			Name:      "conn_cache_hits_total",
			Help:      "Counter of connection cache hits per upstream and protocol.",
		}, []string{"proxy_name", "to", "proto"})),
		connCacheMisses: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns",
			Subsystem: "proxy",
			Name:      "conn_cache_misses_total",
			Help:      "Counter of connection cache misses per upstream and protocol.",
		}, []string{"proxy_name", "to", "proto"})),
	}
}

// register registers c on reg and returns it, or the collector of the same
// description already there. A conflicting registration (same name,
// other labels or type) leaves c unregistered but usable.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}
