package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// h1 is the direct HTTP/1.1 path to plain-HTTP endpoints: the request is
// written and the response head read on the caller's goroutine, over a
// kept-alive connection of a per-endpoint idle list. net/http's Transport
// hands every request to two goroutines of its own (a read and a write
// loop) and back; on the proxy's hot path those hand-offs and their
// wake-ups cost more than the proxying itself (see bench/ingress). The
// Transport uses h1 for requests without a body and keeps net/http's
// Transport for requests with one (it reads an early answer, such as a
// 413, while the body is still being sent), protocol upgrades, "Expect:
// 100-continue", HTTPS and HTTP/2 endpoints.
type h1 struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	readTO  time.Duration // connection write + response head
	idleTO  time.Duration
	maxIdle int
	mu      sync.Mutex
	idle    map[string][]*DirectConn // endpoint -> idle connections, newest last
}

// DirectConn is a kept-alive HTTP/1.1 connection to one endpoint: the
// h1 path's, and the ingress fast path's through Transport.DirectSend.
type DirectConn struct {
	t         *h1
	addr      string
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool
	ep        *Endpoint // in flight from DirectSend until Release
	rdl       time.Time // read deadline set by DirectSend (zero: not known)
}

func newH1(dial func(ctx context.Context, network, addr string) (net.Conn, error), readTO, idleTO time.Duration, maxIdle int) *h1 {
	return &h1{dial: dial, readTO: readTO, idleTO: idleTO, maxIdle: maxIdle, idle: map[string][]*DirectConn{}}
}

// h1Eligible reports whether a request can take the direct path.
func h1Eligible(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Body != nil && req.Body != http.NoBody {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 {
		return false
	}
	return true
}

func (t *h1) get(addr string) *DirectConn {
	now := time.Now()
	t.mu.Lock()
	l := t.idle[addr]
	for len(l) > 0 {
		pc := l[len(l)-1]
		l[len(l)-1] = nil
		l = l[:len(l)-1]
		if now.Sub(pc.idleSince) > t.idleTO {
			pc.c.Close()
			continue
		}
		t.idle[addr] = l
		t.mu.Unlock()
		pc.reused = true
		return pc
	}
	t.idle[addr] = l
	t.mu.Unlock()
	return nil
}

func (t *h1) put(pc *DirectConn) {
	pc.idleSince = time.Now()
	t.mu.Lock()
	l := t.idle[pc.addr]
	if len(l) >= t.maxIdle {
		t.mu.Unlock()
		pc.c.Close()
		return
	}
	t.idle[pc.addr] = append(l, pc)
	t.mu.Unlock()
}

// closeIdle closes every idle connection.
func (t *h1) closeIdle() {
	t.mu.Lock()
	old := t.idle
	t.idle = map[string][]*DirectConn{}
	t.mu.Unlock()
	for _, l := range old {
		for _, pc := range l {
			pc.c.Close()
		}
	}
}

// staleConnError marks a failure on a reused connection before any byte of
// a response arrived: the endpoint closed the idle connection, and a
// replayable request may be sent again on a new one (as net/http does).
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// roundTrip sends req (URL.Host is the endpoint) and returns the response
// whose body gives the connection back when read to its end.
func (t *h1) roundTrip(req *http.Request, readTO time.Duration) (*http.Response, error) {
	if readTO <= 0 {
		readTO = t.readTO
	}
	addr := req.URL.Host
	replayable := req.Body == nil || req.Body == http.NoBody
	for {
		pc := t.get(addr)
		if pc == nil {
			c, err := t.dial(req.Context(), "tcp", addr)
			if err != nil {
				return nil, err
			}
			pc = &DirectConn{t: t, addr: addr, c: c, br: bufio.NewReaderSize(c, directReadBuf), bw: bufio.NewWriterSize(c, 4096)}
		}
		resp, err := t.send(pc, req, readTO)
		var stale *staleConnError
		if err != nil && errors.As(err, &stale) && replayable && req.Context().Err() == nil {
			continue // a fresh connection next (or another idle one)
		}
		return resp, err
	}
}

func (t *h1) send(pc *DirectConn, req *http.Request, readTO time.Duration) (*http.Response, error) {
	ctx := req.Context()
	var cancelled atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		cancelled.Store(true)
		pc.c.SetDeadline(time.Unix(1, 0))
	})
	fail := func(err error, stale bool) (*http.Response, error) {
		stop()
		pc.c.Close()
		if cancelled.Load() && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if stale && pc.reused {
			return nil, &staleConnError{err}
		}
		return nil, err
	}
	pc.rdl = time.Time{} // the deadlines here are not DirectSend's
	if readTO > 0 {
		pc.c.SetDeadline(time.Now().Add(readTO))
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(err, false)
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err, true)
	}
	if _, err := pc.br.Peek(1); err != nil {
		return fail(err, true)
	}
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		return fail(err, false)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode < 200 {
		// Not asked for (no Upgrade or Expect was sent): give up on the
		// connection rather than guess.
		return fail(errors.New("upstream: unexpected interim response "+resp.Status), false)
	}
	pc.c.SetDeadline(time.Time{})
	keep := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		stop()
		if keep && !cancelled.Load() {
			t.put(pc)
		} else {
			pc.c.Close()
		}
		return resp, nil
	}
	resp.Body = &h1body{rc: resp.Body, t: t, pc: pc, keep: keep, stop: stop, cancelled: &cancelled, ctx: ctx}
	return resp, nil
}

// h1body gives its connection back when read to the end, and closes it
// when closed before (without draining: a client that left must not make
// the proxy read a long response).
type h1body struct {
	rc        io.ReadCloser
	t         *h1
	pc        *DirectConn
	keep      bool
	stop      func() bool
	cancelled *atomic.Bool
	ctx       context.Context
	done      bool
}

func (b *h1body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
		if b.cancelled.Load() && b.ctx.Err() != nil {
			err = b.ctx.Err()
		}
	}
	return n, err
}

func (b *h1body) finish(ok bool) {
	if b.done {
		return
	}
	b.done = true
	stopped := b.stop()
	if ok && b.keep && stopped && !b.cancelled.Load() {
		b.t.put(b.pc)
		return
	}
	b.pc.c.Close()
}

func (b *h1body) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.pc.c.Close() // before rc.Close, which would drain
		b.rc.Close()
	}
	return nil
}
