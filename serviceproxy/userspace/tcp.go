package userspace

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// serveTCP accepts connections until the listener is closed; each is
// handled on its own goroutine so a slow dial never holds up the others.
func (p *Proxier) serveTCP(l *listener) {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("accept failed", "address", l.key.String(), "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if l.ref != nil {
			l.ref.conns.Add(1)
		}
		p.wg.Add(1)
		go p.handleTCP(l, c)
	}
}

func remoteAddrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// reset closes c with a TCP RST (SO_LINGER 0), so that the client fails at
// once instead of waiting, as kube-proxy's REJECT with tcp-reset.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

func (p *Proxier) handleTCP(l *listener, in *net.TCPConn) {
	defer p.wg.Done()
	if l.ref != nil {
		defer func() {
			if l.ref.conns.Add(-1) == 0 && l.ref.removing.Load() {
				go p.reapAddrs()
			}
		}()
	}
	rt := l.route.Load()
	s := rt.svc
	b := s.bal.Load()
	client := remoteAddrPort(in.RemoteAddr()).Addr()
	var cands []netip.AddrPort
	if b.admits(rt.kind, client) {
		cands = b.candidates(rt.kind, family(l.key.ap.Addr()), client)
	}
	if len(cands) == 0 {
		s.m.rejected.Inc()
		reset(in)
		return
	}
	out := p.dialAny(s, b, client, cands, "tcp")
	if out == nil {
		reset(in)
		return
	}
	outTCP := out.(*net.TCPConn)
	s.m.connections.Inc()
	s.m.active.Inc()
	defer s.m.active.Dec()
	pair := &tcpPair{a: in, b: outTCP}
	p.connMu.Lock()
	p.conns[pair] = struct{}{}
	p.connMu.Unlock()
	pair.relay()
	p.connMu.Lock()
	delete(p.conns, pair)
	p.connMu.Unlock()
}

// dialAny connects to the picked endpoint, and on failure to the next
// ones in turn until every candidate was tried ("connect failures retry
// another endpoint"); each retry doubles the timeout, as upstream's
// endpointDialTimeout schedule (250 ms, 500 ms, 1 s, 2 s).
func (p *Proxier) dialAny(s *service, b *balance, client netip.Addr, cands []netip.AddrPort, network string) net.Conn {
	start := s.pick(b, client, cands)
	timeout := p.cfg.DialTimeout
	runner := p.ns.Load()
	for i := range cands {
		ep := cands[(start+i)%len(cands)]
		d := net.Dialer{Timeout: timeout}
		var c net.Conn
		err := runner.do(func() error {
			var err error
			c, err = d.DialContext(p.ctx, network, ep.String())
			return err
		})
		if err == nil {
			if i > 0 {
				s.connected(b, client, ep)
			}
			return c
		}
		s.m.dialFailures.Inc()
		p.log.Debug("connect to endpoint failed", "service", s.label, "endpoint", ep, "err", err)
		if p.ctx.Err() != nil {
			return nil
		}
		timeout = min(2*timeout, maxDialTimeout)
	}
	p.log.Info("no endpoint accepted the connection", "service", s.label, "client", client, "tried", len(cands))
	return nil
}

// tcpPair is one proxied connection: a is the client's, b the endpoint's.
type tcpPair struct {
	a, b      *net.TCPConn
	abortOnce sync.Once
}

// relay copies both ways. io.Copy between two *net.TCPConn uses splice(2)
// on Linux, so the bytes never enter user space. An EOF one way is passed
// on as a half-close (FIN) and the other way keeps going; an error one way
// (a reset) aborts both with a reset.
func (t *tcpPair) relay() {
	done := make(chan struct{})
	go func() {
		t.copy(t.b, t.a)
		close(done)
	}()
	t.copy(t.a, t.b)
	<-done
	t.a.Close()
	t.b.Close()
}

func (t *tcpPair) copy(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		t.abort()
		return
	}
	dst.CloseWrite()
}

func (t *tcpPair) abort() {
	t.abortOnce.Do(func() {
		reset(t.a)
		reset(t.b)
	})
}
