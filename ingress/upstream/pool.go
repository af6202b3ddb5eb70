package upstream

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/internal/rawsock"
)

// Defaults of Options.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 60 * time.Second
	DefaultIdleTimeout    = 90 * time.Second
	DefaultEjectFor       = 10 * time.Second
	DefaultMaxAttempts    = 3
	DefaultMaxIdlePerHost = 256
)

// ErrNoEndpoints is returned when a backend has no ready endpoint (the
// proxy answers 503).
var ErrNoEndpoints = errors.New("no ready endpoints")

// Balance is how a Pool chooses the endpoint of a request.
type Balance uint8

const (
	// RoundRobin takes the endpoints in turn (the default).
	RoundRobin Balance = iota
	// LeastRequest takes the endpoint with the fewest requests in
	// flight, as Envoy's LEAST_REQUEST and nginx's least_conn: in a pool
	// of up to LeastRequestScan endpoints every one is looked at and ties
	// are taken in turn (nginx: "If there are several such servers, they
	// are tried in turn"); in a larger pool two distinct endpoints are
	// drawn at random and the less busy one is taken (Envoy: "selects N
	// random available hosts ... (2 by default) and picks the host which
	// has the fewest active requests", the power of two choices).
	LeastRequest
)

// LeastRequestScan is the largest pool LeastRequest scans whole.
const LeastRequestScan = 16

// String is the annotation's spelling (round_robin, least_request).
func (b Balance) String() string {
	if b == LeastRequest {
		return "least_request"
	}
	return "round_robin"
}

// Pool is the endpoints of one backend, shared by every request to it.
// Its endpoint list is replaced atomically on every change; the ejection
// state and the requests in flight of an endpoint survive the change.
type Pool struct {
	Key string

	eps     atomic.Pointer[endpointSet]
	next    atomic.Uint64
	rnd     atomic.Uint64 // LeastRequest's random draws (splitmix64 state)
	mu      sync.Mutex
	ejected map[string]time.Time // endpoint -> ejected until
	// nEjected is len(ejected), written under mu: a pick looks at the
	// ejections (and takes the lock) only when there are some.
	nEjected atomic.Int32
	now      func() time.Time
}

// Endpoint is one endpoint of a pool with its requests in flight. A
// request holds it from its pick until its response has been read (or
// it failed), and gives it back with Done.
type Endpoint struct {
	Addr   string
	active atomic.Int64
}

// Done ends one request on the endpoint (once per pick).
func (e *Endpoint) Done() { e.active.Add(-1) }

// InFlight is the number of requests on the endpoint now.
func (e *Endpoint) InFlight() int64 { return e.active.Load() }

// endpointSet is one endpoint list with its affinity tokens.
type endpointSet struct {
	list    []string
	eps     []*Endpoint          // same order as list
	byAddr  map[string]*Endpoint // addr -> endpoint
	token   map[string]string    // addr -> token
	byToken map[string]string    // token -> addr
}

// NewPool returns an empty pool for the backend key.
func NewPool(key string) *Pool {
	p := &Pool{Key: key, ejected: map[string]time.Time{}, now: time.Now}
	p.eps.Store(&endpointSet{})
	var seed [8]byte
	crand.Read(seed[:])
	p.rnd.Store(binary.LittleEndian.Uint64(seed[:]))
	return p
}

// SetEndpoints replaces the endpoint list ("ip:port", stable order).
// Ejections of endpoints no longer listed are forgotten; an endpoint
// still listed keeps its requests in flight.
func (p *Pool) SetEndpoints(eps []string) {
	old := p.eps.Load()
	set := &endpointSet{list: slices.Clone(eps), byAddr: map[string]*Endpoint{}, token: map[string]string{}, byToken: map[string]string{}}
	for _, a := range set.list {
		e := old.byAddr[a]
		if e == nil {
			e = &Endpoint{Addr: a}
		}
		set.eps = append(set.eps, e)
		set.byAddr[a] = e
		sum := sha256.Sum256([]byte(p.Key + "|" + a))
		tok := hex.EncodeToString(sum[:8])
		set.token[a], set.byToken[tok] = tok, a
	}
	p.eps.Store(set)
	p.mu.Lock()
	for a := range p.ejected {
		if !slices.Contains(set.list, a) {
			delete(p.ejected, a)
		}
	}
	p.nEjected.Store(int32(len(p.ejected)))
	p.mu.Unlock()
}

// Endpoints returns the current endpoint list (shared: read-only).
func (p *Pool) Endpoints() []string { return p.eps.Load().list }

// Token is the affinity token of an endpoint (a hash of the backend and
// the address: the cookie does not reveal the pod's address); "" for an
// endpoint not in the pool.
func (p *Pool) Token(addr string) string { return p.eps.Load().token[addr] }

// ByToken is the endpoint of an affinity token, when it is in the pool
// and not ejected.
func (p *Pool) ByToken(tok string) (string, bool) {
	a, ok := p.eps.Load().byToken[tok]
	if !ok || p.Ejected(a) {
		return "", false
	}
	return a, true
}

// Eject takes addr out of rotation for d.
func (p *Pool) Eject(addr string, d time.Duration) {
	p.mu.Lock()
	p.ejected[addr] = p.now().Add(d)
	p.nEjected.Store(int32(len(p.ejected)))
	p.mu.Unlock()
}

// Ejected reports whether addr is ejected now.
func (p *Pool) Ejected(addr string) bool {
	if p.nEjected.Load() == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ejectedLocked(addr, p.now())
}

func (p *Pool) ejectedLocked(addr string, now time.Time) bool {
	until, ok := p.ejected[addr]
	if !ok {
		return false
	}
	if now.After(until) {
		delete(p.ejected, addr)
		p.nEjected.Store(int32(len(p.ejected)))
		return false
	}
	return true
}

// InFlight is the number of requests in flight to addr (0 for an
// endpoint not in the pool).
func (p *Pool) InFlight(addr string) int64 {
	if e := p.eps.Load().byAddr[addr]; e != nil {
		return e.InFlight()
	}
	return 0
}

// Pick returns the next endpoint in round-robin order that is not in
// tried, preferring endpoints that are not ejected; when every untried
// endpoint is ejected one of them is returned anyway (trying a suspect
// endpoint is better than failing for sure, as Envoy's panic threshold).
// ok is false when no untried endpoint is left. The pick is not counted
// in flight (Acquire is).
func (p *Pool) Pick(tried []string) (addr string, ok bool) {
	e := p.pick(tried, RoundRobin)
	if e == nil {
		return "", false
	}
	return e.Addr, true
}

// Acquire picks an endpoint as b says (not in tried, ejected ones only
// when nothing else is left), counts one request in flight on it and
// returns it; the caller calls Done when the request is over. nil when no
// untried endpoint is left.
func (p *Pool) Acquire(tried []string, b Balance) *Endpoint {
	e := p.pick(tried, b)
	if e != nil {
		e.active.Add(1)
	}
	return e
}

// AcquireAddr counts a request in flight on addr (an affinity pick);
// nil when addr is not in the pool.
func (p *Pool) AcquireAddr(addr string) *Endpoint {
	e := p.eps.Load().byAddr[addr]
	if e != nil {
		e.active.Add(1)
	}
	return e
}

func (p *Pool) pick(tried []string, b Balance) *Endpoint {
	set := p.eps.Load()
	eps := set.eps
	n := len(eps)
	if n == 0 {
		return nil
	}
	if n == 1 {
		if len(tried) == 0 || !slices.Contains(tried, eps[0].Addr) {
			return eps[0]
		}
		return nil
	}
	if b == LeastRequest {
		return p.leastRequest(eps, tried)
	}
	start := int((p.next.Add(1) - 1) % uint64(n))
	var fallback *Endpoint
	locked := false
	var now time.Time
	for i := 0; i < n; i++ {
		e := eps[(start+i)%n]
		if len(tried) > 0 && slices.Contains(tried, e.Addr) {
			continue
		}
		if p.isEjected(e.Addr, &locked, &now) {
			if fallback == nil {
				fallback = e
			}
			continue
		}
		if locked {
			p.mu.Unlock()
		}
		return e
	}
	if locked {
		p.mu.Unlock()
	}
	return fallback
}

// isEjected looks addr up in the ejections, taking the lock on the first
// call of a pick (and leaving it held: the caller unlocks when *locked).
func (p *Pool) isEjected(addr string, locked *bool, now *time.Time) bool {
	if !*locked && p.nEjected.Load() == 0 {
		return false
	}
	if !*locked {
		p.mu.Lock()
		*locked = true
		*now = p.now()
	}
	return len(p.ejected) > 0 && p.ejectedLocked(addr, *now)
}

// leastRequest: see LeastRequest.
func (p *Pool) leastRequest(eps []*Endpoint, tried []string) *Endpoint {
	n := len(eps)
	locked := false
	var now time.Time
	defer func() {
		if locked {
			p.mu.Unlock()
		}
	}()
	usable := func(e *Endpoint) bool {
		return !(len(tried) > 0 && slices.Contains(tried, e.Addr)) && !p.isEjected(e.Addr, &locked, &now)
	}
	if n > LeastRequestScan {
		// The power of two choices among the usable endpoints: a few
		// draws, then the scan below when they keep hitting unusable ones.
		var a, b *Endpoint
		for i := 0; i < 8 && b == nil; i++ {
			x := p.rand()
			e := eps[x%uint64(n)]
			if e == a || !usable(e) {
				continue
			}
			if a == nil {
				a = e
			} else {
				b = e
			}
		}
		if b != nil {
			if b.active.Load() < a.active.Load() {
				return b
			}
			return a
		}
	}
	// Every endpoint: the fewest in flight, ties in turn from a rotating
	// start.
	start := int((p.next.Add(1) - 1) % uint64(n))
	var best, fallback *Endpoint
	var bestN int64
	for i := 0; i < n; i++ {
		e := eps[(start+i)%n]
		if len(tried) > 0 && slices.Contains(tried, e.Addr) {
			continue
		}
		if p.isEjected(e.Addr, &locked, &now) {
			if fallback == nil || e.active.Load() < fallback.active.Load() {
				fallback = e
			}
			continue
		}
		if k := e.active.Load(); best == nil || k < bestN {
			best, bestN = e, k
		}
	}
	if best != nil {
		return best
	}
	return fallback
}

// rand is splitmix64 over an atomic state: cheap, lock-free, good enough
// to draw endpoints.
func (p *Pool) rand() uint64 {
	z := p.rnd.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

type poolKey struct{}

// WithPool returns a context carrying the pool a request goes to; the
// Transport reads it.
func WithPool(ctx context.Context, p *Pool) context.Context {
	return context.WithValue(ctx, poolKey{}, p)
}

// PoolFrom returns the pool of WithPool.
func PoolFrom(ctx context.Context) *Pool {
	p, _ := ctx.Value(poolKey{}).(*Pool)
	return p
}

type recordKey struct{}

// Protocol is how a request reaches the endpoint.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1 over TCP (the default).
	HTTP1 Protocol = iota
	// HTTPS is HTTP/1.1 or HTTP/2 (ALPN) over TLS, the endpoint's
	// certificate not verified (pod addresses are named by no
	// certificate).
	HTTPS
	// H2C is HTTP/2 over TCP with prior knowledge (gRPC).
	H2C
)

// Record is the per-request exchange between the proxy and the
// Transport: what the request asks for, and what the Transport did.
type Record struct {
	Protocol       Protocol
	ConnectTimeout time.Duration // 0: the Transport's
	ReadTimeout    time.Duration // time to the response head; 0: the Transport's
	// Affinity is the token of the endpoint preferred (cookie affinity);
	// used when it is in the pool and not ejected.
	Affinity string
	// Balance chooses the endpoint otherwise (round-robin by default).
	Balance Balance

	// Addr is the last endpoint tried, Token its affinity token.
	Addr, Token string
}

// WithRecord returns a context carrying r to the Transport.
func WithRecord(ctx context.Context, r *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

// WithEndpointRecord returns a context in which the Transport records the
// endpoint used, read back with RecordedEndpoint.
func WithEndpointRecord(ctx context.Context) context.Context { return WithRecord(ctx, &Record{}) }

func recordFrom(ctx context.Context) *Record {
	r, _ := ctx.Value(recordKey{}).(*Record)
	return r
}

// RecordedEndpoint is the last endpoint the Transport tried for a request
// whose context came from WithRecord or WithEndpointRecord.
func RecordedEndpoint(ctx context.Context) string {
	if r := recordFrom(ctx); r != nil {
		return r.Addr
	}
	return ""
}

// DialError is a failure to connect to an endpoint: the request was not
// sent, so it may go to another endpoint.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// Options configure a Transport.
type Options struct {
	ConnectTimeout time.Duration // default DefaultConnectTimeout
	ReadTimeout    time.Duration // time to the response headers; default DefaultReadTimeout
	IdleTimeout    time.Duration // idle keep-alive connections; default DefaultIdleTimeout
	EjectFor       time.Duration // default DefaultEjectFor
	MaxAttempts    int           // endpoints tried for an idempotent request; default DefaultMaxAttempts
	MaxIdlePerHost int           // default DefaultMaxIdlePerHost
	// OnEject is called when an endpoint is ejected (metrics, logs).
	OnEject func(pool, addr string)
}

// Transport is an http.RoundTripper sending each request to an endpoint
// of the Pool in its context (WithPool), over kept-alive connections.
type Transport struct {
	base   *http.Transport // HTTPS endpoints, upgrades, Expect: 100-continue
	h2c    *http.Transport // HTTP/2 with prior knowledge
	direct *h1             // plain HTTP/1.1
	opts   Options
}

// NewTransport returns a Transport.
func NewTransport(o Options) *Transport {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.EjectFor <= 0 {
		o.EjectFor = DefaultEjectFor
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if r := recordFrom(ctx); r != nil && r.ConnectTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.ConnectTimeout)
			defer cancel()
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &DialError{Addr: addr, Err: err}
		}
		return rawsock.Wrap(c), nil
	}
	base := &http.Transport{
		Proxy:                 nil, // never an environment proxy: endpoints are dialled directly
		DialContext:           dial,
		MaxIdleConns:          0, // no global limit; per host below
		MaxIdleConnsPerHost:   o.MaxIdlePerHost,
		IdleConnTimeout:       o.IdleTimeout,
		ResponseHeaderTimeout: o.ReadTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass encodings through untouched
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
	}
	h2c := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConnsPerHost:   o.MaxIdlePerHost,
		IdleConnTimeout:       o.IdleTimeout,
		ResponseHeaderTimeout: o.ReadTimeout,
		DisableCompression:    true,
		Protocols:             new(http.Protocols),
	}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return &Transport{base: base, h2c: h2c, direct: newH1(dial, o.ReadTimeout, o.IdleTimeout, o.MaxIdlePerHost), opts: o}
}

// CloseIdleConnections closes kept-alive connections.
func (t *Transport) CloseIdleConnections() {
	t.base.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
	t.direct.closeIdle()
}

func (t *Transport) send(req *http.Request, rec *Record) (*http.Response, error) {
	proto := HTTP1
	if rec != nil {
		proto = rec.Protocol
	}
	readTO := time.Duration(0)
	if rec != nil {
		readTO = rec.ReadTimeout
	}
	rt := t.base
	switch proto {
	case HTTPS:
		req.URL.Scheme = "https"
	case H2C:
		req.URL.Scheme = "http"
		rt = t.h2c
	default:
		if h1Eligible(req) {
			return t.direct.roundTrip(req, readTO)
		}
	}
	if readTO <= 0 {
		return rt.RoundTrip(req)
	}
	return roundTripWithin(rt, req, readTO)
}

// readTimeoutError is a per-request read timeout (proxy-read-timeout) on
// the net/http paths: no response head in time.
type readTimeoutError struct{ d time.Duration }

func (e readTimeoutError) Error() string   { return fmt.Sprintf("no response head within %v", e.d) }
func (e readTimeoutError) Timeout() bool   { return true }
func (e readTimeoutError) Temporary() bool { return true }

// roundTripWithin cancels the request when its response head has not
// come within d; the body of a response that came in time is not limited.
func roundTripWithin(rt http.RoundTripper, req *http.Request, d time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(d, cancel)
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	fired := !timer.Stop()
	if err != nil {
		cancel()
		if fired && req.Context().Err() == nil {
			return nil, readTimeoutError{d}
		}
		return nil, err
	}
	if fired {
		// Lost the race: the head came as the timer fired; the cancelled
		// context may cut the body, so give the answer up as late.
		resp.Body.Close()
		cancel()
		return nil, readTimeoutError{d}
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases the request's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// idempotent: "Request methods are considered idempotent if the intended
// effect on the server of multiple identical requests with that method is
// the same as the effect for a single such request ... PUT, DELETE, and
// safe request methods are idempotent" (RFC 9110 section 9.2.2).
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// guardedBody lets a body be sent again after a failed connect: the
// underlying transport closes a request body on every error, and a dial
// failure happens before a byte of it is read.
type guardedBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.read.Store(true)
	return g.rc.Read(p)
}
func (g *guardedBody) Close() error { return nil }

// RoundTrip sends req to an endpoint of its pool; on a connect failure it
// ejects the endpoint and, for an idempotent request whose body has not
// been read, tries the next endpoint (up to MaxAttempts).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	pool := PoolFrom(req.Context())
	if pool == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("upstream: request without a pool")
	}
	rec := recordFrom(req.Context())
	var gb *guardedBody
	if req.Body != nil && req.Body != http.NoBody {
		gb = &guardedBody{rc: req.Body}
		defer req.Body.Close()
	}
	var tried []string
	var lastErr error
	for attempt := 0; attempt < t.opts.MaxAttempts; attempt++ {
		ep := acquire(pool, rec, attempt, tried, true)
		if ep == nil {
			break
		}
		addr := ep.Addr
		tried = append(tried, addr)
		out := req.WithContext(req.Context()) // shallow copy
		u := *req.URL
		u.Host = addr
		out.URL = &u
		if gb != nil {
			out.Body = gb
		}
		resp, err := t.send(out, rec)
		if err == nil {
			resp.Body = doneBody(resp.Body, ep)
			return resp, nil
		}
		ep.Done()
		lastErr = err
		var de *DialError
		if !errors.As(err, &de) {
			return nil, err
		}
		pool.Eject(addr, t.opts.EjectFor)
		if t.opts.OnEject != nil {
			t.opts.OnEject(pool.Key, addr)
		}
		if !idempotent(req.Method) || gb != nil && gb.read.Load() || req.Context().Err() != nil {
			return nil, err
		}
	}
	if lastErr == nil {
		return nil, ErrNoEndpoints
	}
	return nil, lastErr
}

// acquire picks the endpoint of an attempt and counts it in flight: the
// affinity token's endpoint first (when it is in the pool and not
// ejected), else as rec.Balance says; rec records it (and its token,
// with affinity or when token is set).
func acquire(pool *Pool, rec *Record, attempt int, tried []string, token bool) *Endpoint {
	var ep *Endpoint
	b := RoundRobin
	if rec != nil {
		b = rec.Balance
		if attempt == 0 && rec.Affinity != "" {
			if addr, ok := pool.ByToken(rec.Affinity); ok {
				ep = pool.AcquireAddr(addr)
			}
		}
	}
	if ep == nil {
		ep = pool.Acquire(tried, b)
	}
	if ep != nil && rec != nil {
		rec.Addr = ep.Addr
		if rec.Affinity != "" || token {
			rec.Token = pool.Token(ep.Addr)
		}
	}
	return ep
}

// doneBody ends the request on ep when the body is read to its end or
// closed (whichever comes first); a protocol switch's body (the
// connection, io.ReadWriteCloser) stays one, and the request is in
// flight until it is closed.
func doneBody(rc io.ReadCloser, ep *Endpoint) io.ReadCloser {
	if rc == nil || rc == http.NoBody {
		ep.Done()
		return rc
	}
	if rwc, ok := rc.(io.ReadWriteCloser); ok {
		return &doneRWC{doneReader{ReadCloser: rwc, ep: ep}, rwc}
	}
	return &doneReader{ReadCloser: rc, ep: ep}
}

type doneReader struct {
	io.ReadCloser
	ep   *Endpoint
	done atomic.Bool
}

func (d *doneReader) finish() {
	if d.done.CompareAndSwap(false, true) {
		d.ep.Done()
	}
}

func (d *doneReader) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if err != nil {
		d.finish()
	}
	return n, err
}

func (d *doneReader) Close() error {
	err := d.ReadCloser.Close()
	d.finish()
	return err
}

type doneRWC struct {
	doneReader
	w io.Writer
}

func (d *doneRWC) Write(p []byte) (int, error) { return d.w.Write(p) }
