package probe

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of prober_probe_total, as kubelet's.
const (
	probeResultSuccessful = "successful"
	probeResultFailed     = "failed"
	probeResultUnknown    = "unknown"
)

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ProbeTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "prober",
			Name:      "probe_total",
			Help:      "Cumulative number of a liveness, readiness or startup probe for a container by result.",
		}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
		ProbeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "prober",
			Name:      "probe_duration_seconds",
			Help:      "Duration in seconds for a probe response.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"probe_type", "container", "pod", "namespace"}),
	}
	if reg != nil {
		m.ProbeTotal = register(reg, m.ProbeTotal)
		m.ProbeDuration = register(reg, m.ProbeDuration)
	}
	return m
}

// register registers c on reg; if an identical collector is already
// registered (a second NewMetrics on the same registry) that one is used.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
