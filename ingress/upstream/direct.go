package upstream

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"
)

// AliveEvery is how often a fast-path exchange waiting on an endpoint
// asks whether its client is still there.
const AliveEvery = time.Second

// ErrClientGone is returned by DirectSend when alive reported the client
// gone while the endpoint had not answered.
var ErrClientGone = errors.New("upstream: the client went away")

// directReadBuf is the read buffer of a direct connection: a response
// head up to this size is parsed in place by the ingress fast path.
const directReadBuf = 16 << 10

// DirectSend is the ingress fast path's way to an endpoint of pool over
// plain HTTP/1.1, for a request without a body (GET, HEAD): it picks an
// endpoint (rec.Affinity first when set, then as rec.Balance says: round-robin or least-request), counts it in flight until Release, takes a
// kept-alive connection to it or connects, lets write put the request
// head into the connection's buffer, sends it and waits for the first
// byte of the response. As RoundTrip does for idempotent requests, an
// endpoint that fails to connect is ejected (OnEject is called) and the
// next one is tried, up to MaxAttempts; a kept-alive connection the
// endpoint closed while idle is replaced and the head written again
// (write may be called more than once). The endpoint is recorded in rec.
// While it waits for the response, alive (when not nil) is asked every
// AliveEvery whether the client is still there; when not, the exchange
// ends with ErrClientGone and the connection is closed (the endpoint
// learns it, as on the net/http path when a request is cancelled).
//
// The connection's deadline covers the response head (rec.ReadTimeout,
// else the Transport's); the caller reads the head from Reader, copies
// the body (SetReadDeadline bounds its waits) and calls Release. Errors:
// ErrNoEndpoints, ErrClientGone, a *DialError, a timeout (net.Error) or
// another I/O error.
func (t *Transport) DirectSend(pool *Pool, rec *Record, write func(*bufio.Writer), alive func() bool) (*DirectConn, error) {
	readTO := t.direct.readTO
	if rec != nil && rec.ReadTimeout > 0 {
		readTO = rec.ReadTimeout
	}
	var triedBuf [4]string
	tried := triedBuf[:0]
	var lastErr error
	for attempt := 0; attempt < t.opts.MaxAttempts; attempt++ {
		ep := acquire(pool, rec, attempt, tried, false)
		if ep == nil {
			break
		}
		addr := ep.Addr
		tried = append(tried, addr)
		dc, err := t.direct.sendHead(rec, addr, readTO, write, alive)
		if err == nil {
			dc.ep = ep
			return dc, nil
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
	}
	if lastErr == nil {
		return nil, ErrNoEndpoints
	}
	return nil, lastErr
}

func (t *h1) sendHead(rec *Record, addr string, readTO time.Duration, write func(*bufio.Writer), alive func() bool) (*DirectConn, error) {
	for {
		pc := t.get(addr)
		if pc == nil {
			ctx := context.Background()
			if rec != nil && rec.ConnectTimeout > 0 {
				ctx = WithRecord(ctx, rec)
			}
			c, err := t.dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			pc = &DirectConn{t: t, addr: addr, c: c, br: bufio.NewReaderSize(c, directReadBuf), bw: bufio.NewWriterSize(c, 4096)}
		}
		now := time.Now()
		var deadline time.Time
		if readTO > 0 {
			deadline = now.Add(readTO)
		}
		next := deadline
		if alive != nil && (deadline.IsZero() || readTO > AliveEvery) {
			// The deadline only wakes the wait up to ask alive: one set
			// less than rearmSlack ago is kept (a timer change per request
			// costs more than the precision is worth; the question comes
			// at most rearmSlack early).
			next = now.Add(AliveEvery)
			if d := next.Sub(pc.rdl); d < 0 || d > rearmSlack {
				pc.setReadDeadline(next)
			}
		} else {
			pc.setReadDeadline(next)
		}
		// A read deadline only: the head is small and goes into the
		// socket's buffer; the kept connection's deadline is replaced on
		// its next use.
		write(pc.bw)
		err := pc.bw.Flush()
		for err == nil {
			if _, err = pc.br.Peek(1); err == nil || alive == nil || !isTimeout(err) {
				break
			}
			now := time.Now()
			if !deadline.IsZero() && !now.Before(deadline) {
				break // the read timeout
			}
			if !alive() {
				err = ErrClientGone
				break
			}
			next := now.Add(AliveEvery)
			if !deadline.IsZero() && deadline.Before(next) {
				next = deadline
			}
			pc.setReadDeadline(next)
			err = nil
		}
		if err == nil {
			return pc, nil
		}
		pc.c.Close()
		if pc.reused && err != ErrClientGone && !isTimeout(err) {
			continue // the endpoint closed it while idle: a fresh one
		}
		return nil, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Reader and Writer are the connection's buffers.
func (c *DirectConn) Reader() *bufio.Reader { return c.br }
func (c *DirectConn) Writer() *bufio.Writer { return c.bw }

// Addr is the endpoint.
func (c *DirectConn) Addr() string { return c.addr }

// SetReadDeadline sets the deadline of the connection's reads (a kept
// connection gets a new one on its next use).
func (c *DirectConn) SetReadDeadline(t time.Time) { c.setReadDeadline(t) }

// rearmSlack: see sendHead.
const rearmSlack = 100 * time.Millisecond

func (c *DirectConn) setReadDeadline(t time.Time) {
	c.rdl = t
	c.c.SetReadDeadline(t)
}

// Release gives the connection back for reuse when keep (the response
// was read to its end and both sides keep the connection alive), else
// closes it. The connection must not be used after.
func (c *DirectConn) Release(keep bool) {
	if c.ep != nil {
		c.ep.Done()
		c.ep = nil
	}
	if keep {
		c.t.put(c)
		return
	}
	c.c.Close()
}
