package serviceproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// proxyHealth is kube-proxy's proxier health server state
// (pkg/proxy/healthcheck/proxier_health.go): "It verifies that the delay
// between QueuedUpdate() calls and Updated() calls never exceeds
// healthTimeout."
type proxyHealth struct {
	timeout time.Duration
	now     func() time.Time
	m       *Metrics

	mu                  sync.Mutex
	lastUpdated         time.Time
	oldestPendingQueued time.Time
	nodeEligible        atomic.Bool
}

func newProxyHealth(timeout time.Duration, m *Metrics) *proxyHealth {
	h := &proxyHealth{timeout: timeout, now: time.Now, m: m}
	// "The node is eligible (and thus the proxy healthy) while it's
	// starting up and until we've processed the first node event that
	// indicates the contrary."
	h.nodeEligible.Store(true)
	return h
}

// QueuedUpdate records that a change waits for a sync (only the oldest
// one counts).
func (h *proxyHealth) QueuedUpdate() {
	h.mu.Lock()
	if h.oldestPendingQueued.IsZero() {
		h.oldestPendingQueued = h.now()
	}
	h.mu.Unlock()
}

// Updated records a successful sync.
func (h *proxyHealth) Updated() {
	h.mu.Lock()
	h.oldestPendingQueued = time.Time{}
	h.lastUpdated = h.now()
	h.mu.Unlock()
}

// SetNodeEligible records whether this node may receive load-balancer
// traffic (not deleted, not tainted ToBeDeletedByClusterAutoscaler).
func (h *proxyHealth) SetNodeEligible(ok bool) { h.nodeEligible.Store(ok) }

// IsHealthy is the proxy's health, ignoring the node's eligibility.
func (h *proxyHealth) IsHealthy() bool {
	ok, _, _ := h.isHealthy()
	return ok
}

func (h *proxyHealth) isHealthy() (healthy bool, lastUpdated, now time.Time) {
	h.mu.Lock()
	oldest, last := h.oldestPendingQueued, h.lastUpdated
	h.mu.Unlock()
	now = h.now()
	switch {
	case oldest.IsZero():
		// "The proxy is healthy while it's starting up or the proxy is
		// fully synced."
		healthy = true
	case now.Sub(oldest) < h.timeout:
		// "There's an unprocessed update queued, but it's not late yet."
		healthy = true
	}
	return healthy, last, now
}

// handler serves /healthz and /livez as kube-proxy does: 200 or 503 with
// a JSON body; /healthz also fails when the node is not eligible.
func (h *proxyHealth) handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(w http.ResponseWriter, withNode bool, counter func(code string)) {
		healthy, lastUpdated, now := h.isHealthy()
		eligible := h.nodeEligible.Load()
		if withNode {
			healthy = healthy && eligible
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !healthy {
			counter("503")
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			counter("200")
			w.WriteHeader(http.StatusOK)
			// "the returned lastUpdated value is "recent" if the server
			// is healthy."
			lastUpdated = now
		}
		if withNode {
			fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q, "nodeEligible": %v}`, lastUpdated, now, eligible)
		} else {
			fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q}`, lastUpdated, now)
		}
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		serve(w, true, func(code string) { h.m.ProxyHealthzTotal.WithLabelValues(code).Inc() })
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		serve(w, false, func(code string) { h.m.ProxyLivezTotal.WithLabelValues(code).Inc() })
	})
	return mux
}

// serviceHealth runs the healthCheckNodePort servers of
// externalTrafficPolicy Local load balancers, as kube-proxy's
// pkg/proxy/healthcheck/service_health.go: one HTTP server per service and
// node IP on the service's healthCheckNodePort, answering 200 while the
// node has a ready endpoint of the service and the proxy is healthy, 503
// otherwise ("telling LBs not to use this node"). Servers listen in the
// network namespace of the goroutine that calls SyncServices.
type serviceHealth struct {
	nodeIPs []netip.Addr // empty: all addresses
	proxy   interface{ IsHealthy() bool }
	log     *slog.Logger

	mu       sync.RWMutex
	services map[types.NamespacedName]*hcInstance
}

type hcInstance struct {
	port      int32
	servers   []*http.Server
	endpoints int // local ready endpoints (distinct IPs)
}

func newServiceHealth(nodeIPs []netip.Addr, proxy interface{ IsHealthy() bool }, log *slog.Logger) *serviceHealth {
	return &serviceHealth{nodeIPs: nodeIPs, proxy: proxy, log: log, services: map[types.NamespacedName]*hcInstance{}}
}

// SyncServices makes the given services (name → healthCheckNodePort) the
// served set: "Services that were open before will be closed. Services
// that are new will be opened. Service that existed and are in the new
// set will be left alone." A port that cannot be opened is logged and
// tried again on the next call.
func (s *serviceHealth) SyncServices(want map[types.NamespacedName]int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nn, hc := range s.services {
		if port, ok := want[nn]; !ok || port != hc.port {
			s.log.Debug("closing healthcheck", "service", nn.String(), "port", hc.port)
			hc.closeAll()
			delete(s.services, nn)
		}
	}
	var errs []error
	for nn, port := range want {
		if s.services[nn] != nil {
			continue
		}
		hc := &hcInstance{port: port}
		if err := s.listenAndServeAll(nn, hc); err != nil {
			s.log.Error("failed to start healthcheck", "service", nn.String(), "port", port, "err", err)
			errs = append(errs, fmt.Errorf("healthcheck of service %s on port %d: %w", nn, port, err))
			continue
		}
		s.log.Debug("opened healthcheck", "service", nn.String(), "port", port)
		s.services[nn] = hc
	}
	return errors.Join(errs...)
}

func (s *serviceHealth) listenAndServeAll(nn types.NamespacedName, hc *hcInstance) error {
	hosts := []string{""}
	if len(s.nodeIPs) > 0 {
		hosts = hosts[:0]
		for _, ip := range s.nodeIPs {
			hosts = append(hosts, ip.String())
		}
	}
	for _, host := range hosts {
		addr := net.JoinHostPort(host, strconv.Itoa(int(hc.port)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			// "must close whatever have been previously opened to allow
			// a retry/or port ownership change as needed"
			hc.closeAll()
			return err
		}
		srv := &http.Server{Handler: hcHandler{nn: nn, s: s}, ReadHeaderTimeout: 10 * time.Second}
		hc.servers = append(hc.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("healthcheck closed", "service", nn.String(), "address", addr, "err", err)
			}
		}()
	}
	return nil
}

func (hc *hcInstance) closeAll() {
	for _, srv := range hc.servers {
		_ = srv.Close()
	}
	hc.servers = nil
}

// SyncEndpoints sets the number of local ready endpoints of each served
// service; services not named have none.
func (s *serviceHealth) SyncEndpoints(counts map[types.NamespacedName]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nn, hc := range s.services {
		hc.endpoints = counts[nn]
	}
}

// Close stops every server.
func (s *serviceHealth) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nn, hc := range s.services {
		hc.closeAll()
		delete(s.services, nn)
	}
}

// Ports lists the served services and their ports.
func (s *serviceHealth) Ports() map[types.NamespacedName]int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[types.NamespacedName]int32, len(s.services))
	for nn, hc := range s.services {
		out[nn] = hc.port
	}
	return out
}

type hcHandler struct {
	nn types.NamespacedName
	s  *serviceHealth
}

func (h hcHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.s.mu.RLock()
	hc, ok := h.s.services[h.nn]
	count := 0
	if ok {
		count = hc.endpoints
	}
	h.s.mu.RUnlock()
	if !ok {
		// "Received request for closed healthcheck"
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	healthy := h.s.proxy.IsHealthy()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if count != 0 && healthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
		h.nn.Namespace, h.nn.Name, count, healthy)
}

// serveHTTP serves h on ln until ctx is done.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, what string) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(what+" server stopped", "address", ln.Addr().String(), "err", err)
	}
}
