package serviceproxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// kubeProxySubsystem is the prefix of every kube-proxy metric
// (pkg/proxy/metrics: Subsystem "kubeproxy", no namespace).
const kubeProxySubsystem = "kubeproxy"

// Metrics are kube-proxy's metrics (pkg/proxy/metrics), with its names.
// The core (Proxier) observes the sync, change and health metrics; the
// mode-specific failure counters are for backends to increment: a backend
// gets this struct through ModeConfig.Metrics. Every field is always set
// (registered or not), so backends never check for nil.
type Metrics struct {
	// SyncProxyRulesLatency is kubeproxy_sync_proxy_rules_duration_seconds:
	// the duration of every successful Backend.Sync.
	SyncProxyRulesLatency prometheus.Histogram
	// SyncFullProxyRulesLatency is
	// kubeproxy_sync_full_proxy_rules_duration_seconds (State.Full syncs).
	SyncFullProxyRulesLatency prometheus.Histogram
	// SyncPartialProxyRulesLatency is
	// kubeproxy_sync_partial_proxy_rules_duration_seconds (the others).
	SyncPartialProxyRulesLatency prometheus.Histogram
	// NetworkProgrammingLatency is
	// kubeproxy_network_programming_duration_seconds: from an
	// EndpointSlice's endpoints.kubernetes.io/last-change-trigger-time to
	// the end of the sync that programmed it.
	NetworkProgrammingLatency prometheus.Histogram
	// SyncProxyRulesLastTimestamp is
	// kubeproxy_sync_proxy_rules_last_timestamp_seconds: the last
	// successful sync.
	SyncProxyRulesLastTimestamp prometheus.Gauge
	// SyncProxyRulesLastQueuedTimestamp is
	// kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds: the last
	// time a change queued a sync.
	SyncProxyRulesLastQueuedTimestamp prometheus.Gauge

	EndpointChangesPending prometheus.Gauge   // kubeproxy_sync_proxy_rules_endpoint_changes_pending
	EndpointChangesTotal   prometheus.Counter // kubeproxy_sync_proxy_rules_endpoint_changes_total
	ServiceChangesPending  prometheus.Gauge   // kubeproxy_sync_proxy_rules_service_changes_pending
	ServiceChangesTotal    prometheus.Counter // kubeproxy_sync_proxy_rules_service_changes_total

	// IPTablesRestoreFailuresTotal is
	// kubeproxy_sync_proxy_rules_iptables_restore_failures_total (iptables
	// and ipvs modes increment it when iptables-restore fails).
	IPTablesRestoreFailuresTotal prometheus.Counter
	// IPTablesPartialRestoreFailuresTotal is
	// kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total (a
	// partial restore failed and a full one follows).
	IPTablesPartialRestoreFailuresTotal prometheus.Counter
	// NFTablesSyncFailuresTotal is
	// kubeproxy_sync_proxy_rules_nftables_sync_failures_total (nftables
	// mode increments it when a transaction fails).
	NFTablesSyncFailuresTotal prometheus.Counter
	// NFTablesCleanupFailuresTotal is
	// kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total (stale
	// chain clean-up failed).
	NFTablesCleanupFailuresTotal prometheus.Counter

	// SyncProxyRulesNoLocalEndpointsTotal is
	// kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy}
	// (a gauge despite its name, as upstream): service ports with a Local
	// policy ("internal" or "external") and no local endpoint while the
	// service has endpoints elsewhere. The core sets it after each
	// successful sync.
	SyncProxyRulesNoLocalEndpointsTotal *prometheus.GaugeVec

	// SyncFailuresTotal is kubeproxy_sync_proxy_rules_failures_total, a
	// Switchboard addition: failed Backend.Sync calls of any mode (the
	// core counts them; modes count their own kind above).
	SyncFailuresTotal prometheus.Counter

	ProxyHealthzTotal *prometheus.CounterVec // kubeproxy_proxy_healthz_total{code}
	ProxyLivezTotal   *prometheus.CounterVec // kubeproxy_proxy_livez_total{code}
}

// NewMetrics builds kube-proxy's metrics and registers them on reg (nil:
// not registered). As upstream's RegisterMetrics(mode), the failure
// counters of other modes are left out: iptables and ipvs register the
// iptables-restore ones, nftables the nftables ones; mode "" registers all.
// Registering on a registry that already holds them (a second NewMetrics,
// say) reuses the registered collectors.
func NewMetrics(reg prometheus.Registerer, mode string) *Metrics {
	bucketsSync := prometheus.ExponentialBuckets(0.001, 2, 15)
	var bucketsNPL []float64
	bucketsNPL = append(bucketsNPL, prometheus.LinearBuckets(0.25, 0.25, 2)...) // 0.25s, 0.50s
	bucketsNPL = append(bucketsNPL, prometheus.LinearBuckets(1, 1, 59)...)      // 1s … 59s
	bucketsNPL = append(bucketsNPL, prometheus.LinearBuckets(60, 5, 12)...)     // 60s … 115s
	bucketsNPL = append(bucketsNPL, prometheus.LinearBuckets(120, 30, 7)...)    // 2min … 5min

	hist := func(name, help string, b []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help, Buckets: b})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help})
	}
	m := &Metrics{
		SyncProxyRulesLatency:             hist("sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", bucketsSync),
		SyncFullProxyRulesLatency:         hist("sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs", bucketsSync),
		SyncPartialProxyRulesLatency:      hist("sync_partial_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for partial resyncs", bucketsSync),
		NetworkProgrammingLatency:         hist("network_programming_duration_seconds", "In Cluster Network Programming Latency in seconds", bucketsNPL),
		SyncProxyRulesLastTimestamp:       gauge("sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced"),
		SyncProxyRulesLastQueuedTimestamp: gauge("sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync of proxy rules was queued"),
		EndpointChangesPending:            gauge("sync_proxy_rules_endpoint_changes_pending", "Pending proxy rules Endpoint changes"),
		EndpointChangesTotal:              counter("sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes"),
		ServiceChangesPending:             gauge("sync_proxy_rules_service_changes_pending", "Pending proxy rules Service changes"),
		ServiceChangesTotal:               counter("sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes"),
		IPTablesRestoreFailuresTotal:      counter("sync_proxy_rules_iptables_restore_failures_total", "Cumulative proxy iptables restore failures"),
		IPTablesPartialRestoreFailuresTotal: counter("sync_proxy_rules_iptables_partial_restore_failures_total",
			"Cumulative proxy iptables partial restore failures"),
		NFTablesSyncFailuresTotal:    counter("sync_proxy_rules_nftables_sync_failures_total", "Cumulative proxy nftables sync failures"),
		NFTablesCleanupFailuresTotal: counter("sync_proxy_rules_nftables_cleanup_failures_total", "Cumulative proxy nftables cleanup failures"),
		SyncProxyRulesNoLocalEndpointsTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: kubeProxySubsystem, Name: "sync_proxy_rules_no_local_endpoints_total",
			Help: "Number of services with a Local traffic policy and no endpoints",
		}, []string{"traffic_policy"}),
		SyncFailuresTotal: counter("sync_proxy_rules_failures_total", "Cumulative failed proxy rules syncs, any mode (Switchboard)"),
		ProxyHealthzTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: kubeProxySubsystem, Name: "proxy_healthz_total", Help: "Cumulative proxy healthz HTTP status",
		}, []string{"code"}),
		ProxyLivezTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: kubeProxySubsystem, Name: "proxy_livez_total", Help: "Cumulative proxy livez HTTP status",
		}, []string{"code"}),
	}
	if reg == nil {
		return m
	}
	m.SyncProxyRulesLatency = register(reg, m.SyncProxyRulesLatency)
	m.SyncFullProxyRulesLatency = register(reg, m.SyncFullProxyRulesLatency)
	m.SyncPartialProxyRulesLatency = register(reg, m.SyncPartialProxyRulesLatency)
	m.NetworkProgrammingLatency = register(reg, m.NetworkProgrammingLatency)
	m.SyncProxyRulesLastTimestamp = register(reg, m.SyncProxyRulesLastTimestamp)
	m.SyncProxyRulesLastQueuedTimestamp = register(reg, m.SyncProxyRulesLastQueuedTimestamp)
	m.EndpointChangesPending = register(reg, m.EndpointChangesPending)
	m.EndpointChangesTotal = register(reg, m.EndpointChangesTotal)
	m.ServiceChangesPending = register(reg, m.ServiceChangesPending)
	m.ServiceChangesTotal = register(reg, m.ServiceChangesTotal)
	m.SyncProxyRulesNoLocalEndpointsTotal = register(reg, m.SyncProxyRulesNoLocalEndpointsTotal)
	m.SyncFailuresTotal = register(reg, m.SyncFailuresTotal)
	m.ProxyHealthzTotal = register(reg, m.ProxyHealthzTotal)
	m.ProxyLivezTotal = register(reg, m.ProxyLivezTotal)
	switch mode {
	case "iptables", "ipvs":
		m.IPTablesRestoreFailuresTotal = register(reg, m.IPTablesRestoreFailuresTotal)
		if mode == "iptables" {
			m.IPTablesPartialRestoreFailuresTotal = register(reg, m.IPTablesPartialRestoreFailuresTotal)
		}
	case "nftables":
		m.NFTablesSyncFailuresTotal = register(reg, m.NFTablesSyncFailuresTotal)
		m.NFTablesCleanupFailuresTotal = register(reg, m.NFTablesCleanupFailuresTotal)
	case "":
		m.IPTablesRestoreFailuresTotal = register(reg, m.IPTablesRestoreFailuresTotal)
		m.IPTablesPartialRestoreFailuresTotal = register(reg, m.IPTablesPartialRestoreFailuresTotal)
		m.NFTablesSyncFailuresTotal = register(reg, m.NFTablesSyncFailuresTotal)
		m.NFTablesCleanupFailuresTotal = register(reg, m.NFTablesCleanupFailuresTotal)
	}
	return m
}

// register registers c, or returns the collector already registered
// under its name (of the same type).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A clash with a different collector of the same name: keep ours
		// unregistered rather than failing the proxy.
	}
	return c
}
