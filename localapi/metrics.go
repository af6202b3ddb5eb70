package localapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API server's request metrics, with the labels that
// apply to one node (no group/version/scope/component split).
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	longRunning *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of local API requests broken out by verb, resource, subresource and HTTP response code.",
		}, []string{"verb", "resource", "subresource", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency of local API requests (watches and log streams excluded), by verb and resource.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"verb", "resource", "subresource"}),
		longRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_longrunning_requests",
			Help: "Number of local API watches and log streams open, by verb and resource.",
		}, []string{"verb", "resource", "subresource"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.longRunning} {
		if err := reg.Register(c); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				switch c {
				case m.requests:
					m.requests = are.ExistingCollector.(*prometheus.CounterVec)
				case m.duration:
					m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
				case m.longRunning:
					m.longRunning = are.ExistingCollector.(*prometheus.GaugeVec)
				}
			}
		}
	}
	return m
}

// startLongRunning counts an open watch or log stream; the returned func
// ends it.
func (m *metrics) startLongRunning(info *requestInfo) func() {
	if m == nil {
		return func() {}
	}
	g := m.longRunning.WithLabelValues(info.verb, info.resource, info.subresource)
	g.Inc()
	return g.Dec
}

func (m *metrics) observe(info *requestInfo, code int, d time.Duration) {
	if m == nil {
		return
	}
	verb := info.verb
	if verb == "head" {
		verb = "get"
	}
	m.requests.WithLabelValues(verb, info.resource, info.subresource, strconv.Itoa(code)).Inc()
	if !info.longRunning {
		m.duration.WithLabelValues(verb, info.resource, info.subresource).Observe(d.Seconds())
	}
}
