package ingress

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/ingress/acme"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/guard"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/ingress/upstream"
	"github.com/switchboard-dev/switchboard/internal/rawsock"
)

// The fast path serves HTTP/1.1 connections (plain, and TLS after the
// splitter) on one goroutine each, without net/http's server: it parses
// each request head in place from the connection's buffer (fasthead.go),
// routes it, writes the request to a kept-alive endpoint connection
// (upstream.Transport.DirectSend) and copies the response head and body
// back, Content-Length or chunked passed through as they come. It takes
// only plain GET and HEAD requests served over plain HTTP/1.1 endpoints,
// to routes without canaries whose annotations it applies as the net/http
// path does (rewrite-target, ssl-redirect, timeouts, source ranges,
// limit-rps, load-balance: policy.fast); for anything else (a request it
// does not parse, a body, an upgrade, h2c, affinity, basic auth, 404,
// 421, 308, 501, 503 without a pool) it hands the connection, with the bytes read
// and not consumed, to the net/http server, which then serves it to its
// end exactly as before. The answers are the ones the net/http path
// gives: the same headers to the backend, the same error statuses and
// bodies, the same metrics and access log lines.

// errHandoff: the connection goes to net/http.
var errHandoff = errors.New("ingress: hand-off to net/http")

const (
	fastReadBuf  = 8 << 10
	fastWriteBuf = 8 << 10
)

// fastServer is the fast path of one listener.
type fastServer struct {
	c       *Controller
	secure  bool
	proto   string // "http" or "https"
	port    string
	handoff *chanListener

	closing atomic.Bool
	served  atomic.Int64 // requests answered by the fast path (tests)
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	wg      sync.WaitGroup
}

func newFastServer(c *Controller, secure bool, addr net.Addr, handoff *chanListener) *fastServer {
	s := &fastServer{c: c, secure: secure, proto: "http", port: portOf(addr), handoff: handoff, conns: map[*fastConn]struct{}{}}
	if secure {
		s.proto = "https"
	}
	return s
}

// serve accepts on ln (plain HTTP) until it is closed.
func (s *fastServer) serve(ln net.Listener, g *guard.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if s.closing.Load() {
				return nil
			}
			return err
		}
		go s.serveConn(g.Wrap(rawsock.Wrap(c)), nil)
	}
}

// Connection states.
const (
	stIdle int32 = iota
	stActive
	stClosed
)

type fastConn struct {
	s      *fastServer
	conn   net.Conn // the guarded connection
	tls    *tls.ConnectionState
	br     *bufio.Reader
	bw     *bufio.Writer
	client string // the client's IP
	state  atomic.Int32
	rng    *rand.ChaCha8

	req     fastReq
	resp    fastResp
	reqBuf  []byte // the request head being served (valid until it is discarded)
	outPath string // path to the endpoint
	reqID   []byte
	idBuf   [32]byte
	writeFn func(*bufio.Writer)
	aliveFn func() bool
	rec     upstream.Record
	dc      *upstream.DirectConn // the exchange's endpoint connection
	headLen int                  // bytes of the request head still buffered
	idleSet time.Time            // when the idle read deadline was set
	// The metric children of the connection's last request (a kept-alive
	// connection mostly repeats its route and status).
	obsSnap *snapshot
	obsK    obsKey
	obsE    *obsEntry
	access  accessInfo // the access log's copy of the request's fields
}

var fastConnPool sync.Pool

func (s *fastServer) track(fc *fastConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[fc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *fastServer) untrack(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.wg.Done()
}

// shutdown stops taking new requests: idle connections are closed, busy
// ones are closed after their response (Connection: close); it waits for
// them until ctx is done, then closes the rest.
func (s *fastServer) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing.Store(true)
	for fc := range s.conns {
		if fc.state.CompareAndSwap(stIdle, stClosed) {
			fc.conn.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for fc := range s.conns {
			fc.conn.Close()
		}
		s.mu.Unlock()
	}
}

// serveConn serves one HTTP/1.x connection (conn is guarded; st is its
// TLS state on the HTTPS listener).
func (s *fastServer) serveConn(conn net.Conn, st *tls.ConnectionState) {
	fc, _ := fastConnPool.Get().(*fastConn)
	if fc == nil {
		fc = &fastConn{br: bufio.NewReaderSize(nil, fastReadBuf), bw: bufio.NewWriterSize(nil, fastWriteBuf)}
		var seed [32]byte
		crand.Read(seed[:])
		fc.rng = rand.NewChaCha8(seed)
		fc.writeFn = fc.writeUpstreamHead
		fc.aliveFn = fc.alive
	}
	fc.s, fc.conn, fc.tls = s, conn, st
	fc.br.Reset(conn)
	fc.bw.Reset(conn)
	fc.state.Store(stIdle)
	fc.idleSet = time.Time{}
	fc.client, _, _ = net.SplitHostPort(conn.RemoteAddr().String())
	if !s.track(fc) {
		conn.Close()
		return
	}
	handedOff := fc.loop()
	s.untrack(fc)
	if handedOff {
		return // net/http owns the connection and the reader now
	}
	conn.Close()
	fc.s, fc.conn, fc.tls = nil, nil, nil
	fc.obsSnap, fc.obsE, fc.access = nil, nil, accessInfo{}
	fc.br.Reset(nil)
	fc.bw.Reset(nil)
	fastConnPool.Put(fc)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// loop serves requests until the connection ends (false) or is handed
// to net/http (true).
func (fc *fastConn) loop() bool {
	s := fc.s
	cfg := &s.c.cfg
	first := true
	for {
		if fc.br.Buffered() == 0 {
			// The idle deadline is renewed at most once a second (a timer
			// change per request costs more than its precision is worth).
			now := time.Now()
			if first {
				fc.conn.SetReadDeadline(now.Add(cfg.ReadHeaderTimeout))
			} else if now.Sub(fc.idleSet) > time.Second {
				fc.conn.SetReadDeadline(now.Add(cfg.IdleTimeout))
				fc.idleSet = now
			}
			if _, err := fc.br.Peek(1); err != nil {
				var ge *guard.Error
				if errors.As(err, &ge) {
					return fc.handOff()
				}
				return false
			}
		}
		if !fc.state.CompareAndSwap(stIdle, stActive) {
			return false
		}
		n, err := fc.readHead(first)
		first = false
		switch {
		case err == nil:
		case errors.Is(err, errHandoff):
			return fc.handOff()
		case isTimeout(err) || fc.br.Buffered() == 0 && !errors.As(err, new(*guard.Error)):
			return false
		default:
			return fc.handOff() // net/http answers what it makes of it (400, ...)
		}
		keep, ok := fc.serve(n)
		if !ok {
			return fc.handOff()
		}
		if !keep || s.closing.Load() {
			fc.closeWrite()
			return false
		}
		if !fc.state.CompareAndSwap(stActive, stIdle) {
			return false
		}
	}
}

// closeWrite ends a connection after a response with "Connection: close"
// as net/http does: FIN first, then a short wait for the client to
// close, so that unread request bytes do not make the kernel send a
// reset that could destroy the response before the client read it.
func (fc *fastConn) closeWrite() {
	type closeWriter interface{ CloseWrite() error }
	var cw closeWriter
	switch c := fc.conn.(type) {
	case *guard.Conn:
		cw, _ = c.NetConn().(closeWriter)
	}
	if cw == nil {
		return
	}
	if cw.CloseWrite() == nil {
		fc.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(fc.conn, 256<<10))
	}
}

// readHead waits for a complete head in the buffer and returns its
// length (the bytes stay in the buffer).
func (fc *fastConn) readHead(first bool) (int, error) {
	cfg := &fc.s.c.cfg
	deadline := first
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		n, st := parseRequestHead(buf, &fc.req, cfg.MaxHeaders, cfg.MaxHeaderBytes)
		switch st {
		case headComplete:
			fc.reqBuf = buf
			return n, nil
		case headUnsupported:
			return 0, errHandoff
		}
		if len(buf) == fc.br.Size() {
			return 0, errHandoff
		}
		if !deadline {
			fc.conn.SetReadDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
			fc.idleSet = time.Time{}
			deadline = true
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// handOff gives the connection with its unread bytes to net/http.
func (fc *fastConn) handOff() bool {
	fc.conn.SetReadDeadline(time.Time{})
	if err := fc.bw.Flush(); err != nil {
		return false
	}
	fc.s.handoff.deliver(&handoffConn{Conn: fc.conn, r: fc.br, tls: fc.tls})
	return true
}

// handoffConn is a connection net/http serves after the fast path read
// from it: its reads start with what the fast path's buffer holds.
type handoffConn struct {
	net.Conn
	r   *bufio.Reader
	tls *tls.ConnectionState
}

func (c *handoffConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn returns the wrapped connection.
func (c *handoffConn) NetConn() net.Conn { return c.Conn }

func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// serve serves the request whose head is the first n bytes of the
// buffer. ok false: not one for the fast path (nothing consumed or
// written); keep: the connection stays open.
func (fc *fastConn) serve(n int) (keep, ok bool) {
	s := fc.s
	c := s.c
	start := time.Now()
	r := &fc.req
	b := fc.reqBuf
	snap := c.snap.Load()

	rawHost := r.host.of(b)
	host := routing.NormalizeHost(bstr(rawHost))
	if s.secure && fc.tls != nil {
		if sni := routing.NormalizeHost(fc.tls.ServerName); sni != host {
			x, _ := snap.certs.Lookup(sni)
			y, _ := snap.certs.Lookup(host)
			if x != y {
				return false, false // 421 by the net/http path
			}
		}
	}
	rawPath := r.path.of(b)
	path := bstr(rawPath)
	fc.outPath = path
	if !r.plainPath {
		p, err := routing.NormalizePath(path)
		if err != nil {
			return false, false
		}
		path = p
		fc.outPath = (&neturl.URL{Path: p}).EscapedPath()
	}
	if c.acme != nil && strings.HasPrefix(path, acme.ChallengePrefix) {
		return false, false // maybe an ACME challenge: the net/http path answers it
	}
	route := snap.table.Match(host, path)
	if route == nil || len(route.Canaries) > 0 || route.Backend.Resource != nil {
		return false, false
	}
	pol := snap.policies[route.Ingress] // nil: no annotations
	var cfg *annotations.Config
	if pol != nil {
		if !pol.fast {
			return false, false
		}
		cfg = pol.cfg
	}
	if !s.secure && route.TLS && c.httpsLn != nil && cfg.Redirect() {
		return false, false // 308
	}
	pool := snap.pools[route.Backend.Key()]
	if pool == nil {
		return false, false
	}

	// From here on the fast path answers.
	if id := r.requestID.of(b); validRequestID(bstr(id)) {
		fc.reqID = id
	} else {
		var raw [16]byte
		for i := 0; i < 16; i += 8 {
			v := fc.rng.Uint64()
			for j := 0; j < 8; j++ {
				raw[i+j] = byte(v >> (8 * j))
			}
		}
		const hexd = "0123456789abcdef"
		for i, x := range raw {
			fc.idBuf[2*i], fc.idBuf[2*i+1] = hexd[x>>4], hexd[x&15]
		}
		fc.reqID = fc.idBuf[:]
	}
	var access *accessInfo
	if c.cfg.AccessLog != nil {
		fc.access = accessInfo{host: string(rawHost), path: string(rawPath), requestID: string(fc.reqID)}
		access = &fc.access
	}
	method := http.MethodGet
	if r.head {
		method = http.MethodHead
	}
	closeAfter := r.close || s.closing.Load()
	s.served.Add(1)

	// The Ingress's policy, in the net/http path's order: source ranges
	// (403), then the rate limit (429); the rewrite and the timeouts go
	// into the request to the endpoint.
	fc.rec = upstream.Record{Balance: c.balanceOf(pol)}
	status, bytes := 0, int64(0)
	answered := false
	if cfg != nil {
		var client netip.Addr
		if len(cfg.SourceRanges) > 0 || pol.limiter != nil {
			client, _ = netip.ParseAddr(fc.client)
			client = client.Unmap()
		}
		switch {
		case len(cfg.SourceRanges) > 0 && !cfg.AllowedFrom(client):
			status, bytes = fc.writeText(http.StatusForbidden, "the client address is not in the Ingress's allowed source ranges", "", closeAfter)
			answered = true
		case pol.limiter != nil && !pol.limiter.allow(client, start):
			// RFC 6585 section 4: 429 Too Many Requests.
			status, bytes = fc.writeText(http.StatusTooManyRequests, "rate limit exceeded", "Retry-After: 1\r\n", closeAfter)
			answered = true
		}
		if cfg.RewriteTarget != "" && !route.Default {
			fc.outPath = (&neturl.URL{Path: rewritePath(route, path, cfg.RewriteTarget)}).EscapedPath()
		}
		fc.rec.ConnectTimeout, fc.rec.ReadTimeout = cfg.ConnectTimeout, cfg.ReadTimeout
	}
	if answered {
		fc.br.Discard(n)
		fc.reqBuf = nil
	} else {
		fc.headLen = n
		dc, err := c.transport.DirectSend(pool, &fc.rec, fc.writeFn, fc.aliveFn)
		fc.br.Discard(n) // the head's bytes are not used after this
		fc.reqBuf, fc.headLen = nil, 0
		switch {
		case errors.Is(err, upstream.ErrClientGone):
			status, closeAfter = 499, true // client closed the request (nginx's code)
		case err != nil:
			status = fc.writeError(err, closeAfter)
		default:
			status, bytes, keep = fc.relay(dc, r.head, closeAfter)
			if !keep {
				closeAfter = true
			}
		}
	}
	if err := fc.bw.Flush(); err != nil {
		closeAfter = true
	}
	c.observeFast(snap, route, method, status, bytes, start, fc, access)
	return !closeAfter, true
}

// writeUpstreamHead writes the request to the endpoint: what the
// net/http path (httputil.ReverseProxy with Controller.rewrite) sends for
// the same request.
func (fc *fastConn) writeUpstreamHead(w *bufio.Writer) {
	r := &fc.req
	b := fc.reqBuf
	if r.head {
		w.WriteString("HEAD ")
	} else {
		w.WriteString("GET ")
	}
	w.WriteString(fc.outPath)
	if r.hasQuery {
		w.WriteByte('?')
		w.Write(r.query.of(b))
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := r.host.of(b)
	w.Write(host)
	w.WriteString("\r\n")
	for _, l := range r.keep {
		w.Write(l.of(b))
	}
	if r.teTrailers {
		w.WriteString("Te: trailers\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	w.WriteString(fc.client)
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.Write(host)
	w.WriteString("\r\nX-Forwarded-Proto: ")
	w.WriteString(fc.s.proto)
	w.WriteString("\r\nX-Forwarded-Port: ")
	w.WriteString(fc.s.port)
	w.WriteString("\r\nX-Real-Ip: ")
	w.WriteString(fc.client)
	w.WriteString("\r\nX-Request-Id: ")
	w.Write(fc.reqID)
	w.WriteString("\r\n\r\n")
}

// writeError answers a failed exchange as Controller.proxyError does.
func (fc *fastConn) writeError(err error, closeAfter bool) int {
	code, msg := http.StatusBadGateway, "the backend did not answer"
	switch {
	case errors.Is(err, upstream.ErrNoEndpoints):
		code, msg = http.StatusServiceUnavailable, "the backend service has no ready endpoints"
	case isTimeout(err), errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusGatewayTimeout, "the backend did not answer in time"
	}
	fc.s.c.log.Debug("proxy error", "err", err)
	fc.writeText(code, msg, "", closeAfter)
	return code
}

// writeText answers as textError does on the net/http path; extra is
// more header lines (each ending in CRLF). It returns the status and the
// body's size (0 for HEAD).
func (fc *fastConn) writeText(code int, msg, extra string, closeAfter bool) (int, int64) {
	body := strconv.Itoa(code) + " " + http.StatusText(code) + ": " + msg + "\n"
	w := fc.bw
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(code))
	w.WriteByte(' ')
	w.WriteString(http.StatusText(code))
	w.WriteString("\r\n")
	w.WriteString(extra)
	w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: ")
	w.Write(httpDate())
	w.WriteString("\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	if closeAfter {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	if fc.req.head {
		return code, 0
	}
	w.WriteString(body)
	return code, int64(len(body))
}

// relay reads the response head from the endpoint, writes it to the
// client and copies the body. keep: the client connection may serve
// another request (the response was complete).
func (fc *fastConn) relay(dc *upstream.DirectConn, head, closeAfter bool) (status int, n int64, keep bool) {
	fc.dc = dc
	defer func() { fc.dc = nil }()
	br := dc.Reader()
	var hb []byte
	var hn int
	for {
		buf, _ := br.Peek(br.Buffered())
		m, st, err := parseResponseHead(buf, &fc.resp)
		if err == nil && st == headIncomplete && len(buf) == br.Size() {
			err = badResponseError("head larger than " + strconv.Itoa(br.Size()) + " bytes")
		}
		if err == nil && st == headComplete && fc.resp.code < 200 {
			err = errors.New("upstream: unexpected interim response " + strconv.Itoa(fc.resp.code))
		}
		if err != nil {
			dc.Release(false)
			return fc.writeError(err, closeAfter), 0, true
		}
		if st == headComplete {
			hb, hn = buf, m
			break
		}
		if err := fc.fill(fc.bw, br, len(buf)+1); err != nil {
			dc.Release(false)
			if errors.Is(err, upstream.ErrClientGone) {
				return 499, 0, false
			}
			return fc.writeError(err, closeAfter), 0, true
		}
	}
	// The deadline DirectSend set (at most AliveEvery away) stays: a wait
	// for the body beyond it asks whether the client is still there
	// (fill) and goes on.
	rs := &fc.resp
	noBody := head || rs.code == http.StatusNoContent || rs.code == http.StatusNotModified
	closeDelimited := !noBody && !rs.chunked && rs.length < 0
	backendKeep := !rs.close && (!rs.http10 || rs.keepAlive) && !closeDelimited

	w := fc.bw
	w.WriteString("HTTP/1.1 ")
	w.Write(rs.status.of(hb))
	w.WriteString("\r\n")
	for _, l := range rs.keep {
		line := l.of(hb)
		if rs.chunked && len(line) > 15 && equalFold(line[:15], "content-length:") {
			continue
		}
		if rs.connNamed(hb, line) {
			continue
		}
		w.Write(line)
	}
	if rs.chunked && !noBody {
		for _, l := range rs.trailer {
			w.Write(l.of(hb))
		}
	}
	if (rs.chunked || closeDelimited) && !noBody {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !rs.date {
		w.WriteString("Date: ")
		w.Write(httpDate())
		w.WriteString("\r\n")
	}
	if closeAfter {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	br.Discard(hn)
	status = rs.code
	var err error
	switch {
	case noBody:
		// A response to HEAD, a 204 or a 304 has no body whatever its
		// framing fields say (RFC 9112 section 6.3).
	case rs.chunked:
		n, err = fc.copyChunked(w, br)
	case rs.length >= 0:
		n, err = fc.copyN(w, br, rs.length)
	default:
		n, err = fc.copyRechunk(w, br)
	}
	if err != nil {
		// The response is cut: the client must not take it as complete.
		dc.Release(false)
		return status, n, false
	}
	dc.Release(backendKeep)
	return status, n, true
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("ingress: client write failed")

// fill makes sure the endpoint reader has n bytes buffered (fewer at
// the end of the stream), flushing the client writer before it would
// block; a wait longer than AliveEvery asks whether the client is still
// there (a client that left ends the copy, as a cancelled request does
// on the net/http path).
func (fc *fastConn) fill(w *bufio.Writer, br *bufio.Reader, n int) error {
	if br.Buffered() >= n {
		return nil
	}
	if err := w.Flush(); err != nil {
		return errClientWrite
	}
	for {
		_, err := br.Peek(n)
		if err == nil || !isTimeout(err) {
			return err
		}
		if !fc.alive() {
			return upstream.ErrClientGone
		}
		fc.dc.SetReadDeadline(time.Now().Add(upstream.AliveEvery))
	}
}

// readLine reads a line (up to '\n') of the endpoint's stream.
func (fc *fastConn) readLine(w *bufio.Writer, br *bufio.Reader) ([]byte, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			br.Discard(i + 1)
			return buf[:i+1], nil // valid until the next read
		}
		if len(buf) == br.Size() {
			return nil, badResponseError("line too long")
		}
		if err := fc.fill(w, br, len(buf)+1); err != nil {
			return nil, eofUnexpected(err)
		}
	}
}

func (fc *fastConn) copyN(w *bufio.Writer, br *bufio.Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		if err := fc.fill(w, br, 1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
		k := int64(br.Buffered())
		if k > n-done {
			k = n - done
		}
		b, _ := br.Peek(int(k))
		if _, err := w.Write(b); err != nil {
			return done, errClientWrite
		}
		br.Discard(int(k))
		done += k
	}
	return done, nil
}

// copyChunked passes a chunked body through as it is (chunk sizes,
// extensions, trailer fields) and returns the data bytes.
func (fc *fastConn) copyChunked(w *bufio.Writer, br *bufio.Reader) (int64, error) {
	var n int64
	for {
		line, err := fc.readLine(w, br)
		if err != nil {
			return n, err
		}
		size, ok := chunkSize(line)
		if !ok {
			return n, badResponseError("chunk size")
		}
		if _, err := w.Write(line); err != nil {
			return n, errClientWrite
		}
		if size == 0 {
			// Trailer fields up to the empty line.
			for {
				line, err := fc.readLine(w, br)
				if err != nil {
					return n, err
				}
				if _, err := w.Write(line); err != nil {
					return n, errClientWrite
				}
				if len(line) <= 2 && (string(line) == "\r\n" || string(line) == "\n") {
					return n, nil
				}
			}
		}
		k, err := fc.copyN(w, br, size)
		n += k
		if err != nil {
			return n, err
		}
		crlf, err := fc.readLine(w, br)
		if err != nil {
			return n, err
		}
		if !(string(crlf) == "\r\n" || string(crlf) == "\n") {
			return n, badResponseError("chunk end")
		}
		w.Write(crlf)
	}
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// chunkSize parses a chunk-size line ("1a;ext=v\r\n").
func chunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			if digits == 0 || !(c == ';' || c == '\r' || c == '\n' || c == ' ' || c == '\t') {
				return 0, false
			}
			return n, true
		}
		if digits == 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
		digits++
	}
	return 0, false
}

// copyRechunk sends a body delimited by the endpoint's close as chunks.
func (fc *fastConn) copyRechunk(w *bufio.Writer, br *bufio.Reader) (int64, error) {
	var n int64
	for {
		err := fc.fill(w, br, 1)
		if err == io.EOF {
			if _, err := w.WriteString("0\r\n\r\n"); err != nil {
				return n, errClientWrite
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		k := br.Buffered()
		b, _ := br.Peek(k)
		var sz [16]byte
		w.Write(strconv.AppendInt(sz[:0], int64(k), 16))
		w.WriteString("\r\n")
		w.Write(b)
		if _, err := w.WriteString("\r\n"); err != nil {
			return n, errClientWrite
		}
		br.Discard(k)
		n += int64(k)
	}
}

// httpDate is the current time in the HTTP date format, made at most once
// a second.
var dateCache atomic.Pointer[dateEntry]

type dateEntry struct {
	sec int64
	b   []byte
}

func httpDate() []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &dateEntry{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

// accessInfo is what the access log needs of a fast-path request, copied
// out of the connection's buffer.
type accessInfo struct{ host, path, requestID string }

// obsKey names the metric children of a route, method and status; the
// cache lives in the snapshot (routes are per snapshot).
type obsKey struct {
	route  *routing.Route
	head   bool
	status int
}

type obsEntry struct {
	count   prometheus.Counter
	dur     prometheus.Observer
	ingress string // "namespace/name", for the access log
}

// observeFast is observe for the fast path.
func (c *Controller) observeFast(snap *snapshot, route *routing.Route, method string, status int, bytes int64, start time.Time, fc *fastConn, a *accessInfo) {
	d := time.Since(start)
	k := obsKey{route, method == http.MethodHead, status}
	var e *obsEntry
	if fc.obsSnap == snap && fc.obsK == k {
		e = fc.obsE
	} else if v, ok := snap.obs.Load(k); ok {
		e = v.(*obsEntry)
	} else {
		svc := route.Backend.Service
		code := strconv.Itoa(status)
		ns, ing := route.Ingress.Namespace, route.Ingress.Name
		e = &obsEntry{
			count:   c.metrics.requests.WithLabelValues(ns, ing, route.Host, route.Path, svc, method, code),
			dur:     c.metrics.duration.WithLabelValues(ns, ing, route.Host, route.Path, svc, method, code),
			ingress: ns + "/" + ing,
		}
		snap.obs.Store(k, e)
	}
	fc.obsSnap, fc.obsK, fc.obsE = snap, k, e
	e.count.Inc()
	e.dur.Observe(d.Seconds())
	if a == nil {
		return
	}
	c.cfg.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("client", fc.client),
		slog.String("host", a.host),
		slog.String("method", method),
		slog.String("path", a.path),
		slog.String("protocol", "HTTP/1.1"),
		slog.Int("status", status),
		slog.Int64("bytes", bytes),
		slog.Float64("duration", d.Seconds()),
		slog.String("upstream", fc.rec.Addr),
		slog.String("request_id", a.requestID),
		slog.String("ingress", e.ingress),
		slog.String("service", route.Backend.Service),
	)
}
