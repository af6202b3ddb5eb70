// Package ingress is switchboard's L7 ingress controller: it serves the
// Ingresses of its IngressClass (controller "switchboard.dev/ingress")
// from a cluster.Store, on an HTTP and an HTTPS listener, straight to the
// ready endpoints of the backend Services.
//
// On every change of an IngressClass, Ingress, Service, EndpointSlice or
// Secret it rebuilds, from the whole state, the routing table
// (ingress/routing), the endpoint pools (ingress/upstream) and the
// certificate table (ingress/certs), and swaps them in atomically: a
// request sees one consistent snapshot. It reports conflicts and unusable
// parts of Ingresses as Events and log lines, serves /healthz, /readyz and
// /metrics on a status listener and writes a JSON access log.
//
// HTTP/1.1 connections (plain and TLS) are served by a fast path of its
// own (fastpath.go: plain GET/HEAD to plain-HTTP routes whose policy it
// applies itself - no affinity, basic auth or canary - parsed
// in place and relayed over kept-alive endpoint connections on the
// connection's goroutine); every other request, and the connection from
// then on, goes to net/http's server and httputil.ReverseProxy.
//
// The package owns the servers, the request path (normalise, match,
// redirect, annotation policies, proxy) and the wiring; the rules
// themselves live in its sub-packages. It reads the store and writes only
// Events and the status.loadBalancer of the Ingresses it serves; it must
// not start pods or change other components' objects.
package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/acme"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/certs"
	"github.com/switchboard-dev/switchboard/ingress/guard"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/ingress/upstream"
)

// Component is the source of the controller's Events.
const Component = "switchboard-ingress"

// Defaults of Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultMaxHeaders        = 100
	DefaultShutdownTimeout   = 10 * time.Second
)

// Config configures the controller.
type Config struct {
	Store *cluster.Store
	// HTTPAddr and HTTPSAddr are the listeners ("127.0.0.1:8080"; port 0
	// picks a free port; "" disables the listener). StatusAddr serves
	// /healthz, /readyz and /metrics ("" disables it).
	HTTPAddr, HTTPSAddr, StatusAddr string
	// Controller is the IngressClass spec.controller served; default
	// routing.ControllerName.
	Controller string
	// DefaultCertificate is served for names without a Secret; nil: a
	// self-signed one is generated.
	DefaultCertificate *tls.Certificate

	// Upstream timeouts and passive health (upstream.Options defaults).
	ConnectTimeout, ReadTimeout, UpstreamIdleTimeout, EjectFor time.Duration
	// LoadBalance is how endpoints are picked for Ingresses without the
	// switchboard.dev/load-balance annotation: round_robin ("", the
	// default) or least_request.
	LoadBalance annotations.LoadBalance

	// Client-side limits: ReadHeaderTimeout (against slowloris),
	// IdleTimeout of kept-alive client connections, MaxHeaderBytes (the
	// whole head, HTTP/1 and HTTP/2) and MaxHeaders (header fields).
	ReadHeaderTimeout, IdleTimeout time.Duration
	MaxHeaderBytes, MaxHeaders     int

	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves; nil: Registerer when it is one,
	// else nothing.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// AccessLog receives one record per request (use a JSON handler);
	// nil: no access log.
	AccessLog *slog.Logger
	// Recorder writes the Events; nil: one for Component on this host.
	Recorder *cluster.Recorder
	// PublishAddress is the IP written to the served Ingresses'
	// status.loadBalancer.ingress; "": PublishService's addresses, else
	// the HTTPS listener's IP.
	PublishAddress string
	// PublishService ("NAMESPACE/NAME") is the Service in front of the
	// controller whose addresses the served Ingresses publish, as
	// ingress-nginx's --publish-service: its load-balancer ingress points
	// and external IPs (LoadBalancer), external IPs or else its cluster
	// IP (NodePort), its cluster IP (ClusterIP), its external name
	// (ExternalName).
	PublishService string
	// ACME, when not nil, obtains the certificates of Ingresses annotated
	// switchboard.dev/acme: "true" from ACME.DirectoryURL (its Store,
	// Logger, Recorder and Registerer default to the controller's). The
	// HTTP-01 challenges are answered on the HTTP listener.
	ACME *acme.Config
}

// snapshot is what one request sees.
type snapshot struct {
	table    *routing.Table
	pools    map[string]*upstream.Pool
	noPool   map[string]error // why a service backend has no pool
	certs    *certs.Table
	httpsSfx string // ":port" of HTTPS redirects ("" for 443)
	// policies are the annotations of the Ingresses that have some.
	policies map[types.NamespacedName]*policy
	// obs caches the metric children of the fast path (obsKey -> *obsEntry).
	obs sync.Map
}

// Controller is a running ingress controller.
type Controller struct {
	cfg     Config
	balance upstream.Balance // Config.LoadBalance
	log     *slog.Logger
	rec     *cluster.Recorder
	metrics *metrics

	httpLn, httpsLn, statusLn net.Listener

	loader    *certs.Loader
	certStore *certs.Store
	transport *upstream.Transport
	proxy     *httputil.ReverseProxy

	snap  atomic.Pointer[snapshot]
	kick  chan struct{}
	ready chan struct{}

	// owned by the sync loop
	pools    map[string]*upstream.Pool
	policies map[types.NamespacedName]*policy
	reported map[string]bool

	bufPool sync.Pool

	// fastHTTP and fastHTTPS are the fast paths of the listeners (nil
	// without the listener).
	fastHTTP, fastHTTPS *fastServer

	acme *acme.Manager // nil without Config.ACME
}

// New checks the configuration and binds the listeners (so that their
// addresses are known and taken before Run).
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil {
		return nil, errors.New("ingress: Config.Store is required")
	}
	if cfg.HTTPAddr == "" && cfg.HTTPSAddr == "" {
		return nil, errors.New("ingress: at least one of the HTTP and HTTPS addresses is required")
	}
	if cfg.Controller == "" {
		cfg.Controller = routing.ControllerName
	}
	if cfg.LoadBalance == "" {
		cfg.LoadBalance = annotations.RoundRobin
	}
	if _, ok := annotations.ParseLoadBalance(string(cfg.LoadBalance)); !ok {
		return nil, fmt.Errorf("ingress: Config.LoadBalance %q: must be one of %s", cfg.LoadBalance, strings.Join(annotations.LoadBalances, ", "))
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxHeaders <= 0 {
		cfg.MaxHeaders = DefaultMaxHeaders
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rec := cfg.Recorder
	if rec == nil {
		host, _ := os.Hostname()
		rec = cluster.NewRecorder(cfg.Store, Component, host)
	}
	loader, err := certs.NewLoader(cfg.DefaultCertificate)
	if err != nil {
		return nil, fmt.Errorf("ingress: default certificate: %w", err)
	}
	c := &Controller{
		cfg: cfg, balance: toBalance(cfg.LoadBalance), log: log, rec: rec, metrics: newMetrics(cfg.Registerer),
		loader: loader, certStore: certs.NewStore(loader.Default()),
		kick: make(chan struct{}, 1), ready: make(chan struct{}),
		pools: map[string]*upstream.Pool{}, reported: map[string]bool{},
	}
	if cfg.ACME != nil {
		ac := *cfg.ACME
		if ac.Store == nil {
			ac.Store = cfg.Store
		}
		if ac.Logger == nil {
			ac.Logger = log
		}
		if ac.Recorder == nil {
			ac.Recorder = rec
		}
		if ac.Registerer == nil {
			ac.Registerer = cfg.Registerer
		}
		if c.acme, err = acme.New(ac); err != nil {
			return nil, fmt.Errorf("ingress: %w", err)
		}
	}
	c.bufPool.New = func() any { b := make([]byte, 32<<10); return &b }
	c.transport = upstream.NewTransport(upstream.Options{
		ConnectTimeout: cfg.ConnectTimeout, ReadTimeout: cfg.ReadTimeout, IdleTimeout: cfg.UpstreamIdleTimeout, EjectFor: cfg.EjectFor,
		OnEject: func(pool, addr string) {
			c.metrics.ejections.WithLabelValues(pool).Inc()
			c.log.Warn("endpoint ejected after a failed connect", "backend", pool, "endpoint", addr, "for", ejectFor(cfg))
		},
	})
	c.proxy = &httputil.ReverseProxy{
		Rewrite:        c.rewrite,
		Transport:      c.transport,
		ErrorHandler:   c.proxyError,
		ModifyResponse: c.modifyResponse,
		BufferPool:     (*bufferPool)(&c.bufPool),
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	c.snap.Store(&snapshot{table: routing.Build(routing.Input{}), certs: c.certStore.Table()})

	listen := func(what, addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("ingress: %s address %s: %w", what, addr, err)
		}
		return ln, nil
	}
	if c.httpLn, err = listen("HTTP", cfg.HTTPAddr); err != nil {
		return nil, err
	}
	if c.httpsLn, err = listen("HTTPS", cfg.HTTPSAddr); err != nil {
		c.closeListeners()
		return nil, err
	}
	if c.statusLn, err = listen("status", cfg.StatusAddr); err != nil {
		c.closeListeners()
		return nil, err
	}
	if c.httpLn != nil {
		c.fastHTTP = newFastServer(c, false, c.httpLn.Addr(), newChanListener(c.httpLn.Addr()))
	}
	if c.httpsLn != nil {
		c.fastHTTPS = newFastServer(c, true, c.httpsLn.Addr(), nil) // handoff: the TLS splitter's HTTP/1 listener
	}
	return c, nil
}

// balanceOf is the load balancing of an Ingress's requests: its
// annotation's, else the controller's default.
func (c *Controller) balanceOf(pol *policy) upstream.Balance {
	if pol != nil && pol.ownBalance {
		return pol.balance
	}
	return c.balance
}

func ejectFor(cfg Config) time.Duration {
	if cfg.EjectFor > 0 {
		return cfg.EjectFor
	}
	return upstream.DefaultEjectFor
}

type bufferPool sync.Pool

func (p *bufferPool) Get() []byte  { return *((*sync.Pool)(p).Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { (*sync.Pool)(p).Put(&b) }

func (c *Controller) closeListeners() {
	for _, ln := range []net.Listener{c.httpLn, c.httpsLn, c.statusLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

func addrOf(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// HTTPAddr, HTTPSAddr and StatusAddr are the bound addresses (nil when
// disabled).
func (c *Controller) HTTPAddr() net.Addr   { return addrOf(c.httpLn) }
func (c *Controller) HTTPSAddr() net.Addr  { return addrOf(c.httpsLn) }
func (c *Controller) StatusAddr() net.Addr { return addrOf(c.statusLn) }

// Ready is closed once the first routing table is in force.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Table is the routing table in force.
func (c *Controller) Table() *routing.Table { return c.snap.Load().table }

// Run serves until ctx is done, then shuts the servers down gracefully.
func (c *Controller) Run(ctx context.Context) error {
	defer c.closeListeners()
	defer c.transport.CloseIdleConnections()
	h := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(any, bool) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	}
	var subs []*cluster.Subscription
	for _, k := range []*cluster.Kind{cluster.KindIngressClass, cluster.KindIngress, cluster.KindService, cluster.KindEndpointSlice, cluster.KindSecret} {
		subs = append(subs, c.cfg.Store.Subscribe(k, h, 0))
	}
	defer func() {
		for _, s := range subs {
			s.Stop()
		}
	}()
	for _, s := range subs {
		select {
		case <-s.Synced():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.sync()
	close(c.ready)
	acmeDone := make(chan struct{})
	if c.acme != nil {
		go func() { defer close(acmeDone); c.acme.Run(ctx) }()
	} else {
		close(acmeDone)
	}
	defer func() { <-acmeDone }()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.kick:
				c.sync()
			}
		}
	}()

	var servers []*http.Server
	errc := make(chan error, 4)
	serve := func(srv *http.Server, ln net.Listener) {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	// HTTP/1.x connections start on the fast path (fastpath.go), which
	// hands to net/http what it does not serve itself.
	var fast []*fastServer
	if c.httpLn != nil {
		srv := c.server(false)
		servers = append(servers, srv)
		fs := c.fastHTTP
		fast = append(fast, fs)
		serve(srv, fs.handoff)
		g := &guard.Listener{MaxHeaders: c.cfg.MaxHeaders, OnRefuse: c.onRefuse}
		go func() {
			if err := fs.serve(c.httpLn, g); err != nil {
				errc <- err
			}
		}()
	}
	if c.httpsLn != nil {
		srv := c.server(true)
		srv.TLSConfig = certs.ServerConfig(c.certStore)
		split := newTLSSplitter(c.httpsLn, srv.TLSConfig, c.cfg.ReadHeaderTimeout, &guard.Listener{MaxHeaders: c.cfg.MaxHeaders, OnRefuse: c.onRefuse}, c.log)
		fs := c.fastHTTPS
		fs.handoff = split.h1
		fast = append(fast, fs)
		split.fast = fs.serveConn
		go split.run()
		servers = append(servers, srv)
		serve(srv, split.h2)
		serve(srv, split.h1)
	}
	if c.statusLn != nil {
		srv := &http.Server{Handler: c.statusHandler(), ReadHeaderTimeout: c.cfg.ReadHeaderTimeout}
		servers = append(servers, srv)
		serve(srv, c.statusLn)
	}
	c.log.Info("ingress controller serving", "http", addrOf(c.httpLn), "https", addrOf(c.httpsLn), "status", addrOf(c.statusLn), "controller", c.cfg.Controller)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	for _, fs := range fast {
		fs.closing.Store(true)
	}
	for _, ln := range []net.Listener{c.httpLn, c.httpsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	for _, fs := range fast {
		fs.shutdown(sctx)
	}
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	<-loopDone
	return err
}

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) onRefuse(conn net.Conn, err *guard.Error) {
	c.log.Warn("request refused", "client", conn.RemoteAddr().String(), "reason", err.Reason)
}

func (c *Controller) server(secure bool) *http.Server {
	srv := &http.Server{
		Handler:           &handler{c: c, secure: secure},
		ReadHeaderTimeout: c.cfg.ReadHeaderTimeout,
		IdleTimeout:       c.cfg.IdleTimeout,
		MaxHeaderBytes:    c.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	if secure {
		srv.ConnContext = tlsConnContext
	} else {
		// HTTP/2 with prior knowledge (h2c) on the plain listener, for
		// gRPC clients without TLS; the guard lets the "PRI *" preface
		// through, HTTP/1.1 is served as before. No h2c upgrade
		// ("Upgrade: h2c" was removed by RFC 9113).
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// sync rebuilds the snapshot from the whole state and swaps it in.
func (c *Controller) sync() {
	s := c.cfg.Store
	classes := cluster.List[*networkingv1.IngressClass](s, "", nil)
	var ours []*networkingv1.Ingress
	for _, ing := range cluster.List[*networkingv1.Ingress](s, "", nil) {
		if ing.DeletionTimestamp == nil && routing.Ours(ing, classes, c.cfg.Controller) {
			ours = append(ours, ing)
		}
	}
	accepted, pols, refused := buildPolicies(s, ours, c.policies)
	c.policies = pols
	tbl := routing.Build(routing.Input{Classes: classes, Ingresses: accepted, Controller: c.cfg.Controller,
		IsCanary: func(ing *networkingv1.Ingress) bool {
			p := pols[types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}]
			return p != nil && p.cfg.Canary != nil
		}})

	pools := map[string]*upstream.Pool{}
	noPool := map[string]error{}
	for _, b := range tbl.Backends() {
		if b.Resource != nil {
			continue
		}
		key := b.Key()
		svc, err := cluster.Get[*corev1.Service](s, b.Namespace, b.Service)
		if err != nil {
			svc = nil
		}
		sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: b.Service})
		eps, err := upstream.Endpoints(b, svc, cluster.List[*discoveryv1.EndpointSlice](s, b.Namespace, sel))
		if err != nil {
			noPool[key] = err
			continue
		}
		p := c.pools[key]
		if p == nil {
			p = upstream.NewPool(key)
		}
		p.SetEndpoints(eps)
		pools[key] = p
	}
	for key := range c.pools {
		if pools[key] == nil {
			c.metrics.endpoints.DeleteLabelValues(key)
		}
	}
	for key, p := range pools {
		c.metrics.endpoints.WithLabelValues(key).Set(float64(len(p.Endpoints())))
	}
	c.pools = pools

	certTbl, certProblems := c.loader.Build(tbl.Ingresses, func(ns, name string) (*corev1.Secret, error) {
		return cluster.Get[*corev1.Secret](s, ns, name)
	})
	var annotated []*networkingv1.Ingress
	for _, ing := range tbl.Ingresses {
		if p := pols[types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}]; p != nil && p.cfg.ACME {
			annotated = append(annotated, ing)
		}
	}
	if c.acme == nil {
		for _, ing := range annotated {
			certProblems = append(certProblems, certs.Problem{Ingress: ing, Field: "metadata.annotations[" + annotations.Prefix + annotations.ACME + "]",
				Reason: "this controller has no ACME directory configured (--acme-directory): the TLS Secrets are not obtained"})
		}
	} else {
		acmeProblems := c.acme.SetIngresses(annotated)
		// A Secret the ACME manager is still to obtain is expected to be
		// missing: its hosts get the default certificate meanwhile.
		certProblems = slices.DeleteFunc(certProblems, func(p certs.Problem) bool {
			var i int
			if _, err := fmt.Sscanf(p.Field, "spec.tls[%d].secretName", &i); err != nil || i < 0 || i >= len(p.Ingress.Spec.TLS) {
				return false
			}
			name := p.Ingress.Spec.TLS[i].SecretName
			if !c.acme.Manages(p.Ingress.Namespace, name) {
				return false
			}
			_, err := cluster.Get[*corev1.Secret](s, p.Ingress.Namespace, name)
			return err != nil
		})
		certProblems = append(certProblems, acmeProblems...)
	}
	c.certStore.Set(certTbl)
	sfx := ""
	if c.httpsLn != nil {
		if _, port, err := net.SplitHostPort(c.httpsLn.Addr().String()); err == nil && port != "443" {
			sfx = ":" + port
		}
	}
	c.snap.Store(&snapshot{table: tbl, pools: pools, noPool: noPool, certs: certTbl, httpsSfx: sfx, policies: pols})
	c.metrics.syncs.Inc()
	c.metrics.conflicts.Set(float64(len(tbl.Conflicts)))
	c.report(tbl, certProblems, noPool, refused)
	c.writeStatus(ours, tbl.Ingresses)
}

// report tells each conflict and problem once (as long as it lasts) as a
// Warning Event on the Ingress concerned and a log line.
func (c *Controller) report(tbl *routing.Table, certProblems []certs.Problem, noPool map[string]error, refused []refusal) {
	now := map[string]bool{}
	tell := func(key string, ing *networkingv1.Ingress, reason, msg string) {
		now[key] = true
		if c.reported[key] {
			return
		}
		c.rec.Eventf(ing, corev1.EventTypeWarning, reason, "%s", msg)
		c.log.Warn(msg, "ingress", ing.Namespace+"/"+ing.Name, "reason", reason)
	}
	for _, r := range refused {
		tell("refused|"+r.ing.Namespace+"/"+r.ing.Name+"|"+r.msg, r.ing, "InvalidAnnotation", r.msg)
	}
	for _, cf := range tbl.Conflicts {
		tell("conflict|"+cf.Key(), cf.Loser, "Conflict", cf.String())
	}
	for _, p := range tbl.Problems {
		tell("problem|"+p.String(), p.Ingress, "Invalid", p.String())
	}
	for _, p := range certProblems {
		tell("tls|"+p.String(), p.Ingress, "TLSSecret", p.String())
	}
	for _, r := range tbl.Routes() {
		if err := noPool[r.Backend.Key()]; err != nil {
			ing := findIngress(tbl.Ingresses, r.Ingress.Namespace, r.Ingress.Name)
			if ing != nil {
				tell("backend|"+r.Ingress.String()+"|"+err.Error(), ing, "BackendNotFound", fmt.Sprintf("Ingress %s: backend %s: %v", r.Ingress, r.Backend, err))
			}
		}
	}
	c.reported = now
}

func findIngress(ings []*networkingv1.Ingress, ns, name string) *networkingv1.Ingress {
	i := slices.IndexFunc(ings, func(x *networkingv1.Ingress) bool { return x.Namespace == ns && x.Name == name })
	if i < 0 {
		return nil
	}
	return ings[i]
}

func (c *Controller) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		select {
		case <-c.ready:
			fmt.Fprintln(w, "ok")
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "routing table not built yet")
		}
	})
	g := c.cfg.Gatherer
	if g == nil {
		if rg, ok := c.cfg.Registerer.(prometheus.Gatherer); ok {
			g = rg
		} else {
			g = prometheus.NewRegistry()
		}
	}
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}

// portOf is the port of a listener address, as a string.
func portOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return strconv.Itoa(t.Port)
	}
	return ""
}

// ACME is the certificate manager (nil without Config.ACME).
func (c *Controller) ACME() *acme.Manager { return c.acme }
