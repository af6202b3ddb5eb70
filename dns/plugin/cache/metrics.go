package cache

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CoreDNS 1.14.1's cache collectors, same names and labels.
type metrics struct {
	size        *prometheus.GaugeVec   // coredns_cache_entries{server,type,zones,view}
	requests    *prometheus.CounterVec // coredns_cache_requests_total{server,zones,view}
	hits        *prometheus.CounterVec // coredns_cache_hits_total{server,type,zones,view}
	misses      *prometheus.CounterVec // coredns_cache_misses_total{server,zones,view}
	prefetches  *prometheus.CounterVec // coredns_cache_prefetch_total{server,zones,view}
	drops       *prometheus.CounterVec // coredns_cache_drops_total{server,zones,view}
	servedStale *prometheus.CounterVec // coredns_cache_served_stale_total{server,zones,view}
	evictions   *prometheus.CounterVec // coredns_cache_evictions_total{server,type,zones,view}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: name, Help: help,
		}, labels))
	}
	return &metrics{
		size: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "entries",
			Help: "The number of elements in the cache.",
		}, []string{"server", "type", "zones", "view"})),
		requests:    counter("requests_total", "The count of cache requests.", "server", "zones", "view"),
		hits:        counter("hits_total", "The count of cache hits.", "server", "type", "zones", "view"),
		misses:      counter("misses_total", "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.", "server", "zones", "view"),
		prefetches:  counter("prefetch_total", "The number of times the cache has prefetched a cached item.", "server", "zones", "view"),
		drops:       counter("drops_total", "The number responses that are not cached, because the reply is malformed.", "server", "zones", "view"),
		servedStale: counter("served_stale_total", "The number of requests served from stale cache entries.", "server", "zones", "view"),
		evictions:   counter("evictions_total", "The count of cache evictions.", "server", "type", "zones", "view"),
	}
}

// counters are the metric children of one cache instance (its server,
// zones and view labels). Each child is created on first use, as CoreDNS's
// WithLabelValues calls do, and then only costs an atomic add.
type counters struct {
	server      string
	requests    lazyCounter
	hitsSuccess lazyCounter
	hitsDenial  lazyCounter
	misses      lazyCounter
	prefetches  lazyCounter
	drops       lazyCounter
	servedStale lazyCounter
	evSuccess   lazyCounter
	evDenial    lazyCounter
	sizeSuccess lazyGauge
	sizeDenial  lazyGauge
}

func (m *metrics) resolve(server, zones, view string) *counters {
	c3 := func(v *prometheus.CounterVec) lazyCounter {
		return lazyCounter{vec: v, labels: []string{server, zones, view}}
	}
	c4 := func(v *prometheus.CounterVec, typ string) lazyCounter {
		return lazyCounter{vec: v, labels: []string{server, typ, zones, view}}
	}
	return &counters{
		server:      server,
		requests:    c3(m.requests),
		hitsSuccess: c4(m.hits, Success),
		hitsDenial:  c4(m.hits, Denial),
		misses:      c3(m.misses),
		prefetches:  c3(m.prefetches),
		drops:       c3(m.drops),
		servedStale: c3(m.servedStale),
		evSuccess:   c4(m.evictions, Success),
		evDenial:    c4(m.evictions, Denial),
		sizeSuccess: lazyGauge{vec: m.size, labels: []string{server, Success, zones, view}},
		sizeDenial:  lazyGauge{vec: m.size, labels: []string{server, Denial, zones, view}},
	}
}

type lazyCounter struct {
	once   sync.Once
	c      prometheus.Counter
	vec    *prometheus.CounterVec
	labels []string
}

func (l *lazyCounter) Inc() {
	l.once.Do(func() { l.c = l.vec.WithLabelValues(l.labels...) })
	l.c.Inc()
}

type lazyGauge struct {
	once   sync.Once
	g      prometheus.Gauge
	vec    *prometheus.GaugeVec
	labels []string
}

func (l *lazyGauge) Set(v float64) {
	l.once.Do(func() { l.g = l.vec.WithLabelValues(l.labels...) })
	l.g.Set(v)
}

// register registers c on reg and returns it, or the equal collector
// already registered there (another server block, or the Corefile before
// a reload). Nil reg: unregistered.
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
