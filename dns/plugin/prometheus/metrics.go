package prometheus

import (
	"runtime"
	"runtime/debug"
	"sync"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// vars are CoreDNS's server metrics (plugin/metrics/vars), one set per
// registry: every server block and every reload of a process shares them,
// so counts continue across reloads.
type vars struct {
	requests      *prom.CounterVec   // coredns_dns_requests_total{server, zone, view, proto, family, type}
	duration      *prom.HistogramVec // coredns_dns_request_duration_seconds{server, zone, view}
	requestSize   *prom.HistogramVec // coredns_dns_request_size_bytes{server, zone, view, proto}
	do            *prom.CounterVec   // coredns_dns_do_requests_total{server, zone, view}
	responseSize  *prom.HistogramVec // coredns_dns_response_size_bytes{server, zone, view, proto}
	responses     *prom.CounterVec   // coredns_dns_responses_total{server, zone, view, rcode, plugin}
	panics        prom.Counter       // coredns_panics_total
	pluginEnabled *prom.GaugeVec     // coredns_plugin_enabled{server, zone, view, name}
	buildInfo     *prom.GaugeVec     // coredns_build_info{version, revision, goversion}

	mu         sync.Mutex
	enabledGen any // the instance whose plugins coredns_plugin_enabled shows
}

var sizeBuckets = []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3}

func newVars(reg prom.Registerer) *vars {
	v := &vars{
		requests: prom.NewCounterVec(prom.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "dns",
			Name:      "requests_total",
			Help:      "Counter of DNS requests made per zone, protocol and family.",
		}, []string{"server", "zone", "view", "proto", "family", "type"}),
		duration: prom.NewHistogramVec(prom.HistogramOpts{
			Namespace:                   plugin.Namespace,
			Subsystem:                   "dns",
			Name:                        "request_duration_seconds",
			Buckets:                     plugin.TimeBuckets,
			NativeHistogramBucketFactor: plugin.NativeHistogramBucketFactor,
			Help:                        "Histogram of the time (in seconds) each request took per zone.",
		}, []string{"server", "zone", "view"}),
		requestSize: prom.NewHistogramVec(prom.HistogramOpts{
			Namespace:                   plugin.Namespace,
			Subsystem:                   "dns",
			Name:                        "request_size_bytes",
			Help:                        "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
			Buckets:                     sizeBuckets,
			NativeHistogramBucketFactor: plugin.NativeHistogramBucketFactor,
		}, []string{"server", "zone", "view", "proto"}),
		do: prom.NewCounterVec(prom.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "dns",
			Name:      "do_requests_total",
			Help:      "Counter of DNS requests with DO bit set per zone.",
		}, []string{"server", "zone", "view"}),
		responseSize: prom.NewHistogramVec(prom.HistogramOpts{
			Namespace:                   plugin.Namespace,
			Subsystem:                   "dns",
			Name:                        "response_size_bytes",
			Help:                        "Size of the returned response in bytes.",
			Buckets:                     sizeBuckets,
			NativeHistogramBucketFactor: plugin.NativeHistogramBucketFactor,
		}, []string{"server", "zone", "view", "proto"}),
		responses: prom.NewCounterVec(prom.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "dns",
			Name:      "responses_total",
			Help:      "Counter of response status codes.",
		}, []string{"server", "zone", "view", "rcode", "plugin"}),
		panics: prom.NewCounter(prom.CounterOpts{
			Namespace: plugin.Namespace,
			Name:      "panics_total",
			Help:      "A metrics that counts the number of panics.",
		}),
		pluginEnabled: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: plugin.Namespace,
			Name:      "plugin_enabled",
			Help:      "A metric that indicates whether a plugin is enabled on per server and zone basis.",
		}, []string{"server", "zone", "view", "name"}),
		buildInfo: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: plugin.Namespace,
			Name:      "build_info",
			Help:      "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
		}, []string{"version", "revision", "goversion"}),
	}
	v.requests = plugin.Register(reg, v.requests)
	v.duration = plugin.Register(reg, v.duration)
	v.requestSize = plugin.Register(reg, v.requestSize)
	v.do = plugin.Register(reg, v.do)
	v.responseSize = plugin.Register(reg, v.responseSize)
	v.responses = plugin.Register(reg, v.responses)
	v.panics = plugin.Register(reg, v.panics)
	v.pluginEnabled = plugin.Register(reg, v.pluginEnabled)
	v.buildInfo = plugin.Register(reg, v.buildInfo)
	version, revision := buildVersion()
	v.buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
	return v
}

// Version is reported in coredns_build_info; the command sets it to the
// binary's version. By default it is the main module's version.
var Version = ""

func buildVersion() (version, revision string) {
	version = Version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, ""
	}
	if version == "" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return version, revision
}

var (
	varsMu sync.Mutex
	byReg  = map[prom.Registerer]*vars{}
)

// varsFor returns the metrics of reg, made and registered once.
func varsFor(reg prom.Registerer) *vars {
	varsMu.Lock()
	defer varsMu.Unlock()
	if v, ok := byReg[reg]; ok {
		return v
	}
	v := newVars(reg)
	byReg[reg] = v
	return v
}
