package ingress

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/ingress/acme"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/ingress/upstream"
)

// handler serves one listener (plain or TLS).
type handler struct {
	c      *Controller
	secure bool
}

// reqInfo travels in the request context from the handler to Rewrite and
// the error handler.
type reqInfo struct {
	path      string // normalised
	requestID string
	proto     string // http or https
	port      string // the listener's port
	status    int    // set by the error handler
	affinity  *annotations.CookieAffinity
	rec       *upstream.Record
	tooLarge  atomic.Bool // the request body passed proxy-body-size
}

// limitedBody notes in the request's info that the body was cut at the
// size limit (the HTTP client code wraps body errors in a type errors.As
// cannot see through).
type limitedBody struct {
	io.ReadCloser
	info *reqInfo
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, ok := err.(*http.MaxBytesError); ok {
		b.info.tooLarge.Store(true)
	}
	return n, err
}

type infoKey struct{}

// statusRecorder records the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush is here for callers that test for http.Flusher.
func (w *statusRecorder) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// validRequestID accepts an incoming X-Request-ID of visible ASCII up to
// 128 bytes; anything else is replaced.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func textError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s: %s\n", code, http.StatusText(code), msg)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	start := time.Now()
	rw := &statusRecorder{ResponseWriter: w}
	snap := c.snap.Load()
	if h.secure && r.TLS == nil {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
	}
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	info := &reqInfo{requestID: id, proto: "http"}
	if h.secure {
		info.proto = "https"
		info.port = portOf(c.httpsLn.Addr())
	} else {
		info.port = portOf(c.httpLn.Addr())
	}
	var route *routing.Route
	pctx := r.Context()
	defer func() { c.observe(pctx, r, rw, route, info, start) }()

	switch {
	case len(r.Header) > c.cfg.MaxHeaders:
		textError(rw, http.StatusRequestHeaderFieldsTooLarge, "too many header fields")
		return
	case r.Method == http.MethodConnect:
		textError(rw, http.StatusMethodNotAllowed, "CONNECT is not proxied")
		return
	}
	path, err := routing.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		textError(rw, http.StatusBadRequest, err.Error())
		return
	}
	info.path = path
	// ACME HTTP-01 challenges of our own orders are answered before
	// routing, the 421 check and the redirect to HTTPS (RFC 8555 section
	// 8.3: the server fetches http://{domain}/.well-known/acme-challenge/{token}).
	if c.acme != nil && strings.HasPrefix(path, acme.ChallengePrefix) && c.acme.HandleChallenge(rw, r) {
		return
	}
	host := routing.NormalizeHost(r.Host)
	if h.secure && r.TLS != nil {
		// RFC 9110 section 15.5.20: 421 Misdirected Request "indicates that
		// the request was directed at a server that is unable or unwilling
		// to produce an authoritative response for the target URI" - a
		// connection set up for one name (SNI) reused for a host that has
		// a different certificate.
		if sni := routing.NormalizeHost(r.TLS.ServerName); sni != host {
			a, _ := snap.certs.Lookup(sni)
			b, _ := snap.certs.Lookup(host)
			if a != b {
				textError(rw, http.StatusMisdirectedRequest, "the TLS server name does not cover this host")
				return
			}
		}
	}
	route = snap.table.Match(host, path)
	if route == nil {
		textError(rw, http.StatusNotFound, "no Ingress rule matches this host and path")
		return
	}
	pol := snap.policies[route.Ingress] // nil: no annotations
	var cfg *annotations.Config
	if pol != nil {
		cfg = pol.cfg
	}
	var client netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		client = ap.Addr().Unmap()
	}
	if cfg != nil && len(cfg.SourceRanges) > 0 && !cfg.AllowedFrom(client) {
		textError(rw, http.StatusForbidden, "the client address is not in the Ingress's allowed source ranges")
		return
	}
	if !h.secure && route.TLS && c.httpsLn != nil && cfg.Redirect() {
		hostOnly := r.Host
		if hh, _, err := net.SplitHostPort(r.Host); err == nil {
			hostOnly = hh
		}
		if ip := net.ParseIP(hostOnly); ip != nil && ip.To4() == nil {
			hostOnly = "[" + hostOnly + "]"
		}
		// 308 keeps the method and body (RFC 9110 section 15.4.9).
		rw.Header().Set("Location", "https://"+hostOnly+snap.httpsSfx+r.URL.RequestURI())
		rw.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	if pol != nil && pol.auth != nil {
		user, pass, ok := r.BasicAuth()
		if !ok || !pol.auth.Check(user, pass) {
			// RFC 7617 section 2: the challenge names the realm; charset
			// UTF-8 says how user and password are encoded.
			rw.Header().Set("WWW-Authenticate", `Basic realm="`+cfg.BasicAuth.Realm+`", charset="UTF-8"`)
			textError(rw, http.StatusUnauthorized, "authentication required")
			return
		}
	}
	if pol != nil && pol.limiter != nil && !pol.limiter.allow(client, start) {
		// RFC 6585 section 4: 429 Too Many Requests.
		rw.Header().Set("Retry-After", "1")
		textError(rw, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	if len(route.Canaries) > 0 {
		route = pickCanary(snap, route, r)
	}
	if res := route.Backend.Resource; res != nil {
		textError(rw, http.StatusNotImplemented, fmt.Sprintf("the Ingress routes this path to a %s resource backend, which switchboard does not serve", res.Kind))
		return
	}
	key := route.Backend.Key()
	pool := snap.pools[key]
	if pool == nil {
		c.log.Debug("backend unavailable", "backend", key, "err", snap.noPool[key])
		textError(rw, http.StatusServiceUnavailable, "the backend service is not available")
		return
	}
	rec := &upstream.Record{Balance: c.balanceOf(pol)}
	if cfg != nil {
		if n := cfg.BodySizeLimit; n > 0 {
			if r.ContentLength > n {
				textError(rw, http.StatusRequestEntityTooLarge, "the request body is larger than the Ingress allows")
				return
			}
			if r.ContentLength < 0 {
				r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(rw, r.Body, n), info: info}
			}
		}
		if cfg.RewriteTarget != "" && !route.Default {
			info.path = rewritePath(route, path, cfg.RewriteTarget)
		}
		rec.Protocol, rec.ConnectTimeout, rec.ReadTimeout = pol.proto, cfg.ConnectTimeout, cfg.ReadTimeout
		if a := cfg.Affinity; a != nil {
			info.affinity = a
			if ck, err := r.Cookie(a.Name); err == nil {
				rec.Affinity = ck.Value
			}
		}
	}
	info.rec = rec
	ctx := context.WithValue(r.Context(), infoKey{}, info)
	ctx = upstream.WithRecord(upstream.WithPool(ctx, pool), rec)
	pctx = ctx
	c.proxy.ServeHTTP(rw, r.WithContext(ctx))
}

// pickCanary chooses between a route and its canaries: a canary's header
// rule first (the header's value equal to canary-by-header-value, or
// "always" without one; "never" keeps the request off that canary), then
// its weight. The main route's policy (auth, source ranges, limits,
// rewrite, protocol) applies either way; only the backend changes.
func pickCanary(snap *snapshot, route *routing.Route, r *http.Request) *routing.Route {
	for _, cr := range route.Canaries {
		p := snap.policies[cr.Ingress]
		if p == nil || p.cfg.Canary == nil {
			continue
		}
		rule := p.cfg.Canary
		if rule.Header != "" {
			v := r.Header.Get(rule.Header)
			switch {
			case rule.HeaderValue != "" && v == rule.HeaderValue, rule.HeaderValue == "" && v == "always":
				return cr
			case rule.HeaderValue == "" && v == "never":
				continue
			}
		}
		if rule.Weight > 0 && mrand.IntN(100) < rule.Weight {
			return cr
		}
	}
	return route
}

// rewritePath applies rewrite-target: an Exact route's path is replaced
// by the target; a Prefix route's matched prefix is, and the rest of the
// path follows ("/api" with target "/v2": "/api/items" -> "/v2/items").
func rewritePath(route *routing.Route, path, target string) string {
	if route.Kind == routing.Exact {
		return target
	}
	prefix := strings.TrimRight(route.Path, "/")
	rest := strings.TrimPrefix(path, prefix)
	if rest == "" || rest == "/" && !strings.HasSuffix(path, "/") {
		return target
	}
	return strings.TrimSuffix(target, "/") + rest
}

// modifyResponse notes a protocol switch and sets the affinity cookie when the request had none, or
// one for an endpoint that is gone.
func (c *Controller) modifyResponse(resp *http.Response) error {
	info, _ := resp.Request.Context().Value(infoKey{}).(*reqInfo)
	if info != nil && resp.StatusCode == http.StatusSwitchingProtocols {
		// The proxy writes the 101 on the hijacked connection, past the
		// status recorder: note it for the access log and metrics.
		info.status = http.StatusSwitchingProtocols
	}
	if info == nil || info.affinity == nil || info.rec == nil || info.rec.Token == "" || info.rec.Token == info.rec.Affinity {
		return nil
	}
	ck := &http.Cookie{Name: info.affinity.Name, Value: info.rec.Token, Path: "/", HttpOnly: true,
		Secure: info.proto == "https", SameSite: http.SameSiteLaxMode}
	if info.affinity.MaxAge > 0 {
		ck.MaxAge = int(info.affinity.MaxAge / time.Second)
	}
	resp.Header.Add("Set-Cookie", ck.String())
	return nil
}

// rewrite builds the request to the backend: the normalised path (what
// was matched is what is served), the client's Host, and the
// X-Forwarded-* headers set from this connection (incoming ones are
// dropped by httputil: the ingress is the edge and trusts no client's).
func (c *Controller) rewrite(pr *httputil.ProxyRequest) {
	info := pr.In.Context().Value(infoKey{}).(*reqInfo)
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = upstream.PoolFrom(pr.In.Context()).Key // replaced per attempt by the transport
	out.URL.Path = info.path
	out.URL.RawPath = ""
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.Host = pr.In.Host
	pr.SetXForwarded()
	out.Header.Set("X-Forwarded-Proto", info.proto)
	out.Header.Set("X-Forwarded-Port", info.port)
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		out.Header.Set("X-Real-Ip", ip)
	}
	out.Header.Set("X-Request-Id", info.requestID)
}

// proxyError answers a failed proxy attempt: 503 without ready endpoints,
// 504 on a timeout, 502 otherwise (499 is logged when the client left).
func (c *Controller) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	info, _ := r.Context().Value(infoKey{}).(*reqInfo)
	var ne net.Error
	code, msg := http.StatusBadGateway, "the backend did not answer"
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		if info != nil {
			info.status = 499 // client closed the request (nginx's code)
		}
		return
	case info != nil && info.tooLarge.Load(), errors.As(err, new(*http.MaxBytesError)):
		code, msg = http.StatusRequestEntityTooLarge, "the request body is larger than the Ingress allows"
	case errors.Is(err, upstream.ErrNoEndpoints):
		code, msg = http.StatusServiceUnavailable, "the backend service has no ready endpoints"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusGatewayTimeout, "the backend did not answer in time"
	}
	c.log.Debug("proxy error", "url", r.URL.String(), "err", err)
	textError(w, code, msg)
}

// observe writes the metrics and the access log line of a request.
func (c *Controller) observe(ctx context.Context, r *http.Request, w *statusRecorder, route *routing.Route, info *reqInfo, start time.Time) {
	d := time.Since(start)
	status := w.status
	if info.status != 0 {
		status = info.status
	}
	if status == 0 {
		status = http.StatusOK
	}
	var ns, ing, host, path, svc string
	if route != nil {
		ns, ing, host, path = route.Ingress.Namespace, route.Ingress.Name, route.Host, route.Path
		if route.Backend.Resource != nil {
			svc = route.Backend.Resource.Kind + "/" + route.Backend.Resource.Name
		} else {
			svc = route.Backend.Service
		}
	}
	code := strconv.Itoa(status)
	c.metrics.requests.WithLabelValues(ns, ing, host, path, svc, r.Method, code).Inc()
	c.metrics.duration.WithLabelValues(ns, ing, host, path, svc, r.Method, code).Observe(d.Seconds())
	if c.cfg.AccessLog == nil {
		return
	}
	client, _, _ := net.SplitHostPort(r.RemoteAddr)
	ingName := ""
	if route != nil {
		ingName = ns + "/" + ing
	}
	c.cfg.AccessLog.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("client", client),
		slog.String("host", r.Host),
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("protocol", r.Proto),
		slog.Int("status", status),
		slog.Int64("bytes", w.bytes),
		slog.Float64("duration", d.Seconds()),
		slog.String("upstream", upstream.RecordedEndpoint(ctx)),
		slog.String("request_id", info.requestID),
		slog.String("ingress", ingName),
		slog.String("service", svc),
	)
}
