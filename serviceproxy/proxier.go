package serviceproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
)

// kube-proxy's defaults.
const (
	DefaultMinSyncPeriod = 1 * time.Second
	DefaultSyncPeriod    = 30 * time.Second
	DefaultHealthzAddr   = "0.0.0.0:10256"
	DefaultMetricsAddr   = "127.0.0.1:10249"
)

// Config configures a Proxier.
type Config struct {
	Store    *cluster.Store // required: Services, EndpointSlices and Nodes come from here
	NodeName string         // this node (endpoints with this nodeName are local); "" = the host name
	// NodeIPs are the addresses NodePorts and healthCheckNodePort servers
	// answer on (State.Node.IPs); empty: every address.
	NodeIPs []netip.Addr
	// ClusterCIDRs are the pod ranges (State.ClusterCIDRs).
	ClusterCIDRs []netip.Prefix
	// MinSyncPeriod is the least time between the end of a sync and the
	// start of the next (changes in between are coalesced); 0 means
	// DefaultMinSyncPeriod.
	MinSyncPeriod time.Duration
	// SyncPeriod is the longest time between syncs; each periodic resync
	// is Full. 0 means DefaultSyncPeriod. A failed sync is retried after
	// MinSyncPeriod, doubling up to SyncPeriod.
	SyncPeriod time.Duration
	// HealthzAddr is where /healthz and /livez are served (kube-proxy's
	// --healthz-bind-address, DefaultHealthzAddr); "" disables them.
	HealthzAddr string
	// MetricsAddr is where /metrics is served (kube-proxy's
	// --metrics-bind-address, DefaultMetricsAddr); "" disables it. It
	// needs Gatherer (or a Registerer that is also a Gatherer).
	MetricsAddr string
	Registerer  prometheus.Registerer // nil: metrics are not registered
	Gatherer    prometheus.Gatherer
	// Metrics, when set, are the metrics to update (the ones given to the
	// backend through ModeConfig); nil builds them on Registerer for the
	// backend's mode.
	Metrics *Metrics
	Logger  *slog.Logger // nil: slog.Default()
	Backend Backend      // required
}

// Proxier is kube-proxy's core: it follows the store, coalesces changes,
// hands each new State to the Backend, and serves health and metrics.
type Proxier struct {
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	backend Backend
	health  *proxyHealth
	svcHC   *serviceHealth
	tracker *tracker
	builder *stateBuilder
	runner  *runner

	gatherer prometheus.Gatherer

	running   atomic.Bool
	synced    chan struct{}
	syncOnce  sync.Once
	applied   atomic.Pointer[State]
	healthzLn atomic.Pointer[net.Addr]
	metricsLn atomic.Pointer[net.Addr]
}

// New checks cfg and builds a Proxier. It has no side effects: Run starts
// it.
func New(cfg Config) (*Proxier, error) {
	if cfg.Store == nil {
		return nil, errors.New("serviceproxy: Config.Store is required")
	}
	if cfg.Backend == nil {
		return nil, errors.New("serviceproxy: Config.Backend is required")
	}
	if cfg.MinSyncPeriod < 0 {
		return nil, fmt.Errorf("serviceproxy: Config.MinSyncPeriod %v: must not be negative", cfg.MinSyncPeriod)
	}
	if cfg.SyncPeriod < 0 {
		return nil, fmt.Errorf("serviceproxy: Config.SyncPeriod %v: must not be negative", cfg.SyncPeriod)
	}
	if cfg.MinSyncPeriod == 0 {
		cfg.MinSyncPeriod = DefaultMinSyncPeriod
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.SyncPeriod < cfg.MinSyncPeriod {
		return nil, fmt.Errorf("serviceproxy: Config.SyncPeriod %v: must be at least MinSyncPeriod (%v)", cfg.SyncPeriod, cfg.MinSyncPeriod)
	}
	for i, a := range cfg.NodeIPs {
		if !a.IsValid() {
			return nil, fmt.Errorf("serviceproxy: Config.NodeIPs[%d]: not a valid address", i)
		}
	}
	for i, p := range cfg.ClusterCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("serviceproxy: Config.ClusterCIDRs[%d]: not a valid prefix", i)
		}
	}
	for _, a := range []struct{ field, addr string }{{"HealthzAddr", cfg.HealthzAddr}, {"MetricsAddr", cfg.MetricsAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return nil, fmt.Errorf("serviceproxy: Config.%s %q: %w", a.field, a.addr, err)
		}
	}
	gatherer := cfg.Gatherer
	if gatherer == nil {
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			gatherer = g
		}
	}
	if cfg.MetricsAddr != "" && gatherer == nil {
		return nil, errors.New("serviceproxy: Config.MetricsAddr needs a Gatherer")
	}
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("serviceproxy: Config.NodeName is empty and the host name is unknown: %w", err)
		}
		cfg.NodeName = strings.ToLower(strings.TrimSpace(h))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "kube-proxy", "mode", cfg.Backend.Name())
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics(cfg.Registerer, cfg.Backend.Name())
	}
	p := &Proxier{
		cfg:      cfg,
		log:      log,
		m:        m,
		backend:  cfg.Backend,
		gatherer: gatherer,
		synced:   make(chan struct{}),
	}
	// "healthTimeout": kube-proxy gives its health server twice the sync
	// period.
	p.health = newProxyHealth(2*cfg.SyncPeriod, m)
	p.svcHC = newServiceHealth(cfg.NodeIPs, p.health, log)
	p.runner = newRunner(cfg.MinSyncPeriod, cfg.SyncPeriod, p.sync)
	p.tracker = newTracker(cfg.NodeName, log, m, p.queue, p.health.SetNodeEligible)
	p.builder = newStateBuilder(Node{Name: cfg.NodeName, IPs: cfg.NodeIPs}, cfg.ClusterCIDRs)
	return p, nil
}

// queue asks for a sync after a change.
func (p *Proxier) queue() {
	p.health.QueuedUpdate()
	p.m.SyncProxyRulesLastQueuedTimestamp.SetToCurrentTime()
	p.runner.Run()
}

// Synced is closed once the first State has been applied.
func (p *Proxier) Synced() <-chan struct{} { return p.synced }

// State is the last State the backend applied (nil before the first).
func (p *Proxier) State() *State { return p.applied.Load() }

// HealthzAddr is the address /healthz listens on once Run has bound it
// (nil before, or when disabled).
func (p *Proxier) HealthzAddr() net.Addr {
	if a := p.healthzLn.Load(); a != nil {
		return *a
	}
	return nil
}

// MetricsAddr is the address /metrics listens on once Run has bound it.
func (p *Proxier) MetricsAddr() net.Addr {
	if a := p.metricsLn.Load(); a != nil {
		return *a
	}
	return nil
}

// HealthCheckPorts lists the healthCheckNodePort servers running now.
func (p *Proxier) HealthCheckPorts() map[types.NamespacedName]int32 { return p.svcHC.Ports() }

// subscriptions follow the store until stopped.
type subscriptions []*cluster.Subscription

func (s subscriptions) wait(ctx context.Context) error {
	for _, x := range s {
		select {
		case <-x.Synced():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s subscriptions) stop() {
	for _, x := range s {
		x.Stop()
	}
}

func (p *Proxier) subscribe() subscriptions {
	st := p.cfg.Store
	return subscriptions{
		st.Subscribe(cluster.KindNode, p.tracker.nodeHandler(), 0),
		st.Subscribe(cluster.KindService, p.tracker.serviceHandler(), 0),
		st.Subscribe(cluster.KindEndpointSlice, p.tracker.sliceHandler(), 0),
	}
}

// Run serves health and metrics, follows the store and syncs the backend
// until ctx is done; it returns nil then, or an error when an address
// cannot be bound. It does every network operation (listeners,
// Backend.Sync, the healthCheckNodePort servers) in the calling goroutine,
// so a caller whose OS thread is locked into a network namespace runs the
// proxy in that namespace. Rules stay in place when Run returns (as
// kube-proxy leaves them); Backend.Cleanup removes them.
func (p *Proxier) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("serviceproxy: a Proxier runs (or snapshots) once")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	serve := func(addr string, h http.Handler, what string, store *atomic.Pointer[net.Addr]) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s server on %s: %w", what, addr, err)
		}
		a := ln.Addr()
		store.Store(&a)
		p.log.Info("serving "+what, "address", a.String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveHTTP(ctx, ln, h, p.log, what)
		}()
		return nil
	}
	if err := serve(p.cfg.HealthzAddr, p.health.handler(), "healthz", &p.healthzLn); err != nil {
		return err
	}
	if err := serve(p.cfg.MetricsAddr, p.metricsHandler(), "metrics", &p.metricsLn); err != nil {
		return err
	}
	subs := p.subscribe()
	defer subs.stop()
	defer p.svcHC.Close()
	if err := subs.wait(ctx); err != nil {
		return nil
	}
	p.log.Info("informers synced; starting the sync loop", "minSyncPeriod", p.cfg.MinSyncPeriod, "syncPeriod", p.cfg.SyncPeriod)
	p.runner.Loop(ctx)
	return nil
}

func (p *Proxier) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, p.backend.Name())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// Snapshot follows the store until its informers have synced and returns
// the full desired State then, without calling the backend (for
// --dry-run). A Proxier either runs or snapshots, once.
func (p *Proxier) Snapshot(ctx context.Context) (*State, error) {
	if !p.running.CompareAndSwap(false, true) {
		return nil, errors.New("serviceproxy: a Proxier runs (or snapshots) once")
	}
	subs := p.subscribe()
	defer subs.stop()
	if err := subs.wait(ctx); err != nil {
		return nil, err
	}
	return p.builder.build(p.tracker.checkout(), true), nil
}

// sync is the runner's function: one Backend.Sync of the current state.
func (p *Proxier) sync(ctx context.Context, full bool) error {
	c := p.tracker.checkout()
	if !full && len(c.services) == 0 && !c.nodeChanged && p.builder.applied != nil && len(p.builder.unapplied) == 0 {
		// Nothing changed since the last applied State.
		p.health.Updated()
		return nil
	}
	st := p.builder.build(c, full)
	start := time.Now()
	err := p.backend.Sync(ctx, st)
	took := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		p.m.SyncFailuresTotal.Inc()
		// A backend that keeps failing makes the proxy unhealthy once
		// the failure is older than the health timeout.
		p.health.QueuedUpdate()
		p.log.Error("sync failed; retrying with a full sync", "generation", st.Generation, "full", st.Full, "took", took, "err", err)
		return err
	}
	p.m.SyncProxyRulesLatency.Observe(took.Seconds())
	if st.Full {
		p.m.SyncFullProxyRulesLatency.Observe(took.Seconds())
	} else {
		p.m.SyncPartialProxyRulesLatency.Observe(took.Seconds())
	}
	p.m.SyncProxyRulesLastTimestamp.SetToCurrentTime()
	for _, times := range p.builder.markApplied(st) {
		for _, t := range times {
			p.m.NetworkProgrammingLatency.Observe(time.Since(t).Seconds())
		}
	}
	p.health.Updated()
	p.applied.Store(st)
	p.log.Debug("synced", "generation", st.Generation, "full", st.Full, "services", len(st.Services), "changed", len(st.Changed), "took", took)

	internal, external, hcPorts, local := localEndpointStats(st)
	p.m.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("internal").Set(float64(internal))
	p.m.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("external").Set(float64(external))
	// "Update service healthchecks. The endpoints list might include
	// services that are not "OnlyLocal", but the services list will not,
	// and the serviceHealthServer will just drop those endpoints."
	_ = p.svcHC.SyncServices(hcPorts) // errors are logged; retried next sync
	p.svcHC.SyncEndpoints(local)
	p.syncOnce.Do(func() { close(p.synced) })
	return nil
}

// localEndpointStats computes, from a State, kube-proxy's
// no_local_endpoints counts ("internal": internalTrafficPolicy Local,
// "external": externalTrafficPolicy Local, each counting service ports
// that have endpoints somewhere but none usable on this node), the
// healthCheckNodePorts to serve, and the number of distinct local ready
// endpoint IPs of those services ("Only add ready endpoints for health
// checking. Terminating endpoints may still serve traffic but the health
// check signal should fail if there are only terminating endpoints on a
// node.").
func localEndpointStats(st *State) (internal, external int, hcPorts map[types.NamespacedName]int32, local map[types.NamespacedName]int) {
	hcPorts = map[types.NamespacedName]int32{}
	local = map[types.NamespacedName]int{}
	localIPs := map[types.NamespacedName]map[netip.Addr]struct{}{}
	for name, sp := range st.Services {
		eps := st.Endpoints[name]
		if sp.HealthCheckNodePort != 0 {
			hcPorts[name.NamespacedName] = sp.HealthCheckNodePort
			set := localIPs[name.NamespacedName]
			if set == nil {
				set = map[netip.Addr]struct{}{}
				localIPs[name.NamespacedName] = set
			}
			for _, e := range eps {
				if e.Ready && e.IsLocal {
					set[e.IP] = struct{}{}
				}
			}
		}
		if !sp.InternalPolicyLocal && !sp.ExternalPolicyLocal {
			continue
		}
		_, localEps, _, hasAny := CategorizeEndpoints(eps, sp, st.Node.Name, st.Node.Zone)
		// As the proxiers: without any endpoint the service rejects; with
		// endpoints elsewhere only, a Local policy drops and counts.
		if !hasAny || len(localEps) > 0 {
			continue
		}
		if sp.InternalPolicyLocal {
			internal++
		}
		if sp.ExternalPolicyLocal {
			external++
		}
	}
	for nn, set := range localIPs {
		local[nn] = len(set)
	}
	return
}
