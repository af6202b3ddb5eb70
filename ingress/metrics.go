package ingress

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are named after ingress-nginx's (nginx_ingress_controller_requests,
// ..._request_duration_seconds) without the nginx prefix.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ejections *prometheus.CounterVec
	syncs     prometheus.Counter
	conflicts prometheus.Gauge
	endpoints *prometheus.GaugeVec
}

var requestLabels = []string{"namespace", "ingress", "host", "path", "service", "method", "status"}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_controller_requests",
			Help: "Requests served, by the Ingress, rule host and path, backend service, method and status that answered them.",
		}, requestLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ingress_controller_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of the response, by Ingress, rule host and path, service, method and status.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, requestLabels),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_controller_upstream_ejections_total",
			Help: "Endpoints taken out of rotation after a failed connect, by backend.",
		}, []string{"backend"}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingress_controller_routing_table_syncs_total",
			Help: "Routing tables built and swapped in.",
		}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingress_controller_routing_conflicts",
			Help: "Host/path claims that lost to an older Ingress in the current routing table.",
		}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ingress_controller_backend_endpoints",
			Help: "Ready endpoints of each backend in the current routing table.",
		}, []string{"backend"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.ejections, m.syncs, m.conflicts, m.endpoints)
	}
	return m
}
