package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// probeTransport is an http.RoundTripper for kubelet's probe requests: one
// fresh connection per request (keep-alives off, "Connection: close"),
// dialled as probeDialer dials, the request written and the response read
// in the caller's goroutine. It does what net/http's Transport does for
// such a request, without the Transport's machinery (a dialling goroutine,
// a reader and a writer goroutine per connection), which is most of the
// cost of a probe. Requests it does not handle itself (HTTPS, with
// kubelet's HTTP/2 negotiation; anything the Transport would reject or
// treat specially) go to fallback, kubelet's probe Transport, unchanged.
//
// Errors are the ones the Transport returns for the same events: the
// dial's error, the context's cause once the context is done (or
// context.DeadlineExceeded once the deadline passed), and the Transport's
// wording of a connection that broke before a response.
type probeTransport struct {
	dialer   *net.Dialer
	fallback func() http.RoundTripper
}

// maxResponseHeaderBytes is the Transport's default limit on the response
// headers (MaxResponseHeaderBytes 0 means 10 MiB).
const maxResponseHeaderBytes = 10 << 20

// readBufferSize is the Transport's default read buffer.
const readBufferSize = 4 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	writePool  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// probeConn is what an exchange needs of its connection.
type probeConn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// RoundTrip does req on a new connection, within req's context (and its
// deadline).
func (t *probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.fallback().RoundTrip(req)
	}
	ctx := req.Context()
	deadline, _ := ctx.Deadline()
	return t.exchange(ctx, deadline, req, nil)
}

// handles tells whether RoundTrip does req itself: plain HTTP to a host
// given in ASCII, no body, headers the Transport would accept. Anything
// else goes to the Transport, for its behaviour and its errors.
func (t *probeTransport) handles(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" || req.Header == nil ||
		req.Method != http.MethodGet || (req.Body != nil && req.Body != http.NoBody) || req.Cancel != nil || len(req.Trailer) > 0 {
		return false
	}
	if !isASCII(req.URL.Host) || !isASCII(req.Host) {
		return false // the Transport converts internationalised names
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// renderRequest is req as probeTransport writes it on a connection, or
// nil when probeTransport would not send req itself (or req has user
// information in its URL, for which the client adds a header).
func renderRequest(req *http.Request) []byte {
	if !(&probeTransport{}).handles(req) || req.URL.User != nil {
		return nil
	}
	var buf bytes.Buffer
	if err := closingRequest(req).Write(&buf); err != nil {
		return nil // the transport reports the error when it writes
	}
	return buf.Bytes()
}

// closingRequest is req asking the server to close the connection, as the
// Transport with DisableKeepAlives adds "Connection: close" unless the
// request asks for a protocol switch.
func closingRequest(req *http.Request) *http.Request {
	w := *req
	w.Close = !isProtocolSwitchHeader(req.Header)
	return &w
}

// exchange does req (which t handles) on a new connection until deadline
// (none if zero) or until ctx ends; wire, when not nil, is req already
// rendered (renderRequest). The response's body owns the connection.
func (t *probeTransport) exchange(ctx context.Context, deadline time.Time, req *http.Request, wire []byte) (*http.Response, error) {
	x := &exchangeState{ctx: ctx, deadline: deadline}
	conn, err := t.dial(ctx, deadline, req)
	if err != nil {
		return nil, x.mapErr(err)
	}
	// The deadline, or the context ending, breaks off whatever the
	// connection waits for.
	if !deadline.IsZero() {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		return nil, x.mapErr(err)
	}
	if s, ok := conn.(*sockConn); ok {
		if err := s.waitConnected(); err != nil {
			return fail(err)
		}
	}

	if wire != nil {
		_, err = conn.Write(wire)
	} else {
		buf := writePool.Get().(*bytes.Buffer)
		buf.Reset()
		err = closingRequest(req).Write(buf)
		if err == nil {
			_, err = conn.Write(buf.Bytes())
		}
		if buf.Cap() <= 64<<10 {
			writePool.Put(buf)
		}
	}
	if err != nil {
		return fail(err)
	}

	rc := &limitedReader{r: conn, limit: maxResponseHeaderBytes}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(rc)
	failRead := func(err error) (*http.Response, error) {
		br.Reset(nil)
		readerPool.Put(br)
		return fail(err)
	}
	if _, err := br.Peek(1); err != nil {
		// The Transport returns the read's own error here (io.EOF for a
		// server that closed the connection).
		return failRead(err)
	}
	var res *http.Response
	for {
		res, err = http.ReadResponse(br, req)
		if err != nil {
			if rc.limit <= 0 {
				err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHeaderBytes)
			}
			return failRead(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err))
		}
		// Informational responses are skipped (101 Switching Protocols is
		// final), all headers together within the limit.
		if res.StatusCode < 100 || res.StatusCode > 199 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	rc.limit = -1 // no limit on the body
	body := &connBody{conn: conn, br: br, stop: stop, x: x, r: res.Body}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// The Transport hands over the connection itself.
		body.r = br
	}
	res.Body = body
	return res, nil
}

// dial opens the connection of one exchange: a direct socket for an IP
// address, probeDialer (with the deadline) for a name.
func (t *probeTransport) dial(ctx context.Context, deadline time.Time, req *http.Request) (probeConn, error) {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80" // the Transport's canonicalAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if p, err := strconv.ParseUint(port, 10, 16); err == nil {
			if s, err := dialSocket(netip.AddrPortFrom(ip, uint16(p))); !errors.Is(err, errNoSocket) {
				if err != nil {
					return nil, err
				}
				return s, nil
			}
		}
	}
	d := *t.dialer
	d.Deadline = deadline
	return d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
}

// exchangeState is what the errors of an exchange are judged against.
type exchangeState struct {
	ctx      context.Context
	deadline time.Time
}

// mapErr is the Transport's preference: the context's cause once it is
// done, context.DeadlineExceeded once the deadline passed (the context
// of a Transport's request would be done then), else err.
func (x *exchangeState) mapErr(err error) error {
	if x.ctx.Err() != nil {
		return context.Cause(x.ctx)
	}
	if !x.deadline.IsZero() && !time.Now().Before(x.deadline) {
		return context.DeadlineExceeded
	}
	return err
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isProtocolSwitchHeader is the Transport's: an Upgrade header together
// with "Connection: Upgrade".
func isProtocolSwitchHeader(h http.Header) bool {
	return h.Get("Upgrade") != "" && httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// aLongTimeAgo is a deadline in the past: it unblocks pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// limitedReader bounds what the response headers may read, as the
// Transport's read limit; a negative limit is no limit.
type limitedReader struct {
	r     io.Reader
	limit int64
}

func (c *limitedReader) Read(p []byte) (int, error) {
	if c.limit < 0 {
		return c.r.Read(p)
	}
	if c.limit == 0 {
		return 0, fmt.Errorf("read limit of %d bytes exhausted", maxResponseHeaderBytes)
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.r.Read(p)
	c.limit -= int64(n)
	return n, err
}

// connBody is a response body on a connection of its own: closing it
// closes the connection (with the dialer's linger).
type connBody struct {
	r      io.Reader
	conn   probeConn
	br     *bufio.Reader
	stop   func() bool
	x      *exchangeState
	closed bool
}

func (b *connBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		// As the Transport: the cancellation rather than what it caused.
		err = b.x.mapErr(err)
	}
	return n, err
}

func (b *connBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.stop()
	err := b.conn.Close()
	b.br.Reset(nil)
	readerPool.Put(b.br)
	b.br, b.r = nil, nil
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
