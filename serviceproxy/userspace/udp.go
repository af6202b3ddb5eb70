package userspace

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxDatagram is the largest UDP payload (IPv4: 65535 - 8 - 20).
const maxDatagram = 65535

// bufPool holds datagram buffers; a session takes one only while a reply
// is being relayed, so idle sessions cost no buffer.
var bufPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

type udpListener struct {
	conn *net.UDPConn

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	closed   bool
}

// udpSession relays one client's datagrams to one endpoint over a socket
// connected to it, and the endpoint's replies back from the service
// address.
type udpSession struct {
	client   netip.AddrPort
	endpoint netip.AddrPort
	conn     *net.UDPConn
	svc      *service
	last     atomic.Int64 // unix nanoseconds of the last datagram either way
	once     sync.Once
}

func (u *udpListener) close() {
	u.mu.Lock()
	u.closed = true
	sessions := u.sessions
	u.sessions = map[netip.AddrPort]*udpSession{}
	u.mu.Unlock()
	u.conn.Close()
	for _, s := range sessions {
		s.close()
	}
}

func (u *udpListener) remove(s *udpSession) {
	u.mu.Lock()
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
	}
	u.mu.Unlock()
	s.close()
}

// dropStale ends the sessions whose endpoint is no longer reachable, so
// the client's next datagram goes to a live endpoint.
func (u *udpListener) dropStale(b *balance) {
	u.mu.Lock()
	var stale []*udpSession
	for c, s := range u.sessions {
		if !b.all[s.endpoint] {
			stale = append(stale, s)
			delete(u.sessions, c)
		}
	}
	u.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
}

func (s *udpSession) close() {
	s.once.Do(func() {
		s.conn.Close()
		s.svc.m.active.Dec()
	})
}

func (p *Proxier) serveUDP(l *listener) {
	defer p.wg.Done()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	for {
		n, client, err := l.udp.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Debug("UDP read failed", "address", l.key.String(), "err", err)
			continue
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		p.forwardUDP(l, client, buf[:n])
	}
}

func (p *Proxier) forwardUDP(l *listener, client netip.AddrPort, data []byte) {
	for attempt := 0; attempt < 2; attempt++ {
		l.udp.mu.Lock()
		s := l.udp.sessions[client]
		l.udp.mu.Unlock()
		if s == nil {
			if s = p.newSession(l, client); s == nil {
				return
			}
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := s.conn.Write(data); err != nil {
			// ECONNREFUSED: the endpoint answered an earlier datagram
			// with port unreachable. End the session and try a new one.
			s.svc.m.dialFailures.Inc()
			p.log.Debug("UDP send to endpoint failed", "service", s.svc.label, "endpoint", s.endpoint, "err", err)
			l.udp.remove(s)
			continue
		}
		return
	}
}

func (p *Proxier) newSession(l *listener, client netip.AddrPort) *udpSession {
	rt := l.route.Load()
	svc := rt.svc
	b := svc.bal.Load()
	var cands []netip.AddrPort
	if b.admits(rt.kind, client.Addr()) {
		cands = b.candidates(rt.kind, family(l.key.ap.Addr()), client.Addr())
	}
	if len(cands) == 0 {
		svc.m.rejected.Inc()
		return nil
	}
	network := "udp4"
	if l.key.ap.Addr().Is6() {
		network = "udp6"
	}
	c := p.dialAny(svc, b, client.Addr(), cands, network)
	if c == nil {
		return nil
	}
	s := &udpSession{client: client, endpoint: remoteAddrPort(c.RemoteAddr()), conn: c.(*net.UDPConn), svc: svc}
	s.last.Store(time.Now().UnixNano())
	l.udp.mu.Lock()
	if l.udp.closed {
		l.udp.mu.Unlock()
		c.Close()
		return nil
	}
	if old := l.udp.sessions[client]; old != nil { // raced with another datagram: impossible with one reader, kept safe
		l.udp.mu.Unlock()
		c.Close()
		return old
	}
	l.udp.sessions[client] = s
	l.udp.mu.Unlock()
	svc.m.connections.Inc()
	svc.m.active.Inc()
	p.wg.Add(1)
	go p.udpReplies(l, s)
	return s
}

// udpReplies relays the endpoint's datagrams to the client until the
// session is idle for UDPIdleTimeout, closed, or refused.
func (p *Proxier) udpReplies(l *listener, s *udpSession) {
	defer p.wg.Done()
	defer l.udp.remove(s)
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	idle := p.cfg.UDPIdleTimeout
	for {
		s.conn.SetReadDeadline(time.Now().Add(idle))
		var (
			n    int
			rerr error
			bufp *[]byte
		)
		err := rc.Read(func(fd uintptr) bool {
			bufp = bufPool.Get().(*[]byte)
			n, _, rerr = unix.Recvfrom(int(fd), *bufp, unix.MSG_DONTWAIT)
			if rerr == unix.EAGAIN || rerr == unix.EINTR {
				bufPool.Put(bufp)
				bufp = nil
				return false
			}
			return true
		})
		if err != nil {
			if bufp != nil {
				bufPool.Put(bufp)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if time.Since(time.Unix(0, s.last.Load())) < idle {
					continue
				}
			}
			return
		}
		if rerr != nil {
			bufPool.Put(bufp)
			if errors.Is(rerr, syscall.ECONNREFUSED) {
				s.svc.m.dialFailures.Inc()
				p.log.Debug("UDP endpoint refused", "service", s.svc.label, "endpoint", s.endpoint)
			}
			return
		}
		s.last.Store(time.Now().UnixNano())
		_, werr := l.udp.conn.WriteToUDPAddrPort((*bufp)[:n], s.client)
		bufPool.Put(bufp)
		if werr != nil && errors.Is(werr, net.ErrClosed) {
			return
		}
	}
}
