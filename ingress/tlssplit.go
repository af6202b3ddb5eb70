package ingress

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/ingress/guard"
	"github.com/switchboard-dev/switchboard/internal/rawsock"
)

// tlsSplitter terminates TLS on the HTTPS listener and hands each
// connection to the HTTP/2 listener (ALPN "h2": net/http serves it as a
// *tls.Conn) or, for HTTP/1.x, wrapped by the request-smuggling guard to
// the fast path (fastpath.go), which hands what it does not serve to the
// HTTP/1 listener (the guard must see the plaintext; net/http then
// cannot see the *tls.Conn, so tlsConnContext puts its state in the
// request context). Handshakes run concurrently, bounded by a deadline.
type tlsSplitter struct {
	ln      net.Listener
	cfg     *tls.Config
	timeout time.Duration
	guard   *guard.Listener
	log     *slog.Logger
	h1, h2  *chanListener
	// fast serves HTTP/1.x connections (on the handshake's goroutine);
	// nil: they go to h1.
	fast func(net.Conn, *tls.ConnectionState)
}

func newTLSSplitter(ln net.Listener, cfg *tls.Config, timeout time.Duration, g *guard.Listener, log *slog.Logger) *tlsSplitter {
	return &tlsSplitter{ln: ln, cfg: cfg, timeout: timeout, guard: g, log: log,
		h1: newChanListener(ln.Addr()), h2: newChanListener(ln.Addr())}
}

func (s *tlsSplitter) run() {
	defer s.h1.Close()
	defer s.h2.Close()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return
		}
		go s.handshake(c)
	}
}

func (s *tlsSplitter) handshake(c net.Conn) {
	tc := tls.Server(rawsock.Wrap(c), s.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		s.h2.deliver(tc)
		return
	}
	if s.fast != nil {
		// The connection is served on this goroutine from here on.
		st := tc.ConnectionState()
		s.fast(s.guard.Wrap(tc), &st)
		return
	}
	s.h1.deliver(s.guard.Wrap(tc))
}

type tlsStateKey struct{}

// tlsConnContext records the TLS state of a guarded HTTP/1 connection.
func tlsConnContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*handoffConn); ok {
		if hc.tls != nil {
			return context.WithValue(ctx, tlsStateKey{}, hc.tls)
		}
		c = hc.Conn
	}
	if gc, ok := c.(*guard.Conn); ok {
		if tc, ok := gc.NetConn().(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}

// chanListener is a net.Listener fed by the splitter.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(a net.Addr) *chanListener {
	return &chanListener{addr: a, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
