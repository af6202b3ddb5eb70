package health

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// Health serves /health.
type Health struct {
	Addr     string
	Lameduck time.Duration

	log       *slog.Logger
	metrics   *metrics
	selfCheck bool

	mu       sync.Mutex
	bound    net.Addr
	releaseF func()
	stop     context.CancelFunc
	done     chan struct{}
}

// ListenAddr is the address /health is served on, nil when not serving.
func (h *Health) ListenAddr() net.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bound
}

func (h *Health) started() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releaseF != nil
}

// ServeHTTP answers 200 OK: the process is up.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, http.StatusText(http.StatusOK))
}

// OnStartup starts serving /health and the self check.
func (h *Health) OnStartup() error {
	bound, release, err := dnsserver.ServeHTTP(h.Addr, "/health", h)
	if err != nil {
		return plugin.Error("health", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bound, h.releaseF = bound, release
	if h.selfCheck {
		ctx, cancel := context.WithCancel(context.Background())
		h.stop, h.done = cancel, make(chan struct{})
		go h.overloaded(ctx, selfURL(bound), h.done)
	}
	return nil
}

// release stops the self check and serving.
func (h *Health) release() error {
	h.mu.Lock()
	stop, done, release := h.stop, h.done, h.releaseF
	h.stop, h.done, h.releaseF, h.bound = nil, nil, nil, nil
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if release != nil {
		release()
	}
	return nil
}

// selfURL is the URL the self check asks: the bound port on loopback when
// bound to every address.
func selfURL(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/health"
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1" // a socket on every address takes IPv4 too
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(ta.Port)) + "/health"
}

// overloaded asks /health once a second and records how long it took, as
// CoreDNS: a slow answer means the process struggles with its load.
func (h *Health) overloaded(ctx context.Context, url string, done chan struct{}) {
	defer close(done)
	client := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: false, MaxIdleConns: 1}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil && ctx.Err() != nil {
			return
		}
		h.metrics.duration.Observe(time.Since(start).Seconds())
		if err != nil {
			h.metrics.failures.Inc()
			h.log.Warn("Local health request failed", "url", url, "err", err)
			continue
		}
		resp.Body.Close()
		if elapsed := time.Since(start); elapsed > time.Second {
			h.log.Warn("Local health request took more than 1s", "url", url, "duration", elapsed)
		}
	}
}

type metrics struct {
	duration prom.Histogram
	failures prom.Counter
}

var (
	metricsMu sync.Mutex
	byReg     = map[prom.Registerer]*metrics{}
)

// metricsFor returns the health metrics registered on reg (unregistered
// ones when reg is nil).
func metricsFor(reg prom.Registerer) *metrics {
	metricsMu.Lock()
	defer metricsMu.Unlock()
	if m, ok := byReg[reg]; ok {
		return m
	}
	m := &metrics{
		duration: prom.NewHistogram(prom.HistogramOpts{
			Namespace:                   plugin.Namespace,
			Subsystem:                   "health",
			Name:                        "request_duration_seconds",
			Buckets:                     plugin.SlimTimeBuckets,
			NativeHistogramBucketFactor: plugin.NativeHistogramBucketFactor,
			Help:                        "Histogram of the time (in seconds) each request took.",
		}),
		failures: prom.NewCounter(prom.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "health",
			Name:      "request_failures_total",
			Help:      "The number of times the health check failed.",
		}),
	}
	m.duration = plugin.Register(reg, m.duration)
	m.failures = plugin.Register(reg, m.failures)
	if reg != nil {
		byReg[reg] = m
	}
	return m
}
