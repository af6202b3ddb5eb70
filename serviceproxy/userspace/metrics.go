package userspace

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	metricsNamespace = "kubeproxy"
	metricsSubsystem = "userspace"
)

type metrics struct {
	connections  *prometheus.CounterVec
	active       *prometheus.GaugeVec
	dialFailures *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	bindFailures *prometheus.CounterVec
	listeners    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	labels := []string{"service", "protocol"}
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "connections_total",
			Help: "TCP connections proxied and UDP sessions opened, per service port.",
		}, labels),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "connections_active",
			Help: "TCP connections and UDP sessions open now, per service port.",
		}, labels),
		dialFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "dial_failures_total",
			Help: "Failed connects to an endpoint, per service port (every retry counts).",
		}, labels),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "rejected_total",
			Help: "Connections reset and datagrams dropped for want of a usable endpoint, per service port.",
		}, labels),
		bindFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "bind_failures_total",
			Help: "Listeners that could not be opened (counted once until they open), per service port and reason.",
		}, []string{"service", "protocol", "reason"}),
		listeners: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "listeners",
			Help: "Listeners (TCP and UDP sockets on service addresses) open now.",
		}),
	}
	if reg == nil {
		return m
	}
	m.connections = register(reg, m.connections)
	m.active = register(reg, m.active)
	m.dialFailures = register(reg, m.dialFailures)
	m.rejected = register(reg, m.rejected)
	m.bindFailures = register(reg, m.bindFailures)
	m.listeners = register(reg, m.listeners)
	return m
}

// register registers c, or returns the collector already registered under
// its name (a second proxier on the same registry shares the series).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}

// serviceMetrics are one service port's series, looked up once.
type serviceMetrics struct {
	connections  prometheus.Counter
	active       prometheus.Gauge
	dialFailures prometheus.Counter
	rejected     prometheus.Counter
}

func (m *metrics) forService(service, protocol string) serviceMetrics {
	return serviceMetrics{
		connections:  m.connections.WithLabelValues(service, protocol),
		active:       m.active.WithLabelValues(service, protocol),
		dialFailures: m.dialFailures.WithLabelValues(service, protocol),
		rejected:     m.rejected.WithLabelValues(service, protocol),
	}
}

// forget drops a removed service port's series. Connections still open
// keep their (now unexported) gauge, so nothing goes negative.
func (m *metrics) forget(service, protocol string) {
	m.connections.DeleteLabelValues(service, protocol)
	m.active.DeleteLabelValues(service, protocol)
	m.dialFailures.DeleteLabelValues(service, protocol)
	m.rejected.DeleteLabelValues(service, protocol)
	m.bindFailures.DeletePartialMatch(prometheus.Labels{"service": service, "protocol": protocol})
}
